"""`raybench sweep` and `raybench peak` as Ray Tune trials on one local Ray (fake GPUs):
the commands' JSON and tables, an interrupted sweep resumed, a raybench failure not
retried."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from pathlib import Path

from typer.testing import CliRunner

from raybench.cli import app
from raybench.experiments.sweep import CSV_NAME, SweepSpec, plan_sweep, run_sweep

GPU_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)], env={"COLUMNS": "80"})


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_sweep_command_runs_the_grid_as_tune_trials_then_resumes_a_finished_one(
        ray_cluster, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: it\noutput: {tmp_path}\n"
                    f"base: {{engine: sim, system: {GPU_SYSTEM}, mode: PerformanceOnly, "
                    "scenario: Offline, engines: 2, duration: 0.5, target_qps: 4000}\n"
                    "grid: {batch_size: [16, 32]}\n")
    result = cli("sweep", spec, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["varied"] == ["batch_size"] and not doc["interrupted"]
    trials = doc["trials"]
    assert [t["params"]["batch_size"] for t in trials] == [16, 32]
    assert [t["status"] for t in trials] == ["ok", "ok"], trials
    experiment = tmp_path / "it"
    assert (experiment / "tuner.pkl").is_file()  # Tune's experiment, restorable
    for t in trials:
        assert t["attempts"] == 1 and ";" not in t["node_id"]  # one node per trial
        assert t["metric"] > 0 and t["valid"] in (True, False)
        run = Path(t["directory"])
        assert run.is_relative_to(experiment) and (run / "mlperf_log_summary.txt").is_file()
        trial_dir = experiment / run.relative_to(experiment).parts[0]
        assert (trial_dir / "result.json").is_file()  # Tune's own record of the trial
        assert t["setup_s"] > 0 and t["test_s"] > 0.5
    rows = csv_rows(experiment / CSV_NAME)
    assert sorted(r["trial"] for r in rows) == sorted(t["trial"] for t in trials)

    again = cli("sweep", spec)  # everything finished: restored, nothing runs
    assert again.exit_code == 0, again.output
    assert "resuming: 2 trials finished before" in again.output
    assert "…" not in again.output and max(map(len, again.output.splitlines())) <= 80
    assert again.output.count("[1/2") == 0  # no trial ran again
    assert csv_rows(experiment / CSV_NAME) == rows


def test_an_interrupted_sweep_resumes_with_only_the_unfinished_trials(ray_cluster, tmp_path):
    spec = SweepSpec.model_validate({
        "name": "stop", "base": {"engine": "null", "system": "cpu", "engines": 1,
                                 "scenario": "Offline", "duration": 0.5},
        "grid": {"batch_size": [8, 16, 32]}})

    def stop_after_first(event, trial):
        if event == "complete":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: Tune saves the experiment, stops

    first = run_sweep(plan_sweep(spec, tmp_path / "stop"), parallel=1,
                      on_event=stop_after_first)
    assert first.interrupted
    done = [t for t in first.trials if t.status == "ok"]
    assert len(done) == 1
    done_dir = Path(done[0].row["directory"])
    log = (done_dir / "mlperf_log_detail.txt").read_bytes()  # timestamped: a rerun differs

    sweep = plan_sweep(spec, tmp_path / "stop")
    assert sweep.resume and sweep.restored == 1
    started = []
    second = run_sweep(sweep, parallel=1,
                       on_event=lambda e, t: started.append(t.index) if e == "start" else None)
    assert not second.interrupted and [t.status for t in second.trials] == ["ok"] * 3
    assert done[0].index not in started and sorted(started) == sorted(
        t.index for t in second.trials if t.index != done[0].index)
    assert (done_dir / "mlperf_log_detail.txt").read_bytes() == log
    assert not (done_dir.parent.parent / "history").exists()  # run_1 never replaced
    rows = csv_rows(tmp_path / "stop" / CSV_NAME)
    assert len(rows) == 3 and len({r["trial"] for r in rows}) == 3
    assert {r["index"] for r in rows} == {"1", "2", "3"}


def test_a_run_that_fails_for_raybench_is_reported_with_its_error_not_retried(
        ray_cluster, resnet50_standin, tmp_path):
    root = resnet50_standin.data_dir.parents[1]  # the code root: build/ and data_maps/
    shutil.copytree(root, tmp_path / "standin")
    data = tmp_path / "standin" / resnet50_standin.data_dir.relative_to(root)
    victim = sorted(data.rglob("*.npy"))[0]
    victim.write_bytes(victim.read_bytes()[:64])  # a truncated sample
    spec = SweepSpec.model_validate({
        "name": "bug", "retries": 2,
        "base": {"engine": "onnxruntime", "system": "cpu", "engines": 1, "threads": 1,
                 "mode": "PerformanceOnly", "duration": 0.5,
                 "model": str(resnet50_standin.model), "data_dir": str(data)},
        "grid": {"batch_size": [4]}})
    events = []
    result = run_sweep(plan_sweep(spec, tmp_path / "bug"),
                       on_event=lambda e, t: events.append(e))
    (trial,) = result.trials
    assert trial.status == "error" and trial.row["attempts"] == 1, trial.row
    assert trial.row["error"] and "\n" not in trial.row["error"]
    assert "recover" not in events and events.count("start") == 1


def test_peak_command_lists_every_probe_and_the_confirming_run_as_json(ray_cluster, tmp_path):
    result = cli("peak", "--engine", "null", "--system", "cpu", "--engines", "1",
                 "--duration", "0.5", "--start-qps", "50", "--rounds", "2", "--parallel", "1",
                 "--tolerance", "0.5", "--confirm-duration", "0.5", "--output", tmp_path,
                 "--json")
    doc = json.loads(result.stdout)
    probes = doc["probes"]
    search = [p for p in probes if p["probe"] == "search"]
    confirm = [p for p in probes if p["probe"] == "confirm"]
    assert len(search) == doc["rounds"] == 2 and [p["target_qps"] for p in search][0] == 50
    assert all(p["status"] == "ok" and p["metric"] > 0 for p in probes), probes
    if doc["peak_qps"] is None:
        assert result.exit_code == 1 and not confirm
    else:
        assert result.exit_code == 0 and confirm
        assert confirm[0]["target_qps"] == doc["peak_qps"]
        assert doc["confirmed"]["target_qps"] == confirm[-1]["target_qps"]
    rows = csv_rows(Path(doc["csv"]))
    assert [r["probe"] for r in rows] == [p["probe"] for p in probes]
    assert Path(doc["directory"], "tuner.pkl").is_file()
