"""Parsing LoadGen summaries and writing accuracy.txt."""

from __future__ import annotations

import pytest

from raybench.errors import DataError
from raybench.results.accuracy import AccuracyResult
from raybench.results.loadgen_log import parse_summary, read_accuracy_log

SERVER = """================================================
MLPerf Results Summary
================================================
SUT name : PyFastSUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 100168.31
Result is : INVALID
  Performance constraints satisfied : NO
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
================================================
50.00 percentile latency (ns)   : 45149
99.00 percentile latency (ns)   : 661781
"""

SINGLE = """Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 1807417
Result is : VALID
  Min duration satisfied : Yes
"""


def test_server_summary(tmp_path):
    path = tmp_path / "mlperf_log_summary.txt"
    path.write_text(SERVER)
    s = parse_summary(path)
    assert (s.scenario, s.mode, s.valid) == ("Server", "PerformanceOnly", False)
    assert s.metric == pytest.approx(100168.31)
    assert s.invalid_reasons == ["Performance constraints satisfied", "Early stopping satisfied"]
    assert s.percentiles == {"50.00": 45149, "99.00": 661781}


def test_single_stream_metric_is_its_percentile_latency(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(SINGLE)
    s = parse_summary(path)
    assert s.valid is True and s.metric == 1807417
    assert s.metric_name == "90.0th percentile latency (ns)"


def test_missing_and_malformed_logs(tmp_path):
    with pytest.raises(DataError, match="summary missing"):
        parse_summary(tmp_path / "nope.txt")
    bad = tmp_path / "mlperf_log_accuracy.json"
    bad.write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_accuracy_log(bad)


@pytest.mark.parametrize("value,p99,p999", [(76.0, "PASS", "FAIL"), (76.4, "PASS", "PASS"),
                                            (75.6, "FAIL", "FAIL")])
def test_accuracy_txt_thresholds(tmp_path, value, p99, p999):
    result = AccuracyResult("resnet50", "top-1 accuracy (%)", value, 76.46, 0.99)
    text = result.write(tmp_path).read_text()
    assert f"99% of fp32 (75.6954): {p99}" in text
    assert f"99.9% of fp32 (76.3835): {p999}" in text
    assert result.passed == (p99 == "PASS")
