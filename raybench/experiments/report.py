"""Reports over a results tree: one table row per LoadGen test, and PNG plots.

:func:`collect_runs` finds every ``mlperf_log_summary.txt`` (or ``accuracy.txt``) under
a directory and reads the test's ``raybench_settings.json`` beside it; :func:`plot_latency`
draws latency percentiles per run and :func:`plot_qps_p99` draws achieved QPS against p99
for sweep or peak CSVs. Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from raybench.errors import DataError
from raybench.results.accuracy import ACCURACY_TXT
from raybench.results.loadgen_log import SUMMARY, parse_summary
from raybench.run.record import SETTINGS_JSON, RunRecord

log = logging.getLogger(__name__)

PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")


@dataclass
class RunRow:
    """One LoadGen test found under the report's directory."""

    directory: Path
    system: str = ""
    benchmark: str = ""
    scenario: str = ""
    mode: str = ""
    valid: Optional[bool] = None
    metric_name: Optional[str] = None
    metric: Optional[float] = None
    p99_ms: Optional[float] = None
    accuracy: Optional[str] = None  # e.g. "acc 76.4560 PASS"
    percentiles_ms: dict[str, float] = field(default_factory=dict)


def _accuracy_line(path: Path) -> Optional[str]:
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    value = next((ln for ln in lines[1:2]), "")
    verdict = next((ln.rsplit(":", 1)[-1].strip() for ln in lines if ln.startswith("result")), "")
    return f"{value} {verdict}".strip()


def collect_runs(root: Path) -> list[RunRow]:
    """Every LoadGen test under ``root``, sorted by directory."""
    root = Path(root)
    dirs = {p.parent for p in root.rglob(SUMMARY)} | {p.parent for p in root.rglob(ACCURACY_TXT)}
    rows = []
    for d in sorted(dirs):
        if d.name.endswith(".partial"):
            continue
        row = RunRow(directory=d)
        if (d / SETTINGS_JSON).is_file():
            try:
                record = RunRecord.read(d)
            except DataError as exc:
                log.warning("%s", exc)
            else:
                row.system, row.benchmark = record.system, record.request.benchmark.value
                row.scenario = record.test_settings.get("scenario", record.request.scenario)
                row.mode = record.test_settings.get("mode", "")
        if (d / SUMMARY).is_file():
            try:
                s = parse_summary(d / SUMMARY)
            except (UnicodeDecodeError, ValueError) as exc:
                raise DataError(f"{d / SUMMARY}: not a readable LoadGen summary "
                                f"({' '.join(str(exc).split())[:120]})") from None
            row.scenario = row.scenario or s.scenario
            row.mode = s.mode or row.mode
            row.valid, row.metric_name, row.metric = s.valid, s.metric_name, s.metric
            row.percentiles_ms = {p: ns / 1e6 for p, ns in s.percentiles.items()}
            row.p99_ms = row.percentiles_ms.get("99.00")
        row.accuracy = _accuracy_line(d / ACCURACY_TXT)
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


def _label(row: RunRow, root: Path) -> str:
    try:
        rel = row.directory.relative_to(root)
    except ValueError:
        rel = row.directory
    return re.sub(r"/performance/run_1$", "", str(rel)) or row.directory.name


def plot_latency(rows: list[RunRow], path: Path, root: Optional[Path] = None) -> Optional[Path]:
    """Latency percentiles (ms) per run, one line per run; None if no run has latencies."""
    rows = [r for r in rows if r.percentiles_ms]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for row in rows:
        keys = [p for p in PERCENTILES if p in row.percentiles_ms]
        ax.plot([float(p) / 100 for p in keys], [row.percentiles_ms[p] for p in keys], marker="o",
                label=_label(row, root or row.directory.parent)[-60:])
    ax.set_xscale("logit")
    ticks = [float(p) / 100 for p in PERCENTILES]
    ax.set_xticks(ticks, [f"p{float(p):g}" for p in PERCENTILES])
    ax.minorticks_off()
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title("LoadGen latency percentiles")
    ax.grid(True, alpha=0.3)
    if len(rows) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path


def _float(value) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def plot_qps_p99(csv_path: Path, path: Path) -> Optional[Path]:
    """Achieved QPS (metric) against p99 latency from a sweep/peak CSV; VALID in green."""
    with Path(csv_path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    points = [(_float(r.get("metric")), _float(r.get("p99_ms")), r.get("valid") == "True")
              for r in rows]
    points = [(q, p, v) for q, p, v in points if q is not None and p is not None]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for ok, colour, name in ((True, "tab:green", "VALID"), (False, "tab:red", "INVALID")):
        pts = [(q, p) for q, p, v in points if v == ok]
        if pts:
            ax.scatter([q for q, _ in pts], [p for _, p in pts], c=colour, label=name)
    ax.set_xlabel("achieved samples/s")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title(f"{csv_path.parent.name}: QPS vs p99")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path


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
        png = plot_qps_p99(csv_path, out / f"{name}_qps_p99.png")
        if png:
            pngs.append(png)
    return rows, pngs
