"""`raybench sweep SPEC`: a grid of short runs in parallel on a Ray cluster."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from raybench.cli.common import console, handle_errors

def _fmt(value, digits: int = 2) -> str:
    if value in (None, ""):
        return "-"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def results_table(results, title: str) -> Table:
    """A rich table of sweep results: one row per trial."""
    table = Table(title=title)
    for name in ("trial", "status", "parameters", "VALID", "metric", "p99 ms", "wall s"):
        table.add_column(name, justify="right" if name in ("metric", "p99 ms", "wall s") else "left")
    for r in results:
        row = r.row
        valid = str(row.get("valid", ""))
        shown = ("[green]VALID[/green]" if valid == "True" else
                 "[red]INVALID[/red]" if valid == "False" else "-")
        status = {"ok": "[green]ok[/green]", "skipped": "[dim]skipped[/dim]"}.get(
            r.status, f"[red]{r.status}[/red]")
        table.add_row(r.trial.trial_id, status, r.trial.label(), shown, _fmt(row.get("metric")),
                      _fmt(row.get("p99_ms"), 3), _fmt(row.get("wall_s"), 1))
    return table


@handle_errors
def sweep_command(
    spec: Annotated[Path, typer.Argument(help="Sweep spec YAML (see launch/sweep-example.yaml).")],
    parallel: Annotated[Optional[int], typer.Option(min=1, help="Most trials at once "
                        "(default: as many as the cluster holds).")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Results directory "
                      "(default: the spec's output/name).")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster: auto or HOST:PORT "
                       "(default: a local Ray).")] = None,
    dry_run: Annotated[bool, typer.Option(help="List the trials and exit.")] = False,
) -> None:
    """Run every trial of SPEC not already in its sweep.csv; print a table of results."""
    from raybench.experiments.sweep import CSV_NAME, expand, load_spec, local_init_kwargs, run_sweep

    sweep = load_spec(spec)
    trials = expand(sweep)
    out = output or sweep.output / sweep.name
    if dry_run:
        for t in trials:
            console.print(f"{t.trial_id}  {t.label()}")
        console.print(f"{len(trials)} trials -> {out / CSV_NAME}")
        return
    import ray

    started = not ray.is_initialized()
    if started:
        extra = {} if address else local_init_kwargs(trials)
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 include_dashboard=False, **extra)
    try:
        console.print(f"[bold]raybench sweep[/bold] {sweep.name}: {len(trials)} trials")

        def progress(result) -> None:
            console.print(f"  {result.trial.trial_id} {result.status:8s} {result.trial.label()}")

        results = run_sweep(sweep, parallel=parallel, output=out, on_result=progress)
    finally:
        if started:
            ray.shutdown()
    console.print(results_table(results, f"sweep {sweep.name}"))
    failed = sum(r.status == "failed" for r in results)
    console.print(f"results: {out / CSV_NAME}" + (f"  [red]{failed} failed[/red]" if failed else ""))
