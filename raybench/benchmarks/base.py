"""The interface every benchmark implements: dataset, model signature, accuracy.

Also the shared readers: data-map lookup in NVIDIA's tree, ``.npy`` samples, and the
accuracy log's entries with each official script's handling of duplicates.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from raybench.errors import DataError
from raybench.results.accuracy import Score


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


class Dataset(abc.ABC):
    """The samples of one benchmark in a data directory: the store behind LoadGen's QSL.

    Constructing a dataset checks the layout cheaply (files listed, annotation files
    parsed). Subclasses read and check one sample in :meth:`read`; this base keeps the
    loaded set: :meth:`load` and :meth:`unload` follow LoadGen's QSL calls, and
    :meth:`samples` loads whatever a batch needs that is not loaded yet (an engine
    restarted by Ray has lost its loaded set).

    A dataset whose :meth:`feeds` hand the stored arrays to the model as they are (the
    engine casts them: ``feeds_as_stored``) may keep them cast already: ``load_as`` (set
    by the engine actor to its model's one input dtype) casts each sample once, when it
    is loaded (LoadGen does not time loads), instead of in every batch that uses it.
    """

    feeds_as_stored: ClassVar[bool] = False
    load_as: Optional[np.dtype] = None

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
        cache, load_as = self._in_memory, self.load_as
        for i in indices:
            if i not in cache:
                sample = self.read(i)
                if load_as is not None:
                    sample = sample.astype(load_as, copy=False)
                cache[i] = sample

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

    def batch(self, indices: Sequence[int]) -> np.ndarray:
        """The loaded array samples of a batch, stacked on a new first axis.

        A batch of one is a view of the loaded sample, not a copy: a fresh array of an
        image's size costs ONNX Runtime about as much again as the inference itself
        (measured: resnet50, 224x224 float32, 100 against 205 us a run).
        """
        samples = self.samples(indices)
        return samples[0][np.newaxis] if len(samples) == 1 else np.stack(samples)

    @abc.abstractmethod
    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Model inputs for a batch of samples, keyed by input name.

        Arrays keep the stored dtype (or ``load_as``); engines cast to the model's.
        """


class Benchmark(abc.ABC):
    """One MLPerf benchmark model: signature, data, post-processing, metric.

    The metric's name and FP32 reference value are rules of the round
    (``raybench/rules/<round>.yaml``), not of the implementation.
    """

    name: ClassVar[str]  # model name, as in the rules and LoadGen's config files
    model_filename: ClassVar[str]  # file name of the real model (and of the stand-in)
    inputs: ClassVar[tuple[TensorSpec, ...]]
    outputs: ClassVar[tuple[TensorSpec, ...]]

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
    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        """The benchmark's metric from parsed ``mlperf_log_accuracy.json`` entries, as
        the official v1.0 accuracy script computes it (its result line included).

        Args:
            entries: ``{"seq_id", "qsl_idx", "data"}`` dicts as LoadGen wrote them.
            data_dir: The dataset, for labels or annotations.

        Raises:
            DataError: Missing annotations, or a log the official script cannot score.
        """


def first_file(candidates: Sequence[Path], what: str) -> Path:
    """The first existing file of ``candidates``.

    Raises:
        DataError: None exists (the message names ``what`` and every path tried).
    """
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"missing {what}: tried {', '.join(str(p) for p in candidates)}")


def data_map_candidates(data_dir: Path, dataset: str,
                        names: Sequence[str] = ("val_map.txt",)) -> list[Path]:
    """Where a dataset's ``val_map.txt`` may be, in the order looked at.

    Beside the data (``<data_dir>/<dataset>/``, any of ``names``), then NVIDIA's
    ``data_maps/<dataset>/`` at the code root (``<data_dir>/../../`` for ``--data-dir
    build/preprocessed_data``), then ``data_maps`` beside the data directory.
    """
    data_dir = Path(data_dir)
    return [*(data_dir / dataset / name for name in names),
            data_dir.parent.parent / "data_maps" / dataset / "val_map.txt",
            data_dir.parent / "data_maps" / dataset / "val_map.txt"]


def existing_data_map(data_dir: Path, dataset: str,
                      names: Sequence[str] = ("val_map.txt",)) -> Optional[Path]:
    """The first of :func:`data_map_candidates` that exists, or None."""
    return next((p for p in data_map_candidates(data_dir, dataset, names) if p.is_file()), None)


def find_data_map(data_dir: Path, dataset: str, what: str) -> Path:
    """Locate a dataset's ``val_map.txt`` (see :func:`data_map_candidates`).

    Raises:
        DataError: None of the places holds one (all are named).
    """
    return first_file(data_map_candidates(data_dir, dataset), what)


def read_map_names(path: Path) -> list[str]:
    """The first column of every non-empty line of a data map.

    Raises:
        DataError: The map lists nothing.
    """
    names = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: no samples listed")
    return names


@dataclass
class LoggedSamples:
    """The payloads an official accuracy script scores, and how the log was read."""

    samples: list[tuple[int, bytes]]  # (qsl_idx, payload) in the order scored
    notes: tuple[str, ...]


# duplicate entries of a sample -> what the official script does with them
_DUPLICATES = {
    "first": "the first entry counts",
    "last": "the last entry counts",
    "all": "every entry counts",
}


def read_log(entries: list[dict], count: int, script: str, duplicates: str = "first",
             allow_empty: bool = False) -> LoggedSamples:
    """The payloads of an accuracy log as the official ``script`` takes them.

    LoadGen may log a sample more than once, and a log may hold only some samples
    (compliance runs). ``duplicates`` says which entries of a repeated sample the
    script scores: ``first`` (most scripts), ``last`` (accuracy-squad.py keeps the
    last in a dict) or ``all`` (accuracy_eval.py scores every entry). The notes say so,
    for accuracy.txt.

    Args:
        entries: Parsed ``mlperf_log_accuracy.json``.
        count: Samples in the dataset.
        script: The official script's name, for the notes.
        duplicates: ``first``, ``last`` or ``all``.
        allow_empty: Accept a log without samples.

    Raises:
        DataError: An index outside ``0..count-1``, malformed hex, or no sample at all
            (unless allowed).
    """
    samples: list[tuple[int, bytes]] = []
    position: dict[int, int] = {}
    for entry in entries:
        try:
            idx = int(entry["qsl_idx"])
            payload = bytes.fromhex(entry["data"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"accuracy log: malformed entry {str(entry)[:80]} ({exc})") from None
        if not 0 <= idx < count:
            raise DataError(f"accuracy log: qsl_idx {idx} outside the {count} samples")
        if idx not in position or duplicates == "all":
            position[idx] = len(samples)
            samples.append((idx, payload))
        elif duplicates == "last":
            samples[position[idx]] = (idx, payload)
    if not samples and not allow_empty:
        raise DataError("accuracy log holds no samples")
    notes = [f"accuracy log: {len(entries)} entries for {len(position)} of {count} samples"]
    repeated = len(entries) - len(position)
    if repeated:
        notes.append(f"{repeated} duplicate entries: {_DUPLICATES[duplicates]}, as {script} does")
    if len(position) < count:
        notes.append(f"{count - len(position)} samples not logged: scored as {script} scores them")
    return LoggedSamples(samples, tuple(notes))


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
