"""The sim engine: takes the time a modelled GPU would take for each batch."""

from __future__ import annotations

import time

from raybench.config.models import SimLatency
from raybench.engines.base import Engine, EngineOptions

DEFAULT_LATENCY = SimLatency(fixed_us=2000.0, per_sample_us=26.0,
                             derivation="A100 ResNet50 (2 ms + 26 us per sample)")


class SimEngine(Engine):
    """Sleeps ``fixed_us + per_sample_us * count`` per batch; produces no outputs."""

    name = "sim"
    needs_data = False

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        self.latency = options.sim or DEFAULT_LATENCY

    def batch_seconds(self, count: int) -> float:
        """Modelled time of a batch of ``count`` samples, in seconds."""
        return (self.latency.fixed_us + self.latency.per_sample_us * count) * 1e-6

    def run_count(self, count: int) -> None:
        deadline = time.perf_counter() + self.batch_seconds(count)
        remaining = deadline - time.perf_counter()
        while remaining > 0:
            time.sleep(remaining)
            remaining = deadline - time.perf_counter()
