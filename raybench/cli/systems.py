"""`raybench systems`: list, show and detect systems."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.table import Table

from raybench.cli.common import console, handle_errors
from raybench.config.names import SCENARIOS, check_benchmark, check_scenario
from raybench.config.systems import load_system, system_ids, systems_dir
from raybench.errors import ConfigError, choices

app = typer.Typer(help="Systems under test: list, show, detect.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_systems() -> None:
    """List every system file: id, accelerators and the submission's system name."""
    table = Table(title=f"Systems in {systems_dir()}")
    table.add_column("id", no_wrap=True)
    table.add_column("accelerators")
    table.add_column("name")
    for system_id in system_ids():
        system = load_system(system_id)
        accel = f"{system.accelerator_count} x {system.accelerator}" if system.accelerator_count else "CPU"
        table.add_row(system_id, accel, str(system.description.get("system_name", "")))
    console.print(table)


@app.command("show")
@handle_errors
def show(
    system_id: Annotated[str, typer.Argument(metavar="ID", help="System id, see `raybench systems list`.")],
    benchmark: Annotated[Optional[str], typer.Option("--benchmark", "-b", help="Only this benchmark id.")] = None,
    scenario: Annotated[Optional[str], typer.Option("--scenario", "-s", help="Only this scenario.")] = None,
) -> None:
    """Show a system's description and its resolved harness settings."""
    if benchmark is not None:
        check_benchmark(benchmark)
    if scenario is not None:
        check_scenario(scenario)
    system = load_system(system_id)
    accel = f"{system.accelerator_count} x {system.accelerator}" if system.accelerator_count else "CPU"
    console.print(f"[bold]{system.id}[/bold]  {system.description.get('system_name', '')}")
    console.print(f"accelerators: {accel}   engines: {system.engines(os.cpu_count() or 1)}")
    if system.extends:
        console.print(f"extends: {system.extends}")
    if system.submission_id:
        console.print(f"submission: {system.submission_id}")
    if benchmark is not None and scenario is not None:
        system.harness(benchmark, scenario)  # ConfigError naming what exists
    elif benchmark is not None and benchmark not in system.settings:
        system.harness(benchmark, SCENARIOS[0])
    table = Table(show_lines=False)
    table.add_column("benchmark", no_wrap=True)
    table.add_column("scenario", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("harness settings")
    rows = 0
    for bench, per_scenario in system.settings.items():
        if benchmark is not None and bench != benchmark:
            continue
        for scen in SCENARIOS:
            if scen not in per_scenario or (scenario is not None and scen != scenario):
                continue
            h = per_scenario[scen]
            knobs = h.model_dump(exclude_none=True, exclude={
                "server_target_qps", "offline_expected_qps", "single_stream_expected_latency_ns",
                "multi_stream_samples_per_query"})
            table.add_row(bench, scen, _target(h), " ".join(f"{k}={v}" for k, v in knobs.items()))
            rows += 1
    if rows == 0:
        raise ConfigError(
            f"system {system.id!r} has no settings for scenario "
            f"{choices(scenario, sorted({s for p in system.settings.values() for s in p}))}"
        )
    console.print(table)


def _target(h) -> str:
    """The scenario's performance target in words."""
    if h.server_target_qps is not None:
        return f"{h.server_target_qps:g} qps"
    if h.offline_expected_qps is not None:
        return f"{h.offline_expected_qps:g} samples/s"
    if h.single_stream_expected_latency_ns is not None:
        return f"{h.single_stream_expected_latency_ns / 1e6:g} ms"
    if h.multi_stream_samples_per_query is not None:
        return f"{h.multi_stream_samples_per_query} samples/query"
    return "-"


@app.command("detect")
@handle_errors
def detect() -> None:
    """Detect this host's GPUs and name the system file to use."""
    from raybench.config.detect import detect_system

    found = detect_system()
    console.print(found.message)
    console.print(f"system: [bold]{found.system_id}[/bold]")
