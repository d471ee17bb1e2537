"""user.conf / mlperf.conf: LoadGen's syntax checked line by line, applied with its precedence."""

from __future__ import annotations

import pytest

from raybench.config.models import HarnessSettings
from raybench.errors import ConfigError
from raybench.rules import load_rules
from raybench.rules.loadgen_conf import apply_conf, parse_conf, read_conf
from raybench.rules.settings import Overrides, build_settings

MODELS = tuple(load_rules().models)


def settings(scenario="Offline", total=5000, **overrides):
    harness = HarnessSettings(batch_size=8, offline_expected_qps=100, server_target_qps=50,
                              single_stream_expected_latency_ns=2_000_000,
                              multi_stream_samples_per_query=4)
    return build_settings(load_rules(), "resnet50", scenario, "PerformanceOnly", harness, total,
                          Overrides(**overrides))


def conf(text, kind="user"):
    return parse_conf(text, "my.conf", kind, MODELS)


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_raybench_writes_what_it_reads(scenario):
    s = settings(scenario, duration=3.0)
    for which, kind in (("rules", "mlperf"), ("user", "user")):
        text = s.conf_text(which)
        if kind == "user":  # the seeds belong in mlperf.conf, never in user.conf
            assert "rng_seed" not in text
        again = apply_conf(s, conf(text, kind), 5000)
        assert again.values == s.values
        assert [o.split(" (")[0] for o in again.overridden] == s.overridden


def test_precedence_is_loadgens():
    c = conf("*.*.target_qps = 1\n"
             "resnet50.*.target_qps = 2\n"
             "*.Offline.target_qps = 3\n"
             "*.Server.target_qps = 9\n"
             "bert.Offline.target_qps = 9\n")
    assert c.resolve("resnet50", "Offline")["target_qps"].value == 3
    assert c.resolve("resnet50", "Server")["target_qps"].value == 9
    assert c.resolve("bert-99", "Offline")["target_qps"].value == 9
    assert c.resolve("rnnt", "SingleStream")["target_qps"].value == 1
    later = conf("resnet50.Offline.target_qps = 4\nresnet50.Offline.target_qps = 5\n")
    assert later.resolve("resnet50", "Offline")["target_qps"].value == 5  # the later line wins


def test_values_reach_the_test_settings_in_loadgen_units():
    c = conf("# tuned by hand\n"
             "\n"
             "   # indented comment\n"
             "*.SingleStream.target_latency = 0.5\n"
             "*.Server.target_latency = 10\n"
             "*.Server.target_qps = 1234.5\n"
             "*.Server.coalesce_queries = 0\n"
             "*.MultiStream.samples_per_query = 12\n"
             "*.*.print_timestamps = 1\n")
    assert apply_conf(settings("SingleStream"), c).values["single_stream_expected_latency_ns"] == 500_000
    server = apply_conf(settings("Server"), c).values
    assert server["server_target_latency_ns"] == 10_000_000
    assert server["server_target_qps"] == 1234.5
    assert server["server_coalesce_queries"] is False and server["print_timestamps"] is True
    assert apply_conf(settings("MultiStream"), c).values["multi_stream_samples_per_query"] == 12


@pytest.mark.parametrize("line,overridden", [
    ("*.*.min_duration = 60000", "min_duration: 600000 -> 60000 (my.conf:1)"),
    ("*.*.min_duration = 900000", None),  # longer than the rule: allowed
    ("*.*.min_query_count = 100", "min_query_count: 24576 -> 100 (my.conf:1)"),
    ("resnet50.*.performance_sample_count_override = 2048", None),  # Supermicro's value
    ("resnet50.*.performance_sample_count_override = 512", "performance_sample_count_override: 1024 -> 512 (my.conf:1)"),
    ("*.*.target_qps = 99999", None),  # the system's to choose
    ("*.*.accuracy_log_sampling_target = 10", "accuracy_log_sampling_target: 0 -> 10 (my.conf:1)"),
    ("*.*.performance_issue_same = 1", "performance_issue_same: 0 -> 1 (my.conf:1)"),
])
def test_values_that_break_a_rule_are_recorded_as_overridden(line, overridden):
    applied = apply_conf(settings("Offline"), conf(line + "\n"))
    assert applied.overridden == ([overridden] if overridden else [])


def test_server_latency_bound_may_only_tighten():
    assert apply_conf(settings("Server"), conf("*.Server.target_latency = 10\n")).overridden == []
    assert apply_conf(settings("Server"), conf("*.Server.target_latency = 20\n")).overridden == [
        "target_latency: 15.0 -> 20 (my.conf:1)"]


def test_a_user_conf_that_restores_the_rule_drops_the_override():
    short = settings("Offline", duration=1.0)
    assert short.overridden == ["min_duration: 600000 -> 1000"]
    restored = apply_conf(short, conf("*.Offline.min_duration = 600000\n"))
    assert restored.overridden == [] and restored.values["min_duration_ms"] == 600000
    assert "resnet50.Offline.min_duration = 600000" in restored.conf_text("user")


def test_mlperf_conf_is_below_user_conf():
    short = settings("Server", duration=1.0)
    c = conf("*.Server.target_qps = 1.0\n*.Server.min_duration = 600000\n"
             "*.*.qsl_rng_seed = 1\n*.MultiStream.target_qps = 20\n", kind="mlperf")
    applied = apply_conf(short, c)
    assert applied.values["server_target_qps"] == 50  # the system's value stays
    assert applied.values["min_duration_ms"] == 1000  # so does the command line's override
    assert applied.values["qsl_rng_seed"] == 1
    assert applied.overridden == ["min_duration: 600000 -> 1000", "qsl_rng_seed: 7322528924094909334 -> 1 (my.conf:3)"]
    assert "resnet50.Server.target_qps = 1.0" in applied.conf_text("rules")


def test_performance_sample_count_is_bounded_by_the_dataset_and_recorded():
    small = settings(total=64)
    assert small.overridden == [
        "performance_sample_count_override: 1024 -> 64 (the dataset has 64 samples)"]
    applied = apply_conf(small, conf("*.*.performance_sample_count_override = 2048\n"), 64)
    assert applied.values["performance_sample_count_override"] == 64
    assert applied.overridden == ["performance_sample_count_override: 1024 -> 64 "
                                  "(my.conf:1 asks 2048; the dataset has 64 samples)"]
    assert "resnet50.Offline.performance_sample_count_override = 64" in applied.conf_text("user")
    enough = apply_conf(settings(), conf("*.*.performance_sample_count_override = 2048\n"), 5000)
    assert enough.values["performance_sample_count_override"] == 2048 and not enough.overridden


@pytest.mark.parametrize("line,fragment", [
    ("resnet50.Offline.target_qps=5", "spaces around '='"),
    ("resnet50.Offline.target_qps = 5 # five", "comments on their own line"),
    ("resnet50.Offline.target_qps", "expected 'model.Scenario.key = value'"),
    ("resnet50.target_qps = 5", "model.Scenario.key"),
    ("resnet.Offline.target_qps = 5", "unknown model 'resnet' (allowed: *, resnet50"),
    ("resnet50.offline.target_qps = 5", "unknown scenario 'offline' (allowed: *, SingleStream"),
    ("resnet50.Offline.target_qsp = 5", "unknown key 'target_qsp' for user.conf (allowed: min_duration"),
    ("resnet50.SingleStream.target_qps = 5", "LoadGen does not read target_qps in SingleStream"),
    ("resnet50.Offline.samples_per_query = 4", "LoadGen does not read samples_per_query in Offline"),
    ("resnet50.Offline.target_qps = fast", "'fast' is not a number"),
    ("resnet50.Offline.target_qps = nan", "'nan' is not a number"),
    ("resnet50.Offline.min_query_count = 2.5", "takes an integer"),
    ("*.*.qsl_rng_seed = 1", "seeds belong in mlperf.conf"),
    ("*.*.mode = 2", "mode is chosen by raybench"),
])
def test_bad_lines_are_one_line_errors_naming_file_line_and_text(line, fragment):
    with pytest.raises(ConfigError) as err:
        conf("# a comment\n" + line + "\n")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"my.conf:2: {line.strip()!r}: "), message
    assert fragment in message, message


def test_the_rounds_other_models_are_read_and_not_applied():
    c = conf("gnmt.Server.target_latency = 250\nmobilenet.*.performance_sample_count_override = 1024\n", "mlperf")
    assert apply_conf(settings("Server"), c) == settings("Server")


def test_read_conf_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="user.conf .*missing.conf: cannot read"):
        read_conf(tmp_path / "missing.conf", "user")
    (tmp_path / "user.conf").write_text("*.Offline.target_qps = 7\n")
    assert read_conf(tmp_path / "user.conf", "user").entries[0].value == 7
