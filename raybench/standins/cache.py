"""Building stand-ins: one module per benchmark, written atomically, cached once.

Each stand-in module has ``synth(root, count, seed) -> Standin`` writing NVIDIA's tree
(:mod:`raybench.standins.tree`) under ``root`` and ``COUNT``, its default sample count.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from raybench.config.names import check_benchmark, model_of

log = logging.getLogger(__name__)

MARKER = "standin.complete.json"
LAYOUT = 2  # 2: NVIDIA's code-root tree; a cached stand-in of another layout is rebuilt

# model name -> stand-in module
_MODULES = {
    "resnet50": "raybench.standins.resnet50",
    "ssd-mobilenet": "raybench.standins.ssd_mobilenet",
    "ssd-resnet34": "raybench.standins.ssd_resnet34",
    "bert": "raybench.standins.bert",
    "dlrm": "raybench.standins.dlrm",
    "rnnt": "raybench.standins.rnnt",
    "3d-unet": "raybench.standins.unet3d",
}


@dataclass(frozen=True)
class Standin:
    """Where a generated stand-in put its model and its data directory."""

    model: Path
    data_dir: Path


def cache_dir() -> Path:
    """Where cached stand-ins live: $RAYBENCH_CACHE, else ~/.cache/raybench."""
    return Path(os.environ.get("RAYBENCH_CACHE", Path.home() / ".cache" / "raybench"))


def _module(benchmark_id: str):
    from raybench.errors import ConfigError, choices

    check_benchmark(benchmark_id)
    name = _MODULES.get(model_of(benchmark_id))
    if name is None:
        raise ConfigError(f"no stand-in for {choices(benchmark_id, sorted(_MODULES))}")
    return importlib.import_module(name)


def build_standin(benchmark_id: str, out: Path, count: Optional[int] = None,
                  seed: int = 0) -> Standin:
    """Generate a stand-in in NVIDIA's tree under ``out``, atomically.

    The files are written to a temporary sibling directory that is renamed into place
    once complete, so an interrupted run never leaves a directory that looks valid.

    Args:
        benchmark_id: Benchmark id.
        out: Directory to create; it must not exist or be empty.
        count: Number of samples; the stand-in's default when None.
        seed: Generator seed.

    Raises:
        ConfigError: Unknown benchmark, a count below 1, or ``out`` not empty.
    """
    from raybench.errors import ConfigError

    module = _module(benchmark_id)
    count = module.COUNT if count is None else count
    if count < 1:
        raise ConfigError(f"stand-in sample count must be >= 1, found {count}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"output directory {out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        standin = module.synth(tmp, count, seed)
        (tmp / MARKER).write_text(json.dumps({
            "benchmark": model_of(benchmark_id), "count": count, "seed": seed,
            "layout": LAYOUT, "model": standin.model.relative_to(tmp).as_posix(),
            "data_dir": standin.data_dir.relative_to(tmp).as_posix(),
        }))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_standin(out)


def read_standin(directory: Path) -> Standin:
    """The model and data directory of a complete stand-in directory.

    Raises:
        DataError: ``directory`` holds no complete stand-in.
    """
    from raybench.errors import DataError

    directory = Path(directory)
    try:
        meta = json.loads((directory / MARKER).read_text())
        return Standin(model=directory / meta["model"], data_dir=directory / meta["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{directory}: not a complete stand-in (no valid {MARKER})") from None


def _layout(directory: Path) -> Optional[int]:
    try:
        return json.loads((directory / MARKER).read_text()).get("layout")
    except (OSError, ValueError, AttributeError):
        return None


def cached_standin(benchmark_id: str) -> Standin:
    """The cached default stand-in of a benchmark, generated on first use.

    Each layout has its own cache folder, so raybench versions of different layouts
    share a cache. Runs started at the same time share the work: one generates (holding
    a lock next to the cache entry), the others wait for it and read its result.
    """
    import fcntl

    directory = cache_dir() / "standins" / f"layout-{LAYOUT}" / model_of(benchmark_id)
    if _layout(directory) == LAYOUT:
        return read_standin(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _layout(directory) == LAYOUT:  # generated while this run waited
            return read_standin(directory)
        if directory.exists():
            shutil.rmtree(directory)  # an incomplete leftover
        log.info("generating the %s stand-in in %s", benchmark_id, directory)
        return build_standin(benchmark_id, directory)
