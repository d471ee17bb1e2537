"""The submission rules file, the audit.config of each test and the TestSettings it sets."""

from __future__ import annotations

import pytest

from raybench.config.models import HarnessSettings
from raybench.config.names import BENCHMARKS, SCENARIOS, model_of
from raybench.errors import ConfigError
from raybench.rules import RULES_DIR, load_rules
from raybench.rules.audit import apply_audit, audit_config_text, audit_settings
from raybench.rules.settings import Overrides, build_settings
from raybench.rules.submission import load_submission_rules, parse_submission_rules

RULES = load_submission_rules()
TEXT = (RULES_DIR / "v1.0-submission.yaml").read_text()


def settings(scenario="Offline", benchmark="resnet50", **overrides):
    harness = HarnessSettings(batch_size=8, offline_expected_qps=100, server_target_qps=50)
    return build_settings(load_rules(), benchmark, scenario, "PerformanceOnly", harness, 5000,
                          Overrides(**overrides))


def test_companion_file_is_not_a_round():
    with pytest.raises(ConfigError) as err:
        load_rules("v9")
    assert "v1.0-submission" not in str(err.value) and "v1.0" in str(err.value)
    with pytest.raises(ConfigError):
        load_rules("v1.0-submission")


@pytest.mark.parametrize("old,new,fragment", [
    ("  single_stream_relaxed:", "  surprise: 1\n  single_stream_relaxed:", "audit.surprise: unknown field"),
    ("          rnnt: 4096\n", "          rnnt: 4096\n          gnmt: 1\n", "unknown model 'gnmt'"),
    ("          rnnt: 4096\n", "", "no value for rnnt"),
    ("      excluded_scenarios: [MultiStream]\n    TEST04-B",
     "      excluded_scenarios: [Multistream]\n    TEST04-B", "'Multistream'"),
    ("    dlrm: '^AUC=([\\d\\.]+)'\n", "", "no pattern for dlrm"),
    ("    3d-unet: 'Accuracy", "    3d-unet: '(Accuracy", "not a regular expression"),
    ("        bert-99.9: [Offline]\n        dlrm-99: [Offline]\n        dlrm-99.9: [Offline]\n"
     "        3d-unet-99: [Offline]",
     "        bert-99.9: [Offline]\n        dlrm-99: [Offline]\n        dlrm-99.9: [Offline]\n"
     "        3d-unet-99: [Ofline]", "'Ofline'"),
])
def test_malformed_rules_are_one_line_errors(old, new, fragment):
    assert old in TEXT
    with pytest.raises(ConfigError) as err:
        parse_submission_rules(TEXT.replace(old, new, 1), "rules.yaml")
    message = str(err.value)
    assert message.startswith("rules.yaml: ") and "\n" not in message
    assert fragment in message, message


@pytest.mark.parametrize("benchmark", BENCHMARKS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_which_tests_apply(benchmark, scenario):
    tests = RULES.applicable_tests(benchmark, scenario)
    assert tests[0] == "TEST01" and tests[-1] == "TEST05"
    no_test04 = model_of(benchmark) in ("bert", "dlrm", "rnnt") or scenario == "MultiStream"
    assert ("TEST04-A" in tests) == ("TEST04-B" in tests) == (not no_test04)


@pytest.mark.parametrize("benchmark,target", [
    ("resnet50", 4096), ("ssd-mobilenet", 1024), ("ssd-resnet34", 256), ("bert-99", 4096),
    ("bert-99.9", 4096), ("dlrm-99", 4096), ("rnnt", 4096), ("3d-unet-99.9", 64)])
def test_test01_samples_per_model(benchmark, target):
    text = audit_config_text("TEST01", benchmark)
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert lines == ["*.*.mode = 2", "*.*.accuracy_log_rng_seed = 720381539243781796",
                     f"*.*.accuracy_log_sampling_target = {target}"]
    assert audit_settings("TEST01", benchmark, "Server")["accuracy_log_sampling_target"] == target


@pytest.mark.parametrize("test,expected", [
    ("TEST04-A", {"performance_issue_unique": True, "performance_issue_same": False}),
    ("TEST04-B", {"performance_issue_unique": False, "performance_issue_same": True,
                  "performance_issue_same_index": 3}),
    ("TEST05", {"qsl_rng_seed": 313588358309856706, "sample_index_rng_seed": 471397156132239067,
                "schedule_rng_seed": 413914573387865862}),
])
def test_audit_settings_are_exact(test, expected):
    got = audit_settings(test, "ssd-resnet34", "SingleStream")
    assert got == {"mode": "PerformanceOnly", **expected}
    assert all(type(got[k]) is type(v) for k, v in expected.items())  # seeds stay exact ints


def test_apply_audit_keeps_the_runs_rules_and_overrides():
    base = settings("Server", duration=2.0)
    audited = apply_audit(base.with_mode("AccuracyOnly"), "TEST05")
    assert audited.mode == audited.values["mode"] == "PerformanceOnly"
    assert audited.values["qsl_rng_seed"] == 313588358309856706
    assert audited.values["server_target_qps"] == base.values["server_target_qps"]
    assert audited.rule_conf == base.rule_conf and audited.user_conf == base.user_conf
    assert audited.overridden == base.overridden == ["min_duration: 600000 -> 2000"]
    assert base.values["qsl_rng_seed"] == 7322528924094909334  # the original is unchanged


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream"])
def test_test04b_issues_p_samples_in_offline_as_loadgen_1_0_did(scenario):
    base = settings(scenario, duration=2.0, queries=1, performance_sample_count=512)
    a, b = apply_audit(base, "TEST04-A"), apply_audit(base, "TEST04-B")
    assert a.values["min_duration_ms"] == 2000 and a.values["min_query_count"] == 1
    if scenario == "Offline":  # LoadGen >= 2 would fill the whole run with the sample
        assert (b.values["min_query_count"], b.values["min_duration_ms"]) == (512, 0)
    else:  # Server/SingleStream: B runs the full duration, in v1.0 as now
        assert (b.values["min_query_count"], b.values["min_duration_ms"]) == (1, 2000)


def test_unknown_test_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="'TEST02'.*TEST01, TEST04-A, TEST04-B, TEST05"):
        audit_config_text("TEST02", "resnet50")


@pytest.mark.parametrize("system_type,benchmark,required", [
    ("datacenter", "resnet50", ["Offline"]), ("edge", "resnet50", ["SingleStream", "Offline"]),
    ("edge,datacenter", "bert-99.9", ["Offline"]), ("datacenter,edge", "bert-99", ["SingleStream", "Offline"]),
])
def test_required_scenarios(system_type, benchmark, required):
    assert RULES.scenario_set(system_type).required[benchmark] == required


@pytest.mark.parametrize("benchmark,line,value", [
    ("resnet50", "accuracy=76.028%, good=38014, total=50000", "76.028"),
    ("ssd-mobilenet", "mAP=22.912%", "22.912"),
    ("ssd-resnet34", "mAP=20.111%", "20.111"),
    ("bert-99", '{"exact_match": 83.6, "f1": 90.381}', "90.381"),
    ("dlrm-99.9", "AUC=80.185%", "80.185"),
    ("rnnt", "Word Error Rate: 7.450%, accuracy=92.550%", "92.550"),
    ("3d-unet-99", "Accuracy: mean = 0.85387, whole tumor = 0.9 ...", "0.85387"),
])
def test_accuracy_patterns_read_the_official_result_lines(benchmark, line, value):
    match = RULES.accuracy_pattern(benchmark).match(line)
    assert match and match.group(1) == value
    assert not RULES.accuracy_pattern(benchmark).match("top-1 accuracy (%): 76.0280")
