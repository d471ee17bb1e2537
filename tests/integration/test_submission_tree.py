"""The submission tree from real runs: TEST01 on a real accuracy run, the assembler, the checker.

The accuracy run is a real `raybench run` of the resnet50 stand-in (ONNX Runtime engines
on Ray). Performance and compliance runs are real LoadGen runs of a small in-process SUT
(tests/loadgen_bare.py) that answers each sample with the accuracy run's output for it, so
their speeds compare as the compliance tests expect; TEST01's sampled responses are then
real model outputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raybench.benchmarks import get_benchmark
from raybench.cli import app
from raybench.results.accuracy import AccuracyResult
from raybench.results.loadgen_log import ACCURACY_LOG, DETAIL, SUMMARY, read_accuracy_log
from raybench.rules import load_rules
from raybench.submission.check import check_tree
from raybench.run.layout import ScenarioRuns
from raybench.submission.tree import RUNS_JSON, assemble
from raybench.submission.verify import ACCURACY_CHECK_PASS, PASS, verify_accuracy
from tests.loadgen_bare import SAMPLE_US, bare_run, sut_settings

runner = CliRunner()
SIM_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"
SIM_ID = "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT"
TESTS = ("TEST01", "TEST04-A", "TEST04-B", "TEST05")
STANDIN_COUNT = 256  # the resnet50_standin fixture's


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def perf_settings(total):
    return sut_settings(total=total)


def rewrite_accuracy_txt(accuracy_dir: Path, data_dir: Path) -> None:
    """accuracy.txt for the accuracy log as it is now, written as a run writes it."""
    entries = read_accuracy_log(accuracy_dir / ACCURACY_LOG)
    rule = load_rules().model("resnet50")
    score = get_benchmark("resnet50").accuracy(entries, data_dir)
    AccuracyResult("resnet50", rule.metric, score, rule.fp32, 0.99).write(accuracy_dir)


def write_payloads(path: Path, entries: list[dict], change=None) -> Path:
    payloads = {int(e["qsl_idx"]): e["data"] for e in entries}
    if change:
        payloads = {i: change(i, d) for i, d in payloads.items()}
    path.write_text(json.dumps(payloads))
    return path


def wrong_label(i: int, data: str) -> str:
    """Every third sample answered with another class."""
    import numpy as np

    if i % 3:
        return data
    label = np.frombuffer(bytes.fromhex(data), np.float32)[0]
    return np.float32(label + 1).tobytes().hex()


@pytest.fixture(scope="module")
def real(ray_cluster, resnet50_standin, tmp_path_factory):
    """A real `raybench run` (accuracy, then performance) of the resnet50 stand-in."""
    out = tmp_path_factory.mktemp("raybench-results")
    code, output = cli("run", "--benchmark", "resnet50", "--scenario", "Offline", "--system", "cpu",
                       "--model", resnet50_standin.model, "--data-dir", resnet50_standin.data_dir,
                       "--duration", 1, "--output", out)
    assert code == 0, output
    return ScenarioRuns.at(out, "cpu", "resnet50", "Offline")


@pytest.fixture(scope="module")
def good_performance(tmp_path_factory):
    """The performance runs of the good results. They are compared within a few percent, so
    they run before Ray starts (the first test that needs them comes before any that needs
    only the real run)."""
    runs = ScenarioRuns.at(tmp_path_factory.mktemp("good"), "cpu", "resnet50", "Offline")
    s = perf_settings(STANDIN_COUNT)
    bare_run(runs.performance, s, total_count=STANDIN_COUNT)
    for test in ("TEST04-A", "TEST04-B", "TEST05"):
        bare_run(runs.compliance_run(test), s, test, total_count=STANDIN_COUNT)
    return runs


@pytest.fixture(scope="module")
def good(good_performance, real):
    """Results whose every run should pass: the real accuracy run, and performance and
    compliance runs of one SUT; in TEST01 it answers with the accuracy run's outputs."""
    runs = good_performance
    shutil.copytree(real.accuracy, runs.accuracy)
    entries = read_accuracy_log(real.accuracy / ACCURACY_LOG)
    assert len(entries) == STANDIN_COUNT
    payloads = write_payloads(runs.root.parents[2] / "payloads.json", entries)
    bare_run(runs.compliance_run("TEST01"), perf_settings(STANDIN_COUNT), "TEST01",
             payloads=payloads, total_count=STANDIN_COUNT)
    return runs


def tree_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def good_tree(good, tmp_path_factory):
    out = tmp_path_factory.mktemp("submission")
    done = assemble(good.root.parents[2], "cpu", out)
    return out, done


def test_good_tree_has_the_official_layout_and_only_short_run_gaps(good, good_tree):
    out, done = good_tree
    root = out / "open" / "raybench"
    assert done.root == root
    where = "cpu/resnet50/Offline"
    expected = {
        "systems/cpu.json", "code/README.md", "code/resnet50/README.md",
        *(f"measurements/{where}/{n}" for n in ("mlperf.conf", "user.conf", "README.md",
                                                "cpu_Offline.json", RUNS_JSON)),
        *(f"results/{where}/performance/run_1/{n}" for n in (SUMMARY, DETAIL)),
        *(f"results/{where}/accuracy/{n}" for n in (SUMMARY, DETAIL, "accuracy.txt", ACCURACY_LOG)),
        *(f"compliance/{where}/{t}/performance/run_1/{n}" for t in TESTS for n in (SUMMARY, DETAIL)),
        *(f"compliance/{where}/{t}/verify_performance.txt" for t in ("TEST01", "TEST04-A", "TEST05")),
        f"compliance/{where}/TEST01/verify_accuracy.txt",
        f"compliance/{where}/TEST01/accuracy/accuracy.txt",
        f"compliance/{where}/TEST01/accuracy/{ACCURACY_LOG}",
    }
    assert tree_files(root) == expected
    assert all(v.passed for part in done.scenarios for v in part.verdicts), [v.text for part in done.scenarios for v in part.verdicts]
    system = json.loads((root / "systems/cpu.json").read_text())
    assert system["division"] == "open" and system["submitter"] == "raybench"
    impl = json.loads((root / f"measurements/{where}/cpu_Offline.json").read_text())
    assert impl["weight_data_types"] == "fp32" and impl["starting_weights_filename"] == "resnet50_v1.onnx"
    test01_log = root / f"compliance/{where}/TEST01/accuracy/{ACCURACY_LOG}"
    assert test01_log.stat().st_size < 10 * 1024 < (good.compliance_run("TEST01") / ACCURACY_LOG).stat().st_size
    assert (root / f"compliance/{where}/TEST01/accuracy/accuracy.txt").read_text().startswith("hash=")

    report = check_tree(out)
    assert not report.submittable
    assert {g.kind for g in report.gaps} == {"overridden", "rules"}, [str(g) for g in report.gaps]
    overridden = [g.message for g in report.gaps if g.kind == "overridden"]
    assert overridden == ["accuracy run made with overridden rules, not a submission run: "
                          "performance_sample_count_override: 1024 -> 256 (the dataset has 256 "
                          "samples); min_duration: 600000 -> 1000; min_query_count: 24576 -> 1"]
    (rules_gap,) = [g for g in report.gaps if g.kind == "rules"]  # the bare run has no record
    assert "min duration (ms) 1000 < 600000" in rules_gap.message


@pytest.fixture
def tree_copy(good_tree, tmp_path):
    out, _ = good_tree
    copy = tmp_path / "tree"
    shutil.copytree(out, copy)
    return copy, copy / "open" / "raybench"


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def new_gaps(root: Path, good_tree) -> list[str]:
    before = {str(g) for g in check_tree(good_tree[0]).gaps}
    return [str(g) for g in check_tree(root).gaps if str(g) not in before]


W = "cpu/resnet50/Offline"


@pytest.mark.parametrize("edit,expected", [
    (lambda r: edit_json(r / "systems/cpu.json", lambda d: d.update(system_type="edge")),
     "[missing-scenario] open/raybench/results/cpu/resnet50/SingleStream: required SingleStream scenario missing"),
    (lambda r: edit_json(r / "systems/cpu.json", lambda d: d.pop("cooling")),
     "[system] open/raybench/systems/cpu.json: missing field(s): cooling"),
    (lambda r: (r / f"measurements/{W}/user.conf").unlink(),
     f"[missing-file] open/raybench/measurements/{W}: missing user.conf"),
    (lambda r: (r / f"results/{W}/performance/run_1/{DETAIL}").unlink(),
     f"[missing-file] open/raybench/results/{W}/performance/run_1: missing {DETAIL}"),
    (lambda r: shutil.rmtree(r / "code/resnet50"),
     "[missing-file] open/raybench/code/resnet50: code directory missing"),
    (lambda r: (r / f"results/{W}/accuracy/accuracy.txt").write_text(
        "\n".join(ln for ln in (r / f"results/{W}/accuracy/accuracy.txt").read_text().splitlines()
                  if not ln.startswith("hash="))),
     f"[accuracy] open/raybench/results/{W}/accuracy/accuracy.txt: no hash= line for mlperf_log_accuracy.json"),
    (lambda r: (r / f"results/{W}/accuracy/accuracy.txt").write_text("top-1: 100.0\nhash=00\n"),
     f"[accuracy] open/raybench/results/{W}/accuracy/accuracy.txt: no result line of the official "
     "accuracy script (pattern ^accuracy=([\\d\\.]+))"),
    (lambda r: shutil.rmtree(r / f"compliance/{W}/TEST05"),
     f"[compliance] open/raybench/compliance/{W}/TEST05: TEST05 missing"),
    (lambda r: (r / f"compliance/{W}/TEST01/verify_accuracy.txt").unlink(),
     f"[compliance] open/raybench/compliance/{W}/TEST01/verify_accuracy.txt: TEST01: verify_accuracy.txt missing"),
    (lambda r: edit_json(r / f"measurements/{W}/{RUNS_JSON}",
                         lambda d: d["TEST05"] is None and d.update(TEST05=dict(
                             d["accuracy"], audit="TEST05", submittable=False,
                             overridden=["min_duration: 600000 -> 1000"]))),
     f"[overridden] open/raybench/measurements/{W}/{RUNS_JSON}: TEST05 run made with overridden "
     "rules, not a submission run: min_duration: 600000 -> 1000"),
    (lambda r: edit_json(r / f"measurements/{W}/{RUNS_JSON}",
                         lambda d: d["accuracy"].update(engines="two")),
     f"[missing-file] open/raybench/measurements/{W}/{RUNS_JSON}: accuracy: not a raybench "
     "record (engines: Input should be a valid integer, unable to parse string as an integer)"),
])
def test_checker_names_each_gap_in_the_tree(good_tree, tree_copy, edit, expected):
    _, root = tree_copy
    edit(root)
    assert expected in new_gaps(tree_copy[0], good_tree)


def test_checker_names_an_untruncated_log_and_an_invalid_run(good, good_tree, tree_copy, tmp_path):
    _, root = tree_copy
    shutil.copy(good.compliance_run("TEST01") / ACCURACY_LOG, root / f"results/{W}/accuracy/{ACCURACY_LOG}")
    slow_target = perf_settings(256)
    slow_target.values["offline_expected_qps"] = 10.0  # ends long before the minimum duration
    invalid = bare_run(tmp_path / "invalid", slow_target, total_count=256)
    for name in (SUMMARY, DETAIL):
        shutil.copy(invalid / name, root / f"results/{W}/performance/run_1/{name}")
    gaps = new_gaps(tree_copy[0], good_tree)
    assert any(g.startswith(f"[accuracy] open/raybench/results/{W}/accuracy/{ACCURACY_LOG}: not truncated")
               for g in gaps), gaps
    assert f"[invalid-run] open/raybench/results/{W}/performance/run_1: LoadGen result INVALID: " \
           "min duration not met" in " ".join(gaps), gaps


def rerun(good: ScenarioRuns, tmp_path: Path, test: str, **kw) -> Path:
    """A copy of the good results with ``test`` run again by another SUT; its tree's root."""
    results = tmp_path / "results"
    shutil.copytree(good.root.parents[2], results)
    runs = ScenarioRuns.at(results, "cpu", "resnet50", "Offline")
    entries = read_accuracy_log(runs.accuracy / ACCURACY_LOG)
    shutil.rmtree(runs.compliance(test))
    change = kw.pop("change", None)
    payloads = write_payloads(tmp_path / "payloads.json", entries, change)
    bare_run(runs.compliance_run(test), perf_settings(len(entries)), kw.pop("audit", test),
             payloads=payloads, total_count=len(entries), **kw)
    if test == "TEST04-B":
        shutil.rmtree(runs.compliance("TEST04-A"))
        bare_run(runs.compliance_run("TEST04-A"), perf_settings(len(entries)), "TEST04-A",
                 payloads=payloads, total_count=len(entries), **kw)
    assemble(results, "cpu", tmp_path / "tree")
    return tmp_path / "tree"


@pytest.mark.parametrize("test,kw,expected", [
    ("TEST05", {"sample_us": SAMPLE_US * 1.25},
     f"[compliance] open/raybench/compliance/{W}/TEST05/verify_performance.txt: TEST05 failed: "
     "TEST FAIL: Test score invalid"),
    ("TEST04-B", {"cache": True},
     f"[compliance] open/raybench/compliance/{W}/TEST04-A/verify_performance.txt: TEST04-A failed: "
     "TEST FAIL: Test score invalid (TEST04-B is faster"),
    ("TEST01", {"change": wrong_label},
     f"[compliance] open/raybench/compliance/{W}/TEST01/verify_accuracy.txt: TEST01 failed: "
     "ACCURACY CHECK FAIL"),
    ("TEST05", {"audit": None},
     f"[compliance] open/raybench/compliance/{W}/TEST05/performance/run_1: not run with TEST05's "
     "settings: LoadGen found no audit.config"),
])
def test_checker_names_failed_compliance(good, good_tree, tmp_path, test, kw, expected):
    tree = rerun(good, tmp_path, test, **kw)
    gaps = new_gaps(tree, good_tree)
    assert any(g.startswith(expected) for g in gaps), gaps


def test_accuracy_below_target(good, good_tree, tmp_path, resnet50_standin):
    results = tmp_path / "results"
    shutil.copytree(good.root.parents[2], results)
    runs = ScenarioRuns.at(results, "cpu", "resnet50", "Offline")
    log = runs.accuracy / ACCURACY_LOG
    entries = read_accuracy_log(log)
    log.write_text(json.dumps([dict(e, data=wrong_label(int(e["qsl_idx"]), e["data"]))
                               for e in entries]))
    rewrite_accuracy_txt(runs.accuracy, resnet50_standin.data_dir)
    assemble(results, "cpu", tmp_path / "tree")
    gaps = new_gaps(tmp_path / "tree", good_tree)
    assert any(g.startswith(f"[accuracy] open/raybench/results/{W}/accuracy/accuracy.txt: accuracy 6")
               and "below the target 75.6954" in g for g in gaps), gaps


def test_sim_runs_say_they_have_no_outputs(ray_cluster, tmp_path):
    code, output = cli("run", "--engine", "sim", "--system", SIM_SYSTEM, "--scenario", "Offline",
                       "--duration", 1, "--output", tmp_path / "results")
    assert code == 0, output
    code, output = cli("submission", "assemble", tmp_path / "results", "--system", SIM_SYSTEM,
                       "--out", tmp_path / "tree")
    assert code == 1, output  # assembled, and the checker found gaps
    root = tmp_path / "tree" / "closed" / "Supermicro"
    readme = (root / f"measurements/{SIM_ID}/resnet50/Offline/README.md").read_text()
    assert "The sim engine produces no outputs" in readme
    assert "performance run was made with overridden rules" in readme
    impl = json.loads((root / f"measurements/{SIM_ID}/resnet50/Offline/{SIM_ID}_Offline.json").read_text())
    assert impl["starting_weights_filename"].startswith("none (sim engine")
    gaps = [str(g) for g in check_tree(tmp_path / "tree").gaps]
    assert f"[no-outputs] closed/Supermicro/results/{SIM_ID}/resnet50/Offline/accuracy: no accuracy " \
           "run: the sim engine produces no outputs" in gaps
    assert any(g.startswith("[overridden]") for g in gaps)
    assert f"[compliance] closed/Supermicro/compliance/{SIM_ID}/resnet50/Offline/TEST01: TEST01 missing" in gaps
    assert "NOT SUBMITTABLE" in output


def test_check_command_exit_codes(good_tree, tmp_path):
    code, output = cli("submission", "check", good_tree[0])
    assert code == 1 and "NOT SUBMITTABLE" in output and "overridden" in output
    code, output = cli("submission", "check", tmp_path / "nothing")
    assert code == 2 and output.startswith("Error: ")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = cli("submission", "check", empty)
    assert code == 1 and "no <division>/<submitter>/results" in output


def test_test01_on_a_real_accuracy_run(real, tmp_path):
    entries = read_accuracy_log(real.accuracy / ACCURACY_LOG)
    s = perf_settings(len(entries))

    def test01(name, change=None):
        payloads = write_payloads(tmp_path / f"{name}.json", entries, change)
        run = bare_run(tmp_path / name, s, "TEST01", payloads=payloads, total_count=len(entries))
        return verify_accuracy(real.accuracy, run, "resnet50")

    same = test01("same")
    assert same.passed and same.lines[-1] == PASS, same.text
    counts = dict(ln.split(" = ") for ln in same.lines if " = " in ln)
    assert int(counts["num_perf_log_entries"]) > 0
    assert counts["num_perf_log_data_mismatch"] == "0" and counts["num_missing_qsl_idxs"] == "0"

    wrong = test01("wrong", wrong_label)
    assert not wrong.passed and "TEST FAIL" in wrong.lines
    assert wrong.lines[-1] == "ACCURACY CHECK FAIL", wrong.text
    compliance = float(next(ln for ln in wrong.lines if ln.startswith("compliance accuracy")).split()[3])
    assert 60 < compliance < 72  # a third of the answers are wrong
    assert set(wrong.extra) == {"baseline_accuracy.txt", "compliance_accuracy.txt"}

    padded = test01("padded", lambda i, d: d + "00000000")  # other bytes, the same answers
    assert padded.passed and padded.lines[-1] == ACCURACY_CHECK_PASS, padded.text
    assert "TEST FAIL" in padded.lines  # as the official script says: the data differ
