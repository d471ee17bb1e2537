"""A sweep's Tune trials on a real two-node Ray cluster on one machine: one system per
trial on one node, trials spread over the nodes, and a node killed mid-sweep."""

from __future__ import annotations

import csv
import logging
import threading
import time

import pytest

from raybench.experiments.sweep import CSV_NAME, SweepSpec, plan_sweep, run_sweep

GPU_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


@pytest.fixture(scope="module")
def two_nodes():
    """Two Ray nodes of 8 fake GPUs and 1 CPU each (a head and a worker), one machine.

    Each node holds one trial at a time (its CPU is the LoadGen bundle). A dead
    node is noticed after about 3 missed 1-second health checks.
    """
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 8,
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}})
    worker = cluster.add_node(num_cpus=1, num_gpus=8)
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def spec(name: str, duration: float, sizes: list[int], retries: int = 1) -> SweepSpec:
    return SweepSpec.model_validate({
        "name": name, "retries": retries,
        "base": {"engine": "sim", "system": GPU_SYSTEM, "mode": "PerformanceOnly",
                 "scenario": "Offline", "engines": 2, "duration": duration,
                 "target_qps": 4000},
        "grid": {"batch_size": sizes}})


def test_trials_spread_over_the_nodes_one_whole_system_each(two_nodes, tmp_path):
    import ray

    result = run_sweep(plan_sweep(spec("spread", 0.5, [16, 32]), tmp_path / "s"))
    assert [t.status for t in result.trials] == ["ok"] * 2, [t.row for t in result.trials]
    nodes = [t.row["node_id"] for t in result.trials]
    assert all(";" not in n for n in nodes)  # STRICT_PACK: a trial's engines on one node
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(nodes) == alive  # both nodes ran trials


def test_a_node_killed_mid_sweep_loses_no_trial_and_doubles_none(two_nodes, tmp_path):
    cluster, worker = two_nodes
    head = cluster.head_node.node_id
    started: list[int] = []
    killer: list[threading.Thread] = []

    def kill_worker_when_both_nodes_run(event, trial):
        if event == "start":
            started.append(trial.index)
            if len(started) == 2:  # one trial per node: kill the worker during its run
                def kill():
                    time.sleep(3)
                    cluster.remove_node(worker, allow_graceful=False)
                killer.append(threading.Thread(target=kill, daemon=True))
                killer[0].start()

    result = run_sweep(plan_sweep(spec("kill", 4.0, [16, 32, 48], retries=2), tmp_path / "k"),
                       on_event=kill_worker_when_both_nodes_run)
    killer[0].join()
    assert [t.status for t in result.trials] == ["ok"] * 3, [t.row for t in result.trials]
    retried = [t for t in result.trials if t.row["attempts"] == 2]
    assert len(retried) == 1 and retried[0].last_error  # the trial that was on the worker
    assert all(t.row["node_id"] == head for t in retried)  # it ran again on the head
    assert sum(t.row["attempts"] for t in result.trials) == 4
    with (tmp_path / "k" / CSV_NAME).open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["index"]) for r in rows) == [1, 2, 3]  # none lost, none doubled
    assert {r["status"] for r in rows} == {"ok"}
