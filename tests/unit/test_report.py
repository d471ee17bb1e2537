"""`raybench report`: the run table and well-formed PNG plots (no Ray)."""

from __future__ import annotations


import pytest

from raybench.actors.loadgen import LoadGenOutcome
from raybench.config.models import HarnessSettings
from raybench.experiments.report import collect_runs, write_report
from raybench.experiments.sweep import COLUMNS, write_rows
from raybench.run import RunRequest
from raybench.run.record import RunRecord

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SUMMARY_TEXT = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : {scenario}
Mode     : PerformanceOnly
{metric_line}
Result is : {result}
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes

================================================
Additional Stats
================================================
50.00 percentile latency (ns)   : 2000000
90.00 percentile latency (ns)   : 3000000
95.00 percentile latency (ns)   : 3500000
97.00 percentile latency (ns)   : 3800000
99.00 percentile latency (ns)   : 4500000
99.90 percentile latency (ns)   : 6000000
"""


def make_test(root, scenario, result="VALID", metric=1234.5):
    d = root / "SYS" / "resnet50" / scenario / "performance" / "run_1"
    d.mkdir(parents=True)
    name = "Samples per second" if scenario == "Offline" else "Completed samples per second"
    (d / "mlperf_log_summary.txt").write_text(SUMMARY_TEXT.format(
        scenario=scenario, metric_line=f"{name} : {metric}", result=result))
    RunRecord(request=RunRequest(scenario=scenario), system="SYS", engines=1,
              harness=HarnessSettings(batch_size=8), tuned=[], rules_round="v1.0",
              test_settings={"scenario": scenario, "mode": "PerformanceOnly"}, overridden=[],
              submittable=True, harness_outcome=LoadGenOutcome(1.0, 8, 8, 0, 1, [8])).write(d)
    return d


@pytest.fixture
def results(tmp_path):
    make_test(tmp_path, "Offline")
    make_test(tmp_path, "Server", result="INVALID", metric=999.0)
    acc = tmp_path / "SYS" / "resnet50" / "Offline" / "accuracy"
    acc.mkdir(parents=True)
    (acc / "accuracy.txt").write_text("benchmark: resnet50\nacc: 76.4560\nfp32 reference: 76.46\n"
                                      "result (99% target): PASS\n")
    write_rows(tmp_path / "sweeps" / "s1" / "sweep.csv", [
        {"trial": str(i), "status": "ok", "metric": 100.0 * i, "p99_ms": 1.0 + i,
         "valid": i < 3} for i in range(1, 5)], COLUMNS)
    (tmp_path / "x.partial").mkdir()
    (tmp_path / "x.partial" / "mlperf_log_summary.txt").write_text("junk")
    return tmp_path


def test_table_has_every_test(results):
    rows = collect_runs(results)
    assert len(rows) == 3
    by_mode = {(r.scenario, r.mode): r for r in rows}
    off = by_mode[("Offline", "PerformanceOnly")]
    assert off.system == "SYS" and off.benchmark == "resnet50" and off.valid is True
    assert off.metric == 1234.5 and off.p99_ms == 4.5
    assert by_mode[("Server", "PerformanceOnly")].valid is False
    acc = next(r for r in rows if r.directory.name == "accuracy")
    assert acc.accuracy == "acc: 76.4560 PASS" and acc.mode == "AccuracyOnly"


def test_pngs_are_well_formed(results, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    _, pngs = write_report(results, tmp_path / "plots")
    assert {p.name for p in pngs} == {"latency_percentiles.png", "sweeps_s1_sweep_qps_p99.png"}
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        image = mpimg.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_empty_directory_gives_no_rows_no_plots(tmp_path):
    rows, pngs = write_report(tmp_path)
    assert rows == [] and pngs == []


def test_cli_report(results, tmp_path):
    from typer.testing import CliRunner

    from raybench.cli import app

    out = CliRunner().invoke(app, ["report", str(results), "--no-plots"])
    assert out.exit_code == 0, out.output
    assert "VALID" in out.output
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert bad.exit_code == 2
