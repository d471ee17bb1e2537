"""The query path between LoadGen's issue callback and the engines, without Ray.

Batches leave from whichever thread makes them possible, at once: LoadGen's thread
(:meth:`Dispatcher.issue`) sends what its samples complete; the thread that reports an
engine's answer (:meth:`Dispatcher.done` / :meth:`Dispatcher.failed`, a transport's
reader) sends what the freed slot allows, then completes the batch
(``QuerySamplesComplete``) itself; a timer thread sends partial Server batches whose
oldest sample waited the batch timeout. No thread sits between an answer and its
completion, and every batch is completed the moment its engine returns it.

Batches are cut by the :class:`Batcher`, sent to an engine with a free slot by the
:class:`Router` (bounded in-flight batches per engine: backpressure) through the
``submit`` callable, and remembered in the :class:`Ledger` until they come back. A
failed batch goes back to the front of the batcher and is sent again, to any live
engine, up to ``max_attempts`` times.

With ``balance`` (Offline: one query holds every sample), each engine gets an equal
share of the samples: an engine's last batch is cut to what its share still holds, so
all engines finish together instead of one running a last full batch alone.

An engine's failures count per incident (see :class:`Router`): one crash is one
failure however many batches it had in flight. A transport that lost an engine and
waits for it to come back says so (:meth:`Dispatcher.engine_down`, then
:meth:`Dispatcher.engine_back` or :meth:`Dispatcher.engine_gone`); meanwhile the engine
gets no batch.

If the run cannot go on (an engine raised an error, every engine is retired, or a
LoadGen callback failed: :meth:`Dispatcher.abort`), the dispatcher turns fatal: it
completes every outstanding sample with no data, so that LoadGen's test ends, and
:attr:`Dispatcher.fatal` says why. No exception leaves :meth:`Dispatcher.issue` or
:meth:`Dispatcher.flush`: one escaping into LoadGen would end its process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

from raybench.errors import error_line
from raybench.scheduling.batcher import Batcher
from raybench.scheduling.ledger import Batch, Ledger, LedgerError
from raybench.scheduling.router import Router

log = logging.getLogger(__name__)

Submit = Callable[[Batch], None]
Complete = Callable[[list, Any], None]


class Dispatcher:
    """Batches, routes and completes LoadGen's samples exactly once.

    Args:
        batcher: Cuts batches.
        router: Chooses engines and bounds their in-flight batches.
        submit: Starts a batch on its engine; must not block on the engine's work.
        complete: Completes sample ids with a payload (None: no data).
        max_attempts: Times a sample is sent before the run gives up.
        track_ids: Check every sample id, not only counts.
        clock: Time source of the batcher's timeouts (seconds).
        observer: None, or ``on_issue(n)``, ``on_batch(batch, queued)``,
            ``on_complete(batch, ok)``.
        balance: Share the samples equally among the engines (Offline).
    """

    def __init__(self, batcher: Batcher, router: Router, submit: Submit, complete: Complete,
                 max_attempts: int = 5, track_ids: bool = False,
                 clock: Callable[[], float] = time.monotonic, observer: Any = None,
                 balance: bool = False):
        self.batcher = batcher
        self.router = router
        self.ledger = Ledger(track_ids)
        self.submit = submit
        self.complete = complete
        self.max_attempts = max_attempts
        self.clock = clock
        self.observer = observer
        self.balance = balance
        self.fatal: Optional[str] = None
        self.batches_sent = 0
        self.samples_per_engine = [0] * len(router.inflight)
        self._samples_sent = 0
        self._lock = threading.Lock()
        self._timer_wake = threading.Condition(self._lock)
        self._stopping = False
        self._timer: Optional[threading.Thread] = None

    # -- LoadGen side -------------------------------------------------------------
    def issue(self, ids: list, indices: list) -> None:
        """Queue an issue call's samples and send the batches they complete (LoadGen's thread).

        Never raises: an exception escaping into LoadGen ends its process, so a failure
        here ends the test instead (see :meth:`abort`).
        """
        accepted = False  # the samples are queued, or completed: not to be completed again
        try:
            with self._lock:
                fatal = self.fatal is not None
                if not fatal:
                    batcher = self.batcher
                    was_empty = not len(batcher)
                    self.ledger.received(ids)
                    batcher.add(ids, indices)
                    accepted = True
                    if self.observer is not None:
                        self.observer.on_issue(len(ids))
                    batches = []
                    if not batcher.timeout_s or len(batcher) >= batcher.max_batch:
                        batches = self._take_ready()  # else only the timer's due time can cut
                    if batcher.timeout_s and was_empty and len(batcher):
                        self._timer_wake.notify()  # a new oldest sample: the due time moved
            if fatal:  # nothing is sent any more
                accepted = True
                self.complete(ids, None)
            else:
                self._send(batches)
        except Exception as exc:
            self.abort(f"cannot issue samples: {error_line(exc)}", () if accepted else ids)

    def flush(self) -> None:
        """Make every queued sample ready and send what the free slots take (never raises)."""
        try:
            with self._lock:
                self.batcher.flush()
                batches = self._take_ready()
                self._timer_wake.notify()
            self._send(batches)
        except Exception as exc:
            self.abort(f"cannot flush queued samples: {error_line(exc)}")

    def abort(self, reason: str, unqueued: list = ()) -> None:
        """End the test: complete every outstanding sample without data; :attr:`fatal`
        says ``reason`` (the first reason wins). Never raises.

        Args:
            reason: One line for the user.
            unqueued: Sample ids LoadGen issued that never reached the ledger.
        """
        with self._lock:
            to_complete = self._go_fatal(reason)
        if unqueued:
            to_complete.append((list(unqueued), None))
        self._complete_all(to_complete)

    # -- engine side (any thread) -------------------------------------------------
    def done(self, batch_id: int, result: Any) -> None:
        """An engine finished a batch: send what its slot allows, then complete the batch.

        Args:
            batch_id: The batch.
            result: Its payload (None in performance runs).
        """
        with self._lock:
            try:
                batch = self.ledger.close(batch_id)
            except LedgerError as exc:
                if self.fatal is not None:
                    return  # a late answer for a batch already given up on
                # an exactly-once violation: end the test rather than hang LoadGen
                batches, to_complete = [], self._go_fatal(f"exactly-once accounting broken: {exc}")
            else:
                self.router.release(batch.engine)
                if self.observer is not None:
                    self.observer.on_complete(batch)
                batches, to_complete = self._take_ready(), [(batch.ids, result)]
            if self._stopping:
                self._timer_wake.notify()
        self._send(batches)
        self._complete_all(to_complete)

    def failed(self, batch_id: int, error: str, retry: bool) -> None:
        """An engine failed a batch; ``retry`` says whether another engine may try it."""
        with self._lock:
            try:
                batch = self.ledger.fail(batch_id)
            except LedgerError as exc:
                if self.fatal is not None:
                    return
                batches, to_complete = [], self._go_fatal(f"exactly-once accounting broken: {exc}")
            else:
                new = self.router.release(batch.engine, ok=False, incident=batch.incident)
                if self.observer is not None:
                    self.observer.on_complete(batch, ok=False)
                log.warning("engine %d failed batch %d (attempt %d%s): %s", batch.engine,
                            batch_id, batch.attempt, "" if new else ", same incident", error)
                to_complete = []
                if retry and batch.attempt < self.max_attempts and self.router.live:
                    self.batcher.requeue(batch.ids, batch.indices, batch.attempt + 1)
                else:
                    if not self.router.live:
                        error = f"every engine failed; last error: {error}"
                    to_complete = self._go_fatal(error, batch)
                batches = self._take_ready()
            if self._stopping:
                self._timer_wake.notify()
        self._send(batches)
        self._complete_all(to_complete)

    def engine_down(self, engine: int) -> None:
        """An engine was lost and its transport waits for it: send it nothing meanwhile."""
        with self._lock:
            self.router.down(engine)

    def engine_back(self, engine: int) -> None:
        """A lost engine is back: it takes batches again."""
        with self._lock:
            self.router.back(engine)
            batches = self._take_ready()
        self._send(batches)

    def engine_gone(self, engine: int, error: str) -> None:
        """A lost engine will not come back: retire it (the last one: the run is over)."""
        with self._lock:
            self.router.retire(engine)
            log.warning("engine %d is gone: %s", engine, error)
            to_complete = []
            if not self.router.live:
                to_complete = self._go_fatal(f"every engine failed; last error: {error}")
            batches = self._take_ready()
        self._send(batches)
        self._complete_all(to_complete)

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Start the timer thread (it sends partial batches when they are due)."""
        self._timer = threading.Thread(target=self._timer_loop, name="raybench-batch-timer",
                                       daemon=True)
        self._timer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the timer thread once every queued sample has been sent to an engine.

        Answers keep being processed (a full engine frees its slot only through one).
        """
        with self._lock:
            self._stopping = True
            self._timer_wake.notify()
        if self._timer is not None:
            self._timer.join(timeout)

    @property
    def threads(self) -> list[threading.Thread]:
        """The dispatcher's own threads (the timer)."""
        return [self._timer] if self._timer is not None else []

    # -- internals ----------------------------------------------------------------
    def _share_left(self, engine: int) -> int:
        """Samples ``engine`` may still take under an equal share (lock held)."""
        live = self.router.available or 1
        share = -(-(self._samples_sent + len(self.batcher)) // live)  # ceil
        return share - self.samples_per_engine[engine]

    def _eligible(self, engine: int) -> bool:
        return self._share_left(engine) > 0

    def _take_ready(self) -> list[Batch]:
        """Cut every batch that is ready and has a free engine slot (lock held)."""
        batches: list[Batch] = []
        if self.fatal is not None:
            return batches
        batcher, router = self.batcher, self.router
        now = self.clock()
        while batcher.ready(now):
            engine = router.acquire(self._eligible if self.balance else None)
            if engine is None:
                break  # backpressure: every engine is at its bound
            limit = min(batcher.max_batch, self._share_left(engine)) if self.balance else None
            ids, indices, attempt = batcher.pop(now, limit)
            batch = self.ledger.open(ids, indices, engine, attempt, router.incident(engine))
            self.batches_sent += 1
            self.samples_per_engine[engine] += len(ids)
            self._samples_sent += len(ids)
            if self.observer is not None:
                self.observer.on_batch(batch, len(batcher))
            batches.append(batch)
        return batches

    def _send(self, batches: list[Batch]) -> None:
        """Hand batches to their engines (no lock held: ``submit`` may take a while)."""
        for batch in batches:
            if self.fatal is not None:
                return  # its samples were completed without data
            try:
                self.submit(batch)
            except Exception as exc:  # a submit that cannot even start is fatal
                self.failed(batch.batch_id, f"cannot submit to engine {batch.engine}: {exc}",
                            retry=False)

    def _complete_all(self, pairs: list[tuple[list, Any]]) -> None:
        """Complete samples; a completion that raises ends the test (see :meth:`abort`)."""
        for ids, data in pairs:
            try:
                self.complete(ids, data)
            except Exception as exc:
                log.error("completing %d samples failed: %s", len(ids), error_line(exc))
                if self.fatal is None:
                    self.abort(f"cannot complete samples: {error_line(exc)}")

    def _timer_loop(self) -> None:
        wake, batcher = self._timer_wake, self.batcher
        while True:
            with self._lock:
                while True:
                    if self._stopping and (not len(batcher) or self.fatal is not None):
                        return
                    due = batcher.next_due()
                    now = self.clock()
                    if due is not None and due > now:
                        wake.wait(due - now)
                        continue
                    batches = self._take_ready() if due is not None else []
                    if batches:
                        break
                    wake.wait()  # nothing queued, or no free slot: an answer sends what is due
            self._send(batches)

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
        self._timer_wake.notify()
        return pending
