"""The engine actor: one inference engine, the samples it has loaded, and its batches.

One engine actor runs per GPU (Ray pins it with ``num_gpus=1``) or per CPU slot. LoadGen's
QSL load and unload calls reach every engine actor, which reads the samples from the data
directory itself, so a batch carries only sample indices. Engines without data (null,
sim) keep nothing and produce nothing. Each call of :meth:`EngineActor.run` is one batch,
whichever transport brought it (an actor call, or a compiled graph's channel).

:class:`EngineActor` is a plain class; the run's placement makes it a Ray actor
(``ray.remote(EngineActor)``), so it can also be used directly, without Ray.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from pydantic import Field

from raybench.actors.transport import INDEX_BYTES, ring, unpack
from raybench.benchmarks import get_benchmark
from raybench.config.models import Strict
from raybench.engines import create_engine
from raybench.engines.base import EngineOptions

log = logging.getLogger(__name__)

Payload = Optional[tuple[bytes, list[int]]]  # accuracy-log payloads packed as (blob, sizes)


class EngineSpec(Strict):
    """Everything an engine actor needs to build itself (plain data for Ray)."""

    benchmark: str
    engine: str
    options: EngineOptions
    data_dir: Optional[Path] = None
    concurrency: int = Field(default=1, ge=1)


class EngineActor:
    """One engine and the samples it has loaded."""

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self.benchmark = get_benchmark(spec.benchmark)
        self.engine = create_engine(spec.engine, spec.options)
        self.dataset = None
        if self.engine.needs_data:
            self.dataset = self.benchmark.open_dataset(spec.data_dir)
            types = list(self.engine.input_types.values())
            if self.dataset.feeds_as_stored and len(types) == 1 and types[0] is not None:
                self.dataset.load_as = np.dtype(types[0])  # cast once, at load

    def info(self) -> dict:
        """Where this engine runs: pid, host, node, visible and assigned GPUs."""
        info = {"pid": os.getpid(), "host": os.uname().nodename,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        try:
            import ray

            if ray.is_initialized():
                info["gpu_ids"] = [str(g) for g in ray.get_gpu_ids()]
                info["node_id"] = ray.get_runtime_context().get_node_id()
        except ImportError:  # pragma: no cover - ray is a dependency
            pass
        return info

    def load_samples(self, indices: Sequence[int]) -> None:
        """Read samples into memory (LoadGen's QSL load, sent to every engine)."""
        if self.dataset is not None:
            self.dataset.load(indices)

    def unload_samples(self, indices: Sequence[int]) -> None:
        """Drop samples from memory (LoadGen's QSL unload, sent to every engine)."""
        if self.dataset is not None:
            self.dataset.unload(indices)

    def run(self, packed: bytes, want_outputs: bool, doorbell: Optional[str] = None) -> Payload:
        """Run one batch; ``packed`` holds its sample indices (see the transport's ``pack``).

        Args:
            packed: The batch's sample indices; empty: nothing to run (a warm-up).
            want_outputs: Return the samples' accuracy-log payloads.
            doorbell: A compiled-graph lane's doorbell, rung when the batch is done.

        Returns:
            None when no outputs are wanted (or the engine has none), else the
            accuracy-log payloads of the samples packed as ``(blob, sizes)``.
        """
        try:
            return self._run(packed, want_outputs)
        finally:
            if doorbell is not None:
                ring(doorbell)

    def _run(self, packed: bytes, want_outputs: bool) -> Payload:
        if not packed:
            return None
        if self.dataset is None:
            self.engine.run_count(len(packed) // INDEX_BYTES)
            return None
        batch = unpack(packed)
        outputs = self.benchmark.infer(self.engine, self.dataset.feeds(batch))
        if not want_outputs:
            return None
        payloads = self.benchmark.responses(outputs, batch, self.dataset)
        return b"".join(payloads), [len(p) for p in payloads]
