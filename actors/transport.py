"""How batches travel between the LoadGen actor and the engine actors.

Every engine has one or more *lanes*, one per inference stream. A lane is an ordered
channel to its engine: batches go out in order, answers come back in order, and one
reader thread per lane waits for the oldest answer and reports it to the dispatcher
(``done`` or ``failed``) the moment it arrives. The reader's own thread then sends
what the freed slot allows and completes the batch; nothing else sits in between.

Two kinds of channel (:data:`TRANSPORTS`):

* ``graph``: one Ray Compiled Graph per lane (``InputNode -> engine.run``), driven from
  the LoadGen actor. A batch's sample indices go through a shared-memory channel to
  the engine actor (the run's placement group keeps them on one node) and its answer
  comes back the same way, without Ray's task submission. The engine actor runs each
  lane's graph on its own thread (``_ray_system`` concurrency group, one thread per
  lane) and still serves ordinary calls (QSL load and unload) meanwhile.
* ``calls``: one Ray actor call per batch, ``ray.get`` per answer.
* ``inline``: a run's only engine lives in the LoadGen actor's own process, and a batch
  runs on the thread that sends it (LoadGen's, for SingleStream), which then completes
  it too: no Ray, no copy, no other thread. What the harness adds to a query is the
  dispatcher's bookkeeping. The engine cannot be restarted on its own: its death ends
  the test.

An engine lost (its actor died; Ray restarts it) fails every batch it held with retry
(the dispatcher sends them to other engines) and is waited for, in the background:
the dispatcher sends it nothing until it answers again (``engine_down``, then
``engine_back``, or ``engine_gone`` if Ray does not bring it back). When one graph lane
of an engine breaks, all of that engine's lanes break (its actor died, and every graph
to it with it): the engine gets its batches by actor calls once it is back, and one
recovery thread per engine tears down all of its old graphs first, then compiles the
new ones one at a time, so no teardown runs beside a compile to the same actor. Ray
(2.60) can still abort the LoadGen actor's whole process in its C++ channel code
(``Experimental mutable object must be in the local object store``) when an engine
dies under a graph; :mod:`raybench.run.lifecycle` then runs the test again on calls.

:class:`Lanes` holds all of this and knows nothing of Ray: channels come from the
``open_channel`` callable, so it is tested with fake channels.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import tempfile
import threading
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import Any, Callable, Optional, Protocol, Sequence

from raybench.errors import error_line
from raybench.scheduling.ledger import Batch

log = logging.getLogger(__name__)

TRANSPORTS = ("graph", "calls", "inline")
AUTO = "auto"  # choose_transport picks one for the host
INDEX_BYTES = 8  # one packed sample index
STOP_JOIN_S = 5.0


class EngineRaised(Exception):
    """The engine itself raised on a batch: another engine would fail the same way."""


class Channel(Protocol):
    """An ordered channel to one engine."""

    def send(self, batch: Batch) -> Any:
        """Start the batch on the engine; returns a ticket for :meth:`receive`."""

    def receive(self, ticket: Any) -> Any:
        """The batch's answer (its payload), waiting for it.

        Raises:
            EngineRaised: The engine raised on the batch.
            Exception: Anything else: the engine was lost (the lane is broken).
        """

    def close(self) -> None:
        """Release the channel."""


class Sink(Protocol):
    """Where answers go (the dispatcher)."""

    def done(self, batch_id: int, result: Any) -> None: ...

    def failed(self, batch_id: int, error: str, retry: bool) -> None: ...

    def engine_down(self, engine: int) -> None: ...

    def engine_back(self, engine: int) -> None: ...

    def engine_gone(self, engine: int, error: str) -> None: ...


def pack(indices: Sequence[int]) -> bytes:
    """Sample indices as the bytes an engine receives (int64, native order)."""
    return array("q", indices).tobytes()


def unpack(packed: bytes) -> list[int]:
    """The sample indices of :func:`pack`'s bytes."""
    return array("q", packed).tolist()


class _Lane:
    """One ordered channel to an engine and its reader thread.

    ``pending`` holds ``(batch_id, ticket, channel)`` in send order (None: stop); a
    queue.SimpleQueue, because its put and get cost far less than a Condition's. A
    synchronous channel's lane (its ``send`` returns the answer) has no reader: the
    sending thread reports the answer itself.
    """

    def __init__(self, engine: int, channel: Optional[Channel], recoverable: bool):
        self.engine = engine
        self.channel = channel
        self.recoverable = recoverable  # a broken lane is opened again, calls meanwhile
        self.broken = channel is None
        self.synchronous = getattr(channel, "synchronous", False)
        self.inflight = 0
        self.pending: SimpleQueue = SimpleQueue()
        self.lock = threading.Lock()  # send order is pending order; inflight

    def send(self, batch: Batch) -> Optional[tuple]:
        """Send a batch; a synchronous lane returns ``(batch_id, ticket, channel)`` to
        report, any other queues it for its reader."""
        with self.lock:
            channel = self.channel
            ticket = channel.send(batch)
            self.inflight += 1
            if self.synchronous:
                return batch.batch_id, ticket, channel
            self.pending.put((batch.batch_id, ticket, channel))
            return None


class Lanes:
    """Batches to engines over lanes; answers reported in order per lane, as they arrive.

    Args:
        engines: Number of engines.
        lanes: Lanes per engine (its inference streams).
        open_channel: Opens a lane's channel to an engine (may take seconds; called on
            several threads at once).
        fallback: Opens the channel a broken lane's engine uses until the lane is open
            again (None: a lane never breaks; a lost engine only fails its batches).
        name: The transport's name, for logs and the outcome.
        wait_alive: Returns once a lost engine answers again, raises if it will not
            (None: a lost engine is not waited for; its failed batches go elsewhere).
    """

    def __init__(self, engines: int, lanes: int, open_channel: Callable[[int], Channel],
                 fallback: Optional[Callable[[int], Channel]] = None, name: str = "lanes",
                 wait_alive: Optional[Callable[[int], None]] = None):
        if engines < 1 or lanes < 1:
            raise ValueError("need at least one engine and one lane")
        self.name = name
        self.engines = engines
        self.lanes_per_engine = lanes
        self.open_channel = open_channel
        self.fallback = fallback
        self.wait_alive = wait_alive
        self.sink: Optional[Sink] = None
        self.fallback_batches = 0  # batches sent by the fallback while a lane was broken
        self.reopened = 0  # broken lanes opened again
        self.open_failures: list[str] = []
        self._lanes: list[list[_Lane]] = []
        self._fallbacks: dict[int, _Lane] = {}
        self._waiting: set[int] = set()  # lost engines being waited for
        self._recovering: set[int] = set()  # engines whose broken lanes are being reopened
        self._gone: set[int] = set()  # lost engines that did not come back
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._reporting = threading.local()  # synchronous answers this thread still reports

    # -- lifecycle ----------------------------------------------------------------
    def start(self, sink: Sink) -> None:
        """Open every lane (in parallel) and start the readers.

        A lane that cannot be opened starts broken when there is a fallback (its engine
        gets calls), else the error is raised.
        """
        self.sink = sink
        n = self.engines * self.lanes_per_engine
        with ThreadPoolExecutor(max_workers=min(n, 16)) as pool:
            futures = [pool.submit(self.open_channel, i // self.lanes_per_engine)
                       for i in range(n)]
        for i, future in enumerate(futures):
            engine = i // self.lanes_per_engine
            try:
                channel = future.result()
            except Exception as exc:
                if self.fallback is None:
                    raise
                channel = None
                self.open_failures.append(f"engine {engine}: {error_line(exc)}")
                log.warning("%s lane to engine %d cannot open, actor calls instead: %s",
                            self.name, engine, error_line(exc))
            if i % self.lanes_per_engine == 0:
                self._lanes.append([])
            lane = _Lane(engine, channel, self.fallback is not None)
            self._lanes[engine].append(lane)
            if not lane.synchronous:
                self._start_reader(lane)

    def stop(self) -> None:
        """Close every channel and stop the readers (answers still pending are dropped)."""
        with self._lock:  # after this, no lane gets a new channel
            self._stopping = True
        lanes = [lane for per_engine in self._lanes for lane in per_engine]
        lanes += list(self._fallbacks.values())
        for lane in lanes:
            lane.pending.put(None)
        channels = [lane.channel for lane in lanes if lane.channel is not None]
        if channels:  # closing also ends a reader still waiting for an answer
            with ThreadPoolExecutor(max_workers=min(len(channels), 16)) as pool:
                list(pool.map(self._close, channels))
        deadline = time.monotonic() + STOP_JOIN_S
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def threads(self) -> list[threading.Thread]:
        """Reader and recovery threads started so far."""
        return list(self._threads)

    # -- the hot path -------------------------------------------------------------
    def submit(self, batch: Batch) -> None:
        """Send a batch on its engine's least-busy open lane (the fallback if none is open)."""
        open_lanes = [lane for lane in self._lanes[batch.engine] if not lane.broken]
        if open_lanes:
            lane = min(open_lanes, key=lambda lane: lane.inflight)
            try:
                answered = lane.send(batch)
            except Exception as exc:
                if not lane.recoverable:
                    raise
                self._break(lane, exc)
            else:
                if answered is not None:
                    self._report_here(lane, answered)
                return
        self._fallback_lane(batch.engine).send(batch)
        self.fallback_batches += 1

    def _read(self, lane: _Lane) -> None:
        while True:
            item = lane.pending.get()
            if item is None:
                return
            self._report(lane, *item)

    def _report_here(self, lane: _Lane, item: tuple) -> None:
        """Report a synchronous lane's answer on this thread. The sink sends the next
        batch from ``done``, and that batch's answer comes back here at once: it waits
        for the answer being reported, so the stack never grows with the batches."""
        queue = getattr(self._reporting, "queue", None)
        if queue is not None:
            queue.append(item)
            return
        self._reporting.queue = queue = [item]
        try:
            while queue:
                self._report(lane, *queue.pop(0))
        finally:
            self._reporting.queue = None

    def _report(self, lane: _Lane, batch_id: int, ticket: Any, channel: Channel) -> None:
        """Wait for one answer of ``lane`` and report it to the sink."""
        error = None
        try:
            result = channel.receive(ticket)
        except EngineRaised as exc:  # the engine itself raised: retrying will not help
            error, retry = str(exc), False
        except Exception as exc:  # engine lost (dead or restarting): send it again
            error, retry = f"{type(exc).__name__}: {error_line(exc)}", True
            if lane.recoverable and channel is lane.channel:
                self._break(lane, exc)
            self._wait_for(lane.engine)
        with lane.lock:
            lane.inflight -= 1
        if self._stopping:
            return
        if error is None:
            self.sink.done(batch_id, result)
        else:
            self.sink.failed(batch_id, error, retry)

    # -- lost engines and broken lanes -------------------------------------------
    def _wait_for(self, engine: int) -> None:
        """A lost engine: the sink sends it nothing until it answers again (one waiter)."""
        if self.wait_alive is None:
            return
        with self._lock:
            if engine in self._waiting or engine in self._gone or self._stopping:
                return
            self._waiting.add(engine)
        self.sink.engine_down(engine)
        self._spawn(self._wait, engine, f"raybench-wait-{engine}")

    def _wait(self, engine: int) -> None:
        try:
            self.wait_alive(engine)
        except Exception as exc:
            gone = f"{type(exc).__name__}: {error_line(exc)}"
        else:
            gone = None
        with self._lock:
            self._waiting.discard(engine)
            if gone is not None:
                self._gone.add(engine)
            if self._stopping:
                return
        if gone is None:
            log.info("engine %d is back", engine)
            self.sink.engine_back(engine)
        else:
            self.sink.engine_gone(engine, gone)

    def _break(self, lane: _Lane, exc: BaseException) -> None:
        """Mark every lane of ``lane``'s engine broken; one thread per engine reopens them."""
        engine = lane.engine
        with self._lock:
            if lane.broken or self._stopping:
                return
            for each in self._lanes[engine]:
                each.broken = True
            recovering = engine in self._recovering
            self._recovering.add(engine)
        log.warning("%s lanes to engine %d broke (%s); actor calls until they are open again",
                    self.name, engine, error_line(exc))
        if not recovering:
            self._spawn(self._recover, engine, f"raybench-reopen-{engine}")

    def _recover(self, engine: int) -> None:
        """Reopen an engine's broken lanes: close all their channels, then open new ones
        one at a time; again while lanes broke meanwhile. The first open that fails
        leaves the engine on actor calls."""
        while True:
            with self._lock:
                broken = [lane for lane in self._lanes[engine] if lane.broken]
                if not broken or self._stopping:
                    self._recovering.discard(engine)
                    return
            for lane in broken:
                with lane.lock:
                    channel, lane.channel = lane.channel, None
                if channel is not None:
                    self._close(channel)
            for lane in broken:
                if not self._reopen(lane):
                    with self._lock:
                        self._recovering.discard(engine)
                    return

    def _reopen(self, lane: _Lane) -> bool:
        """Open a broken lane's channel again; False if it cannot be opened or we stop."""
        if self._stopping:
            return False
        try:
            channel = self.open_channel(lane.engine)
        except Exception as exc:
            log.warning("%s lane to engine %d stays on actor calls: %s", self.name,
                        lane.engine, error_line(exc))
            return False
        with self._lock:
            stopping = self._stopping
            if not stopping:
                with lane.lock:
                    lane.channel = channel
                    lane.broken = False
                self.reopened += 1
        if stopping:
            self._close(channel)
            return False
        log.info("%s lane to engine %d open again", self.name, lane.engine)
        return True

    def _fallback_lane(self, engine: int) -> _Lane:
        with self._lock:
            lane = self._fallbacks.get(engine)
            if lane is None:
                lane = self._fallbacks[engine] = _Lane(engine, self.fallback(engine), False)
                self._start_reader(lane)
        return lane

    def _start_reader(self, lane: _Lane) -> None:
        self._spawn(self._read, lane, f"raybench-lane-{lane.engine}")

    def _spawn(self, target: Callable, arg: Any, name: str) -> None:
        """Start a daemon thread of this transport (stop() joins it)."""
        thread = threading.Thread(target=target, args=(arg,), daemon=True, name=name)
        self._threads.append(thread)
        thread.start()

    def _close(self, channel: Channel) -> None:
        try:
            channel.close()
        except Exception as exc:  # closing a channel to a dead engine may fail
            log.debug("closing a %s channel: %s", self.name, error_line(exc))


# -- Ray channels --------------------------------------------------------------------
class CallChannel:
    """Batches as Ray actor calls to one engine actor."""

    def __init__(self, handle, want_outputs: bool):
        self.handle = handle
        self.want_outputs = want_outputs

    def send(self, batch: Batch):
        return self.handle.run.remote(pack(batch.indices), self.want_outputs)

    def receive(self, ref):
        import ray
        from ray.exceptions import RayTaskError

        try:
            return ray.get(ref)
        except RayTaskError as exc:
            raise EngineRaised(error_line(exc)) from None

    def close(self) -> None:
        return None


class Doorbell:
    """A named pipe an engine writes one byte to per finished batch (see :func:`ring`).

    Ray Compiled Graphs (Ray 2.60) wait for a channel by spinning: a thread in a graph's
    ``get`` burns a core for as long as the engine works on the batch. A lane's reader
    sleeps on the doorbell instead and calls ``get`` once the engine has rung, when the
    answer is microseconds away. The reader keeps a write end open itself, so the pipe
    never reads as closed while an engine restarts.
    """

    POLL_S = 0.1  # how often a sleeping reader checks whether it should stop waiting

    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="raybench-lane-")
        self.path = os.path.join(self._dir, "doorbell")
        os.mkfifo(self.path, 0o600)
        self._read = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        self._rung = 0

    def wait(self, give_up: Callable[[], bool]) -> None:
        """Sleep until the engine rings once more, or until ``give_up()`` says so."""
        while not self._rung:
            ready, _, _ = select.select([self._read], [], [], self.POLL_S)
            if ready:
                try:
                    self._rung += len(os.read(self._read, 4096))
                except BlockingIOError:
                    pass
            elif give_up():
                return
        self._rung -= 1

    def close(self) -> None:
        """Remove the pipe's name and wake a waiting reader; the pipe itself closes when
        the last reference goes, so a reader still in :meth:`wait` never sees its file
        descriptor reused."""
        shutil.rmtree(self._dir, ignore_errors=True)
        try:
            os.write(self._keep, b"\x00")
        except OSError:
            pass

    def __del__(self):
        for fd in (getattr(self, "_read", None), getattr(self, "_keep", None)):
            if fd is not None:
                os.close(fd)


def ring(path: str) -> None:
    """Ring a lane's doorbell (engine side): one batch of that lane is done."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # the LoadGen actor closed the lane: nobody waits any more
        return
    try:
        os.write(fd, b"\x01")
    except OSError:
        pass
    finally:
        os.close(fd)


class GraphChannel:
    """A Ray Compiled Graph to one engine actor, driven from this process.

    Opening waits until the actor answers (after a restart: until Ray has restarted
    it), compiles ``InputNode -> handle.run(packed, want_outputs, doorbell)`` and runs
    one empty batch through it (a fresh graph's first execution takes far longer than
    the next ones). The graph holds ``max_inflight`` executions; ``execute`` is not
    thread-safe, so a lane sends under its own lock, and only its reader gets the
    answers, oldest first, each after the engine rang the lane's :class:`Doorbell`.
    """

    SPIN_AFTER_S = 5.0  # a batch this long without a ring: wait in get (correct, but spins)

    def __init__(self, handle, want_outputs: bool, max_inflight: int):
        from ray.dag import InputNode

        _wait_alive(handle)
        self.doorbell = Doorbell()
        with InputNode() as packed:
            node = handle.run.bind(packed, want_outputs, self.doorbell.path)
        self.graph = node.experimental_compile(_max_inflight_executions=max_inflight)
        self._closed = False
        self.receive(self.graph.execute(b""))

    def send(self, batch: Batch):
        return self.graph.execute(pack(batch.indices))

    def receive(self, ref):
        from ray.exceptions import RayTaskError

        deadline = time.monotonic() + self.SPIN_AFTER_S
        self.doorbell.wait(lambda: self._closed or self.graph.is_teardown
                           or time.monotonic() > deadline)
        try:
            return ref.get(timeout=-1)
        except RayTaskError as exc:
            raise EngineRaised(error_line(exc)) from None

    def close(self) -> None:
        if not self._closed:  # a broken lane's graph is closed by its recovery and at stop
            self._closed = True
            self.graph.teardown()
            self.doorbell.close()


class InlineChannel:
    """The engine itself, in this process: :meth:`send` runs the batch on its caller's
    thread; the ticket is the answer, reported by that thread too (``synchronous``)."""

    synchronous = True

    def __init__(self, engine, want_outputs: bool):
        self.engine = engine  # an EngineActor instance (a plain object here)
        self.want_outputs = want_outputs

    def send(self, batch: Batch):
        try:
            return True, self.engine.run(pack(batch.indices), self.want_outputs)
        except Exception as exc:  # the engine raised: reported like any engine's error
            return False, exc

    def receive(self, ticket):
        ran, answer = ticket
        if not ran:
            raise EngineRaised(error_line(answer))
        return answer

    def close(self) -> None:
        return None


def _wait_alive(handle, timeout_s: float = 60.0) -> None:
    """Wait until an engine actor answers (Ray may be restarting it).

    Raises:
        ray.exceptions.RayActorError: The actor is dead for good, or did not come back.
    """
    import ray
    from ray.exceptions import ActorUnavailableError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ray.get(handle.info.remote())
            return
        except ActorUnavailableError:  # restarting: a call now may fail instead of waiting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def choose_transport(kind: str, lanes: int, cpus: int) -> str:
    """The transport a run uses: ``kind``, unless it is :data:`AUTO`.

    Automatic: ``graph`` when the host has two cores per graph lane, else ``calls``. An
    idle lane's compiled-graph loop spins on a core in its engine actor (Ray 2.60 waits
    by spinning), and spinning threads, always runnable, push everything else's turn
    back: on a host with fewer spare cores than lanes that costs more than actor calls
    (measured in ``bench/harness.py``: a 2-core host, eight engines with two lanes each).

    Args:
        kind: ``graph``, ``calls`` or ``auto``.
        lanes: Graph lanes of the whole run (engines x inference streams).
        cpus: Cores of the host the engines and the LoadGen actor share.
    """
    if kind != AUTO:
        return kind
    return "graph" if 2 * lanes <= cpus else "calls"


def open_transport(kind: str, handles: list, lanes: int, want_outputs: bool,
                   max_inflight: int) -> Lanes:
    """The transport ``kind`` (one of :data:`TRANSPORTS`) to the engine actors ``handles``.

    Args:
        kind: ``graph``, ``calls`` or ``inline``.
        handles: Engine actor handles, by engine index (``inline``: the one engine
            object itself).
        lanes: Lanes per engine (graph; calls use one: Ray runs an actor's calls on
            as many threads as it has inference streams).
        want_outputs: Whether engines return accuracy-log payloads.
        max_inflight: Most batches in flight per engine.
    """
    def calls(engine: int) -> CallChannel:
        return CallChannel(handles[engine], want_outputs)

    def wait_alive(engine: int) -> None:
        _wait_alive(handles[engine])

    if kind == "calls":
        return Lanes(len(handles), 1, calls, name="calls", wait_alive=wait_alive)
    if kind == "inline":
        if len(handles) != 1:
            raise ValueError(f"the inline transport runs one engine, not {len(handles)}")
        return Lanes(1, 1, lambda engine: InlineChannel(handles[0], want_outputs),
                     name="inline")
    if kind != "graph":
        raise ValueError(f"unknown transport {kind!r} (allowed: {', '.join(TRANSPORTS)})")
    return Lanes(len(handles), lanes,
                 lambda engine: GraphChannel(handles[engine], want_outputs, max_inflight),
                 fallback=calls, name="graph", wait_alive=wait_alive)
