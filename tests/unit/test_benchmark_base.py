"""Shared benchmark helpers: accuracy-log entries and data-file lookup."""

from __future__ import annotations

import pytest

from raybench.benchmarks.base import find_data_map, logged_samples
from raybench.errors import DataError


def entry(idx: int, data: bytes) -> dict:
    return {"seq_id": 0, "qsl_idx": idx, "data": data.hex().upper()}


def test_first_entry_of_a_sample_wins_in_log_order():
    entries = [entry(2, b"\x01"), entry(0, b"\x02"), entry(2, b"\x03")]
    assert list(logged_samples(entries, 3)) == [(2, b"\x01"), (0, b"\x02")]


def test_index_outside_the_dataset_and_empty_logs():
    with pytest.raises(DataError, match="qsl_idx 5 outside the 3 samples"):
        list(logged_samples([entry(5, b"")], 3))
    with pytest.raises(DataError, match="no samples"):
        list(logged_samples([], 3))
    assert list(logged_samples([], 3, allow_empty=True)) == []


def test_val_map_in_the_data_dir_or_nvidia_data_maps(tmp_path):
    data = tmp_path / "preprocessed_data"
    nvidia = tmp_path / "data_maps" / "imagenet" / "val_map.txt"
    nvidia.parent.mkdir(parents=True)
    nvidia.write_text("a.JPEG 1\n")
    assert find_data_map(data, "imagenet", "ImageNet val_map.txt") == nvidia
    local = data / "imagenet" / "val_map.txt"
    local.parent.mkdir(parents=True)
    local.write_text("a.JPEG 1\n")
    assert find_data_map(data, "imagenet", "ImageNet val_map.txt") == local
    with pytest.raises(DataError, match=r"brats/val_map.txt: missing case list"):
        find_data_map(data, "brats", "case list")
