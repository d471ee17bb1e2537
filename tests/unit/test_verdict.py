"""Headline metrics and INVALID explanations from real LoadGen 6.x logs (no Ray)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from raybench.errors import DataError
from raybench.results.verdict import Headline, explain, loadgen_advice, measured_interval

DATA = Path(__file__).parent / "data" / "loadgen"


def test_server_headline_is_scheduled_and_invalid_names_the_bound():
    v = explain(DATA / "server_invalid")
    assert v.valid is False
    assert v.headline == Headline("scheduled throughput", 3008.47, "samples/s")
    assert str(v.headline) == "scheduled throughput 3,008.5 samples/s"
    assert v.problems == ["p99 latency 30.9 ms > 15 ms bound", "early stopping not met"]
    assert v.bound_ms == 15 and v.target_qps == 3000
    assert v.advice[0] == "Reduce target QPS to improve latency."
    assert ("Would need to run at least 31652 more queries, with the run being successful "
            "if every additional query were under latency.") in v.advice
    assert "Run unsuccessful." not in v.advice


def test_offline_too_short_says_how_long_it_ran():
    v = explain(DATA / "offline_short")
    assert str(v.headline) == "throughput 54,791.3 samples/s"
    assert v.problems == ["ran 0.32 s < 2 s minimum duration"]
    assert v.advice == ["Increase expected QPS so the loadgen pre-generates a larger "
                        "(coalesced) query."]


def test_single_stream_headline_is_p90_in_ms_and_valid_has_no_advice():
    v = explain(DATA / "singlestream")
    assert v.valid is True and v.problems == [] and v.advice == []
    assert str(v.headline) == "p90 latency 4.86 ms" and v.headline.compact() == "4.86 ms"


def test_multistream_is_held_against_the_v1_interval():
    v = explain(DATA / "multistream")
    assert str(v.headline) == "p99 latency 107 ms"
    assert v.notes == ["v1.0 interval 50 ms at 3520 samples/query not met: p99 107 ms"]
    assert v.bound_ms == 50
    assert v.advice == ["Only processed 21 queries.",
                        "Need to process at least 662 queries for early stopping."]


def test_without_a_detail_log_there_is_no_verdict(tmp_path):
    shutil.copy(DATA / "offline_short" / "mlperf_log_summary.txt", tmp_path)
    with pytest.raises(DataError):
        explain(tmp_path)


def test_measured_interval_is_utc_seconds():
    begin, end = measured_interval({"power_begin": "11-29-2026 00:26:43.973",
                                    "power_end": "11-29-2026 00:26:44.294"})
    assert end - begin == pytest.approx(0.321)
    assert measured_interval({}) is None


def test_advice_is_one_line_per_bullet():
    fields = {"result_invalid_reason": "Reduce target QPS to improve latency. ",
              "early_stopping_result": " * Run unsuccessful.  * Processed 6018 queries.  "
                                       "* Would need to run at least 31652 more queries,  "
                                       "with the run being successful"}
    assert loadgen_advice(fields) == [
        "Reduce target QPS to improve latency.", "Processed 6018 queries.",
        "Would need to run at least 31652 more queries, with the run being successful"]
    assert loadgen_advice({}) == []
