"""SSD-ResNet34 on COCO 2017 validation (1200x1200), NVIDIA's int8 linear layout.

Layout under ``--data-dir build/preprocessed_data`` (see :mod:`raybench.benchmarks.coco`)::

    coco/val2017/SSDResNet34/int8_linear/<file_name>.npy   int8 [3,1200,1200] per image
    coco/annotations/instances_val2017.json

NVIDIA stores the normalised image (/255, ImageNet mean/std, RGB CHW) clipped to
+-2.64064 and scaled by 127 / 2.64064. The model is mlcommons' ``resnet34-ssd1200.onnx``
(input ``image`` float32 NCHW, outputs ``bboxes`` [N,200,4] as normalised xmin, ymin,
xmax, ymax, ``labels`` int64 contiguous 1..80, ``scores`` sorted descending), so
:meth:`SsdResNet34Dataset.feeds` dequantises to float32. A payload keeps detections
until the first score below 0.05 (the threshold of NVIDIA's NMS and of mlcommons'
``PostProcessCocoPt``), reorders boxes to ymin, xmin, ymax, xmax and keeps the
contiguous label: the official script must run with ``--use-inv-map``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.benchmarks import coco
from raybench.benchmarks.base import Benchmark, TensorSpec
from raybench.results.accuracy import Score

SAMPLE_SHAPE = (3, 1200, 1200)
TENSOR_DIR = Path("coco/val2017/SSDResNet34/int8_linear")
INPUT = "image"
INT8_SCALE = 2.64064 / 127.0  # stored int8 -> normalised float
SCORE_THRESHOLD = 0.05


def dequantize(batch: np.ndarray) -> np.ndarray:
    """Stored int8 NCHW images -> the float32 normalised images the ONNX model takes."""
    return batch.astype(np.float32) * np.float32(INT8_SCALE)


class SsdResNet34Dataset(coco.CocoDataset):
    """Preprocessed 1200x1200 COCO images; feeds are dequantised float32 NCHW."""

    def __init__(self, data_dir: Path):
        super().__init__(data_dir, TENSOR_DIR, SAMPLE_SHAPE, INPUT, dequantize)


class SsdResNet34(Benchmark):
    """MLPerf ssd-resnet34: COCO mAP@[.5:.95] (%), classes through the inverse map."""

    name = "ssd-resnet34"
    model_filename = "resnet34-ssd1200.onnx"
    inputs = (TensorSpec(INPUT, "float32", (None, 3, 1200, 1200)),)
    outputs = (
        TensorSpec("bboxes", "float32", (None, 200, 4)),
        TensorSpec("labels", "int64", (None, 200)),
        TensorSpec("scores", "float32", (None, 200)),
    )

    def open_dataset(self, data_dir: Path) -> SsdResNet34Dataset:
        return SsdResNet34Dataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        boxes = np.asarray(outputs["bboxes"])
        labels = np.asarray(outputs["labels"])
        scores = np.asarray(outputs["scores"])
        payloads = []
        for b, index in enumerate(indices):
            below = np.flatnonzero(scores[b] < SCORE_THRESHOLD)
            n = int(below[0]) if len(below) else len(scores[b])
            yxyx = boxes[b, :n][:, [1, 0, 3, 2]]
            payloads.append(coco.pack_detections(index, yxyx, scores[b, :n], labels[b, :n]))
        return payloads

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        return coco.coco_map(entries, Path(data_dir), use_inv_map=True)
