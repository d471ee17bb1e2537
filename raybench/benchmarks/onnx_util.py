"""Checking a real ONNX model's inputs against a benchmark's signature."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import TensorSpec
from raybench.errors import ModelError


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
