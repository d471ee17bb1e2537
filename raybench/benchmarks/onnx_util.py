"""Small helpers for writing stand-in ONNX models and checking real ones."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import TensorSpec
from raybench.errors import ModelError

OPSET = 17


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


def check_signature(path: Path, inputs: Sequence[TensorSpec], benchmark: str) -> None:
    """Check that an ONNX model's graph inputs match a benchmark's inputs.

    Only names, element types and fixed dimensions are compared; a model may leave
    any dimension symbolic.

    Raises:
        ModelError: Missing file, unreadable model or a mismatching input.
    """
    import onnx
    from onnx import helper

    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    initializers = {t.name for t in model.graph.initializer}
    found = {i.name: i for i in model.graph.input if i.name not in initializers}
    want = ", ".join(s.describe() for s in inputs)
    for spec in inputs:
        info = found.get(spec.name)
        if info is None:
            raise ModelError(
                f"{path}: inputs {sorted(found)} do not match {benchmark} (expects {want})"
            )
        ttype = info.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(ttype.elem_type)).name
        dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
        shape_ok = len(dims) == len(spec.shape) and all(
            a is None or e is None or a == e for a, e in zip(dims, spec.shape)
        )
        if dtype != spec.dtype or not shape_ok:
            got = TensorSpec(spec.name, dtype, tuple(dims)).describe()
            raise ModelError(f"{path}: input {got} does not match {benchmark} (expects {want})")
