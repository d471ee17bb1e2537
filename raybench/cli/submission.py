"""`raybench submission`: run and verify the compliance tests, assemble the submission tree,
check it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from raybench.cli.common import Verbosity, console, handle_errors
from raybench.cli.options import run_options
from raybench.cli.tables import PASSED, VERDICT

app = typer.Typer(help="MLPerf submissions: compliance runs and their verification, the "
                       "submission tree and its checker, audit.config and LoadGen config files.",
                  no_args_is_help=True)

ResultsArg = Annotated[Path, typer.Argument(metavar="RESULTS", help="The results directory "
                                            "(what `raybench run --output` wrote to).")]
SystemOpt = Annotated[str, typer.Option(help="System id (`raybench systems list`).")]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    help="Dataset for TEST01's accuracy check when sampled responses differ "
         "(default: the accuracy run's).")]


def _print_verdicts(verdicts) -> None:
    for v in verdicts:
        if v.no_outputs:
            console.print(f"  {v.test:<9} {v.file:<23} [yellow]n/a[/yellow]  {v.lines[-1]}",
                          soft_wrap=True)
            continue
        verdict = PASSED[bool(v.passed)]
        reason = "" if v.passed else "  " + next(
            (ln for ln in reversed(v.lines) if "FAIL" in ln), "")
        console.print(f"  {v.test:<9} {v.file:<23} {verdict}{reason}", soft_wrap=True)


@app.command("compliance")
@run_options(skip=("audit",), help_overrides={
    "output": "Results root; the tests go under OUTPUT/<system>/<benchmark>/<scenario>/. "
              "[default: results]"})
@handle_errors
def compliance_command(
    values: dict,
    rerun: Annotated[bool, typer.Option(help="Run the submission run again even if it exists "
                                        "(the earlier one moves to history/).")] = False,
    test: Annotated[Optional[list[str]], typer.Option(
        metavar="TEST",
        help="Only this compliance test (repeatable; default: every one that applies).")] = None,
) -> None:
    """Run every compliance test of a benchmark and scenario on one Ray, then verify them.

    The submission run (accuracy and performance, as `raybench run` makes it) is run first
    where it is missing, or with --rerun; an existing one is used only if it ran with the
    same settings. Exit code 1 if a verification fails.
    """
    from raybench.cli.run import RAY_LOG, ProgressLine
    from raybench.run import RunRequest
    from raybench.submission.compliance import prepare_compliance, run_compliance

    request = RunRequest.from_options(values)
    prepared, reused = prepare_compliance(request, rerun, test)
    console.print(f"[bold]raybench submission compliance[/bold] {request.benchmark} "
                  f"{request.scenario} on {prepared.system_note}, {prepared.engines} x "
                  f"{request.engine} engine: {', '.join(t.name for t in prepared.tests)}"
                  + (f" (reusing {', '.join(reused)})" if reused else ""))
    with ProgressLine(prepared) as progress:
        done = run_compliance(prepared, on_progress=progress.update,
                              ray_log=prepared.result_dir / RAY_LOG, verbose=Verbosity.verbose)
    console.print(f"results in {done.runs.root}", soft_wrap=True)
    table = Table(title=f"{request.benchmark} {request.scenario} on {prepared.system.id}")
    for column in ("test", "result", "metric", "logs"):
        table.add_column(column)
    for t in done.report.tests:
        if t.accuracy is not None:
            a = t.accuracy
            result = PASSED[bool(a.passed)]
            metric = f"{a.metric} = {a.value:.4f}"
        else:
            s = t.summary
            result = VERDICT[bool(s.valid)]
            metric = f"{s.metric_name}: {s.metric:,.2f}" if s.metric is not None else ""
        table.add_row(t.name, result, metric, str(t.directory.relative_to(done.runs.root)))
    console.print(table)
    if prepared.settings.overridden:
        console.print("[yellow]overridden, so not a valid submission run:[/yellow] "
                      + "; ".join(prepared.settings.overridden))
    console.print("[bold]verification[/bold] (compliance/<TEST>/verify_*.txt)")
    _print_verdicts(done.verdicts)
    if not done.passed:
        raise typer.Exit(code=1)


@app.command("verify")
@handle_errors
def verify_command(
    results: ResultsArg,
    system: SystemOpt,
    benchmark: Annotated[str, typer.Option(help="Benchmark id.")] = "resnet50",
    scenario: Annotated[str, typer.Option(help="Scenario.")] = "Offline",
    data_dir: DataDirOpt = None,
) -> None:
    """Verify the compliance runs of one benchmark and scenario and write verify_*.txt."""
    from raybench.config.names import check_benchmark, check_scenario
    from raybench.errors import ConfigError
    from raybench.run.layout import ScenarioRuns
    from raybench.submission.verify import verify_compliance

    runs = ScenarioRuns.at(results, system, check_benchmark(benchmark), check_scenario(scenario))
    if not runs.performance.is_dir():
        raise ConfigError(f"no performance run at {runs.performance}")
    verdicts = verify_compliance(runs, data_dir)
    if not verdicts:
        raise ConfigError(f"no compliance runs under {runs.root / 'compliance'}")
    console.print(f"[bold]{benchmark} {scenario}[/bold] on {system}: {runs.root / 'compliance'}")
    _print_verdicts(verdicts)
    if not all(v.passed for v in verdicts):
        raise typer.Exit(code=1)


@app.command("assemble")
@handle_errors
def assemble_command(
    results: ResultsArg,
    system: SystemOpt,
    out: Annotated[Path, typer.Option(help="Submission root: the tree is OUT/<division>/<submitter>/.")],
    benchmark: Annotated[Optional[list[str]], typer.Option(help="Only this benchmark id (repeatable).")] = None,
    scenario: Annotated[Optional[list[str]], typer.Option(help="Only this scenario (repeatable).")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Assemble the submission tree of one system from its runs, then check it."""
    from raybench.config.names import check_benchmark, check_scenario
    from raybench.submission.tree import assemble

    benchmark = [check_benchmark(b).value for b in benchmark] if benchmark else None
    scenario = [check_scenario(s).value for s in scenario] if scenario else None
    done = assemble(results, system, out, benchmark, scenario, data_dir)
    console.print(f"[bold]assembled[/bold] {done.root} (system {done.system_id})")
    for part in done.scenarios:
        console.print(f"[bold]{part.benchmark} {part.scenario}[/bold]")
        _print_verdicts(part.verdicts)
        for note in part.notes:
            console.print(f"  [yellow]note[/yellow] {note}")
    _report(done.root)


@app.command("check")
@handle_errors
def check_command(
    tree: Annotated[Path, typer.Argument(metavar="TREE", help="Submission root, or one "
                                         "<division>/<submitter> directory.")],
) -> None:
    """Check a submission tree against the rules and name every gap (exit 1 if any)."""
    from raybench.errors import ConfigError

    if not tree.is_dir():
        raise ConfigError(f"{tree} is not a directory")
    _report(tree)


def _report(tree: Path) -> None:
    from raybench.submission.check import KINDS, check_tree

    report = check_tree(tree)
    if report.results:
        table = Table(title="results")
        for column in ("system", "benchmark", "scenario", "metric"):
            table.add_column(column)
        for row in report.results:
            table.add_row(*row)
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
    for kind in KINDS:
        for gap in (g for g in report.gaps if g.kind == kind):
            console.print(f"[red]{gap.kind}[/red] {gap.where}: {gap.message}", soft_wrap=True)
    if report.submittable:
        console.print("[green]no gaps: the tree is a valid submission[/green]")
        return
    overridden = sum(g.kind == "overridden" for g in report.gaps)
    console.print(f"[red]NOT SUBMITTABLE[/red]: {len(report.gaps)} gap(s)"
                  + (f", {overridden} run(s) made with overridden rules" if overridden else ""))
    raise typer.Exit(code=1)


@app.command("audit-config")
@handle_errors
def audit_config_command(
    test: Annotated[str, typer.Argument(metavar="TEST", help="TEST01, TEST04-A, TEST04-B or TEST05.")],
    benchmark: Annotated[str, typer.Option(help="Benchmark id.")] = "resnet50",
) -> None:
    """Print the audit.config of a compliance test (LoadGen reads ./audit.config)."""
    from raybench.config.names import check_benchmark
    from raybench.rules.audit import audit_config_text

    print(audit_config_text(test, check_benchmark(benchmark)), end="")


@app.command("check-conf")
@handle_errors
def check_conf_command(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A user.conf or mlperf.conf.")],
    kind: Annotated[str, typer.Option(help="user or mlperf.")] = "user",
    benchmark: Annotated[str, typer.Option(help="Benchmark id.")] = "resnet50",
    scenario: Annotated[str, typer.Option(help="Scenario.")] = "Offline",
    system: Annotated[str, typer.Option(help="System whose settings the file goes on top of.")] = "cpu",
) -> None:
    """Check a LoadGen config file and show the TestSettings it gives on top of a system's."""
    from raybench.config.names import check_benchmark, check_scenario, model_of
    from raybench.config.systems import load_system
    from raybench.errors import ConfigError, choices
    from raybench.rules import load_rules
    from raybench.rules.loadgen_conf import apply_conf, read_conf
    from raybench.rules.settings import build_settings

    if kind not in ("user", "mlperf"):
        raise ConfigError(f"--kind {choices(kind, ['user', 'mlperf'])}")
    conf = read_conf(path, kind)
    rules = load_rules()
    check_benchmark(benchmark)
    check_scenario(scenario)
    harness = load_system(system).harness(benchmark, scenario)
    total = rules.model(model_of(benchmark)).performance_sample_count
    base = build_settings(rules, benchmark, scenario, "PerformanceOnly", harness, total)
    applied = apply_conf(base, conf, total)
    console.print(f"{path}: {len(conf.entries)} entries, valid")
    table = Table(title=f"TestSettings for {benchmark} {scenario} on {system}")
    for column in ("setting", "system and rules", f"with {path.name}"):
        table.add_column(column)
    for key in applied.values:
        before, after = base.values.get(key), applied.values[key]
        table.add_row(key, str(before), f"[bold]{after}[/bold]" if after != before else str(after))
    console.print(table)
    if applied.overridden:
        console.print("[yellow]overridden, so not a valid submission run:[/yellow] "
                      + "; ".join(applied.overridden))
