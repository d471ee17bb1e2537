"""How `sweep` and `peak` show Ray Tune trials: Tune kept quiet, one line per finished
trial with an ETA, tables that fit 80 columns, and the local Ray they start."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from raybench.cli.tables import VERDICT

# Short column headers of the argument table's fields, with units.
SHORT = {
    "benchmark": "bench", "scenario": "scenario", "mode": "mode", "engine": "engine",
    "system": "system", "model": "model", "data_dir": "data", "calibration": "calib",
    "official": "official", "duration": "dur s", "queries": "queries",
    "target_qps": "qps", "samples_per_query": "spq", "batch_size": "bs",
    "batch_timeout_us": "timeout us", "engines": "eng", "max_inflight": "inflight",
    "transport": "transport", "threads": "thr", "max_restarts": "restarts",
    "sim": "sim", "track_ids": "track", "rules_round": "round",
}
TEXT_PARAMS = ("benchmark", "scenario", "mode", "engine", "system", "model", "data_dir",
               "calibration", "sim", "rules_round")  # left-aligned in tables
TEXT_MIN = 8  # narrowest a text column gets before it wraps

TuneVerboseOption = Annotated[bool, typer.Option(help="Also show Ray Tune's own status output.")]


def out_console(json_out: bool) -> Console:
    """The console for progress lines and tables: stdout, or stderr when stdout carries
    JSON. Bound to the stream now, so Tune's output can be sent elsewhere."""
    return Console(file=sys.stderr if json_out else sys.stdout)


@contextlib.contextmanager
def quiet_tune(verbose: bool) -> Iterator[None]:
    """Unless ``verbose``: Tune's own prints (its experiment box and status tables) and
    log lines are dropped while trials run; raybench prints a line per trial instead."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train", "ray.air")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def trial_cluster(address: Optional[str], trials: list[dict[str, Any]]) -> Iterator[None]:
    """Join the cluster at ``address``, or start a local Ray that holds the trials."""
    from raybench.experiments.trials import local_resources
    from raybench.run.session import ray_session

    gpus, cpus = (0, 1) if address else local_resources(trials)
    with ray_session(address, gpus, cpus, dashboard=False):
        yield


def duration(seconds: Optional[float]) -> str:
    """``1:05`` for 65 s, ``1:02:03`` past an hour, ``--`` when unknown."""
    if seconds is None:
        return "--"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def verdict(status: str, valid: Optional[bool]) -> str:
    """VALID / INVALID for a completed run, else the trial's status."""
    if status == "ok" and valid is not None:
        return VERDICT[bool(valid)]
    return {"error": "[red]error[/red]", "failed": "[red]failed[/red]"}.get(status, status)


def is_latency(metric_name: Optional[str]) -> bool:
    """Whether a LoadGen metric is a latency in ns (SingleStream, MultiStream)."""
    return bool(metric_name) and metric_name.endswith("(ns)")


def metric_header(names: list[Optional[str]]) -> str:
    """The metric column's header with its unit, from the rows' metric names."""
    kinds = {is_latency(n) for n in names if n}
    if kinds == {False}:
        return "samples/s"
    if kinds == {True}:
        return "latency ms"
    return "metric"


def metric_cell(name: Optional[str], value: Optional[float], header: str) -> str:
    """A metric under ``header`` (unit in the cell only under a mixed ``metric`` column)."""
    if value is None:
        return "-"
    if is_latency(name):
        text = f"{float(value) / 1e6:,.2f}"
        return text + " ms" if header == "metric" else text
    text = f"{float(value):,.0f}"
    return text + "/s" if header == "metric" else text


def number(value: Any, digits: int = 1) -> str:
    """A number with thousands separators, ``-`` when missing."""
    if value in (None, ""):
        return "-"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def short_value(value: Any) -> str:
    """A parameter value in a table cell or label."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value.values())
    return str(value)


# Short names of settings in a trial's label (``bs=32 qps=2000``).
LABEL = {"batch_size": "bs", "target_qps": "qps", "batch_timeout_us": "timeout_us",
         "max_inflight": "inflight", "transport": "transport",
         "samples_per_query": "spq"}


def label(params: dict[str, Any], names: list[str]) -> str:
    """A trial named by its varied settings: ``bs=32 qps=2000``."""
    return " ".join(f"{LABEL.get(k, k)}={short_value(params[k])}" for k in names
                    if k in params) or "base"


def grid_table(columns: list[tuple[str, bool]], rows: list[list[str]], width: int = 80):
    """Tables no wider than ``width`` whose numbers are never broken and whose long text
    wraps rather than being cut: when the columns do not fit side by side, the rest go
    into a further table, each starting with the first (key) column.

    Args:
        columns: ``(header, numeric)`` per column; numeric ones are right-aligned and as
            wide as their widest cell; text ones at least :data:`TEXT_MIN` wide.
        rows: The cells (rich markup allowed).
        width: The console's width.

    Returns:
        A renderable (one table, or several one under the other).
    """
    from rich.console import Group
    from rich.text import Text

    widest = [max((Text.from_markup(row[i]).cell_len for row in rows), default=0)
              for i in range(len(columns))]
    mins = [max(max((len(w) for w in header.split()), default=1),
                widest[i] if numeric else min(widest[i], TEXT_MIN))
            for i, (header, numeric) in enumerate(columns)]
    chunks, current, used = [], [], mins[0]  # each further column: + padding and a divider
    for i in range(1, len(columns)):
        if current and used + mins[i] + 3 > width:
            chunks.append(current)
            current, used = [], mins[0]
        current.append(i)
        used += mins[i] + 3
    chunks.append(current)
    tables = []
    for chunk in chunks:
        keys = [0, *chunk]
        widths = {i: mins[i] for i in keys}
        spare = width - sum(widths.values()) - 3 * len(chunk)
        for i in keys:  # text columns take the spare width, up to their widest cell
            if not columns[i][1] and spare > 0:
                grow = min(spare, max(0, widest[i] - widths[i]))
                widths[i] += grow
                spare -= grow
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
        for i in keys:
            header, numeric = columns[i]
            t.add_column(header, justify="right" if numeric else "left", overflow="fold",
                         width=widths[i])
        for row in rows:
            t.add_row(*(row[i] for i in keys))
        tables.append(t)
    return tables[0] if len(tables) == 1 else Group(*tables)


def relative(path: Optional[str], root) -> str:
    """``path`` relative to ``root`` when it is inside it."""
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def print_json(doc: Any) -> None:
    """A machine-readable result on stdout (the only thing there with ``--json``)."""
    sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")
