"""`raybench data`: generate stand-in datasets and models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raybench.cli.common import console, handle_errors

app = typer.Typer(help="Stand-in datasets and models in the real MLPerf layouts.",
                  no_args_is_help=True)


@app.command("synth")
@handle_errors
def synth(
    benchmark: Annotated[str, typer.Argument(help="Benchmark id, e.g. resnet50 or bert-99.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write.")],
    count: Annotated[int, typer.Option(min=1, help="Number of samples (default: the benchmark's own).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
) -> None:
    """Write a stand-in dataset in the real layout and an ONNX model with the real signature."""
    from raybench.standins import build_standin

    standin = build_standin(benchmark, out, count or None, seed)
    console.print(f"model    {standin.model}\ndata-dir {standin.data_dir}")
