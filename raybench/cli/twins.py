"""`raybench twins`: the seed systems' simulated twins against their published results."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from raybench.cli.common import console, handle_errors


def _num(value: Optional[float], fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


@handle_errors
def twins_command(
    duration: Annotated[float, typer.Option(help="LoadGen minimum duration per run, seconds.")] = 5.0,
    system: Annotated[Optional[list[str]], typer.Option(
        help="Seed system id (repeatable; default: every system with published results).")] = None,
    benchmark: Annotated[Optional[list[str]], typer.Option(
        help="Benchmark id (repeatable; default resnet50; calibrated: resnet50, bert-99, "
             "ssd-resnet34).")] = None,
    scenario: Annotated[Optional[list[str]], typer.Option(
        help="Scenario (repeatable; default Offline and Server).")] = None,
    ceiling: Annotated[bool, typer.Option(
        help="Also run null engines on the largest system: this machine's harness ceiling.")] = True,
    output: Annotated[Path, typer.Option(help="Results root.")] = Path("results/twins"),
) -> None:
    """Run each seed system's simulated twin (sim engines) and compare with the published result."""
    from raybench.config.names import check_benchmark, check_scenario
    from raybench.experiments.twins import TWIN_SCENARIOS, plan_cases, run_twins, seed_systems

    benchmarks = benchmark or ["resnet50"]
    scenarios = scenario or list(TWIN_SCENARIOS)
    benchmarks = [check_benchmark(b).value for b in benchmarks]
    scenarios = [check_scenario(s).value for s in scenarios]
    cases = plan_cases(system or seed_systems(), benchmarks, scenarios, ceiling)
    console.print(f"[bold]raybench twins[/bold]: {len(cases)} runs of {duration:g} s on one Ray "
                  f"({os.cpu_count()} CPUs here)")
    start = time.perf_counter()

    def progress(row) -> None:
        state = row.error or ("VALID" if row.valid else "INVALID")
        console.print(f"  {row.system} {row.benchmark} {row.scenario} {row.engine}: "
                      f"{_num(row.simulated)} ({state}, {row.wall_s:.0f} s)")

    rows = run_twins(cases, duration, output, on_row=progress)
    table = Table(title=f"Simulated twins vs published MLPerf Inference v1.0 "
                        f"({duration:g} s runs, {os.cpu_count()} CPUs)")
    for name, justify in (("system", "left"), ("benchmark", "left"), ("scenario", "left"),
                          ("engine", "left"), ("target qps", "right"), ("published", "right"),
                          ("simulated", "right"), ("ratio", "right"), ("p99 ms", "right"),
                          ("VALID", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "system")
    for row in rows:
        if row.error:
            verdict = f"[red]error[/red]: {row.error}"
        else:
            verdict = "[green]VALID[/green]" if row.valid else "[red]INVALID[/red]"
        table.add_row(row.system, row.benchmark, row.scenario, row.engine, _num(row.target_qps),
                      _num(row.published, ",.1f"), _num(row.simulated, ",.1f"),
                      _num(row.ratio, ".3f"), _num(row.p99_ms, ".2f"), verdict)
    console.print(table)
    console.print("published/simulated: samples/s (Offline), scheduled vs completed samples/s "
                  "(Server). null rows: the same harness with zero-time engines, i.e. what this "
                  "machine carries; a sim row at or above it is limited by the machine, not the model.")
    console.print(f"wall time {time.perf_counter() - start:.0f} s")
