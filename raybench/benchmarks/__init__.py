"""Registry of benchmarks: a benchmark id maps to the class of its model."""

from __future__ import annotations

import importlib

from raybench.benchmarks.base import Benchmark
from raybench.config.names import check_benchmark, model_of

# model name -> "module:Class"; modules are imported on first use.
_REGISTRY = {
    "resnet50": "raybench.benchmarks.resnet50:ResNet50",
    "ssd-mobilenet": "raybench.benchmarks.ssd_mobilenet:SsdMobileNet",
    "ssd-resnet34": "raybench.benchmarks.ssd_resnet34:SsdResNet34",
    "3d-unet": "raybench.benchmarks.unet3d:Unet3d",
    "bert": "raybench.benchmarks.bert:Bert",
    "dlrm": "raybench.benchmarks.dlrm:Dlrm",
    "rnnt": "raybench.benchmarks.rnnt:Rnnt",
}


def get_benchmark(benchmark_id: str) -> Benchmark:
    """Instantiate the benchmark for an id such as 'resnet50' or 'bert-99.9'.

    Raises:
        ConfigError: Unknown benchmark id, or one not implemented yet.
    """
    from raybench.errors import ConfigError, choices

    check_benchmark(benchmark_id)
    target = _REGISTRY.get(model_of(benchmark_id))
    if target is None:
        raise ConfigError(
            f"benchmark {choices(benchmark_id, implemented())} is not implemented yet"
        )
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()


def implemented() -> list[str]:
    """Benchmark model names that have an implementation."""
    return sorted(_REGISTRY)
