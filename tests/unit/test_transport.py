"""The engine transport (lanes, readers, broken lanes, fallback, reopening) with fake
channels: real threads, no Ray.

A fake channel plays one engine lane: a worker thread runs its batches in send order,
as an engine actor's compiled-graph loop does, and ``receive`` waits for a batch's
answer. An engine "dies" by failing every batch it holds and every later one, until a
new channel is opened.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import Future, InvalidStateError
from queue import SimpleQueue
from typing import Optional

import pytest

from raybench.actors.transport import EngineRaised, Lanes, pack, unpack
from raybench.scheduling.batcher import Batcher
from raybench.scheduling.dispatcher import Dispatcher
from raybench.scheduling.ledger import Batch
from raybench.scheduling.router import Router
from tests.waiting import WAIT_S, wait_until



class EngineLost(RuntimeError):
    """What a channel to a dead engine raises."""


class FakeEngine:
    """What the fake channels of one engine share: whether it is alive, what it ran."""

    def __init__(self, index: int, delay_s: float = 0.0):
        self.index = index
        self.delay_s = delay_s
        self.alive = True
        self.raise_on: set[int] = set()  # sample ids the engine raises on
        self.ran: list[list[int]] = []
        self.gate: Optional[threading.Event] = None


def _settle(ticket: Future, result=None, error: Optional[Exception] = None) -> None:
    """Answer a ticket unless it is answered already (close() and the worker may race)."""
    try:
        if error is not None:
            ticket.set_exception(error)
        else:
            ticket.set_result(result)
    except InvalidStateError:
        pass


class FakeChannel:
    """One lane to a fake engine; batches run one after the other on a worker thread."""

    def __init__(self, engine: FakeEngine, kind: str = "graph"):
        self.engine = engine
        self.kind = kind
        self.closed = False
        self.sent: list[int] = []
        self._tickets: list[Future] = []
        self._work: SimpleQueue = SimpleQueue()
        self._dead = not engine.alive
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def send(self, batch: Batch) -> Future:
        if self.closed:
            raise EngineLost("channel closed")
        ticket: Future = Future()
        self.sent.append(batch.batch_id)
        self._tickets.append(ticket)
        self._work.put((unpack(pack(batch.ids)), ticket))
        return ticket

    def receive(self, ticket: Future):
        return ticket.result(WAIT_S)

    def close(self) -> None:
        """Like a graph's teardown: whatever still waits for an answer fails."""
        self.closed = True
        for ticket in self._tickets:
            _settle(ticket, error=EngineLost("channel closed"))
        self._work.put(None)

    def _loop(self) -> None:
        engine = self.engine
        while True:
            item = self._work.get()
            if item is None:
                return
            ids, ticket = item
            if ticket.done():  # failed by close()
                continue
            if engine.gate is not None:
                engine.gate.wait(WAIT_S)
            if self.kind == "graph" and (self._dead or not engine.alive):
                self._dead = True  # a graph to a dead actor stays broken
                _settle(ticket, error=EngineLost(f"engine {engine.index} died"))
                continue
            if not engine.alive:  # an actor call waits for the restarted actor
                assert wait_until(lambda: engine.alive)
            if engine.delay_s:
                time.sleep(engine.delay_s)
            if engine.raise_on.intersection(ids):
                _settle(ticket, error=EngineRaised(f"engine {engine.index} raised"))
                continue
            engine.ran.append(ids)
            _settle(ticket, result=("ran on", engine.index, self.kind, ids))


class Sink:
    """Records what the transport reports (the dispatcher's side)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers: list[tuple[int, object, str]] = []  # (batch id, result, thread name)
        self.failures: list[tuple[int, str, bool]] = []  # (batch id, error, retry)
        self.events: list[tuple] = []  # failures and lost engines, in order

    def done(self, batch_id, result):
        with self.lock:
            self.answers.append((batch_id, result, threading.current_thread().name))

    def failed(self, batch_id, error, retry):
        with self.lock:
            self.failures.append((batch_id, error, retry))
            self.events.append(("failed", batch_id))

    def engine_down(self, engine):
        self.events.append(("down", engine))

    def engine_back(self, engine):
        self.events.append(("back", engine))

    def engine_gone(self, engine, error):
        self.events.append(("gone", engine, error))

    def result(self, batch_id):
        return next(r for b, r, _ in self.answers if b == batch_id)


class Fakes:
    """Fake engines and every channel opened to them."""

    def __init__(self, engines: int, delay_s: float = 0.0):
        self.engines = [FakeEngine(i, delay_s) for i in range(engines)]
        self.opened: list[FakeChannel] = []
        self.fallbacks: list[FakeChannel] = []
        self.open_error: Optional[Exception] = None
        self.lock = threading.Lock()

    def open_graph(self, engine: int) -> FakeChannel:
        """Like a compiled graph: waits until the engine is up, then compiles."""
        if self.open_error is not None:
            raise self.open_error
        if not wait_until(lambda: self.engines[engine].alive):
            raise EngineLost("engine never came back")
        channel = FakeChannel(self.engines[engine], "graph")
        with self.lock:
            self.opened.append(channel)
        return channel

    def open_call(self, engine: int) -> FakeChannel:
        channel = FakeChannel(self.engines[engine], "calls")
        with self.lock:
            self.fallbacks.append(channel)
        return channel


def batch(batch_id: int, engine: int, ids: Optional[list[int]] = None) -> Batch:
    ids = ids if ids is not None else [batch_id]
    return Batch(batch_id, ids, ids, engine)


@pytest.fixture
def started():
    made: list[Lanes] = []

    def start(lanes: Lanes) -> Sink:
        sink = Sink()
        lanes.start(sink)
        made.append(lanes)
        return sink

    yield start
    for lanes in made:
        lanes.stop()
        assert not any(t.is_alive() for t in lanes.threads), "a transport thread outlived stop()"


def test_each_answer_is_reported_once_in_send_order_from_its_lane_reader(started):
    fakes = Fakes(2)
    lanes = Lanes(2, 1, fakes.open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    for i in range(40):
        lanes.submit(batch(i, i % 2, [100 + i, 200 + i]))
    assert wait_until(lambda: len(sink.answers) == 40)
    assert Counter(b for b, _, _ in sink.answers) == Counter(range(40))
    for batch_id, result, thread in sink.answers:
        assert result == ("ran on", batch_id % 2, "graph", [100 + batch_id, 200 + batch_id])
        assert thread.startswith("raybench-lane-")
    for engine in (0, 1):
        order = [b for b, r, _ in sink.answers if r[1] == engine]
        assert order == sorted(order)
    assert sink.failures == [] and lanes.fallback_batches == 0


def test_an_engines_batches_spread_over_its_lanes(started):
    fakes = Fakes(1)
    gate = fakes.engines[0].gate = threading.Event()
    lanes = Lanes(1, 3, fakes.open_graph)
    sink = started(lanes)
    for i in range(6):
        lanes.submit(batch(i, 0))
    assert sorted(len(c.sent) for c in fakes.opened) == [2, 2, 2]  # least-busy lane first
    gate.set()
    assert wait_until(lambda: len(sink.answers) == 6)


def test_an_engine_error_fails_the_batch_without_retry_and_keeps_the_lane(started):
    fakes = Fakes(1)
    fakes.engines[0].raise_on = {7}
    lanes = Lanes(1, 1, fakes.open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    lanes.submit(batch(0, 0, [7]))
    lanes.submit(batch(1, 0, [8]))
    assert wait_until(lambda: len(sink.failures) == 1 and len(sink.answers) == 1)
    assert sink.failures[0][0] == 0 and sink.failures[0][2] is False
    assert "raised" in sink.failures[0][1]
    assert sink.answers[0][0] == 1
    assert lanes.fallback_batches == 0 and len(fakes.opened) == 1


def test_a_dead_engine_breaks_its_lane_calls_carry_on_and_the_graph_reopens(started):
    fakes = Fakes(2)
    engine0 = fakes.engines[0]
    engine0.gate = threading.Event()
    lanes = Lanes(2, 1, fakes.open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    first_graph = fakes.opened[0] if fakes.opened[0].engine is engine0 else fakes.opened[1]
    for i in range(3):
        lanes.submit(batch(i, 0))  # held by engine 0 when it dies
    engine0.alive = False
    engine0.gate.set()
    assert wait_until(lambda: len(sink.failures) == 3)
    assert [(b, retry) for b, _, retry in sink.failures] == [(0, True), (1, True), (2, True)]
    assert all("died" in error for _, error, _ in sink.failures)
    # the lane is broken: engine 0 gets actor calls, which wait for the restarted actor
    lanes.submit(batch(3, 0))
    assert lanes.fallback_batches == 1 and fakes.fallbacks
    engine0.alive = True  # Ray restarted the actor
    assert wait_until(lambda: any(b == 3 for b, _, _ in sink.answers))
    assert sink.result(3)[2] == "calls"
    # meanwhile the lane's graph was closed and compiled again on the restarted actor
    assert wait_until(lambda: lanes.reopened == 1)
    assert first_graph.closed
    lanes.submit(batch(4, 0))
    assert wait_until(lambda: any(b == 4 for b, _, _ in sink.answers))
    assert sink.result(4)[2] == "graph"
    assert lanes.fallback_batches == 1
    # the other engine never noticed
    lanes.submit(batch(5, 1))
    assert wait_until(lambda: any(b == 5 for b, _, _ in sink.answers))
    assert len(sink.failures) == 3


def test_a_dead_engine_breaks_all_its_lanes_tears_them_down_then_compiles_one_at_a_time(started):
    fakes = Fakes(1)
    order: list[tuple] = []
    compiling: list[int] = []
    lock = threading.Lock()

    def open_graph(engine: int) -> FakeChannel:
        with lock:
            compiling.append(engine)
            alongside = len(compiling) - 1
        time.sleep(0.05)  # a compile takes a while
        channel = fakes.open_graph(engine)
        close = channel.close

        def logged_close():
            order.append(("close", channel))
            close()

        channel.close = logged_close
        with lock:
            compiling.remove(engine)
            order.append(("open", channel, alongside))
        return channel

    engine = fakes.engines[0]
    lanes = Lanes(1, 2, open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    first = list(fakes.opened)
    order.clear()
    engine.alive = False
    lanes.submit(batch(0, 0))  # only one lane holds a batch when the engine dies
    assert wait_until(lambda: len(sink.failures) == 1)
    engine.alive = True
    assert wait_until(lambda: lanes.reopened == 2)
    # both old graphs torn down before the first new compile; compiles never side by side
    assert [entry[0] for entry in order] == ["close", "close", "open", "open"]
    assert {entry[1] for entry in order[:2]} == set(first)
    assert [entry[2] for entry in order[2:]] == [0, 0]
    for i in (1, 2):
        lanes.submit(batch(i, 0))
    assert wait_until(lambda: len(sink.answers) == 2)
    assert {r[2] for _, r, _ in sink.answers} == {"graph"}


def test_a_lane_that_cannot_reopen_stays_on_calls(started):
    fakes = Fakes(1)
    lanes = Lanes(1, 1, fakes.open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    fakes.engines[0].alive = False
    fakes.open_error = EngineLost("actor dead for good")
    lanes.submit(batch(0, 0))
    assert wait_until(lambda: len(sink.failures) == 1)
    assert wait_until(lambda: not any(t.name.startswith("raybench-reopen") and t.is_alive()
                                      for t in lanes.threads))
    fakes.engines[0].alive = True
    lanes.submit(batch(1, 0))
    assert wait_until(lambda: len(sink.answers) == 1)
    assert sink.answers[0][1][2] == "calls" and lanes.reopened == 0


def test_a_send_that_fails_on_a_broken_graph_goes_by_call_instead(started):
    fakes = Fakes(1)
    lanes = Lanes(1, 1, fakes.open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    fakes.open_error = EngineLost("no reopening in this test")
    fakes.opened[0].closed = True  # torn down under the lane: execute raises
    lanes.submit(batch(0, 0))  # must not raise to the dispatcher
    assert wait_until(lambda: len(sink.answers) == 1)
    assert sink.answers[0][1][2] == "calls" and lanes.fallback_batches == 1


def test_without_a_fallback_a_lost_engine_only_fails_its_batches(started):
    fakes = Fakes(1)
    engine = fakes.engines[0]
    lanes = Lanes(1, 1, fakes.open_graph)  # like actor calls: no lane to break
    sink = started(lanes)
    engine.alive = False
    lanes.submit(batch(0, 0))
    assert wait_until(lambda: len(sink.failures) == 1)
    assert sink.failures[0][2] is True
    fakes.opened[0]._dead = False
    engine.alive = True
    lanes.submit(batch(1, 0))
    assert wait_until(lambda: len(sink.answers) == 1)
    assert len(fakes.opened) == 1 and lanes.reopened == 0 and lanes.fallback_batches == 0


@pytest.mark.parametrize("comes_back", [True, False])
def test_a_lost_engine_is_down_until_it_answers_again(started, comes_back):
    fakes = Fakes(1)
    engine = fakes.engines[0]
    engine.gate = threading.Event()

    def wait_alive(index):
        if not comes_back:
            raise EngineLost("dead for good")
        assert wait_until(lambda: fakes.engines[index].alive)

    lanes = Lanes(1, 1, fakes.open_graph, fallback=fakes.open_call, wait_alive=wait_alive)
    sink = started(lanes)
    for i in range(3):
        lanes.submit(batch(i, 0))
    engine.alive = False
    engine.gate.set()
    assert wait_until(lambda: len(sink.failures) == 3)
    engine_back = ("back", 0) in sink.events
    engine.alive = True
    assert sink.events[:2] == [("down", 0), ("failed", 0)] or not comes_back
    assert sink.events[0] == ("down", 0)  # down before its batches are sent again
    assert not engine_back  # not while it was dead
    last = ("back", 0) if comes_back else ("gone", 0, "EngineLost: dead for good")
    assert wait_until(lambda: last in sink.events)
    assert [e[0] for e in sink.events].count("down") == 1  # one waiter per loss


def test_a_lane_that_cannot_open_at_start_uses_calls_or_raises_without_a_fallback(started):
    fakes = Fakes(2)
    fakes.open_error = EngineLost("cannot compile")
    lanes = Lanes(2, 2, fakes.open_graph, fallback=fakes.open_call)
    sink = started(lanes)
    assert len(lanes.open_failures) == 4
    lanes.submit(batch(0, 1))
    assert wait_until(lambda: len(sink.answers) == 1)
    assert sink.answers[0][1][2] == "calls"
    with pytest.raises(EngineLost):
        Lanes(2, 1, fakes.open_graph).start(Sink())


def test_stop_closes_every_channel_and_drops_late_answers():
    fakes = Fakes(2)
    gate = fakes.engines[0].gate = threading.Event()
    lanes = Lanes(2, 2, fakes.open_graph, fallback=fakes.open_call)
    sink = Sink()
    lanes.start(sink)
    lanes.submit(batch(0, 0))
    lanes.stop()
    gate.set()
    assert all(c.closed for c in fakes.opened) and len(fakes.opened) == 4
    assert not any(t.is_alive() for t in lanes.threads)
    time.sleep(0.05)
    assert sink.answers == [] and sink.failures == []


def test_dispatcher_over_lanes_completes_every_sample_once_through_an_engine_death():
    """The LoadGen actor's query path with fake engines: one dies and comes back."""
    fakes = Fakes(3, delay_s=0.001)
    lanes = Lanes(3, 2, fakes.open_graph, fallback=fakes.open_call)
    completed: Counter = Counter()
    lock = threading.Lock()

    def complete(ids, data):
        with lock:
            completed.update(ids)

    dispatcher = Dispatcher(Batcher(max_batch=4, timeout_s=0.001), Router(3, max_inflight=2),
                            lanes.submit, complete, track_ids=True)
    lanes.start(dispatcher)
    dispatcher.start()
    ids = list(range(3000))
    try:
        for start in range(0, 3000, 3):
            dispatcher.issue(ids[start:start + 3], ids[start:start + 3])
        assert wait_until(lambda: sum(completed.values()) >= 300)
        fakes.engines[1].alive = False
        assert wait_until(lambda: dispatcher.ledger.retried_count > 0)
        fakes.engines[1].alive = True
        assert wait_until(lambda: sum(completed.values()) >= 3000)
        assert wait_until(lambda: lanes.reopened >= 1)  # its graph lanes open again
    finally:
        dispatcher.stop()
        lanes.stop()
    assert dispatcher.fatal is None
    assert set(completed) == set(ids) and set(completed.values()) == {1}
    assert dispatcher.ledger.check_drained() is None
    assert dispatcher.ledger.retried_count > 0


def test_doorbell_wakes_its_reader_once_per_ring_across_processes():
    import subprocess
    import sys

    from raybench.actors.transport import Doorbell

    bell = Doorbell()
    try:
        ring_twice = ("from raybench.actors.transport import ring; "
                      f"ring({bell.path!r}); ring({bell.path!r})")
        subprocess.run([sys.executable, "-c", ring_twice], check=True, timeout=60)
        for _ in range(2):  # two rings: two waits return without asking to give up
            bell.wait(lambda: pytest.fail("rung, yet the reader kept waiting"))
        gave_up = []
        start = time.monotonic()
        bell.wait(lambda: gave_up.append(True) or time.monotonic() - start > 0.2)
        assert gave_up  # no third ring: the reader waited until told to give up
    finally:
        bell.close()
    assert not os.path.exists(bell.path)
    bell.wait(lambda: pytest.fail("closing did not wake the reader"))


def test_a_ring_to_a_closed_doorbell_is_ignored():
    from raybench.actors.transport import Doorbell, ring

    bell = Doorbell()
    bell.close()
    ring(bell.path)  # the LoadGen actor is gone: the engine carries on


@pytest.mark.parametrize("kind,lanes,cpus,used", [
    ("auto", 1, 2, "graph"),     # one engine lane on two cores: SingleStream here
    ("auto", 16, 2, "calls"),    # eight engines x two streams on two cores
    ("auto", 16, 32, "graph"),   # the same run on a 32-core host
    ("auto", 9, 16, "calls"),
    ("graph", 16, 2, "graph"),   # asked for: always
    ("calls", 1, 64, "calls"),
])
def test_auto_transport_uses_graphs_only_with_two_cores_per_lane(kind, lanes, cpus, used):
    from raybench.actors.transport import choose_transport

    assert choose_transport(kind, lanes, cpus) == used


class InProcessEngine:
    """An engine object with EngineActor's run(packed, want_outputs)."""

    def __init__(self):
        self.threads: list[str] = []

    def run(self, packed: bytes, want_outputs: bool):
        self.threads.append(threading.current_thread().name)
        indices = unpack(packed)
        if 13 in indices:
            raise ValueError("sample 13 is corrupt")
        return (bytes(indices), [1] * len(indices)) if want_outputs else None


def test_inline_runs_and_reports_each_batch_on_the_sending_thread(started):
    from raybench.actors.transport import open_transport

    engine = InProcessEngine()
    lanes = open_transport("inline", [engine], lanes=1, want_outputs=True, max_inflight=2)
    sink = started(lanes)
    lanes.submit(batch(0, 0, [1, 2]))
    lanes.submit(batch(1, 0, [13]))
    here = threading.current_thread().name
    assert engine.threads == [here] * 2
    assert sink.answers == [(0, (bytes([1, 2]), [1, 1]), here)]  # before submit returned
    assert sink.failures[0][0] == 1 and sink.failures[0][2] is False  # no other engine
    assert "sample 13 is corrupt" in sink.failures[0][1]
    assert not any(t.name.startswith("raybench-lane") for t in lanes.threads)


def test_inline_answers_that_send_the_next_batch_do_not_grow_the_stack(started):
    import sys

    from raybench.actors.transport import open_transport

    depths = []

    class Engine:
        def run(self, packed, want_outputs):
            frame, depth = sys._getframe(), 0
            while frame is not None:
                frame, depth = frame.f_back, depth + 1
            depths.append(depth)

    lanes = open_transport("inline", [Engine()], lanes=1, want_outputs=False, max_inflight=1)

    class Chain(Sink):  # like the dispatcher: an answer sends the next batch
        def done(self, batch_id, result):
            super().done(batch_id, result)
            if batch_id < 2999:
                lanes.submit(batch(batch_id + 1, 0))

    sink = Chain()
    lanes.start(sink)
    try:
        lanes.submit(batch(0, 0))
    finally:
        lanes.stop()
    assert [b for b, _, _ in sink.answers] == list(range(3000))
    assert len(set(depths[1:])) == 1 and max(depths) - min(depths) < 10  # not 3,000 deep


def test_inline_takes_exactly_one_engine():
    from raybench.actors.transport import open_transport

    with pytest.raises(ValueError, match="one engine, not 2"):
        open_transport("inline", [InProcessEngine(), InProcessEngine()], lanes=1,
                       want_outputs=False, max_inflight=1)
