"""Shared benchmark helpers: accuracy-log entries and data-map lookup in NVIDIA's tree."""

from __future__ import annotations

import pytest

from raybench.benchmarks.base import find_data_map, read_log
from raybench.errors import DataError


def entry(idx: int, data: bytes) -> dict:
    return {"seq_id": 0, "qsl_idx": idx, "data": data.hex().upper()}


@pytest.mark.parametrize("duplicates, expected", [
    ("first", [(2, b"\x01"), (0, b"\x02")]),  # accuracy-imagenet/coco/dlrm.py
    ("last", [(2, b"\x03"), (0, b"\x02")]),   # accuracy-squad.py (a dict keyed by feature)
    ("all", [(2, b"\x01"), (0, b"\x02"), (2, b"\x03")]),  # accuracy_eval.py (rnnt)
])
def test_duplicates_are_taken_as_each_official_script_takes_them(duplicates, expected):
    entries = [entry(2, b"\x01"), entry(0, b"\x02"), entry(2, b"\x03")]
    log = read_log(entries, 4, "script.py", duplicates)
    assert log.samples == expected
    assert log.notes[0] == "accuracy log: 3 entries for 2 of 4 samples"
    assert "1 duplicate entries" in log.notes[1] and "as script.py does" in log.notes[1]
    assert log.notes[2].startswith("2 samples not logged")


def test_a_complete_log_without_duplicates_has_one_note():
    assert read_log([entry(1, b""), entry(0, b"")], 2, "s.py").notes == (
        "accuracy log: 2 entries for 2 of 2 samples",)


def test_index_outside_the_dataset_bad_hex_and_empty_logs():
    with pytest.raises(DataError, match="qsl_idx 5 outside the 3 samples"):
        read_log([entry(5, b"")], 3, "s.py")
    with pytest.raises(DataError, match="malformed entry"):
        read_log([{"qsl_idx": 0, "data": "zz"}], 3, "s.py")
    with pytest.raises(DataError, match="no samples"):
        read_log([], 3, "s.py")
    assert read_log([], 3, "s.py", allow_empty=True).samples == []


def test_val_map_beside_the_data_or_at_nvidias_code_root(tmp_path):
    data = tmp_path / "build" / "preprocessed_data"
    root_map = tmp_path / "data_maps" / "imagenet" / "val_map.txt"
    root_map.parent.mkdir(parents=True)
    root_map.write_text("a.JPEG\t1\n")
    assert find_data_map(data, "imagenet", "ImageNet val_map.txt") == root_map
    local = data / "imagenet" / "val_map.txt"
    local.parent.mkdir(parents=True)
    local.write_text("a.JPEG 1\n")
    assert find_data_map(data, "imagenet", "ImageNet val_map.txt") == local


def test_a_missing_map_names_every_path_tried(tmp_path):
    data = tmp_path / "build" / "preprocessed_data"
    with pytest.raises(DataError) as err:
        find_data_map(data, "brats", "case list")
    message = str(err.value)
    assert message.startswith("missing case list: tried ")
    for path in (data / "brats" / "val_map.txt", tmp_path / "data_maps" / "brats" / "val_map.txt",
                 tmp_path / "build" / "data_maps" / "brats" / "val_map.txt"):
        assert str(path) in message
    assert "\n" not in message
