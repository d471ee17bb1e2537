"""One LoadGen test inside the LoadGen actor: SUT, QSL, dispatcher and Ray engines."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from raybench.errors import error_line
from raybench.scheduling.batcher import Batcher
from raybench.scheduling.dispatcher import Dispatcher
from raybench.scheduling.ledger import Batch
from raybench.scheduling.router import Router

log = logging.getLogger(__name__)

NO_AUDIT_CONFIG = "raybench-no-audit.config"  # LoadGen applies ./audit.config if it exists


@dataclass
class TestPlan:
    """One LoadGen test: TestSettings values, batching and where LoadGen writes its logs."""

    values: dict[str, Any]  # EffectiveSettings.values
    log_dir: str
    total_count: int
    performance_count: int
    batch_size: int
    batch_timeout_us: int
    max_inflight: int
    want_outputs: bool
    batches_per_call: int = 1
    max_attempts: int = 5
    track_ids: bool = False
    trace: bool = False  # LoadGen's per-sample mlperf_log_trace.json (hundreds of MB)


@dataclass
class TestOutcome:
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


class RayEngines:
    """Sends batches to engine actors and reports their answers to the dispatcher.

    A waiter thread collects answers with ``ray.wait`` (which waits without the GIL)
    rather than a Python callback per batch on Ray's own thread: at a few hundred
    batches a second on two cores, that cut the Server p99 latency by 2 to 4 ms.
    """

    POLL_S = 0.001  # refs submitted during a wait join the next one (a round trip is longer)

    def __init__(self, handles: list, want_outputs: bool):
        self.handles = handles
        self.want_outputs = want_outputs
        self.dispatcher: Optional[Dispatcher] = None
        self._pending: dict = {}  # ObjectRef -> batch id
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._wait_loop, name="raybench-wait", daemon=True)

    def start(self) -> None:
        """Start the waiter thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the waiter thread (answers still pending are dropped)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    def submit(self, batch: Batch) -> None:
        """Start ``run`` on the batch's engine."""
        ref = self.handles[batch.engine].run.remote(batch.indices, self.want_outputs)
        with self._lock:
            self._pending[ref] = batch.batch_id
        self._wake.set()

    def _wait_loop(self) -> None:
        import ray

        while not self._stopping:
            with self._lock:
                refs = list(self._pending)
            if not refs:
                self._wake.wait()
                self._wake.clear()
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=self.POLL_S)
            if ready and len(refs) > 1:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            with self._lock:
                batch_ids = [self._pending.pop(ref) for ref in ready]
            for ref, batch_id in zip(ready, batch_ids):
                self._report(batch_id, ref)

    def _report(self, batch_id: int, ref) -> None:
        import ray
        from ray.exceptions import RayTaskError

        try:
            result = ray.get(ref)
        except RayTaskError as exc:  # the engine itself raised: retrying will not help
            self.dispatcher.failed(batch_id, error_line(exc), retry=False)
        except Exception as exc:  # actor died or is restarting: send the batch again
            self.dispatcher.failed(batch_id, f"{type(exc).__name__}: {error_line(exc)}", retry=True)
        else:
            self.dispatcher.done(batch_id, result)


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


def _metrics(plan: TestPlan, handles: list):
    """The dispatcher's Ray-metrics observer and its recorder (tags: run, engine, node)."""
    import ray

    from raybench.cluster.metrics import start_ray_metrics

    parts = [p for p in os.path.normpath(plan.log_dir).split(os.sep) if p]
    run = "/".join(parts[-5:]).replace(".partial", "")  # .../system/benchmark/scenario/test
    try:  # the engines of a run share one node (STRICT_PACK)
        node = ray.get(handles[0].info.remote(), timeout=30)["node_id"]
    except Exception:
        node = ray.get_runtime_context().get_node_id()
    return start_ray_metrics(len(handles), run, node)


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


class LiveTest:
    """What :func:`run_test` exposes while it runs, for :meth:`LiveTest.progress`."""

    def __init__(self):
        self.dispatcher: Optional[Dispatcher] = None
        self.plan: Optional[TestPlan] = None
        self.start = 0.0

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
        )


def run_test(plan: TestPlan, handles: list, live: Optional[LiveTest] = None) -> TestOutcome:
    """Run one LoadGen test against engine actors and return the harness's view of it.

    Args:
        plan: The test.
        handles: Engine actor handles.
        live: Filled in once the test starts, so another thread can watch it.
    """
    import mlperf_loadgen as lg
    import ray

    from raybench.rules.settings import to_test_settings

    server = plan.values["scenario"] == "Server"
    batcher = Batcher(plan.batch_size, plan.batch_timeout_us / 1e6 if server else 0.0)
    router = Router(len(handles), plan.max_inflight)
    engines = RayEngines(handles, plan.want_outputs)
    observer, recorder = _metrics(plan, handles)
    dispatcher = Dispatcher(batcher, router, engines.submit, _complete,
                            max_attempts=plan.max_attempts, track_ids=plan.track_ids,
                            observer=observer,
                            batches_per_call=plan.batches_per_call if server else 1)
    engines.dispatcher = dispatcher

    def broadcast(method: str, indices: list) -> None:
        ray.get([getattr(h, method).remote(indices) for h in handles])

    qsl = lg.ConstructQSL(plan.total_count, plan.performance_count,
                          lambda idx: broadcast("load_samples", list(idx)),
                          lambda idx: broadcast("unload_samples", list(idx)))
    sut = lg.ConstructFastSUT(dispatcher.issue, dispatcher.flush)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = plan.log_dir
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = plan.trace
    os.makedirs(plan.log_dir, exist_ok=True)
    engines.start()
    dispatcher.start()
    start = time.perf_counter()
    if live is not None:
        live.plan, live.dispatcher, live.start = plan, dispatcher, start
    try:
        lg.StartTestWithLogSettings(sut, qsl, to_test_settings(plan.values), log_settings,
                                    os.path.join(plan.log_dir, NO_AUDIT_CONFIG))
    finally:
        wall = time.perf_counter() - start
        dispatcher.stop()
        engines.stop()
        if recorder is not None:
            recorder.stop()
        lg.DestroyFastSUT(sut)
        lg.DestroyQSL(qsl)
    ledger = dispatcher.ledger
    return TestOutcome(
        wall_s=wall, received=ledger.received_count, completed=ledger.completed_count,
        retried=ledger.retried_count, batches=dispatcher.batches_sent,
        samples_per_engine=list(dispatcher.samples_per_engine),
        drained_error=None if dispatcher.fatal else ledger.check_drained(),
        fatal=dispatcher.fatal, engine_failures=list(router.failures),
    )
