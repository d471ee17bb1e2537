"""The run's placement group and its actors, on the Ray :mod:`raybench.run.session` gave.

One placement group (STRICT_PACK: one node) holds a bundle per engine actor (a GPU each,
or a CPU on a CPU system) and one CPU bundle for the LoadGen actors of the run's tests,
so on a cluster no batch ever crosses nodes. The actors are named for the dashboard:
``engine-<i>@<node>`` (shown as ``engine-<i>-gpu<id>@<node>`` once it runs) and
``loadgen-<test>``, in a namespace of their own per run. A run inside a Ray Tune trial
places its actors in the trial's placement group instead (the same layout,
:func:`bundles`): a group of its own would reserve the system's GPUs a second time.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from typing import Optional

from raybench.actors import engine as engine_actor
from raybench.actors.engine import EngineSpec
from raybench.actors.loadgen import LoadGenActor
from raybench.errors import RunError

PLACEMENT_TIMEOUT_S = 120


# -- the run's placement group and actors ------------------------------------------------
def run_namespace(label: str) -> str:
    """A fresh Ray namespace for one run's named actors (``raybench-<label>-<hex>``)."""
    return f"raybench-{label}-{secrets.token_hex(3)}"


class EngineActor(engine_actor.EngineActor):
    """The engine actor, with the repr the dashboard's Actors page shows:
    ``engine-<i>-gpu<id>@<node>`` (``-cpu`` without a GPU), as Ray placed it."""

    def __init__(self, spec: EngineSpec, index: int):
        super().__init__(spec)
        import ray

        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        self._label = f"engine-{index}-{'gpu' + gpus if gpus else 'cpu'}@{socket.gethostname()}"

    def __repr__(self) -> str:
        return self._label


def bundles(count: int, gpu: bool) -> list[dict[str, float]]:
    """The run's placement group layout: one bundle per engine (a GPU, or a CPU on a
    CPU system), then one CPU bundle for the LoadGen actors."""
    return [{"GPU": 1.0} if gpu else {"CPU": 1.0} for _ in range(count)] + [{"CPU": 1.0}]


@dataclass
class Placement:
    """A run's placement group, its engine actors and where its LoadGen actors go."""

    group: object
    engines: list  # empty with the inline transport: the LoadGen actor holds the engine
    loadgen_bundle: int
    loadgen_gpu: bool = False  # the LoadGen actor takes the bundle's GPU (inline, GPU run)
    namespace: Optional[str] = None
    node: Optional[dict] = None  # the node's entry in ray.nodes()
    owns_group: bool = True

    def loadgen_actor(self, name: Optional[str] = None):
        """A fresh LoadGen actor (one per LoadGen test) in the run's LoadGen bundle.

        Args:
            name: The dashboard name, ``loadgen-<name>``.
        """
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        remote = ray.remote(LoadGenActor).options(
            num_cpus=0 if self.loadgen_gpu else 1, num_gpus=1 if self.loadgen_gpu else 0,
            max_restarts=0, max_concurrency=2,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=self.group, placement_group_bundle_index=self.loadgen_bundle),
            **({"name": f"loadgen-{name}", "namespace": self.namespace}
               if name and self.namespace else {}))
        return remote.remote(self.engines)

    @property
    def metrics_url(self) -> Optional[str]:
        """The Prometheus endpoint of the engines' node (where the run's metrics are)."""
        if not self.node or not self.node.get("MetricsExportPort"):
            return None
        return f"http://{self.node['NodeManagerAddress']}:{self.node['MetricsExportPort']}/metrics"

    def release(self) -> None:
        """Kill the engine actors and remove the placement group (if the run made it)."""
        import ray

        for handle in self.engines:
            ray.kill(handle)
        if self.owns_group:
            ray.util.remove_placement_group(self.group)


def place(spec: EngineSpec, count: int, gpu: bool, max_restarts: int,
          namespace: Optional[str] = None, group=None, graph_lanes: int = 0,
          inline: bool = False) -> Placement:
    """Create the run's placement group and its engine actors on one node.

    Args:
        spec: What every engine actor builds.
        count: Engine actors.
        gpu: One GPU per engine (else one CPU).
        max_restarts: Times Ray restarts a dead engine actor.
        namespace: Ray namespace of the run's named actors (None: unnamed actors).
        group: A placement group that already holds the run's :func:`bundles` (a Ray Tune
            trial's) to place the actors in; None to create one.
        graph_lanes: Compiled graphs each engine actor runs at once (one thread each in
            its ``_ray_system`` concurrency group, where Ray runs compiled graphs).
        inline: The inline transport (``count`` is 1): no engine actor; the LoadGen
            actors go into the engine's bundle (its GPU) and build the engine themselves.

    Raises:
        RunError: No node can hold the run, placement timed out, or ``group`` has
            another layout.
    """
    import ray
    from ray.util.placement_group import placement_group_table
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    owns_group = group is None
    if owns_group:
        group = _new_group(count, gpu)
    else:
        have = [{k: float(v) for k, v in b.items() if v} for b in group.bundle_specs]
        if have != bundles(count, gpu):
            raise RunError(f"placement group {have} is not the layout of {count} engines "
                           f"and LoadGen {bundles(count, gpu)}")
    node_id = next(iter(placement_group_table(group).get("bundles_to_node_id", {}).values()), None)
    node = next((n for n in ray.nodes() if n["Alive"] and n["NodeID"] == node_id), None)
    if inline:
        return Placement(group, [], loadgen_bundle=0, loadgen_gpu=gpu, namespace=namespace,
                         node=node, owns_group=owns_group)
    host = (node or {}).get("NodeManagerHostname") or "node"
    remote = ray.remote(EngineActor)
    if graph_lanes > 1:
        remote = ray.remote(concurrency_groups={"_ray_system": graph_lanes})(EngineActor)
    engines = [
        remote.options(
            num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
            max_restarts=max_restarts, max_task_retries=0, max_concurrency=spec.concurrency,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_bundle_index=i),
            **({"name": f"engine-{i}@{host}", "namespace": namespace} if namespace else {}),
        ).remote(spec, i)
        for i in range(count)
    ]
    return Placement(group, engines, loadgen_bundle=count, namespace=namespace, node=node,
                     owns_group=owns_group)


def _new_group(count: int, gpu: bool):
    """A new STRICT_PACK placement group of the run's :func:`bundles`, once placed."""
    import ray
    from ray.util.placement_group import placement_group

    bundle = {"GPU": 1} if gpu else {"CPU": 1}
    key = next(iter(bundle))
    need = {key: count + (0 if gpu else 1), **({"CPU": 1} if gpu else {})}
    alive = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if not any(all(res.get(k, 0) >= v for k, v in need.items()) for res in alive):
        best = max((res.get(key, 0) for res in alive), default=0)
        raise RunError(f"{count} engines need {count} {key} (and 1 CPU for LoadGen) on one "
                       f"node; the largest node has {best:g} {key}"
                       + (" (use --system cpu, or --engine sim on a simulated system)" if gpu else ""))
    group = placement_group(bundles(count, gpu), strategy="STRICT_PACK")
    if not group.wait(timeout_seconds=PLACEMENT_TIMEOUT_S):
        ray.util.remove_placement_group(group)
        raise RunError(f"could not place {count} engines ({bundle} each) and LoadGen on one "
                       f"node within {PLACEMENT_TIMEOUT_S} s")
    return group
