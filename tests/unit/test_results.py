"""LoadGen results read from mlperf_log_detail.txt, and accuracy.txt as the checker reads it."""

from __future__ import annotations

import array
import hashlib
import re

import pytest

from raybench.errors import DataError
from raybench.results.accuracy import AccuracyResult, Score, verdict_line
from raybench.results.loadgen_log import (DETAIL, SUMMARY, parse_summary, read_accuracy_log,
                                          read_detail)


def run_loadgen(out, scenario: str):
    """A real LoadGen test of a SUT that answers at once (no Ray), logs in ``out``."""
    import mlperf_loadgen as lg

    def issue(queries):
        responses, keep = [], []
        for q in queries:
            buf = array.array("B", b"\x01")
            keep.append(buf)
            responses.append(lg.QuerySampleResponse(q.id, *buf.buffer_info()))
        lg.QuerySamplesComplete(responses)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(16, 16, lambda s: None, lambda s: None)
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = 100
    settings.min_query_count = 8
    settings.server_target_qps = 200
    settings.offline_expected_qps = 200
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    log.enable_trace = False
    lg.StartTestWithLogSettings(sut, qsl, settings, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    return out


def summary_value(text: str, label: str) -> str:
    """A value of the human summary, for comparison with what the detail log gives."""
    return re.search(rf"^\s*{re.escape(label)}\s*:\s*(\S+)", text, re.M).group(1)


@pytest.mark.parametrize("scenario, metric_name", [
    ("SingleStream", "90.0th percentile latency (ns)"),
    ("MultiStream", "99.0th percentile latency (ns)"),
    ("Server", "Completed samples per second"),
    ("Offline", "Samples per second"),
])
def test_results_come_from_the_detail_log_and_agree_with_the_summary(tmp_path, scenario,
                                                                     metric_name):
    run_loadgen(tmp_path, scenario)
    text = (tmp_path / SUMMARY).read_text()
    s = parse_summary(tmp_path / SUMMARY)
    assert (s.scenario, s.mode) == (scenario, "PerformanceOnly")
    assert s.valid == (summary_value(text, "Result is") == "VALID")
    assert s.metric_name == metric_name
    assert s.metric == pytest.approx(float(summary_value(text, metric_name)), rel=1e-3)
    for name, ok in s.checks.items():
        assert summary_value(text, name) == ("Yes" if ok else "NO")
    assert "Min duration satisfied" in s.checks and "Early stopping satisfied" in s.checks
    assert s.percentiles["99.00"] == int(summary_value(text, "99.00 percentile latency (ns)"))
    assert s.fields["effective_scenario"] == scenario


def test_summary_without_its_detail_log_and_malformed_lines(tmp_path):
    (tmp_path / SUMMARY).write_text("Scenario : Offline\n")
    with pytest.raises(DataError, match="detail log missing"):
        parse_summary(tmp_path / SUMMARY)
    (tmp_path / DETAIL).write_text(':::MLLOG {"key": "effective_scenario", "value": "Offline"}\n'
                                   ':::MLLOG {"key": \n')
    with pytest.raises(DataError, match=r"mlperf_log_detail.txt:2: malformed :::MLLOG line"):
        parse_summary(tmp_path / SUMMARY)


def test_detail_log_first_value_wins_and_errors_are_counted(tmp_path):
    path = tmp_path / DETAIL
    path.write_text(
        ':::MLLOG {"key": "a", "value": 1, "metadata": {"is_error": false, "is_warning": true}}\n'
        'not a log line\n'
        ':::MLLOG {"key": "a", "value": 2, "metadata": {"is_error": true, "is_warning": false}}\n')
    detail = read_detail(path)
    assert detail.get("a") == 1 and detail.values() == {"a": 1}
    assert len(detail.errors) == 1 and len(detail.warnings) == 1


def test_malformed_accuracy_log(tmp_path):
    bad = tmp_path / "mlperf_log_accuracy.json"
    bad.write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_accuracy_log(bad)


@pytest.mark.parametrize("value,p99,p999", [(76.0, "PASS", "FAIL"), (76.4, "PASS", "PASS"),
                                            (75.6, "FAIL", "FAIL")])
def test_accuracy_txt_thresholds(tmp_path, value, p99, p999):
    result = AccuracyResult("resnet50", "top-1 accuracy (%)", Score(value, ""), 76.46, 0.99)
    text = result.write(tmp_path).read_text()
    assert f"99% of fp32 (75.6954): {p99}" in text
    assert f"99.9% of fp32 (76.3835): {p999}" in text
    assert result.passed == (p99 == "PASS")
    assert verdict_line(tmp_path / "accuracy.txt") == f"top-1 accuracy (%): {value:.4f} {p99}"


def test_accuracy_txt_starts_with_the_official_line_and_the_log_hash(tmp_path):
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text('[{"seq_id": 0, "qsl_idx": 0, "data": "00"}]')
    score = Score(50.0, "accuracy=50.000%, good=1, total=2", ("1 duplicate entries: ...",))
    result = AccuracyResult("resnet50", "top-1 accuracy (%)", score, 76.46, 0.99)
    assert result.value == 50.0 and not result.passed
    lines = result.write(tmp_path).read_text().splitlines()
    assert lines[0] == "accuracy=50.000%, good=1, total=2"
    assert lines[1] == f"hash={hashlib.sha256(log.read_bytes()).hexdigest()}"
    assert "note: 1 duplicate entries: ..." in lines
    assert sum(bool(re.match(r"^accuracy=([\d\.]+)", line)) for line in lines) == 1
