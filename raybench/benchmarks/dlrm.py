"""DLRM on Criteo Terabyte (day 23), NVIDIA's preprocessed layout (dlrm-99, dlrm-99.9).

Layout under ``--data-dir build/preprocessed_data`` (NVIDIA's tree)::

    criteo/full_recalib/numeric_fp32.npy       float32 [P,13]  log(x+1) dense features
      or numeric_fp16.npy                      float16 [P,13]
      or numeric_int8_chw4.npy                 int8 [P,16]     13 features x 127/14.2313, 3 pad
    criteo/full_recalib/categorical_int32.npy  int32 [P,26]    embedding rows (mod 40M)
    criteo/full_recalib/sample_partition.npy   int32/int64 [N+1] pair offsets: sample i is
                                               pairs partition[i]:partition[i+1]
    criteo/full_recalib/ground_truth.npy       int32 [P]       click labels (also criteo/, or
                                               full_recalib/build/criteo/ where NVIDIA's
                                               convert_dlrm_data.py writes it)

One LoadGen sample is one user: a variable number of user-item pairs. The numeric file
is chosen in the order fp32, fp16, int8_chw4 (dequantised). A partition of N entries
starting at 0 is accepted too (the pair count is appended).

Model signature (the reference's ``tb00_40M.onnx`` export): ``dense_x`` float32 [B,13],
``offsets`` int64 [26,B] (one lookup per table and pair: ``offsets[t] = arange(B)``),
``indices`` int64 [26,B]; output ``pred`` float32 [B,1], the click probability. B is the
number of pairs of all samples in the batch, concatenated in batch order.

The accuracy log holds, per sample, float32 (prediction, label) pairs interleaved, one
per user-item pair, as the reference DLRM harness writes them and the official
``accuracy-dlrm.py`` reads them by default; :meth:`Dlrm.accuracy` scores the log's pairs
as that script does (ROC AUC over all pairs in percent) after checking the logged labels
against ``ground_truth.npy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import (Benchmark, Dataset, TensorSpec, check_array, first_file,
                                      read_log)
from raybench.errors import DataError
from raybench.results.accuracy import Score

TENSOR_DIR = Path("criteo/full_recalib")
NUM_DENSE = 13
NUM_TABLES = 26
INT8_SCALE = 14.2313 / 127.0
NUMERIC_FILES = (
    ("numeric_fp32.npy", "float32", NUM_DENSE),
    ("numeric_fp16.npy", "float16", NUM_DENSE),
    ("numeric_int8_chw4.npy", "int8", 16),
)


def _open_npy(path: Path) -> np.ndarray:
    """Memory-map a .npy file, naming it on failure.

    Raises:
        DataError: Missing, unreadable or truncated file.
    """
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: missing file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or truncated .npy ({exc})") from None


def find_labels(data_dir: Path) -> Path:
    """Locate ground_truth.npy.

    Raises:
        DataError: None of the known places holds one (all are named).
    """
    return first_file([data_dir / TENSOR_DIR / "ground_truth.npy",
                       data_dir / "criteo" / "ground_truth.npy",
                       data_dir / TENSOR_DIR / "build" / "criteo" / "ground_truth.npy"],
                      "DLRM labels (ground_truth.npy)")


def read_partition(path: Path, pairs: int) -> np.ndarray:
    """Read sample_partition.npy as int64 offsets [N+1] ending at ``pairs``.

    Raises:
        DataError: Missing file, not 1-D, not starting at 0, decreasing or past ``pairs``.
    """
    array = _open_npy(path)
    if array.ndim != 1 or array.dtype.kind not in "iu" or array.size == 0:
        raise DataError(f"{path}: expected a 1-D integer array of pair offsets, found "
                        f"{array.dtype} [{','.join(map(str, array.shape))}]")
    offsets = np.asarray(array, dtype=np.int64)
    if offsets[-1] != pairs:
        offsets = np.append(offsets, pairs)
    if offsets[0] != 0 or np.any(np.diff(offsets) <= 0) or offsets[-1] != pairs:
        raise DataError(f"{path}: offsets must rise strictly from 0 to the pair count {pairs}")
    return offsets


class CriteoDataset(Dataset):
    """User-item pairs grouped into samples by sample_partition.npy (memory-mapped)."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        root = data_dir / TENSOR_DIR
        if not root.is_dir():
            raise DataError(f"{root}: missing directory of preprocessed Criteo data")
        for filename, dtype, width in NUMERIC_FILES:
            path = root / filename
            if path.is_file():
                self.numeric = check_array(path, _open_npy(path), dtype, (None, width))
                break
        else:
            raise DataError(f"{root / NUMERIC_FILES[-1][0]}: missing numeric features "
                            f"(none of {', '.join(f for f, _, _ in NUMERIC_FILES)})")
        pairs = self.numeric.shape[0]
        path = root / "categorical_int32.npy"
        self.categorical = check_array(path, _open_npy(path), "int32", (pairs, NUM_TABLES))
        self.partition = read_partition(root / "sample_partition.npy", pairs)
        self._labels: np.ndarray | None | bool = False

    @property
    def total_count(self) -> int:
        return self.partition.size - 1

    @property
    def labels(self) -> np.ndarray | None:
        """The click labels (memory-mapped), or None when ground_truth.npy is absent."""
        if self._labels is False:
            try:
                self._labels = _open_npy(find_labels(self.data_dir)).reshape(-1)
            except DataError:
                self._labels = None
        return self._labels

    def pair_counts(self, indices: Sequence[int]) -> np.ndarray:
        """Number of user-item pairs of each sample."""
        idx = np.asarray(indices, dtype=np.int64)
        return self.partition[idx + 1] - self.partition[idx]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.partition[index], self.partition[index + 1]
        numeric = np.asarray(self.numeric[lo:hi])
        if numeric.dtype == np.int8:
            numeric = numeric[:, :NUM_DENSE].astype(np.float32) * np.float32(INT8_SCALE)
        return numeric.astype(np.float32, copy=False), np.asarray(self.categorical[lo:hi])

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        samples = self.samples(indices)
        dense = np.concatenate([numeric for numeric, _ in samples])
        sparse = np.concatenate([categorical for _, categorical in samples])
        pairs = dense.shape[0]
        return {
            "dense_x": dense,
            "offsets": np.broadcast_to(np.arange(pairs, dtype=np.int64), (NUM_TABLES, pairs)).copy(),
            "indices": np.ascontiguousarray(sparse.T.astype(np.int64)),
        }


class Dlrm(Benchmark):
    """MLPerf dlrm: ROC AUC (%) of the click predictions over all user-item pairs."""

    name = "dlrm"
    model_filename = "tb00_40M.onnx"
    inputs = (
        TensorSpec("dense_x", "float32", (None, NUM_DENSE)),
        TensorSpec("offsets", "int64", (NUM_TABLES, None)),
        TensorSpec("indices", "int64", (NUM_TABLES, None)),
    )
    outputs = (TensorSpec("pred", "float32", (None, 1)),)

    def open_dataset(self, data_dir: Path) -> CriteoDataset:
        return CriteoDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        pred = np.asarray(outputs["pred"], np.float32).reshape(-1)
        counts = dataset.pair_counts(indices)
        if pred.size != counts.sum():
            raise DataError(f"dlrm model returned {pred.size} predictions for {counts.sum()} pairs")
        labels = dataset.labels
        result, at = [], 0
        for i, n in zip(indices, counts):
            lo = dataset.partition[i]
            pairs = np.empty((n, 2), np.float32)
            pairs[:, 0] = pred[at:at + n]
            pairs[:, 1] = labels[lo:lo + n] if labels is not None else 0.0
            result.append(pairs.tobytes())
            at += n
        return result

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        """ROC AUC (%) over the logged (prediction, label) pairs, as accuracy-dlrm.py: the
        first entry of a sample counts, only logged samples are scored.

        Raises:
            DataError: Missing labels, a sample whose pair count or labels differ from
                the dataset's, or only one class among the logged pairs.
        """
        from raybench.benchmarks.lang_metrics import roc_auc

        data_dir = Path(data_dir)
        labels_path = find_labels(data_dir)
        labels = _open_npy(labels_path).reshape(-1)
        partition = read_partition(data_dir / TENSOR_DIR / "sample_partition.npy", labels.size)
        log = read_log(entries, partition.size - 1, "accuracy-dlrm.py")
        pairs = []
        for idx, payload in log.samples:
            data = np.frombuffer(payload, np.float32).reshape(-1, 2)
            lo, hi = partition[idx], partition[idx + 1]
            if data.shape[0] != hi - lo:
                raise DataError(f"accuracy log: sample {idx} has {data.shape[0]} predictions, "
                                f"{labels_path} has {hi - lo} pairs")
            if not np.array_equal(data[:, 1], np.asarray(labels[lo:hi], np.float32)):
                raise DataError(f"accuracy log: sample {idx} logs labels that differ from "
                                f"{labels_path}")
            pairs.append(data)
        data = np.concatenate(pairs)
        try:
            auc = roc_auc(data[:, 1], data[:, 0])
        except ValueError as exc:
            raise DataError(f"accuracy log: {exc}") from None
        good = int(np.count_nonzero(np.round(data[:, 0]) == data[:, 1]))
        total = data.shape[0]
        official = "AUC={:.3f}%, accuracy={:.3f}%, good={}, total={}, queries={}".format(
            100. * auc, 100. * good / total, good, total, len(log.samples))
        return Score(100.0 * auc, official, log.notes)
