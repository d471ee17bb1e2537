"""`raybench peak`: the highest VALID Server target QPS (Offline: measured samples/s)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from raybench.cli.common import console, handle_errors
from raybench.cli.options import run_options


PEAK_DEFAULTS = {"scenario": "Server", "duration": 5.0, "output": Path("results/peak")}


@run_options(skip=("mode", "target_qps", "official", "samples_per_query", "dashboard",
                   "keep_dashboard"),
             help_overrides={
                 "scenario": "Server (searched) or Offline (measured). [default: Server]",
                 "duration": "Seconds per search run. [default: 5]",
                 "output": "Results directory. [default: results/peak]"})
@handle_errors
def peak_command(
    values: dict,
    start_qps: Annotated[Optional[float], typer.Option(min=0.001, help="First target QPS "
                         "(default: the system's Server target).")] = None,
    tolerance: Annotated[float, typer.Option(min=0.001, max=1.0,
                                             help="Relative precision of the search.")] = 0.05,
    rounds: Annotated[int, typer.Option(min=1, help="Most search rounds.")] = 12,
    parallel: Annotated[int, typer.Option(min=1, help="Runs at once per round.")] = 1,
    confirm_duration: Annotated[Optional[float], typer.Option(min=0.001, help="Seconds of the confirming "
                                "run (default: the rules' minimum).")] = None,
) -> None:
    """Search the highest Server target QPS LoadGen calls VALID, then confirm it."""
    import ray

    from raybench.experiments.peak import find_peak, measure_offline
    from raybench.experiments.sweep import Trial, local_init_kwargs, trial_id, write_rows
    from raybench.run import RunRequest, prepare

    values = {k: v for k, v in values.items() if v is not None}
    for key, default in PEAK_DEFAULTS.items():
        values.setdefault(key, default)
    values["mode"] = "PerformanceOnly"
    request = RunRequest.from_options(values)
    output, address, scenario = request.output, request.address, request.scenario
    params = request.model_dump(mode="json", include=set(values) - {"output", "address"})
    prepared = prepare(request)

    start = start_qps or prepared.harness.server_target_qps or 1000.0
    started = not ray.is_initialized()
    if started:
        extra = {} if address else local_init_kwargs([Trial(trial_id(params), params)])
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 include_dashboard=False, **extra)
    try:
        if scenario != "Server":
            probe = measure_offline(params, output / "measure")
            console.print(f"{scenario}: {probe.metric:,.2f} (no peak to search; "
                          f"{'VALID' if probe.valid else 'INVALID'})")
            return
        console.print(f"[bold]raybench peak[/bold] {request.benchmark} Server on "
                      f"{prepared.system.id}: start {start:g} QPS, {request.duration:g} s runs, "
                      f"{parallel} at once")
        result = find_peak(params, output, start, tolerance, rounds, parallel, confirm_duration)
    finally:
        if started:
            ray.shutdown()
    table = Table(title="probes")
    for name in ("target QPS", "result", "completed/s", "p99 ms"):
        table.add_column(name, justify="right")
    for p in sorted(result.probes, key=lambda p: p.qps):
        table.add_row(f"{p.qps:,.1f}", "[green]VALID[/green]" if p.valid else "[red]INVALID[/red]",
                      "-" if p.metric is None else f"{p.metric:,.1f}",
                      "-" if p.p99_ms is None else f"{p.p99_ms:.3f}")
    console.print(table)
    rows = {f"{p.qps:.3f}": {"trial": f"{p.qps:.3f}", "status": "ok" if p.error is None else "failed",
                             **params, "target_qps": p.qps, "valid": p.valid, "metric": p.metric,
                             "p99_ms": p.p99_ms, "error": p.error} for p in result.probes}
    write_rows(output / "peak.csv", rows)
    if result.peak_qps is None:
        console.print("[red]no VALID target QPS found[/red]")
        raise typer.Exit(code=1)
    c = result.confirmed
    verdict = "VALID" if c and c.valid else "INVALID"
    console.print(f"peak: {result.peak_qps:,.1f} QPS (lowest INVALID "
                  f"{result.lowest_invalid_qps or float('nan'):,.1f}); confirming run at "
                  f"{c.qps:,.1f}: {verdict}" + (f", {c.metric:,.1f}/s" if c and c.metric else ""))
    console.print(f"probes: {output / 'peak.csv'}")
