"""Registry of inference engines; heavy imports stay inside each engine module."""

from __future__ import annotations

import importlib
import importlib.util

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


# engine name -> (module it imports when it runs -> the package that installs it, the extra)
_NEEDS = {
    "onnxruntime": ({"onnxruntime": "onnxruntime"}, None),
    "torch": ({"torch": "torch"}, "torch"),
    "tensorrt": ({"tensorrt": "tensorrt", "cuda": "cuda-python"}, "gpu"),
}


def check_available(name: str) -> None:
    """Check that the packages engine ``name`` runs with are installed here, without
    importing them.

    Raises:
        ConfigError: One line naming the missing packages and the extra that installs them.
    """
    name = str(getattr(name, "value", name))
    modules, extra = _NEEDS.get(name, ({}, None))
    missing = [pkg for module, pkg in modules.items() if importlib.util.find_spec(module) is None]
    if missing:
        how = (f"install raybench's {extra!r} extra: pip install -e '.[{extra}]'" if extra
               else f"pip install {' '.join(missing)}")
        raise ConfigError(f"engine {name!r} needs {' and '.join(missing)}, which is not "
                          f"installed here ({how})")


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
