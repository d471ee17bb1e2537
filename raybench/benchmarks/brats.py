"""BraTS 2019 helpers for 3d-unet: minimal NIfTI-1 I/O and the region DICE metric.

The official ``accuracy-brats.py`` (mlcommons/inference v1.0) turns each float16
softmax back into a label map with nnU-Net's ``save_segmentation_nifti_from_softmax``
and scores it with nnU-Net's ``evaluate_regions`` against ``labelsTr`` (labels already
converted to 0 background, 1 edema, 2 non-enhancing, 3 enhancing). The regions are
whole tumour (1,2,3), tumour core (2,3) and enhancing tumour (3). A region empty in
both prediction and ground truth scores NaN and is left out of that region's mean
(``np.nanmean``); the three means are written to ``summary.csv`` with 4 decimals and
their average is the metric.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from raybench.errors import DataError

REGIONS = {
    "whole tumor": (1, 2, 3),
    "tumor core": (2, 3),
    "enhancing tumor": (3,),
}

_NIFTI_TYPES = {
    2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64,
    256: np.int8, 512: np.uint16, 768: np.uint32, 1024: np.int64, 1280: np.uint64,
}


def read_nifti(path: Path) -> np.ndarray:
    """Read a NIfTI-1 image (``.nii`` or ``.nii.gz``) as SimpleITK's GetArrayFromImage
    would: the axes reversed, i.e. (z, y, x) for a 3-D volume.

    Raises:
        DataError: Missing, truncated or not a NIfTI-1 single-file image.
    """
    path = Path(path)
    try:
        raw = gzip.open(path).read() if path.name.endswith(".gz") else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing NIfTI file") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or truncated NIfTI ({exc})") from None
    if len(raw) < 348:
        raise DataError(f"{path}: truncated NIfTI header")
    for endian in "<>":
        if struct.unpack(endian + "i", raw[:4])[0] == 348:
            break
    else:
        raise DataError(f"{path}: not a NIfTI-1 file")
    dims = struct.unpack(endian + "8h", raw[40:56])
    datatype = struct.unpack(endian + "h", raw[70:72])[0]
    vox_offset = int(struct.unpack(endian + "f", raw[108:112])[0])
    slope, inter = struct.unpack(endian + "2f", raw[112:120])
    if datatype not in _NIFTI_TYPES or not 1 <= dims[0] <= 7:
        raise DataError(f"{path}: unsupported NIfTI datatype {datatype} or rank {dims[0]}")
    shape = tuple(reversed(dims[1:dims[0] + 1]))
    dtype = np.dtype(_NIFTI_TYPES[datatype]).newbyteorder(endian)
    size = int(np.prod(shape)) * dtype.itemsize
    if len(raw) < vox_offset + size:
        raise DataError(f"{path}: truncated NIfTI data")
    array = np.frombuffer(raw, dtype, count=int(np.prod(shape)), offset=vox_offset)
    array = array.reshape(shape).astype(dtype.newbyteorder("="))
    if slope not in (0.0, 1.0) or inter != 0.0:
        array = array * slope + inter
    return array


def write_nifti(path: Path, array: np.ndarray) -> Path:
    """Write a (z, y, x) uint8 label volume as a gzipped NIfTI-1 file, 1 mm voxels."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    dims = [array.ndim, *reversed(array.shape)] + [1] * (7 - array.ndim)
    struct.pack_into("<8h", header, 40, *dims)
    struct.pack_into("<2h", header, 70, 2, 8)  # datatype uint8, bitpix
    struct.pack_into("<8f", header, 76, 1.0, *([1.0] * 7))  # pixdim
    struct.pack_into("<3f", header, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, inter
    header[344:348] = b"n+1\0"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes(header) + array.tobytes())
    return path


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


def uncrop_segmentation(softmax: np.ndarray, properties: dict,
                        padded_shape: tuple = (224, 224, 160)) -> np.ndarray:
    """Label map in the raw image's (z, y, x) grid from one padded softmax, as
    accuracy-brats.py's load_loadgen_log + save_segmentation_nifti_from_softmax do
    (no resampling: BraTS is preprocessed at its own 1 mm spacing).

    Args:
        softmax: [4, *padded_shape] class scores.
        properties: nnU-Net case properties (size_after_cropping, crop_bbox,
            original_size_of_raw_data).
        padded_shape: The padded volume shape.
    """
    raw_shape = [int(s) for s in properties["size_after_cropping"]]
    before = [(p - r) // 2 for p, r in zip(padded_shape, raw_shape)]
    cropped = softmax[:, before[0]:before[0] + raw_shape[0], before[1]:before[1] + raw_shape[1],
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
