"""What every command shares: turning raybench errors into one line and exit code 2."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from raybench.errors import RaybenchError

console = Console()
err_console = Console(stderr=True)


def handle_errors(func):
    """Decorate a command so a RaybenchError prints one line and exits with code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RaybenchError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"Error: {message}", file=sys.stderr)
            raise typer.Exit(code=2) from None

    return wrapper
