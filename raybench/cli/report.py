"""`raybench report DIR`: a table of every run under DIR and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from raybench.cli.common import console, handle_errors


@handle_errors
def report_command(
    directory: Annotated[Path, typer.Argument(help="Results directory to report on.")],
    plots: Annotated[Optional[Path], typer.Option(help="Where the PNGs go (default: DIRECTORY).")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Only the table.")] = False,
) -> None:
    """Table every LoadGen test under DIRECTORY; plot latencies and sweep/peak QPS vs p99."""
    from raybench.errors import ConfigError
    from raybench.experiments.report import collect_runs, write_report

    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    if no_plots:
        rows, pngs = collect_runs(directory), []
    else:
        rows, pngs = write_report(directory, plots)
    if not rows:
        console.print(f"no LoadGen results under {directory}")
    table = Table(title=f"runs under {directory}")
    for name in ("run", "system", "benchmark", "scenario", "mode", "result", "metric", "p99 ms",
                 "accuracy"):
        table.add_column(name, justify="right" if name in ("metric", "p99 ms") else "left")
    for r in rows:
        try:
            rel = str(r.directory.relative_to(directory))
        except ValueError:
            rel = str(r.directory)
        result = ("[green]VALID[/green]" if r.valid else "[red]INVALID[/red]" if r.valid is False
                  else "-")
        table.add_row(rel, r.system, r.benchmark, r.scenario, r.mode, result,
                      "-" if r.metric is None else f"{r.metric:,.2f}",
                      "-" if r.p99_ms is None else f"{r.p99_ms:.3f}", r.accuracy or "-")
    console.print(table)
    for png in pngs:
        console.print(f"plot: {png}")
