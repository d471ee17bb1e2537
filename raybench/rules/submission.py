"""The submission rules of a round, as data (``rules/<round>-submission.yaml``).

Two parts: ``audit``, the compliance tests (the keys of each test's ``audit.config``, how it
is verified and where it applies), and ``tree``, what a ``<division>/<submitter>/``
submission tree must hold and how the submission checker reads it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, Optional

import yaml
from pydantic import Field, ValidationError, field_validator

from raybench.config.models import Strict
from raybench.config.names import AUDIT_TESTS, BENCHMARKS, SCENARIOS, model_of
from raybench.errors import ConfigError, choices
from raybench.rules import RULES_DIR, DEFAULT_ROUND, load_rules

Verify = Literal["accuracy-and-performance", "performance", "same-sample", "by-pair"]


class AuditTest(Strict):
    """One compliance test: its audit.config keys and how it is verified."""

    purpose: str
    config: dict[str, int]  # LoadGen config keys applied to every model and scenario
    per_model: dict[str, dict[str, int]] = Field(default_factory=dict)  # key -> model -> value
    verify: Verify
    threshold: Optional[float] = Field(default=None, gt=0, lt=1)
    paired_with: Optional[str] = None
    excluded_models: list[str] = Field(default_factory=list)
    excluded_scenarios: list[str] = Field(default_factory=list)


class RelaxedThreshold(Strict):
    """The wider band for fast SingleStream runs (run-to-run noise of the OS)."""

    max_latency_ns: int = Field(gt=0)
    threshold: float = Field(gt=0, lt=1)


class AuditRules(Strict):
    """The compliance tests of a round."""

    tests: dict[str, AuditTest]
    single_stream_relaxed: RelaxedThreshold


class ScenarioSet(Strict):
    """Required and optional scenarios per benchmark id for one system type."""

    required: dict[str, list[str]]
    optional: dict[str, list[str]] = Field(default_factory=dict)


class TreeRules(Strict):
    """What a submission tree holds and how the checker reads it."""

    system_fields: list[str]
    divisions: list[str]
    statuses: list[str]
    implementation_fields: list[str]
    measurement_files: list[str]
    performance_files: list[str]
    accuracy_files: list[str]
    max_accuracy_log_bytes: int = Field(gt=0)
    accuracy_log_kept_chars: int = Field(gt=0)
    accuracy_patterns: dict[str, str]
    scenarios: dict[str, ScenarioSet]

    @field_validator("accuracy_patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for model, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{model}: not a regular expression ({exc})") from None
        return patterns


class SubmissionRules(Strict):
    """The submission rules of one round."""

    round: str
    audit: AuditRules
    tree: TreeRules

    def test(self, name: str) -> AuditTest:
        """The audit test ``name``; ConfigError if the round has none."""
        if name not in self.audit.tests:
            raise ConfigError(f"unknown audit test {choices(name, list(self.audit.tests))}")
        return self.audit.tests[name]

    def applicable_tests(self, benchmark: str, scenario: str) -> list[str]:
        """The audit tests a benchmark id must pass in ``scenario``, in the file's order."""
        model = model_of(benchmark)
        return [name for name, test in self.audit.tests.items()
                if model not in test.excluded_models and scenario not in test.excluded_scenarios]

    def accuracy_pattern(self, benchmark: str) -> re.Pattern:
        """The official accuracy script's result line of a benchmark id, as a regex."""
        return re.compile(self.tree.accuracy_patterns[model_of(benchmark)])

    def scenario_set(self, system_type: str) -> ScenarioSet:
        """Required/optional scenarios of a system type ('edge,datacenter' = 'datacenter,edge').

        Raises:
            ConfigError: Unknown system type.
        """
        key = ",".join(sorted(p.strip() for p in str(system_type).split(",")))
        if key not in self.tree.scenarios:
            raise ConfigError(f"unknown system_type {choices(system_type, sorted(self.tree.scenarios))}")
        return self.tree.scenarios[key]


def _check(rules: SubmissionRules, where: str) -> None:
    """Cross-checks a typed model cannot express: names of models, benchmarks, scenarios."""
    models = set(load_rules(rules.round).models)
    for name, test in rules.audit.tests.items():
        if name not in AUDIT_TESTS:
            raise ConfigError(f"{where}: audit.tests: unknown test {choices(name, AUDIT_TESTS)}")
        for key, per_model in test.per_model.items():
            for model in per_model:
                if model not in models:
                    raise ConfigError(f"{where}: audit.tests.{name}.per_model.{key}: "
                                      f"unknown model {choices(model, sorted(models))}")
            missing = sorted(models - set(per_model))
            if missing:
                raise ConfigError(f"{where}: audit.tests.{name}.per_model.{key}: "
                                  f"no value for {', '.join(missing)}")
        for model in test.excluded_models:
            if model not in models:
                raise ConfigError(f"{where}: audit.tests.{name}.excluded_models: "
                                  f"unknown model {choices(model, sorted(models))}")
        for scenario in test.excluded_scenarios:
            if scenario not in SCENARIOS:
                raise ConfigError(f"{where}: audit.tests.{name}.excluded_scenarios: "
                                  f"unknown {choices(scenario, SCENARIOS)}")
        if test.paired_with and test.paired_with not in rules.audit.tests:
            raise ConfigError(f"{where}: audit.tests.{name}.paired_with: "
                              f"unknown test {choices(test.paired_with, list(rules.audit.tests))}")
    missing = sorted(models - set(rules.tree.accuracy_patterns))
    if missing:
        raise ConfigError(f"{where}: tree.accuracy_patterns: no pattern for {', '.join(missing)}")
    for system_type, sets in rules.tree.scenarios.items():
        for part, table in (("required", sets.required), ("optional", sets.optional)):
            for benchmark, scenarios in table.items():
                if benchmark not in BENCHMARKS:
                    raise ConfigError(f"{where}: tree.scenarios.{system_type}.{part}: "
                                      f"unknown benchmark {choices(benchmark, BENCHMARKS)}")
                for scenario in scenarios:
                    if scenario not in SCENARIOS:
                        raise ConfigError(f"{where}: tree.scenarios.{system_type}.{part}."
                                          f"{benchmark}: unknown {choices(scenario, SCENARIOS)}")


def parse_submission_rules(text: str, where: str) -> SubmissionRules:
    """Validate the YAML text of a submission rules file.

    Raises:
        ConfigError: Malformed YAML, an unknown or missing field, or an unknown name
            (one line naming ``where`` and the field).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of fields")
    try:
        rules = SubmissionRules(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{where}: {'.'.join(map(str, err['loc']))}: {msg}") from None
    _check(rules, where)
    return rules


@lru_cache(maxsize=None)
def load_submission_rules(round_name: str = DEFAULT_ROUND) -> SubmissionRules:
    """Load and validate ``rules/<round>-submission.yaml``.

    Raises:
        ConfigError: No such file for the round, or a malformed one.
    """
    path = RULES_DIR / f"{round_name}-submission.yaml"
    if not path.is_file():
        known = sorted(p.stem.rsplit("-", 1)[0] for p in RULES_DIR.glob("*-submission.yaml"))
        raise ConfigError(f"no submission rules for round {choices(round_name, known)}")
    return parse_submission_rules(path.read_text(), str(path))
