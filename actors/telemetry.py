"""Live Ray metrics of a run (Prometheus, the Ray dashboard's Metrics view).

The dispatcher calls an *observer* on its hot path; :class:`MetricsObserver` only adds
to plain counters and remembers batch start times there, and a background thread
records the aggregates into :mod:`ray.util.metrics` every ``interval_s`` (100 ms by
default), so the cost per sample is an integer addition.

Metrics (tags ``run``, ``engine``, ``node``):

* ``raybench_queries_issued`` / ``raybench_queries_completed`` (counters, samples)
* ``raybench_samples_in_flight`` (gauge, per engine)
* ``raybench_batcher_queue_depth`` (gauge, samples waiting to be batched)
* ``raybench_batch_size`` (histogram, samples per batch, per engine)
* ``raybench_batch_seconds`` (histogram, dispatch to completion of a batch, per engine)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

BATCH_SIZE_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
BATCH_SECONDS_BOUNDARIES = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]


class MetricsObserver:
    """Aggregates the dispatcher's events; ``flush`` hands them to a recorder.

    Args:
        engines: Number of engines.
        clock: Time source (seconds).
    """

    def __init__(self, engines: int, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self.issued = 0
        self.completed = 0
        self.queued = 0
        self.inflight = [0] * engines
        self._started: dict[int, float] = {}
        self._sizes: list[tuple[int, int]] = []  # (engine, size) since the last flush
        self._times: list[tuple[int, float]] = []  # (engine, seconds) since the last flush
        self._issued_sent = 0
        self._completed_sent = 0

    # -- dispatcher hooks (hot path: no Ray, no I/O) --------------------------------
    def on_issue(self, count: int) -> None:
        """LoadGen issued ``count`` samples."""
        self.issued += count  # only LoadGen's thread writes it

    def on_batch(self, batch: Any, queued: int) -> None:
        """A batch left for an engine; ``queued`` samples still wait in the batcher."""
        now = self.clock()
        with self._lock:
            self.queued = queued
            self.inflight[batch.engine] += len(batch.ids)
            self._started[batch.batch_id] = now
            self._sizes.append((batch.engine, len(batch.ids)))

    def on_complete(self, batch: Any, ok: bool = True) -> None:
        """A batch came back (``ok``) or failed."""
        now = self.clock()
        with self._lock:
            self.inflight[batch.engine] -= len(batch.ids)
            start = self._started.pop(batch.batch_id, None)
            if ok:
                self.completed += len(batch.ids)
                if start is not None:
                    self._times.append((batch.engine, now - start))

    # -- aggregation ----------------------------------------------------------------
    def take(self) -> dict[str, Any]:
        """What happened since the last call: deltas, current gauges and new samples."""
        with self._lock:
            issued, completed = self.issued, self.completed
            snap = {
                "issued": issued - self._issued_sent, "completed": completed - self._completed_sent,
                "inflight": list(self.inflight), "queued": self.queued,
                "sizes": self._sizes, "times": self._times,
            }
            self._issued_sent, self._completed_sent = issued, completed
            self._sizes, self._times = [], []
        return snap


class RayMetrics:
    """The Ray metric objects of one run, and a thread that records an observer's data."""

    def __init__(self, observer: MetricsObserver, run: str, node: str, interval_s: float = 0.1):
        from ray.util import metrics

        self.observer = observer
        self.interval_s = interval_s
        self.tags = {"run": run, "node": node}
        keys = ("run", "engine", "node")
        self.issued = metrics.Counter("raybench_queries_issued",
                                      "Samples LoadGen issued.", tag_keys=("run", "node"))
        self.completed = metrics.Counter("raybench_queries_completed",
                                         "Samples completed to LoadGen.", tag_keys=("run", "node"))
        self.inflight = metrics.Gauge("raybench_samples_in_flight",
                                      "Samples sent to an engine and not back yet.", tag_keys=keys)
        self.queue = metrics.Gauge("raybench_batcher_queue_depth",
                                   "Samples waiting in the batcher.", tag_keys=("run", "node"))
        self.sizes = metrics.Histogram("raybench_batch_size", "Samples per batch.",
                                       boundaries=BATCH_SIZE_BOUNDARIES, tag_keys=keys)
        self.times = metrics.Histogram("raybench_batch_seconds",
                                       "Seconds from dispatch to completion of a batch.",
                                       boundaries=BATCH_SECONDS_BOUNDARIES, tag_keys=keys)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def record(self) -> None:
        """Record everything the observer aggregated since the last call."""
        snap = self.observer.take()
        tags = self.tags
        if snap["issued"]:
            self.issued.inc(snap["issued"], tags)
        if snap["completed"]:
            self.completed.inc(snap["completed"], tags)
        self.queue.set(snap["queued"], tags)
        for engine, count in enumerate(snap["inflight"]):
            self.inflight.set(count, {**tags, "engine": str(engine)})
        for engine, size in snap["sizes"]:
            self.sizes.observe(size, {**tags, "engine": str(engine)})
        for engine, seconds in snap["times"]:
            self.times.observe(seconds, {**tags, "engine": str(engine)})

    def start(self) -> None:
        """Record every ``interval_s`` on a daemon thread."""
        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.record()
                except Exception:  # metrics must never break a run
                    log.exception("recording Ray metrics failed")
                    return

        self._thread = threading.Thread(target=loop, name="raybench-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and record the last aggregates."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.record()
        except Exception:
            log.exception("recording Ray metrics failed")


def start_ray_metrics(engines: int, run: str, node: str,
                      interval_s: float = 0.1) -> tuple[MetricsObserver, Optional[RayMetrics]]:
    """An observer for the dispatcher and its running Ray recorder (None if unavailable)."""
    observer = MetricsObserver(engines)
    try:
        recorder = RayMetrics(observer, run, node, interval_s)
    except Exception as exc:  # e.g. metrics disabled in this Ray: run without them
        log.warning("Ray metrics unavailable: %s", exc)
        return observer, None
    recorder.start()
    return observer, recorder


def dashboard_url() -> Optional[str]:
    """The running Ray's dashboard URL (``http://host:port``), or None if it has none."""
    try:
        from ray._private.worker import get_dashboard_url

        url = get_dashboard_url()
    except Exception:  # not connected, or an older/newer Ray without it
        return None
    if not url:
        return None
    return url if "://" in url else f"http://{url}"
