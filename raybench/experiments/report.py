"""Reports over a results tree: one row per LoadGen test, and PNG plots.

:func:`collect_runs` finds every ``mlperf_log_summary.txt`` (or ``accuracy.txt``) under a
directory, reads the test's ``raybench_settings.json`` beside it and explains the result
(:func:`raybench.results.verdict.explain`). The plots (matplotlib's Agg backend, no
display needed):

* :func:`plot_latency`: the latency distribution of each run, one panel per scenario,
  log-scaled, a legend entry per run;
* :func:`plot_qps_p99`: for a sweep or peak search (a directory holding ``sweep.csv`` or
  ``peak.csv``), each Server run's scheduled QPS against its p99 latency, with the
  latency bound, every point labelled with its target QPS and confirming runs marked;
* :func:`plot_throughput`: one run's samples/s over time from the timeline raybench writes
  beside LoadGen's logs, with LoadGen's measured interval (``power_begin`` to
  ``power_end`` in ``mlperf_log_detail.txt``) shaded and LoadGen's result drawn.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from raybench.actors.telemetry import TIMELINE
from raybench.errors import DataError
from raybench.results.accuracy import ACCURACY_TXT, verdict_line
from raybench.results.loadgen_log import DETAIL, SUMMARY, read_detail
from raybench.results.verdict import Headline, explain, measured_interval
from raybench.run.record import SETTINGS_JSON, RunRecord

log = logging.getLogger(__name__)

PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
SCENARIO_ORDER = ("SingleStream", "MultiStream", "Server", "Offline")
MAX_THROUGHPUT_PLOTS = 24
TEST_DIRS = re.compile(r"/?(performance/run_\d+|accuracy)$")


@dataclass
class RunRow:
    """One LoadGen test found under the report's directory."""

    directory: Path
    system: str = ""
    benchmark: str = ""
    scenario: str = ""
    mode: str = ""
    valid: Optional[bool] = None
    headline: Optional[Headline] = None
    p99_ms: Optional[float] = None
    target_qps: Optional[float] = None
    bound_ms: Optional[float] = None
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    accuracy: Optional[str] = None  # e.g. "acc: 76.4560 PASS"
    accuracy_passed: Optional[bool] = None
    percentiles_ms: dict[str, float] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)  # the run's settings, and system

    def where(self, root: Path) -> str:
        """The test's directory under ``root``, without the trailing
        ``<system>/<benchmark>/<scenario>/<test>`` that the row's columns say."""
        rel = _relative(self.directory, root)
        tail = "/".join(p for p in (self.system, self.benchmark, self.scenario) if p)
        rel = TEST_DIRS.sub("", rel)
        return rel[:-len(tail)].rstrip("/") if tail and rel.endswith(tail) else rel

    def to_json(self, root: Path) -> dict[str, Any]:
        """The row as plain data (``raybench report --json``)."""
        return {
            "directory": str(self.directory), "relative": _relative(self.directory, root),
            "system": self.system, "benchmark": self.benchmark, "scenario": self.scenario,
            "mode": self.mode, "valid": self.valid,
            "headline": self.headline and dataclasses.asdict(self.headline),
            "p99_ms": self.p99_ms, "target_qps": self.target_qps, "bound_ms": self.bound_ms,
            "problems": self.problems, "advice": self.advice, "notes": self.notes,
            "accuracy": self.accuracy, "accuracy_passed": self.accuracy_passed,
            "percentiles_ms": self.percentiles_ms,
        }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def collect_runs(root: Path) -> list[RunRow]:
    """Every LoadGen test under ``root``, sorted by directory."""
    root = Path(root)
    dirs = {p.parent for p in root.rglob(SUMMARY)} | {p.parent for p in root.rglob(ACCURACY_TXT)}
    rows = []
    for d in sorted(dirs):
        if any(part.endswith(".partial") for part in d.relative_to(root).parts):
            continue
        row = RunRow(directory=d)
        scenario_dir = d.parent if d.name == "accuracy" else d.parent.parent
        if scenario_dir.name in SCENARIO_ORDER:  # .../<system>/<benchmark>/<scenario>/<test>
            row.scenario = scenario_dir.name
            row.benchmark, row.system = scenario_dir.parent.name, scenario_dir.parent.parent.name
        if (d / SETTINGS_JSON).is_file():
            try:
                record = RunRecord.read(d)
            except DataError as exc:
                log.warning("%s", exc)
            else:
                row.system, row.benchmark = record.system, record.request.benchmark.value
                row.scenario = record.test_settings.get("scenario", record.request.scenario)
                row.mode = record.test_settings.get("mode", "")
                row.request = {**record.request.model_dump(mode="json", exclude={"output"}),
                               "system": record.system}
        if (d / SUMMARY).is_file():
            verdict = explain(d)  # DataError (one line) for logs that cannot be read
            row.scenario = verdict.scenario or row.scenario
            row.mode = row.mode or "PerformanceOnly"
            row.valid, row.headline = verdict.valid, verdict.headline
            row.target_qps, row.bound_ms = verdict.target_qps, verdict.bound_ms
            row.problems, row.advice, row.notes = verdict.problems, verdict.advice, verdict.notes
            row.percentiles_ms = {p: ns / 1e6 for p, ns in verdict.percentiles.items()}
            row.p99_ms = row.percentiles_ms.get("99.00")
        row.accuracy = verdict_line(d / ACCURACY_TXT)
        if row.accuracy:
            row.accuracy_passed = row.accuracy.endswith("PASS")
        if row.accuracy and not (d / SUMMARY).is_file():
            row.mode = row.mode or "AccuracyOnly"
        rows.append(row)
    return rows


def find_result_csvs(root: Path) -> list[Path]:
    """Sweep and peak CSVs under ``root``."""
    return sorted(p for p in Path(root).rglob("*.csv") if p.name in ("sweep.csv", "peak.csv"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SHORT_KEYS = {"target_qps": "qps", "batch_size": "bs", "batch_timeout_us": "timeout_us",
              "samples_per_query": "spq", "max_inflight": "inflight"}
LABEL_SKIP = ("mode", "track_ids", "rules_round")  # a panel plots performance tests only


def short_labels(rows: list[RunRow], root: Path) -> list[str]:
    """A label per row: the settings that differ between the rows (``qps=3000, bs=32``),
    or, for rows without settings, the path under ``root`` without the shared parts."""
    if len(rows) > 1 and all(r.request for r in rows):
        keys = [k for k in rows[0].request if k not in LABEL_SKIP
                and len({repr(r.request.get(k)) for r in rows}) > 1]
        if keys:
            return [", ".join(f"{SHORT_KEYS.get(k, k)}={_value(r.request.get(k))}" for k in keys)
                    for r in rows]
    parts = [TEST_DIRS.sub("", _relative(r.directory, root)).split("/") for r in rows]
    if len(parts) > 1:
        common = [p for p in parts[0] if all(p in other for other in parts[1:])]
        parts = [[p for p in ps if p not in common] for ps in parts]
    labels = ["/".join(ps) or r.scenario or r.directory.name for ps, r in zip(parts, rows)]
    return [label if len(label) <= 48 else "…" + label[-47:] for label in labels]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


THOUSANDS = "{x:,.0f}"  # a matplotlib tick format: 12,000


def _plain_log_axis(axis) -> None:
    """Log-scale ticks at 1, 2 and 5 of each decade, as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    _pyplot().close(fig)
    return path


def plot_latency(rows: list[RunRow], path: Path, root: Optional[Path] = None) -> Optional[Path]:
    """Latency distribution (ms, log scale) per run, one panel per scenario; None if no
    run has latencies."""
    rows = [r for r in rows if r.percentiles_ms]
    if not rows:
        return None
    scenarios = [s for s in SCENARIO_ORDER if any(r.scenario == s for r in rows)]
    scenarios += sorted({r.scenario for r in rows} - set(scenarios))
    plt = _pyplot()
    from matplotlib.ticker import NullLocator

    cols = min(2, len(scenarios))
    nrows = (len(scenarios) + cols - 1) // cols
    most = max(sum(r.scenario == s for r in rows) for s in scenarios)
    fig, axes = plt.subplots(nrows, cols, figsize=(7.5 * cols, (4.4 + 0.16 * most) * nrows),
                             squeeze=False)
    ticks = [float(p) / 100 for p in PERCENTILES]
    for ax, scenario in zip(axes.flat, scenarios):
        mine = [r for r in rows if r.scenario == scenario]
        for row, label in zip(mine, short_labels(mine, root or Path("/"))):
            keys = [p for p in PERCENTILES if p in row.percentiles_ms]
            ax.plot([float(p) / 100 for p in keys], [row.percentiles_ms[p] for p in keys],
                    marker="o", markersize=3, linewidth=1, label=label)
        bounds = {r.bound_ms for r in mine if r.bound_ms}
        for bound in sorted(bounds):
            ax.axhline(bound, color="tab:red", linestyle="--", linewidth=1)
            ax.annotate(f"{bound:g} ms bound", (ticks[0], bound), textcoords="offset points",
                        xytext=(2, 3), color="tab:red", fontsize=7)
        ax.set_xscale("logit")
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
        ax.set_xticks(ticks, [f"p{float(p):g}" for p in PERCENTILES])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(f"{scenario}: {len(mine)} run{'s' if len(mine) != 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    for ax in list(axes.flat)[len(scenarios):]:
        ax.set_visible(False)
    fig.suptitle("LoadGen latency distribution per scenario")
    fig.tight_layout()
    return _save(fig, path)


@dataclass
class QpsPoint:
    """One Server run of a sweep or peak search on the QPS-vs-p99 plot."""

    scheduled: float  # samples/s
    p99_ms: float
    valid: bool
    confirm: bool  # a peak search's confirming run
    target_qps: Optional[float]


def qps_points(rows: list[RunRow]) -> list[QpsPoint]:
    """The Server performance runs of ``rows`` as plot points."""
    return [QpsPoint(r.headline.value, r.p99_ms, bool(r.valid), "confirm" in r.directory.parts,
                     r.target_qps)
            for r in rows if r.scenario == "Server" and r.mode == "PerformanceOnly"
            and r.p99_ms is not None and r.headline is not None]


def plot_qps_p99(rows: list[RunRow], path: Path, title: str = "") -> Optional[Path]:
    """Scheduled QPS against p99 latency of the Server runs in ``rows``: VALID green,
    INVALID red, confirming runs (under a ``confirm`` directory) as stars, each point
    labelled with its target QPS, the latency bound dashed; None without Server runs."""
    points = qps_points(rows)
    if not points:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 5))
    for p in points:
        ax.scatter([p.scheduled], [p.p99_ms], c="tab:green" if p.valid else "tab:red",
                   s=140 if p.confirm else 30,
                   marker="*" if p.confirm else ("o" if p.valid else "x"),
                   edgecolors="black" if p.confirm else None, linewidths=0.6, zorder=3)
        text = f"{p.target_qps:,.0f}" if p.target_qps else ""
        ax.annotate(text + (" confirm" if p.confirm else ""), (p.scheduled, p.p99_ms),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    for bound in sorted({r.bound_ms for r in rows if r.scenario == "Server" and r.bound_ms}):
        ax.axhline(bound, color="tab:red", linestyle="--", linewidth=1)
        ax.annotate(f"p99 bound {bound:g} ms", (0, bound), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(4, 3), color="tab:red", fontsize=8)
    ax.legend(handles=[
        Line2D([], [], marker="o", color="tab:green", linestyle="", label="VALID"),
        Line2D([], [], marker="x", color="tab:red", linestyle="", label="INVALID"),
        Line2D([], [], marker="*", color="grey", markeredgecolor="black", markersize=11,
               linestyle="", label="confirming run"),
    ], fontsize=8, loc="upper left")
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.set_xlabel("scheduled samples/s (labels: target QPS)")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title(f"{title}: QPS vs p99" if title else "QPS vs p99")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def read_timeline(path: Path) -> dict[str, list[float]]:
    """A run's timeline (see :mod:`raybench.actors.telemetry`) by column.

    Raises:
        DataError: Missing or malformed file.
    """
    try:
        with Path(path).open(newline="") as f:
            rows = list(csv.DictReader(f))
        return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a raybench timeline ({exc})") from None


def plot_throughput(row: RunRow, path: Path, label: str = "") -> Optional[Path]:
    """Samples/s over time of one run, with LoadGen's measured interval and result;
    None when the run has no timeline."""
    import numpy as np

    if not (row.directory / TIMELINE).is_file():
        return None
    t = read_timeline(row.directory / TIMELINE)
    if len(t.get("time_s", [])) < 3:
        return None
    time_s = np.array(t["time_s"])
    try:
        interval = measured_interval(read_detail(row.directory / DETAIL).values())
    except DataError:
        interval = None
    x = time_s - (interval[0] if interval else time_s[0])
    window = max(1, int(round(0.5 / max(np.median(np.diff(time_s)), 1e-3))))  # ~0.5 s

    def rate(column: str):
        counts = np.array(t[column])
        dt = time_s[window:] - time_s[:-window]
        return x[window:], (counts[window:] - counts[:-window]) / np.where(dt > 0, dt, np.nan)

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 4.8))
    done_x, done = rate("completed")
    ax.plot(done_x, done, color="tab:blue", linewidth=1.2, label="completed samples/s")
    top = [np.nanmax(done) if np.isfinite(done).any() else 0.0]
    if row.scenario != "Offline":  # Offline issues every sample in one query at once
        ax.plot(*rate("issued"), color="tab:orange", linewidth=0.8, alpha=0.8,
                label="issued samples/s")
    if interval:
        ax.axvspan(0, interval[1] - interval[0], color="tab:green", alpha=0.08,
                   label="LoadGen's measured interval")
    if row.headline is not None and row.headline.unit == "samples/s":
        ax.axhline(row.headline.value, color="black", linestyle="--", linewidth=1,
                   label=f"LoadGen: {row.headline}")
        top.append(row.headline.value)
    ax.set_ylim(0, 1.3 * max(top) or 1)
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_xlabel("seconds since LoadGen's start" if interval else "seconds")
    ax.set_ylabel("samples/s")
    queue = ax.twinx()
    queue.plot(x, t["queued"], color="grey", linewidth=0.8, alpha=0.6, label="queued samples")
    queue.set_ylabel("samples queued in the batcher", color="grey")
    queue.set_ylim(0, max(1.0, 1.05 * max(t["queued"])))
    queue.yaxis.set_major_locator(MaxNLocator(integer=True))
    queue.yaxis.set_major_formatter(THOUSANDS)
    handles, names = ax.get_legend_handles_labels()
    more, more_names = queue.get_legend_handles_labels()
    fig.legend(handles + more, names + more_names, fontsize=8, loc="lower center", ncol=3,
               frameon=False)
    verdict = {True: "VALID", False: "INVALID"}.get(row.valid, "")
    ax.set_title(f"throughput over time, {verdict}\n{label or row.directory}", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return _save(fig, path)


def _slug(label: str) -> str:
    return re.sub(r"[^\w.=-]+", "_", label).strip("_") or "run"


def write_report(root: Path, out: Optional[Path] = None) -> tuple[list[RunRow], list[Path]]:
    """Collect the runs under ``root`` and write the plots into ``out`` (default ``root``).

    Returns:
        The runs and the PNG files written.
    """
    root = Path(root)
    out = Path(out or root)
    rows = collect_runs(root)
    pngs = []
    latency = plot_latency(rows, out / "latency_percentiles.png", root)
    if latency:
        pngs.append(latency)
    for csv_path in find_result_csvs(root):
        name = "_".join(csv_path.relative_to(root).with_suffix("").parts) or csv_path.stem
        mine = [r for r in rows if csv_path.parent in r.directory.parents]
        png = plot_qps_p99(mine, out / f"{name}_qps_p99.png", _relative(csv_path.parent, root))
        if png:
            pngs.append(png)
    timed = [r for r in rows if r.mode == "PerformanceOnly" and (r.directory / TIMELINE).is_file()]
    if len(timed) > MAX_THROUGHPUT_PLOTS:
        log.info("throughput plots of the first %d of %d runs", MAX_THROUGHPUT_PLOTS, len(timed))
    for row in timed[:MAX_THROUGHPUT_PLOTS]:
        label = TEST_DIRS.sub("", _relative(row.directory, root))
        png = plot_throughput(row, out / f"throughput_{_slug(label)}.png", label)
        if png:
            pngs.append(png)
    return rows, pngs
