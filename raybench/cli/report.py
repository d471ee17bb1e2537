"""`raybench report DIR`: a table of every run under DIR and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from raybench.cli.common import console, handle_errors
from raybench.cli.tables import PASSED, Column, JsonOption, WideOption, print_json, print_table
from raybench.results.verdict import ms_text

COLUMNS = (
    Column("#", "right"), Column("where", fold=14, hoist=True),
    Column("system", fold=16, hoist=True), Column("benchmark", hoist=True),
    Column("scenario", hoist=True), Column("result"), Column("metric", "right"),
    Column("p99 ms", "right"), Column("headline", wide=True),
    Column("target QPS", "right", wide=True),
    Column("p50 ms", "right", wide=True), Column("p90 ms", "right", wide=True),
    Column("why", wide=True), Column("directory", wide=True, fold=40),
)


def _result(row) -> str:
    if row.accuracy_passed is not None and row.valid is None:
        return PASSED[bool(row.accuracy_passed)]
    return {True: "[green]VALID[/green]", False: "[red]INVALID[/red]"}.get(row.valid, "-")


def _metric(row) -> str:
    if row.headline is not None:
        return row.headline.compact()
    if row.accuracy:  # "acc: 76.4560 PASS" -> "76.456"
        words = row.accuracy.split()
        return f"{float(words[-2]):.3f}" if len(words) >= 2 else "-"
    return "-"


@handle_errors
def report_command(
    directory: Annotated[Path, typer.Argument(help="Results directory to report on.")],
    plots: Annotated[Optional[Path], typer.Option(
        metavar="PATH", help="Where the PNGs go (default: DIRECTORY).")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", metavar="",
                                           help="Only the table.")] = False,
    wide: WideOption = False,
    as_json: JsonOption = False,
) -> None:
    """Table every LoadGen test under DIRECTORY; plot latencies, QPS vs p99 and throughput."""
    from raybench.errors import ConfigError
    from raybench.experiments.report import collect_runs, write_report

    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    if no_plots:
        rows, pngs = collect_runs(directory), []
    else:
        rows, pngs = write_report(directory, plots)
    if as_json:
        print_json({"directory": str(directory), "runs": [r.to_json(directory) for r in rows],
                    "plots": [str(p) for p in pngs]})
        return
    if not rows:
        console.print(f"no LoadGen results under {directory}")
        return
    cells = []
    for i, r in enumerate(rows, 1):
        kind = r.accuracy.rsplit(" ", 2)[0].rstrip(":") if r.accuracy else "-"  # the metric
        cells.append([
            str(i), r.where(directory), r.system or "-", r.benchmark or "-",
            r.scenario or "-", _result(r), _metric(r), ms_text(r.p99_ms),
            r.headline.name if r.headline else kind,
            "-" if r.target_qps is None else f"{r.target_qps:,.0f}",
            ms_text(r.percentiles_ms.get("50.00")), ms_text(r.percentiles_ms.get("90.00")),
            "; ".join(r.problems) or "-", str(r.directory),
        ])
    print_table(console, COLUMNS, cells, wide=wide, title=f"{len(rows)} tests under {directory}")
    if not wide:
        for i, r in enumerate(rows, 1):
            if r.problems or r.notes:
                console.print(f"#{i} " + "; ".join(r.problems + r.notes))
        console.print("metric: samples/s (Offline), scheduled samples/s (Server), p90 "
                      "(SingleStream) or p99 (MultiStream) latency, accuracy; --wide for "
                      "every column")
    for png in pngs:
        console.print(f"plot: {png}")
