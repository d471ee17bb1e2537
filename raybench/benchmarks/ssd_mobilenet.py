"""SSD-MobileNet v1 on COCO 2017 validation (300x300), NVIDIA's int8 linear layout.

Layout under ``--data-dir build/preprocessed_data`` (see :mod:`raybench.benchmarks.coco`)::

    coco/val2017/SSDMobileNet/int8_linear/<file_name>.npy   int8 [3,300,300] per image
    coco/annotations/instances_val2017.json

NVIDIA stores ``int8(127 * (2 * pixel / 255 - 1))`` in RGB CHW order. The model is
mlcommons' ``ssd_mobilenet_v1_coco_2018_01_28.onnx`` (converted from TensorFlow): it
takes uint8 RGB pixels NHWC, so :meth:`SsdMobileNetDataset.feeds` maps the stored
values back to pixels (within one grey level) and transposes to NHWC. The detection
classes are COCO category ids already, so the official script runs without
``--use-inv-map``; only the first ``num_detections`` detections of an image are kept,
as mlcommons' ``PostProcessCoco`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.benchmarks import coco
from raybench.benchmarks.base import Benchmark, TensorSpec
from raybench.results.accuracy import Score

SAMPLE_SHAPE = (3, 300, 300)
TENSOR_DIR = Path("coco/val2017/SSDMobileNet/int8_linear")
INPUT = "image_tensor:0"


def _pixel_table() -> np.ndarray:
    """uint8 pixel for each stored int8 value (index value + 128): the middle of the
    pixels NVIDIA's quantiser maps to it."""
    pixels = np.arange(256, dtype=np.float32)
    stored = (pixels * (2.0 / 255.0) - 1.0) * 127.0
    stored = stored.astype(np.int8).astype(np.int16)  # truncation, as astype(np.int8) does
    table = np.rint((np.arange(-128, 128) + 127) * (255.0 / 254.0)).clip(0, 255)
    for value in np.unique(stored):
        table[value + 128] = np.rint(pixels[stored == value].mean())
    return table.astype(np.uint8)


PIXELS = _pixel_table()


def to_pixels(batch: np.ndarray) -> np.ndarray:
    """Stored int8 NCHW images -> uint8 NHWC pixels, the ONNX model's input."""
    return PIXELS[batch.astype(np.int16) + 128].transpose(0, 2, 3, 1)


class SsdMobileNetDataset(coco.CocoDataset):
    """Preprocessed 300x300 COCO images; feeds are uint8 NHWC pixels."""

    def __init__(self, data_dir: Path):
        super().__init__(data_dir, TENSOR_DIR, SAMPLE_SHAPE, INPUT, to_pixels)


class SsdMobileNet(Benchmark):
    """MLPerf ssd-mobilenet: COCO mAP@[.5:.95] (%)."""

    name = "ssd-mobilenet"
    model_filename = "ssd_mobilenet_v1_coco_2018_01_28.onnx"
    inputs = (TensorSpec(INPUT, "uint8", (None, 300, 300, 3)),)
    outputs = (
        TensorSpec("num_detections:0", "float32", (None,)),
        TensorSpec("detection_boxes:0", "float32", (None, 100, 4)),
        TensorSpec("detection_scores:0", "float32", (None, 100)),
        TensorSpec("detection_classes:0", "float32", (None, 100)),
    )

    def open_dataset(self, data_dir: Path) -> SsdMobileNetDataset:
        return SsdMobileNetDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        counts = np.asarray(outputs["num_detections:0"]).reshape(-1)
        boxes = np.asarray(outputs["detection_boxes:0"])
        scores = np.asarray(outputs["detection_scores:0"])
        classes = np.asarray(outputs["detection_classes:0"])
        payloads = []
        for b, index in enumerate(indices):
            n = int(counts[b])
            payloads.append(coco.pack_detections(index, boxes[b, :n], scores[b, :n], classes[b, :n]))
        return payloads

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        return coco.coco_map(entries, Path(data_dir), use_inv_map=False)
