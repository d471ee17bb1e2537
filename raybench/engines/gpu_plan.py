"""CPU-side planning shared by the GPU engines (``torch``, ``tensorrt``).

Everything here is plain Python and numpy: it imports neither torch nor tensorrt, so it
is unit tested without a GPU. The engines call it for:

* precision mapping (``fp32``/``fp16``/``int8`` to the compute dtype each engine uses);
* batch sizes: TensorRT optimisation profiles and CUDA-graph capture sizes derived from
  the configured batch size, and the padded size a partial batch runs at;
* buffer byte sizes from a benchmark's :class:`~raybench.benchmarks.base.TensorSpec`;
* engine cache keys and paths (per system, per benchmark) and the workspace size;
* int8 calibration sets (which ``.npy`` files, grouped into batches).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from raybench.errors import ConfigError, EngineError, choices

PRECISIONS = ("fp32", "fp16", "int8")

# Default TensorRT builder workspace; RAYBENCH_TRT_WORKSPACE_MB overrides it.
DEFAULT_WORKSPACE_MB = 4096
WORKSPACE_ENV = "RAYBENCH_TRT_WORKSPACE_MB"
CALIBRATION_ENV = "RAYBENCH_CALIBRATION"
DEFAULT_CALIBRATION_COUNT = 500  # MLPerf v1.0 resnet50 calibration list size


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


# ----------------------------------------------------------------------------- caching


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (GPU names, system ids)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "unknown"


@dataclass(frozen=True)
class PlanKey:
    """What a serialised TensorRT engine depends on; any change means a rebuild."""

    onnx_sha256: str
    precision: str
    batch_sizes: tuple[int, ...]
    trt_version: str
    gpu_name: str

    def digest(self) -> str:
        """A short stable hash of the key."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def file_name(self) -> str:
        """E.g. ``fp16-b1-64-3f9a....plan``."""
        sizes = "-".join(str(b) for b in self.batch_sizes)
        return f"{self.precision}-b{sizes}-{self.digest()}.plan"

    def to_json(self) -> str:
        """The key as JSON, written beside the plan so a mismatch can be explained."""
        return json.dumps(asdict(self), sort_keys=True)


def make_key(onnx: Path, precision: str, batch_sizes: Iterable[int], trt_version: str,
             gpu_name: str) -> PlanKey:
    """The cache key of an engine built from ``onnx``."""
    return PlanKey(file_sha256(Path(onnx)), check_precision(precision),
                   tuple(sorted(set(int(b) for b in batch_sizes))), str(trt_version),
                   str(gpu_name))


def default_cache_root() -> Path:
    """``$RAYBENCH_CACHE/engines`` (``~/.cache/raybench/engines`` by default)."""
    root = os.environ.get("RAYBENCH_CACHE", Path.home() / ".cache" / "raybench")
    return Path(root) / "engines"


def engine_dir(cache_dir: Optional[Path], system: str, benchmark: str) -> Path:
    """Where one system's engines for one benchmark live.

    Args:
        cache_dir: ``EngineOptions.cache_dir``: when set it is already the per-system,
            per-benchmark directory and is used as it is.
        system: System id (or GPU name when the engine does not know the system).
        benchmark: Benchmark id (or the model's stem).
    """
    if cache_dir is not None:
        return Path(cache_dir)
    return default_cache_root() / slug(system) / slug(benchmark)


def plan_path(directory: Path, key: PlanKey) -> Path:
    """The serialised engine's path for ``key`` under ``directory``."""
    return Path(directory) / key.file_name()


def calibration_cache_path(directory: Path, onnx_sha256: str, batch: int) -> Path:
    """The reusable int8 calibration cache of one ONNX model (independent of the GPU:
    TensorRT calibration caches are portable across devices of one version)."""
    return Path(directory) / f"calibration-{onnx_sha256[:16]}-b{batch}.cache"


def explain_mismatch(found: dict, want: PlanKey) -> Optional[str]:
    """One-line reason a serialised engine's key ``found`` does not fit ``want``, or None.

    Only the GPU and TensorRT version make an engine unusable (as opposed to merely
    stale); those are the mismatches the engines report as errors.
    """
    if found.get("gpu_name") != want.gpu_name:
        return (f"engine was built for GPU {found.get('gpu_name')!r}, this is "
                f"{want.gpu_name!r}")
    if found.get("trt_version") != want.trt_version:
        return (f"engine was built with TensorRT {found.get('trt_version')}, this is "
                f"TensorRT {want.trt_version}")
    return None


def workspace_bytes(value_mb: Optional[int] = None) -> int:
    """The TensorRT builder workspace in bytes.

    Args:
        value_mb: From configuration; otherwise ``$RAYBENCH_TRT_WORKSPACE_MB`` or
            :data:`DEFAULT_WORKSPACE_MB`.

    Raises:
        ConfigError: A value that is not a positive integer.
    """
    raw = value_mb if value_mb is not None else os.environ.get(WORKSPACE_ENV, DEFAULT_WORKSPACE_MB)
    try:
        mb = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{WORKSPACE_ENV}={raw!r} is not a whole number of MiB") from None
    if mb < 1:
        raise ConfigError(f"TensorRT workspace must be >= 1 MiB, found {mb}")
    return mb << 20


def gpu_matches_system(gpu_name: str, accelerator: Optional[str]) -> bool:
    """Whether a GPU's name (``NVIDIA H200``) fits a system file's ``accelerator``
    (``H200``, ``A100-SXM-80GB``); a system without one (CPU, simulated) fits any GPU."""
    if not accelerator:
        return True
    gpu = re.sub(r"[^a-z0-9]", "", gpu_name.lower())
    model = re.sub(r"[^a-z0-9]", "", accelerator.lower().split("-")[0])
    return model in gpu


# ----------------------------------------------------------------------------- calibration


def calibration_files(source: Optional[Path], model: Optional[Path],
                      count: int = DEFAULT_CALIBRATION_COUNT) -> list[Path]:
    """The ``.npy`` samples to calibrate int8 with.

    ``source`` is a directory (searched recursively) or a text file listing one ``.npy``
    path per line (relative to the list's directory); without it ``$RAYBENCH_CALIBRATION``
    is used, then a ``preprocessed_data`` directory beside the model (the stand-in layout).
    The first ``count`` files in sorted order are used.

    Raises:
        EngineError: No calibration samples found.
    """
    if source is None and os.environ.get(CALIBRATION_ENV):
        source = Path(os.environ[CALIBRATION_ENV])
    if source is None and model is not None and (Path(model).parent / "preprocessed_data").is_dir():
        source = Path(model).parent / "preprocessed_data"
    files: list[Path] = []
    if source is not None and Path(source).is_dir():
        files = sorted(Path(source).rglob("*.npy"))
    elif source is not None and Path(source).is_file():
        base = Path(source).parent
        for line in Path(source).read_text().splitlines():
            name = line.split()[0] if line.strip() else ""
            if name:
                path = base / name
                files.append(path if path.suffix == ".npy" else path.with_suffix(".npy"))
    if not files:
        raise EngineError(f"int8 needs a calibration set: set {CALIBRATION_ENV} to a "
                          "directory of .npy samples (or a list of them), or use fp16")
    return files[:count]


def calibration_batches(files: Sequence[Path], batch: int) -> list[list[Path]]:
    """``files`` in batches of ``batch`` (the last one may be shorter)."""
    if batch < 1:
        raise ConfigError(f"calibration batch must be >= 1, found {batch}")
    return [list(files[i:i + batch]) for i in range(0, len(files), batch)]


def benchmark_of_model(model: Optional[Path]) -> str:
    """The benchmark a model file belongs to, by its file name (the cache directory's
    name); the file's stem when it is not one of the known model file names."""
    if model is None:
        return "unknown"
    known = {
        "resnet50_v1.onnx": "resnet50",
    }
    try:
        from raybench.benchmarks import _REGISTRY, get_benchmark

        for name in _REGISTRY:
            try:
                known.setdefault(get_benchmark(name).model_filename, name)
            except Exception:  # a benchmark not importable here: skip it
                continue
    except ImportError:
        pass
    return known.get(Path(model).name, Path(model).stem)


# ----------------------------------------------------------------------------- engines


def dims_to_shape(dims: Sequence[int]) -> tuple:
    """TensorRT dims (``-1`` for dynamic) as a TensorSpec-style shape (``None``)."""
    return tuple(None if int(d) < 0 else int(d) for d in dims)


def profile_index(slot: int, profile: int, per_slot: int) -> int:
    """The engine profile index of ``profile`` in execution-context slot ``slot``.

    Every inference stream gets its own copy of the profiles, as NVIDIA's harness does,
    so concurrent contexts never share one.
    """
    return slot * per_slot + profile


@dataclass(frozen=True)
class SystemHints:
    """What a GPU engine knows of the run beyond :class:`EngineOptions`' common fields.

    Read from optional ``EngineOptions`` fields when a caller sets them, else from the
    environment (``RAYBENCH_SYSTEM``, ``RAYBENCH_ACCELERATOR``, ``RAYBENCH_BENCHMARK``,
    :data:`WORKSPACE_ENV`, :data:`CALIBRATION_ENV`).
    """

    system: Optional[str]
    accelerator: Optional[str]
    benchmark: str
    workspace: int
    calibration: Optional[Path]


def system_hints(options) -> SystemHints:
    """:class:`SystemHints` for an ``EngineOptions``-like object."""

    def pick(attr: str, env: str):
        value = getattr(options, attr, None)
        return value if value is not None else os.environ.get(env) or None

    calibration = pick("calibration", CALIBRATION_ENV)
    benchmark = pick("benchmark", "RAYBENCH_BENCHMARK") or benchmark_of_model(
        getattr(options, "model", None))
    return SystemHints(
        system=pick("system", "RAYBENCH_SYSTEM"),
        accelerator=pick("accelerator", "RAYBENCH_ACCELERATOR"),
        benchmark=benchmark,
        workspace=workspace_bytes(getattr(options, "workspace_mb", None)),
        calibration=Path(calibration) if calibration else None,
    )
