"""`raybench run`: one MLPerf LoadGen run on a local or existing Ray cluster."""

from __future__ import annotations

from raybench.cli.common import console, handle_errors
from raybench.cli.options import run_options


@run_options()
@handle_errors
def run_command(values: dict) -> None:
    """Run a real MLPerf LoadGen test on Ray and write LoadGen's logs under OUTPUT."""
    from raybench.run import RunRequest, execute, prepare

    request = RunRequest.from_options(values)
    prepared = prepare(request)
    console.print(f"[bold]raybench run[/bold] {request.benchmark} {request.scenario} "
                  f"{prepared.mode} on {prepared.system_note}, {prepared.engines} x "
                  f"{request.engine} engine")
    with ProgressLine() as progress:
        report = execute(prepared, on_ready=_print_dashboard if request.dashboard else None,
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
        """Show a :class:`~raybench.actors.loadgen.Progress` snapshot."""
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
    from raybench.actors.telemetry import dashboard_url

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
