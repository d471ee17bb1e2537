"""3D-UNet (nnU-Net) on BraTS 2019 fold 1, NVIDIA's fp32 npy layout.

Layout under ``--data-dir`` (NVIDIA's ``preprocessed_data``)::

    brats/brats_npy/fp32/<case>.npy                     float32 [4,224,224,160] per case
    brats/val_map.txt                                   case names, one a line
    brats/brats_reference_preprocessed/<case>.pkl       nnU-Net's [data, properties]
    brats/brats_reference_raw/Task043_BraTS2019/labelsTr/<case>.nii.gz   ground truth

``val_map.txt`` may also sit in NVIDIA's ``../data_maps/brats/``; its line order is
the sample order. Only the properties (``size_after_cropping``, ``crop_bbox``,
``original_size_of_raw_data``) of the ``.pkl`` files are used; they are pickles, so
only point ``--data-dir`` at data you trust.

Model: mlcommons' ``224_224_160.onnx``, input ``input`` [N,4,224,224,160] float32; of
its outputs only ``output`` (class logits, same shape) is used. The accuracy-log
payload is what ``accuracy-brats.py`` of v1.0 reads with its default
``--output_dtype float16``: the channel softmax as float16 [4,224,224,160]
(64 MiB per sample).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from raybench.benchmarks import brats
from raybench.benchmarks.base import (Benchmark, Dataset, Standin, TensorSpec, find_data_map,
                                      load_npy, logged_samples)
from raybench.errors import DataError

SAMPLE_SHAPE = (4, 224, 224, 160)
PADDED_SHAPE = SAMPLE_SHAPE[1:]
TENSOR_DIR = Path("brats/brats_npy/fp32")
PROPERTIES_DIR = Path("brats/brats_reference_preprocessed")
LABELS_DIR = Path("brats/brats_reference_raw/Task043_BraTS2019/labelsTr")
RAW_SHAPE = (155, 240, 240)  # a BraTS volume, (z, y, x)


def find_val_map(data_dir: Path) -> Path:
    """Locate the BraTS case list (see :func:`find_data_map`)."""
    return find_data_map(data_dir, "brats", "BraTS val_map.txt (case list)")


def read_cases(data_dir: Path) -> list[str]:
    """Case names in sample order.

    Raises:
        DataError: Missing or empty case list.
    """
    path = find_val_map(Path(data_dir))
    cases = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not cases:
        raise DataError(f"{path}: no cases listed")
    return cases


def read_properties(data_dir: Path, case: str) -> dict:
    """nnU-Net's properties of one case from its reference ``.pkl``.

    Raises:
        DataError: Missing or malformed file.
    """
    path = Path(data_dir) / PROPERTIES_DIR / f"{case}.pkl"
    try:
        with open(path, "rb") as f:
            content = pickle.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: missing case properties") from None
    except Exception as exc:  # unpickling raises many types
        raise DataError(f"{path}: unreadable case properties ({type(exc).__name__})") from None
    properties = content[1] if isinstance(content, (list, tuple)) and len(content) == 2 else None
    keys = {"size_after_cropping", "original_size_of_raw_data"}
    if not isinstance(properties, dict) or not keys <= set(properties):
        raise DataError(f"{path}: expected [data, properties] with {sorted(keys)}")
    return properties


class BratsDataset(Dataset):
    """Preprocessed, padded BraTS cases, one fp32 .npy per case."""

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
        return {"input": np.stack(self.samples(indices))}


def softmax_fp16(logits: np.ndarray) -> np.ndarray:
    """Softmax over the class axis (0) of one sample's logits, as float16."""
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    shifted /= shifted.sum(axis=0, keepdims=True)
    return shifted.astype(np.float16)


class Unet3d(Benchmark):
    """MLPerf 3d-unet: mean DICE of whole tumour, tumour core, enhancing tumour."""

    name = "3d-unet"
    model_filename = "224_224_160.onnx"
    inputs = (TensorSpec("input", "float32", (None, 4, 224, 224, 160)),)
    outputs = (TensorSpec("output", "float32", (None, 4, 224, 224, 160)),)
    standin_count = 2

    def open_dataset(self, data_dir: Path) -> BratsDataset:
        return BratsDataset(Path(data_dir))

    def responses(self, outputs, indices, dataset) -> list[bytes]:
        logits = np.asarray(outputs["output"])
        return [softmax_fp16(logits[b]).tobytes() for b in range(len(indices))]

    def accuracy(self, entries: list[dict], data_dir: Path) -> float:
        """Mean DICE over the cases in the log, as accuracy-brats.py computes it."""
        data_dir = Path(data_dir)
        cases = read_cases(data_dir)
        per_case = []
        for idx, raw in logged_samples(entries, len(cases)):
            want = int(np.prod(SAMPLE_SHAPE)) * 2
            if len(raw) != want:
                raise DataError(f"accuracy log: sample {idx} holds {len(raw)} bytes, "
                                f"expected {want} (float16 {list(SAMPLE_SHAPE)})")
            softmax = np.frombuffer(raw, np.float16).reshape(SAMPLE_SHAPE)
            properties = read_properties(data_dir, cases[idx])
            prediction = brats.uncrop_segmentation(softmax, properties, PADDED_SHAPE)
            truth = brats.read_nifti(data_dir / LABELS_DIR / f"{cases[idx]}.nii.gz")
            if truth.shape != prediction.shape:
                raise DataError(f"{cases[idx]}: ground truth {truth.shape} does not match "
                                f"original_size_of_raw_data {prediction.shape}")
            per_case.append(brats.region_dice(prediction, truth))
        if not per_case:
            raise DataError("accuracy log holds no samples")
        return brats.mean_dice(per_case)[0]

    def synth(self, out: Path, count: int, seed: int = 0) -> Standin:
        """Cases with nested ellipsoid tumours; a 1x1x1 convolution segments them.

        Each case crops a random box out of a 155x240x240 raw volume and places an
        edema / non-enhancing / enhancing tumour (labels 1, 2, 3) in it; the second
        case has no enhancing part (DICE NaN there, skipped as nnU-Net does). Channel c
        of the padded input is 3 where the label is c, plus uniform noise of +-0.5;
        the model's fixed 4x4 kernel (2 I plus small mixing, small bias) keeps the
        right class ahead by a wide margin, so a full run scores DICE 1.0.
        """
        from onnx import helper, numpy_helper

        from raybench.benchmarks.onnx_util import save_model, value_info

        rng = np.random.default_rng(seed)
        out = Path(out)
        weight = (2 * np.eye(4) + rng.uniform(-0.1, 0.1, (4, 4))).astype(np.float32)
        bias = rng.uniform(-0.1, 0.1, (4,)).astype(np.float32)
        graph = helper.make_graph(
            [helper.make_node("Conv", ["input", "weight", "bias"], ["output"],
                              kernel_shape=[1, 1, 1])],
            "unet3d_standin", [value_info(self.inputs[0])], [value_info(self.outputs[0])],
            initializer=[
                numpy_helper.from_array(weight.reshape(4, 4, 1, 1, 1), "weight"),
                numpy_helper.from_array(bias, "bias"),
            ],
        )
        model = save_model(graph, out / self.model_filename)

        data_dir = out / "preprocessed_data"
        for sub in (TENSOR_DIR, PROPERTIES_DIR, LABELS_DIR):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
        cases = [f"HGG__BraTS19_STANDIN_{i:03d}_1" for i in range(count)]
        for i, case in enumerate(cases):
            size = (int(rng.integers(130, 151)), int(rng.integers(160, 191)),
                    int(rng.integers(130, 156)))
            start = [int(rng.integers(0, r - s + 1)) for r, s in zip(RAW_SHAPE, size)]
            labels = _tumour(size, rng, enhancing=(i != 1))
            volume = np.zeros(SAMPLE_SHAPE, np.float32)
            before = [(p - s) // 2 for p, s in zip(PADDED_SHAPE, size)]
            region = tuple(slice(b, b + s) for b, s in zip(before, size))
            for c in range(4):
                noise = rng.uniform(-0.5, 0.5, size).astype(np.float32)
                volume[(c, *region)] = 3.0 * (labels == c) + noise
            np.save(data_dir / TENSOR_DIR / f"{case}.npy", volume)
            bbox = [[b, b + s] for b, s in zip(start, size)]
            properties = {
                "original_size_of_raw_data": np.array(RAW_SHAPE),
                "original_spacing": np.array([1.0, 1.0, 1.0]),
                "crop_bbox": bbox,
                "size_after_cropping": size,
                "spacing_after_resampling": np.array([1.0, 1.0, 1.0]),
                "classes": np.array([-1.0, 0.0, 1.0, 2.0, 3.0]),
            }
            # NVIDIA's file holds [data, properties]; the stand-in leaves data out.
            with open(data_dir / PROPERTIES_DIR / f"{case}.pkl", "wb") as f:
                pickle.dump([None, properties], f)
            truth = np.zeros(RAW_SHAPE, np.uint8)
            truth[tuple(slice(a, b) for a, b in bbox)] = labels
            brats.write_nifti(data_dir / LABELS_DIR / f"{case}.nii.gz", truth)
        (data_dir / "brats" / "val_map.txt").write_text("".join(c + "\n" for c in cases))
        with open(data_dir / PROPERTIES_DIR / "preprocessed_files.pkl", "wb") as f:
            pickle.dump(cases, f)
        return Standin(model=model, data_dir=data_dir)


def _tumour(size: tuple, rng: np.random.Generator, enhancing: bool) -> np.ndarray:
    """uint8 label map of nested ellipsoids: 1 edema, 2 non-enhancing core, 3 enhancing."""
    radii = rng.uniform(12, 30, 3)
    centre = [rng.uniform(r + 1, s - r - 1) for r, s in zip(radii, size)]
    grids = np.ogrid[tuple(slice(0, s) for s in size)]
    dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii))
    labels = np.zeros(size, np.uint8)
    labels[dist < 1.0] = 1
    labels[dist < 0.36] = 2
    if enhancing:
        labels[dist < 0.09] = 3
    return labels
