"""Real LoadGen runs through the LoadGen actor and engine actors on a local Ray."""

from __future__ import annotations

import json
import os
import threading

import pytest

from raybench.run import RunRequest, run
from raybench.results.loadgen_log import ACCURACY_LOG, DETAIL, SUMMARY

SHORT = dict(duration=1.0, queries=1)
GPU_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def request(standin, tmp_path, **kw) -> RunRequest:
    base = dict(model=standin.model, data_dir=standin.data_dir, output=tmp_path, system="cpu",
                track_ids=True, **SHORT)
    base.update(kw)
    return RunRequest(**base)


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_performance_run_writes_loadgen_logs(ray_cluster, resnet50_standin, tmp_path, scenario):
    report = run(request(resnet50_standin, tmp_path, scenario=scenario, mode="PerformanceOnly"))
    (test,) = report.tests
    assert test.directory == tmp_path / "cpu" / "resnet50" / scenario / "performance" / "run_1"
    for name in (SUMMARY, DETAIL, "mlperf.conf", "user.conf", "raybench_settings.json"):
        assert (test.directory / name).is_file(), name
    assert test.summary.scenario == scenario
    assert test.summary.valid is not None and test.summary.metric is not None
    assert test.outcome.received == test.outcome.completed > 0
    assert not list(tmp_path.rglob("*.partial"))
    settings = json.loads((test.directory / "raybench_settings.json").read_text())
    assert settings["test_settings"]["scenario"] == scenario
    assert settings["submittable"] is False  # duration and query count were overridden


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_accuracy_run_routes_every_response_to_its_sample(ray_cluster, resnet50_standin,
                                                          tmp_path, scenario):
    report = run(request(resnet50_standin, tmp_path, scenario=scenario, mode="AccuracyOnly"))
    (test,) = report.tests
    assert test.directory.name == "accuracy"
    entries = json.loads((test.directory / ACCURACY_LOG).read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(256))
    assert test.accuracy.value == 100.0
    assert "PASS" in (test.directory / "accuracy.txt").read_text()


def test_submission_run_is_accuracy_then_performance(ray_cluster, resnet50_standin, tmp_path):
    report = run(request(resnet50_standin, tmp_path, scenario="Server", mode="SubmissionRun"))
    assert [t.mode for t in report.tests] == ["AccuracyOnly", "PerformanceOnly"]
    assert report.tests[0].accuracy.value == 100.0
    assert (report.tests[1].directory / SUMMARY).is_file()


def test_each_engine_actor_gets_its_own_gpu(ray_cluster, tmp_path):
    report = run(RunRequest(system=GPU_SYSTEM, engine="null", scenario="Server", output=tmp_path,
                            duration=0.5, queries=1, target_qps=2000))
    gpu_ids = [tuple(info["gpu_ids"]) for info in report.engine_info]
    assert len(gpu_ids) == 8
    assert all(len(ids) == 1 for ids in gpu_ids)
    assert len(set(gpu_ids)) == 8
    assert len({info["cuda_visible_devices"] for info in report.engine_info}) == 8


def test_inline_submission_run_builds_the_engine_in_the_loadgen_actor(ray_cluster,
                                                                       resnet50_standin,
                                                                       tmp_path):
    report = run(request(resnet50_standin, tmp_path, scenario="SingleStream",
                         transport="inline"))
    accuracy, performance = report.tests
    assert accuracy.accuracy.value == 100.0  # every response reached its sample
    for test in (accuracy, performance):
        assert test.outcome.transport == "inline"
        assert test.outcome.completed == test.outcome.received > 0
    assert "No errors encountered" in (performance.directory / SUMMARY).read_text()
    (info,) = report.engine_info  # one engine, in each test's own LoadGen actor process
    pids = [test.outcome.engine_info[0]["pid"] for test in (accuracy, performance)]
    assert info["pid"] == pids[0] != pids[1] and os.getpid() not in pids


def test_inline_on_a_gpu_system_takes_one_gpu(ray_cluster, tmp_path):
    report = run(RunRequest(system=GPU_SYSTEM, engine="sim", scenario="Offline",
                            transport="inline", output=tmp_path, **SHORT))
    (info,) = report.engine_info
    assert len(info["gpu_ids"]) == 1
    assert report.tests[0].outcome.transport == "inline"


class KillEngineMidTest:
    """Kills engine 0 (Ray restarts it) once the test is under way: samples completed and
    batches in flight, whatever the machine's speed."""

    def __init__(self):
        self.handles: list = []
        self.killed = threading.Event()

    def on_ready(self, handles) -> None:
        self.handles = handles

    def on_progress(self, p) -> None:
        import ray

        if not self.killed.is_set() and p.completed > 0 and p.inflight_batches > 0:
            ray.kill(self.handles[0], no_restart=False)
            self.killed.set()


@pytest.mark.parametrize("transport", ["graph", "calls"])
@pytest.mark.parametrize("scenario,qps", [("Offline", 150_000), ("Server", 1500)])  # >= 3 s
def test_engine_killed_mid_run_loses_no_sample(ray_cluster, tmp_path, scenario, qps, transport):
    from raybench.run import execute, prepare

    kill = KillEngineMidTest()
    req = RunRequest(system=GPU_SYSTEM, engine="sim", scenario=scenario, output=tmp_path,
                     engines=4, batch_size=64, track_ids=True, transport=transport,
                     duration=3.0, queries=1, target_qps=qps)
    report = execute(prepare(req), on_ready=kill.on_ready, on_progress=kill.on_progress)
    assert kill.killed.is_set()
    (test,) = report.tests
    outcome = test.outcome
    assert outcome.transport == transport
    assert outcome.fatal is None and outcome.drained_error is None
    assert outcome.completed == outcome.received > 0
    assert outcome.retried > 0  # engine 0's in-flight batches went to the others
    assert "No errors encountered" in (test.directory / SUMMARY).read_text()


def test_a_loadgen_actor_lost_after_an_engine_death_on_graphs_runs_the_test_again_on_calls(
        ray_cluster, tmp_path):
    """What raybench does when Ray aborts the LoadGen actor's process in its compiled-graph
    code after an engine died (a Ray bug no Python can catch), played by killing both."""
    import ray

    from raybench.run import execute, prepare

    where = {}

    def on_progress(p) -> None:  # the first attempt under way: engine 0, then LoadGen
        if p.completed > 0 and "killed" not in where:
            where["killed"] = True
            ray.kill(where["engines"][0], no_restart=False)
            ray.kill(ray.get_actor(f"loadgen-{GPU_SYSTEM}/resnet50/Server/performance/run_1",
                                   namespace=where["namespace"]))

    req = RunRequest(system=GPU_SYSTEM, engine="sim", scenario="Server", output=tmp_path,
                     engines=2, batch_size=64, track_ids=True, transport="graph",
                     duration=2.0, queries=1, target_qps=1000)
    report = execute(prepare(req), on_ready=lambda engines: where.update(engines=engines),
                     on_progress=on_progress,
                     on_placed=lambda _, placement: where.update(namespace=placement.namespace))
    (test,) = report.tests
    outcome = test.outcome
    assert where.get("killed")
    assert outcome.transport == "calls" and "engine 0 restarted" in outcome.rerun
    assert outcome.fatal is None and outcome.completed == outcome.received > 0
    assert "No errors encountered" in (test.directory / SUMMARY).read_text()
    assert [p.name for p in tmp_path.rglob("*.partial")] == ["run_1.partial"]  # kept in history
    assert all("history" in p.parts for p in tmp_path.rglob("*.partial"))


def test_a_loadgen_actor_lost_without_an_engine_death_fails_the_run(ray_cluster, tmp_path):
    import ray

    from raybench.errors import RunError
    from raybench.run import execute, prepare

    where = {}

    def on_progress(p) -> None:
        if p.completed > 0 and "killed" not in where:
            where["killed"] = True
            ray.kill(ray.get_actor(f"loadgen-{GPU_SYSTEM}/resnet50/Server/performance/run_1",
                                   namespace=where["namespace"]))

    req = RunRequest(system=GPU_SYSTEM, engine="sim", scenario="Server", output=tmp_path,
                     engines=2, batch_size=64, transport="graph", duration=2.0, queries=1,
                     target_qps=1000)
    with pytest.raises(RunError, match="test failed: .*killed by `ray.kill`"):
        execute(prepare(req), on_progress=on_progress,
                on_placed=lambda _, placement: where.update(namespace=placement.namespace))
    assert where.get("killed")


def test_progress_snapshots_while_a_test_runs(ray_cluster, tmp_path):
    from raybench.run import execute, prepare

    seen = []
    req = RunRequest(system="cpu", engine="sim", scenario="Server", output=tmp_path,
                     engines=2, duration=2.0, queries=1, target_qps=500)
    report = execute(prepare(req), on_progress=seen.append)
    assert seen, "no progress snapshot during a 2 s test"
    assert all(p.mode == "PerformanceOnly" and p.min_duration_s == 2.0 for p in seen)
    assert all(0 <= p.completed <= p.received for p in seen)
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert seen[-1].completed <= report.tests[0].outcome.completed
