"""Compliance tests on real LoadGen runs of a small in-process SUT (tests/loadgen_bare.py).

Each audit test's settings must reach LoadGen (read back from mlperf_log_detail.txt), and
TEST04/TEST05 verification must pass an honest SUT and fail one made to fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raybench.results.loadgen_log import DETAIL, read_detail
from raybench.run.layout import VERIFY_PERFORMANCE, ScenarioRuns
from raybench.submission.verify import (PASS, audit_mismatches, verify_compliance,
                                        verify_performance, verify_same_sample)
from tests.loadgen_bare import SAMPLE_US, bare_run, sut_settings

def settings(scenario="Offline", benchmark="resnet50"):
    return sut_settings(scenario, benchmark)


@pytest.mark.parametrize("test,expected", [
    ("TEST01", {"effective_accuracy_log_rng_seed": 720381539243781796,
                "effective_accuracy_log_sampling_target": 1024}),  # ssd-mobilenet's
    ("TEST04-A", {"effective_performance_issue_unique": True,
                  "effective_performance_issue_same": False}),
    ("TEST04-B", {"effective_performance_issue_unique": False,
                  "effective_performance_issue_same": True,
                  "effective_performance_issue_same_index": 3}),
    # LoadGen >= 2 ignores seeds in audit.config: they reach it through the TestSettings
    ("TEST05", {"effective_qsl_rng_seed": 313588358309856706,
                "effective_sample_index_rng_seed": 471397156132239067,
                "effective_schedule_rng_seed": 413914573387865862}),
])
def test_each_audit_tests_settings_reach_loadgen(tmp_path, test, expected):
    run = bare_run(tmp_path / test, settings(benchmark="ssd-mobilenet"), test)
    assert "*.*.mode = 2" in (run / "audit.config").read_text()
    detail = read_detail(run / DETAIL)
    assert detail.get("effective_test_mode") == "PerformanceOnly"
    for key, value in expected.items():
        assert detail.get(key) == value, key
    assert any("Found Audit Config file" in w for w in detail.warnings)
    assert audit_mismatches(run, test, "ssd-mobilenet") == []


def test_a_run_without_the_audit_settings_is_named(tmp_path):
    run = bare_run(tmp_path / "plain", settings())
    problems = audit_mismatches(run, "TEST05", "resnet50")
    assert problems[0] == "LoadGen found no audit.config"
    assert "effective_qsl_rng_seed = 7322528924094909334, expected 313588358309856706" in problems
    verdict = verify_performance(run, run, "TEST05", "resnet50")
    assert not verdict.passed and "settings did not reach LoadGen" in verdict.lines[-1]


def test_test05_passes_the_same_sut_and_fails_a_slower_one(tmp_path):
    reference = bare_run(tmp_path / "reference", settings())
    same = bare_run(tmp_path / "same", settings(), "TEST05")
    slower = bare_run(tmp_path / "slower", settings(), "TEST05", sample_us=SAMPLE_US * 1.25)
    ok = verify_performance(reference, same, "TEST05", "resnet50")
    assert ok.passed and ok.lines[0] == "Verifying performance." and ok.lines[-1] == PASS
    assert ok.lines[1].startswith("reference score = ") and ok.lines[2].startswith("test score = ")
    bad = verify_performance(reference, slower, "TEST05", "resnet50")
    assert not bad.passed and bad.lines[-1] == "TEST FAIL: Test score invalid"
    assert PASS not in bad.text  # what the submission checker looks for


def test_test04_passes_an_honest_sut(tmp_path):
    a = bare_run(tmp_path / "a", settings(), "TEST04-A")
    b = bare_run(tmp_path / "b", settings(), "TEST04-B")
    verdict = verify_same_sample(a, b, "resnet50")
    assert verdict.passed and verdict.lines[1].startswith("TEST04-A score = "), verdict.text


@pytest.mark.parametrize("scenario,sample_us", [("Offline", SAMPLE_US), ("SingleStream", 10_000)])
def test_test04_fails_a_sut_that_caches_a_repeated_sample(tmp_path, scenario, sample_us):
    s = sut_settings(scenario, sample_us=sample_us)  # SingleStream compares p90 latencies
    a = bare_run(tmp_path / "a", s, "TEST04-A", sample_us=sample_us, cache=True)
    b = bare_run(tmp_path / "b", s, "TEST04-B", sample_us=sample_us, cache=True)
    verdict = verify_same_sample(a, b, "resnet50")
    assert not verdict.passed and "TEST04-B is faster" in verdict.lines[-1], verdict.text


def test_test04_passes_when_the_repeated_sample_is_slower(tmp_path):
    s = settings("Offline")
    a = bare_run(tmp_path / "a", s, "TEST04-A")
    b = bare_run(tmp_path / "b", s, "TEST04-B", sample_us=SAMPLE_US * 2)
    verdict = verify_same_sample(a, b, "resnet50")
    assert verdict.passed and verdict.lines[-1] == "Note: TEST04-B is significantly slower than TEST04-A"


def test_verify_compliance_writes_the_files_where_the_tree_wants_them(tmp_path):
    runs = ScenarioRuns.at(tmp_path, "cpu", "resnet50", "Offline")
    s = settings()
    bare_run(runs.performance, s)
    for test in ("TEST04-A", "TEST04-B", "TEST05"):
        bare_run(runs.compliance_run(test), s, test)
    verdicts = verify_compliance(runs)
    assert sorted((v.test, v.file) for v in verdicts) == [
        ("TEST04-A", VERIFY_PERFORMANCE), ("TEST05", VERIFY_PERFORMANCE)]
    assert all(v.passed for v in verdicts), [v.text for v in verdicts]
    assert (runs.compliance("TEST05") / VERIFY_PERFORMANCE).read_text().endswith(PASS + "\n")
    assert not (runs.compliance("TEST04-B") / VERIFY_PERFORMANCE).exists()
    assert not (runs.compliance("TEST01") / "verify_accuracy.txt").exists()  # no TEST01 run


def test_an_unreadable_run_fails_its_test_with_the_reason(tmp_path):
    runs = ScenarioRuns.at(tmp_path, "cpu", "resnet50", "Offline")
    bare_run(runs.performance, settings())
    runs.compliance_run("TEST05").mkdir(parents=True)  # a run that left no logs
    (verdict,) = verify_compliance(runs)
    assert not verdict.passed and "detail log missing" in verdict.lines[-1]
    assert Path(runs.compliance("TEST05") / VERIFY_PERFORMANCE).is_file()
