"""Routing batches to engines with a bound on in-flight batches per engine."""

from __future__ import annotations

from typing import Callable, Optional


class Router:
    """Chooses an engine with a free slot: the least loaded, round-robin among equals.

    Every engine holds at most ``max_inflight`` batches; when all are full,
    :meth:`acquire` returns None and the caller waits (backpressure).

    Failures are counted per *incident*, not per batch: every batch carries the
    engine's incident number at the time it was sent (:meth:`incident`), and only the
    first failure of a batch sent since the engine's last incident opens a new one.
    One crash fails every batch the engine had in flight; it is one failure. An engine
    with ``max_failures`` incidents in a row (no batch done in between) is retired and
    never chosen again. An engine that is *down* (lost; its transport waits for it to
    come back, see :meth:`down` and :meth:`back`) is not chosen until it is up again.

    Not thread-safe: the dispatcher holds its lock around every call.
    """

    def __init__(self, engines: int, max_inflight: int, max_failures: int = 3):
        if engines < 1 or max_inflight < 1:
            raise ValueError("need at least one engine and one in-flight slot")
        self.max_inflight = max_inflight
        self.max_failures = max_failures
        self.inflight = [0] * engines
        self.failures = [0] * engines  # incidents in a row, without a batch done since
        self.incidents = [0] * engines  # incidents so far
        self.retired: set[int] = set()
        self.lost: set[int] = set()  # down: waiting for the engine to come back
        self._next = 0

    @property
    def live(self) -> int:
        """Engines not retired (up or down)."""
        return len(self.inflight) - len(self.retired)

    @property
    def available(self) -> int:
        """Engines that can take batches now: neither retired nor down."""
        return len(self.inflight) - len(self.retired | self.lost)

    def incident(self, engine: int) -> int:
        """The engine's incident number, to remember with a batch sent to it now."""
        return self.incidents[engine]

    def acquire(self, eligible: Optional[Callable[[int], bool]] = None) -> Optional[int]:
        """Take a slot on the least-loaded engine that is up, or None if all are full.

        Engines whose last batch failed are chosen only when no healthy engine has a
        free slot, so a retried batch goes to another engine first.

        Args:
            eligible: Engines for which it returns False are not chosen (default: all are).
        """
        n = len(self.inflight)
        best, best_key = None, None
        for step in range(n):
            e = (self._next + step) % n
            if e in self.retired or e in self.lost or self.inflight[e] >= self.max_inflight:
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

    def release(self, engine: int, ok: bool = True, incident: Optional[int] = None) -> bool:
        """Free a slot; ``ok=False`` may count a failure and retire the engine.

        Args:
            engine: The batch's engine.
            ok: Whether the batch was done.
            incident: The engine's incident number when the batch was sent (None: every
                failure is an incident of its own).

        Returns:
            Whether a failure opened a new incident (False for a batch done, or failed in
            an incident already counted).
        """
        self.inflight[engine] -= 1
        if ok:
            self.failures[engine] = 0
            return False
        if incident is not None and incident != self.incidents[engine]:
            return False  # in flight when an earlier failure was counted: the same incident
        self.incidents[engine] += 1
        self.failures[engine] += 1
        if self.failures[engine] >= self.max_failures:
            self.retire(engine)
        return True

    def down(self, engine: int) -> None:
        """The engine was lost: choose it no more until :meth:`back`."""
        if engine not in self.retired:
            self.lost.add(engine)

    def back(self, engine: int) -> None:
        """The engine is back: it takes batches again."""
        self.lost.discard(engine)

    def retire(self, engine: int) -> None:
        """Never choose the engine again."""
        self.retired.add(engine)
        self.lost.discard(engine)

    def total_inflight(self) -> int:
        """Batches in flight on all engines."""
        return sum(self.inflight)
