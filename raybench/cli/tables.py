"""Tables that read at 80 columns, and ``--json`` output, for every command.

A table is given all its columns; the narrow form leaves out those marked ``wide`` (shown
with ``--wide``) and moves columns whose value is the same in every row into the title.
No cell is cut: a long id or path in a column with a ``fold`` width is broken into lines
after ``/``, ``_`` or ``,``, and rich wraps anything else rather than cut it.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Optional, Sequence

import typer
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text


WideOption = Annotated[bool, typer.Option("--wide", metavar="",
                                          help="Every column (wider than 80).")]
JsonOption = Annotated[bool, typer.Option("--json", metavar="",
                                          help="Print the result as JSON on stdout.")]
# --json of a command that shows progress while it works
VERDICT = {True: "[green]VALID[/green]", False: "[red]INVALID[/red]"}  # a performance run
PASSED = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]"}  # an accuracy or a check
JSON_PROGRESS_HELP = "Print the result as JSON on stdout (progress goes to stderr)."
JsonProgressOption = Annotated[bool, typer.Option("--json", metavar="", help=JSON_PROGRESS_HELP)]


@dataclass(frozen=True)
class Column:
    """One table column.

    Args:
        header: Short header, with the unit (``p99 ms``).
        justify: ``left`` or ``right`` (numbers).
        wide: Shown only with ``--wide``.
        hoist: When every row has the same value, show it in the title instead.
        fold: Break longer values into lines of at most this many characters (at ``/``,
            ``_`` or ``,``).
    """

    header: str
    justify: str = "left"
    wide: bool = False
    hoist: bool = False
    fold: Optional[int] = None


def fold(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters, broken only after ``/``, ``_``
    or ``,`` (a piece longer than ``width`` keeps its own line)."""
    pieces = re.findall(r"[^/_,]*[/_,]|[^/_,]+$", text)
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def make_table(columns: Sequence[Column], rows: Iterable[Sequence[str]], *, wide: bool = False,
               title: Optional[str] = None, width: int = 80) -> Group:
    """A title line and a rich table of ``rows`` (cells as strings, rich markup allowed).

    Args:
        columns: Every column, in order.
        rows: One string per column each.
        wide: Every column, none hoisted.
        title: Shown above the table, with the hoisted values.
        width: Columns to fit in: folded columns share what the others leave.
    """
    rows = [list(r) for r in rows]
    keep, hoisted = [], []
    for i, col in enumerate(columns):
        if col.wide and not wide:
            continue
        values = {r[i] for r in rows}
        if col.hoist and len(values) == 1 and not wide:
            value = next(iter(values))
            if value not in ("", "-", "."):
                hoisted.append(value)
            continue
        keep.append(i)
    columns = [columns[i] for i in keep]
    rows = [[r[i] for i in keep] for r in rows]
    folds, fits = _fold_widths(columns, rows, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col in columns:
        # Columns without a fold width do not wrap (rich narrows the folded ones instead)
        # unless they alone are too wide: then rich wraps them rather than crop them.
        table.add_column(col.header, justify=col.justify, overflow="fold",
                         no_wrap=col.fold is None and fits)
    for r in rows:
        table.add_row(*(fold(cell, folds[j]) if j in folds else cell for j, cell in enumerate(r)))
    title = " · ".join(([title] if title else []) + hoisted)
    return Group(*([Text(title, style="bold")] if title else []), table)


def print_table(console: Console, columns: Sequence[Column], rows: Iterable[Sequence[str]], *,
                wide: bool = False, title: Optional[str] = None) -> None:
    """Print a table that fits ``console`` (or, ``wide``, every column at full width)."""
    group = make_table(columns, rows, wide=wide, title=title,
                       width=10_000 if wide else console.width)
    if not wide:
        console.print(group)
        return
    natural = console.measure(group, options=console.options.update_width(10_000)).maximum
    before = console.width
    console.width = max(before, natural)  # print's own width cannot exceed the console's
    try:
        console.print(group, crop=False)
    finally:
        console.width = before


def _cell_len(cell: str) -> int:
    return max((Text.from_markup(line).cell_len for line in cell.splitlines()), default=0)


def _fold_widths(columns: list[Column], rows: list[list[str]],
                 width: int) -> tuple[dict[int, int], bool]:
    """Fold width per column position, and whether the columns that do not fold fit.

    The columns that fold share the width the others leave (2 characters between columns
    and 1 after the last): each gets its own ``fold`` width first, then the rest goes to
    them in proportion to what they still lack.
    """
    natural = [max([_cell_len(c.header)] + [_cell_len(r[j]) for r in rows])
               for j, c in enumerate(columns)]
    folding = [j for j, c in enumerate(columns) if c.fold is not None]
    fixed = sum(n for j, n in enumerate(natural) if j not in folding)
    free = width - fixed - 2 * (len(columns) - 1) - 1
    folds = {j: min(natural[j], columns[j].fold) for j in folding}
    spare = free - sum(folds.values())
    lacking = {j: natural[j] - folds[j] for j in folding}
    total = sum(lacking.values())
    if spare > 0 and total:
        for j in folding:
            folds[j] += min(lacking[j], spare * lacking[j] // total)
    return folds, spare >= 0


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (paths and other objects as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min 20 s`` or ``1 h 05 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"

