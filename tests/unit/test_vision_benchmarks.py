"""ssd-mobilenet, ssd-resnet34, 3d-unet: datasets, stand-ins and a Ray-free pipeline."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from raybench.rules import load_rules

from raybench.benchmarks import coco, get_benchmark
from raybench.benchmarks.onnx_util import check_signature
from raybench.errors import DataError
from tests.pipeline import run_pipeline


def _official_coco_parse(entries, annotation_file, use_inv_map):
    """The parsing loop of mlcommons' accuracy-coco.py, reduced to its result rows."""
    gt = json.loads(annotation_file.read_text())
    image_map = gt["images"]
    inv_map = [0] + [c["id"] for c in gt["categories"]] if use_inv_map else None
    rows = []
    for j in entries:
        idx = j["qsl_idx"]
        data = np.frombuffer(bytes.fromhex(j["data"]), np.float32)
        for i in range(0, len(data), 7):
            image_idx, ymin, xmin, ymax, xmax, score, label = data[i:i + 7]
            assert int(image_idx) == idx
            image = image_map[idx]
            label = int(label)
            if use_inv_map:
                label = inv_map[label]
            rows.append((image["id"], label, float(xmin * image["width"]),
                         float(ymin * image["height"]), float(score)))
    return rows


@pytest.fixture(scope="module")
def mobilenet(standin):
    return get_benchmark("ssd-mobilenet"), standin("ssd-mobilenet")


@pytest.fixture(scope="module")
def resnet34(standin):
    return get_benchmark("ssd-resnet34"), standin("ssd-resnet34")


@pytest.fixture(scope="module")
def unet(standin):
    return get_benchmark("3d-unet-99"), standin("3d-unet")


def _entries_and_dataset(benchmark, standin, **kw):
    entries = run_pipeline(benchmark, standin, **kw)
    return benchmark.open_dataset(standin.data_dir), entries


def test_registry_and_real_signatures():
    assert get_benchmark("ssd-mobilenet").inputs[0].describe() == "image_tensor:0 uint8 [N,300,300,3]"
    r34 = get_benchmark("ssd-resnet34")
    assert [o.name for o in r34.outputs] == ["bboxes", "labels", "scores"]
    assert r34.inputs[0].describe() == "image float32 [N,3,1200,1200]"
    unet = get_benchmark("3d-unet-99.9")
    assert unet.inputs[0].describe() == "input float32 [N,4,224,224,160]"
    rules = load_rules("v1.0")
    assert rules.model("3d-unet").fp32 == pytest.approx(0.853)
    assert rules.model("ssd-mobilenet").fp32 == 22.0 and rules.model("ssd-resnet34").fp32 == 20.0


def test_mobilenet_pipeline_scores_100(mobilenet, tmp_path):
    benchmark, standin = mobilenet
    check_signature(standin.model, benchmark.inputs, benchmark.name)
    dataset, entries = _entries_and_dataset(benchmark, standin, batch=4, write_to=tmp_path)
    assert dataset.total_count == 8
    feeds = dataset.feeds([0, 1])
    assert feeds["image_tensor:0"].dtype == np.uint8
    assert feeds["image_tensor:0"].shape == (2, 300, 300, 3)
    assert benchmark.accuracy(entries, standin.data_dir).value == pytest.approx(100.0)
    # payload as the official script reads it: COCO ids directly, boxes in the image
    rows = _official_coco_parse(entries, standin.data_dir / coco.ANNOTATIONS, use_inv_map=False)
    assert rows and all(label in coco.CATEGORY_IDS for _, label, *_ in rows)
    assert all(0.0 <= x and 0.0 <= y for _, _, x, y, _ in rows)


def test_resnet34_pipeline_scores_100_with_inverse_map(resnet34):
    benchmark, standin = resnet34
    check_signature(standin.model, benchmark.inputs, benchmark.name)
    dataset, entries = _entries_and_dataset(benchmark, standin, batch=2)
    assert dataset.feeds([0])["image"].dtype == np.float32
    assert benchmark.accuracy(entries, standin.data_dir).value == pytest.approx(100.0)
    annotations = json.loads((standin.data_dir / coco.ANNOTATIONS).read_text())["annotations"]
    rows = _official_coco_parse(entries, standin.data_dir / coco.ANNOTATIONS, use_inv_map=True)
    assert len(rows) == len(annotations)  # every kept detection is a ground-truth object
    assert {label for _, label, *_ in rows} <= {a["category_id"] for a in annotations}
    assert all(score >= 0.05 for *_, score in rows)  # slots below 0.05 were cut


def test_resnet34_responses_cut_at_score_threshold_and_reorder_boxes():
    benchmark = get_benchmark("ssd-resnet34")
    outputs = {
        "bboxes": np.array([[[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6], [0, 0, 1, 1]]], np.float32),
        "labels": np.array([[5, 80, 1]], np.int64),
        "scores": np.array([[0.9, 0.04, 0.5]], np.float32),  # break at the first < 0.05
    }
    (payload,) = benchmark.responses(outputs, [42], None)
    rows = np.frombuffer(payload, np.float32).reshape(-1, 7)
    assert rows.shape == (1, 7)
    assert rows[0].tolist() == pytest.approx([42, 0.2, 0.1, 0.4, 0.3, 0.9, 5])


def test_mobilenet_responses_keep_num_detections():
    benchmark = get_benchmark("ssd-mobilenet")
    boxes = np.zeros((2, 100, 4), np.float32)
    boxes[0, 0] = [0.1, 0.2, 0.3, 0.4]
    outputs = {
        "num_detections:0": np.array([1.0, 0.0], np.float32),
        "detection_boxes:0": boxes,
        "detection_scores:0": np.full((2, 100), 0.7, np.float32),
        "detection_classes:0": np.full((2, 100), 90.0, np.float32),
    }
    first, second = benchmark.responses(outputs, [3, 4], None)
    assert np.frombuffer(first, np.float32).tolist() == pytest.approx([3, 0.1, 0.2, 0.3, 0.4, 0.7, 90])
    assert second == b""


def test_mobilenet_pixels_survive_nvidia_quantisation():
    from raybench.benchmarks.ssd_mobilenet import to_pixels

    pixels = np.arange(256, dtype=np.float32)
    stored = ((2.0 / 255.0) * pixels - 1.0) * 127.0  # NVIDIA's preprocess_data.py
    back = to_pixels(stored.astype(np.int8).reshape(1, 1, 16, 16)).reshape(-1)
    assert np.abs(back.astype(int) - pixels.astype(int)).max() <= 1


def test_unet_pipeline_scores_dice_1_and_logs_fp16_logits(unet):
    benchmark, standin = unet
    check_signature(standin.model, benchmark.inputs, benchmark.name)
    dataset, entries = _entries_and_dataset(benchmark, standin, batch=1)
    assert dataset.total_count == 2
    # accuracy-brats.py reads float16 [4,224,224,160]: the network's logits
    logged = np.frombuffer(bytes.fromhex(entries[0]["data"]), np.float16).reshape(4, 224, 224, 160)
    from raybench.engines.base import EngineOptions
    from raybench.engines.onnxruntime import OnnxRuntimeEngine

    logits = OnnxRuntimeEngine(EngineOptions(model=standin.model)).run(dataset.feeds([0]))["output"]
    np.testing.assert_array_equal(logged, logits[0].astype(np.float16))
    score = benchmark.accuracy(entries, standin.data_dir)
    assert score.value == pytest.approx(1.0)
    assert score.official.startswith("Accuracy: mean = 1.00000, whole tumor = 1.0000")
    # a segmentation that is wrong everywhere in the tumour loses the tumour DICE
    wrong = np.zeros((4, 224, 224, 160), np.float16)
    wrong[0] = 1
    zeros = [{"seq_id": i, "qsl_idx": i, "data": wrong.tobytes().hex()} for i in range(2)]
    assert benchmark.accuracy(zeros, standin.data_dir).value == pytest.approx(0.0)
    with pytest.raises(DataError, match="bytes"):
        benchmark.accuracy([{"seq_id": i, "qsl_idx": i, "data": "00ff"} for i in range(2)],
                           standin.data_dir)


def test_unet_rejects_partial_and_duplicated_logs_as_the_official_script(unet):
    benchmark, standin = unet
    entry = {"seq_id": 0, "qsl_idx": 0, "data": "00"}
    for log in ([entry], [entry, entry], [entry, dict(entry, qsl_idx=1), entry]):
        with pytest.raises(DataError, match="exactly one entry per case"):
            benchmark.accuracy(log, standin.data_dir)


def test_synth_is_deterministic(tmp_path):
    from raybench.standins import build_standin

    a = build_standin("ssd-mobilenet", tmp_path / "a", 3, seed=9)
    b = build_standin("ssd-mobilenet", tmp_path / "b", 3, seed=9)
    assert (a.data_dir / coco.ANNOTATIONS).read_bytes() == (b.data_dir / coco.ANNOTATIONS).read_bytes()
    assert a.model.read_bytes() == b.model.read_bytes()


# --- bad files ------------------------------------------------------------------

def _coco_layout(tmp_path, tensor_dir, shape):
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 10, "height": 10} for i in range(4)]
    (tmp_path / coco.ANNOTATIONS).parent.mkdir(parents=True)
    (tmp_path / coco.ANNOTATIONS).write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    root = tmp_path / tensor_dir
    root.mkdir(parents=True)
    np.save(root / "000000000000.jpg.npy", np.zeros(shape, np.int8))
    np.save(root / "000000000001.jpg.npy", np.zeros((3, 8, 8), np.int8))  # wrong shape
    (root / "000000000002.jpg.npy").write_bytes(b"\x93NUMPY\x01\x00")  # truncated
    return tmp_path  # image 3 has no file


@pytest.mark.parametrize("name", ["ssd-mobilenet", "ssd-resnet34"])
def test_coco_dataset_bad_files_name_the_file(tmp_path, name):
    from raybench.benchmarks import ssd_mobilenet, ssd_resnet34

    module = ssd_mobilenet if name == "ssd-mobilenet" else ssd_resnet34
    data_dir = _coco_layout(tmp_path, module.TENSOR_DIR, module.SAMPLE_SHAPE)
    dataset = get_benchmark(name).open_dataset(data_dir)
    assert dataset.total_count == 4
    dataset.load([0])
    for index, fragment in ((1, "expected int8"), (2, "truncated"), (3, "missing")):
        with pytest.raises(DataError, match=f"{index:012d}.jpg.npy.*{fragment}"):
            dataset.feeds([index])
    with pytest.raises(DataError, match="missing directory"):
        get_benchmark(name).open_dataset(tmp_path / "empty")


def test_coco_dataset_without_annotations(tmp_path):
    from raybench.benchmarks.ssd_mobilenet import TENSOR_DIR

    (tmp_path / TENSOR_DIR).mkdir(parents=True)
    with pytest.raises(DataError, match="instances_val2017.json"):
        get_benchmark("ssd-mobilenet").open_dataset(tmp_path)


def test_brats_dataset_bad_files_name_the_file(tmp_path):
    from raybench.benchmarks import unet3d

    root = tmp_path / unet3d.TENSOR_DIR
    root.mkdir(parents=True)
    with pytest.raises(DataError, match="preprocessed_files.pkl.*val_map.txt"):
        get_benchmark("3d-unet-99").open_dataset(tmp_path)
    (tmp_path / "brats" / "val_map.txt").write_text("case_a\ncase_b\ncase_c\n")
    np.save(root / "case_a.npy", np.zeros((4, 8, 8, 8), np.float32))  # wrong shape
    (root / "case_b.npy").write_bytes(b"\x93NUMPY")  # truncated
    dataset = get_benchmark("3d-unet-99").open_dataset(tmp_path)
    assert dataset.total_count == 3
    for case, fragment in (("case_a", "expected float32"), ("case_b", "truncated"), ("case_c", "missing")):
        with pytest.raises(DataError, match=f"{case}.npy.*{fragment}"):
            dataset.load([dataset.cases.index(case)])


def test_brats_case_order_comes_from_preprocessed_files_pkl(tmp_path):
    from raybench.benchmarks import unet3d

    (tmp_path / unet3d.PROPERTIES_DIR).mkdir(parents=True)
    with open(tmp_path / unet3d.CASE_LIST, "wb") as f:
        pickle.dump(["case_b", "case_a"], f)
    assert unet3d.read_cases(tmp_path) == ["case_b", "case_a"]
    (tmp_path / "brats" / "val_map.txt").write_text("case_a\ncase_b\n")
    with pytest.raises(DataError, match="list different cases or orders"):
        unet3d.read_cases(tmp_path)
    (tmp_path / "brats" / "val_map.txt").write_text("case_b\ncase_a\n")
    assert unet3d.read_cases(tmp_path) == ["case_b", "case_a"]


def test_brats_accuracy_names_missing_ground_truth(unet, tmp_path):
    from raybench.benchmarks import unet3d

    benchmark, standin = unet
    data_dir = tmp_path / "d"
    (data_dir / "brats").mkdir(parents=True)
    (data_dir / "brats" / "val_map.txt").write_text("lonely\n")
    entry = {"seq_id": 0, "qsl_idx": 0, "data": np.zeros(unet3d.SAMPLE_SHAPE, np.float16).tobytes().hex()}
    with pytest.raises(DataError, match="lonely.pkl"):
        benchmark.accuracy([entry], data_dir)
    (data_dir / unet3d.PROPERTIES_DIR).mkdir(parents=True)
    props = {"size_after_cropping": (4, 4, 4), "original_size_of_raw_data": (8, 8, 8),
             "crop_bbox": [[0, 4], [0, 4], [0, 4]]}
    with open(data_dir / unet3d.PROPERTIES_DIR / "lonely.pkl", "wb") as f:
        pickle.dump([None, props], f)
    with pytest.raises(DataError, match="lonely.nii.gz"):
        benchmark.accuracy([entry], data_dir)
