"""3D-UNet (nnU-Net) on BraTS 2019 fold 1, NVIDIA's fp32 npy layout.

NVIDIA's tree (``--data-dir build/preprocessed_data``)::

    build/preprocessed_data/brats/brats_npy/fp32/<case>.npy    float32 [4,224,224,160]
    build/preprocessed_data/brats/brats_reference_preprocessed/
        preprocessed_files.pkl                    case names in sample order (a pickled list)
        <case>.pkl                                nnU-Net's [data, properties]
    build/preprocessed_data/brats/brats_reference_raw/Task043_BraTS2019/labelsTr/<case>.nii.gz
    data_maps/brats/val_map.txt                   case names, one a line

The sample order is ``preprocessed_files.pkl``'s (the file the official
``accuracy-brats.py`` reads; NVIDIA's preprocess_data.py rewrites it in val_map order),
else the val_map's (also accepted beside the data, ``brats/val_map.txt``); when both
exist they must agree. Of a case's properties only ``size_after_cropping``,
``crop_bbox`` and ``original_size_of_raw_data`` are used; the ``.pkl`` files are
pickles, so only point ``--data-dir`` at data you trust.

Model: mlcommons' ``224_224_160.onnx``, input ``input`` [N,4,224,224,160] float32; of
its outputs only ``output`` (class logits, same shape) is used. The accuracy-log
payload is the logits as float16 [4,224,224,160] (64 MiB per sample), what the
reference and NVIDIA write and ``accuracy-brats.py`` of v1.0 reads with its default
``--output_dtype float16``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks import brats
from raybench.benchmarks.base import (Benchmark, Dataset, TensorSpec, data_map_candidates,
                                      existing_data_map, load_npy, read_map_names)
from raybench.errors import DataError
from raybench.results.accuracy import Score

SAMPLE_SHAPE = (4, 224, 224, 160)
PADDED_SHAPE = SAMPLE_SHAPE[1:]
TENSOR_DIR = Path("brats/brats_npy/fp32")
PROPERTIES_DIR = Path("brats/brats_reference_preprocessed")
CASE_LIST = PROPERTIES_DIR / "preprocessed_files.pkl"
LABELS_DIR = Path("brats/brats_reference_raw/Task043_BraTS2019/labelsTr")
RAW_SHAPE = (155, 240, 240)  # a BraTS volume, (z, y, x)


def _unpickle(path: Path, what: str):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: missing {what}") from None
    except Exception as exc:  # unpickling raises many types
        raise DataError(f"{path}: unreadable {what} ({type(exc).__name__})") from None


def read_cases(data_dir: Path) -> list[str]:
    """Case names in sample order: preprocessed_files.pkl, else the val_map.

    Raises:
        DataError: Neither exists (every path tried is named), one is malformed or
            empty, or the two disagree.
    """
    data_dir = Path(data_dir)
    pkl = data_dir / CASE_LIST
    val_map = existing_data_map(data_dir, "brats")
    listed = read_map_names(val_map) if val_map else None
    if not pkl.is_file():
        if listed is None:
            tried = ", ".join(str(p) for p in (pkl, *data_map_candidates(data_dir, "brats")))
            raise DataError(f"missing BraTS case list: tried {tried}")
        return listed
    cases = _unpickle(pkl, "BraTS case list")
    if not isinstance(cases, list) or not cases or not all(isinstance(c, str) for c in cases):
        raise DataError(f"{pkl}: expected a non-empty pickled list of case names")
    if listed is not None and listed != cases:
        raise DataError(f"{pkl} and {val_map} list different cases or orders "
                        f"({len(cases)} and {len(listed)} cases)")
    return cases


def read_properties(data_dir: Path, case: str) -> dict:
    """nnU-Net's properties of one case from its reference ``.pkl``.

    Raises:
        DataError: Missing or malformed file.
    """
    path = Path(data_dir) / PROPERTIES_DIR / f"{case}.pkl"
    content = _unpickle(path, "case properties")
    properties = content[1] if isinstance(content, (list, tuple)) and len(content) == 2 else None
    keys = {"size_after_cropping", "original_size_of_raw_data"}
    if not isinstance(properties, dict) or not keys <= set(properties):
        raise DataError(f"{path}: expected [data, properties] with {sorted(keys)}")
    return properties


class BratsDataset(Dataset):
    """Preprocessed, padded BraTS cases, one fp32 .npy per case."""

    feeds_as_stored = True  # the engine casts the stored arrays

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / TENSOR_DIR
        if not self.root.is_dir():
            raise DataError(f"{self.root}: missing directory of preprocessed cases")
        self.cases = read_cases(Path(data_dir))

    @property
    def total_count(self) -> int:
        return len(self.cases)

    def path(self, index: int) -> Path:
        """The .npy file of sample ``index``."""
        return self.root / f"{self.cases[index]}.npy"

    def read(self, index: int) -> np.ndarray:
        return load_npy(self.path(index), "float32", SAMPLE_SHAPE)

    def feeds(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        return {"input": self.batch(indices)}


class Unet3d(Benchmark):
    """MLPerf 3d-unet: mean DICE of whole tumour, tumour core, enhancing tumour."""

    name = "3d-unet"
    model_filename = "224_224_160.onnx"
    inputs = (TensorSpec("input", "float32", (None, 4, 224, 224, 160)),)
    outputs = (TensorSpec("output", "float32", (None, 4, 224, 224, 160)),)

    def open_dataset(self, data_dir: Path) -> BratsDataset:
        return BratsDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        logits = np.asarray(outputs["output"])
        return [logits[b].astype(np.float16).tobytes() for b in range(len(indices))]

    def accuracy(self, entries: list[dict], data_dir: Path) -> Score:
        """Mean DICE as accuracy-brats.py: it needs exactly one entry per case.

        Raises:
            DataError: A log without exactly one entry per case (the official script
                fails its assertions on it), a payload of the wrong size, or missing
                properties or ground truth.
        """
        data_dir = Path(data_dir)
        cases = read_cases(data_dir)
        logged = {}
        for entry in entries:
            idx = int(entry["qsl_idx"])
            if not 0 <= idx < len(cases):
                raise DataError(f"accuracy log: qsl_idx {idx} outside the {len(cases)} cases")
            logged.setdefault(idx, entry["data"])
        if len(entries) != len(cases) or len(logged) != len(cases):
            raise DataError(f"accuracy log: {len(entries)} entries for {len(logged)} of "
                            f"{len(cases)} cases; accuracy-brats.py needs exactly one entry "
                            "per case")
        want = int(np.prod(SAMPLE_SHAPE)) * 2
        per_case = []
        for idx, case in enumerate(cases):
            raw = bytes.fromhex(logged[idx])
            if len(raw) != want:
                raise DataError(f"accuracy log: sample {idx} holds {len(raw)} bytes, "
                                f"expected {want} (float16 {list(SAMPLE_SHAPE)})")
            scores = np.frombuffer(raw, np.float16).reshape(SAMPLE_SHAPE)
            prediction = brats.uncrop_segmentation(scores, read_properties(data_dir, case),
                                                   PADDED_SHAPE)
            truth = brats.read_nifti(data_dir / LABELS_DIR / f"{case}.nii.gz")
            if truth.shape != prediction.shape:
                raise DataError(f"{case}: ground truth {truth.shape} does not match "
                                f"original_size_of_raw_data {prediction.shape}")
            per_case.append(brats.region_dice(prediction, truth))
        mean, (whole, core, enhancing) = brats.mean_dice(per_case)
        official = ("Accuracy: mean = {:.5f}, whole tumor = {:.4f}, tumor core = {:.4f}, "
                    "enhancing tumor = {:.4f}").format(mean, whole, core, enhancing)
        return Score(mean, official, (f"accuracy log: one entry for each of the "
                                      f"{len(cases)} cases",))
