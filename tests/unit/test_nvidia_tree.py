"""Stand-ins are written in NVIDIA's v1.0 tree with NVIDIA's file names, and a stand-in of
raybench's former layout becomes that tree by renaming files only."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from raybench.benchmarks import get_benchmark
from raybench.errors import DataError
from tests.pipeline import run_pipeline

BENCHMARK = {"resnet50": "resnet50", "ssd-mobilenet": "ssd-mobilenet",
             "ssd-resnet34": "ssd-resnet34", "bert": "bert-99", "dlrm": "dlrm-99",
             "rnnt": "rnnt", "3d-unet": "3d-unet-99"}
MODEL = {"resnet50": "ResNet50/resnet50_v1.onnx",
         "ssd-mobilenet": "SSDMobileNet/ssd_mobilenet_v1_coco_2018_01_28.onnx",
         "ssd-resnet34": "SSDResNet34/resnet34-ssd1200.onnx", "bert": "bert/bert_large_v1_1.onnx",
         "dlrm": "dlrm/tb00_40M.onnx", "rnnt": "rnn-t/rnnt.onnx",
         "3d-unet": "3d-unet/224_224_160.onnx"}
COCO_DIR = {"ssd-mobilenet": "SSDMobileNet", "ssd-resnet34": "SSDResNet34"}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def expected_files(model: str, root: Path) -> list[str]:
    """The files NVIDIA's scripts would have written for the stand-in's samples."""
    data = "build/preprocessed_data"
    if model == "resnet50":
        names = [ln.split("\t")[0] for ln in lines(root / "data_maps/imagenet/val_map.txt")]
        assert all(n.startswith("ILSVRC2012_val_") and n.endswith(".JPEG") for n in names)
        return [f"{data}/imagenet/ResNet50/int8_linear/{n}.npy" for n in names]
    if model in COCO_DIR:
        annotations = f"{data}/coco/annotations/instances_val2017.json"
        images = json.loads((root / annotations).read_text())["images"]
        names = [image["file_name"] for image in images]
        assert lines(root / "data_maps/coco/val_map.txt") == names
        assert all(n.endswith(".jpg") and len(n) == 16 for n in names)
        return [annotations] + [f"{data}/coco/val2017/{COCO_DIR[model]}/int8_linear/{n}.npy"
                                for n in names]
    if model == "bert":
        return ["build/data/squad/dev-v1.1.json", "build/models/bert/vocab.txt",
                "data_maps/squad/val_map.txt"] + [
            f"{data}/squad_tokenized/{a}.npy" for a in ("input_ids", "segment_ids", "input_mask")]
    if model == "dlrm":
        return ["data_maps/criteo/val_map.txt"] + [
            f"{data}/criteo/full_recalib/{n}.npy"
            for n in ("numeric_int8_chw4", "categorical_int32", "sample_partition", "ground_truth")]
    if model == "rnnt":
        manifest = json.loads((root / data / "LibriSpeech/dev-clean-wav.json").read_text())
        count = sum(e["original_duration"] <= 15 for e in manifest)
        names = [f"RNNT_input_512_{i}" for i in range(count)]
        assert lines(root / "data_maps/rnnt_dev_clean_512/val_map.txt") == names
        return [f"{data}/rnnt_dev_clean_512/{kind}/{n}.npy" for n in names
                for kind in ("fp16", "int32")]
    cases = lines(root / "data_maps/brats/val_map.txt")
    with open(root / data / "brats/brats_reference_preprocessed/preprocessed_files.pkl", "rb") as f:
        assert pickle.load(f) == cases
    return [f"{data}/brats/{path}" for case in cases for path in (
        f"brats_npy/fp32/{case}.npy", f"brats_reference_preprocessed/{case}.pkl",
        f"brats_reference_raw/Task043_BraTS2019/labelsTr/{case}.nii.gz")]


@pytest.mark.parametrize("model", list(BENCHMARK))
def test_standin_is_written_in_nvidias_tree(standin, model):
    s = standin(model)
    root = s.data_dir.parent.parent
    assert s.data_dir == root / "build" / "preprocessed_data"
    assert s.model == root / "build" / "models" / MODEL[model]
    for rel in expected_files(model, root):
        assert (root / rel).is_file(), rel


def test_rnnt_and_brats_files_hold_what_nvidia_writes(standin):
    rnnt = standin("rnnt").data_dir / "rnnt_dev_clean_512"
    features = np.load(rnnt / "fp16" / "RNNT_input_512_0.npy")
    length = np.load(rnnt / "int32" / "RNNT_input_512_0.npy")
    assert (features.dtype, features.shape) == (np.float16, (512, 240))
    assert (length.dtype, length.shape) == (np.int32, (1,))
    brats = standin("3d-unet").data_dir / "brats" / "brats_reference_preprocessed"
    case = lines(standin("3d-unet").data_dir.parent.parent / "data_maps/brats/val_map.txt")[0]
    with open(brats / f"{case}.pkl", "rb") as f:
        properties = pickle.load(f)[1]
    # what nnU-Net's save_segmentation_nifti_from_softmax sets on the exported label map
    assert {"itk_spacing", "itk_origin", "itk_direction", "crop_bbox", "size_after_cropping",
            "original_size_of_raw_data"} <= set(properties)


# --- raybench's former stand-in layout -> NVIDIA's tree, by renaming files only ---------

def old_name(model: str, root: Path, rel: str) -> str:
    """Where raybench's former layout kept the file NVIDIA's tree has at ``rel``."""
    data = "build/preprocessed_data/"
    if rel.startswith("build/models/"):
        return Path(rel).name  # the model sat at the stand-in's top
    if rel in ("data_maps/imagenet/val_map.txt", "data_maps/brats/val_map.txt"):
        return "preprocessed_data/" + rel[len("data_maps/"):]  # beside the data
    if rel == "build/data/squad/dev-v1.1.json" or rel == "build/models/bert/vocab.txt":
        return "preprocessed_data/squad/" + Path(rel).name
    if not rel.startswith(data):
        return ""  # a map the former layout did not write
    rel = "preprocessed_data/" + rel[len(data):]
    if model in ("resnet50", *COCO_DIR) and rel.endswith(".npy"):
        return rel[:-len(".JPEG.npy" if model == "resnet50" else ".jpg.npy")] + ".npy"
    if model == "rnnt" and "/RNNT_input_512_" in rel:
        manifest = json.loads((root / data / "LibriSpeech/dev-clean-wav.json").read_text())
        kept = [e for e in manifest if e["original_duration"] <= 15]
        index = int(rel.rsplit("_", 1)[1][:-len(".npy")])
        utterance = Path(kept[index]["files"][-1]["fname"]).stem
        return rel.rsplit("/", 1)[0] + f"/{utterance}.npy"
    return rel


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and p.name != "standin.complete.json"}


@pytest.mark.parametrize("model", list(BENCHMARK))
def test_former_layout_moves_to_nvidias_tree_by_renaming_only(standin, model, tmp_path):
    s = standin(model)
    root = s.data_dir.parent.parent
    new_tree = tree(root)
    renames = {rel: old_name(model, root, rel) for rel in new_tree}
    old, new = tmp_path / "old", tmp_path / "new"
    for rel, was in renames.items():
        if was:
            (old / was).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / rel, old / was)
    benchmark = get_benchmark(BENCHMARK[model])
    if model in ("resnet50", *COCO_DIR):  # the former file names are not NVIDIA's
        with pytest.raises(DataError, match=r"\.(JPEG|jpg)\.npy: missing sample file"):
            benchmark.open_dataset(old / "preprocessed_data").load([0])
    for rel, was in renames.items():  # the move: renames only, no file rewritten
        if was:
            (new / rel).parent.mkdir(parents=True, exist_ok=True)
            (old / was).rename(new / rel)
    assert not [p for p in old.rglob("*") if p.is_file()]
    moved = tree(new)
    assert moved == {rel: h for rel, h in new_tree.items() if renames[rel]}
    data_dir = new / "build" / "preprocessed_data"
    entries = run_pipeline(benchmark, type(s)(model=new / "build/models" / MODEL[model],
                                               data_dir=data_dir))
    value = benchmark.accuracy(entries, data_dir).value
    assert value == pytest.approx(1.0 if model == "3d-unet" else 100.0)
