"""A sweep of short sim trials on a real two-node Ray cluster on one machine."""

from __future__ import annotations

import csv
import logging

import pytest

from raybench.experiments.sweep import CSV_NAME, SweepSpec, run_sweep

GPU_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


@pytest.fixture(scope="module")
def two_nodes():
    """Two Ray nodes of 8 fake GPUs each (a head and one worker), one machine."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 8})
    cluster.add_node(num_cpus=1, num_gpus=8)
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def spec() -> SweepSpec:
    return SweepSpec.model_validate({
        "name": "it",
        "base": {"engine": "sim", "system": GPU_SYSTEM, "mode": "PerformanceOnly",
                 "duration": 1.0, "queries": 1, "engines": 4, "benchmark": "resnet50"},
        "grid": {"scenario": ["Offline", "Server"], "batch_size": [32, 64],
                 "target_qps": [2000]},
    })


def test_sweep_runs_trials_in_parallel_then_skips_them(two_nodes, tmp_path):
    results = run_sweep(spec(), output=tmp_path)
    assert len(results) == 4
    assert [r.status for r in results] == ["ok"] * 4, [r.row.get("error") for r in results]
    for r in results:
        nodes = r.row["engine_nodes"]
        assert len(nodes) == 4 and len(set(nodes)) == 1  # STRICT_PACK: one node per trial
        assert r.row["metric"] > 0
    with (tmp_path / CSV_NAME).open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["trial"] for row in rows) == sorted(r.trial.trial_id for r in results)
    assert all(row["status"] == "ok" and row["valid"] in ("True", "False") for row in rows)
    assert {row["scenario"] for row in rows} == {"Offline", "Server"}

    again = run_sweep(spec(), output=tmp_path)
    assert [r.status for r in again] == ["skipped"] * 4


def test_failed_trial_is_retried_once_then_marked_failed(two_nodes, tmp_path):
    def flaky_trial(params, output):
        """A fake trial: batch_size 2 always fails, 3 fails once, the rest succeed."""
        from pathlib import Path

        from raybench.errors import RunError

        marker = Path(output).parent.parent / f"attempted-{params['batch_size']}"
        first = not marker.exists()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        if params["batch_size"] == 2 or (params["batch_size"] == 3 and first):
            raise RunError(f"engine node died (bs {params['batch_size']})")
        return {"valid": True, "metric": 10.0 * params["batch_size"], "p99_ms": 1.0, "wall_s": 0.1}

    spec = SweepSpec.model_validate({"base": {"engine": "sim", "system": GPU_SYSTEM},
                                     "grid": {"batch_size": [1, 2, 3, 4]}})
    results = run_sweep(spec, output=tmp_path, parallel=2, trial_fn=flaky_trial)
    by_bs = {r.trial.params["batch_size"]: r for r in results}
    assert by_bs[2].status == "failed" and by_bs[2].row["attempts"] == 2
    assert "engine node died" in by_bs[2].row["error"]
    assert by_bs[3].status == "ok" and by_bs[3].row["attempts"] == 2
    assert by_bs[1].status == by_bs[4].status == "ok"
    with (tmp_path / CSV_NAME).open() as f:
        assert {row["status"] for row in csv.DictReader(f)} == {"ok", "failed"}
    again = run_sweep(spec, output=tmp_path, parallel=2, trial_fn=flaky_trial)
    assert [r.status for r in again] == ["skipped", "failed", "skipped", "skipped"]
