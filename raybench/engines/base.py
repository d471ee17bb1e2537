"""The interface every inference engine implements."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
from pydantic import Field

from raybench.config.models import SimLatency, Strict


class EngineOptions(Strict):
    """What an engine needs to build itself; plain data, so it travels through Ray."""

    model: Optional[Path] = None
    batch_size: int = Field(default=1, ge=1)
    precision: str = "fp32"
    threads: Optional[int] = Field(default=None, ge=1)
    copy_streams: int = Field(default=1, ge=1)
    inference_streams: int = Field(default=1, ge=1)
    use_graphs: bool = False
    sim: Optional[SimLatency] = None
    cache_dir: Optional[Path] = None
    # what GPU engines check and key their caches on
    system: Optional[str] = None
    accelerator: Optional[str] = None
    benchmark: Optional[str] = None
    device: str = "cuda"  # torch: "cpu" on a host without GPUs
    workspace_mb: int = Field(default=4096, ge=1)  # TensorRT builder workspace
    calibration: Optional[Path] = None  # int8: .npy samples (a directory or a list file)


class Engine(abc.ABC):
    """Runs batches of one benchmark's model.

    Engines with ``needs_data`` run :meth:`run` on model feeds and return the outputs;
    engines without it (``null``, ``sim``) only account for time in :meth:`run_count`
    and produce no outputs, so they cannot serve accuracy runs.
    """

    name: ClassVar[str]
    needs_data: ClassVar[bool] = True
    concurrent: ClassVar[bool] = False  # run() may be called from several threads at once
    # an engine whose SingleStream latency is its own on every system (null: the harness's)
    # replaces the system's expected latency with it
    single_stream_latency_ns: ClassVar[Optional[int]] = None

    def __init__(self, options: EngineOptions):
        self.options = options
        self.input_types: dict[str, Optional[type]] = {}  # model input name -> numpy dtype

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch and return every output by name."""
        raise NotImplementedError(f"engine {self.name!r} runs without data")

    def run_count(self, count: int) -> None:
        """Process a batch of ``count`` samples without data (null and sim engines)."""
        raise NotImplementedError(f"engine {self.name!r} needs data")
