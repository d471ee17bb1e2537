"""BraTS 2019 helpers for 3d-unet: NIfTI reading through nibabel and the region DICE metric.

The official ``accuracy-brats.py`` (mlcommons/inference v1.0) turns each network output
back into a label map with nnU-Net's ``save_segmentation_nifti_from_softmax`` and
scores it with nnU-Net's ``evaluate_regions`` against ``labelsTr`` (labels already
converted to 0 background, 1 edema, 2 non-enhancing, 3 enhancing). The regions are
whole tumour (1,2,3), tumour core (2,3) and enhancing tumour (3). A region empty in
both prediction and ground truth scores NaN and is left out of that region's mean
(``np.nanmean``); the three means are written to ``summary.csv`` with 4 decimals and
their average is the metric.

NIfTI files are read with ``nibabel`` (the ``3d-unet`` extra); arrays are in SimpleITK's
axis order, (z, y, x), as nnU-Net sees them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raybench.errors import ConfigError, DataError

REGIONS = {
    "whole tumor": (1, 2, 3),
    "tumor core": (2, 3),
    "enhancing tumor": (3,),
}


def nibabel_module():
    try:
        import nibabel
    except ImportError:
        raise ConfigError("3d-unet needs nibabel to read NIfTI files: pip install "
                          "'raybench[3d-unet]' (or pip install nibabel)") from None
    return nibabel


def read_nifti(path: Path) -> np.ndarray:
    """A NIfTI image (``.nii`` or ``.nii.gz``) as SimpleITK's GetArrayFromImage gives it:
    the axes reversed, i.e. (z, y, x) for a 3-D volume.

    Raises:
        DataError: Missing, truncated or not a NIfTI file.
    """
    nib = nibabel_module()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing NIfTI file")
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel, gzip and zlib raise many types
        raise DataError(f"{path}: unreadable or truncated NIfTI ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return np.ascontiguousarray(array.T)


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """DICE of two boolean masks as nnU-Net's evaluate_case: NaN when both are empty,
    else 2|A and B| / (|A| + |B|)."""
    total = int(np.count_nonzero(prediction)) + int(np.count_nonzero(truth))
    if total == 0:
        return float("nan")
    return 2.0 * int(np.count_nonzero(prediction & truth)) / total


def region_dice(prediction: np.ndarray, truth: np.ndarray) -> list[float]:
    """DICE of whole tumour, tumour core and enhancing tumour for one case."""
    return [dice(np.isin(prediction, labels), np.isin(truth, labels))
            for labels in REGIONS.values()]


def mean_dice(per_case: list[list[float]]) -> tuple[float, list[float]]:
    """The metric from per-case region DICE: per-region nanmean rounded to 4 decimals
    (as summary.csv holds them), then their mean.

    Returns:
        The mean and the three region means.
    """
    regions = []
    for column in np.asarray(per_case, np.float64).T:
        value = float(np.nanmean(column)) if np.any(~np.isnan(column)) else float("nan")
        regions.append(round(value, 4))
    return sum(regions) / len(regions), regions


def uncrop_segmentation(scores: np.ndarray, properties: dict,
                        padded_shape: tuple = (224, 224, 160)) -> np.ndarray:
    """Label map in the raw image's (z, y, x) grid from one padded network output, as
    accuracy-brats.py's load_loadgen_log + save_segmentation_nifti_from_softmax do
    (no resampling: BraTS is preprocessed at its own 1 mm spacing).

    Args:
        scores: [4, *padded_shape] class scores (logits or softmax: the arg max counts).
        properties: nnU-Net case properties (size_after_cropping, crop_bbox,
            original_size_of_raw_data).
        padded_shape: The padded volume shape.
    """
    raw_shape = [int(s) for s in properties["size_after_cropping"]]
    before = [(p - r) // 2 for p, r in zip(padded_shape, raw_shape)]
    cropped = scores[:, before[0]:before[0] + raw_shape[0], before[1]:before[1] + raw_shape[1],
                      before[2]:before[2] + raw_shape[2]]
    labels = cropped.argmax(0)
    full_shape = tuple(int(s) for s in properties["original_size_of_raw_data"])
    bbox = properties.get("crop_bbox")
    if bbox is None:
        return labels.astype(np.uint8)
    full = np.zeros(full_shape, np.uint8)
    ends = [min(int(bbox[c][0]) + labels.shape[c], full_shape[c]) for c in range(3)]
    full[int(bbox[0][0]):ends[0], int(bbox[1][0]):ends[1], int(bbox[2][0]):ends[2]] = labels
    return full
