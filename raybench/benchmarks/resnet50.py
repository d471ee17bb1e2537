"""ResNet50-v1.5 on ImageNet 2012 validation, NVIDIA's int8 linear preprocessed layout.

Layout under ``--data-dir`` (NVIDIA's ``preprocessed_data``)::

    imagenet/ResNet50/int8_linear/<image stem>.npy   int8 [3,224,224] per image
    imagenet/val_map.txt                             "<image file> <label>" per line

``val_map.txt`` may also sit in NVIDIA's ``../data_maps/imagenet/``. Its line order is
the sample order. The 1001-class model's ArgMax is label + 1; the accuracy log stores
the 0-based label as float32, which is what the official ``accuracy-imagenet.py``
reads with its default ``--dtype float32``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks.base import (Benchmark, Dataset, Standin, TensorSpec, find_data_map,
                                      load_npy, logged_samples)
from raybench.errors import DataError

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
        return self.root / (Path(self.names[index]).stem + ".npy")

    def read(self, index: int) -> np.ndarray:
        return load_npy(self.path(index), "int8", SAMPLE_SHAPE)

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        return {"input_tensor:0": np.stack(self.samples(indices))}


class ResNet50(Benchmark):
    """MLPerf resnet50: top-1 accuracy against val_map.txt."""

    name = "resnet50"
    model_filename = "resnet50_v1.onnx"
    inputs = (TensorSpec("input_tensor:0", "float32", (None, 3, 224, 224)),)
    outputs = (
        TensorSpec("ArgMax:0", "int64", (None,)),
        TensorSpec("softmax_tensor:0", "float32", (None, 1001)),
    )
    standin_count = 1024

    def open_dataset(self, data_dir: Path) -> ImageNetDataset:
        return ImageNetDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        labels = (np.asarray(outputs["ArgMax:0"]).reshape(-1) - 1).astype(np.float32)
        return [label.tobytes() for label in labels]

    def accuracy(self, entries: list[dict], data_dir: Path) -> float:
        _, labels = read_val_map(find_val_map(Path(data_dir)))
        hits = [int(np.frombuffer(data, np.float32)[0]) == labels[idx]
                for idx, data in logged_samples(entries, len(labels))]
        return 100.0 * sum(hits) / len(hits)

    def synth(self, out: Path, count: int, seed: int = 0) -> Standin:
        """Images with low-frequency structure plus noise; a pooled linear classifier.

        The model averages 28x28 blocks, applies a fixed linear layer to the 192
        pooled values and returns ArgMax and softmax under the real output names.
        Labels are the top-1 of an fp32 reference pass of that model (ArgMax - 1).
        """
        from onnx import helper, numpy_helper

        from raybench.benchmarks.onnx_util import save_model, value_info

        rng = np.random.default_rng(seed)
        out = Path(out)
        weights = rng.normal(0, 1, (192, 1001)).astype(np.float32)
        bias = rng.normal(0, 1, (1001,)).astype(np.float32)
        nodes = [
            helper.make_node("AveragePool", ["input_tensor:0"], ["pooled"],
                             kernel_shape=[28, 28], strides=[28, 28]),
            helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["mm"]),
            helper.make_node("Add", ["mm", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["softmax_tensor:0"], axis=1),
            helper.make_node("ArgMax", ["logits"], ["ArgMax:0"], axis=1, keepdims=0),
        ]
        graph = helper.make_graph(
            nodes, "resnet50_standin",
            [value_info(self.inputs[0])],
            [value_info(o) for o in self.outputs],
            initializer=[
                numpy_helper.from_array(np.array([-1, 192], np.int64), "flat_shape"),
                numpy_helper.from_array(weights, "weights"),
                numpy_helper.from_array(bias, "bias"),
            ],
        )
        model = save_model(graph, out / self.model_filename)

        data_dir = out / "preprocessed_data"
        tensors = data_dir / TENSOR_DIR
        tensors.mkdir(parents=True, exist_ok=True)
        images = np.empty((count, *SAMPLE_SHAPE), np.int8)
        for i in range(count):
            coarse = rng.normal(0, 40, (3, 8, 8)).repeat(28, 1).repeat(28, 2)
            noise = rng.normal(0, 20, SAMPLE_SHAPE)
            images[i] = np.clip(np.rint(coarse + noise), -128, 127).astype(np.int8)
        labels = _reference_labels(model, images)
        names = [f"STANDIN_val_{i:08d}.JPEG" for i in range(count)]
        for name, image in zip(names, images):
            np.save(tensors / (Path(name).stem + ".npy"), image)
        (data_dir / "imagenet" / "val_map.txt").write_text(
            "".join(f"{n} {int(l)}\n" for n, l in zip(names, labels))
        )
        return Standin(model=model, data_dir=data_dir)


def _reference_labels(model: Path, images: np.ndarray) -> np.ndarray:
    """0-based labels: the fp32 ONNX Runtime pass's ArgMax minus one, one image at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    labels = np.empty(len(images), np.int64)
    for start in range(0, len(images), 256):
        batch = images[start:start + 256].astype(np.float32)
        labels[start:start + len(batch)] = session.run(["ArgMax:0"], {"input_tensor:0": batch})[0] - 1
    return labels
