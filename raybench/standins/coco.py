"""Shared parts of the COCO stand-ins (ssd-mobilenet, ssd-resnet34): images, annotations
that are a reference pass's detections, and the detector head's ONNX nodes.

Written as NVIDIA's tree: ``build/preprocessed_data/coco/val2017/<model dir>/int8_linear/
<file_name>.npy``, ``build/preprocessed_data/coco/annotations/instances_val2017.json`` and
``data_maps/coco/val_map.txt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from raybench.benchmarks.coco import ANNOTATIONS, CATEGORIES, CATEGORY_IDS, detections_from_log
from raybench.standins.cache import Standin
from raybench.standins.tree import DATA_DIR, save_model, write_map

STANDIN_SIZES = ((640, 480), (480, 640), (500, 375), (640, 427), (427, 640), (612, 612))
MAX_DETECTIONS = 8  # detections per stand-in image: 2..8, chosen by the image


def standin_images(count: int, rng: np.random.Generator) -> list[dict]:
    """COCO ``images`` entries for a stand-in: ids, file names and varied sizes."""
    images = []
    for i in range(count):
        width, height = STANDIN_SIZES[int(rng.integers(len(STANDIN_SIZES)))]
        image_id = 900000 + 7 * i + 1
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg",
                       "width": width, "height": height,
                       "coco_url": "", "license": 0, "date_captured": ""})
    return images


def standin_pixels(count: int, shape: tuple, rng: np.random.Generator, std: float) -> np.ndarray:
    """int8 NCHW images with one coarse 6x6 block structure per image plus noise."""
    channels, height, width = shape
    out = np.empty((count, *shape), np.int8)
    for i in range(count):
        coarse = rng.normal(0, std, (channels, 6, 6)).repeat(height // 6, 1).repeat(width // 6, 2)
        noise = rng.integers(-8, 9, shape)
        out[i] = np.clip(np.rint(coarse) + noise, -127, 127).astype(np.int8)
    return out


def write_annotations(root: Path, images: list[dict], samples: list[tuple[int, bytes]],
                      use_inv_map: bool) -> Path:
    """Write ``instances_val2017.json`` whose ground truth is exactly the detections of
    ``samples`` (payloads of a reference pass), so that pass scores mAP 100, and NVIDIA's
    ``data_maps/coco/val_map.txt`` (the images' file names, in order)."""
    data = {
        "info": {"description": "raybench stand-in for COCO 2017 val"},
        "licenses": [],
        "images": images,
        "annotations": [],
        "categories": [{"id": c, "name": n, "supercategory": n} for c, n in CATEGORIES],
    }
    inv_map = [0, *CATEGORY_IDS] if use_inv_map else None
    detections, _ = detections_from_log(samples, images, inv_map)
    for number, det in enumerate(detections, 1):
        x, y, w, h = det["bbox"]
        data["annotations"].append({
            "id": number, "image_id": det["image_id"], "category_id": det["category_id"],
            "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "segmentation": [],
        })
    path = root / DATA_DIR / ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    write_map(root, "coco", (image["file_name"] for image in images))
    return path


def detector_graph_nodes(feature: str, slots: int, boxes_xyxy: bool, rng: np.random.Generator):
    """ONNX nodes and initializers of the stand-in detector head.

    From ``feature`` ([N,108] standardised 6x6x3 block means) it computes, with fixed
    random weights: ``MAX_DETECTIONS`` boxes (normalised, min size 0.1, inside the
    image), 80-way class indices, a per-image detection count ``n`` in 2..8, scores
    (0.95 descending by 0.05 for slots below ``n``, 0.01 otherwise), all padded to
    ``slots``. Tensors produced: ``head_boxes`` [N,slots,4] (yxyx, or xyxy with
    ``boxes_xyxy``), ``head_cls`` [N,slots] int64 in 0..79, ``head_scores`` [N,slots],
    ``head_count`` [N] float.
    """
    from onnx import helper, numpy_helper

    k = MAX_DETECTIONS
    # [y0, x0, h, w] -> [y0, x0, y0 + h, x0 + w] (or the x-first order)
    to_corners = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)
    if boxes_xyxy:
        to_corners = to_corners[:, [1, 0, 3, 2]]
    slot_scores = np.full((1, slots), 0.01, np.float32)
    slot_scores[0, :k] = 0.95 - 0.05 * np.arange(k)
    inits = {
        "w_box": rng.normal(0, 0.3, (108, 4 * k)).astype(np.float32),
        "b_box": rng.normal(0, 0.3, (4 * k,)).astype(np.float32),
        "w_cls": rng.normal(0, 1, (108, 80 * k)).astype(np.float32),
        "box_shape": np.array([-1, k, 4], np.int64),
        "cls_shape": np.array([-1, k, 80], np.int64),
        "box_scale": np.array([0.6, 0.6, 0.3, 0.3], np.float32),
        "box_shift": np.array([0.0, 0.0, 0.1, 0.1], np.float32),
        "to_corners": to_corners,
        "pad_boxes": np.array([0, 0, 0, 0, slots - k, 0], np.int64),
        "pad_cls": np.array([0, 0, 0, slots - k], np.int64),
        "zero_f": np.array(0.0, np.float32),
        "zero_i": np.array(0, np.int64),
        "two": np.array(2.0, np.float32),
        "slot_index": np.arange(slots, dtype=np.float32).reshape(1, slots),
        "slot_scores": slot_scores,
        "low_score": np.array(0.01, np.float32),
        "n_starts": np.array([0], np.int64),
        "n_ends": np.array([7], np.int64),
        "n_axes": np.array([1], np.int64),
        "flat_shape": np.array([-1], np.int64),
    }
    node = helper.make_node
    nodes = [
        node("MatMul", [feature, "w_box"], ["box_mm"]),
        node("Add", ["box_mm", "b_box"], ["box_lin"]),
        node("Sigmoid", ["box_lin"], ["box_sig"]),
        node("Reshape", ["box_sig", "box_shape"], ["box_u"]),
        node("Mul", ["box_u", "box_scale"], ["box_scaled"]),
        node("Add", ["box_scaled", "box_shift"], ["box_yxhw"]),
        node("MatMul", ["box_yxhw", "to_corners"], ["box_k"]),
        node("Pad", ["box_k", "pad_boxes", "zero_f"], ["head_boxes"]),
        node("MatMul", [feature, "w_cls"], ["cls_mm"]),
        node("Reshape", ["cls_mm", "cls_shape"], ["cls_logits"]),
        node("ArgMax", ["cls_logits"], ["cls_k"], axis=2, keepdims=0),
        node("Pad", ["cls_k", "pad_cls", "zero_i"], ["head_cls"]),
        node("Slice", [feature, "n_starts", "n_ends", "n_axes"], ["n_feat"]),
        node("ArgMax", ["n_feat"], ["n_arg"], axis=1, keepdims=1),
        node("Cast", ["n_arg"], ["n_argf"], to=1),
        node("Add", ["n_argf", "two"], ["n_col"]),
        node("Less", ["slot_index", "n_col"], ["valid"]),
        node("Where", ["valid", "slot_scores", "low_score"], ["head_scores"]),
        node("Reshape", ["n_col", "flat_shape"], ["head_count"]),
    ]
    initializers = [numpy_helper.from_array(v, n) for n, v in inits.items()]
    return nodes, initializers


def feature_nodes(nchw: str, height: int, offset: float, scale: float):
    """Nodes from a float NCHW image to ``feature``: 6x6 block means, standardised."""
    from onnx import helper, numpy_helper

    block = height // 6
    nodes = [
        helper.make_node("AveragePool", [nchw], ["pooled"],
                         kernel_shape=[block, block], strides=[block, block]),
        helper.make_node("Reshape", ["pooled", "pooled_shape"], ["pooled_flat"]),
        helper.make_node("Sub", ["pooled_flat", "feat_offset"], ["feat_centred"]),
        helper.make_node("Mul", ["feat_centred", "feat_scale"], ["feature"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([-1, 108], np.int64), "pooled_shape"),
        numpy_helper.from_array(np.array(offset, np.float32), "feat_offset"),
        numpy_helper.from_array(np.array(scale, np.float32), "feat_scale"),
    ]
    return nodes, initializers


def reference_samples(model: Path, dataset, benchmark) -> list[tuple[int, bytes]]:
    """``(qsl_idx, payload)`` of an ONNX Runtime pass of ``model`` over ``dataset``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    samples = []
    for start in range(0, dataset.total_count, 8):
        indices = list(range(start, min(start + 8, dataset.total_count)))
        outputs = dict(zip(names, session.run(names, dataset.feeds(indices))))
        samples += zip(indices, benchmark.responses(outputs, indices, dataset))
    dataset.unload(range(dataset.total_count))
    return samples


def synth_detector(root: Path, count: int, benchmark, dataset_class, tensor_dir: Path,
                   shape: tuple, graph, use_inv_map: bool, rng: np.random.Generator,
                   model_path: Path) -> Standin:
    """Write a detector stand-in: its model, images, annotations from a reference pass.

    The annotations are first written without objects (the dataset needs them to
    open), then with the reference pass's detections as the ground truth.
    """
    model = save_model(graph, root / model_path)
    images = standin_images(count, rng)
    tensors = root / DATA_DIR / tensor_dir
    tensors.mkdir(parents=True, exist_ok=True)
    for image in images:
        np.save(tensors / f"{image['file_name']}.npy", standin_pixels(1, shape, rng, 40.0)[0])
    write_annotations(root, images, [], use_inv_map)
    samples = reference_samples(model, dataset_class(root / DATA_DIR), benchmark)
    write_annotations(root, images, samples, use_inv_map)
    return Standin(model=model, data_dir=root / DATA_DIR)
