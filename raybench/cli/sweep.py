"""`raybench sweep SPEC`: a grid of runs as Ray Tune trials on a local or existing cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from raybench.cli.common import handle_errors
from raybench.cli.tables import JsonProgressOption
from raybench.cli.trial_output import (SHORT, TEXT_PARAMS, TuneVerboseOption, duration,
                                       grid_table, label, metric_cell, metric_header, number,
                                       out_console,
                                       print_json, quiet_tune, relative, short_value,
                                       trial_cluster, verdict)


class SweepProgress:
    """One line per finished trial: its verdict and rate, and the sweep's ETA."""

    def __init__(self, console, names: list[str], total: int, done_before: int):
        self.console, self.names, self.total = console, names, total
        self.done = done_before
        self.done_now = 0
        self.started = time.monotonic()

    def __call__(self, event: str, trial) -> None:
        row = trial.row
        if event == "recover":
            self.console.print(f"  #{trial.index} {label(trial.params, self.names)}: "
                               f"{trial.last_error or 'trial died'}; retrying")
            return
        if event not in ("complete", "error"):
            return
        self.done += 1
        self.done_now += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done_now * (self.total - self.done)
        result = verdict(trial.status, row.get("valid"))
        if trial.status == "ok":
            name = row.get("metric_name")
            result += f" {metric_cell(name, row.get('metric'), 'metric')}"
            if row.get("p99_ms") is not None:
                result += f" p99 {row['p99_ms']:,.2f} ms"
        else:
            result += f": {row.get('error', '')}"
        self.console.print(f"[{self.done:>{len(str(self.total))}}/{self.total} ETA "
                           f"{duration(eta)}] #{trial.index} "
                           f"{label(trial.params, self.names)}  {result}")


def results_table(result, names: list[str], wide: bool = False, width: int = 80):
    """The sweep's trials: one column per varied setting, the verdict, rate, p99, time."""
    trials = result.trials
    header = metric_header([t.row.get("metric_name") for t in trials])
    columns = [("#", True), *((SHORT.get(n, n), n not in TEXT_PARAMS) for n in names),
               ("result", False), (header, True), ("p99 ms", True), ("wall s", True)]
    if wide:
        columns += [("setup s", True), ("test s", True), ("tries", True), ("trial", False),
                    ("node", False), ("directory", False)]
    rows = []
    for trial in trials:
        row = trial.row
        cells = [str(trial.index), *(short_value(trial.params.get(n, "")) for n in names),
                 verdict(trial.status, row.get("valid")),
                 metric_cell(row.get("metric_name"), row.get("metric"), header),
                 number(row.get("p99_ms"), 2), number(row.get("wall_s"))]
        if wide:
            cells += [number(row.get("setup_s")), number(row.get("test_s")),
                      str(row.get("attempts", "")), str(row.get("trial", "")),
                      str(row.get("node_id", ""))[:8], relative(row.get("directory"),
                                                                result.directory)]
        rows.append(cells)
    return grid_table(columns, rows, width)


def _json(result, names: list[str]) -> dict:
    return {
        "sweep": result.spec.name, "directory": str(result.directory),
        "csv": str(result.csv_path), "interrupted": result.interrupted,
        "restored": result.restored, "wall_s": round(result.wall_s, 3), "varied": names,
        "trials": [{"index": t.index, "status": t.status, "params": t.params,
                    **{k: v for k, v in t.row.items() if k not in t.params}}
                   for t in result.trials],
    }


@handle_errors
def sweep_command(
    spec: Annotated[Path, typer.Argument(help="Sweep spec YAML (see launch/sweep-example.yaml).")],
    parallel: Annotated[Optional[int], typer.Option(min=1, help="Most trials at once "
                        "(default: as many systems as the cluster holds).")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Experiment directory "
                      "(default: the spec's output/name).")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster: auto or HOST:PORT "
                       "(default: a local Ray).")] = None,
    dry_run: Annotated[bool, typer.Option(help="List the trials and exit.")] = False,
    wide: Annotated[bool, typer.Option(help="Every column: times, tries, trial id, node, "
                    "directory.")] = False,
    json_out: JsonProgressOption = False,
    verbose: TuneVerboseOption = False,
) -> None:
    """Run SPEC's grid as Ray Tune trials, one MLPerf system each; rerun to resume.

    Results: Tune's experiment OUTPUT/NAME (a directory per trial) and its sweep.csv.
    """
    from raybench.experiments.sweep import load_spec, plan_sweep, run_sweep

    sweep = plan_sweep(load_spec(spec), output)
    names = sweep.names
    console = out_console(json_out)
    if dry_run:
        if json_out:
            print_json({"sweep": sweep.spec.name, "directory": str(sweep.directory),
                        "varied": names, "resume": sweep.resume,
                        "trials": [{"index": t.index, "params": t.params} for t in sweep.trials]})
            return
        console.print(f"sweep {sweep.spec.name}: {len(sweep.trials)} trials")
        console.print(grid_table(
            [("#", True), *((SHORT.get(n, n), n not in TEXT_PARAMS) for n in names)],
            [[str(t.index), *(short_value(t.params.get(n, "")) for n in names)]
             for t in sweep.trials], console.width))
        console.print(f"results: {sweep.csv_path}"
                      + (f" (resumes: {sweep.restored} finished)" if sweep.resume else ""))
        return
    with trial_cluster(address, [t.params for t in sweep.trials]):
        console.print(f"[bold]raybench sweep[/bold] {sweep.spec.name}: {len(sweep.trials)} "
                      f"trials ({', '.join(SHORT.get(n, n) for n in names)}) in "
                      f"{sweep.directory}")
        shared = {k: v for k, v in sweep.trials[0].params.items() if k not in names}
        console.print(f"every trial: {label(shared, list(shared))}")
        if sweep.resume:
            console.print(f"resuming: {sweep.restored} trials finished before")
        progress = SweepProgress(console, names, len(sweep.trials), sweep.restored)
        with quiet_tune(verbose):
            result = run_sweep(sweep, parallel=parallel, on_event=progress, verbose=verbose)
    if json_out:
        print_json(_json(result, names))
    else:
        console.print(results_table(result, names, wide, console.width))
        for trial in result.trials:
            if trial.row.get("error"):
                console.print(f"#{trial.index} {trial.status}: {trial.row['error']}")
        console.print(f"results: {result.csv_path}")
        console.print(f"TensorBoard: tensorboard --logdir {result.directory}")
    if result.interrupted:
        left = sum(t.status == "pending" for t in result.trials)
        console.print(f"[yellow]interrupted[/yellow]: {left} of {len(result.trials)} trials "
                      "not run; run the same command again to resume")
        raise typer.Exit(code=130)
