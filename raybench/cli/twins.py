"""`raybench twins`: the seed systems' simulated twins against their published results."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from raybench.cli.common import Verbosity, console, err_console, handle_errors
from raybench.cli.options import choice_parser
from raybench.cli.tables import (
    Column, JsonProgressOption, WideOption, duration_text, print_json, print_table,
)
from raybench.config.names import TransportName

TWIN_TRANSPORTS = (TransportName.GRAPH, TransportName.CALLS)  # a twin runs every GPU

COLUMNS = (
    Column("#", "right"), Column("system", fold=16, hoist=True),
    Column("benchmark", hoist=True), Column("scenario", hoist=True),
    Column("engine", hoist=True), Column("target QPS", "right", wide=True),
    Column("published", "right"), Column("simulated", "right"), Column("ratio", "right"),
    Column("p99 ms", "right"), Column("result"), Column("wall s", "right", wide=True),
    Column("error", wide=True),
)
LATENCY_SCENARIOS = ("SingleStream", "MultiStream")  # published as latency in ns


def _num(value: Optional[float], fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _metric(row, value: Optional[float], per_s: str = "") -> str:
    """Samples/s as an integer (followed by ``per_s``); a latency (ns) in ms."""
    if value is None:
        return "-"
    return f"{value / 1e6:.3g} ms" if row.scenario in LATENCY_SCENARIOS else f"{value:,.0f}{per_s}"


def _result(row) -> str:
    if row.error:
        return "[red]error[/red]"
    return "[green]VALID[/green]" if row.valid else "[red]INVALID[/red]"


@handle_errors
def twins_command(
    duration: Annotated[float, typer.Option(
        metavar="NUM", help="LoadGen minimum duration per run, seconds.")] = 5.0,
    system: Annotated[Optional[list[str]], typer.Option(
        metavar="ID",
        help="Seed system id (repeatable; default: every system with published results).")] = None,
    benchmark: Annotated[Optional[list[str]], typer.Option(
        metavar="ID",
        help="Benchmark id (repeatable; default resnet50; calibrated: resnet50, bert-99, "
             "ssd-resnet34).")] = None,
    scenario: Annotated[Optional[list[str]], typer.Option(
        metavar="NAME", help="Scenario (repeatable; default Offline and Server).")] = None,
    ceiling: Annotated[bool, typer.Option(
        metavar="", help="Also run null engines on the largest system: this machine's "
                         "harness ceiling.")] = True,
    output: Annotated[Path, typer.Option(
        metavar="PATH", help="Results root.")] = Path("results/twins"),
    transport: Annotated[Optional[str], typer.Option(
        metavar="NAME", parser=choice_parser(TransportName, only=TWIN_TRANSPORTS),
        help="How batches reach the engines: graph or calls (default: as `raybench run` "
             "chooses; a SingleStream twin's one engine runs inline).")] = None,
    wide: WideOption = False,
    as_json: JsonProgressOption = False,
) -> None:
    """Run each seed system's simulated twin (sim engines) and compare with the published result."""
    from raybench.config.names import check_benchmark, check_scenario
    from raybench.experiments.twins import TWIN_SCENARIOS, plan_cases, run_twins, seed_systems

    benchmarks = [check_benchmark(b).value for b in benchmark or ["resnet50"]]
    scenarios = [check_scenario(s).value for s in scenario or list(TWIN_SCENARIOS)]
    cases = plan_cases(system or seed_systems(), benchmarks, scenarios, ceiling)
    out = err_console if as_json else console  # --json: stdout holds the JSON alone
    out.print(f"[bold]raybench twins[/bold]: {len(cases)} runs of {duration:g} s on one Ray "
              f"({os.cpu_count()} CPUs here)")
    start = time.perf_counter()
    done = [0]

    def progress(row) -> None:
        done[0] += 1
        elapsed = time.perf_counter() - start
        eta = elapsed / done[0] * (len(cases) - done[0])
        state = "error" if row.error else "VALID" if row.valid else "INVALID"
        what = " ".join([row.system] + ([row.benchmark] if len(benchmarks) > 1 else [])
                        + [row.scenario, row.engine])
        out.print(f"[{done[0]}/{len(cases)}] {what}: {_metric(row, row.simulated, '/s')} {state}"
                  + (f", ETA {duration_text(eta)}" if eta else ""))

    rows = run_twins(cases, duration, output, on_row=progress, transport=transport,
                     verbose=Verbosity.verbose)
    wall = time.perf_counter() - start
    if as_json:
        print_json({"duration_s": duration, "cpus": os.cpu_count(), "wall_s": round(wall, 1),
                    "rows": [{**dataclasses.asdict(r), "ratio": r.ratio} for r in rows]})
        return
    cells = [[str(i), r.system, r.benchmark, r.scenario, r.engine, _num(r.target_qps),
              _metric(r, r.published), _metric(r, r.simulated), _num(r.ratio, ".3f"),
              _num(r.p99_ms, ".1f"), _result(r), f"{r.wall_s:.0f}", r.error or "-"]
             for i, r in enumerate(rows, 1)]
    print_table(console, COLUMNS, cells, wide=wide,
                title=f"Simulated twins vs published MLPerf Inference v1.0 ({duration:g} s runs)")
    if not wide:
        for i, r in enumerate(rows, 1):
            if r.error:
                console.print(f"#{i} error: {r.error}")
    console.print("published and simulated: samples/s (Offline), scheduled samples/s (Server), "
                  "p90 latency (SingleStream). null rows: the same harness with zero-time "
                  "engines, i.e. what this machine carries; a sim row at or above it is "
                  "limited by the machine, not the model.")
    console.print(f"wall time {duration_text(wall)}")
