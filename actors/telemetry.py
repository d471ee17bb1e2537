"""Live telemetry of a run: Ray metrics (Prometheus, Grafana) and a timeline file.

The dispatcher calls an *observer* on its hot path; :class:`MetricsObserver` only adds
to plain counters and remembers batch start times there, and a background thread
(:class:`Telemetry`) takes the aggregates every ``interval_s`` (100 ms by default), records
them into :mod:`ray.util.metrics` and appends a row to the run's timeline, so the cost
per sample is an integer addition.

Metrics (:data:`METRICS`). Ray exports each with the prefix ``ray_``, and Prometheus adds
``_total`` to counters, so ``raybench_samples_issued`` is scraped as
``ray_raybench_samples_issued_total``:

* ``raybench_samples_issued`` / ``raybench_samples_completed`` (counters, samples)
* ``raybench_batcher_queue_depth`` (gauge, samples waiting to be batched)
* ``raybench_samples_in_flight`` (gauge, per engine)
* ``raybench_batch_size`` (histogram, samples per batch, per engine)
* ``raybench_batch_seconds`` (histogram, dispatch to completion of a batch, per engine)

Labels: ``run`` (system/benchmark/scenario/test), ``node`` (host name); per-engine series
also ``engine`` (index) and ``gpu`` (the GPU ids Ray gave the engine, ``cpu`` for none).
Ray adds its own (``SessionName``, ``NodeAddress``, ...). :data:`GRAFANA_DASHBOARD` is a
Grafana dashboard of these series; :func:`provision_grafana` copies it where the Grafana
of a Ray session (``ray metrics`` set-up) loads its dashboards from.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

BATCH_SIZE_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
BATCH_SECONDS_BOUNDARIES = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
TIMELINE = "raybench_timeline.csv"  # beside LoadGen's logs: one row per interval
TIMELINE_COLUMNS = ("time_s", "issued", "completed", "queued", "in_flight")
GRAFANA_DASHBOARD = Path(__file__).with_name("grafana_dashboard.json")
RUN_TAGS = ("run", "node")
ENGINE_TAGS = ("run", "node", "engine", "gpu")


@dataclass(frozen=True)
class Metric:
    """One Ray metric of a run."""

    name: str  # as given to ray.util.metrics
    kind: str  # counter | gauge | histogram
    description: str
    per_engine: bool = False
    boundaries: tuple[float, ...] = ()

    @property
    def prometheus(self) -> str:
        """The name Prometheus scrapes: Ray's ``ray_`` prefix, ``_total`` on counters."""
        return f"ray_{self.name}" + ("_total" if self.kind == "counter" else "")


ISSUED = Metric("raybench_samples_issued", "counter", "Samples LoadGen issued.")
COMPLETED = Metric("raybench_samples_completed", "counter", "Samples completed to LoadGen.")
QUEUE = Metric("raybench_batcher_queue_depth", "gauge", "Samples waiting in the batcher.")
IN_FLIGHT = Metric("raybench_samples_in_flight", "gauge",
                   "Samples sent to an engine and not back yet.", per_engine=True)
BATCH_SIZE = Metric("raybench_batch_size", "histogram", "Samples per batch.", per_engine=True,
                    boundaries=tuple(BATCH_SIZE_BOUNDARIES))
BATCH_SECONDS = Metric("raybench_batch_seconds", "histogram",
                       "Seconds from dispatch to completion of a batch.", per_engine=True,
                       boundaries=tuple(BATCH_SECONDS_BOUNDARIES))
METRICS = (ISSUED, COMPLETED, QUEUE, IN_FLIGHT, BATCH_SIZE, BATCH_SECONDS)


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


def engine_labels(engine_info: list[dict], count: int, node: str) -> list[dict[str, str]]:
    """Per-engine metric labels from :meth:`EngineActor.info` answers.

    Args:
        engine_info: One ``info()`` answer per engine (may be shorter, or empty).
        count: Engines.
        node: The host name to use where an answer has none.
    """
    labels = []
    for i in range(count):
        info = engine_info[i] if i < len(engine_info) else {}
        gpus = ",".join(str(g) for g in info.get("gpu_ids") or [])
        labels.append({"engine": str(i), "gpu": gpus or "cpu", "node": info.get("host") or node})
    return labels


class Telemetry:
    """A thread that takes an observer's aggregates every ``interval_s``, records them as
    Ray metrics (where Ray's metrics work) and keeps the run's timeline.

    Args:
        observer: The dispatcher's observer.
        run: The ``run`` label.
        engine_info: :meth:`EngineActor.info` per engine, for the ``gpu`` and ``node`` labels.
        interval_s: Seconds between records.
    """

    def __init__(self, observer: MetricsObserver, run: str, engine_info: list[dict],
                 interval_s: float = 0.1):
        self.observer = observer
        self.interval_s = interval_s
        node = os.uname().nodename
        self.tags = {"run": run, "node": node}
        self.engine_tags = [{**self.tags, **labels} for labels in
                            engine_labels(engine_info, len(observer.inflight), node)]
        self.timeline: list[tuple] = []
        self._issued = self._completed = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.ray: Optional[dict[str, Any]] = None
        try:
            self.ray = _ray_metrics()
        except Exception as exc:  # e.g. metrics disabled in this Ray: the timeline only
            log.warning("Ray metrics unavailable: %s", exc)

    def record(self) -> None:
        """Record everything the observer aggregated since the last call."""
        snap = self.observer.take()
        self._issued += snap["issued"]
        self._completed += snap["completed"]
        self.timeline.append((round(time.time(), 3), self._issued, self._completed,
                              snap["queued"], sum(snap["inflight"])))
        if self.ray is None:
            return
        m, tags, per_engine = self.ray, self.tags, self.engine_tags
        if snap["issued"]:
            m[ISSUED.name].inc(snap["issued"], tags)
        if snap["completed"]:
            m[COMPLETED.name].inc(snap["completed"], tags)
        m[QUEUE.name].set(snap["queued"], tags)
        for engine, count in enumerate(snap["inflight"]):
            m[IN_FLIGHT.name].set(count, per_engine[engine])
        for engine, size in snap["sizes"]:
            m[BATCH_SIZE.name].observe(size, per_engine[engine])
        for engine, seconds in snap["times"]:
            m[BATCH_SECONDS.name].observe(seconds, per_engine[engine])

    def start(self) -> None:
        """Record every ``interval_s`` on a daemon thread."""
        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.record()
                except Exception:  # telemetry must never break a run
                    log.exception("recording telemetry failed")
                    return

        self._thread = threading.Thread(target=loop, name="raybench-telemetry", daemon=True)
        self._thread.start()

    def stop(self, log_dir: Optional[str] = None) -> None:
        """Stop the thread, record the last aggregates and write the timeline to ``log_dir``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.record()
            if log_dir:
                write_timeline(Path(log_dir) / TIMELINE, self.timeline)
        except Exception:
            log.exception("recording telemetry failed")


def _ray_metrics() -> dict[str, Any]:
    """The Ray metric objects of :data:`METRICS`, by name."""
    from ray.util import metrics

    made: dict[str, Any] = {}
    for m in METRICS:
        keys = ENGINE_TAGS if m.per_engine else RUN_TAGS
        if m.kind == "counter":
            made[m.name] = metrics.Counter(m.name, m.description, tag_keys=keys)
        elif m.kind == "gauge":
            made[m.name] = metrics.Gauge(m.name, m.description, tag_keys=keys)
        else:
            made[m.name] = metrics.Histogram(m.name, m.description,
                                             boundaries=list(m.boundaries), tag_keys=keys)
    return made


def write_timeline(path: Path, rows: list[tuple]) -> None:
    """Write a timeline: wall-clock seconds, cumulative samples issued and completed,
    samples queued and in flight."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TIMELINE_COLUMNS)
        writer.writerows(rows)


def start_telemetry(engines: int, run: str, engine_info: Optional[list[dict]] = None,
                    interval_s: float = 0.1) -> tuple[MetricsObserver, Telemetry]:
    """An observer for the dispatcher and its running :class:`Telemetry`."""
    observer = MetricsObserver(engines)
    telemetry = Telemetry(observer, run, engine_info or [], interval_s)
    telemetry.start()
    return observer, telemetry


def grafana_dashboards_dir(session_dir: Optional[str] = None) -> Optional[Path]:
    """Where the Grafana of a Ray session loads dashboards from, if that folder exists.

    Ray's dashboard writes ``<session>/metrics/grafana/provisioning/dashboards/default.yml``
    pointing Grafana at ``<session>/metrics/grafana/dashboards`` (or at
    ``$RAY_METRICS_GRAFANA_DASHBOARD_OUTPUT_DIR``); Grafana started with that session's
    ``grafana.ini`` rescans it. ``session_dir`` defaults to the connected Ray's session.
    """
    folder = os.environ.get("RAY_METRICS_GRAFANA_DASHBOARD_OUTPUT_DIR")
    if not folder:
        if session_dir is None:
            try:
                from ray._private.worker import _global_node

                session_dir = _global_node.get_session_dir_path()
            except Exception:  # not connected, or a Ray without it
                return None
        folder = os.path.join(session_dir, "metrics", "grafana", "dashboards")
    return Path(folder) if os.path.isdir(folder) else None


def provision_grafana(session_dir: Optional[str] = None) -> Optional[Path]:
    """Copy :data:`GRAFANA_DASHBOARD` into the Ray session's Grafana dashboards folder.

    Returns:
        The copy, or None when this host has no such folder (no dashboard, or Ray's head
        runs elsewhere).
    """
    folder = grafana_dashboards_dir(session_dir)
    if folder is None:
        return None
    target = folder / "raybench_grafana_dashboard.json"
    try:
        shutil.copyfile(GRAFANA_DASHBOARD, target)
    except OSError as exc:
        log.warning("could not add the raybench Grafana dashboard to %s: %s", folder, exc)
        return None
    return target


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
