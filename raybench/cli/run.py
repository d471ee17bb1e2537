"""`raybench run`: one MLPerf LoadGen run on a local or existing Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from raybench.cli.common import console, handle_errors

QUICK_DURATION_S = 10.0


@handle_errors
def run_command(
    benchmark: Annotated[str, typer.Option(help="Benchmark id: resnet50, bert-99, ...")] = "resnet50",
    scenario: Annotated[str, typer.Option(help="SingleStream, MultiStream, Server or Offline.")] = "Offline",
    mode: Annotated[Optional[str], typer.Option(help="PerformanceOnly, AccuracyOnly or SubmissionRun "
                    "(default: SubmissionRun; PerformanceOnly for null/sim engines).")] = None,
    engine: Annotated[str, typer.Option(help="Engine: onnxruntime, null, sim, ...")] = "onnxruntime",
    system: Annotated[Optional[str], typer.Option(help="System id from systems/ (default: detect).")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Model file (default: generated stand-in).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Preprocessed data (NVIDIA layout).")] = None,
    output: Annotated[Path, typer.Option(help="Results root.")] = Path("results"),
    duration: Annotated[Optional[float], typer.Option(help=f"Minimum duration in seconds "
                        f"(default {QUICK_DURATION_S:g}; the rules' with --official).")] = None,
    queries: Annotated[Optional[int], typer.Option(help="Minimum query count (default 1; the rules' with --official).")] = None,
    target_qps: Annotated[Optional[float], typer.Option(help="Server/Offline target QPS.")] = None,
    samples_per_query: Annotated[Optional[int], typer.Option(help="MultiStream samples per query.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Maximum batch size.")] = None,
    batch_timeout_us: Annotated[Optional[int], typer.Option(help="Server batch timeout (us).")] = None,
    engines: Annotated[Optional[int], typer.Option(help="Engine actors (default: one per GPU).")] = None,
    max_inflight: Annotated[Optional[int], typer.Option(help="In-flight batches per engine.")] = None,
    batches_per_call: Annotated[Optional[int], typer.Option(
        help="Server: most batches one engine call carries when the queue is long.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads per engine.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster: auto or HOST:PORT.")] = None,
    dashboard: Annotated[bool, typer.Option(help="Start the local Ray with its dashboard.")] = False,
    official: Annotated[bool, typer.Option(help="Apply the round's minimum duration and query "
                        "counts, no overrides (a submission run).")] = False,
) -> None:
    """Run a real MLPerf LoadGen test on Ray and write LoadGen's logs under OUTPUT."""
    from raybench.cluster.run import RunRequest, execute, prepare
    from raybench.errors import ConfigError
    from raybench.rules.settings import Overrides

    if official and (duration is not None or queries is not None):
        raise ConfigError("--official applies the rules' duration and query count; "
                          "drop --duration/--queries")
    overrides = Overrides(
        duration_s=None if official else (duration or QUICK_DURATION_S),
        min_query_count=None if official else (queries or 1),
        target_qps=target_qps, samples_per_query=samples_per_query,
    )
    request = RunRequest(
        benchmark=benchmark, scenario=scenario, mode=mode, engine=engine, system=system,
        model=model, data_dir=data_dir, output=output, overrides=overrides,
        batch_size=batch_size, batch_timeout_us=batch_timeout_us, engines=engines,
        max_inflight=max_inflight, batches_per_call=batches_per_call, threads=threads,
        address=address, dashboard=dashboard,
    )
    prepared = prepare(request)
    console.print(f"[bold]raybench run[/bold] {benchmark} {scenario} {prepared.mode} on "
                  f"{prepared.system_note}, {prepared.engines} x {engine} engine")
    with ProgressLine() as progress:
        report = execute(prepared, on_ready=_print_dashboard if dashboard else None,
                         on_progress=progress.update)
    print_summary(report)


class ProgressLine:
    """A live line while a test runs: elapsed against the minimum, samples, QPS, in flight."""

    def __init__(self):
        from rich.live import Live

        self.live = Live("", console=console, transient=True, refresh_per_second=4)
        self._last = None

    def __enter__(self) -> "ProgressLine":
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def update(self, p) -> None:
        """Show a :class:`~raybench.cluster.loadgen_test.Progress` snapshot."""
        qps = 0.0
        if self._last is not None and p.elapsed_s > self._last.elapsed_s:
            qps = (p.completed - self._last.completed) / (p.elapsed_s - self._last.elapsed_s)
        self._last = p
        self.live.update(
            f"{p.mode} {p.elapsed_s:.1f}/{p.min_duration_s:g} s  {p.completed:,}/{p.received:,} "
            f"done  {qps:,.0f}/s  {p.inflight_batches} in flight  {p.queued:,} queued",
        )


def _print_dashboard(handles) -> None:
    """on_ready hook: the dashboard URL of the Ray this run actually uses."""
    from raybench.cluster.metrics import dashboard_url

    url = dashboard_url()
    console.print(f"Ray dashboard: {url}" if url else "Ray dashboard: not running "
                  "(install ray[default]; with --address, the cluster's head serves it)")


def print_summary(report) -> None:
    """One screen: validity and why, the metric, latency percentiles, accuracy."""
    prepared = report.prepared
    console.rule(f"{prepared.request.benchmark} / {prepared.request.scenario} on {prepared.system.id}")
    for test in report.tests:
        s, o = test.summary, test.outcome
        console.print(f"[bold]{test.mode}[/bold]  ({o.completed} samples, {o.batches} batches, "
                      f"{o.retried} retried)  {test.directory}")
        if test.accuracy:
            a = test.accuracy
            verdict = "[green]PASS[/green]" if a.passed else "[red]FAIL[/red]"
            console.print(f"  accuracy   {a.metric} = {a.value:.4f}  {verdict} "
                          f"(target {a.required_fraction * 100:g}% of {a.fp32} = "
                          f"{a.fp32 * a.required_fraction:.4f})")
            continue
        if s.valid:
            console.print("  result     [green]VALID[/green]")
        else:
            reasons = [r.replace(" satisfied", "") + " not met" for r in s.invalid_reasons]
            console.print("  result     [red]INVALID[/red]: " + (", ".join(reasons) or "see detail log"))
        if s.metric is not None:
            console.print(f"  metric     {s.metric_name}: {s.metric:,.2f}")
        pct = ", ".join(f"p{float(p):g} {s.percentiles[p] / 1e6:.3f}"
                        for p in ("50.00", "90.00", "99.00", "99.90") if p in s.percentiles)
        if pct:
            console.print(f"  latency    {pct} ms")
    settings = prepared.settings
    console.print(f"rules: MLPerf Inference {settings.round}")
    if settings.overridden:
        console.print("[yellow]overridden, so not a valid submission run:[/yellow] "
                      + "; ".join(settings.overridden))
    if prepared.tuned:
        console.print("tuned: " + "; ".join(prepared.tuned))
