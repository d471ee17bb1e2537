"""`--user-conf`, `--mlperf-conf` and `--audit` in the argument table: validated and applied
by `prepare` (no Ray), and one-line errors with exit code 2 from `raybench run`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from raybench.cli import app
from raybench.config.names import Mode
from raybench.errors import ConfigError
from raybench.run import RunRequest, prepare
from raybench.run.lifecycle import TestSpec, settings_of, loadgen_tests
from raybench.run.request import QUICK_DURATION_S

runner = CliRunner()


def null(**kw) -> RunRequest:
    return RunRequest(engine="null", system="cpu", **kw)


def test_a_user_conf_sets_the_runs_length_unless_the_command_line_does(tmp_path):
    user = tmp_path / "user.conf"
    user.write_text("resnet50.Offline.min_duration = 2000\n*.Offline.target_qps = 123\n")
    quick = prepare(null()).settings
    assert quick.values["min_duration_ms"] == QUICK_DURATION_S * 1000
    assert quick.values["min_query_count"] == 1

    s = prepare(null(user_conf=user)).settings
    assert s.values["min_duration_ms"] == 2000 and s.values["offline_expected_qps"] == 123
    assert s.values["min_query_count"] == 24576  # the rules': no quick default with a user.conf
    assert s.overridden == [f"min_duration: 600000 -> 2000 ({user}:1)"]
    assert "resnet50.Offline.target_qps = 123" in s.conf_text("user")

    s = prepare(null(user_conf=user, duration=3.0)).settings
    assert s.values["min_duration_ms"] == 3000  # the command line wins over the file
    assert s.overridden == ["min_duration: 600000 -> 3000"]


def test_mlperf_conf_is_the_bottom_layer(tmp_path):
    rules = tmp_path / "mlperf.conf"
    rules.write_text("*.Offline.min_query_count = 100\n*.*.schedule_rng_seed = 1\n"
                     "*.Offline.target_qps = 5\n")
    user = tmp_path / "user.conf"
    user.write_text("*.Offline.min_query_count = 200\n")
    s = prepare(null(mlperf_conf=rules, user_conf=user)).settings
    assert s.values["min_query_count"] == 200  # user.conf above mlperf.conf
    assert s.values["schedule_rng_seed"] == 1
    assert s.values["offline_expected_qps"] == 8000  # the system's value is user.conf's
    assert "resnet50.Offline.schedule_rng_seed = 1" in s.conf_text("rules")
    assert any(o.startswith("schedule_rng_seed: 3507442325620259414 -> 1") for o in s.overridden)


def test_audit_makes_one_performance_test_with_the_audit_settings():
    prepared = prepare(null(audit="test05", duration=1.0))
    assert prepared.mode == Mode.PERFORMANCE
    assert prepared.tests == [TestSpec(Mode.PERFORMANCE, "TEST05")]
    (test,) = prepared.tests
    assert str(test.unit) == "compliance/TEST05" and str(test.logs) == "performance/run_1"
    values = settings_of(prepared, test).values
    assert values["qsl_rng_seed"] == 313588358309856706
    assert prepared.settings.values["qsl_rng_seed"] == 7322528924094909334  # the run's own
    assert [str(t.unit) for t in prepare(null()).tests] == ["performance/run_1"]
    assert [str(t.unit) for t in loadgen_tests(Mode.SUBMISSION)] == ["accuracy", "performance/run_1"]


@pytest.mark.parametrize("request_kw,fragment", [
    (dict(audit="TEST04-A", benchmark="bert-99"),
     "--audit TEST04-A does not apply to bert-99 Offline (applicable: TEST01, TEST05)"),
    (dict(audit="TEST04-B", scenario="MultiStream"), "does not apply to resnet50 MultiStream"),
    (dict(audit="TEST01", mode="AccuracyOnly"), "--audit TEST01 is a PerformanceOnly test; "
                                                "drop --mode AccuracyOnly"),
])
def test_audit_that_cannot_run_is_refused(request_kw, fragment):
    with pytest.raises(ConfigError) as err:
        prepare(null(**request_kw))
    assert fragment in str(err.value)


@pytest.mark.parametrize("args,fragment", [
    (["--audit", "TEST07"], "'TEST07' (allowed: TEST01, TEST04-A, TEST04-B, TEST05)"),
    (["--user-conf", "{tmp}/missing.conf"], "user.conf {tmp}/missing.conf: cannot read"),
    (["--user-conf", "{tmp}/bad.conf"], "bad.conf:2: 'resnet50.Offline.bogus = 3': unknown key"),
    (["--mlperf-conf", "{tmp}/bad.conf"], "bad.conf:1: 'resnet50.Offline.min_duration=1': "
                                          "expected 'model.Scenario.key = value'"),
])
def test_bad_conf_or_audit_is_one_line_and_exit_2(tmp_path, args, fragment):
    (tmp_path / "bad.conf").write_text("resnet50.Offline.min_duration=1\n" if "--mlperf-conf" in args
                                       else "# ok\nresnet50.Offline.bogus = 3\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["run", "--engine", "null", "--system", "cpu", *args,
                                 "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert fragment.replace("{tmp}", str(tmp_path)) in result.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_inline_runs_one_engine_and_refuses_more():
    assert prepare(RunRequest(engine="null", system="cpu", transport="inline")).engines == 1
    with pytest.raises(ConfigError, match=r"^--engines 2 with --transport inline: .*"
                                          r"\(allowed: --engines 1, or graph or calls\)$"):
        prepare(RunRequest(engine="null", system="cpu", transport="inline", engines=2))


@pytest.mark.parametrize("scenario,engines,transport,used", [
    ("SingleStream", None, None, "inline"),  # one query at a time: no Ray in between
    ("SingleStream", 2, None, None),  # asked for engines: graph or calls, for the host
    ("SingleStream", None, "calls", "calls"),
    ("Offline", None, None, None),
    ("MultiStream", None, None, None),
])
def test_singlestream_runs_inline_unless_asked_otherwise(scenario, engines, transport, used):
    prepared = prepare(RunRequest(engine="null", system="cpu", scenario=scenario,
                                  engines=engines, transport=transport))
    assert (prepared.transport.value if prepared.transport else None) == used
    if used == "inline":
        assert prepared.engines == 1
    elif engines:
        assert prepared.engines == engines


def test_a_null_singlestream_run_expects_the_harness_latency_not_the_systems():
    prepared = prepare(RunRequest(engine="null", system="cpu", scenario="SingleStream"))
    assert prepared.settings.values["single_stream_expected_latency_ns"] == 20_000
    assert "single_stream_expected_latency_ns: 50000 -> 20000 (null engine)" in prepared.tuned
    asked = prepare(RunRequest(engine="null", system="cpu", scenario="SingleStream",
                               target_qps=10_000))  # the command line still wins
    assert asked.settings.values["single_stream_expected_latency_ns"] == 100_000
    sim = prepare(RunRequest(engine="sim", system="cpu", scenario="SingleStream"))
    assert sim.settings.values["single_stream_expected_latency_ns"] == 50_000
