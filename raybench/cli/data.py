"""`raybench data`: generate stand-in datasets and models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from raybench.cli.common import console, handle_errors

app = typer.Typer(help="Stand-in datasets and models in the real MLPerf layouts.",
                  no_args_is_help=True)


@app.command("synth")
@handle_errors
def synth(
    benchmark: Annotated[str, typer.Argument(help="Benchmark id, e.g. resnet50 or bert-99.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write.")],
    count: Annotated[Optional[int], typer.Option(
        min=1, help="Number of samples (default: the stand-in's own).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
) -> None:
    """Write a stand-in in NVIDIA's v1.0 tree: OUT/build/preprocessed_data (the data
    directory), OUT/data_maps and an ONNX model with the real signature under
    OUT/build/models."""
    from raybench.standins import build_standin

    standin = build_standin(benchmark, out, count, seed)
    console.print(f"model    {standin.model}\ndata-dir {standin.data_dir}")
