"""COCO 2017 validation: shared by ssd-mobilenet and ssd-resnet34.

NVIDIA's tree (``--data-dir build/preprocessed_data``)::

    build/preprocessed_data/coco/annotations/instances_val2017.json   (copied by NVIDIA's
                                                                      preprocess_data.py)
    build/preprocessed_data/coco/val2017/<model dir>/int8_linear/<file_name>.npy
    data_maps/coco/val_map.txt                  the annotations' file names, in their order

Sample order: the order of the ``images`` list of ``instances_val2017.json``. This is
the order the official ``accuracy-coco.py`` assumes (LoadGen's ``qsl_idx`` indexes
that list) and the order of NVIDIA's ``val_map.txt`` (made from that list); when a map
is found it must list the same names in the same order. An image's file is its whole
``file_name`` plus ``.npy`` (``000000397133.jpg.npy``).

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

from raybench.benchmarks.base import Dataset, existing_data_map, load_npy, read_log, read_map_names
from raybench.errors import DataError
from raybench.results.accuracy import Score

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


def check_val_map(data_dir: Path, images: list[dict]) -> None:
    """Check that a COCO ``val_map.txt``, where one is found, lists the annotations'
    file names in their order (the sample order of both NVIDIA's harness and the
    official script).

    Raises:
        DataError: The map differs (the first difference is named).
    """
    path = existing_data_map(data_dir, "coco")
    if path is None:
        return
    names = read_map_names(path)
    expected = [image["file_name"] for image in images]
    if names != expected:
        at = next((i for i, (a, b) in enumerate(zip(names, expected)) if a != b),
                  min(len(names), len(expected)))
        found = names[at] if at < len(names) else "end of file"
        want = expected[at] if at < len(expected) else "end of images"
        raise DataError(f"{path}: line {at + 1} is {found}, but the annotations' image "
                        f"{at} is {want} (the map must follow instances_val2017.json)")


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
        check_val_map(Path(data_dir), self.images)
        self.shape = shape
        self.input_name = input_name
        self.convert = convert

    @property
    def total_count(self) -> int:
        return len(self.images)

    def path(self, index: int) -> Path:
        """The .npy file of sample ``index``."""
        return self.root / f"{self.images[index]['file_name']}.npy"

    def read(self, index: int) -> np.ndarray:
        return load_npy(self.path(index), "int8", self.shape)

    def raw(self, indices: Sequence[int]) -> np.ndarray:
        """The stored int8 NCHW images of a batch (NVIDIA's int8_linear engine input)."""
        return self.batch(indices)

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


def detections_from_log(samples: list[tuple[int, bytes]], images: list[dict],
                        inv_map: Sequence[int] | None = None) -> tuple[list[dict], set[int]]:
    """Turn accuracy-log entries into pycocotools results, as ``accuracy-coco.py`` does.

    Boxes are scaled by the image's size; with ``inv_map`` the class is mapped through
    it (``--use-inv-map``).

    Args:
        samples: ``(qsl_idx, payload)`` of each logged sample (see :func:`read_log`).
        images: The annotations' ``images`` list.
        inv_map: Contiguous class number -> COCO category id.

    Returns:
        The detections (``image_id``, ``category_id``, ``bbox`` [x,y,w,h], ``score``)
        and the ids of every image seen, with or without detections.
    """
    detections: list[dict] = []
    image_ids: set[int] = set()
    for idx, payload in samples:
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


def coco_map(entries: list[dict], data_dir: Path, use_inv_map: bool = False) -> Score:
    """COCO mAP@[.5:.95] in percent, as the official ``accuracy-coco.py`` computes it.

    The first entry of a sample counts; only the images logged are evaluated.

    Args:
        entries: Parsed ``mlperf_log_accuracy.json`` entries.
        data_dir: Directory holding ``coco/annotations/instances_val2017.json``.
        use_inv_map: Map contiguous class numbers 1..80 to COCO ids (ssd-resnet34).

    Returns:
        ``100 * stats[0]`` of pycocotools' COCOeval and the script's ``mAP=`` line.

    Raises:
        DataError: Missing annotations or an empty log.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = annotations_path(Path(data_dir))
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(path))
    inv_map = [0] + list(ground_truth.getCatIds()) if use_inv_map else None
    images = ground_truth.dataset["images"]
    log = read_log(entries, len(images), "accuracy-coco.py")
    detections, image_ids = detections_from_log(log.samples, images, inv_map)
    if not detections:
        note = "no detections at all: accuracy-coco.py fails in loadRes; raybench scores 0"
        return Score(0.0, "mAP=0.000%", (*log.notes, note))
    with contextlib.redirect_stdout(io.StringIO()):
        results = ground_truth.loadRes(detections)
        evaluation = COCOeval(ground_truth, results, iouType="bbox")
        evaluation.params.imgIds = list(image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    value = 100.0 * float(evaluation.stats[0])
    return Score(value, "mAP={:.3f}%".format(100. * evaluation.stats[0]), log.notes)
