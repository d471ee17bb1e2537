"""accuracy.txt as the MLPerf submission checker reads it, plus raybench's verdict.

The file starts with the official v1.0 accuracy script's own result line for the
accuracy log (e.g. ``accuracy=76.456%, good=38228, total=50000`` or
``{"exact_match": 83.6, "f1": 90.9}``) and ``hash=<sha256 of mlperf_log_accuracy.json>``;
the checker matches those two lines. After a blank line follows raybench's readable
summary: the metric, the FP32 reference, PASS/FAIL at 99 % and 99.9 %, and how the log
was read (duplicate entries, samples missing), none of whose lines matches a checker
pattern.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from raybench.results.loadgen_log import ACCURACY_LOG

ACCURACY_TXT = "accuracy.txt"
SUMMARY_HEADER = "raybench summary"


@dataclass(frozen=True)
class Score:
    """A benchmark's accuracy on one accuracy log.

    Attributes:
        value: The metric in raybench's unit (percent, or mean DICE for 3d-unet).
        official: The result line the official v1.0 accuracy script prints for the log.
        notes: How the log was read: duplicate entries, samples missing.
    """

    value: float
    official: str
    notes: tuple[str, ...] = ()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks (as the submission tools hash the log)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class AccuracyResult:
    """A benchmark's :class:`Score` against its FP32 reference."""

    benchmark: str
    metric: str
    score: Score
    fp32: float
    required_fraction: float  # 0.99 or 0.999, from the benchmark id

    @property
    def value(self) -> float:
        """The metric in raybench's unit."""
        return self.score.value

    def passes(self, fraction: float) -> bool:
        """Whether the value reaches ``fraction`` of the FP32 reference."""
        return self.value >= self.fp32 * fraction

    @property
    def passed(self) -> bool:
        """Whether the benchmark id's own target is met."""
        return self.passes(self.required_fraction)

    def text(self, log_hash: Optional[str] = None) -> str:
        """The contents of accuracy.txt (with ``hash=`` when ``log_hash`` is given)."""
        lines = [self.score.official] if self.score.official else []
        if log_hash:
            lines.append(f"hash={log_hash}")
        if lines:
            lines.append("")
        lines += [
            f"{SUMMARY_HEADER}:",
            f"benchmark: {self.benchmark}",
            f"{self.metric}: {self.value:.4f}",
            f"fp32 reference: {self.fp32}",
        ]
        for fraction in (0.99, 0.999):
            verdict = "PASS" if self.passes(fraction) else "FAIL"
            lines.append(f"{fraction * 100:g}% of fp32 ({self.fp32 * fraction:.4f}): {verdict}")
        lines.append(f"result ({self.required_fraction * 100:g}% target): "
                     f"{'PASS' if self.passed else 'FAIL'}")
        lines += [f"note: {note}" for note in self.score.notes]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> Path:
        """Write accuracy.txt into ``directory``, hashing its mlperf_log_accuracy.json."""
        log = Path(directory) / ACCURACY_LOG
        path = Path(directory) / ACCURACY_TXT
        path.write_text(self.text(file_sha256(log) if log.is_file() else None))
        return path


def verdict_line(path: Path) -> Optional[str]:
    """``"<metric>: <value> PASS|FAIL"`` from an accuracy.txt raybench wrote; None when
    the file is missing."""
    if not Path(path).is_file():
        return None
    lines = Path(path).read_text().splitlines()
    start = lines.index(f"{SUMMARY_HEADER}:") + 1 if f"{SUMMARY_HEADER}:" in lines else 0
    summary = lines[start:]
    value = summary[1] if len(summary) > 1 else ""
    verdict = next((ln.rsplit(":", 1)[-1].strip() for ln in summary if ln.startswith("result")), "")
    return f"{value} {verdict}".strip()
