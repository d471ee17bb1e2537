"""`raybench run`: one MLPerf LoadGen run on a local or existing Ray cluster."""

from __future__ import annotations

from raybench.cli.common import Verbosity, console, handle_errors, info_console, wait_for_interrupt
from raybench.cli.options import run_options


@run_options()
@handle_errors
def run_command(values: dict) -> None:
    """Run a real MLPerf LoadGen test on Ray and write LoadGen's logs under OUTPUT."""
    from raybench.run import RunRequest, execute, prepare
    from raybench.run.outputs import check_output_dir

    request = RunRequest.from_options(values)
    prepared = prepare(request)
    check_output_dir(request.output)
    info_console.print(f"[bold]raybench run[/bold] {request.benchmark} {request.scenario} "
                       f"{prepared.mode} on {prepared.system_note}, {prepared.engines} x "
                       f"{request.engine} engine")

    def done(report, session) -> None:
        progress.close()
        print_summary(report)
        if request.keep_dashboard and session is not None and session.local:
            wait_for_interrupt(f"the local Ray and its dashboard stay up at "
                               f"{session.dashboard_url or '(no dashboard)'}")

    log_file = prepared.result_dir / RAY_LOG
    with ProgressLine() as progress:
        execute(prepared, on_placed=lambda session, placement: print_cluster(
                    session, placement, log_file, request.dashboard or request.keep_dashboard),
                on_progress=progress.update, on_done=done, ray_log=log_file,
                verbose=Verbosity.verbose)


RAY_LOG = "raybench.log"


def print_cluster(session, placement, log_file, dashboard: bool) -> None:
    """on_placed hook: which Ray the run uses, where its logs, dashboard and metrics are."""
    if session is None:
        return
    if not session.local:
        where = f"the Ray cluster at {session.address} (from {session.source})"
    elif session.loopback:
        where = "a local Ray listening on 127.0.0.1 only"
    else:
        where = f"a local Ray at {session.address}, listening on every interface (--listen)"
    info_console.print(f"Ray: {where}; Ray's log: {log_file}"
                       + (f"; worker logs: {session.logs_dir}" if session.logs_dir else ""))
    if dashboard or not session.local:
        url = session.dashboard_url
        hint = " (token: `ray get-auth-token`)" if url and session.token_auth else ""
        info_console.print(f"Ray dashboard: {url}{hint}" if url else "Ray dashboard: not running "
                           "(install ray[default]; with --address, the cluster's head serves it)")
    if placement.metrics_url:
        info_console.print(f"metrics (Prometheus): {placement.metrics_url}")


class ProgressLine:
    """A live line while a test runs: elapsed against the minimum, samples, QPS, in flight."""

    def __init__(self):
        from rich.live import Live

        self.live = None if Verbosity.quiet else Live("", console=console, transient=True,
                                                      refresh_per_second=4)
        self._last = None

    def __enter__(self) -> "ProgressLine":
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the line (before the summary is printed)."""
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def update(self, p) -> None:
        """Show a :class:`~raybench.actors.loadgen.Progress` snapshot."""
        qps = 0.0
        if self._last is not None and p.elapsed_s > self._last.elapsed_s:
            qps = (p.completed - self._last.completed) / (p.elapsed_s - self._last.elapsed_s)
        self._last = p
        if self.live is None:
            return
        self.live.update(
            f"{p.mode} {p.elapsed_s:.1f}/{p.min_duration_s:g} s  {p.completed:,}/{p.received:,} "
            f"done  {qps:,.0f}/s  {p.inflight_batches} in flight  {p.queued:,} queued",
        )


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
