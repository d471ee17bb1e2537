"""The v1.0 rules data and the assembly of LoadGen TestSettings."""

from __future__ import annotations

import pytest

from raybench.benchmarks import get_benchmark
from raybench.config.models import HarnessSettings
from raybench.config.names import BENCHMARKS, model_of
from raybench.errors import ConfigError
from raybench.rules import load_rules
from raybench.rules.settings import Overrides, apply_overrides, build_settings, to_test_settings

RULES = load_rules("v1.0")
HARNESS = HarnessSettings(batch_size=8, server_target_qps=100, offline_expected_qps=200,
                          single_stream_expected_latency_ns=2_000_000,
                          multi_stream_samples_per_query=16)


def test_every_benchmark_has_rules_and_an_implementation():
    for benchmark in BENCHMARKS:
        rule = RULES.model(model_of(benchmark))
        assert rule.scenarios and rule.fp32 > 0
        assert get_benchmark(benchmark).name == model_of(benchmark)


@pytest.mark.parametrize("model,fp32,latency_ms,count", [
    ("resnet50", 76.46, 15, 1024), ("ssd-resnet34", 20.0, 100, 64), ("bert", 90.874, 130, 10833),
    ("dlrm", 80.25, 30, 204800), ("rnnt", 92.548, 1000, 2513),
])
def test_v1_0_facts(model, fp32, latency_ms, count):
    rule = RULES.model(model)
    assert (rule.fp32, rule.server_latency_ms, rule.performance_sample_count) == (fp32, latency_ms, count)


def test_seeds_and_minimums_are_the_v1_0_ones():
    assert RULES.seeds["qsl_rng_seed"] == 7322528924094909334
    assert RULES.seeds["schedule_rng_seed"] == 3507442325620259414
    assert {s: r.min_duration_ms for s, r in RULES.scenarios.items()} == dict.fromkeys(
        ["SingleStream", "MultiStream", "Server", "Offline"], 600000)
    assert RULES.scenarios["Server"].min_query_count == 270336
    assert RULES.scenarios["Offline"].min_query_count == 24576


def test_server_settings_without_overrides_follow_rules_and_system():
    s = build_settings(RULES, "resnet50", "Server", "PerformanceOnly", HARNESS, 50000)
    v = s.values
    assert v["server_target_latency_ns"] == 15_000_000
    assert v["server_target_latency_percentile"] == 0.99
    assert v["server_target_qps"] == 100.0
    assert v["server_coalesce_queries"] is True
    assert v["min_duration_ms"] == 600000 and v["min_query_count"] == 270336
    assert v["performance_sample_count_override"] == 1024
    assert s.overridden == []
    assert "resnet50.Server.target_latency = 15" in s.conf_text("rules")
    assert "resnet50.Server.target_qps = 100" in s.conf_text("user")


def test_overrides_are_applied_and_reported():
    s = build_settings(RULES, "bert-99", "Offline", "PerformanceOnly", HARNESS, 32,
                       Overrides(duration=2.5, queries=7, target_qps=50))
    assert s.values["min_duration_ms"] == 2500
    assert s.values["min_query_count"] == 7
    assert s.values["offline_expected_qps"] == 50.0
    assert s.values["performance_sample_count_override"] == 32  # bounded by the dataset
    assert s.overridden == [
        "performance_sample_count_override: 10833 -> 32 (the dataset has 32 samples)",
        "min_duration: 600000 -> 2500", "min_query_count: 24576 -> 7", "target_qps: 200.0 -> 50.0"]
    assert "bert.Offline.performance_sample_count_override = 32" in s.conf_text("user")


def test_a_later_override_replaces_an_earlier_record_of_its_key():
    base = build_settings(RULES, "resnet50", "Offline", "PerformanceOnly", HARNESS, 50000,
                          Overrides(duration=2.5))
    again = apply_overrides(base, Overrides(duration=4), 50000)
    assert again.values["min_duration_ms"] == 4000
    assert again.overridden == ["min_duration: 600000 -> 4000"]
    assert base.values["min_duration_ms"] == 2500  # left as it was


def test_multistream_uses_the_systems_samples_per_query_and_the_v1_0_interval():
    s = build_settings(RULES, "ssd-resnet34", "MultiStream", "PerformanceOnly", HARNESS, 64)
    assert s.values["multi_stream_samples_per_query"] == 16
    assert "ssd-resnet34.MultiStream.target_latency = 66" in s.conf_text("rules")
    with pytest.raises(ConfigError, match="MultiStream"):
        build_settings(RULES, "resnet50", "MultiStream", "PerformanceOnly", HARNESS, 64,
                       Overrides(target_qps=5))


def test_scenario_missing_from_the_round_is_refused():
    with pytest.raises(ConfigError, match=r"3d-unet has no Server scenario in v1.0 \(allowed: SingleStream, Offline\)"):
        build_settings(RULES, "3d-unet-99", "Server", "PerformanceOnly", HARNESS, 16)


def test_system_without_a_target_is_refused():
    bare = HarnessSettings(batch_size=4)
    with pytest.raises(ConfigError, match="server_target_qps"):
        build_settings(RULES, "dlrm-99", "Server", "PerformanceOnly", bare, 100)


def test_values_become_loadgen_test_settings():
    import mlperf_loadgen as lg

    s = build_settings(RULES, "resnet50", "SingleStream", "AccuracyOnly", HARNESS, 100)
    ts = to_test_settings(s.values)
    assert ts.scenario == lg.TestScenario.SingleStream
    assert ts.mode == lg.TestMode.AccuracyOnly
    assert ts.single_stream_expected_latency_ns == 2_000_000
    assert ts.qsl_rng_seed == RULES.seeds["qsl_rng_seed"]


def test_unknown_round():
    with pytest.raises(ConfigError, match="'v0.5'.*v1.0"):
        load_rules("v0.5")
