"""MLPerf rules per round, as data (``rules/<round>.yaml``).

Companion files of a round are named ``<round>-<part>.yaml`` (for example the submission
rules, ``v1.0-submission.yaml``, read by :mod:`raybench.rules.submission`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml
from pydantic import Field, ValidationError

from raybench.config.models import Strict
from raybench.config.names import SCENARIOS
from raybench.errors import ConfigError, choices

RULES_DIR = Path(__file__).parent
DEFAULT_ROUND = "v1.0"


class ScenarioRule(Strict):
    """Minimum run length and latency percentile of one scenario."""

    min_duration_ms: int = Field(ge=0)
    min_query_count: int = Field(ge=1)
    latency_percentile: Optional[float] = Field(default=None, gt=0, lt=1)
    interval_ms: Optional[int] = Field(default=None, gt=0)


class ModelRule(Strict):
    """Per-model rules: scenarios, sample count, latency bound, accuracy reference."""

    scenarios: list[str]
    performance_sample_count: int = Field(ge=1)
    server_latency_ms: Optional[float] = Field(default=None, gt=0)
    multistream_interval_ms: Optional[int] = Field(default=None, gt=0)
    fp32: float
    metric: str


class Rules(Strict):
    """The rules of one MLPerf round."""

    round: str
    seeds: dict[str, int]
    scenarios: dict[str, ScenarioRule]
    models: dict[str, ModelRule]

    def model(self, name: str) -> ModelRule:
        """Rules of model ``name``; ConfigError if the round has none."""
        if name not in self.models:
            raise ConfigError(f"round {self.round} has no model {choices(name, sorted(self.models))}")
        return self.models[name]

    def check_scenario(self, model: str, scenario: str) -> ScenarioRule:
        """The scenario's rules, if ``model`` runs in ``scenario`` in this round."""
        allowed = self.model(model).scenarios
        if scenario not in allowed:
            raise ConfigError(
                f"{model} has no {scenario} scenario in {self.round} "
                f"(allowed: {', '.join(allowed)})"
            )
        return self.scenarios[scenario]


@lru_cache(maxsize=None)
def load_rules(round_name: str = DEFAULT_ROUND) -> Rules:
    """Load and validate the rules of ``round_name``.

    Raises:
        ConfigError: Unknown round or malformed file.
    """
    path = RULES_DIR / f"{round_name}.yaml"
    if "-" in round_name or not path.is_file():
        known = sorted(p.stem for p in RULES_DIR.glob("*.yaml") if "-" not in p.stem)
        raise ConfigError(f"unknown rules round {choices(round_name, known)}")
    try:
        rules = Rules(**yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    for model, rule in rules.models.items():
        for scenario in rule.scenarios:
            if scenario not in SCENARIOS:
                raise ConfigError(f"{path}: models.{model}.scenarios: unknown {choices(scenario, SCENARIOS)}")
    return rules
