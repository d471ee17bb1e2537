"""The 3d-unet stand-in: nested ellipsoid tumours and a 1x1x1 convolution that finds them.

Written as NVIDIA's tree: ``build/preprocessed_data/brats/brats_npy/fp32/<case>.npy``,
``.../brats_reference_preprocessed/{<case>.pkl,preprocessed_files.pkl}`` (properties
with nnU-Net's ``itk_spacing``, ``itk_origin`` and ``itk_direction``), the labels as
NIfTI in ``.../brats_reference_raw/Task043_BraTS2019/labelsTr/``,
``data_maps/brats/val_map.txt`` and ``build/models/3d-unet/224_224_160.onnx``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from raybench.benchmarks import brats
from raybench.benchmarks.unet3d import (CASE_LIST, LABELS_DIR, PADDED_SHAPE, PROPERTIES_DIR,
                                        RAW_SHAPE, SAMPLE_SHAPE, TENSOR_DIR, Unet3d)
from raybench.standins.cache import Standin
from raybench.standins.tree import DATA_DIR, MODELS_DIR, save_model, value_info, write_map

COUNT = 2
MODEL = MODELS_DIR / "3d-unet" / Unet3d.model_filename
# a BraTS volume's geometry as SimpleITK reports it (x, y, z)
ITK_SPACING = (1.0, 1.0, 1.0)
ITK_ORIGIN = (-0.0, -239.0, 0.0)
ITK_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def itk_affine(spacing, origin, direction) -> np.ndarray:
    """The NIfTI (RAS) affine of an image with ITK's (LPS) spacing, origin and direction."""
    rotation = np.asarray(direction, np.float64).reshape(3, 3) * np.asarray(spacing, np.float64)
    affine = np.eye(4)
    affine[:3, :3] = rotation
    affine[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def write_nifti(path: Path, array: np.ndarray, spacing=(1.0, 1.0, 1.0),
                origin=(0.0, 0.0, 0.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> Path:
    """Write a (z, y, x) uint8 label volume as a gzipped NIfTI-1 file whose geometry, as
    SimpleITK reads it, is ``spacing``, ``origin`` and ``direction`` (x, y, z order)."""
    nib = brats.nibabel_module()
    affine = itk_affine(spacing, origin, direction)
    image = nib.Nifti1Image(np.ascontiguousarray(np.asarray(array, np.uint8).T), affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


def synth(root: Path, count: int, seed: int = 0) -> Standin:
    """Cases with nested ellipsoid tumours; a 1x1x1 convolution segments them.

    Each case crops a random box out of a 155x240x240 raw volume and places an
    edema / non-enhancing / enhancing tumour (labels 1, 2, 3) in it; the second
    case has no enhancing part (DICE NaN there, skipped as nnU-Net does). Channel c
    of the padded input is 3 where the label is c, plus uniform noise of +-0.5;
    the model's fixed 4x4 kernel (2 I plus small mixing, small bias) keeps the
    right class ahead by a wide margin, so a full run scores DICE 1.0.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = (2 * np.eye(4) + rng.uniform(-0.1, 0.1, (4, 4))).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, (4,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight", "bias"], ["output"],
                          kernel_shape=[1, 1, 1])],
        "unet3d_standin", [value_info(Unet3d.inputs[0])], [value_info(Unet3d.outputs[0])],
        initializer=[
            numpy_helper.from_array(weight.reshape(4, 4, 1, 1, 1), "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = save_model(graph, root / MODEL)

    data_dir = root / DATA_DIR
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
            "itk_spacing": ITK_SPACING, "itk_origin": ITK_ORIGIN, "itk_direction": ITK_DIRECTION,
        }
        # NVIDIA's file holds [data, properties]; the stand-in leaves data out.
        with open(data_dir / PROPERTIES_DIR / f"{case}.pkl", "wb") as f:
            pickle.dump([None, properties], f)
        truth = np.zeros(RAW_SHAPE, np.uint8)
        truth[tuple(slice(a, b) for a, b in bbox)] = labels
        write_nifti(data_dir / LABELS_DIR / f"{case}.nii.gz", truth, ITK_SPACING, ITK_ORIGIN,
                          ITK_DIRECTION)
    write_map(root, "brats", cases)
    with open(data_dir / CASE_LIST, "wb") as f:
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
