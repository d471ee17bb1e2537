"""NVIDIA's v1.0 code-root tree that every stand-in is written in, and ONNX helpers.

A stand-in directory is laid out like the directory NVIDIA's scripts run in::

    DIR/build/preprocessed_data/...       what ``--data-dir`` points at
    DIR/build/models/<model dir>/<file>   the model, where NVIDIA keeps its models
    DIR/build/data/...                    raw annotations NVIDIA reads from build/data
    DIR/data_maps/<dataset>/val_map.txt   the sample lists NVIDIA ships at the code root
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from raybench.benchmarks.base import TensorSpec

DATA_DIR = Path("build/preprocessed_data")
MODELS_DIR = Path("build/models")
RAW_DIR = Path("build/data")
MAPS_DIR = Path("data_maps")
OPSET = 17


def write_map(root: Path, dataset: str, lines: Iterable[str]) -> Path:
    """Write ``DIR/data_maps/<dataset>/val_map.txt``, one line per sample."""
    path = Path(root) / MAPS_DIR / dataset / "val_map.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def save_model(graph, path: Path) -> Path:
    """Write an ONNX graph as a model with a fixed opset (IR version ORT accepts)."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def value_info(spec: TensorSpec, batch: str = "N"):
    """An ONNX value_info for a TensorSpec, the None dims named ``batch``."""
    from onnx import helper

    elem = helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype))
    dims = [batch if d is None else d for d in spec.shape]
    return helper.make_tensor_value_info(spec.name, elem, dims)
