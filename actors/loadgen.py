"""The LoadGen actor: LoadGen's SUT and QSL for one test, the query path, its progress.

LoadGen keeps per-process configuration state, so every test runs in a fresh
:class:`LoadGenActor` (a plain class made a Ray actor by the run's placement, with two
concurrent calls: :meth:`LoadGenActor.run` blocks for the whole test while
:meth:`LoadGenActor.progress` answers). The query path inside it::

    LoadGen issue(ids, indices) -> Dispatcher (batcher, router, ledger) -> transport
    (a compiled graph per engine lane, or actor calls) -> engine actors
    -> the lane's reader: Dispatcher.done -> QuerySamplesComplete(ids), exactly once

With the ``inline`` transport the run has no engine actor: the LoadGen actor builds the
one engine itself (:attr:`LoadGenPlan.inline_engine`) and runs its batches in-process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from raybench.actors.engine import EngineActor, EngineSpec
from raybench.actors.transport import choose_transport, open_transport
from raybench.errors import RunError, error_line
from raybench.scheduling.batcher import Batcher
from raybench.scheduling.dispatcher import Dispatcher
from raybench.scheduling.router import Router

log = logging.getLogger(__name__)

NO_AUDIT_CONFIG = "raybench-no-audit.config"  # LoadGen applies ./audit.config if it exists
RESTART_WAIT_S = 60.0  # longest a QSL load waits for an engine while none can be reached


@dataclass
class LoadGenPlan:
    """One LoadGen test: TestSettings values, batching and where LoadGen writes its logs."""

    values: dict[str, Any]  # EffectiveSettings.values
    log_dir: str
    total_count: int
    performance_count: int
    batch_size: int
    batch_timeout_us: int
    max_inflight: int
    want_outputs: bool
    transport: str = "auto"  # graph, calls, or auto (see transport.choose_transport)
    lanes: int = 1  # lanes per engine: its inference streams
    max_attempts: int = 5
    track_ids: bool = False
    trace: bool = False  # LoadGen's per-sample mlperf_log_trace.json (hundreds of MB)
    run_label: str = ""  # the run's tag on Ray metrics
    engine_info: list = field(default_factory=list)  # EngineActor.info() each: metric labels
    audit_config: Optional[str] = None  # a compliance test's audit.config (None: no audit)
    inline_engine: Optional[EngineSpec] = None  # the inline transport's engine, built here


@dataclass
class LoadGenOutcome:
    """What the harness saw during one test (LoadGen's own results are in its logs)."""

    wall_s: float
    received: int
    completed: int
    retried: int
    batches: int
    samples_per_engine: list[int]
    drained_error: Optional[str] = None
    fatal: Optional[str] = None
    engine_failures: list[int] = field(default_factory=list)
    transport: str = ""
    cpu_s: float = 0.0  # CPU time of the LoadGen actor's process during the test
    fallback_batches: int = 0  # graph lanes broken: batches sent by actor calls meanwhile
    lanes_reopened: int = 0
    rerun: str = ""  # why the test ran a second time, from the start (see lifecycle)
    engine_info: list = field(default_factory=list)  # the inline engine's EngineActor.info()


@dataclass
class Progress:
    """A running test, as the progress display shows it."""

    mode: str
    elapsed_s: float
    min_duration_s: float
    received: int
    completed: int
    inflight_batches: int
    queued: int
    qsl_calls: int = 0  # QSL loads and unloads so far
    in_qsl: bool = False  # one is under way


class _EmptyResponses(threading.local):
    """Reused data-less QuerySampleResponse objects, one set per completing thread.

    Setting ``id`` on a pybind11 object costs less than creating and freeing one, and
    QuerySamplesComplete copies the responses before it returns.
    """

    def __init__(self):
        self.items: list = []

    def for_ids(self, ids: list) -> list:
        import mlperf_loadgen as lg

        items = self.items
        if len(items) < len(ids):
            items.extend(lg.QuerySampleResponse(0, 0, 0) for _ in range(len(ids) - len(items)))
        for response, sample_id in zip(items, ids):
            response.id = sample_id
        return items if len(items) == len(ids) else items[:len(ids)]


_EMPTY = _EmptyResponses()


def _complete(ids: list, data) -> None:
    """QuerySamplesComplete for one batch; ``data`` is None or ``(blob, sizes)``."""
    import mlperf_loadgen as lg

    if data is None:
        lg.QuerySamplesComplete(_EMPTY.for_ids(ids))
        return
    blob, sizes = data
    buffer = np.frombuffer(blob, np.uint8)  # alive until QuerySamplesComplete returns
    base = buffer.ctypes.data if len(buffer) else 0
    offsets = np.concatenate(([0], np.cumsum(sizes[:-1]))).astype(np.int64) if sizes else []
    lg.QuerySamplesComplete([
        lg.QuerySampleResponse(i, base + int(o), int(s)) for i, o, s in zip(ids, offsets, sizes)
    ])
    del buffer


class LoadGenActor:
    """Runs one LoadGen test against the engine actors.

    Args:
        engines: Engine actor handles, by engine index.
    """

    def __init__(self, engines: list):
        self.engines = engines
        self.local: Optional[EngineActor] = None  # the inline transport's engine
        self.dispatcher: Optional[Dispatcher] = None
        self.plan: Optional[LoadGenPlan] = None
        self.start = 0.0
        self.qsl_calls = 0  # QSL loads and unloads so far
        self.in_qsl = False  # one is under way

    def progress(self) -> Optional[Progress]:
        """A snapshot of the running test, or None before it starts.

        Plain counter reads without the dispatcher's lock: a snapshot may be a
        moment stale, never wrong for long.
        """
        d, plan = self.dispatcher, self.plan
        if d is None or plan is None:
            return None
        return Progress(
            mode=plan.values["mode"], elapsed_s=time.perf_counter() - self.start,
            min_duration_s=plan.values["min_duration_ms"] / 1000,
            received=d.ledger.received_count, completed=d.ledger.completed_count,
            inflight_batches=d.router.total_inflight(), queued=len(d.batcher),
            qsl_calls=self.qsl_calls, in_qsl=self.in_qsl,
        )

    def _qsl(self, method: str, indices) -> None:
        """LoadGen's QSL load or unload callback; never raises.

        An exception escaping into LoadGen ends the LoadGen actor's process with no word
        of why: a load that fails (a bad sample file) ends the test instead, with the
        reason in :attr:`Dispatcher.fatal`. Once the test is ending, loads do nothing.
        """
        dispatcher = self.dispatcher
        if dispatcher is None or dispatcher.fatal is not None:
            return
        self.qsl_calls += 1
        self.in_qsl = True
        try:
            self._broadcast(method, list(indices))
        except Exception as exc:
            what = "load" if method == "load_samples" else "unload"
            dispatcher.abort(f"cannot {what} samples: {error_line(exc)}")
        finally:
            self.in_qsl = False

    def _broadcast(self, method: str, indices: list) -> None:
        """A QSL load or unload, on every engine not retired.

        An engine that cannot be reached (dead, restarting, its connection lost) is left
        out: a restarted engine has lost its samples anyway and reads those a batch needs
        when it gets the batch (``Dataset.samples``). A load must reach one engine at
        least; while none can be reached, those Ray is restarting get it again until
        they are back. Loads and unloads can be repeated safely.

        Raises:
            RunError: An engine raised (a bad sample file, say), or no engine could
                load the samples.
        """
        if self.local is not None:
            try:
                getattr(self.local, method)(indices)
            except Exception as exc:
                raise RunError(error_line(exc)) from None
            return
        import ray
        from ray.exceptions import RayTaskError

        retired = self.dispatcher.router.retired
        engines = [e for e in range(len(self.engines)) if e not in retired]
        deadline = time.monotonic() + RESTART_WAIT_S
        reached, missed = 0, {}
        while True:
            refs = [(e, getattr(self.engines[e], method).remote(indices)) for e in engines]
            engines = []
            for engine, ref in refs:
                try:
                    ray.get(ref)
                    reached += 1
                    missed.pop(engine, None)
                except RayTaskError as exc:  # the engine raised: another would fail alike
                    raise RunError(error_line(exc)) from None
                except Exception as exc:  # not reached: it reloads on demand when back
                    missed[engine] = f"{type(exc).__name__}: {error_line(exc)}"
                    engines.append(engine)
            if reached or method != "load_samples" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for engine, error in missed.items():
            log.warning("engine %d missed a QSL %s of %d samples (it loads what a batch "
                        "needs): %s", engine, method, len(indices), error)
        if not reached and method == "load_samples":
            raise RunError("no engine could be reached: " + "; ".join(
                f"engine {e}: {error}" for e, error in missed.items()))

    def run(self, plan: LoadGenPlan) -> LoadGenOutcome:
        """Run one LoadGen test; blocks until LoadGen is done."""
        import mlperf_loadgen as lg

        from raybench.actors.telemetry import start_telemetry
        from raybench.rules.settings import to_test_settings

        scenario = plan.values["scenario"]
        batcher = Batcher(plan.batch_size,
                          plan.batch_timeout_us / 1e6 if scenario == "Server" else 0.0)
        engine_info = plan.engine_info
        if plan.inline_engine is not None:
            self.local = EngineActor(plan.inline_engine)
            engines, kind, engine_info = [self.local], "inline", [self.local.info()]
        else:
            engines = self.engines
            kind = choose_transport(plan.transport, len(engines) * plan.lanes,
                                    os.cpu_count() or 1)
        router = Router(len(engines), plan.max_inflight)
        transport = open_transport(kind, engines, plan.lanes, plan.want_outputs,
                                   plan.max_inflight)
        observer, telemetry = start_telemetry(len(engines), plan.run_label, engine_info)
        dispatcher = Dispatcher(batcher, router, transport.submit, _complete,
                                max_attempts=plan.max_attempts, track_ids=plan.track_ids,
                                observer=observer, balance=scenario == "Offline")

        qsl = lg.ConstructQSL(plan.total_count, plan.performance_count,
                              lambda idx: self._qsl("load_samples", idx),
                              lambda idx: self._qsl("unload_samples", idx))
        sut = lg.ConstructFastSUT(dispatcher.issue, dispatcher.flush)
        log_settings = lg.LogSettings()
        log_settings.log_output.outdir = plan.log_dir
        log_settings.log_output.copy_summary_to_stdout = False
        log_settings.enable_trace = plan.trace
        os.makedirs(plan.log_dir, exist_ok=True)
        try:
            transport.start(dispatcher)
            dispatcher.start()
            start, cpu = time.perf_counter(), time.process_time()
            self.plan, self.dispatcher, self.start = plan, dispatcher, start
            lg.StartTestWithLogSettings(sut, qsl, to_test_settings(plan.values), log_settings,
                                        plan.audit_config or os.path.join(plan.log_dir, NO_AUDIT_CONFIG))
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            dispatcher.stop()
            transport.stop()
            telemetry.stop(plan.log_dir)
            lg.DestroyFastSUT(sut)
            lg.DestroyQSL(qsl)
        ledger = dispatcher.ledger
        return LoadGenOutcome(
            wall_s=wall, received=ledger.received_count, completed=ledger.completed_count,
            retried=ledger.retried_count, batches=dispatcher.batches_sent,
            samples_per_engine=list(dispatcher.samples_per_engine),
            drained_error=None if dispatcher.fatal else ledger.check_drained(),
            fatal=dispatcher.fatal, engine_failures=list(router.failures),
            transport=transport.name, cpu_s=cpu, fallback_batches=transport.fallback_batches,
            lanes_reopened=transport.reopened,
            engine_info=engine_info if self.local is not None else [],
        )
