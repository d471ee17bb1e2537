"""Compliance (audit) tests: the ``audit.config`` of a test and the TestSettings it sets.

LoadGen applies ``audit.config`` from its working directory (or the path given to
``StartTestWithLogSettings``) on top of the TestSettings and logs "Found Audit Config file"
in ``mlperf_log_detail.txt``. LoadGen >= 2 reads only some keys from that file (not the
seeds TEST05 changes), so a run writes :func:`audit_config_text` where LoadGen reads it
*and* applies the same entries to its TestSettings with :func:`apply_audit`: both come from
one parse of the same text, so they cannot disagree.

One difference of LoadGen >= 2 is undone: LoadGen 1.0 made the Offline query of TEST04-B
the performance sample count P long (the same sample P times, as TEST04-A issues P unique
samples), while LoadGen >= 2 repeats the sample for the whole run. A P-sample run and a
full-length run differ by the fixed costs of a run, not by caching, so :func:`apply_audit`
gives TEST04-B in Offline v1.0's query (min_query_count P and no minimum duration, which
makes LoadGen's Offline query exactly P samples).
"""

from __future__ import annotations

from dataclasses import replace

from raybench.config.names import model_of
from raybench.rules.loadgen_conf import parse_conf, setting_value
from raybench.rules.submission import SubmissionRules, load_submission_rules

AUDIT_CONFIG = "audit.config"


def audit_config_text(test: str, benchmark: str, rules: SubmissionRules | None = None) -> str:
    """The ``audit.config`` of compliance test ``test`` for a benchmark id.

    Every key applies to all models and scenarios (``*.*.key``), as in the official files;
    per-model values (TEST01's ``accuracy_log_sampling_target``) are the benchmark's.

    Raises:
        ConfigError: Unknown test or benchmark.
    """
    rules = rules or load_submission_rules()
    spec = rules.test(test)
    model = model_of(benchmark)
    entries = dict(spec.config)
    for key, per_model in spec.per_model.items():
        entries[key] = per_model[model]
    lines = [f"# MLPerf Inference {rules.round} compliance test {test} for {benchmark}: "
             f"{spec.purpose}",
             "# mode: 0 = submission, 1 = accuracy, 2 = performance, 3 = find peak performance"]
    lines += [f"*.*.{key} = {value}" for key, value in entries.items()]
    return "\n".join(lines) + "\n"


def audit_settings(test: str, benchmark: str, scenario: str,
                   rules: SubmissionRules | None = None) -> dict[str, object]:
    """The TestSettings values (attribute -> value) the audit.config of ``test`` sets.

    Parsed from :func:`audit_config_text`, so the file and the values always agree.
    """
    text = audit_config_text(test, benchmark, rules)
    conf = parse_conf(text, AUDIT_CONFIG, "audit", (model_of(benchmark),))
    values = {}
    for key, entry in conf.resolve(benchmark, scenario).items():
        attr, value = setting_value(key, scenario, entry.value)
        if attr:
            values[attr] = value
    return values


def apply_audit(settings, test: str, rules: SubmissionRules | None = None):
    """The TestSettings of compliance test ``test``: ``settings`` with the audit entries.

    The rules' own values (``rule_conf``, ``user_conf``) and the overridden list stay as
    they were: an audit test is a compliance run of the same submission settings.

    Args:
        settings: An :class:`~raybench.rules.settings.EffectiveSettings`.
        test: TEST01, TEST04-A, TEST04-B or TEST05.

    Returns:
        A new EffectiveSettings (mode PerformanceOnly).
    """
    values = {**settings.values,
              **audit_settings(test, settings.benchmark, settings.scenario, rules)}
    if settings.scenario == "Offline" and values.get("performance_issue_same"):
        values.update(min_query_count=values["performance_sample_count_override"],
                      min_duration_ms=0)  # LoadGen 1.0's query: the sample P times
    return replace(settings, mode=values["mode"], values=values)
