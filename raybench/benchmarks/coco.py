"""COCO 2017 validation: shared by ssd-mobilenet and ssd-resnet34.

Layout under ``--data-dir`` (NVIDIA's ``preprocessed_data``)::

    coco/annotations/instances_val2017.json         COCO annotations (copied by NVIDIA's
                                                    preprocess_data.py)
    coco/val2017/<model dir>/int8_linear/<stem>.npy  one preprocessed image per file

Sample order: the order of the ``images`` list of ``instances_val2017.json``. This is
the order the official ``accuracy-coco.py`` assumes (LoadGen's ``qsl_idx`` indexes
that list), so the accuracy log of a raybench run can be scored by the official script.
An image's file is ``Path(file_name).stem + ".npy"``.

Accuracy-log payload (what ``accuracy-coco.py`` reads): float32 groups of 7 per
detection, ``qsl_idx, ymin, xmin, ymax, xmax, score, class`` with the box normalised to
[0, 1]; an image without detections has an empty payload.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from raybench.benchmarks.base import Dataset, load_npy, logged_samples
from raybench.errors import DataError

ANNOTATIONS = Path("coco/annotations/instances_val2017.json")

# The 80 COCO 2017 categories, in the order of instances_val2017.json (id, name).
CATEGORIES = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"),
    (6, "bus"), (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"),
    (11, "fire hydrant"), (13, "stop sign"), (14, "parking meter"), (15, "bench"),
    (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"),
    (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"),
    (35, "skis"), (36, "snowboard"), (37, "sports ball"), (38, "kite"),
    (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"), (42, "surfboard"),
    (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"),
    (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"),
    (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"),
    (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"), (72, "tv"),
    (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"), (77, "cell phone"),
    (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"), (82, "refrigerator"),
    (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
    (89, "hair drier"), (90, "toothbrush"),
)
CATEGORY_IDS = tuple(c for c, _ in CATEGORIES)


def annotations_path(data_dir: Path) -> Path:
    """``instances_val2017.json`` of a data directory.

    Raises:
        DataError: The file does not exist.
    """
    path = Path(data_dir) / ANNOTATIONS
    if not path.is_file():
        raise DataError(f"{path}: missing COCO annotation file")
    return path


def read_images(path: Path) -> list[dict]:
    """The ``images`` list of a COCO annotation file, in file order (= sample order).

    Raises:
        DataError: Unreadable JSON or no usable ``images`` list.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable COCO annotations ({exc})") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not images:
        raise DataError(f"{path}: no 'images' listed")
    for number, image in enumerate(images):
        if not isinstance(image, dict) or not {"id", "file_name", "width", "height"} <= set(image):
            raise DataError(f"{path}: images[{number}] lacks id/file_name/width/height")
    return images


class CocoDataset(Dataset):
    """Preprocessed COCO validation images, one .npy per image, in annotation order.

    Args:
        data_dir: NVIDIA ``preprocessed_data`` directory.
        tensor_dir: Directory of the .npy files relative to ``data_dir``.
        shape: Shape of one stored image.
        input_name: Model input name the feeds are keyed by.
        convert: Turns a stacked batch of stored int8 images into the model input.
    """

    def __init__(self, data_dir: Path, tensor_dir: Path, shape: tuple, input_name: str,
                 convert: Callable[[np.ndarray], np.ndarray]):
        self.root = Path(data_dir) / tensor_dir
        if not self.root.is_dir():
            raise DataError(f"{self.root}: missing directory of preprocessed images")
        self.images = read_images(annotations_path(Path(data_dir)))
        self.shape = shape
        self.input_name = input_name
        self.convert = convert

    @property
    def total_count(self) -> int:
        return len(self.images)

    def path(self, index: int) -> Path:
        """The .npy file of sample ``index``."""
        return self.root / (Path(self.images[index]["file_name"]).stem + ".npy")

    def read(self, index: int) -> np.ndarray:
        return load_npy(self.path(index), "int8", self.shape)

    def raw(self, indices: Sequence[int]) -> np.ndarray:
        """The stored int8 NCHW images of a batch (NVIDIA's int8_linear engine input)."""
        return np.stack(self.samples(indices))

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        return {self.input_name: self.convert(self.raw(indices))}


def pack_detections(index: int, boxes_yxyx: np.ndarray, scores: np.ndarray,
                    classes: np.ndarray) -> bytes:
    """One sample's accuracy-log payload: float32 groups of 7.

    Args:
        index: The sample's qsl index.
        boxes_yxyx: [K,4] normalised ymin, xmin, ymax, xmax.
        scores: [K] scores.
        classes: [K] class numbers as the model emits them.
    """
    count = len(scores)
    rows = np.empty((count, 7), np.float32)
    rows[:, 0] = index
    rows[:, 1:5] = boxes_yxyx[:count]
    rows[:, 5] = scores
    rows[:, 6] = classes[:count]
    return rows.tobytes()


def detections_from_log(entries: list[dict], images: list[dict],
                        inv_map: Sequence[int] | None = None) -> tuple[list[dict], set[int]]:
    """Turn accuracy-log entries into pycocotools results, as ``accuracy-coco.py`` does.

    Entries are de-duplicated by ``qsl_idx``; boxes are scaled by the image's size;
    with ``inv_map`` the class is mapped through it (``--use-inv-map``).

    Returns:
        The detections (``image_id``, ``category_id``, ``bbox`` [x,y,w,h], ``score``)
        and the ids of every image seen, with or without detections.

    Raises:
        DataError: A ``qsl_idx`` outside the annotation's images.
    """
    detections: list[dict] = []
    image_ids: set[int] = set()
    for idx, payload in logged_samples(entries, len(images), allow_empty=True):
        image = images[idx]
        image_ids.add(image["id"])
        data = np.frombuffer(payload, np.float32)
        for i in range(0, len(data) - 6, 7):
            _, ymin, xmin, ymax, xmax, score, label = data[i:i + 7]
            height, width = image["height"], image["width"]
            ymin *= height
            xmin *= width
            ymax *= height
            xmax *= width
            label = int(label)
            if inv_map is not None:
                label = inv_map[label]
            detections.append({
                "image_id": image["id"],
                "category_id": label,
                "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)],
                "score": float(score),
            })
    return detections, image_ids


def coco_map(entries: list[dict], data_dir: Path, use_inv_map: bool = False) -> float:
    """COCO mAP@[.5:.95] in percent, computed like the official ``accuracy-coco.py``.

    Args:
        entries: Parsed ``mlperf_log_accuracy.json`` entries.
        data_dir: Directory holding ``coco/annotations/instances_val2017.json``.
        use_inv_map: Map contiguous class numbers 1..80 to COCO ids (ssd-resnet34).

    Returns:
        ``100 * stats[0]`` of pycocotools' COCOeval (0.0 when nothing was detected).

    Raises:
        DataError: Missing annotations or an empty log.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = annotations_path(Path(data_dir))
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(path))
    inv_map = [0] + list(ground_truth.getCatIds()) if use_inv_map else None
    detections, image_ids = detections_from_log(entries, ground_truth.dataset["images"], inv_map)
    if not image_ids:
        raise DataError("accuracy log holds no samples")
    if not detections:
        return 0.0  # the official script would fail in loadRes; nothing found scores 0
    with contextlib.redirect_stdout(io.StringIO()):
        results = ground_truth.loadRes(detections)
        evaluation = COCOeval(ground_truth, results, iouType="bbox")
        evaluation.params.imgIds = list(image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return max(0.0, 100.0 * float(evaluation.stats[0]))


# --- stand-in helpers -------------------------------------------------------------

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


def write_standin_coco(data_dir: Path, images: list[dict], entries: list[dict],
                       use_inv_map: bool) -> Path:
    """Write ``instances_val2017.json`` whose ground truth is exactly the detections of
    ``entries`` (payloads of a reference pass), so that pass scores mAP 100."""
    data = {
        "info": {"description": "raybench stand-in for COCO 2017 val"},
        "licenses": [],
        "images": images,
        "annotations": [],
        "categories": [{"id": c, "name": n, "supercategory": n} for c, n in CATEGORIES],
    }
    inv_map = [0, *CATEGORY_IDS] if use_inv_map else None
    detections, _ = detections_from_log(entries, images, inv_map)
    for number, det in enumerate(detections, 1):
        x, y, w, h = det["bbox"]
        data["annotations"].append({
            "id": number, "image_id": det["image_id"], "category_id": det["category_id"],
            "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "segmentation": [],
        })
    path = Path(data_dir) / ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
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


def reference_entries(model: Path, dataset: CocoDataset, benchmark) -> list[dict]:
    """Accuracy-log entries of an ONNX Runtime pass of ``model`` over ``dataset``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    entries = []
    for start in range(0, dataset.total_count, 8):
        indices = list(range(start, min(start + 8, dataset.total_count)))
        outputs = dict(zip(names, session.run(names, dataset.feeds(indices))))
        for i, payload in zip(indices, benchmark.responses(outputs, indices, dataset)):
            entries.append({"seq_id": i, "qsl_idx": i, "data": payload.hex()})
    dataset.unload(range(dataset.total_count))
    return entries
