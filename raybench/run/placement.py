"""Where a run lives on Ray: the only place raybench starts or joins Ray, and the run's
placement group.

One placement group (STRICT_PACK: one node) holds a bundle per engine actor (a GPU each,
or a CPU on a CPU system) and one CPU bundle for the LoadGen actors of the run's tests,
so on a cluster no batch ever crosses nodes.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from raybench.actors.engine import EngineActor, EngineSpec
from raybench.actors.loadgen import LoadGenActor
from raybench.errors import RunError

log = logging.getLogger(__name__)

PLACEMENT_TIMEOUT_S = 120


@contextmanager
def ray_session(address: Optional[str], num_gpus: int, cpus_needed: int, dashboard: bool):
    """Join the cluster at ``address``, reuse a running Ray, or start a local one.

    Args:
        address: ``auto``, ``HOST:PORT`` or None for a new local Ray.
        num_gpus: GPUs a new local Ray declares (simulated systems on a host without
            GPUs place like the real ones); 0 to let Ray detect them.
        cpus_needed: Fewest CPUs a new local Ray declares.
        dashboard: Whether a new local Ray serves its dashboard (on 127.0.0.1).
    """
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs: dict = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        kwargs["address"] = address
    else:  # a new local cluster, even if another one runs on this host
        kwargs["address"] = "local"
        kwargs["num_cpus"] = max(os.cpu_count() or 1, cpus_needed)
        if num_gpus:
            kwargs["num_gpus"] = num_gpus
        kwargs["include_dashboard"] = dashboard
        if dashboard:
            kwargs["dashboard_host"] = "127.0.0.1"
    ray.init(**kwargs)
    try:
        yield
    finally:
        ray.shutdown()


@dataclass
class Placement:
    """A run's placement group, its engine actors and where its LoadGen actors go."""

    group: object
    engines: list
    loadgen_bundle: int

    def loadgen_actor(self):
        """A fresh LoadGen actor (one per LoadGen test) in the run's LoadGen bundle."""
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        remote = ray.remote(LoadGenActor).options(
            num_cpus=1, max_restarts=0, max_concurrency=2,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=self.group, placement_group_bundle_index=self.loadgen_bundle))
        return remote.remote(self.engines)

    def release(self) -> None:
        """Kill the engine actors and remove the placement group."""
        import ray

        for handle in self.engines:
            ray.kill(handle)
        ray.util.remove_placement_group(self.group)


def place(spec: EngineSpec, count: int, gpu: bool, max_restarts: int,
          graph_lanes: int = 0) -> Placement:
    """Create the run's placement group and its engine actors on one node.

    Args:
        spec: What every engine actor builds.
        count: Engine actors.
        gpu: One GPU per engine (else one CPU).
        max_restarts: Times Ray restarts a dead engine actor.
        graph_lanes: Compiled graphs each engine actor runs at once (one thread each in
            its ``_ray_system`` concurrency group, where Ray runs compiled graphs).

    Raises:
        RunError: No node can hold the run, or placement timed out.
    """
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"GPU": 1} if gpu else {"CPU": 1}
    key = next(iter(bundle))
    need = {key: count + (0 if gpu else 1), **({"CPU": 1} if gpu else {})}
    alive = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if not any(all(res.get(k, 0) >= v for k, v in need.items()) for res in alive):
        best = max((res.get(key, 0) for res in alive), default=0)
        raise RunError(f"{count} engines need {count} {key} (and 1 CPU for LoadGen) on one "
                       f"node; the largest node has {best:g} {key}"
                       + (" (use --system cpu, or --engine sim on a simulated system)" if gpu else ""))
    group = placement_group([dict(bundle) for _ in range(count)] + [{"CPU": 1}],
                            strategy="STRICT_PACK")
    if not group.wait(timeout_seconds=PLACEMENT_TIMEOUT_S):
        ray.util.remove_placement_group(group)
        raise RunError(f"could not place {count} engines ({bundle} each) and LoadGen on one "
                       f"node within {PLACEMENT_TIMEOUT_S} s")
    remote = ray.remote(EngineActor)
    if graph_lanes > 1:
        remote = ray.remote(concurrency_groups={"_ray_system": graph_lanes})(EngineActor)
    engines = [
        remote.options(
            num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
            max_restarts=max_restarts, max_task_retries=0, max_concurrency=spec.concurrency,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_bundle_index=i),
        ).remote(spec)
        for i in range(count)
    ]
    return Placement(group, engines, loadgen_bundle=count)
