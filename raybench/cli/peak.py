"""`raybench peak`: the highest VALID Server target QPS (Offline: measured samples/s), as
a Ray Tune search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from raybench.cli.common import handle_errors
from raybench.cli.options import run_options
from raybench.cli.tables import JsonProgressOption
from raybench.cli.trial_output import (TuneVerboseOption, duration, grid_table, metric_cell,
                                       metric_header, number, out_console, print_json,
                                       quiet_tune, relative, trial_cluster, verdict)

PEAK_DEFAULTS = {"scenario": "Server", "duration": 5.0, "output": Path("results/peak")}


def _probe_line(p, eta: Optional[float]) -> str:
    row = p.row
    result = verdict(row.get("status", "failed"), row.get("valid") if p.error is None else None)
    if p.error is None:
        result += f" {metric_cell(row.get('metric_name'), p.metric, 'metric')}"
        if p.p99_ms is not None:
            result += f" p99 {p.p99_ms:,.2f} ms"
    else:
        result += f": {p.error}"
    suffix = f"  [ETA {duration(eta)}]" if eta is not None else ""
    return f"{p.kind:<7} {p.qps:>11,.1f} QPS  {result}{suffix}"


def probes_table(result, wide: bool = False, width: int = 80):
    """Every probe and confirming run, in the order they started."""
    header = metric_header([p.row.get("metric_name") for p in result.probes])
    columns = [("#", True), ("probe", False), ("target QPS", True), ("result", False),
               (header, True), ("p99 ms", True), ("wall s", True)]
    if wide:
        columns += [("setup s", True), ("test s", True), ("trial", False), ("node", False),
                    ("directory", False)]
    rows = []
    for i, p in enumerate(result.probes, 1):
        row = p.row
        cells = [str(i), p.kind, number(p.qps), verdict(row.get("status", "failed"),
                                                        row.get("valid")),
                 metric_cell(row.get("metric_name"), p.metric, header), number(p.p99_ms, 2),
                 number(row.get("wall_s"))]
        if wide:
            cells += [number(row.get("setup_s")), number(row.get("test_s")),
                      str(row.get("trial", "")), str(row.get("node_id", ""))[:8],
                      relative(row.get("directory"), result.directory)]
        rows.append(cells)
    return grid_table(columns, rows, width)


def _probe_json(p) -> dict:
    return {"probe": p.kind, "target_qps": p.qps, "valid": p.valid, "metric": p.metric,
            "p99_ms": p.p99_ms, "error": p.error,
            **{k: p.row.get(k) for k in ("status", "metric_name", "wall_s", "setup_s",
                                         "test_s", "trial", "node_id", "directory")}}


@run_options(skip=("mode", "target_qps", "official", "samples_per_query", "dashboard",
                   "keep_dashboard"),
             defaults=PEAK_DEFAULTS,
             help_overrides={
                 "scenario": "Server (searched) or Offline (measured).",
                 "duration": "Seconds per search run.",
                 "output": "Where the search's directory peak-<time> goes."})
@handle_errors
def peak_command(
    values: dict,
    start_qps: Annotated[Optional[float], typer.Option(min=0.001, help="First target QPS "
                         "(default: the system's Server target).")] = None,
    tolerance: Annotated[float, typer.Option(min=0.001, max=1.0,
                                             help="Relative precision of the search.")] = 0.05,
    rounds: Annotated[int, typer.Option(min=1, help="Most search rounds.")] = 12,
    parallel: Annotated[Optional[int], typer.Option(min=1, help="Probes at once per round "
                        "(default: as many systems as the cluster holds, at most 4).")] = None,
    confirm_duration: Annotated[Optional[float], typer.Option(min=0.001, help="Seconds of the "
                                "confirming run (default: the rules' minimum).")] = None,
    wide: Annotated[bool, typer.Option(help="Every column: times, trial id, node, "
                    "directory.")] = False,
    json_out: JsonProgressOption = False,
    verbose: TuneVerboseOption = False,
) -> None:
    """Search the highest Server target QPS LoadGen calls VALID, then confirm it.

    Each probe is a Ray Tune trial; a round's probes run at once; then confirming runs.
    """
    from raybench.experiments.peak import default_parallel, find_peak, measure
    from raybench.experiments.trials import normalize
    from raybench.run import RunRequest, prepare

    values = {k: v for k, v in values.items() if v is not None}
    for key, default in PEAK_DEFAULTS.items():
        values.setdefault(key, default)
    values["mode"] = "PerformanceOnly"
    request = RunRequest.from_options(values)
    prepared = prepare(request)
    params = normalize(request.model_dump(mode="json",
                                          include=set(values) - {"output", "address"}))
    console = out_console(json_out)
    with trial_cluster(request.address, [params]):
        if request.scenario != "Server":
            console.print(f"[bold]raybench peak[/bold] {request.benchmark} {request.scenario} "
                          f"on {prepared.system.id}: one run (no target to search)")
            with quiet_tune(verbose):
                result = measure(params, request.output,
                                 on_probe=lambda p, eta: console.print(_probe_line(p, eta)),
                                 verbose=verbose)
        else:
            start = start_qps or prepared.harness.server_target_qps or 1000.0
            parallel = parallel or default_parallel(params)
            console.print(f"[bold]raybench peak[/bold] {request.benchmark} Server on "
                          f"{prepared.system.id}: from {start:,g} QPS, {request.duration:g} s "
                          f"probes, {parallel} per round")
            with quiet_tune(verbose):
                result = find_peak(params, request.output, start, tolerance, rounds, parallel,
                                   confirm_duration,
                                   on_probe=lambda p, eta: console.print(_probe_line(p, eta)),
                                   verbose=verbose)
    c = result.confirmed
    if json_out:
        print_json({"benchmark": request.benchmark, "scenario": request.scenario,
                    "system": prepared.system.id, "peak_qps": result.peak_qps,
                    "lowest_invalid_qps": result.lowest_invalid_qps, "rounds": result.rounds,
                    "confirmed": None if c is None else _probe_json(c),
                    "directory": str(result.directory),
                    "csv": str(result.directory / "peak.csv"), "wall_s": round(result.wall_s, 3),
                    "probes": [_probe_json(p) for p in result.probes]})
    else:
        console.print(probes_table(result, wide, console.width))
        if request.scenario != "Server":
            p = result.probes[0] if result.probes else None
            if p is not None and p.error is None:
                console.print(f"{request.scenario}: "
                              f"{metric_cell(p.row.get('metric_name'), p.metric, 'metric')} "
                              f"({'VALID' if p.valid else 'INVALID'})")
        elif result.peak_qps is not None:
            verdict_text = "VALID" if c and c.valid else "INVALID"
            console.print(f"peak: {result.peak_qps:,.1f} QPS (lowest INVALID "
                          f"{number(result.lowest_invalid_qps)}); confirming run at "
                          f"{c.qps:,.1f}: {verdict_text}"
                          + (f", {c.metric:,.1f}/s" if c and c.metric else ""))
        console.print(f"probes: {result.directory / 'peak.csv'}")
    if request.scenario == "Server" and result.peak_qps is None:
        console.print("[red]no VALID target QPS found[/red]")
        raise typer.Exit(code=1)
    if request.scenario != "Server" and (not result.probes or result.probes[0].error):
        raise typer.Exit(code=1)
