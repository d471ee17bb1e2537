"""Sweep specs: validation, the grid as Tune's param space, trial layouts, the CSV, and
the `sweep` command's errors, dry run and tables at 80 columns (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raybench.cli import app
from raybench.errors import ConfigError
from raybench.experiments.sweep import (COLUMNS, Sweep, SweepSpec, TrialRow, expand, load_spec,
                                        param_space, plan_sweep, varied)
from raybench.experiments.trials import (local_resources, read_rows, result_row, systems_fit,
                                         trial_bundles, trial_resources, write_rows)

EXAMPLES = Path(__file__).resolve().parents[2] / "launch"
GPU_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def sweep_cli(*args, columns: int = 80):
    return CliRunner().invoke(app, ["sweep", *map(str, args)], env={"COLUMNS": str(columns)})


@pytest.mark.parametrize("name,count", [("sweep-example.yaml", 8), ("sweep-4nodes.yaml", 16)])
def test_example_specs_expand_to_their_cross_product(name, count):
    spec = load_spec(EXAMPLES / name)
    trials = expand(spec)
    assert len(trials) == count
    assert len({json.dumps(t, sort_keys=True) for t in trials}) == count
    assert all(t["engine"] == "sim" for t in trials)


def test_the_grid_is_tunes_param_space_over_the_varied_settings():
    from ray import tune

    spec = SweepSpec.model_validate({"base": {"engine": "sim", "batch_size": 4},
                                     "grid": {"batch_size": [8, 16], "scenario": ["server"]}})
    space = param_space(spec)
    assert space["batch_size"] == tune.grid_search([8, 16])  # the grid overrides the base
    assert space["scenario"] == "Server"  # one value: no grid axis; spelled as the table does
    assert space["engine"] == "sim"
    assert varied(spec) == ["batch_size"]


def test_duplicates_collapse_and_names_are_normalized():
    spec = SweepSpec.model_validate({"grid": {"batch_size": [8, 8], "scenario": ["offline",
                                                                                 "Offline"]}})
    assert expand(spec) == [{"batch_size": 8, "scenario": "Offline"}]


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = SweepSpec.model_validate({"base": {"data_dir": "data"}, "grid": {"batch_size": [1]}})
    assert expand(spec)[0]["data_dir"] == str(tmp_path / "data")


@pytest.mark.parametrize("text,fragment", [
    ("grid: {bogus: [1]}", "grid.bogus"),
    ("base: {batch_size: 0}\ngrid: {engines: [1]}", "base.batch_size"),
    ("grid: {batch_size: [0, 8]}", "grid.batch_size"),
    ("grid: {batch_size: []}", "grid.batch_size is empty"),
    ("grid: {}", "grid is empty"),
    ("base: {engine: null}\ngrid: {batch_size: [8]}", 'engine: "null"'),
    ("grid: {engine: [sim, null]}", 'engine: "null"'),
    ("base: {engine: sim}", "grid is empty"),
    ("name: ../elsewhere\ngrid: {batch_size: [8]}", "name"),
    ("colour: red", "colour"),
    ("grid: [1, 2", "not valid YAML"),
    ("- 1", "expected a mapping"),
])
def test_bad_specs_are_one_line_errors_with_exit_2(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    result = sweep_cli(path)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and fragment in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("make", [lambda p: p / "nope.yaml", lambda p: p])
def test_missing_or_directory_spec(tmp_path, make):
    result = sweep_cli(make(tmp_path))
    assert result.exit_code == 2 and result.output.startswith("Error: ")
    assert result.output.count("\n") == 1


def test_a_trial_that_cannot_run_fails_before_anything_runs(tmp_path):
    spec = SweepSpec.model_validate({"base": {"engine": "sim", "system": GPU_SYSTEM},
                                     "grid": {"engines": [4, 9]}})
    with pytest.raises(ConfigError, match=r"trial #2 \(engines=9\).*exceeds"):
        plan_sweep(spec, tmp_path / "out")


def test_trial_resources_are_the_runs_placement_layout():
    params = {"engine": "sim", "system": GPU_SYSTEM, "engines": 3}
    assert trial_bundles(params) == [{"GPU": 1.0}] * 3 + [{"CPU": 1.0}]
    pgf = trial_resources({**params, "probe": "search"})
    assert pgf.strategy == "STRICT_PACK" and pgf.head_bundle_is_empty
    assert pgf.bundles == [{"GPU": 1.0}] * 3 + [{"CPU": 1.0}]
    cpu = trial_bundles({"engine": "null", "system": "cpu", "engines": 2})
    assert cpu == [{"CPU": 1.0}] * 3


def test_systems_fit_counts_whole_systems_per_node():
    four = [{"GPU": 1.0}] * 4 + [{"CPU": 1.0}]
    nodes = [{"GPU": 8, "CPU": 4}, {"GPU": 8, "CPU": 1}, {"GPU": 3, "CPU": 8}]
    assert systems_fit(four, nodes) == 3
    assert systems_fit(four, [{"GPU": 16, "CPU": 0}]) == 0


def test_a_trial_no_node_can_hold_is_a_one_line_error():
    from raybench.experiments.trials import check_fits

    trials = [{"engine": "sim", "system": GPU_SYSTEM, "engines": e} for e in (4, 8)]
    check_fits(trials[:1], [{"GPU": 4, "CPU": 1}], str)
    with pytest.raises(ConfigError, match=r"^1 needs 8 GPU, 1 CPU on one node; .*most per "
                                          r"node: 4 GPU, 16 CPU\)$"):
        check_fits(trials, [{"GPU": 4, "CPU": 1}, {"GPU": 2, "CPU": 16}], str)


def test_a_local_ray_declares_the_simulated_systems_gpus_and_enough_cpus():
    sim = {"engine": "sim", "system": GPU_SYSTEM, "engines": 2}
    assert local_resources([sim]) == (8, 1)
    assert local_resources([{"engine": "null", "system": "cpu", "engines": 3}]) == (0, 4)


def test_rows_round_trip(tmp_path):
    path = tmp_path / "sweep.csv"
    row = result_row({"batch_size": 8, "probe": "search"},
                     {"status": "ok", "valid": True, "metric": 1.5, "directory": "results/x"},
                     "/exp/trial_1", None)
    assert row["directory"] == "/exp/trial_1/results/x" and "probe" not in row
    write_rows(path, [{"trial": "a", **row}], COLUMNS)
    rows = read_rows(path)
    assert rows["a"]["status"] == "ok" and rows["a"]["metric"] == "1.5"
    assert read_rows(tmp_path / "none.csv") == {}


def test_a_trial_tune_gave_up_on_is_failed_with_tunes_reason():
    row = result_row({"batch_size": 8}, {}, "/exp/t", "the actor's node was terminated")
    assert row["status"] == "failed" and "node" in row["error"]


def test_dry_run_lists_trials_and_json_parses(tmp_path):
    path = write(tmp_path, f"output: {tmp_path}\nbase: {{engine: sim, system: {GPU_SYSTEM}}}\n"
                           "grid: {batch_size: [8, 16], target_qps: [1000, 2000, 3000]}")
    result = sweep_cli(path, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [t["index"] for t in doc["trials"]] == list(range(1, 7))
    assert doc["varied"] == ["target_qps", "batch_size"] and doc["resume"] is False
    text = sweep_cli(path, "--dry-run")
    assert text.exit_code == 0 and "6 trials" in text.output
    assert "…" not in text.output and max(map(len, text.output.splitlines())) <= 80


def _sweep(rows: int = 3) -> Sweep:
    spec = SweepSpec.model_validate({
        "base": {"engine": "sim"},
        "grid": {"system": [GPU_SYSTEM, "DGX-A100_A100-SXM-80GBx8"],
                 "scenario": ["Offline", "Server"], "batch_size": [32, 64],
                 "batch_timeout_us": [1000, 4000], "target_qps": [12345.5, 2000]}})
    trials = [TrialRow(i + 1, p) for i, p in enumerate(expand(spec))][:rows]
    for i, t in enumerate(trials):
        t.row = {"trial": f"abcde_{i:05d}", "status": ["ok", "error", "failed"][i % 3],
                 "valid": i % 2 == 0, "metric_name": "Samples per second",
                 "metric": 1234567.891, "p99_ms": 12.3456, "wall_s": 101.2,
                 "setup_s": 3.2, "test_s": 98.0, "attempts": 2,
                 "node_id": "f4805894bc6c41a3420f6908716f21783381da62b0cf91",
                 "error": "engine actors failed to start: DataError x.npy: missing",
                 "directory": f"/exp/run_trial_abcde_{i:05d}_batch_size=32/results/" + "x" * 60}
    return Sweep(spec, Path("/exp"), trials)


@pytest.mark.parametrize("wide", [False, True])
def test_results_table_fits_80_columns_without_cutting_a_cell(wide):
    from rich.console import Console

    from raybench.cli.sweep import results_table

    sweep = _sweep()
    console = Console(width=80, record=True, force_terminal=False)
    console.print(results_table(sweep, sweep.names, wide))
    text = console.export_text()
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= 80
    for word in ("system", "scenario", "bs", "timeout", "qps", "samples/s", "p99", "wall"):
        assert word in text, word
    for number in ("1,234,568", "12345.5", "12.35", "101.2", "Offline"):  # never broken
        assert text.count(number) == 3, number
    assert ("f4805894" in text) == wide and ("abcde_00002" in text) == wide
