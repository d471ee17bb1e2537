"""`raybench report`: rows explained from real LoadGen logs, plots, 80-column table, JSON
(no Ray)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raybench.actors.loadgen import LoadGenOutcome
from raybench.actors.telemetry import TIMELINE, write_timeline
from raybench.config.models import HarnessSettings
from raybench.experiments.report import collect_runs, qps_points, short_labels, write_report
from raybench.experiments.sweep import COLUMNS, write_rows
from raybench.run import RunRequest
from raybench.results.accuracy import AccuracyResult, Score
from raybench.run.record import RunRecord

DATA = Path(__file__).parent / "data" / "loadgen"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def make_test(root: Path, scenario: str, logs: str, **request) -> Path:
    """A performance test directory holding real LoadGen logs and raybench's record."""
    d = root / SYSTEM / "resnet50" / scenario / "performance" / "run_1"
    d.mkdir(parents=True)
    for f in (DATA / logs).iterdir():
        shutil.copy(f, d)
    if "target_qps" in request:  # the target LoadGen ran with, as its detail log says
        detail = d / "mlperf_log_detail.txt"
        detail.write_text(detail.read_text().replace(
            '"key": "effective_target_qps", "value": 3000',
            f'"key": "effective_target_qps", "value": {request["target_qps"]}'))
    RunRecord(request=RunRequest(scenario=scenario, system=SYSTEM, **request), system=SYSTEM,
              engines=1, harness=HarnessSettings(batch_size=8), tuned=[], rules_round="v1.0",
              test_settings={"scenario": scenario, "mode": "PerformanceOnly"}, overridden=[],
              submittable=True, harness_outcome=LoadGenOutcome(1.0, 8, 8, 0, 1, [8])).write(d)
    return d


@pytest.fixture
def results(tmp_path):
    server = make_test(tmp_path / "runs", "Server", "server_invalid", target_qps=3000)
    make_test(tmp_path / "runs", "Offline", "offline_short")
    start = 1795912000.0  # a timeline: 4 s at 1,000 samples/s, 0.1 s apart
    write_timeline(server / TIMELINE, [(start + i / 10, 100 * i, 100 * i, 5, 10)
                                       for i in range(40)])
    acc = tmp_path / "runs" / SYSTEM / "resnet50" / "Offline" / "accuracy"
    acc.mkdir(parents=True)
    score = Score(76.456, "accuracy=76.456%, good=38228, total=50000")
    AccuracyResult("resnet50", "top-1 accuracy (%)", score, 76.46, 0.99).write(acc)
    peak = tmp_path / "peak"
    for part, qps in (("probes/a", 2000), ("probes/b", 3000), ("confirm/probes/c", 2400)):
        make_test(peak / part, "Server", "server_invalid", target_qps=qps)
    write_rows(peak / "peak.csv", [{"trial": "a", "status": "ok"}], COLUMNS)
    (tmp_path / "x.partial").mkdir()
    (tmp_path / "x.partial" / "mlperf_log_summary.txt").write_text("junk")
    return tmp_path


def test_rows_carry_the_headline_and_the_reasons(results):
    rows = collect_runs(results / "runs")
    assert len(rows) == 3
    by = {(r.scenario, r.mode): r for r in rows}
    server = by[("Server", "PerformanceOnly")]
    assert server.system == SYSTEM and server.benchmark == "resnet50" and server.valid is False
    assert str(server.headline) == "scheduled throughput 3,008.5 samples/s"
    assert server.problems[0] == "p99 latency 30.9 ms > 15 ms bound"
    assert server.bound_ms == 15 and server.p99_ms == pytest.approx(30.85, abs=0.01)
    offline = by[("Offline", "PerformanceOnly")]
    assert offline.headline.unit == "samples/s" and offline.problems == [
        "ran 0.32 s < 2 s minimum duration"]
    acc = by[("Offline", "AccuracyOnly")]
    assert acc.accuracy == "top-1 accuracy (%): 76.4560 PASS" and acc.accuracy_passed is True
    assert acc.where(results / "runs") == ""


def test_qps_points_include_confirming_runs(results):
    points = qps_points(collect_runs(results / "peak"))
    assert sorted((p.target_qps, p.confirm) for p in points) == [
        (2000, False), (2400, True), (3000, False)]


def test_labels_name_what_differs(results):
    rows = [r for r in collect_runs(results / "peak")]
    assert sorted(short_labels(rows, results)) == ["qps=2000", "qps=2400", "qps=3000"]


def test_pngs_are_well_formed(results, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    _, pngs = write_report(results, tmp_path / "plots")
    names = {p.name for p in pngs}
    assert names == {"latency_percentiles.png", "peak_peak_qps_p99.png",
                     f"throughput_runs_{SYSTEM}_resnet50_Server.png"}
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        image = mpimg.imread(png)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500


def test_empty_directory_gives_no_rows_no_plots(tmp_path):
    rows, pngs = write_report(tmp_path)
    assert rows == [] and pngs == []


def _report(*args: str):
    from raybench.cli import app

    return CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "80"})


def test_cli_table_fits_80_columns_and_explains(results):
    out = _report(str(results), "--no-plots")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "…" not in out.output and max(len(line) for line in lines) <= 80
    assert "INVALID" in out.output and "PASS" in out.output and "3,008/s" in out.output
    assert any(line.startswith("#") and "p99 latency 30.9 ms > 15 ms bound" in line
               for line in lines)


def test_cli_wide_has_every_column(results):
    out = _report(str(results / "runs"), "--no-plots", "--wide")
    assert out.exit_code == 0 and "target QPS" in out.output and "performance/run_1" in out.output


def test_cli_json_parses(results):
    out = _report(str(results), "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert len(data["runs"]) == 6 and len(data["plots"]) == 3
    server = next(r for r in data["runs"] if r["relative"].startswith("runs/")
                  and r["scenario"] == "Server")
    assert server["headline"] == {"name": "scheduled throughput", "value": 3008.47,
                                  "unit": "samples/s"}
    assert server["valid"] is False and server["bound_ms"] == 15.0


def test_cli_errors_and_empty(tmp_path):
    assert _report(str(tmp_path / "nope")).exit_code == 2
    out = _report(str(tmp_path))
    assert out.exit_code == 0 and " ".join(out.output.split()) == (
        f"no LoadGen results under {tmp_path}")
