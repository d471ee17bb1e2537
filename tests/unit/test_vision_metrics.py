"""COCO mAP and BraTS DICE against hand-computed cases (no Ray, no models)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from raybench.benchmarks import brats, coco
from raybench.errors import DataError


def _write_coco(data_dir, images, annotations):
    path = data_dir / coco.ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "info": {}, "licenses": [], "images": images,
        "categories": [{"id": c, "name": n, "supercategory": n} for c, n in coco.CATEGORIES],
        "annotations": annotations,
    }))
    return data_dir


@pytest.fixture
def two_images(tmp_path):
    """Image 0 (200x100, w x h): a person box [20,10,100,50]; image 1 (400x400): a car
    box [0,0,100,100] and a dog box [200,200,100,100]."""
    images = [
        {"id": 11, "file_name": "000000000011.jpg", "width": 200, "height": 100},
        {"id": 22, "file_name": "000000000022.jpg", "width": 400, "height": 400},
    ]
    annotations = [
        {"id": 1, "image_id": 11, "category_id": 1, "bbox": [20, 10, 100, 50], "area": 5000, "iscrowd": 0},
        {"id": 2, "image_id": 22, "category_id": 3, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 0},
        {"id": 3, "image_id": 22, "category_id": 18, "bbox": [200, 200, 100, 100], "area": 10000, "iscrowd": 0},
    ]
    return _write_coco(tmp_path, images, annotations)


def _entry(idx, rows):
    data = np.asarray(rows, np.float32).reshape(-1).tobytes()
    return {"seq_id": idx, "qsl_idx": idx, "data": data.hex()}


def _box(x, y, w, h, width, height):
    """Pixel [x,y,w,h] -> normalised ymin, xmin, ymax, xmax."""
    return [y / height, x / width, (y + h) / height, (x + w) / width]


def _perfect(labels=(1, 3, 18)):
    return [
        _entry(0, [[0, *_box(20, 10, 100, 50, 200, 100), 0.9, labels[0]]]),
        _entry(1, [[1, *_box(0, 0, 100, 100, 400, 400), 0.8, labels[1]],
                   [1, *_box(200, 200, 100, 100, 400, 400), 0.7, labels[2]]]),
    ]


def test_perfect_detector_scores_100(two_images):
    assert coco.coco_map(_perfect(), two_images).value == pytest.approx(100.0)


def test_inverse_map_turns_contiguous_labels_into_coco_ids(two_images):
    # contiguous 1 -> person (1), 3 -> car (3), 17 -> dog (18)
    assert coco.coco_map(_perfect((1, 3, 17)), two_images, use_inv_map=True).value == pytest.approx(100.0)
    assert coco.coco_map(_perfect((1, 3, 17)), two_images).value < 100.0


def test_wrong_class_detector_scores_zero(two_images):
    assert coco.coco_map(_perfect((2, 4, 19)), two_images).value == 0.0


def test_shifted_box_passes_seven_of_ten_iou_thresholds(tmp_path):
    images = [{"id": 5, "file_name": "5.jpg", "width": 200, "height": 200}]
    gt = [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 0}]
    data_dir = _write_coco(tmp_path, images, gt)
    # shifted 10 px right: IoU = 90*100 / (110*100) = 0.818 -> thresholds .50 .. .80 pass
    entries = [_entry(0, [[0, *_box(10, 0, 100, 100, 200, 200), 0.9, 1]])]
    assert coco.coco_map(entries, data_dir).value == pytest.approx(70.0)


def test_missed_object_halves_recall(two_images):
    entries = _perfect()
    entries[1] = _entry(1, [[1, *_box(0, 0, 100, 100, 400, 400), 0.8, 3]])  # dog missed
    # person and car AP 1, dog AP 0 -> mean over 3 categories
    assert coco.coco_map(entries, two_images).value == pytest.approx(100.0 * 2 / 3)


def test_duplicates_ignored_and_empty_payload_counts_the_image(two_images):
    entries = [*_perfect(), _entry(0, [[0, 0, 0, 0.5, 0.5, 0.99, 1]])]  # later dup ignored
    assert coco.coco_map(entries, two_images).value == pytest.approx(100.0)
    only_first = [_perfect()[0], {"seq_id": 1, "qsl_idx": 1, "data": ""}]
    assert coco.coco_map(only_first, two_images).value == pytest.approx(100.0 / 3)


def test_nothing_detected_scores_zero_and_empty_log_fails(two_images):
    assert coco.coco_map([{"seq_id": 0, "qsl_idx": 0, "data": ""}], two_images).value == 0.0
    with pytest.raises(DataError, match="no samples"):
        coco.coco_map([], two_images)


def test_bad_qsl_idx_and_missing_annotations(two_images, tmp_path):
    with pytest.raises(DataError, match="qsl_idx 7"):
        coco.coco_map([_entry(7, [])], two_images)
    with pytest.raises(DataError, match="instances_val2017.json"):
        coco.coco_map(_perfect(), tmp_path / "nowhere")


def test_dice_of_known_masks():
    a = np.zeros(10, bool)
    b = np.zeros(10, bool)
    a[0:4] = True
    b[1:7] = True  # overlap 3, sizes 4 and 6
    assert brats.dice(a, b) == pytest.approx(0.6)
    assert brats.dice(a, a) == 1.0
    assert brats.dice(a, ~a) == 0.0
    assert math.isnan(brats.dice(np.zeros(3, bool), np.zeros(3, bool)))


def test_region_dice_and_mean():
    truth = np.array([0, 1, 1, 2, 2, 3, 3, 0])
    pred = np.array([0, 1, 2, 2, 2, 3, 0, 0])
    whole, core, enhancing = brats.region_dice(pred, truth)
    assert whole == pytest.approx(2 * 5 / (5 + 6))  # labels 1-3: pred 5, truth 6, both 5
    assert core == pytest.approx(2 * 3 / (4 + 4))  # labels 2-3: pred {2,3,4,5}, truth {3,4,5,6}
    assert enhancing == pytest.approx(2 * 1 / (1 + 2))
    mean, regions = brats.mean_dice([[1.0, 0.5, float("nan")], [0.5, 0.5, 0.25]])
    assert regions == [0.75, 0.5, 0.25]  # nan left out of the enhancing mean
    assert mean == pytest.approx(0.5)
    assert brats.mean_dice([[0.123456, 1, 1]])[1][0] == 0.1235  # summary.csv's 4 decimals


def test_uncrop_segmentation_places_argmax_in_the_raw_grid():
    softmax = np.zeros((4, 6, 6, 4), np.float16)
    softmax[0] = 1
    softmax[2, 2:4, 2:4, 1:3] = 2  # the cropped 2x2x2 region sits in the padded centre
    props = {"size_after_cropping": (2, 2, 2), "original_size_of_raw_data": (5, 5, 5),
             "crop_bbox": [[1, 3], [0, 2], [3, 5]]}
    full = brats.uncrop_segmentation(softmax, props, (6, 6, 4))
    expected = np.zeros((5, 5, 5), np.uint8)
    expected[1:3, 0:2, 3:5] = 2
    assert np.array_equal(full, expected)


def test_nifti_round_trip_and_bad_files(tmp_path):
    volume = np.random.default_rng(0).integers(0, 4, (3, 5, 7)).astype(np.uint8)
    from raybench.standins.unet3d import write_nifti

    path = write_nifti(tmp_path / "case.nii.gz", volume)
    back = brats.read_nifti(path)
    assert back.shape == (3, 5, 7) and np.array_equal(back, volume)
    with pytest.raises(DataError, match="missing.nii.gz"):
        brats.read_nifti(tmp_path / "missing.nii.gz")
    raw = path.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cut.nii.gz"):
        brats.read_nifti(tmp_path / "cut.nii.gz")
