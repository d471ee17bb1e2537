"""Batches, buffers and precisions of the GPU engines (``torch``, ``tensorrt``).

Plain Python and numpy: it imports neither torch nor tensorrt, so it is unit tested
without a GPU. The engines call it for precision mapping (``fp32``/``fp16``/``int8`` to
the compute dtype each engine uses); batch sizes (TensorRT optimisation profiles and
CUDA-graph capture sizes derived from the configured batch size, and the padded size a
partial batch runs at); buffer byte sizes from a tensor's shape. Engine caching is in
:mod:`raybench.engines.engine_cache`, int8 calibration sets in
:mod:`raybench.engines.calibration`.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

from raybench.errors import ConfigError, EngineError, choices

PRECISIONS = ("fp32", "fp16", "int8")



def check_precision(precision: str) -> str:
    """Return ``precision`` when it is one the GPU engines know.

    Raises:
        ConfigError: Unknown precision.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {choices(precision, PRECISIONS)}")
    return precision


def torch_compute_dtype(precision: str) -> str:
    """The torch dtype name the torch engine computes in for ``precision``.

    PyTorch has no general int8 inference path for arbitrary TorchScript, so ``int8``
    (what NVIDIA's configs ask of TensorRT) runs in fp16, the nearest precision that
    keeps the tensor cores busy.
    """
    return "float32" if check_precision(precision) == "fp32" else "float16"


def trt_flags(precision: str) -> list[str]:
    """TensorRT ``BuilderFlag`` names for ``precision`` (int8 keeps fp16 as fallback)."""
    return {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}[check_precision(precision)]


# ----------------------------------------------------------------------------- batches


def profile_batches(batch_sizes: Iterable[int]) -> list[tuple[int, int, int]]:
    """TensorRT optimisation profiles ``(min, opt, max)`` over the batch dimension.

    Each configured batch size gets one profile that is optimal at that size and covers
    every batch above the next smaller configured size, so any batch from 1 to the
    largest size has exactly one profile (:func:`choose_profile`).

    Raises:
        ConfigError: No batch size, or one below 1.
    """
    sizes = sorted(set(int(b) for b in batch_sizes))
    if not sizes or sizes[0] < 1:
        raise ConfigError(f"batch sizes must be >= 1, found {sizes}")
    profiles, low = [], 1
    for size in sizes:
        profiles.append((low, size, size))
        low = size + 1
    return profiles


def choose_profile(profiles: Sequence[tuple[int, int, int]], batch: int) -> int:
    """Index of the profile that runs a batch of ``batch`` samples.

    Raises:
        EngineError: The batch is larger than every profile.
    """
    for index, (low, _, high) in enumerate(profiles):
        if low <= batch <= high:
            return index
    raise EngineError(f"batch of {batch} exceeds the engine's largest batch size "
                      f"{profiles[-1][2] if profiles else 0}; rebuild with a larger batch_size")


def profile_shape(spec_shape: tuple, batch: int) -> tuple[int, ...]:
    """A TensorSpec shape with its ``None`` (batch) dimensions set to ``batch``."""
    return tuple(batch if d is None else int(d) for d in spec_shape)


def graph_batches(batch_size: int, limit: int = 8) -> list[int]:
    """Batch sizes to capture CUDA graphs at: powers of two below ``batch_size`` and
    ``batch_size`` itself, the largest ``limit`` of them (each graph holds memory)."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, found {batch_size}")
    sizes = {batch_size}
    power = 1
    while power < batch_size:
        sizes.add(power)
        power *= 2
    return sorted(sizes)[-limit:]


def padded_batch(batch: int, sizes: Sequence[int]) -> Optional[int]:
    """The smallest captured size holding ``batch`` samples, or None when none does."""
    fitting = [s for s in sizes if s >= batch]
    return min(fitting) if fitting else None


# ----------------------------------------------------------------------------- buffers


def tensor_nbytes(shape: tuple, dtype, batch: int) -> int:
    """Bytes of one tensor of ``shape`` (None = batch) and numpy ``dtype`` at ``batch``."""
    count = 1
    for dim in profile_shape(tuple(shape), batch):
        count *= dim
    return count * np.dtype(dtype).itemsize


def buffer_plan(specs, batch: int, dtypes: Optional[dict] = None) -> dict[str, int]:
    """Bytes to allocate per tensor for batches up to ``batch``.

    Args:
        specs: TensorSpecs (``name``, ``dtype``, ``shape``).
        batch: Largest batch.
        dtypes: Per-name dtype overrides (e.g. the engine's real binding types, or the
            host feed dtype such as int8 images cast on the GPU).
    """
    dtypes = dtypes or {}
    return {s.name: tensor_nbytes(s.shape, dtypes.get(s.name, s.dtype), batch) for s in specs}


# TensorRT DataType member name -> numpy dtype name (no tensorrt import needed)
TRT_TO_NUMPY = {
    "FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32",
    "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "BF16": "float32",
}


def numpy_dtype_of_trt(name: str) -> str:
    """The numpy dtype name of a TensorRT DataType member name (``DataType.HALF`` ok).

    Raises:
        EngineError: A type the engines do not handle.
    """
    key = str(name).rsplit(".", 1)[-1]
    if key not in TRT_TO_NUMPY:
        raise EngineError(f"TensorRT tensor type {name} is not supported by raybench")
    return TRT_TO_NUMPY[key]


def dims_to_shape(dims: Sequence[int]) -> tuple:
    """TensorRT dims (``-1`` for dynamic) as a TensorSpec-style shape (``None``)."""
    return tuple(None if int(d) < 0 else int(d) for d in dims)


def profile_index(slot: int, profile: int, per_slot: int) -> int:
    """The engine profile index of ``profile`` in execution-context slot ``slot``.

    Every inference stream gets its own copy of the profiles, as NVIDIA's harness does,
    so concurrent contexts never share one.
    """
    return slot * per_slot + profile
