"""The sim engine: takes the time a modelled GPU would take for each batch."""

from __future__ import annotations

import ctypes
import sys
import threading
import time

from raybench.config.models import SimLatency
from raybench.engines.base import Engine, EngineOptions

DEFAULT_LATENCY = SimLatency(fixed_us=2000.0, per_sample_us=26.0,
                             derivation="A100 ResNet50 (2 ms + 26 us per sample)")


PR_SET_TIMERSLACK = 29  # linux/prctl.h
_precise = threading.local()  # whether this thread's timer slack is tightened


def _tight_timer_slack() -> None:
    """Ask for a 1 ns timer slack on this thread (Linux only; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl in this libc
        pass


class SimEngine(Engine):
    """A modelled GPU: one batch at a time, ``fixed_us + per_sample_us * count`` each
    (``batch1_us`` for a lone sample, where the model has one).

    Like a GPU fed by several inference streams, the device keeps a timeline: a batch
    starts when it arrives or when the previous one ends, whichever is later, and the
    call returns when it ends. With concurrent calls (one per inference stream), the
    host's per-batch overhead overlaps the device's work, as it does on a real GPU.
    Produces no outputs. On Linux each thread that runs batches asks the kernel for a
    1 ns timer slack (``PR_SET_TIMERSLACK``): a sleep then ends within tens of
    microseconds of its deadline instead of the default 50 us slack's 75-80 (measured
    on a 2-core host), which matters for a modelled batch-1 time of 0.5 ms.
    """

    name = "sim"
    needs_data = False
    concurrent = True

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        self.latency = options.sim or DEFAULT_LATENCY
        self._lock = threading.Lock()
        self._free_at = 0.0

    def batch_seconds(self, count: int) -> float:
        """Modelled time of a batch of ``count`` samples, in seconds."""
        return self.latency.batch_us(count) * 1e-6

    def run_count(self, count: int) -> None:
        if not getattr(_precise, "set", False):
            _precise.set = True
            _tight_timer_slack()
        with self._lock:
            start = max(time.perf_counter(), self._free_at)
            deadline = self._free_at = start + self.batch_seconds(count)
        remaining = deadline - time.perf_counter()
        while remaining > 0:
            time.sleep(remaining)
            remaining = deadline - time.perf_counter()
