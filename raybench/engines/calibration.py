"""int8 calibration sets: which ``.npy`` samples, grouped into batches."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from raybench.errors import ConfigError, EngineError

DEFAULT_CALIBRATION_COUNT = 500  # MLPerf v1.0 resnet50 calibration list size


def calibration_files(source: Optional[Path], model: Optional[Path],
                      count: int = DEFAULT_CALIBRATION_COUNT) -> list[Path]:
    """The ``.npy`` samples to calibrate int8 with.

    ``source`` is a directory (searched recursively) or a text file listing one ``.npy``
    path per line (relative to the list's directory); without it, a ``preprocessed_data``
    directory beside the model (the stand-in layout).
    The first ``count`` files in sorted order are used.

    Raises:
        EngineError: No calibration samples found.
    """
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
        raise EngineError("int8 needs a calibration set: pass --calibration with a directory "
                          "of .npy samples (or a list of them), or use fp16")
    return files[:count]


def calibration_batches(files: Sequence[Path], batch: int) -> list[list[Path]]:
    """``files`` in batches of ``batch`` (the last one may be shorter)."""
    if batch < 1:
        raise ConfigError(f"calibration batch must be >= 1, found {batch}")
    return [list(files[i:i + batch]) for i in range(0, len(files), batch)]
