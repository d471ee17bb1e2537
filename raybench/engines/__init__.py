"""Registry of inference engines; heavy imports stay inside each engine module."""

from __future__ import annotations

import importlib

from raybench.engines.base import Engine, EngineOptions
from raybench.errors import ConfigError, choices

# engine name -> "module:Class"
_REGISTRY = {
    "onnxruntime": "raybench.engines.onnxruntime:OnnxRuntimeEngine",
    "null": "raybench.engines.null:NullEngine",
    "sim": "raybench.engines.sim:SimEngine",
    "torch": "raybench.engines.torch:TorchEngine",
    "tensorrt": "raybench.engines.tensorrt:TensorRTEngine",
}


def engine_names() -> list[str]:
    """Every registered engine name."""
    return sorted(_REGISTRY)


def engine_class(name: str) -> type[Engine]:
    """The class of engine ``name``.

    Raises:
        ConfigError: Unknown engine name.
    """
    target = _REGISTRY.get(name)
    if target is None:
        raise ConfigError(f"unknown engine {choices(name, engine_names())}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def create_engine(name: str, options: EngineOptions) -> Engine:
    """Build engine ``name`` with ``options``."""
    return engine_class(name)(options)
