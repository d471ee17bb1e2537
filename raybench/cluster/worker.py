"""What an engine actor does, without the actor: hold the samples, run batches."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence

from pydantic import Field

from raybench.benchmarks import get_benchmark
from raybench.config.models import Strict
from raybench.engines import create_engine
from raybench.engines.base import EngineOptions

log = logging.getLogger(__name__)


class EngineSpec(Strict):
    """Everything an engine actor needs to build itself (plain data for Ray)."""

    benchmark: str
    engine: str
    options: EngineOptions
    data_dir: Optional[Path] = None
    concurrency: int = Field(default=1, ge=1)


class EngineWorker:
    """One engine and the samples it has loaded.

    Samples are read from the data directory when LoadGen loads them (the load call is
    broadcast to every engine), so a batch carries only sample indices. Engines without
    data (null, sim) keep nothing and produce nothing.
    """

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self.benchmark = get_benchmark(spec.benchmark)
        self.engine = create_engine(spec.engine, spec.options)
        self.dataset = None
        if self.engine.needs_data:
            self.dataset = self.benchmark.open_dataset(spec.data_dir)

    def info(self) -> dict:
        """Where this engine runs: pid, host, visible GPUs."""
        return {
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }

    def load(self, indices: Sequence[int]) -> None:
        """Load samples into memory (LoadGen's QSL load, broadcast)."""
        if self.dataset is not None:
            self.dataset.load(indices)

    def unload(self, indices: Sequence[int]) -> None:
        """Drop samples from memory (LoadGen's QSL unload, broadcast)."""
        if self.dataset is not None:
            self.dataset.unload(indices)

    def run(self, indices: Sequence[int], want_outputs: bool) -> Optional[tuple[bytes, list[int]]]:
        """Run the samples of one call, in batches of at most the engine's batch size.

        Returns:
            None when no outputs are wanted (or the engine has none), else the
            accuracy-log payloads of the samples packed as ``(blob, sizes)``.
        """
        size = self.spec.options.batch_size
        payloads: list[bytes] = []
        for start in range(0, len(indices), size):
            batch = indices[start:start + size]
            if self.dataset is None:
                self.engine.run_count(len(batch))
                continue
            outputs = self.benchmark.infer(self.engine, self.dataset.feeds(batch))
            if want_outputs:
                payloads += self.benchmark.responses(outputs, batch, self.dataset)
        if self.dataset is None or not want_outputs:
            return None
        return b"".join(payloads), [len(p) for p in payloads]
