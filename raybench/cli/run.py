"""`raybench run`: one MLPerf LoadGen run on a local or existing Ray cluster."""

from __future__ import annotations

import collections
import dataclasses
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from raybench.cli.common import (Verbosity, console, err_console, handle_errors, info_console,
                                 wait_for_interrupt)
from raybench.cli.options import run_options
from raybench.cli.tables import (
    JSON_PROGRESS_HELP, PASSED, VERDICT, duration_text, fold, print_json,
)
from raybench.results.verdict import explain, ms_text
from raybench.run.request import OUTPUT

PERCENTILES = ("50.00", "90.00", "99.00", "99.90")


@run_options()
@handle_errors
def run_command(
    values: dict,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help=JSON_PROGRESS_HELP,
                                          rich_help_panel=OUTPUT)] = False,
) -> None:
    """Run a real MLPerf LoadGen test on Ray and write LoadGen's logs under OUTPUT."""
    from raybench.run import RunRequest, execute, prepare
    from raybench.run.outputs import check_output_dir

    request = RunRequest.from_options(values)
    prepared = prepare(request)
    check_output_dir(request.output)
    info_console.print(f"[bold]raybench run[/bold] {request.benchmark} {request.scenario} "
                       f"{prepared.mode} on {escape(prepared.system_note)}, {prepared.engines} "
                       f"{request.engine} engine{'s' if prepared.engines != 1 else ''}")

    def done(report, session) -> None:
        progress.close()
        if as_json:
            print_json(run_json(report))
        else:
            print_summary(report)
        if request.keep_dashboard and session is not None and session.local:
            wait_for_interrupt(f"the local Ray and its dashboard stay up at "
                               f"{session.dashboard_url or '(no dashboard)'}")

    log_file = prepared.result_dir / RAY_LOG
    with ProgressLine(prepared, err_console if as_json else console) as progress:
        execute(prepared,
                on_placed=lambda session, placement: print_cluster(
                    session, placement, log_file, request.dashboard or request.keep_dashboard),
                on_ready=lambda handles: _provision_grafana(),
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
    info_console.print(f"Ray: {where}; Ray's log: {escape(str(log_file))}"
                       + (f"; worker logs: {escape(str(session.logs_dir))}"
                          if session.logs_dir else ""))
    if dashboard or not session.local:
        url = session.dashboard_url
        hint = " (token: `ray get-auth-token`)" if url and session.token_auth else ""
        info_console.print(f"Ray dashboard: {url}{hint}" if url else "Ray dashboard: not running "
                           "(install ray[default]; with --address, the cluster's head serves it)")
    if placement.metrics_url:
        info_console.print(f"metrics (Prometheus): {placement.metrics_url}")


def _provision_grafana() -> None:
    """on_ready hook: add raybench's Grafana dashboard to the Ray session's Grafana folder
    (when this host has one)."""
    from raybench.actors.telemetry import provision_grafana

    provisioned = provision_grafana()
    if provisioned:
        info_console.print(f"Grafana dashboard 'raybench' added to "
                           f"{escape(str(provisioned.parent))}")


class ProgressLine:
    """A live line while a test runs: a bar, ETA, samples/s, samples done, in flight, queued.

    The ETA is the longer of the minimum duration still to run and the samples LoadGen
    still has to see completed (its minimum query count, the Offline query, or every
    sample in an accuracy test) at the rate of the last seconds.
    """

    def __init__(self, prepared, out=console):
        from rich.live import Live

        self.prepared = prepared
        self.out = out
        self.live = None if Verbosity.quiet else Live("", console=out, transient=True,
                                                      refresh_per_second=4)
        self._recent: collections.deque = collections.deque(maxlen=8)  # (elapsed, completed)
        self._mode = ""

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

    def expected_samples(self, p) -> Optional[int]:
        """Samples LoadGen completes before it may end the test, if known."""
        if p.mode == "AccuracyOnly":
            return self.prepared.total_count
        values = self.prepared.settings.values
        queries = values["min_query_count"]
        scenario = values["scenario"]
        if scenario == "Offline":
            return p.received or None  # one query, issued whole at the start
        if scenario == "Server":
            return max(queries, int(values["server_target_qps"] * p.min_duration_s))
        if scenario == "MultiStream":
            return queries * values["multi_stream_samples_per_query"]
        return queries

    def eta(self, p, rate: float) -> Optional[float]:
        """Seconds until LoadGen may end the test, or None before a rate is known."""
        if rate <= 0:
            return None
        expected = self.expected_samples(p)
        left = max(0, (expected or p.completed) - p.completed) / rate
        if p.mode != "AccuracyOnly":
            left = max(left, p.min_duration_s - p.elapsed_s)
        return left

    def line(self, p, width: int) -> Text:
        """The progress line for a snapshot, fitted to ``width`` columns."""
        if p.mode != self._mode or (self._recent and p.elapsed_s < self._recent[-1][0]):
            self._recent.clear()  # a new test (accuracy, then performance)
            self._mode = p.mode
        self._recent.append((p.elapsed_s, p.completed))
        (t0, c0), (t1, c1) = self._recent[0], self._recent[-1]
        rate = (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
        eta = self.eta(p, rate)
        share = 0.0 if eta is None else p.elapsed_s / (p.elapsed_s + eta) if eta else 1.0
        bar = 20
        filled = int(round(share * bar))
        pieces = [  # most important first; the rest as space allows
            Text(f"{p.mode.replace('Only', '')} "),
            Text("━" * filled, style="green") + Text("━" * (bar - filled), style="grey37")
            + Text(f" {share * 100:3.0f}%"),
            Text(f"  ETA {duration_text(eta)}" if eta is not None else "  ETA -"),
            Text("  loading samples" if p.in_qsl else ""),  # LoadGen waits meanwhile
            Text(f"  {rate:,.0f}/s"),
            Text(f"  {p.completed:,} done"),
            Text(f"  {p.elapsed_s:.0f} s"),
            Text(f"  {p.inflight_batches} batches in flight"),
            Text(f"  {p.queued:,} queued"),
        ]
        line = Text()
        for piece in pieces:
            if line.cell_len + piece.cell_len > width - 1:
                break
            line += piece
        return line

    def update(self, p) -> None:
        """Show a :class:`~raybench.actors.loadgen.Progress` snapshot."""
        if self.live is not None:
            self.live.update(self.line(p, self.out.width))


def _verdicts(report):
    """The verdict of each performance test of ``report`` (None for accuracy tests)."""
    return [explain(t.directory) if t.summary is not None and not t.accuracy else None
            for t in report.tests]


LABEL = 11  # indent, label and gap of a test's lines: "  results  "


def _lines(rows: list[tuple[str, str]]) -> Padding:
    """Labelled lines, indented; a long value wraps under itself, a label shows once."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, width=LABEL - 4)  # "LoadGen", "results"
    grid.add_column(overflow="fold")
    previous = None
    for label, value in rows:
        grid.add_row("" if label == previous else label, value)
        previous = label
    return Padding(grid, (0, 0, 0, 2))


def print_summary(report) -> None:
    """One screen: per test the result and why, the headline metric, latencies, where."""
    prepared = report.prepared
    request = prepared.request
    console.rule(f"{request.benchmark} / {request.scenario} on {prepared.system.id}")
    for test, verdict in zip(report.tests, _verdicts(report)):
        o = test.outcome
        rows: list[tuple[str, str]] = []
        if test.accuracy:
            a = test.accuracy
            result = PASSED[bool(a.passed)]
            console.print(f"[bold]{test.mode}[/bold]  {result}  {escape(a.metric)} {a.value:.4f}")
            rows.append(("target", f"{a.required_fraction * 100:g}% of fp32 {a.fp32} = "
                                   f"{a.fp32 * a.required_fraction:.4f}"))
        else:
            result = VERDICT.get(verdict.valid, "no result")
            console.print(f"[bold]{test.mode}[/bold]  {result}  "
                          + (escape(str(verdict.headline)) if verdict.headline else ""))
            rows += [("[red]why[/red]", escape(problem)) for problem in verdict.problems]
            rows += [("note", escape(note)) for note in verdict.notes]
            rows += [("LoadGen", escape(advice)) for advice in verdict.advice]
            pct = ", ".join(f"p{float(p):g} {ms_text(verdict.percentiles[p] / 1e6)}"
                            for p in PERCENTILES if p in verdict.percentiles)
            if pct:
                rows.append(("latency", f"{pct} ms"))
        rows.append(("samples", f"{o.completed:,} in {o.batches:,} batches, {o.retried} retried"))
        rows.append(("results", escape(fold(str(test.directory), console.width - LABEL))))
        console.print(_lines(rows))
    settings = prepared.settings
    console.print(f"rules: MLPerf Inference {settings.round}")
    if settings.overridden:
        console.print("[yellow]overridden, so not a valid submission run:[/yellow] "
                      + "; ".join(settings.overridden))
    if prepared.tuned:
        console.print("tuned: " + "; ".join(prepared.tuned))


def run_json(report) -> dict:
    """The run as plain data (``raybench run --json``)."""
    prepared, request = report.prepared, report.prepared.request
    tests = []
    for test, verdict in zip(report.tests, _verdicts(report)):
        o = test.outcome
        entry = {"mode": test.mode, "directory": str(test.directory),
                 "samples": o.completed, "batches": o.batches, "retried": o.retried,
                 "wall_s": round(o.wall_s, 3)}
        if verdict is not None:
            h = verdict.headline
            entry.update(valid=verdict.valid, headline=h and dataclasses.asdict(h),
                         problems=verdict.problems, advice=verdict.advice, notes=verdict.notes,
                         latency_ms={f"p{float(p):g}": ns / 1e6
                                     for p, ns in verdict.percentiles.items()})
        if test.accuracy:
            a = test.accuracy
            entry["accuracy"] = {"metric": a.metric, "value": a.value, "fp32": a.fp32,
                                 "target": a.fp32 * a.required_fraction, "passed": a.passed}
        tests.append(entry)
    return {
        "benchmark": request.benchmark.value, "scenario": request.scenario.value,
        "mode": prepared.mode.value, "system": prepared.system.id,
        "engine": request.engine.value, "engines": prepared.engines,
        "engine_info": report.engine_info, "rules_round": prepared.settings.round,
        "submittable": report.submittable, "overridden": prepared.settings.overridden,
        "tuned": prepared.tuned, "tests": tests,
    }
