"""accuracy.txt: the metric, the FP32 reference and PASS/FAIL at 99 % and 99.9 %."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ACCURACY_TXT = "accuracy.txt"


@dataclass
class AccuracyResult:
    """A measured accuracy against its FP32 reference."""

    benchmark: str
    metric: str
    value: float
    fp32: float
    required_fraction: float  # 0.99 or 0.999, from the benchmark id

    def passes(self, fraction: float) -> bool:
        """Whether the value reaches ``fraction`` of the FP32 reference."""
        return self.value >= self.fp32 * fraction

    @property
    def passed(self) -> bool:
        """Whether the benchmark id's own target is met."""
        return self.passes(self.required_fraction)

    def text(self) -> str:
        """The contents of accuracy.txt."""
        lines = [
            f"benchmark: {self.benchmark}",
            f"{self.metric}: {self.value:.4f}",
            f"fp32 reference: {self.fp32}",
        ]
        for fraction in (0.99, 0.999):
            verdict = "PASS" if self.passes(fraction) else "FAIL"
            lines.append(f"{fraction * 100:g}% of fp32 ({self.fp32 * fraction:.4f}): {verdict}")
        lines.append(f"result ({self.required_fraction * 100:g}% target): "
                     f"{'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> Path:
        """Write accuracy.txt into ``directory``."""
        path = directory / ACCURACY_TXT
        path.write_text(self.text())
        return path
