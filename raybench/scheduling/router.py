"""Routing batches to engines with a bound on in-flight batches per engine."""

from __future__ import annotations

from typing import Callable, Optional


class Router:
    """Chooses an engine with a free slot: the least loaded, round-robin among equals.

    Every engine holds at most ``max_inflight`` batches; when all are full,
    :meth:`acquire` returns None and the caller waits (backpressure). An engine that
    failed ``max_failures`` times in a row is retired and never chosen again.

    Not thread-safe: the dispatcher holds its lock around every call.
    """

    def __init__(self, engines: int, max_inflight: int, max_failures: int = 3):
        if engines < 1 or max_inflight < 1:
            raise ValueError("need at least one engine and one in-flight slot")
        self.max_inflight = max_inflight
        self.max_failures = max_failures
        self.inflight = [0] * engines
        self.failures = [0] * engines
        self.retired: set[int] = set()
        self._next = 0

    @property
    def live(self) -> int:
        """Engines not retired."""
        return len(self.inflight) - len(self.retired)

    def acquire(self, eligible: Optional[Callable[[int], bool]] = None) -> Optional[int]:
        """Take a slot on the least-loaded live engine, or None if all are full.

        Engines whose last batch failed are chosen only when no healthy engine has a
        free slot, so a retried batch goes to another engine first.

        Args:
            eligible: Engines for which it returns False are not chosen (default: all are).
        """
        n = len(self.inflight)
        best, best_key = None, None
        for step in range(n):
            e = (self._next + step) % n
            if e in self.retired or self.inflight[e] >= self.max_inflight:
                continue
            if eligible is not None and not eligible(e):
                continue
            key = (self.failures[e] > 0, self.inflight[e])
            if best_key is None or key < best_key:
                best, best_key = e, key
                if key == (False, 0):
                    break
        if best is not None:
            self.inflight[best] += 1
            self._next = (best + 1) % n
        return best

    def release(self, engine: int, ok: bool = True) -> None:
        """Free a slot; ``ok=False`` counts a failure and may retire the engine."""
        self.inflight[engine] -= 1
        if ok:
            self.failures[engine] = 0
            return
        self.failures[engine] += 1
        if self.failures[engine] >= self.max_failures:
            self.retired.add(engine)

    def free_slots(self) -> int:
        """Free in-flight slots on live engines."""
        return sum(self.max_inflight - n for e, n in enumerate(self.inflight)
                   if e not in self.retired)

    def total_inflight(self) -> int:
        """Batches in flight on all engines."""
        return sum(self.inflight)
