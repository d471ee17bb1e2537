"""Compliance runs: every audit test of one benchmark and scenario on one Ray, then verified.

:func:`prepare_compliance` plans the LoadGen tests: the submission run's own tests that are
missing (all of them with ``rerun``), then each compliance test that applies to the
benchmark and scenario. They run as one ``raybench run`` (one Ray, one placement, the same
engines, back to back, which keeps the compared runs' conditions alike), each written whole
into its place under ``<output>/<system>/<benchmark>/<scenario>/``; :func:`run_compliance`
then verifies them and writes the verification files.

A submission run made earlier is used only if it ran with the engine, model, data and exact
TestSettings this request gives (a compliance test must be the same run with its audit
settings on top).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from raybench.config.names import Mode
from raybench.errors import ConfigError
from raybench.rules.submission import load_submission_rules
from raybench.run.layout import ScenarioRuns
from raybench.run.lifecycle import Prepared, RunReport, TestSpec, execute, prepare, settings_of
from raybench.run.record import RunRecord
from raybench.run.request import RunRequest
from raybench.submission.verify import Verdict, verify_compliance


@dataclass
class ComplianceReport:
    """What a compliance run ran and found."""

    runs: ScenarioRuns
    report: RunReport
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every verification that can be made passed."""
        return all(v.passed or v.no_outputs for v in self.verdicts)


def scenario_runs(prepared: Prepared) -> ScenarioRuns:
    """Where a prepared run's tests go."""
    r = prepared.request
    return ScenarioRuns.at(r.output, prepared.system.id, r.benchmark.value, r.scenario.value)


def prepare_compliance(request: RunRequest, rerun: bool = False,
                       tests: Optional[Iterable[str]] = None) -> tuple[Prepared, list[str]]:
    """Validate a compliance run without starting Ray.

    Args:
        request: The submission run's request (without ``audit``).
        rerun: Run the submission run's tests again even where they exist.
        tests: Only these compliance tests (default: every one that applies).

    Returns:
        The prepared run (its ``tests`` are the LoadGen tests to run) and the names of
        the submission run's tests that are reused.

    Raises:
        ConfigError: ``audit`` is set, a test does not apply, or an existing submission
            run was made with other TestSettings.
    """
    if request.audit is not None:
        raise ConfigError(f"a compliance run runs every test that applies; drop --audit "
                          f"{request.audit.value} (or use raybench run --audit)")
    prepared = prepare(request)
    applicable = load_submission_rules(request.rules_round).applicable_tests(
        request.benchmark, request.scenario)
    chosen = list(applicable)
    if tests:
        chosen = []
        for name in tests:
            match = next((t for t in applicable if t.lower() == str(name).lower()), None)
            if match is None:
                raise ConfigError(f"--test {name}: not a compliance test of {request.benchmark} "
                                  f"{request.scenario} (allowed: {', '.join(applicable)})")
            chosen.append(match)
    runs = scenario_runs(prepared)
    submission, reused = [], []
    for test in prepared.tests:
        if not rerun and (runs.root / test.unit).is_dir():
            _check_same_run(prepared, test, runs.root / test.unit / test.logs)
            reused.append(test.name)
        else:
            submission.append(test)
    prepared.tests = submission + [TestSpec(Mode.PERFORMANCE, t) for t in chosen]
    return prepared, reused


def _check_same_run(prepared: Prepared, test: TestSpec, directory: Path) -> None:
    """An existing test of the submission run must be the one this request would make: the
    same engine, model, data and TestSettings."""
    record = RunRecord.find(directory)
    if record is None:
        raise ConfigError(f"{directory} has no raybench record, so compliance runs cannot be "
                          "made with its settings; pass --rerun")
    wanted = {"engine": prepared.request.engine.value, "model": prepared.model,
              "data_dir": prepared.data_dir, **settings_of(prepared, test).values}
    recorded = {"engine": record.engine, "model": record.model, "data_dir": record.data_dir,
                **record.test_settings}
    differ = [f"{key} {recorded.get(key)} (now {value})"
              for key, value in wanted.items() if recorded.get(key) != value]
    if differ:
        raise ConfigError(f"the submission run in {directory} ran with other settings: "
                          f"{', '.join(differ)}; give its options again or pass --rerun")


def run_compliance(prepared: Prepared, on_progress: Optional[Callable] = None, **execute_options) -> ComplianceReport:
    """Run the prepared tests on one Ray, then verify every compliance test and write the
    verification files (see :func:`raybench.submission.verify.verify_compliance`).

    Args:
        prepared: From :func:`prepare_compliance`.
        on_progress: As for :func:`raybench.run.execute`.
        **execute_options: Passed on to :func:`raybench.run.execute` (``ray_log``, ``verbose``).

    Raises:
        RunError: A test could not run (the tests before it are kept).
    """
    report = execute(prepared, on_progress=on_progress, **execute_options)
    runs = scenario_runs(prepared)
    return ComplianceReport(runs, report, verify_compliance(runs, prepared.data_dir))
