"""The TensorRT engine cache: keys, paths and why a serialised engine does not fit.

A serialised engine depends on the ONNX model's bytes, the precision, the batch sizes,
the TensorRT version and the GPU; the cache keeps one directory per system and
benchmark under ``$RAYBENCH_CACHE/engines``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional

from raybench.engines.gpu_plan import check_precision


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


def gpu_matches_system(gpu_name: str, accelerator: Optional[str]) -> bool:
    """Whether a GPU's name (``NVIDIA H200``) fits a system file's ``accelerator``
    (``H200``, ``A100-SXM-80GB``); a system without one (CPU, simulated) fits any GPU."""
    if not accelerator:
        return True
    gpu = re.sub(r"[^a-z0-9]", "", gpu_name.lower())
    model = re.sub(r"[^a-z0-9]", "", accelerator.lower().split("-")[0])
    return model in gpu
