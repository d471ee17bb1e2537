"""The raybench command line: one typer sub-app per command group."""

from __future__ import annotations

import logging
import sys

import typer
from typer.core import TyperGroup

from raybench import __version__
from raybench.cli import common, data, peak, report, run, submission, sweep, systems, twins


# The click exception typer raises for usage errors (typer may vendor click).
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(TyperGroup):
    """The top-level group: a usage error (a bad option value, an unknown option) is one
    line naming the value and what is allowed, with exit code 2, like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            if not standalone_mode:
                raise
            print(f"Error: {' '.join(exc.format_message().split())}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            print("Aborted.", file=sys.stderr)
            sys.exit(130)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _version(value: bool) -> None:
    if value:
        typer.echo(f"raybench {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="raybench",
    cls=OneLineErrors,
    help="MLPerf Inference on Ray: LoadGen actor, dynamic batching, GPU-pinned engines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print raybench's version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the results."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show Ray's own log "
                                 "records and its workers' output (by default Ray's records "
                                 "go to a log file whose path is printed)."),
) -> None:
    """MLPerf Inference on Ray: LoadGen actor, dynamic batching, GPU-pinned engines."""
    if quiet and verbose:
        raise typer.BadParameter("choose one of --quiet and --verbose")
    common.Verbosity.set(quiet, verbose)


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
