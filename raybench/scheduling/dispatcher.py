"""The query path between LoadGen's issue callback and the engines, without Ray.

LoadGen's thread calls :meth:`Dispatcher.issue`; a dispatch thread cuts batches
(:class:`Batcher`) and sends each to an engine with a free slot (:class:`Router`)
through the ``submit`` callable; engines report back through :meth:`Dispatcher.done`
or :meth:`Dispatcher.failed` from any thread; a completion thread closes the batch in
the :class:`Ledger` and hands its sample ids to the ``complete`` callable
(``QuerySamplesComplete``). A failed batch goes back to the front of the batcher and
is sent again, to any live engine, up to ``max_attempts`` times.

If the run cannot go on (an engine raised an error, or every engine is retired), the
dispatcher turns fatal: it completes every outstanding sample with no data, so that
LoadGen's test ends, and :attr:`Dispatcher.fatal` says why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

from raybench.scheduling.batcher import Batcher
from raybench.scheduling.ledger import Batch, Ledger, LedgerError
from raybench.scheduling.router import Router

log = logging.getLogger(__name__)

Submit = Callable[[Batch], None]
Complete = Callable[[list, Any], None]


class Dispatcher:
    """Batches, routes and completes LoadGen's samples exactly once."""

    def __init__(self, batcher: Batcher, router: Router, submit: Submit, complete: Complete,
                 max_attempts: int = 5, track_ids: bool = False,
                 clock: Callable[[], float] = time.monotonic, observer: Any = None,
                 batches_per_call: int = 1):
        self.batcher = batcher
        self.batches_per_call = batches_per_call
        self.router = router
        self.ledger = Ledger(track_ids)
        self.submit = submit
        self.complete = complete
        self.max_attempts = max_attempts
        self.clock = clock
        self.observer = observer  # None, or on_issue(n), on_batch(b, queued), on_complete(b, ok)
        self.fatal: Optional[str] = None
        self.batches_sent = 0
        self.samples_per_engine = [0] * len(router.inflight)
        self._cond = threading.Condition()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- LoadGen side -------------------------------------------------------------
    def issue(self, ids: list, indices: list) -> None:
        """Queue an issue call's samples (LoadGen's thread)."""
        with self._cond:
            if self.fatal is None:
                batcher = self.batcher
                was_empty = not len(batcher)
                self.ledger.received(ids)
                batcher.add(ids, indices)
                # Wake the dispatcher only when this call changes what it waits for: it
                # already sleeps until the oldest queued sample is due.
                if was_empty or not batcher.timeout_s or len(batcher) >= batcher.max_batch:
                    self._cond.notify()
                if self.observer is not None:
                    self.observer.on_issue(len(ids))
                return
        self.complete(ids, None)

    def flush(self) -> None:
        """Make every queued sample ready at once."""
        with self._cond:
            self.batcher.flush()
            self._cond.notify()

    # -- engine side (any thread) -------------------------------------------------
    def done(self, batch_id: int, result: Any) -> None:
        """An engine finished a batch; ``result`` is its payload (None in performance runs)."""
        self._events.put((batch_id, True, result))

    def failed(self, batch_id: int, error: str, retry: bool) -> None:
        """An engine failed a batch; ``retry`` says whether another engine may try it."""
        self._events.put((batch_id, False, (error, retry)))

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Start the dispatch and completion threads."""
        for target, name in ((self._dispatch_loop, "raybench-dispatch"),
                             (self._completion_loop, "raybench-complete")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop both threads once every queued sample has been sent to an engine.

        Answers keep being processed until the dispatch thread has sent the last batch
        (a full engine frees its slot only through an answer); answers that arrive
        after that are dropped.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        dispatch, completion = self._threads or (None, None)
        if dispatch is not None:
            dispatch.join(timeout)
        self._events.put(None)
        if completion is not None:
            completion.join(timeout)

    # -- threads ------------------------------------------------------------------
    def _next_batch(self) -> Optional[Batch]:
        """Wait until a batch is ready and an engine has a free slot (lock held)."""
        cond, batcher = self._cond, self.batcher
        while True:
            if self.fatal is not None or (self._stopping and not len(batcher)):
                return None
            now = self.clock()
            if batcher.ready(now):
                engine = self.router.acquire()
                if engine is not None:
                    ids, indices, attempt = batcher.pop(now, self._call_size())
                    return self.ledger.open(ids, indices, engine, attempt)
                cond.wait()  # backpressure: every engine is at its bound
            else:
                due = batcher.next_due()
                cond.wait(None if due is None else max(0.0, due - now))

    def _call_size(self) -> int:
        """Samples for the next engine call: the queue spread over the free slots, in whole
        batches, at most ``batches_per_call`` of them.

        A short queue goes out one batch per engine (parallel, lowest latency); a queue
        longer than the free slots can take goes out in fewer, larger calls, so the cost
        of a Ray call is paid per several batches exactly when calls are the bottleneck.
        """
        size = self.batcher.max_batch
        if self.batches_per_call == 1:
            return size
        free_slots = self.router.free_slots() + 1  # with the slot this call just took
        per_slot = -(-len(self.batcher) // free_slots)  # ceil
        batches = max(1, min(self.batches_per_call, -(-per_slot // size)))
        return batches * size

    def _dispatch_loop(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            self.batches_sent += 1
            self.samples_per_engine[batch.engine] += len(batch.ids)
            if self.observer is not None:
                self.observer.on_batch(batch, len(self.batcher))
            try:
                self.submit(batch)
            except Exception as exc:  # a submit that cannot even start is fatal
                self.failed(batch.batch_id, f"cannot submit to engine {batch.engine}: {exc}", False)

    def _completion_loop(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            batch_id, ok, payload = event
            to_complete: list[tuple[list, Any]] = []
            with self._cond:
                try:
                    if ok:
                        batch = self.ledger.close(batch_id)
                        self.router.release(batch.engine)
                        to_complete.append((batch.ids, payload))
                        if self.observer is not None:
                            self.observer.on_complete(batch)
                    else:
                        batch = self.ledger.fail(batch_id)
                        self.router.release(batch.engine, ok=False)
                        if self.observer is not None:
                            self.observer.on_complete(batch, ok=False)
                        error, retry = payload
                        log.warning("engine %d failed batch %d (attempt %d): %s",
                                    batch.engine, batch_id, batch.attempt, error)
                        if retry and batch.attempt < self.max_attempts and self.router.live:
                            self.batcher.requeue(batch.ids, batch.indices, batch.attempt + 1)
                        else:
                            if not self.router.live:
                                error = f"every engine failed; last error: {error}"
                            to_complete = self._go_fatal(error, batch)
                except LedgerError as exc:
                    if self.fatal is not None:
                        continue  # a late answer for a batch already given up on
                    # an exactly-once violation: end the test rather than hang LoadGen
                    to_complete = self._go_fatal(f"exactly-once accounting broken: {exc}")
                self._cond.notify_all()
            for ids, data in to_complete:
                self.complete(ids, data)

    def _go_fatal(self, error: str, failed: Optional[Batch] = None) -> list[tuple[list, Any]]:
        """Give up (lock held): return every outstanding sample, to complete without data."""
        if self.fatal is None:
            self.fatal = error
            log.error("run cannot go on: %s", error)
        pending = [(failed.ids, None)] if failed is not None else []
        for batch in list(self.ledger.open_batches.values()):
            pending.append((self.ledger.fail(batch.batch_id).ids, None))
        self.batcher.flush()
        while len(self.batcher):
            ids, _, _ = self.batcher.pop()
            pending.append((ids, None))
        return pending
