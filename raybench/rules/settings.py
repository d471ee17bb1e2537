"""Assembling LoadGen TestSettings from the rules, the system and command-line overrides.

raybench sets every TestSettings field explicitly (LoadGen 6.x's built-in mlperf.conf
lacks some v1.0 models and changed MultiStream) and writes the effective values as
LoadGen-style ``mlperf.conf`` (the round's rules) and ``user.conf`` (the system's values
and the overrides) beside the results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

from pydantic import Field

from raybench.config.models import HarnessSettings, Strict
from raybench.config.names import model_of
from raybench.errors import ConfigError
from raybench.rules import Rules

# LoadGen defaults used where a system gives no value for a scenario that needs none.
DEFAULT_SINGLE_STREAM_LATENCY_NS = 1_000_000
DEFAULT_SAMPLES_PER_QUERY = 8  # LoadGen >= 2.0 MultiStream


class Overrides(Strict):
    """Command-line changes to the round's rules or the system's values.

    Any override makes a run unfit for submission; the summary says which applied.
    """

    duration: Optional[float] = Field(default=None, gt=0, allow_inf_nan=False)  # seconds
    queries: Optional[int] = Field(default=None, ge=1)  # minimum query count
    target_qps: Optional[float] = Field(default=None, gt=0)
    samples_per_query: Optional[int] = Field(default=None, ge=1)
    performance_sample_count: Optional[int] = Field(default=None, ge=1)


@dataclass
class EffectiveSettings:
    """The TestSettings of one LoadGen test and where each value came from."""

    round: str
    benchmark: str
    scenario: str
    mode: str
    values: dict[str, Any]
    rule_conf: dict[str, Any] = field(default_factory=dict)  # mlperf.conf keys
    user_conf: dict[str, Any] = field(default_factory=dict)  # user.conf keys
    overridden: list[str] = field(default_factory=list)  # "key: rule -> value"

    def with_mode(self, mode: str) -> "EffectiveSettings":
        """A copy for another LoadGen mode (a submission run is two tests)."""
        values = dict(self.values, mode=mode)
        return EffectiveSettings(**{**asdict(self), "mode": mode, "values": values})

    def conf_text(self, which: str) -> str:
        """``mlperf.conf`` (which='rules') or ``user.conf`` (which='user') text."""
        entries = self.rule_conf if which == "rules" else self.user_conf
        title = (f"MLPerf Inference {self.round} rules applied by raybench" if which == "rules"
                 else "system settings and overrides applied by raybench")
        lines = [f"# {title}"]
        model = model_of(self.benchmark)
        lines += [f"{model}.{self.scenario}.{k} = {v}" for k, v in entries.items()]
        return "\n".join(lines) + "\n"


def build_settings(
    rules: Rules,
    benchmark: str,
    scenario: str,
    mode: str,
    harness: HarnessSettings,
    total_count: int,
    overrides: Overrides | None = None,
) -> EffectiveSettings:
    """Assemble the TestSettings of one test.

    A dataset smaller than the round's performance sample count caps it, recorded as
    overridden: a run on it is not a submission run.

    Args:
        rules: The round's rules.
        benchmark: Benchmark id.
        scenario: Scenario name.
        mode: 'PerformanceOnly' or 'AccuracyOnly'.
        harness: The system's settings for this benchmark and scenario.
        total_count: Samples in the dataset (bounds the performance sample count).
        overrides: Command-line overrides (see :func:`apply_overrides`).

    Raises:
        ConfigError: The scenario is not in the round for this model, or the system
            lacks a value the scenario needs.
    """
    model = model_of(benchmark)
    model_rule = rules.model(model)
    scen_rule = rules.check_scenario(model, scenario)

    rule_conf: dict[str, Any] = {
        "performance_sample_count_override": model_rule.performance_sample_count,
        "min_duration": scen_rule.min_duration_ms,
        "min_query_count": scen_rule.min_query_count,
        **rules.seeds,
    }
    if scen_rule.latency_percentile:
        rule_conf["target_latency_percentile"] = round(scen_rule.latency_percentile * 100, 3)
    if scenario == "Server":
        rule_conf["target_latency"] = model_rule.server_latency_ms
    if scenario == "MultiStream":
        rule_conf["target_latency"] = model_rule.multistream_interval_ms or scen_rule.interval_ms

    user_conf: dict[str, Any] = {}
    if scenario == "Server":
        user_conf["target_qps"] = _need(harness.server_target_qps, "server_target_qps", benchmark, scenario)
    elif scenario == "Offline":
        user_conf["target_qps"] = _need(harness.offline_expected_qps, "offline_expected_qps", benchmark, scenario)
    elif scenario == "SingleStream":
        ns = harness.single_stream_expected_latency_ns or DEFAULT_SINGLE_STREAM_LATENCY_NS
        user_conf["target_latency"] = ns / 1e6
    else:
        user_conf["samples_per_query"] = harness.multi_stream_samples_per_query or DEFAULT_SAMPLES_PER_QUERY

    overridden: list[str] = []
    if total_count < model_rule.performance_sample_count:  # a stand-in or a partial dataset
        user_conf["performance_sample_count_override"] = total_count
        overridden.append(f"performance_sample_count_override: "
                          f"{model_rule.performance_sample_count} -> {total_count} "
                          f"(the dataset has {total_count} samples)")

    conf = {**rule_conf, **user_conf}
    values: dict[str, Any] = {
        "scenario": scenario,
        "mode": mode,
        "min_duration_ms": int(conf["min_duration"]),
        "min_query_count": int(conf["min_query_count"]),
        "performance_sample_count_override": int(conf["performance_sample_count_override"]),
        **{k: int(v) for k, v in rules.seeds.items()},
    }
    if scenario == "Server":
        values.update(
            server_target_qps=float(conf["target_qps"]),
            server_target_latency_ns=int(conf["target_latency"] * 1e6),
            server_target_latency_percentile=scen_rule.latency_percentile,
            server_coalesce_queries=True,
        )
    elif scenario == "Offline":
        values["offline_expected_qps"] = float(conf["target_qps"])
    elif scenario == "SingleStream":
        values.update(
            single_stream_expected_latency_ns=int(conf["target_latency"] * 1e6),
            single_stream_target_latency_percentile=scen_rule.latency_percentile,
        )
    else:
        values.update(
            multi_stream_samples_per_query=int(conf["samples_per_query"]),
            multi_stream_target_latency_percentile=scen_rule.latency_percentile,
        )
    settings = EffectiveSettings(
        round=rules.round, benchmark=benchmark, scenario=scenario, mode=mode, values=values,
        rule_conf=rule_conf, user_conf=user_conf, overridden=overridden,
    )
    return apply_overrides(settings, overrides or Overrides(), total_count)


def apply_overrides(settings: EffectiveSettings, overrides: Overrides,
                    total_count: int) -> EffectiveSettings:
    """Apply command-line overrides on top of the settings (and of any config file applied
    to them): each goes into ``user.conf`` and the TestSettings and is recorded as
    ``key: rule -> value``, replacing an earlier record of the same key.

    Raises:
        ConfigError: An override that does not apply to the scenario.
    """
    from raybench.rules.loadgen_conf import setting_value

    scenario = settings.scenario
    values, user_conf = dict(settings.values), dict(settings.user_conf)
    overridden = list(settings.overridden)

    def override(key: str, value: Any) -> None:
        nonlocal overridden
        before = settings.rule_conf.get(key, settings.user_conf.get(key))
        overridden = [o for o in overridden if not o.startswith(f"{key}:")]
        overridden.append(f"{key}: {before} -> {value}")
        user_conf[key] = value
        attr, setting = setting_value(key, scenario, value)
        if attr == "performance_sample_count_override":
            setting = min(setting, total_count)
        if attr:
            values[attr] = setting

    if overrides.duration is not None:
        override("min_duration", int(overrides.duration * 1000))
    if overrides.queries is not None:
        override("min_query_count", overrides.queries)
    if overrides.performance_sample_count is not None:
        override("performance_sample_count_override", overrides.performance_sample_count)
    if overrides.target_qps is not None:
        if scenario in ("Server", "Offline"):
            override("target_qps", overrides.target_qps)
        elif scenario == "SingleStream":
            override("target_latency", 1000.0 / overrides.target_qps)
        else:
            raise ConfigError("--target-qps does not apply to MultiStream (use --samples-per-query)")
    if overrides.samples_per_query is not None:
        if scenario != "MultiStream":
            raise ConfigError(f"--samples-per-query applies to MultiStream only, not {scenario}")
        override("samples_per_query", overrides.samples_per_query)
    return replace(settings, values=values, user_conf=user_conf, overridden=overridden)


def _need(value, name: str, benchmark: str, scenario: str):
    if value is None:
        raise ConfigError(f"the system gives no {name} for {benchmark} {scenario}; set it or pass --target-qps")
    return value


def to_test_settings(values: dict[str, Any]):
    """A ``mlperf_loadgen.TestSettings`` from :attr:`EffectiveSettings.values`."""
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    for key, value in values.items():
        if key == "scenario":
            value = getattr(lg.TestScenario, value)
        elif key == "mode":
            value = getattr(lg.TestMode, value)
        setattr(settings, key, value)
    return settings
