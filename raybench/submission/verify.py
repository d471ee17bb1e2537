"""Compliance verification from LoadGen's logs on disk: TEST01, TEST04 and TEST05.

Writes ``verify_performance.txt`` and ``verify_accuracy.txt`` in the official scripts'
format (the submission checker looks for ``TEST PASS``). Differences from the v1.0 scripts,
which read LoadGen 1.0's summary:

* Scores come from ``mlperf_log_detail.txt``: Offline samples per second, Server scheduled
  samples per second (as in v1.0), SingleStream p90 latency, and for MultiStream the p99
  per-query latency of LoadGen >= 2 (v1.0 compared samples per query); latencies are
  lower-is-better, so "slower" in TEST04 means a larger latency.
* Every compliance run is first checked to have run with its test's settings (the
  ``effective_*`` values of the detail log) and to have found its audit.config.
* TEST01 compares each sampled response's whole data (v1.0's script compared its first
  byte), fails when no response was sampled, and when data differ measures the accuracy of
  the sampled responses and of the same samples in the accuracy run with the benchmark's
  own metric (the official "Part III"): the compliance accuracy must reach the target
  fraction (99 % or 99.9 %) of the baseline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from raybench.config.names import accuracy_target_of, model_of
from raybench.errors import DataError, RaybenchError
from raybench.results.loadgen_log import ACCURACY_LOG, DETAIL, read_detail, read_accuracy_log
from raybench.rules import load_rules
from raybench.rules.audit import audit_settings
from raybench.rules.submission import SubmissionRules, load_submission_rules
from raybench.run.layout import (BASELINE_ACCURACY, COMPLIANCE_ACCURACY, VERIFY_ACCURACY,
                                 VERIFY_PERFORMANCE, ScenarioRuns)
from raybench.run.record import RunRecord

log = logging.getLogger(__name__)

PASS = "TEST PASS"
ACCURACY_CHECK_PASS = "ACCURACY CHECK PASS"
FOUND_AUDIT_CONFIG = "Found Audit Config file"
DATA_DIFFER = "Sampled responses differ from the accuracy run"

# Detail-log key of each scenario's score, and whether lower is better.
SCORES = {
    "Offline": ("result_samples_per_second", False),
    "Server": ("result_scheduled_samples_per_sec", False),
    "SingleStream": ("result_90.00_percentile_latency_ns", True),
    "MultiStream": ("result_99.00_percentile_per_query_latency_ns", True),
}


@dataclass
class Score:
    """A LoadGen test's score for comparison."""

    scenario: str
    value: float
    lower_is_better: bool
    valid: bool


@dataclass
class Verdict:
    """The outcome of one verification and the files it writes."""

    test: str
    file: str  # verify_performance.txt or verify_accuracy.txt
    passed: bool
    lines: list[str]
    extra: dict[str, str] = field(default_factory=dict)  # accuracy/<name> -> text
    no_outputs: bool = False  # cannot be verified: the run's engine produces no outputs

    @property
    def text(self) -> str:
        """The file's text."""
        return "\n".join(self.lines) + "\n"


def run_score(run_dir: Path) -> Score:
    """The score of the LoadGen test in ``run_dir``.

    Raises:
        DataError: No detail log, or no score in it.
    """
    detail = read_detail(Path(run_dir) / DETAIL)
    scenario = str(detail.get("effective_scenario", ""))
    if scenario not in SCORES:
        raise DataError(f"{run_dir / DETAIL}: no effective_scenario")
    key, lower = SCORES[scenario]
    if detail.get(key) is None:
        raise DataError(f"{run_dir / DETAIL}: no {key}")
    return Score(scenario, float(detail.get(key)), lower, detail.get("result_validity") == "VALID")


def audit_mismatches(run_dir: Path, test: str, benchmark: str,
                     rules: Optional[SubmissionRules] = None) -> list[str]:
    """The settings of ``test`` that did not reach LoadGen in ``run_dir`` (empty: all did).

    Reads the ``effective_*`` values and the audit.config warning of the detail log.
    """
    detail = read_detail(Path(run_dir) / DETAIL)
    scenario = str(detail.get("effective_scenario", ""))
    problems = []
    if not any(FOUND_AUDIT_CONFIG in w for w in detail.warnings):
        problems.append("LoadGen found no audit.config")
    for attr, want in audit_settings(test, benchmark, scenario, rules).items():
        key = "effective_test_mode" if attr == "mode" else f"effective_{attr}"
        got = detail.get(key)
        if got != want:
            problems.append(f"{key} = {got}, expected {want}")
    return problems


def _band(reference: Score, rules: SubmissionRules, threshold: float) -> float:
    relaxed = rules.audit.single_stream_relaxed
    if reference.scenario == "SingleStream" and reference.value <= relaxed.max_latency_ns:
        return relaxed.threshold
    return threshold


def _within(reference: float, test: float, band: float) -> bool:
    return reference * (1 - band) < test < reference * (1 + band)


def verify_performance(reference_dir: Path, test_dir: Path, test: str, benchmark: str,
                       rules: Optional[SubmissionRules] = None) -> Verdict:
    """TEST01/TEST05 performance: the audit run's score within the test's band of the
    submission run's (both VALID)."""
    rules = rules or load_submission_rules()
    lines = ["Verifying performance."]
    problems = audit_mismatches(test_dir, test, benchmark, rules)
    ref, got = run_score(reference_dir), run_score(test_dir)
    band = _band(ref, rules, rules.test(test).threshold)
    lines += [f"reference score = {ref.value:g}", f"test score = {got.value:g}",
              f"allowed difference = {band:.0%}"]
    if problems:
        lines.append(f"TEST FAIL: {test}'s settings did not reach LoadGen: " + "; ".join(problems))
    elif ref.scenario != got.scenario:
        lines.append(f"TEST FAIL: Test and reference scenarios do not match ({got.scenario}, {ref.scenario})")
    elif not ref.valid:
        lines.append("TEST FAIL: Reference results are invalid")
    elif not got.valid:
        lines.append("TEST FAIL: Test results are invalid")
    elif _within(ref.value, got.value, band):
        lines.append(PASS)
    else:
        lines.append("TEST FAIL: Test score invalid")
    return Verdict(test, VERIFY_PERFORMANCE, lines[-1] == PASS, lines)


def verify_same_sample(a_dir: Path, b_dir: Path, benchmark: str,
                       rules: Optional[SubmissionRules] = None) -> Verdict:
    """TEST04: issuing the same sample (B) is within the band of unique samples (A), or slower."""
    rules = rules or load_submission_rules()
    lines = ["Verifying performance."]
    problems = [f"TEST04-A: {p}" for p in audit_mismatches(a_dir, "TEST04-A", benchmark, rules)]
    problems += [f"TEST04-B: {p}" for p in audit_mismatches(b_dir, "TEST04-B", benchmark, rules)]
    a, b = run_score(a_dir), run_score(b_dir)
    band = _band(a, rules, rules.test("TEST04-A").threshold)
    lines += [f"TEST04-A score = {a.value:g}", f"TEST04-B score = {b.value:g}",
              f"allowed difference = {band:.0%}"]
    slower = b.value > a.value if a.lower_is_better else b.value < a.value
    if problems:
        lines.append("TEST FAIL: Invalid test settings: " + "; ".join(problems))
    elif a.scenario != b.scenario:
        lines.append(f"TEST FAIL: Test and reference scenarios do not match ({b.scenario}, {a.scenario})")
    elif _within(a.value, b.value, band):
        lines.append(PASS)
    elif slower:
        lines += [PASS, "Note: TEST04-B is significantly slower than TEST04-A"]
    else:
        lines.append("TEST FAIL: Test score invalid (TEST04-B is faster than TEST04-A: "
                     "a repeated sample must not be cheaper)")
    return Verdict("TEST04-A", VERIFY_PERFORMANCE, PASS in lines, lines)


def _run_data_dir(run_dir: Path) -> Optional[Path]:
    record = RunRecord.find(run_dir)
    return Path(record.data_dir) if record and record.data_dir else None


def verify_accuracy(accuracy_dir: Path, test_dir: Path, benchmark: str,
                    data_dir: Optional[Path] = None,
                    rules: Optional[SubmissionRules] = None) -> Verdict:
    """TEST01 accuracy: each sampled response equals the accuracy run's for its sample.

    Args:
        accuracy_dir: The accuracy run (its ``mlperf_log_accuracy.json``).
        test_dir: The TEST01 run.
        benchmark: Benchmark id.
        data_dir: The dataset, for the accuracy check when data differ (default: the one
            recorded in the accuracy run's raybench_settings.json).
    """
    lines = ["Verifying accuracy."]
    problems = audit_mismatches(test_dir, "TEST01", benchmark, rules)
    if problems:
        lines.append("TEST FAIL: TEST01's settings did not reach LoadGen: " + "; ".join(problems))
        return Verdict("TEST01", VERIFY_ACCURACY, False, lines)
    reference_log = Path(accuracy_dir) / ACCURACY_LOG
    if not reference_log.is_file():
        lines.append(f"TEST FAIL: no accuracy run to compare with (its {ACCURACY_LOG} is "
                     "missing; engines without outputs, such as sim, make none)")
        return Verdict("TEST01", VERIFY_ACCURACY, False, lines)
    reference = read_accuracy_log(reference_log)
    sampled = read_accuracy_log(Path(test_dir) / ACCURACY_LOG)

    by_index: dict[int, str] = {}
    duplicates = reference_mismatch = matched = mismatched = missing = 0
    for entry in reference:
        idx = int(entry["qsl_idx"])
        if idx in by_index:
            duplicates += 1
            reference_mismatch += by_index[idx] != entry["data"]
        else:
            by_index[idx] = entry["data"]
    for entry in sampled:
        idx = int(entry["qsl_idx"])
        if idx not in by_index:
            missing += 1
            continue
        matched += 1
        mismatched += entry["data"] != by_index[idx]
    lines += [f"num_acc_log_entries = {len(reference)}",
              f"num_acc_log_duplicate_keys = {duplicates}",
              f"num_acc_log_data_mismatch = {reference_mismatch}",
              f"num_perf_log_entries = {len(sampled)}",
              f"num_perf_log_qsl_idx_match = {matched}",
              f"num_perf_log_data_mismatch = {mismatched}",
              f"num_missing_qsl_idxs = {missing}"]
    if not sampled:
        lines.append("TEST FAIL: no response was sampled into the accuracy log")
        return Verdict("TEST01", VERIFY_ACCURACY, False, lines)
    if not matched:
        lines.append("TEST FAIL: no sampled response is of a sample of the accuracy run")
        return Verdict("TEST01", VERIFY_ACCURACY, False, lines)
    if not any(e["data"] for e in sampled):
        lines.append("TEST FAIL: the sampled responses carry no data (the engine returned no "
                     "outputs in performance mode)")
        return Verdict("TEST01", VERIFY_ACCURACY, False, lines)
    if mismatched == 0:
        lines.append(PASS)
        return Verdict("TEST01", VERIFY_ACCURACY, True, lines)
    lines.append("TEST FAIL")
    passed, extra = _accuracy_check(lines, reference, sampled, benchmark,
                                    data_dir or _run_data_dir(accuracy_dir))
    return Verdict("TEST01", VERIFY_ACCURACY, passed, lines, extra)


def _accuracy_check(lines: list[str], reference: list[dict], sampled: list[dict],
                    benchmark: str, data_dir: Optional[Path]) -> tuple[bool, dict[str, str]]:
    """The official Part III: the sampled responses' accuracy against the same samples'
    accuracy in the accuracy run (appends its lines; returns pass and the two files)."""
    from raybench.benchmarks import get_benchmark

    lines.append(f"{DATA_DIFFER}: checking their accuracy.")
    if data_dir is None:
        lines.append("ACCURACY CHECK FAIL: no dataset to measure accuracy with "
                     "(the accuracy run records none; pass the data directory)")
        return False, {}
    indices = {int(e["qsl_idx"]) for e in sampled}
    baseline_entries = [e for e in reference if int(e["qsl_idx"]) in indices]
    implementation = get_benchmark(benchmark)
    rule = load_rules().model(model_of(benchmark))
    try:
        compliance = implementation.accuracy(sampled, Path(data_dir)).value
        baseline = implementation.accuracy(baseline_entries, Path(data_dir)).value
    except RaybenchError as exc:
        lines.append(f"ACCURACY CHECK FAIL: {exc}")
        return False, {}
    fraction = accuracy_target_of(benchmark)
    needed = baseline * fraction
    passed = compliance >= needed
    lines += [f"compliance accuracy = {compliance:.4f} ({rule.metric}, {len(indices)} samples)",
              f"baseline accuracy = {baseline:.4f} (the same samples in the accuracy run)",
              f"required = {needed:.4f} ({fraction:.1%} of baseline)",
              ACCURACY_CHECK_PASS if passed else "ACCURACY CHECK FAIL"]
    extra = {BASELINE_ACCURACY: f"{rule.metric} = {baseline:.4f} ({len(indices)} samples)\n",
             COMPLIANCE_ACCURACY: f"{rule.metric} = {compliance:.4f} ({len(indices)} samples)\n"}
    return passed, extra


def accuracy_passed(text: str) -> bool:
    """Whether a verify_accuracy.txt passes: data equal, or their accuracy checked."""
    return PASS in text or ACCURACY_CHECK_PASS in text


def verify_compliance(runs: ScenarioRuns, data_dir: Optional[Path] = None,
                      rules: Optional[SubmissionRules] = None) -> list[Verdict]:
    """Verify every compliance test of one benchmark and scenario that has a run, and write
    the verification files into the tests' directories.

    A test whose run is missing is skipped (the checker names it); a run that cannot be
    read fails its test with the reason in the file.
    """
    rules = rules or load_submission_rules()
    verdicts: list[Verdict] = []
    for test in rules.applicable_tests(runs.benchmark, runs.scenario):
        spec = rules.test(test)
        run = runs.compliance_run(test)
        if spec.verify == "by-pair" or not run.is_dir():
            continue
        if spec.verify == "same-sample":
            pair = runs.compliance_run(spec.paired_with)
            checks = [(VERIFY_PERFORMANCE, lambda: verify_same_sample(run, pair, runs.benchmark, rules)
                       if pair.is_dir() else _failed(test, VERIFY_PERFORMANCE,
                                                     f"{spec.paired_with} run missing ({pair})"))]
        else:
            checks = [(VERIFY_PERFORMANCE, lambda: verify_performance(
                runs.performance, run, test, runs.benchmark, rules))]
            if spec.verify == "accuracy-and-performance":
                checks.append((VERIFY_ACCURACY, lambda: _without_outputs(test, run) or
                               verify_accuracy(runs.accuracy, run, runs.benchmark, data_dir, rules)))
        for name, check in checks:
            try:
                verdicts.append(check())
            except DataError as exc:  # a log that cannot be read fails the test, with why
                verdicts.append(_failed(test, name, str(exc)))
    for verdict in verdicts:
        write_verdict(runs.compliance(verdict.test), verdict)
    return verdicts


def _without_outputs(test: str, run: Path) -> Optional[Verdict]:
    """The verdict of an accuracy check on a run whose engine produces no outputs, or None."""
    record = RunRecord.find(run)
    if record is None or record.has_outputs:
        return None
    return Verdict(test, VERIFY_ACCURACY, False, [
        "Verifying accuracy.",
        f"TEST FAIL: not verifiable: the {record.engine} engine produces no outputs, so there "
        "is no accuracy run and the sampled responses carry no data (performance only)"],
        no_outputs=True)


def _failed(test: str, file: str, why: str) -> Verdict:
    title = "Verifying accuracy." if file == VERIFY_ACCURACY else "Verifying performance."
    return Verdict(test, file, False, [title, f"TEST FAIL: {why}"])


def write_verdict(directory: Path, verdict: Verdict) -> None:
    """Write a verdict's file (and its accuracy files) into a compliance test directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / verdict.file).write_text(verdict.text)
    if verdict.file == VERIFY_ACCURACY:  # no stale Part III files from an earlier verification
        for name in (BASELINE_ACCURACY, COMPLIANCE_ACCURACY):
            (directory / "accuracy" / name).unlink(missing_ok=True)
    for name, text in verdict.extra.items():
        (directory / "accuracy").mkdir(exist_ok=True)
        (directory / "accuracy" / name).write_text(text)
    log.info("%s: %s %s", directory, verdict.file, "PASS" if verdict.passed else "FAIL")
