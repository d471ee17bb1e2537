"""Compliance tests run by raybench itself on one local Ray: `raybench run --audit`, and
`raybench submission compliance` on the resnet50 stand-in (ONNX Runtime engines, so TEST01
compares real outputs) and on sim engines.

Whether a compared run lands within TEST01's 10 % or TEST05's 5 % depends on how busy the
host is, so these tests assert what the runs and verifications write, not timing verdicts;
TEST05 is made to fail by engines twice as slow, far outside any noise.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from raybench.cli import app
from raybench.config.models import SimLatency
from raybench.results.loadgen_log import ACCURACY_LOG, DETAIL, read_accuracy_log, read_detail
from raybench.rules.audit import AUDIT_CONFIG, audit_config_text
from raybench.run import RunRequest, prepare
from raybench.run.layout import VERIFY_ACCURACY, VERIFY_PERFORMANCE, ScenarioRuns
from raybench.run.record import RunRecord
from raybench.submission.check import check_tree
from raybench.submission.compliance import prepare_compliance, run_compliance
from raybench.submission.verify import PASS, audit_mismatches

runner = CliRunner()
TESTS = ("TEST01", "TEST04-A", "TEST04-B", "TEST05")
SEED_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"
SEED_ID = "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT"


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


# What each test's audit.config must make LoadGen do, as its detail log says (resnet50 Offline,
# performance sample count 1024: TEST04-A issues it once each, TEST04-B sample 3 as often).
EFFECTIVE = {
    "TEST01": {"effective_accuracy_log_rng_seed": 720381539243781796,
               "effective_accuracy_log_sampling_target": 4096},
    "TEST04-A": {"effective_performance_issue_unique": True,
                 "effective_performance_issue_same": False, "effective_samples_per_query": 1024},
    "TEST04-B": {"effective_performance_issue_unique": False,
                 "effective_performance_issue_same": True,
                 "effective_performance_issue_same_index": 3, "effective_samples_per_query": 1024},
    "TEST05": {"effective_qsl_rng_seed": 313588358309856706,
               "effective_sample_index_rng_seed": 471397156132239067,
               "effective_schedule_rng_seed": 413914573387865862},
}


@pytest.mark.parametrize("test", TESTS)
def test_run_audit_settings_reach_loadgen(ray_cluster, tmp_path, test):
    code, output = cli("run", "--engine", "null", "--system", "cpu", "--duration", 0.5,
                       "--audit", test.lower(), "--output", tmp_path)
    assert code == 0, output
    runs = ScenarioRuns.at(tmp_path, "cpu", "resnet50", "Offline")
    run = runs.compliance_run(test)
    detail = read_detail(run / DETAIL)
    assert detail.get("effective_test_mode") == "PerformanceOnly"
    for key, value in EFFECTIVE[test].items():
        assert detail.get(key) == value, key
    assert any("Found Audit Config file" in w for w in detail.warnings)
    assert audit_mismatches(run, test, "resnet50") == []
    assert (run / AUDIT_CONFIG).read_text() == audit_config_text(test, "resnet50")
    record = RunRecord.read(run)
    assert record.audit == record.request.audit == test
    assert record.test_settings["mode"] == "PerformanceOnly"
    assert not runs.performance.exists() and not list(tmp_path.rglob("*.partial"))


@pytest.fixture(scope="module")
def standin_compliance(ray_cluster, resnet50_standin, tmp_path_factory):
    """`raybench submission compliance` of the 256-sample resnet50 stand-in: the submission
    run (accuracy, performance) and the four tests, on ONNX Runtime engines."""
    out = tmp_path_factory.mktemp("compliance")
    code, output = cli("submission", "compliance", "--system", "cpu",
                       "--model", resnet50_standin.model, "--data-dir", resnet50_standin.data_dir,
                       "--duration", 1, "--output", out)
    assert code in (0, 1), output  # 1: a timing comparison failed on a busy host
    return ScenarioRuns.at(out, "cpu", "resnet50", "Offline"), output


def test_compliance_runs_every_test_and_writes_every_verification(standin_compliance):
    runs, output = standin_compliance
    assert "AccuracyOnly, PerformanceOnly, TEST01, TEST04-A, TEST04-B, TEST05" in " ".join(output.split())
    for run in [runs.accuracy, runs.performance] + [runs.compliance_run(t) for t in TESTS]:
        assert (run / DETAIL).is_file(), run
    for test in ("TEST01", "TEST04-A", "TEST05"):
        text = (runs.compliance(test) / VERIFY_PERFORMANCE).read_text()
        assert text.startswith("Verifying performance.\n") and "score = " in text, text
        assert f"{test:<9} verify_performance.txt" in output
    assert not (runs.compliance("TEST04-B") / VERIFY_PERFORMANCE).exists()  # TEST04-A's compares both
    a, b = (read_detail(runs.compliance_run(t) / DETAIL) for t in ("TEST04-A", "TEST04-B"))
    # the stand-in's 256 samples: A issues each once, B sample 3 as often (LoadGen 1.0's query)
    assert a.get("effective_samples_per_query") == b.get("effective_samples_per_query") == 256
    for test in TESTS:
        record = RunRecord.read(runs.compliance_run(test))
        assert record.audit == test and record.request.audit is None  # one request, many tests
        assert "performance_sample_count_override: 1024 -> 256 (the dataset has 256 samples)" \
            in record.overridden


def test_test01_compares_real_outputs_of_the_performance_run(standin_compliance):
    runs, output = standin_compliance
    sampled = read_accuracy_log(runs.compliance_run("TEST01") / ACCURACY_LOG)
    assert sampled and all(e["data"] for e in sampled)  # engines returned outputs
    reference = {e["qsl_idx"]: e["data"] for e in read_accuracy_log(runs.accuracy / ACCURACY_LOG)}
    assert all(e["data"] == reference[e["qsl_idx"]] for e in sampled)
    text = (runs.compliance("TEST01") / VERIFY_ACCURACY).read_text()
    counts = dict(ln.split(" = ") for ln in text.splitlines() if " = " in ln)
    assert int(counts["num_perf_log_entries"]) == len(sampled)
    assert counts["num_perf_log_data_mismatch"] == "0" and text.endswith(PASS + "\n"), text
    assert "TEST01    verify_accuracy.txt     PASS" in output


def test_a_second_compliance_run_reuses_the_submission_run_and_keeps_the_first(
        standin_compliance, resnet50_standin):
    runs, _ = standin_compliance
    accuracy_mtime = (runs.accuracy / ACCURACY_LOG).stat().st_mtime_ns
    first = (runs.compliance_run("TEST05") / DETAIL).read_text()
    common = ["--system", "cpu", "--model", resnet50_standin.model,
              "--data-dir", resnet50_standin.data_dir, "--output", runs.root.parents[2]]
    code, output = cli("submission", "compliance", *common, "--duration", 1, "--test", "test05")
    assert code in (0, 1), output
    assert "TEST05 (reusing AccuracyOnly, PerformanceOnly)" in " ".join(output.split())
    assert (runs.accuracy / ACCURACY_LOG).stat().st_mtime_ns == accuracy_mtime
    (kept,) = runs.root.glob("history/*/compliance/TEST05/performance/run_1")
    assert (kept / DETAIL).read_text() == first
    assert (kept.parents[1] / VERIFY_PERFORMANCE).is_file()  # the old verification went along

    code, output = cli("submission", "compliance", *common, "--duration", 2)
    assert code == 2 and output.startswith("Error: the submission run in ")
    assert "min_duration_ms 1000 (now 2000)" in output and "--rerun" in output
    code, output = cli("submission", "compliance", *common, "--duration", 1, "--test", "TEST02")
    assert code == 2 and "--test TEST02: not a compliance test of resnet50 Offline" in output


def test_test05_fails_when_the_engines_are_slower_than_in_the_submission_run(ray_cluster, tmp_path):
    # 2 engines of 64-sample batches: about 500 samples/s, then 250 (far below what the
    # harness sustains on a busy host, so the engines set the pace)
    base = dict(engine="sim", system="cpu", duration=1.0, target_qps=500.0, output=tmp_path)
    fast = RunRequest(**base, sim=SimLatency(fixed_us=1000, per_sample_us=4000))
    prepared, reused = prepare_compliance(fast, tests=["TEST05"])
    assert [t.name for t in prepared.tests] == ["PerformanceOnly", "TEST05"] and not reused
    run_compliance(prepared)
    slow = RunRequest(**base, sim=SimLatency(fixed_us=1000, per_sample_us=8000))
    prepared, reused = prepare_compliance(slow, tests=["TEST05"])
    assert reused == ["PerformanceOnly"]  # the same TestSettings: only the engines differ
    done = run_compliance(prepared)
    (verdict,) = done.verdicts
    assert not verdict.passed and not done.passed
    assert verdict.lines[-1] == "TEST FAIL: Test score invalid", verdict.text
    reference, test = (float(verdict.lines[i].split(" = ")[1]) for i in (1, 2))
    assert test < 0.75 * reference


def test_sim_compliance_tree_says_it_has_no_outputs(ray_cluster, tmp_path):
    results = tmp_path / "results"
    code, output = cli("submission", "compliance", "--engine", "sim", "--system", SEED_SYSTEM,
                       "--benchmark", "ssd-resnet34", "--duration", 1, "--output", results)
    assert code in (0, 1), output
    assert "TEST01    verify_accuracy.txt     n/a" in output
    runs = ScenarioRuns.at(results, SEED_SYSTEM, "ssd-resnet34", "Offline")
    assert not runs.accuracy.exists()
    assert "the sim engine produces no outputs" in (runs.compliance("TEST01") / VERIFY_ACCURACY).read_text()

    code, output = cli("submission", "assemble", results, "--system", SEED_SYSTEM,
                       "--out", tmp_path / "tree")
    assert code == 1 and "NOT SUBMITTABLE" in output  # the short runs are overridden
    root = tmp_path / "tree" / "closed" / "Supermicro"
    where = f"{SEED_ID}/ssd-resnet34/Offline"
    readme = (root / f"measurements/{where}/README.md").read_text()
    assert "The sim engine produces no outputs" in readme
    runs_json = json.loads((root / f"measurements/{where}/raybench_runs.json").read_text())
    assert sorted(runs_json) == ["TEST01", "TEST04-A", "TEST04-B", "TEST05", "accuracy",
                                 "performance"]
    assert runs_json["accuracy"] is None and runs_json["TEST01"]["audit"] == "TEST01"
    # the README's way to reproduce: the measurements' two files give the same TestSettings
    measurements = root / f"measurements/{where}"
    assert "--mlperf-conf mlperf.conf --user-conf user.conf" in readme
    again = prepare(RunRequest(engine="sim", system=SEED_SYSTEM, benchmark="ssd-resnet34",
                               mlperf_conf=measurements / "mlperf.conf",
                               user_conf=measurements / "user.conf"))
    assert again.settings.with_mode("PerformanceOnly").values == \
        runs_json["performance"]["test_settings"]
    gaps = check_tree(tmp_path / "tree").gaps
    kinds = {g.kind for g in gaps}
    assert {"overridden", "no-outputs"} <= kinds, [str(g) for g in gaps]
    unexpected = [str(g) for g in gaps if g.kind not in ("overridden", "no-outputs") and not (
        g.kind == "compliance" and g.where.endswith(VERIFY_PERFORMANCE))]
    assert not unexpected  # only timing verdicts may differ on a busy host
    assert f"[no-outputs] closed/Supermicro/compliance/{where}/TEST01/{VERIFY_ACCURACY}: TEST01 " \
           "accuracy cannot be verified: the sim engine produces no outputs" in map(str, gaps)
