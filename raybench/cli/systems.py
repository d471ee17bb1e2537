"""`raybench systems`: list, show and detect systems (filled in by issue 3)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Systems under test: list, show, detect.", no_args_is_help=True)
