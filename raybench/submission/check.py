"""Checking a submission tree against the round's rules: every gap, named.

Walks ``<division>/<submitter>/results/<system>/<benchmark>/<scenario>`` as the official
submission checker does and reports, per scenario, each of:

* ``system``: the system JSON is missing, lacks fields, or disagrees with the tree;
* ``missing-scenario``: a scenario the system type requires for a submitted benchmark;
* ``missing-file``: a file or directory the tree must have;
* ``invalid-run``: LoadGen judged a performance run INVALID, or logged errors;
* ``overridden``: a run raybench made with overridden rules (``raybench_runs.json``);
* ``rules``: a run whose LoadGen settings break the round's rules (duration, query count,
  sample count, seeds, latency bound), where no record says it was overridden;
* ``accuracy``: no official result line, below the target, no hash, or an untruncated log;
* ``compliance``: a compliance test missing, failed, or not run with its settings;
* ``no-outputs``: what cannot exist because the engine produces no outputs (sim, null).

The checks of the closed division are applied whatever the tree's division. A tree with any
gap is not submittable; runs made with overridden rules never are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from raybench.config.names import BENCHMARKS, SCENARIOS, accuracy_target_of, model_of
from raybench.errors import ConfigError, DataError
from raybench.results.accuracy import ACCURACY_TXT
from raybench.results.loadgen_log import ACCURACY_LOG, DETAIL, read_detail
from raybench.rules import load_rules
from raybench.rules.submission import SubmissionRules, load_submission_rules
from raybench.run.layout import (ACCURACY, BASELINE_ACCURACY, COMPLIANCE_ACCURACY,
                                 PERFORMANCE_RUN, VERIFY_ACCURACY, VERIFY_PERFORMANCE)
from raybench.run.record import RunRecord
from raybench.submission.accuracy_log import hash_in
from raybench.submission.tree import RUNS_JSON
from raybench.submission.verify import (DATA_DIFFER, PASS, SCORES, accuracy_passed,
                                        audit_mismatches)

KINDS = ("system", "missing-scenario", "missing-file", "invalid-run", "overridden", "rules",
         "accuracy", "compliance", "no-outputs")


@dataclass
class Gap:
    """One thing that keeps the tree from being a valid submission."""

    kind: str
    where: str  # path relative to the submitter directory
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.where}: {self.message}"


@dataclass
class CheckReport:
    """Every gap of a tree, and the results found."""

    root: Path
    gaps: list[Gap] = field(default_factory=list)
    results: list[tuple[str, str, str, str]] = field(default_factory=list)  # system, bench, scen, metric
    notes: list[str] = field(default_factory=list)

    @property
    def submittable(self) -> bool:
        """True only with no gap at all."""
        return not self.gaps


class _Checker:
    def __init__(self, submitter_dir: Path, division: str, submitter: str,
                 rules: SubmissionRules, report: CheckReport):
        self.dir = submitter_dir
        self.division = division
        self.submitter = submitter
        self.rules = rules
        self.round = load_rules(rules.round)
        self.report = report

    def gap(self, kind: str, path: Path, message: str) -> None:
        try:
            where = str(path.relative_to(self.dir.parent.parent))
        except ValueError:
            where = str(path)
        self.report.gaps.append(Gap(kind, where, message))

    def files(self, directory: Path, names, kind: str = "missing-file") -> bool:
        if not directory.is_dir():
            self.gap(kind, directory, "directory missing")
            return False
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            self.gap(kind, directory, f"missing {', '.join(missing)}")
        return not missing

    # systems/<id>.json
    def system(self, system_id: str) -> Optional[dict]:
        path = self.dir / "systems" / f"{system_id}.json"
        if not path.is_file():
            self.gap("system", path, "system description missing")
            return None
        try:
            desc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            self.gap("system", path, f"not valid JSON ({exc.msg})")
            return None
        missing = [f for f in self.rules.tree.system_fields if f not in desc]
        if missing:
            self.gap("system", path, f"missing field(s): {', '.join(missing)}")
        if str(desc.get("submitter", "")).lower() != self.submitter.lower():
            self.gap("system", path, f"submitter {desc.get('submitter')!r}, but the tree is "
                                     f"{self.submitter!r}")
        if desc.get("division") != self.division:
            self.gap("system", path, f"division {desc.get('division')!r}, but the tree is "
                                     f"{self.division!r}")
        if str(desc.get("status", "")).lower() not in self.rules.tree.statuses:
            self.gap("system", path, f"status {desc.get('status')!r} (allowed: "
                                     f"{', '.join(self.rules.tree.statuses)})")
        return desc

    def check_system(self, system_id: str) -> None:
        desc = self.system(system_id)
        results = self.dir / "results" / system_id
        sets = None
        if desc is not None:
            try:
                sets = self.rules.scenario_set(str(desc.get("system_type")))
            except ConfigError as exc:  # an unknown system type
                self.gap("system", self.dir / "systems" / f"{system_id}.json", str(exc))
        for bench_dir in sorted(p for p in results.iterdir() if p.is_dir()):
            benchmark = bench_dir.name
            if benchmark not in BENCHMARKS:
                self.gap("missing-scenario", bench_dir, f"not a benchmark id (allowed: "
                                                         f"{', '.join(BENCHMARKS)})")
                continue
            present = {p.name for p in bench_dir.iterdir() if p.is_dir()}
            if sets is not None:
                required = set(sets.required.get(benchmark, []))
                allowed = required | set(sets.optional.get(benchmark, []))
                if benchmark not in sets.required:
                    self.gap("missing-scenario", bench_dir, f"{benchmark} is not a benchmark of "
                                                             f"a {desc.get('system_type')} system")
                for scenario in sorted(required - present):
                    self.gap("missing-scenario", bench_dir / scenario,
                             f"required {scenario} scenario missing")
                for scenario in sorted(present - allowed):
                    self.report.notes.append(f"{bench_dir / scenario}: not a {desc.get('system_type')} "
                                             "scenario of this benchmark; ignored")
                present &= allowed
            for scenario in sorted(present):
                if scenario in SCENARIOS:
                    self.check_scenario(system_id, benchmark, scenario)

    # one benchmark and scenario
    def check_scenario(self, system_id: str, benchmark: str, scenario: str) -> None:
        where = Path(system_id) / benchmark / scenario
        measurements = self.dir / "measurements" / where
        runs = self.runs_json(measurements)
        first = next((r for r in runs.values() if r is not None), None)  # says which engine
        self.files(measurements, self.rules.tree.measurement_files)
        impl = measurements / f"{system_id}_{scenario}.json"
        if impl.is_file():
            fields = json.loads(impl.read_text())
            missing = [f for f in self.rules.tree.implementation_fields if f not in fields]
            if missing:
                self.gap("missing-file", impl, f"missing field(s): {', '.join(missing)}")
        elif measurements.is_dir():
            self.gap("missing-file", impl, "implementation description missing")
        if not (self.dir / "code" / benchmark).is_dir():
            self.gap("missing-file", self.dir / "code" / benchmark, "code directory missing")
        for name, record in runs.items():
            if record is not None and not record.submittable:
                self.gap("overridden", measurements / RUNS_JSON,
                         f"{name} run made with overridden rules, not a submission run: "
                         + "; ".join(record.overridden))

        results = self.dir / "results" / where
        perf = runs.get("performance")
        self.check_performance(results / PERFORMANCE_RUN, benchmark, scenario,
                               perf.overridden if perf else [])
        self.check_accuracy(results / ACCURACY, benchmark, first)
        self.check_compliance(self.dir / "compliance" / where, benchmark, scenario, first)

    def runs_json(self, measurements: Path) -> dict[str, Optional[RunRecord]]:
        """What raybench recorded about each run of the scenario (empty if nothing)."""
        path = measurements / RUNS_JSON
        if not path.is_file():
            return {}
        try:
            docs = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            self.gap("missing-file", path, f"not valid JSON ({exc.msg})")
            return {}
        records = {}
        for name, doc in docs.items():
            try:
                records[name] = RunRecord.from_json(doc, name) if doc else None
            except DataError as exc:
                self.gap("missing-file", path, str(exc))
                records[name] = None
        return records

    def detail(self, run: Path):
        try:
            return read_detail(run / DETAIL)
        except DataError as exc:
            self.gap("missing-file", run / DETAIL, str(exc))
            return None

    def check_performance(self, run: Path, benchmark: str, scenario: str,
                          overridden: list[str]) -> None:
        if not self.files(run, self.rules.tree.performance_files):
            return
        detail = self.detail(run)
        if detail is None:
            return
        if detail.get("result_validity") != "VALID":
            reason = str(detail.get("result_invalid_reason") or "").strip()
            unmet = [k.removeprefix("result_").removesuffix("_met").replace("_", " ")
                     for k in ("result_min_duration_met", "result_min_queries_met",
                               "result_perf_constraints_met", "early_stopping_met")
                     if detail.get(k) is False]
            self.gap("invalid-run", run, f"LoadGen result {detail.get('result_validity')}"
                     + (f": {', '.join(unmet)} not met" if unmet else "")
                     + (f" ({reason})" if reason else ""))
        if detail.errors:
            self.gap("invalid-run", run, f"LoadGen logged {len(detail.errors)} error(s): "
                     + "; ".join(detail.errors[:3]))
        overridden_keys = {o.split(":", 1)[0] for o in overridden}
        problems = [msg for key, msg in self.rule_problems(detail, benchmark, scenario)
                    if key not in overridden_keys]
        if problems:
            self.gap("rules", run, "; ".join(problems)
                     + ("" if not overridden else " (beyond the recorded overrides)"))
        key = SCORES[scenario][0]
        self.report.results.append((run.parts[-5], benchmark, scenario, f"{key} = {detail.get(key)}"))

    def rule_problems(self, detail, benchmark: str, scenario: str) -> list[tuple[str, str]]:
        """``(config key, problem)`` for each round's rule a run's LoadGen settings break."""
        model_rule = self.round.model(model_of(benchmark))
        scen_rule = self.round.scenarios[scenario]
        problems = []
        checks = [("min_duration", "effective_min_duration_ms", scen_rule.min_duration_ms,
                   "min duration (ms)"),
                  ("min_query_count", "effective_min_query_count", scen_rule.min_query_count,
                   "min query count"),
                  ("performance_sample_count_override", "effective_performance_sample_count",
                   model_rule.performance_sample_count, "performance sample count")]
        if scenario == "Offline":
            checks.append(("min_query_count", "effective_samples_per_query",
                           scen_rule.min_query_count, "Offline samples per query"))
        for key, log_key, minimum, what in checks:
            value = detail.get(log_key)
            if value is None or value < minimum:
                problems.append((key, f"{what} {value} < {minimum}"))
        for seed, value in self.round.seeds.items():
            if detail.get(f"effective_{seed}") != value:
                problems.append((seed, f"{seed} {detail.get(f'effective_{seed}')} is not the "
                                       f"round's {value}"))
        if scenario == "Server" and model_rule.server_latency_ms:
            p99 = detail.get("result_99.00_percentile_latency_ns")
            bound = model_rule.server_latency_ms * 1e6
            if p99 is not None and p99 > bound:
                problems.append(("target_latency", f"p99 latency {p99} ns > {bound:.0f} ns"))
        return problems

    def check_accuracy(self, acc: Path, benchmark: str, record: Optional[RunRecord]) -> None:
        if not acc.is_dir():
            if record is not None and not record.has_outputs:
                self.gap("no-outputs", acc, f"no accuracy run: the {record.engine} engine "
                                            "produces no outputs")
            else:
                self.gap("missing-file", acc, "accuracy run missing")
            return
        self.files(acc, self.rules.tree.accuracy_files)
        txt = acc / ACCURACY_TXT
        if txt.is_file():
            pattern = self.rules.accuracy_pattern(benchmark)
            value = next((m.group(1) for line in txt.read_text(encoding="utf-8").splitlines()
                          if (m := pattern.match(line))), None)
            target = self.round.model(model_of(benchmark)).fp32 * accuracy_target_of(benchmark)
            if value is None:
                self.gap("accuracy", txt, f"no result line of the official accuracy script "
                                          f"(pattern {pattern.pattern})")
            elif float(value) < target:
                self.gap("accuracy", txt, f"accuracy {value} below the target {target:.4f}")
            if hash_in(txt) is None:
                self.gap("accuracy", txt, "no hash= line for mlperf_log_accuracy.json")
        log = acc / ACCURACY_LOG
        if log.is_file() and log.stat().st_size > self.rules.tree.max_accuracy_log_bytes:
            self.gap("accuracy", log, f"not truncated ({log.stat().st_size} bytes > "
                                      f"{self.rules.tree.max_accuracy_log_bytes})")
        if (acc / DETAIL).is_file():
            detail = self.detail(acc)
            if detail is not None and detail.errors:
                self.gap("invalid-run", acc, f"LoadGen logged {len(detail.errors)} error(s): "
                         + "; ".join(detail.errors[:3]))

    def check_compliance(self, directory: Path, benchmark: str, scenario: str,
                         record: Optional[RunRecord]) -> None:
        for test in self.rules.applicable_tests(benchmark, scenario):
            spec = self.rules.test(test)
            test_dir = directory / test
            if not test_dir.is_dir():
                self.gap("compliance", test_dir, f"{test} missing")
                continue
            run = test_dir / PERFORMANCE_RUN
            if self.files(run, self.rules.tree.performance_files, kind="compliance"):
                try:
                    problems = audit_mismatches(run, test, benchmark, self.rules)
                except DataError as exc:
                    problems = [str(exc)]
                if problems:
                    self.gap("compliance", run, f"not run with {test}'s settings: " + "; ".join(problems))
            if spec.verify != "by-pair":
                self.verify_file(test_dir / VERIFY_PERFORMANCE, test, lambda t: PASS in t)
            if spec.verify == "accuracy-and-performance":
                self.check_test01_accuracy(test_dir, test, record)

    def verify_file(self, path: Path, test: str, passed) -> Optional[str]:
        if not path.is_file():
            self.gap("compliance", path, f"{test}: {path.name} missing")
            return None
        text = path.read_text()
        if not passed(text):
            why = next((ln for ln in reversed(text.splitlines()) if "FAIL" in ln), "no TEST PASS")
            self.gap("compliance", path, f"{test} failed: {why}")
        return text

    def check_test01_accuracy(self, test_dir: Path, test: str, record: Optional[RunRecord]) -> None:
        if record is not None and not record.has_outputs:
            self.gap("no-outputs", test_dir / VERIFY_ACCURACY, f"{test} accuracy cannot be "
                     f"verified: the {record.engine} engine produces no outputs")
            return
        text = self.verify_file(test_dir / VERIFY_ACCURACY, test, accuracy_passed)
        acc = test_dir / ACCURACY
        names = [ACCURACY_LOG, ACCURACY_TXT]
        if text is not None and DATA_DIFFER in text:
            names += [BASELINE_ACCURACY, COMPLIANCE_ACCURACY]  # the official Part III files
        self.files(acc, names, kind="compliance")
        log = acc / ACCURACY_LOG
        if log.is_file() and log.stat().st_size > self.rules.tree.max_accuracy_log_bytes:
            self.gap("compliance", log, "accuracy log not truncated")
        if (acc / ACCURACY_TXT).is_file() and hash_in(acc / ACCURACY_TXT) is None:
            self.gap("compliance", acc / ACCURACY_TXT, "no hash= line")


def submitter_dirs(root: Path, divisions) -> list[tuple[Path, str, str]]:
    """``(directory, division, submitter)`` of every submitter under a tree root, or of
    ``root`` itself when it is a submitter directory (``.../<division>/<submitter>``)."""
    root = Path(root)
    if root.parent.name in divisions and (root / "results").is_dir():
        return [(root, root.parent.name, root.name)]
    found = []
    for division in divisions:
        if (root / division).is_dir():
            for sub in sorted(p for p in (root / division).iterdir() if p.is_dir()):
                found.append((sub, division, sub.name))
    return found


def check_tree(root: Path, rules: Optional[SubmissionRules] = None) -> CheckReport:
    """Check every system of every submitter under ``root``.

    Args:
        root: The submission root (holding ``closed/`` or ``open/``) or one
            ``<division>/<submitter>`` directory.

    Returns:
        The report; its ``gaps`` name every problem found.
    """
    rules = rules or load_submission_rules()
    report = CheckReport(Path(root))
    dirs = submitter_dirs(root, rules.tree.divisions)
    if not dirs:
        report.gaps.append(Gap("missing-file", str(root), "no <division>/<submitter>/results "
                               f"directory (divisions: {', '.join(rules.tree.divisions)})"))
    for directory, division, submitter in dirs:
        checker = _Checker(directory, division, submitter, rules, report)
        results = directory / "results"
        if not results.is_dir():
            checker.gap("missing-file", results, "directory missing")
            continue
        for system in sorted(p.name for p in results.iterdir() if p.is_dir()):
            checker.check_system(system)
    return report

