"""Sealing an accuracy log for a submission: hash line, then truncation above the limit."""

from __future__ import annotations

import hashlib
import json

import pytest

from raybench.errors import DataError
from raybench.submission.accuracy_log import ELLIPSIS, hash_in, seal_accuracy_log


def write_log(path, entries):
    text = "[\n" + ",\n".join(json.dumps({"seq_id": i, "qsl_idx": i % 97, "data": f"{i:08x}"})
                              for i in range(entries)) + "\n]\n"
    path.write_text(text)
    return text


def test_large_log_is_hashed_then_truncated(tmp_path):
    log, txt = tmp_path / "mlperf_log_accuracy.json", tmp_path / "accuracy.txt"
    original = write_log(log, 2000)
    txt.write_text("accuracy=76.000%, good=76, total=100\n")
    digest = seal_accuracy_log(log, txt, max_bytes=10240, kept_chars=4096)
    assert digest == hashlib.sha256(original.encode()).hexdigest()
    assert txt.read_text() == f"accuracy=76.000%, good=76, total=100\nhash={digest}\n"
    assert log.read_text() == original[:4096] + ELLIPSIS + original[-4096:]
    assert hash_in(txt) == digest


def test_small_log_keeps_its_text_and_gets_a_hash(tmp_path):
    log, txt = tmp_path / "mlperf_log_accuracy.json", tmp_path / "accuracy.txt"
    original = write_log(log, 20)
    seal_accuracy_log(log, txt, max_bytes=10240, kept_chars=4096)  # TEST01: no accuracy.txt yet
    assert log.read_text() == original
    assert txt.read_text() == f"hash={hashlib.sha256(original.encode()).hexdigest()}\n"


def test_an_existing_hash_is_checked_not_repeated(tmp_path):
    log, txt = tmp_path / "mlperf_log_accuracy.json", tmp_path / "accuracy.txt"
    original = write_log(log, 20)
    digest = hashlib.sha256(original.encode()).hexdigest()
    txt.write_text(f"mAP=22.000%\nhash={digest}\n")
    seal_accuracy_log(log, txt, max_bytes=10240, kept_chars=4096)
    assert txt.read_text().count("hash=") == 1
    txt.write_text("mAP=22.000%\nhash=" + "0" * 64 + "\n")
    with pytest.raises(DataError, match="does not match"):
        seal_accuracy_log(log, txt, max_bytes=10240, kept_chars=4096)
