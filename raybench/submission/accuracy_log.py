"""Accuracy logs in a submission: the ``hash=`` line of accuracy.txt and the truncated log.

The submission keeps ``mlperf_log_accuracy.json`` only as its first and last characters
once it is larger than the limit, after its SHA-256 has been written into accuracy.txt as
``hash=<hex>`` (what the official ``truncate_accuracy_log.py`` does).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Optional

from raybench.errors import DataError

HASH_LINE = re.compile(r"^hash=([\w\d]+)$")
ELLIPSIS = "\n\n...\n\n"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_in(accuracy_txt: Path) -> Optional[str]:
    """The ``hash=`` value of an accuracy.txt, or None."""
    if not Path(accuracy_txt).is_file():
        return None
    for line in Path(accuracy_txt).read_text(encoding="utf-8").splitlines():
        match = HASH_LINE.match(line)
        if match:
            return match.group(1)
    return None


def seal_accuracy_log(log: Path, accuracy_txt: Path, max_bytes: int, kept_chars: int) -> str:
    """Hash ``log`` into ``accuracy_txt`` (unless it holds that hash) and truncate it.

    Both files are changed in place (they are the tree's copies). An accuracy.txt whose
    hash line names another log is an error, not overwritten.

    Args:
        log: The tree's ``mlperf_log_accuracy.json``.
        accuracy_txt: The accuracy.txt beside it (created when missing, as for TEST01).
        max_bytes: Logs larger than this are truncated.
        kept_chars: Characters kept from the start and from the end.

    Returns:
        The hash.

    Raises:
        DataError: accuracy.txt already has a different hash.
    """
    digest = sha256_file(log)
    recorded = hash_in(accuracy_txt)
    if recorded is None:
        with Path(accuracy_txt).open("a", encoding="utf-8") as f:
            f.write(f"hash={digest}\n")
    elif recorded != digest:
        raise DataError(f"{accuracy_txt}: hash={recorded} does not match {log} (sha256 {digest})")
    if log.stat().st_size > max_bytes:
        text = log.read_text(encoding="utf-8")
        log.write_text(text[:kept_chars] + ELLIPSIS + text[-kept_chars:], encoding="utf-8")
    return digest
