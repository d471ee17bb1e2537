"""ResNet50-v1.5 on ImageNet 2012 validation, NVIDIA's int8 linear preprocessed layout.

NVIDIA's tree (``--data-dir build/preprocessed_data``)::

    build/preprocessed_data/imagenet/ResNet50/int8_linear/<name>.npy   int8 [3,224,224]
    data_maps/imagenet/val_map.txt             "<name>\t<label>", e.g. ILSVRC2012_val_00000001.JPEG

``<name>`` is the map's whole first column (``ILSVRC2012_val_00000001.JPEG.npy``, as
NVIDIA's ImagePreprocessor names its output). The map may also sit beside the data
(``imagenet/val_map.txt``); its line order is the sample order. The 1001-class model's
ArgMax is label + 1; the accuracy log stores the 0-based label as float32, which is
what the official ``accuracy-imagenet.py`` reads with its default ``--dtype float32``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import (Benchmark, Dataset, TensorSpec, find_data_map, load_npy,
                                      read_log)
from raybench.errors import DataError
from raybench.results.accuracy import Score

SAMPLE_SHAPE = (3, 224, 224)
TENSOR_DIR = Path("imagenet/ResNet50/int8_linear")


def find_val_map(data_dir: Path) -> Path:
    """Locate ImageNet's val_map.txt (see :func:`find_data_map`)."""
    return find_data_map(data_dir, "imagenet", "ImageNet val_map.txt")


def read_val_map(path: Path) -> tuple[list[str], np.ndarray]:
    """Parse val_map.txt into image names and 0-based labels.

    Raises:
        DataError: A malformed line.
    """
    names, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{number}: expected '<image> <label>', found {line!r}")
        names.append(parts[0])
        labels.append(int(parts[1]))
    if not names:
        raise DataError(f"{path}: no samples listed")
    return names, np.asarray(labels, dtype=np.int64)


class ImageNetDataset(Dataset):
    """Preprocessed ImageNet validation images, one .npy per image."""

    feeds_as_stored = True  # the engine casts the stored arrays

    def __init__(self, data_dir: Path):
        self.root = data_dir / TENSOR_DIR
        if not self.root.is_dir():
            raise DataError(f"{self.root}: missing directory of preprocessed images")
        self.names, self.labels = read_val_map(find_val_map(data_dir))

    @property
    def total_count(self) -> int:
        return len(self.names)

    def path(self, index: int) -> Path:
        """The .npy file of sample ``index``."""
        return self.root / f"{self.names[index]}.npy"

    def read(self, index: int) -> np.ndarray:
        return load_npy(self.path(index), "int8", SAMPLE_SHAPE)

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        return {"input_tensor:0": self.batch(indices)}


class ResNet50(Benchmark):
    """MLPerf resnet50: top-1 accuracy against val_map.txt."""

    name = "resnet50"
    model_filename = "resnet50_v1.onnx"
    inputs = (TensorSpec("input_tensor:0", "float32", (None, 3, 224, 224)),)
    outputs = (
        TensorSpec("ArgMax:0", "int64", (None,)),
        TensorSpec("softmax_tensor:0", "float32", (None, 1001)),
    )

    def open_dataset(self, data_dir: Path) -> ImageNetDataset:
        return ImageNetDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        labels = (np.asarray(outputs["ArgMax:0"]).reshape(-1) - 1).astype(np.float32)
        return [label.tobytes() for label in labels]

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        """Top-1 (%) as accuracy-imagenet.py: the first entry of a sample counts, the
        samples logged are the total."""
        _, labels = read_val_map(find_val_map(Path(data_dir)))
        log = read_log(entries, len(labels), "accuracy-imagenet.py")
        good = 0
        for idx, data in log.samples:
            found = np.frombuffer(data[:4], np.float32)
            if found.size != 1 or not np.isfinite(found[0]):
                raise DataError(f"accuracy log: sample {idx} holds no float32 label")
            good += int(found[0]) == labels[idx]
        total = len(log.samples)
        official = "accuracy={:.3f}%, good={}, total={}".format(100. * good / total, good, total)
        return Score(100.0 * good / total, official, log.notes)
