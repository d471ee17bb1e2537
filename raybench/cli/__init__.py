"""The raybench command line: one typer sub-app per command group."""

from __future__ import annotations

import logging

import typer

from raybench.cli import data, peak, report, run, submission, sweep, systems, twins

app = typer.Typer(
    name="raybench",
    help="MLPerf Inference on Ray: LoadGen actor, dynamic batching, GPU-pinned engines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run.run_command)
app.add_typer(systems.app, name="systems")
app.add_typer(data.app, name="data")
app.command("twins")(twins.twins_command)
app.command("sweep")(sweep.sweep_command)
app.command("peak")(peak.peak_command)
app.command("report")(report.report_command)
app.add_typer(submission.app, name="submission")


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
