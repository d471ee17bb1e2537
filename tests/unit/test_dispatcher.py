"""Unit tests for raybench.scheduling.dispatcher.Dispatcher.

Real threads, no Ray and no LoadGen: a fake ``submit`` hands each batch to a thread
pool that plays the engines and answers through ``Dispatcher.done`` / ``failed``; a
fake ``complete`` records every completed sample id. No assertion depends on speed:
waits are generous polls, and timing logic uses an injected clock where it matters.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import pytest

from raybench.scheduling.batcher import Batcher
from raybench.scheduling.dispatcher import Dispatcher
from raybench.scheduling.router import Router
from tests.waiting import WAIT_S, wait_until



@pytest.fixture
def thread_errors(monkeypatch):
    """Collect exceptions raised in any thread (e.g. the completion loop dying)."""
    errors: list[BaseException] = []
    original = threading.excepthook

    def hook(args):
        errors.append(args.exc_value)
        original(args)

    monkeypatch.setattr(threading, "excepthook", hook)
    yield errors
    assert not errors, f"exceptions in background threads: {errors!r}"


# Behaviour of a fake engine for one batch: "ok", or ("fail", retry)
Behaviour = Callable[["SubmittedBatch"], object]


class SubmittedBatch:
    def __init__(self, batch, seq: int):
        self.batch_id = batch.batch_id
        self.engine = batch.engine
        self.attempt = batch.attempt
        self.ids = list(batch.ids)
        self.indices = list(batch.indices)
        self.seq = seq  # n-th batch submitted to this engine (0-based)


class Harness:
    """A dispatcher wired to fake engines (a thread pool) and a recording ``complete``."""

    def __init__(self, engines: int = 3, max_inflight: int = 2, max_batch: int = 4,
                 timeout_s: float = 0.0, max_failures: int = 3, max_attempts: int = 5,
                 behaviour: Optional[Behaviour] = None, delay_s: float = 0.0,
                 gate: Optional[threading.Event] = None, submit_error: Optional[Exception] = None,
                 clock: Callable[[], float] = time.monotonic, track_ids: bool = True):
        self.lock = threading.Lock()
        self.engines = engines
        self.max_inflight = max_inflight
        self.behaviour = behaviour or (lambda b: "ok")
        self.delay_s = delay_s
        self.gate = gate
        self.submit_error = submit_error
        self.pool = ThreadPoolExecutor(max_workers=engines * max_inflight + 4)
        self.submitted: list[SubmittedBatch] = []
        self.per_engine_count = [0] * engines
        self.inflight = [0] * engines
        self.max_seen = [0] * engines
        self.completed: Counter = Counter()
        self.completed_data: dict[int, object] = {}
        self.complete_calls: list[tuple[list, object]] = []
        self.failed_batches: list[SubmittedBatch] = []
        self.ok_batches: list[SubmittedBatch] = []
        self.batcher = Batcher(max_batch, timeout_s, clock=clock)
        self.router = Router(engines, max_inflight, max_failures=max_failures)
        self.d = Dispatcher(self.batcher, self.router, self.submit, self.complete,
                            max_attempts=max_attempts, track_ids=track_ids, clock=clock)

    # -- fakes --------------------------------------------------------------------------
    def submit(self, batch) -> None:
        if self.submit_error is not None:
            raise self.submit_error
        with self.lock:
            sb = SubmittedBatch(batch, self.per_engine_count[batch.engine])
            self.per_engine_count[batch.engine] += 1
            self.submitted.append(sb)
            self.inflight[batch.engine] += 1
            self.max_seen[batch.engine] = max(self.max_seen[batch.engine],
                                              self.inflight[batch.engine])
        self.pool.submit(self._engine_work, sb)

    def _engine_work(self, sb: SubmittedBatch) -> None:
        if self.gate is not None:
            self.gate.wait(WAIT_S)
        outcome = self.behaviour(sb)
        if outcome == "ok" and self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.inflight[sb.engine] -= 1
            if outcome == "ok":
                self.ok_batches.append(sb)
            else:
                self.failed_batches.append(sb)
        if outcome == "ok":
            self.d.done(sb.batch_id, ("result", sb.engine, list(sb.ids)))
        else:
            _, retry = outcome
            self.d.failed(sb.batch_id, f"engine {sb.engine} broke", retry)

    def complete(self, ids: list, data) -> None:
        with self.lock:
            self.complete_calls.append((list(ids), data))
            for i in ids:
                self.completed[i] += 1
                self.completed_data[i] = data

    # -- helpers ------------------------------------------------------------------------
    def n_completed(self) -> int:
        with self.lock:
            return len(self.completed)

    def wait_completed(self, n: int) -> None:
        assert wait_until(lambda: self.n_completed() >= n), (
            f"only {self.n_completed()} of {n} samples completed; fatal={self.d.fatal!r}")

    def assert_exactly_once(self, ids) -> None:
        with self.lock:
            assert set(self.completed) == set(ids)
            dupes = {i: c for i, c in self.completed.items() if c != 1}
            assert not dupes, f"completed more than once: {dupes}"

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.pool.shutdown(wait=True)
        self.d.stop(timeout=WAIT_S)
        for t in self.d.threads:
            assert not t.is_alive(), f"{t.name} did not stop"


@pytest.fixture
def harnesses(thread_errors):
    made: list[Harness] = []

    def make(**kw) -> Harness:
        h = Harness(**kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def issue_concurrently(d: Dispatcher, threads: int, calls: int, max_chunk: int) -> list[int]:
    """Issue unique ids from several threads at once; return every id issued."""
    all_ids: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def worker(t: int) -> None:
        barrier.wait(WAIT_S)
        for c in range(calls):
            size = (t + c) % max_chunk + 1
            base = (t * calls + c) * max_chunk
            ids = list(range(base, base + size))
            d.issue(ids, [i + 1_000_000 for i in ids])
            all_ids[t].extend(ids)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(WAIT_S)
        assert not th.is_alive()
    return [i for ids in all_ids for i in ids]


# -- exactly once under concurrency ---------------------------------------------------
@pytest.mark.parametrize("timeout_s", [0.0, 0.002])
def test_every_issued_id_completed_exactly_once(harnesses, timeout_s):
    h = harnesses(engines=3, max_inflight=2, max_batch=8, timeout_s=timeout_s)
    h.d.start()
    ids = issue_concurrently(h.d, threads=4, calls=60, max_chunk=5)
    h.d.flush()
    assert len(ids) == len(set(ids))
    h.wait_completed(len(ids))
    h.assert_exactly_once(ids)
    d = h.d
    assert d.fatal is None
    assert wait_until(lambda: d.ledger.check_drained() is None), d.ledger.check_drained()
    assert d.ledger.received_count == d.ledger.completed_count == len(ids)
    assert d.ledger.retried_count == 0
    # each completion carries its own batch's payload
    for call_ids, data in h.complete_calls:
        assert data[0] == "result" and data[2] == call_ids
    # accounting agrees with what the fake engines saw
    assert d.batches_sent == len(h.submitted)
    assert sum(d.samples_per_engine) == len(ids)
    for e in range(h.engines):
        assert d.samples_per_engine[e] == sum(len(b.ids) for b in h.submitted if b.engine == e)
    # batches respect max_batch; ids match their indices
    for b in h.submitted:
        assert 1 <= len(b.ids) <= 8
        assert b.indices == [i + 1_000_000 for i in b.ids]
        assert b.attempt == 1
    # backpressure: never more than max_inflight per engine at once
    assert max(h.max_seen) <= 2
    assert wait_until(lambda: h.router.total_inflight() == 0)


def test_samples_of_one_issue_call_stay_in_order(harnesses):
    h = harnesses(engines=2, max_inflight=1, max_batch=3)
    ids = list(range(10))
    h.d.issue(ids, [i * 2 for i in ids])
    h.d.start()
    h.wait_completed(10)
    h.assert_exactly_once(ids)
    sent = [i for b in sorted(h.submitted, key=lambda b: b.batch_id) for i in b.ids]
    assert sent == ids
    assert [len(b.ids) for b in sorted(h.submitted, key=lambda b: b.batch_id)] == [3, 3, 3, 1]


# -- backpressure ---------------------------------------------------------------------
def test_backpressure_bounds_inflight_batches(harnesses):
    gate = threading.Event()
    h = harnesses(engines=2, max_inflight=2, max_batch=1, gate=gate)
    h.d.start()
    ids = list(range(12))
    for i in ids:
        h.d.issue([i], [i])
    assert wait_until(lambda: len(h.submitted) >= 4)
    # the engines are stuck: nothing more may be sent until a slot frees
    time.sleep(0.05)
    with h.lock:
        assert len(h.submitted) == 4
        assert h.inflight == [2, 2]
    assert h.router.inflight == [2, 2]
    assert h.router.acquire() is None  # (lock-free peek is safe: dispatcher is waiting)
    assert len(h.batcher) == 8
    gate.set()
    h.wait_completed(12)
    h.assert_exactly_once(ids)
    assert max(h.max_seen) == 2
    assert len(h.submitted) == 12


def test_backpressure_under_load_never_exceeds_bound(harnesses):
    h = harnesses(engines=2, max_inflight=3, max_batch=2, delay_s=0.001)
    ids = list(range(200))
    for i in range(0, 200, 5):
        h.d.issue(ids[i:i + 5], ids[i:i + 5])
    h.d.start()
    h.wait_completed(200)
    h.assert_exactly_once(ids)
    assert all(m <= 3 for m in h.max_seen), h.max_seen
    assert all(m >= 1 for m in h.max_seen)


# -- batching: size cut, timeout cut, flush -------------------------------------------
def test_size_cut_without_timeout_or_flush(harnesses):
    # timeout far in the future: only the max_batch cut can send anything
    h = harnesses(engines=1, max_inflight=4, max_batch=4, timeout_s=3600.0)
    h.d.start()
    ids = list(range(20))
    for i in ids:
        h.d.issue([i], [i])
    h.wait_completed(20)
    h.assert_exactly_once(ids)
    assert sorted(len(b.ids) for b in h.submitted) == [4] * 5


def test_server_timeout_cuts_partial_batch_real_clock(harnesses):
    h = harnesses(engines=2, max_inflight=2, max_batch=8, timeout_s=0.02)
    h.d.start()
    h.d.issue([1, 2, 3], [10, 20, 30])  # no flush
    h.wait_completed(3)
    h.assert_exactly_once([1, 2, 3])
    assert [b.ids for b in h.submitted] == [[1, 2, 3]]
    assert [b.indices for b in h.submitted] == [[10, 20, 30]]


def test_full_batches_leave_at_once_and_the_rest_on_its_timeout(harnesses):
    h = harnesses(engines=1, max_inflight=4, max_batch=4, timeout_s=0.5)
    h.d.start()
    h.d.issue(list(range(10)), list(range(10)))  # nothing else happens afterwards
    assert [len(b.ids) for b in h.submitted] == [4, 4]  # sent from the issuing thread
    h.wait_completed(10)
    h.assert_exactly_once(list(range(10)))
    assert [len(b.ids) for b in h.submitted] == [4, 4, 2]


def test_server_timeout_cut_with_fake_clock(harnesses):
    now = [1000.0]
    h = harnesses(engines=1, max_inflight=2, max_batch=8, timeout_s=5.0, clock=lambda: now[0])
    h.d.start()
    h.d.issue([1], [1])
    h.d.issue([2, 3], [2, 3])
    time.sleep(0.05)
    assert h.submitted == []  # not due by the (frozen) clock, and below max_batch
    now[0] += 5.0
    h.d.issue([], [])  # wakes the dispatch thread, adds nothing
    h.wait_completed(3)
    h.assert_exactly_once([1, 2, 3])
    assert [b.ids for b in h.submitted] == [[1, 2, 3]]
    assert h.d.ledger.received_count == 3


def test_flush_sends_partial_batch_at_once(harnesses):
    h = harnesses(engines=1, max_inflight=1, max_batch=8, timeout_s=3600.0)
    h.d.start()
    h.d.issue([5, 6], [50, 60])
    time.sleep(0.02)
    assert h.submitted == []
    h.d.flush()
    h.wait_completed(2)
    h.assert_exactly_once([5, 6])
    assert [b.ids for b in h.submitted] == [[5, 6]]


# -- failures and retries -------------------------------------------------------------
def test_failing_engine_batches_resent_to_other_engines(harnesses):
    # engine 0 fails everything it gets (retryable) and is retired after 3 in a row; one
    # batch in flight per engine, so each failure is an incident of its own, and healthy
    # engines that take a while, so engine 0 (chosen last once it failed) gets its three
    h = harnesses(engines=3, max_inflight=1, max_batch=4, max_failures=3, delay_s=0.002,
                  behaviour=lambda b: ("fail", True) if b.engine == 0 else "ok")
    h.d.start()
    ids = issue_concurrently(h.d, threads=3, calls=40, max_chunk=4)
    h.d.flush()
    h.wait_completed(len(ids))
    h.assert_exactly_once(ids)
    d = h.d
    assert d.fatal is None
    assert h.failed_batches, "engine 0 never got a batch"
    assert all(b.engine == 0 for b in h.failed_batches)
    assert all(b.engine != 0 for b in h.ok_batches)
    # every completion's data comes from a healthy engine
    for call_ids, data in h.complete_calls:
        assert data is not None and data[1] != 0
    assert d.ledger.retried_count == sum(len(b.ids) for b in h.failed_batches) > 0
    assert h.router.retired == {0}
    assert h.router.live == 2
    assert len(h.failed_batches) == 3  # retired after 3 in a row
    # every failed sample was sent again with a higher attempt number
    retried_ids = {i for b in h.failed_batches for i in b.ids}
    resent = [b for b in h.submitted if b.attempt > 1]
    assert retried_ids <= {i for b in resent for i in b.ids}
    assert wait_until(lambda: d.ledger.check_drained() is None), d.ledger.check_drained()


def test_engine_failing_first_batches_recovers(harnesses):
    # engine 0 fails only its first two batches: below max_failures, so not retired
    h = harnesses(engines=2, max_inflight=1, max_batch=2, max_failures=3,
                  behaviour=lambda b: ("fail", True) if b.engine == 0 and b.seq < 2 else "ok")
    ids = list(range(40))
    h.d.issue(ids, ids)
    h.d.start()
    h.wait_completed(40)
    h.assert_exactly_once(ids)
    d = h.d
    assert d.fatal is None
    assert len(h.failed_batches) == 2
    assert d.ledger.retried_count == 4
    assert h.router.retired == set()
    assert any(b.engine == 0 for b in h.ok_batches)
    assert wait_until(lambda: h.router.failures == [0, 0])  # success reset the count
    assert wait_until(lambda: d.ledger.check_drained() is None), d.ledger.check_drained()


def test_non_retryable_failure_is_fatal_and_completes_everything_once(harnesses):
    # engine 0 fails its first batch for good; the others answer slowly, so at the
    # moment of failure there are open batches and samples still in the batcher
    h = harnesses(engines=3, max_inflight=1, max_batch=2, delay_s=0.02,
                  behaviour=lambda b: ("fail", False) if b.engine == 0 else "ok")
    ids = list(range(60))
    for i in range(0, 60, 3):
        h.d.issue(ids[i:i + 3], ids[i:i + 3])
    h.d.start()
    h.wait_completed(60)
    # let the slow engines' late answers arrive and be ignored
    h.pool.shutdown(wait=True)
    h.assert_exactly_once(ids)
    d = h.d
    assert d.fatal is not None and "engine 0 broke" in d.fatal
    assert len(h.failed_batches) == 1
    # the failed batch's samples were completed without data
    for i in h.failed_batches[0].ids:
        assert h.completed_data[i] is None
    # samples that never reached an engine were completed without data too
    sent = {i for b in h.submitted for i in b.ids}
    assert set(ids) - sent, "expected samples still queued at the moment of failure"
    for i in set(ids) - sent:
        assert h.completed_data[i] is None
    assert len(h.batcher) == 0
    # once fatal, new samples are completed at once, without data, exactly once
    h.d.issue([1000, 1001], [0, 1])
    h.wait_completed(62)
    h.assert_exactly_once(ids + [1000, 1001])
    assert h.completed_data[1000] is None and h.completed_data[1001] is None
    # the late answers were ignored without breaking the dispatcher's thread
    assert all(t.is_alive() for t in d.threads)


def test_all_engines_retired_is_fatal(harnesses):
    h = harnesses(engines=2, max_inflight=2, max_batch=3, max_failures=2, max_attempts=100,
                  behaviour=lambda b: ("fail", True))
    ids = list(range(30))
    h.d.issue(ids, ids)
    h.d.start()
    h.wait_completed(30)
    h.assert_exactly_once(ids)
    d = h.d
    assert d.fatal is not None
    assert "every engine failed" in d.fatal
    assert h.router.live == 0
    assert h.router.retired == {0, 1}
    assert all(data is None for _, data in h.complete_calls)
    assert d.ledger.retried_count > 0


def test_max_attempts_exhausted_is_fatal(harnesses):
    h = harnesses(engines=1, max_inflight=1, max_batch=4, max_failures=1000, max_attempts=3,
                  behaviour=lambda b: ("fail", True))
    ids = list(range(8))
    h.d.issue(ids, ids)
    h.d.start()
    h.wait_completed(8)
    h.assert_exactly_once(ids)
    d = h.d
    assert d.fatal is not None and "every engine failed" not in d.fatal
    # the first batch was tried exactly max_attempts times, then the run gave up
    first = [b for b in h.submitted if b.ids == [0, 1, 2, 3]]
    assert [b.attempt for b in first] == [1, 2, 3]
    assert len(h.submitted) == 3
    assert h.router.live == 1
    assert all(data is None for _, data in h.complete_calls)


def test_submit_raising_is_fatal(harnesses):
    h = harnesses(engines=2, max_inflight=1, max_batch=2, submit_error=RuntimeError("no actor"))
    ids = list(range(7))
    h.d.issue(ids, ids)
    h.d.start()
    h.wait_completed(7)
    h.assert_exactly_once(ids)
    assert h.d.fatal is not None and "no actor" in h.d.fatal
    assert all(data is None for _, data in h.complete_calls)


# -- lifecycle ------------------------------------------------------------------------
def test_start_and_stop_idle(harnesses):
    h = harnesses()
    h.d.start()
    assert len(h.d.threads) == 1
    h.d.issue([], [])
    h.d.stop(timeout=WAIT_S)
    assert not any(t.is_alive() for t in h.d.threads)
    assert h.completed == Counter()
    assert h.d.ledger.check_drained() is None


def test_stop_waits_for_queued_samples_to_be_sent(harnesses):
    h = harnesses(engines=1, max_inflight=1, max_batch=2, delay_s=0.05)
    h.d.start()
    h.d.issue([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    h.d.stop(timeout=WAIT_S)  # three batches, one slot: two answers must come back first
    assert not any(t.is_alive() for t in h.d.threads)
    assert sorted(i for b in h.submitted for i in b.ids) == [1, 2, 3, 4, 5]
    assert len(h.d.batcher) == 0


def test_a_batch_answered_twice_ends_the_run_instead_of_hanging(thread_errors):
    completed: list[int] = []
    sent = []
    dispatcher = Dispatcher(Batcher(max_batch=2), Router(engines=1, max_inflight=2),
                            submit=sent.append, complete=lambda ids, data: completed.extend(ids))
    dispatcher.start()
    try:
        dispatcher.issue([1, 2, 3, 4], [0, 1, 2, 3])
        assert wait_until(lambda: len(sent) == 2)
        first = sent[0].batch_id
        dispatcher.done(first, None)
        dispatcher.done(first, None)  # a duplicate answer: exactly-once is broken
        assert wait_until(lambda: dispatcher.fatal is not None)
        assert "exactly-once" in dispatcher.fatal
        assert wait_until(lambda: sorted(completed) == [1, 2, 3, 4])  # LoadGen can finish
    finally:
        dispatcher.stop()


def test_batches_leave_from_the_issuing_thread_and_complete_in_the_answering_thread():
    """No thread in between: issue() sends, done() sends the next batch and completes."""
    sent, completions = [], []
    dispatcher = Dispatcher(Batcher(max_batch=2), Router(engines=1, max_inflight=1),
                            submit=sent.append,
                            complete=lambda ids, data: completions.append(
                                (list(ids), data, threading.current_thread().name)))
    dispatcher.issue([1, 2, 3, 4], [10, 20, 30, 40])  # the timer thread is not even started
    assert [b.ids for b in sent] == [[1, 2]]  # one slot: the second batch waits
    answering = threading.Thread(target=dispatcher.done, args=(sent[0].batch_id, "p1"),
                                 name="engine-answer")
    answering.start()
    answering.join(WAIT_S)
    # when done() returned, the batch was completed, in the answering thread, and the
    # freed slot already carried the next batch
    assert completions == [([1, 2], "p1", "engine-answer")]
    assert [b.ids for b in sent] == [[1, 2], [3, 4]]
    dispatcher.done(sent[1].batch_id, None)
    assert completions[-1][:2] == ([3, 4], None)
    assert dispatcher.ledger.check_drained() is None


def _offline(engines: int, max_batch: int, samples: int, balance: bool) -> list:
    """One Offline query through a dispatcher whose engines answer in send order."""
    sent = []
    dispatcher = Dispatcher(Batcher(max_batch=max_batch), Router(engines, max_inflight=2),
                            submit=sent.append, complete=lambda ids, data: None,
                            balance=balance)
    ids = list(range(samples))
    dispatcher.issue(ids, ids)
    answered = 0
    while answered < len(sent):
        dispatcher.done(sent[answered].batch_id, None)
        answered += 1
    assert dispatcher.ledger.check_drained() is None
    assert sorted(i for b in sent for i in b.ids) == ids
    assert all(len(b.ids) <= max_batch for b in sent)
    return dispatcher.samples_per_engine


def test_offline_samples_are_shared_equally_so_engines_finish_together():
    # 129 batches' worth on 8 engines: without balance one engine runs a 17th full batch
    # alone while the other seven are idle (the tail of a short Offline run)
    plain = _offline(engines=8, max_batch=1280, samples=129 * 1280, balance=False)
    assert max(plain) - min(plain) == 1280
    balanced = _offline(engines=8, max_batch=1280, samples=129 * 1280, balance=True)
    assert sum(balanced) == 129 * 1280
    assert max(balanced) - min(balanced) <= 7
    assert max(balanced) == -(-129 * 1280 // 8)


@pytest.mark.parametrize("engines,samples", [(3, 10), (4, 3), (2, 1), (5, 10_001)])
def test_balance_never_leaves_samples_behind(engines, samples):
    per_engine = _offline(engines=engines, max_batch=7, samples=samples, balance=True)
    assert sum(per_engine) == samples
    assert max(per_engine) == -(-samples // engines)  # the shortest possible last finish


def test_balance_still_sends_everything_when_an_engine_is_retired(thread_errors):
    sent, completed = [], []
    dispatcher = Dispatcher(Batcher(max_batch=4), Router(3, max_inflight=1, max_failures=1),
                            submit=sent.append, complete=lambda ids, data: completed.extend(ids),
                            balance=True)
    ids = list(range(30))
    dispatcher.issue(ids, ids)
    failed = next(b for b in sent if b.engine == 0)
    dispatcher.failed(failed.batch_id, "engine 0 died", retry=True)  # retired at once
    answered = 0
    while answered < len(sent):
        batch = sent[answered]
        answered += 1
        if batch is not failed:
            dispatcher.done(batch.batch_id, None)
    assert dispatcher.fatal is None
    assert sorted(completed) == ids
    assert all(b.engine != 0 for b in sent if b is not failed)


# -- failures per incident, lost engines, callbacks that raise -------------------------
def _manual(engines=2, max_inflight=4, max_failures=2, **kw):
    """A dispatcher whose batches wait in ``sent`` until the test answers them."""
    sent, completed = [], Counter()

    def complete(ids, data):
        completed.update(ids)

    dispatcher = Dispatcher(Batcher(max_batch=2), Router(engines, max_inflight, max_failures),
                            submit=sent.append, complete=complete, track_ids=True, **kw)
    return dispatcher, sent, completed


def _answer(dispatcher, sent, handled: set, until=lambda: False) -> None:
    """Answer every batch sent and not handled yet (answers send more), or stop at ``until``."""
    while not until():
        todo = [b for b in sent if b.batch_id not in handled]
        if not todo:
            return
        handled.add(todo[0].batch_id)
        dispatcher.done(todo[0].batch_id, None)


def test_one_crash_with_many_batches_in_flight_is_one_failure(thread_errors):
    d, sent, completed = _manual(engines=2, max_inflight=4, max_failures=2)
    ids = list(range(40))
    d.issue(ids, ids)
    on_0 = [b for b in sent if b.engine == 0]
    assert len(on_0) == 4
    d.engine_down(0)  # the transport lost engine 0 and waits for it
    for b in on_0:
        d.failed(b.batch_id, "ActorDiedError: engine 0 died", retry=True)
    assert d.router.failures[0] == 1 and d.router.retired == set()  # not 4: retired at 2
    handled = {b.batch_id for b in on_0}
    _answer(d, sent, handled, until=lambda: len(completed) >= 20)
    assert all(b.engine == 1 for b in sent if b.batch_id not in {x.batch_id for x in on_0})
    before = len(sent)
    d.engine_back(0)
    _answer(d, sent, handled)
    assert any(b.engine == 0 for b in sent[before:])  # back at work
    assert d.fatal is None and d.router.failures == [0, 0]
    assert sorted(completed) == ids and set(completed.values()) == {1}
    assert d.ledger.check_drained() is None


def test_two_engines_lost_at_once_wait_for_the_first_back(thread_errors):
    d, sent, completed = _manual(engines=2, max_inflight=4, max_failures=2)
    ids = list(range(40))
    d.issue(ids, ids)
    inflight = list(sent)
    for engine in (0, 1):
        d.engine_down(engine)
    for b in inflight:
        d.failed(b.batch_id, "ActorUnavailableError: The actor is restarting", retry=True)
    assert d.fatal is None and len(sent) == len(inflight)  # all queued, nothing sent
    assert d.router.failures == [1, 1] and d.router.retired == set()
    d.engine_back(1)
    assert len(sent) > len(inflight) and all(b.engine == 1 for b in sent[len(inflight):])
    d.engine_back(0)
    _answer(d, sent, {b.batch_id for b in inflight})
    assert d.fatal is None
    assert sorted(completed) == ids and set(completed.values()) == {1}


def test_an_engine_gone_for_good_is_retired_and_the_last_one_ends_the_test(thread_errors):
    d, sent, completed = _manual(engines=2, max_inflight=1)
    ids = list(range(10))
    d.issue(ids, ids)
    d.engine_down(0)
    d.failed(sent[0].batch_id, "lost", retry=True)
    d.engine_gone(0, "ActorDiedError: dead for good")
    assert d.router.retired == {0} and d.fatal is None
    d.engine_down(1)
    d.failed(sent[1].batch_id, "lost", retry=True)
    d.engine_gone(1, "ActorDiedError: dead for good")
    assert d.fatal == "every engine failed; last error: ActorDiedError: dead for good"
    assert sorted(completed) == ids and set(completed.values()) == {1}


class _RaisingObserver:
    def on_issue(self, n):
        raise ValueError("observer broke")

    def on_batch(self, batch, queued):
        pass

    def on_complete(self, batch, ok=True):
        pass


def test_an_issue_that_raises_ends_the_test_instead_of_raising(thread_errors):
    d, sent, completed = _manual(observer=_RaisingObserver())
    d.issue([1, 2, 3], [1, 2, 3])  # must not raise into LoadGen
    assert d.fatal == "cannot issue samples: observer broke"
    assert sorted(completed) == [1, 2, 3] and set(completed.values()) == {1}
    d.issue([4], [4])  # later samples complete at once
    assert completed[4] == 1


def test_a_completion_that_raises_ends_the_test(thread_errors):
    calls = []

    def complete(ids, data):
        calls.append(list(ids))
        if len(calls) == 1:
            raise RuntimeError("bad response")

    sent = []
    d = Dispatcher(Batcher(max_batch=2), Router(1, 2), submit=sent.append, complete=complete)
    d.issue([1, 2, 3, 4], [1, 2, 3, 4])
    d.done(sent[0].batch_id, None)  # its completion raises: the rest completes without data
    assert d.fatal == "cannot complete samples: bad response"
    assert calls == [[1, 2], [3, 4]]
    d.done(sent[1].batch_id, None)  # a late answer is ignored
    assert calls == [[1, 2], [3, 4]]


def test_abort_completes_what_is_outstanding_once_and_keeps_the_first_reason(thread_errors):
    d, sent, completed = _manual(engines=1, max_inflight=1)
    d.issue(list(range(6)), list(range(6)))
    d.abort("cannot load samples: x.npy: truncated")
    d.abort("a second reason")
    assert d.fatal == "cannot load samples: x.npy: truncated"
    assert sorted(completed) == list(range(6)) and set(completed.values()) == {1}
    d.done(sent[0].batch_id, None)
    assert set(completed.values()) == {1}
