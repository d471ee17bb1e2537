"""Stand-in models and datasets in NVIDIA's v1.0 tree: generated once, cached, never
half-written (tests and the embedded default run).

``build_standin(benchmark_id, out)`` writes ``out/build/preprocessed_data`` (the data
directory), ``out/data_maps`` and the ONNX model under ``out/build/models``;
``cached_standin`` keeps one per benchmark under :func:`cache_dir`;
``torchscript_standin`` turns the resnet50 ONNX stand-in into the torch engine's ``.pt``.
"""

from raybench.standins.cache import (Standin, build_standin, cache_dir, cached_standin,
                                     read_standin)
from raybench.standins.torchscript import torchscript_standin


__all__ = ["Standin", "build_standin", "cache_dir", "cached_standin", "read_standin",
           "torchscript_standin"]
