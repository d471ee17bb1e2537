"""Stand-in models and datasets: generated once, cached, never half-written."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from raybench.benchmarks import get_benchmark
from raybench.benchmarks.base import Standin
from raybench.config.names import model_of

log = logging.getLogger(__name__)

MARKER = "standin.complete.json"


def cache_dir() -> Path:
    """Where cached stand-ins live: $RAYBENCH_CACHE, else ~/.cache/raybench."""
    return Path(os.environ.get("RAYBENCH_CACHE", Path.home() / ".cache" / "raybench"))


def build_standin(benchmark_id: str, out: Path, count: int | None = None, seed: int = 0) -> Standin:
    """Generate a stand-in into ``out`` atomically.

    The files are written to a temporary sibling directory that is renamed into place
    once complete, so an interrupted run never leaves a directory that looks valid.

    Args:
        benchmark_id: Benchmark id.
        out: Directory to create; it must not exist or be empty.
        count: Number of samples; the benchmark's default when None.
        seed: Generator seed.
    """
    from raybench.errors import ConfigError

    benchmark = get_benchmark(benchmark_id)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    count = count or benchmark.standin_count
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        standin = benchmark.synth(tmp, count, seed)
        (tmp / MARKER).write_text(json.dumps({
            "benchmark": benchmark.name, "count": count, "seed": seed,
            "model": standin.model.relative_to(tmp).as_posix(),
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
    """The model and data directory of a complete stand-in directory."""
    meta = json.loads((directory / MARKER).read_text())
    return Standin(model=directory / meta["model"], data_dir=directory / meta["data_dir"])


def cached_standin(benchmark_id: str) -> Standin:
    """The cached default stand-in of a benchmark, generated on first use.

    Runs started at the same time share the work: one generates (holding a lock next to
    the cache entry), the others wait for it and read its result.
    """
    import fcntl

    directory = cache_dir() / "standins" / model_of(benchmark_id)
    if (directory / MARKER).is_file():
        return read_standin(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (directory / MARKER).is_file():  # generated while this run waited
            return read_standin(directory)
        if directory.exists():
            shutil.rmtree(directory)  # an incomplete leftover
        log.info("generating the %s stand-in in %s", benchmark_id, directory)
        return build_standin(benchmark_id, directory)
