"""LoadGen's config files (``mlperf.conf``, ``user.conf``, ``audit.config``): read, check, apply.

A line is ``model.Scenario.key = value`` with spaces around ``=``; ``model`` and
``Scenario`` may be ``*``; a line whose first word starts with ``#`` is a comment. LoadGen
looks a key up as ``model.Scenario``, then ``*.Scenario``, then ``model.*``, then ``*.*``,
and a later line wins over an earlier one. LoadGen itself skips what it cannot read; here a
malformed line, an unknown key or model, or a key LoadGen does not read in the named
scenario is a one-line error naming the file, the line and what is allowed.

:func:`apply_conf` applies a file's values for one model and scenario on top of raybench's
:class:`~raybench.rules.settings.EffectiveSettings`, and records as overridden every value
that breaks the round's rules (a shorter run, fewer queries, other seeds, ...).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional, Union

from raybench.config.names import SCENARIOS, model_of
from raybench.errors import ConfigError

log = logging.getLogger(__name__)

Kind = Literal["mlperf", "user", "audit"]
Number = Union[int, float]

# Models of earlier rounds that the round's official mlperf.conf still lists: read, not applied.
OTHER_MODELS = ("mobilenet", "gnmt")
_MODES = {0: "SubmissionRun", 1: "AccuracyOnly", 2: "PerformanceOnly", 3: "FindPeakPerformance"}


@dataclass(frozen=True)
class KeySpec:
    """How LoadGen reads one config key.

    Attributes:
        attrs: TestSettings attribute per scenario where LoadGen reads the key (``""``:
            raybench keeps the value in the written conf only; ``None``: read in no
            LoadGen >= 2 scenario, accepted for the round's files and not applied).
        scale: Config value times ``scale`` is the TestSettings value.
        kind: Type of the TestSettings value.
        files: The config files the key may appear in.
        rule: How a value may differ from the round's rule: ``min`` (at least the rule),
            ``max`` (at most), ``exact``; None when the key is the system's to choose.
        default: The rule where the round's mlperf.conf has no entry (the audit keys: off).
    """

    attrs: dict[str, Optional[str]]
    scale: float = 1.0
    kind: type = int
    files: tuple[str, ...] = ("mlperf", "user")
    rule: Optional[str] = None
    default: Optional[Number] = None


def _every(attr: Optional[str]) -> dict[str, Optional[str]]:
    return {s: attr for s in SCENARIOS}


_AUDIT = ("mlperf", "user", "audit")
KEYS: dict[str, KeySpec] = {
    "mode": KeySpec(_every("mode"), files=("audit",)),
    "min_duration": KeySpec(_every("min_duration_ms"), rule="min"),
    "max_duration": KeySpec(_every("max_duration_ms")),
    "min_query_count": KeySpec(_every("min_query_count"), rule="min"),
    "max_query_count": KeySpec(_every("max_query_count")),
    "performance_sample_count_override": KeySpec(_every("performance_sample_count_override"),
                                                 rule="min"),
    "qsl_rng_seed": KeySpec(_every("qsl_rng_seed"), files=("mlperf", "audit"), rule="exact"),
    "sample_index_rng_seed": KeySpec(_every("sample_index_rng_seed"), files=("mlperf", "audit"),
                                     rule="exact"),
    "schedule_rng_seed": KeySpec(_every("schedule_rng_seed"), files=("mlperf", "audit"),
                                 rule="exact"),
    "accuracy_log_rng_seed": KeySpec(_every("accuracy_log_rng_seed"), files=_AUDIT),
    "accuracy_log_probability": KeySpec(_every("accuracy_log_probability"), scale=0.01,
                                        kind=float, files=("mlperf",), rule="exact", default=0),
    "accuracy_log_sampling_target": KeySpec(_every("accuracy_log_sampling_target"), files=_AUDIT,
                                            rule="exact", default=0),
    "print_timestamps": KeySpec(_every("print_timestamps"), kind=bool),
    "performance_issue_unique": KeySpec(_every("performance_issue_unique"), kind=bool,
                                        files=_AUDIT, rule="exact", default=0),
    "performance_issue_same": KeySpec(_every("performance_issue_same"), kind=bool, files=_AUDIT,
                                      rule="exact", default=0),
    "performance_issue_same_index": KeySpec(_every("performance_issue_same_index"), files=_AUDIT,
                                            rule="exact", default=0),
    "target_latency_percentile": KeySpec(
        {"SingleStream": "single_stream_target_latency_percentile",
         "MultiStream": "multi_stream_target_latency_percentile",
         "Server": "server_target_latency_percentile", "Offline": None},
        scale=0.01, kind=float, rule="exact"),
    "target_latency": KeySpec(
        {"SingleStream": "single_stream_expected_latency_ns",
         "MultiStream": "",  # the v1.0 interval, which raybench compares p99 against
         "Server": "server_target_latency_ns"},
        scale=1e6, rule="max"),
    "target_qps": KeySpec({"Server": "server_target_qps", "Offline": "offline_expected_qps",
                           "MultiStream": None}, kind=float),
    "samples_per_query": KeySpec({"MultiStream": "multi_stream_samples_per_query"}),
    "max_async_queries": KeySpec({"Server": "server_max_async_queries", "MultiStream": None}),
    "coalesce_queries": KeySpec({"Server": "server_coalesce_queries"}, kind=bool),
    "target_duration": KeySpec(_every(None)),  # in the v1.0 mlperf.conf; LoadGen never reads it
}


@dataclass(frozen=True)
class ConfEntry:
    """One ``model.Scenario.key = value`` line."""

    model: str
    scenario: str
    key: str
    value: Number
    line: int


@dataclass
class LoadGenConf:
    """A parsed config file: its entries in file order."""

    path: str
    kind: Kind
    entries: list[ConfEntry] = field(default_factory=list)

    def resolve(self, benchmark: str, scenario: str) -> dict[str, ConfEntry]:
        """The entry LoadGen would use for each key, for one benchmark id and scenario."""
        model = model_of(benchmark)
        rank = {(model, scenario): 0, ("*", scenario): 1, (model, "*"): 2, ("*", "*"): 3}
        best: dict[str, tuple[int, ConfEntry]] = {}
        for entry in self.entries:
            r = rank.get((entry.model, entry.scenario))
            if r is not None and (entry.key not in best or r <= best[entry.key][0]):
                best[entry.key] = (r, entry)
        return {key: entry for key, (_, entry) in best.items()}


def _number(text: str) -> Optional[Number]:
    """A value as LoadGen reads it (an integer in any C base, else a double), or None."""
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def parse_conf(text: str, path: str, kind: Kind, models: tuple[str, ...]) -> LoadGenConf:
    """Parse and check the text of a LoadGen config file.

    Args:
        text: The file's text.
        path: Its name, for error messages.
        kind: 'mlperf', 'user' or 'audit' (which keys it may hold).
        models: The model names of the round.

    Raises:
        ConfigError: ``path:line: 'text': what is allowed`` for the first bad line.
    """
    conf = LoadGenConf(path=path, kind=kind)
    known_models = ("*",) + tuple(models) + OTHER_MODELS
    allowed_keys = [k for k, spec in KEYS.items() if kind in spec.files]
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue

        def bad(what: str) -> ConfigError:
            return ConfigError(f"{path}:{number}: {raw.strip()!r}: {what}")

        if len(words) != 3 or words[1] != "=":
            raise bad("expected 'model.Scenario.key = value' (spaces around '=', "
                      "one value, comments on their own line)")
        name, _, value_text = words
        parts = name.split(".")
        if len(parts) != 3:
            raise bad("expected the key as model.Scenario.key (model and Scenario may be *)")
        model, scenario, key = parts
        if model not in known_models:
            raise bad(f"unknown model {model!r} (allowed: {', '.join(known_models)})")
        if scenario != "*" and scenario not in SCENARIOS:
            raise bad(f"unknown scenario {scenario!r} (allowed: *, {', '.join(SCENARIOS)})")
        spec = KEYS.get(key)
        if spec is None or kind not in spec.files:
            if spec is not None and key.endswith("rng_seed") and kind == "user":
                raise bad(f"{key}: the round's seeds belong in mlperf.conf, not user.conf")
            if key == "mode":
                raise bad("mode is chosen by raybench (--mode, or --audit for a compliance test)")
            raise bad(f"unknown key {key!r} for {kind}.conf (allowed: {', '.join(allowed_keys)})")
        if scenario != "*" and scenario not in spec.attrs:
            raise bad(f"LoadGen does not read {key} in {scenario} "
                      f"(read in: {', '.join(spec.attrs)})")
        value = _number(value_text)
        if value is None or not math.isfinite(value):
            raise bad(f"value {value_text!r} is not a number (LoadGen reads integers and decimals)")
        if spec.kind in (int, bool) and spec.scale == 1.0 and isinstance(value, float) \
                and not value.is_integer():
            raise bad(f"{key} takes an integer, not {value_text!r}")
        if key == "mode" and value not in _MODES:
            raise bad(f"mode {value_text!r} (allowed: {', '.join(f'{k}={v}' for k, v in _MODES.items())})")
        conf.entries.append(ConfEntry(model, scenario, key, value, number))
    return conf


def read_conf(path: Path, kind: Kind) -> LoadGenConf:
    """Read and check a LoadGen config file against the round's models.

    Raises:
        ConfigError: Missing file or a bad line (see :func:`parse_conf`).
    """
    from raybench.rules import load_rules

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{kind}.conf {path}: cannot read ({exc.strerror or exc})") from None
    return parse_conf(text, str(path), kind, tuple(load_rules().models))


def setting_value(key: str, scenario: str, value: Number):
    """The TestSettings attribute and value a config entry sets in ``scenario``.

    Returns:
        ``(attribute, value)``; the attribute is ``""`` when only the written conf keeps
        the value and None when LoadGen >= 2 does not read the key in that scenario.
    """
    spec = KEYS[key]
    attr = spec.attrs.get(scenario)
    if not attr:
        return attr, value
    if key == "mode":
        return attr, _MODES[int(value)]
    scaled = value if spec.scale == 1.0 else value * spec.scale  # seeds stay exact
    return attr, spec.kind(int(scaled) if spec.kind in (int, bool) else scaled)


def _breaks_rule(spec: KeySpec, rule: Optional[Number], value: Number) -> bool:
    if spec.rule is None or rule is None:
        return False
    if spec.rule == "min":
        return value < rule
    if spec.rule == "max":
        return value > rule
    return value != rule


def apply_conf(settings, conf: LoadGenConf, total_count: Optional[int] = None):
    """Apply a user's ``mlperf.conf`` or ``user.conf`` on top of raybench's settings.

    LoadGen's precedence holds: ``mlperf.conf`` is the bottom layer, so its values go into
    the written ``mlperf.conf`` and reach the TestSettings only where ``user.conf`` (the
    system's values and any overrides) has no value of its own; ``user.conf`` values go
    into the written ``user.conf`` and always reach the TestSettings. A value that takes
    effect and breaks the round's rule is recorded in ``overridden`` as
    ``key: rule -> value (file:line)``; a user.conf value that keeps the rule drops an
    earlier override of that key.

    Args:
        settings: An :class:`~raybench.rules.settings.EffectiveSettings`.
        conf: From :func:`read_conf` or :func:`parse_conf` (kind 'mlperf' or 'user').
        total_count: Samples in the dataset; bounds the performance sample count.

    Returns:
        A new EffectiveSettings; ``settings`` is left as it was.
    """
    if conf.kind not in ("mlperf", "user"):
        raise ConfigError(f"{conf.path}: an {conf.kind} file is applied with apply_audit, not apply_conf")
    values = dict(settings.values)
    rule_conf, user_conf = dict(settings.rule_conf), dict(settings.user_conf)
    overridden = list(settings.overridden)
    for key, entry in conf.resolve(settings.benchmark, settings.scenario).items():
        attr, value = setting_value(key, settings.scenario, entry.value)
        if attr is None:
            log.info("%s:%d: %s is not read by LoadGen >= 2 in %s; not applied",
                     conf.path, entry.line, key, settings.scenario)
            continue
        if conf.kind == "mlperf":
            rule_conf[key] = entry.value
            if key in user_conf:  # user.conf wins, as in LoadGen
                continue
        capped = (attr == "performance_sample_count_override" and total_count is not None
                  and value > total_count)
        effective = total_count if capped else entry.value
        if conf.kind == "user":
            user_conf[key] = effective
        if attr:
            values[attr] = total_count if capped else value
        spec = KEYS[key]
        rule = settings.rule_conf.get(key, spec.default)
        overridden = [o for o in overridden if not o.startswith(f"{key}:")]
        if _breaks_rule(spec, rule, effective):
            why = f"{conf.path}:{entry.line}" + (
                f" asks {entry.value}; the dataset has {total_count} samples" if capped else "")
            overridden.append(f"{key}: {rule} -> {effective} ({why})")
    return replace(settings, values=values, rule_conf=rule_conf, user_conf=user_conf,
                   overridden=overridden)
