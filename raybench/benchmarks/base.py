"""The interface every benchmark implements: dataset, model signature, accuracy, stand-in."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from raybench.errors import DataError


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, numpy dtype name and shape (None = any size)."""

    name: str
    dtype: str
    shape: tuple

    def describe(self) -> str:
        """Human form, e.g. ``input_tensor:0 float32 [N,3,224,224]``."""
        dims = ",".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype} [{dims}]"


@dataclass(frozen=True)
class Standin:
    """Where a generated stand-in put its model and its data directory."""

    model: Path
    data_dir: Path


class Dataset(abc.ABC):
    """The samples of one benchmark in a data directory: the store behind LoadGen's QSL.

    Constructing a dataset checks the layout cheaply (files listed, annotation files
    parsed). Subclasses read and check one sample in :meth:`read`; this base keeps the
    loaded set: :meth:`load` and :meth:`unload` follow LoadGen's QSL calls, and
    :meth:`samples` loads whatever a batch needs that is not loaded yet (an engine
    restarted by Ray has lost its loaded set).
    """

    @property
    @abc.abstractmethod
    def total_count(self) -> int:
        """Number of samples in the dataset."""

    def read(self, index: int) -> Any:
        """Read and check sample ``index`` from disk.

        Raises:
            DataError: A file is missing, truncated or has the wrong shape or dtype.
        """
        raise NotImplementedError

    @property
    def _in_memory(self) -> dict[int, Any]:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = self.__dict__["_cache"] = {}
        return cache

    def load(self, indices: Sequence[int]) -> None:
        """Read the samples ``indices`` into memory (see :meth:`read`)."""
        cache = self._in_memory
        for i in indices:
            if i not in cache:
                cache[i] = self.read(i)

    def unload(self, indices: Sequence[int]) -> None:
        """Drop the samples ``indices`` from memory."""
        cache = self._in_memory
        for i in indices:
            cache.pop(i, None)

    def samples(self, indices: Sequence[int]) -> list:
        """The loaded samples of a batch, in batch order, loading any that are missing."""
        cache = self._in_memory
        missing = [i for i in indices if i not in cache]
        if missing:
            self.load(missing)
        return [cache[i] for i in indices]

    @abc.abstractmethod
    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Model inputs for a batch of samples, keyed by input name.

        Arrays keep the stored dtype; engines cast to the model's.
        """


class Benchmark(abc.ABC):
    """One MLPerf benchmark model: signature, data, post-processing, metric, stand-in.

    The metric's name and FP32 reference value are rules of the round
    (``raybench/rules/<round>.yaml``), not of the implementation.
    """

    name: ClassVar[str]  # model name, as in the rules and LoadGen's config files
    model_filename: ClassVar[str]  # file name of the real model (and of the stand-in)
    inputs: ClassVar[tuple[TensorSpec, ...]]
    outputs: ClassVar[tuple[TensorSpec, ...]]
    standin_count: ClassVar[int] = 64  # samples in the default stand-in

    @abc.abstractmethod
    def open_dataset(self, data_dir: Path) -> Dataset:
        """Open the preprocessed dataset under ``data_dir`` (NVIDIA layout).

        Raises:
            DataError: The layout is missing or malformed.
        """

    def infer(self, engine, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch on ``engine``; benchmarks with a decode loop override this."""
        return engine.run(feeds)

    @abc.abstractmethod
    def responses(
        self, outputs: dict[str, np.ndarray], indices: Sequence[int], dataset: Dataset
    ) -> list[bytes]:
        """The accuracy-log payload of every sample of a batch, in batch order."""

    @abc.abstractmethod
    def accuracy(self, entries: list[dict], data_dir: Path) -> float:
        """The benchmark's metric from parsed ``mlperf_log_accuracy.json`` entries.

        Args:
            entries: ``{"seq_id", "qsl_idx", "data"}`` dicts as LoadGen wrote them.
            data_dir: The dataset, for labels or annotations.
        """

    @abc.abstractmethod
    def synth(self, out: Path, count: int, seed: int = 0) -> Standin:
        """Write a stand-in dataset in the real layout and an ONNX model with the real
        signature under ``out``; deterministic for a given ``count`` and ``seed``."""


def first_file(candidates: list[Path], what: str) -> Path:
    """The first existing file of ``candidates``.

    Raises:
        DataError: None exists (the message names the first candidate and ``what``).
    """
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"{candidates[0]}: missing {what}")


def logged_samples(entries: list[dict], count: int,
                   allow_empty: bool = False) -> Iterator[tuple[int, bytes]]:
    """Each sample's payload in an accuracy log, as ``(qsl_idx, bytes)`` in log order.

    LoadGen may log a sample more than once; as in the official scripts, the first
    entry wins.

    Args:
        entries: Parsed ``mlperf_log_accuracy.json``.
        count: Samples in the dataset.
        allow_empty: Accept a log without samples.

    Raises:
        DataError: An index outside ``0..count-1``, or no sample at all (unless allowed).
    """
    seen: set[int] = set()
    for entry in entries:
        idx = int(entry["qsl_idx"])
        if idx in seen:
            continue
        seen.add(idx)
        if not 0 <= idx < count:
            raise DataError(f"accuracy log: qsl_idx {idx} outside the {count} samples")
        yield idx, bytes.fromhex(entry["data"])
    if not seen and not allow_empty:
        raise DataError("accuracy log holds no samples")


def find_data_map(data_dir: Path, dataset: str, what: str) -> Path:
    """Locate ``val_map.txt`` of a preprocessed-data directory.

    It sits in ``<data_dir>/<dataset>/`` or, as in NVIDIA's harness, in
    ``<data_dir>/../data_maps/<dataset>/``.

    Args:
        data_dir: The preprocessed-data directory.
        dataset: Dataset folder name, e.g. ``imagenet``.
        what: What the file is, for the error message.

    Raises:
        DataError: Neither location holds one.
    """
    return first_file([data_dir / dataset / "val_map.txt",
                       data_dir.parent / "data_maps" / dataset / "val_map.txt"], what)


def check_array(path: Path, array: np.ndarray, dtype: str, shape: tuple) -> np.ndarray:
    """Check a loaded sample's dtype and shape, naming the file on a mismatch.

    Args:
        path: File the array came from.
        array: The loaded array.
        dtype: Expected numpy dtype name.
        shape: Expected shape (None matches any size).

    Raises:
        DataError: The array does not match.
    """
    ok = array.dtype == np.dtype(dtype) and len(array.shape) == len(shape)
    ok = ok and all(e is None or e == a for e, a in zip(shape, array.shape))
    if not ok:
        want = ",".join("*" if d is None else str(d) for d in shape)
        raise DataError(
            f"{path}: expected {dtype} [{want}], found {array.dtype} "
            f"[{','.join(map(str, array.shape))}]"
        )
    return array


def load_npy(path: Path, dtype: str, shape: tuple) -> np.ndarray:
    """Read one .npy sample and check it.

    Raises:
        DataError: Missing, truncated or wrong-shaped file.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: missing sample file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or truncated .npy ({exc})") from None
    return check_array(path, array, dtype, shape)
