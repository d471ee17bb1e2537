"""`raybench systems`: list, show and detect systems."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from raybench.cli.common import console, handle_errors
from raybench.cli.tables import Column, JsonOption, WideOption, print_json, print_table
from raybench.config.names import SCENARIOS, check_benchmark, check_scenario
from raybench.config.systems import load_system, system_ids, systems_dir
from raybench.errors import ConfigError, choices

app = typer.Typer(help="Systems under test: list, show, detect.", no_args_is_help=True)

LIST_COLUMNS = (Column("id"), Column("accelerators"), Column("name", fold=20))
SHOW_COLUMNS = (
    Column("benchmark", hoist=True), Column("scenario"), Column("target", "right"),
    Column("batch", "right"), Column("timeout us", "right"), Column("prec"),
    Column("sim us/batch"), Column("streams", "right", wide=True), Column("graphs", wide=True),
    Column("input", wide=True), Column("inflight", "right", wide=True),
    Column("per call", "right", wide=True), Column("workspace MB", "right", wide=True),
)


def _accelerators(system) -> str:
    if not system.accelerator_count:
        return "CPU"
    return f"{system.accelerator_count} x {system.accelerator}"


@app.command("list")
@handle_errors
def list_systems(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """List every system file: id, accelerators and the submission's system name."""
    systems = [load_system(system_id) for system_id in system_ids()]
    if as_json:
        print_json([{"id": s.id, "accelerator": s.accelerator,
                     "accelerator_count": s.accelerator_count,
                     "name": s.description.get("system_name", ""),
                     "submission_id": s.submission_id} for s in systems])
        return
    print_table(console, LIST_COLUMNS,
                [[s.id, _accelerators(s), str(s.description.get("system_name", ""))]
                 for s in systems], wide=wide, title=f"Systems in {systems_dir()}")


@app.command("show")
@handle_errors
def show(
    system_id: Annotated[str, typer.Argument(
        metavar="ID", help="System id, see `raybench systems list`.")],
    benchmark: Annotated[Optional[str], typer.Option(
        "--benchmark", "-b", metavar="ID", help="Only this benchmark id.")] = None,
    scenario: Annotated[Optional[str], typer.Option(
        "--scenario", "-s", metavar="NAME", help="Only this scenario.")] = None,
    wide: WideOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show a system's description and its resolved harness settings."""
    if benchmark is not None:
        benchmark = check_benchmark(benchmark).value
    if scenario is not None:
        scenario = check_scenario(scenario).value
    system = load_system(system_id)
    if benchmark is not None and scenario is not None:
        system.harness(benchmark, scenario)  # ConfigError naming what exists
    elif benchmark is not None and benchmark not in system.settings:
        system.harness(benchmark, SCENARIOS[0])
    pairs = [(bench, scen, per_scenario[scen]) for bench, per_scenario in system.settings.items()
             if benchmark in (None, bench)
             for scen in SCENARIOS if scen in per_scenario and scenario in (None, scen)]
    if not pairs:
        raise ConfigError(
            f"system {system.id!r} has no settings for scenario "
            f"{choices(scenario, sorted({s for p in system.settings.values() for s in p}))}")
    engines = system.engines(os.cpu_count() or 1)
    if as_json:
        print_json({**system.model_dump(mode="json", exclude={"settings"}), "engines": engines,
                    "settings": [{"benchmark": b, "scenario": s, **h.model_dump(mode="json")}
                                 for b, s, h in pairs]})
        return
    console.print(f"[bold]{system.id}[/bold]  {system.description.get('system_name', '')}")
    console.print(f"accelerators: {_accelerators(system)}   engines: {engines}")
    if system.extends:
        console.print(f"extends: {system.extends}")
    if system.submission_id:
        console.print(f"submission: {system.submission_id}")
    derivations: list[str] = []  # each sim model's derivation once, numbered
    rows = []
    for bench, scen, h in pairs:
        sim = "-"
        if h.sim is not None:
            sim = f"{_us(h.sim.fixed_us)}+{_us(h.sim.per_sample_us)}n"
            if h.sim.derivation:
                if h.sim.derivation not in derivations:
                    derivations.append(h.sim.derivation)
                sim += f" [{derivations.index(h.sim.derivation) + 1}]"
        rows.append([bench, scen, _target(h), str(h.batch_size), f"{h.batch_timeout_us:,}",
                     h.precision, sim, f"{h.copy_streams}/{h.inference_streams}",
                     "yes" if h.use_graphs else "no", f"{h.input_dtype} {h.input_format}",
                     str(h.max_inflight), str(h.batches_per_call),
                     "-" if h.workspace_mb is None else str(h.workspace_mb)])
    print_table(console, SHOW_COLUMNS, rows, wide=wide, title="harness settings")
    console.print("target: Server QPS, Offline samples/s, SingleStream expected latency or "
                  "MultiStream samples per query (spq). sim: modelled us per batch of n "
                  "samples" + (" (how each was derived: below)" if derivations else "") + ".")
    for i, text in enumerate(derivations, 1):
        console.print(f"[{i}] {text}")


def _us(value: float) -> str:
    """Microseconds with 3 significant digits, without an exponent."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _count(value: float) -> str:
    """``7,550``, ``260k``, ``2.29M``."""
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    return f"{value / 1e3:.3g}k" if value >= 1e5 else f"{value:,.0f}"


def _target(h) -> str:
    """The scenario's performance target, short."""
    if h.server_target_qps is not None:
        return f"{_count(h.server_target_qps)} qps"
    if h.offline_expected_qps is not None:
        return f"{_count(h.offline_expected_qps)}/s"
    if h.single_stream_expected_latency_ns is not None:
        return f"{h.single_stream_expected_latency_ns / 1e6:g} ms"
    if h.multi_stream_samples_per_query is not None:
        return f"{h.multi_stream_samples_per_query} spq"
    return "-"


@app.command("detect")
@handle_errors
def detect(as_json: JsonOption = False) -> None:
    """Detect this host's GPUs and name the system file to use."""
    from raybench.config.detect import detect_system

    found = detect_system()
    if as_json:
        print_json({"system": found.system_id, "gpus": found.gpu_names, "source": found.source,
                    "exact": found.exact, "message": found.message})
        return
    console.print(found.message)
    console.print(f"system: [bold]{found.system_id}[/bold]")
