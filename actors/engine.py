"""The engine actor: one per GPU (num_gpus=1), or as many as a CPU system says."""

from __future__ import annotations

import ray

from raybench.cluster.worker import EngineSpec, EngineWorker


@ray.remote
class EngineActor:
    """Thin Ray shell around :class:`raybench.cluster.worker.EngineWorker`."""

    def __init__(self, spec: EngineSpec):
        self.worker = EngineWorker(spec)

    def info(self) -> dict:
        """Process, host and GPU ids Ray gave this actor."""
        return {**self.worker.info(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "node_id": ray.get_runtime_context().get_node_id()}

    def load_samples(self, indices: list) -> None:
        """LoadGen's QSL load, broadcast to every engine."""
        self.worker.load(indices)

    def unload_samples(self, indices: list) -> None:
        """LoadGen's QSL unload, broadcast to every engine."""
        self.worker.unload(indices)

    def run(self, indices: list, want_outputs: bool):
        """Run one batch; see :meth:`EngineWorker.run`."""
        return self.worker.run(indices, want_outputs)
