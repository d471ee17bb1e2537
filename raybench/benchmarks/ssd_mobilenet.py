"""SSD-MobileNet v1 on COCO 2017 validation (300x300), NVIDIA's int8 linear layout.

Layout under ``--data-dir`` (see :mod:`raybench.benchmarks.coco` for the sample order)::

    coco/val2017/SSDMobileNet/int8_linear/<stem>.npy   int8 [3,300,300] per image
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
from raybench.benchmarks.base import Benchmark, Standin, TensorSpec

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
    standin_count = 64

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

    def accuracy(self, entries: list[dict], data_dir: Path) -> float:
        return coco.coco_map(entries, Path(data_dir), use_inv_map=False)

    def synth(self, out: Path, count: int, seed: int = 0) -> Standin:
        """Images with a coarse 6x6 block structure; a detector head on block means.

        The model casts the pixels to float, averages 50x50 blocks and computes, with
        fixed random weights, 2..8 boxes, COCO classes and descending scores per image
        (:func:`coco.detector_graph_nodes`), padded to 100. The annotations are the
        detections of an ONNX Runtime reference pass, so a full run scores mAP 100.
        """
        from onnx import helper, numpy_helper

        from raybench.benchmarks.onnx_util import save_model, value_info

        rng = np.random.default_rng(seed)
        out = Path(out)
        feat_nodes, feat_inits = coco.feature_nodes("nchw", 300, 127.5, 1 / 40)
        head_nodes, head_inits = coco.detector_graph_nodes("feature", 100, False, rng)
        nodes = [
            helper.make_node("Cast", [INPUT], ["pixels_f"], to=1),
            helper.make_node("Transpose", ["pixels_f"], ["nchw"], perm=[0, 3, 1, 2]),
            *feat_nodes, *head_nodes,
            helper.make_node("Identity", ["head_count"], ["num_detections:0"]),
            helper.make_node("Identity", ["head_boxes"], ["detection_boxes:0"]),
            helper.make_node("Identity", ["head_scores"], ["detection_scores:0"]),
            helper.make_node("Gather", ["coco_ids", "head_cls"], ["detection_classes:0"], axis=0),
        ]
        coco_ids = numpy_helper.from_array(np.array(coco.CATEGORY_IDS, np.float32), "coco_ids")
        graph = helper.make_graph(
            nodes, "ssd_mobilenet_standin", [value_info(self.inputs[0])],
            [value_info(o) for o in self.outputs],
            initializer=[*feat_inits, *head_inits, coco_ids],
        )
        model = save_model(graph, out / self.model_filename)

        data_dir = out / "preprocessed_data"
        tensors = data_dir / TENSOR_DIR
        tensors.mkdir(parents=True, exist_ok=True)
        images = coco.standin_images(count, rng)
        for image, pixels in zip(images, coco.standin_pixels(count, SAMPLE_SHAPE, rng, 40.0)):
            np.save(tensors / (Path(image["file_name"]).stem + ".npy"), pixels)
        coco.write_standin_coco(data_dir, images, [], use_inv_map=False)
        entries = coco.reference_entries(model, self.open_dataset(data_dir), self)
        coco.write_standin_coco(data_dir, images, entries, use_inv_map=False)
        return Standin(model=model, data_dir=data_dir)
