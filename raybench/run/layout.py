"""Where raybench keeps the runs of one benchmark and scenario, compliance runs included.

::

    <results>/<system>/<benchmark>/<scenario>/
        performance/run_1/            the submission's performance run (LoadGen logs,
                                      mlperf.conf, user.conf, raybench_settings.json)
        accuracy/                     its accuracy run (+ mlperf_log_accuracy.json, accuracy.txt)
        compliance/<TEST>/
            performance/run_1/        the audit run (+ audit.config as LoadGen read it)
            verify_performance.txt    written by verification (TEST01, TEST04-A, TEST05)
            verify_accuracy.txt       TEST01
            accuracy/                 TEST01, when sampled responses differ from the
                                      accuracy run: baseline_accuracy.txt, compliance_accuracy.txt

A compliance test directory has the shape of the submission tree's
``compliance/<system>/<benchmark>/<scenario>/<TEST>/``, so assembling a tree is a copy. A
run writes each test whole (:class:`~raybench.run.outputs.ResultDir`): ``accuracy``,
``performance/run_1`` and, for a compliance test, its whole ``compliance/<TEST>`` (so a
new run of the test takes its old verification files to ``history/`` with the old run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PERFORMANCE_RUN = Path("performance") / "run_1"
ACCURACY = "accuracy"
COMPLIANCE = "compliance"
VERIFY_PERFORMANCE = "verify_performance.txt"
VERIFY_ACCURACY = "verify_accuracy.txt"
BASELINE_ACCURACY = "baseline_accuracy.txt"
COMPLIANCE_ACCURACY = "compliance_accuracy.txt"


def compliance_dir(result_dir: Path, test: str) -> Path:
    """The directory of compliance test ``test`` under ``<results>/<system>/<benchmark>/<scenario>``.

    A run of the test writes its LoadGen test into ``compliance_dir(...) / PERFORMANCE_RUN``.
    """
    return Path(result_dir) / COMPLIANCE / test


@dataclass(frozen=True)
class ScenarioRuns:
    """The runs of one system, benchmark and scenario in a results directory."""

    root: Path  # <results>/<system>/<benchmark>/<scenario>
    system: str
    benchmark: str
    scenario: str

    @classmethod
    def at(cls, results: Path, system: str, benchmark: str, scenario: str) -> "ScenarioRuns":
        """The runs under ``results`` (the directory ``raybench run --output`` names)."""
        return cls(Path(results) / system / benchmark / scenario, system, benchmark, scenario)

    @property
    def performance(self) -> Path:
        """The performance run the submission uses."""
        return self.root / PERFORMANCE_RUN

    @property
    def accuracy(self) -> Path:
        """The accuracy run."""
        return self.root / ACCURACY

    def compliance(self, test: str) -> Path:
        """Compliance test ``test``'s directory (its verification files go here)."""
        return compliance_dir(self.root, test)

    def compliance_run(self, test: str) -> Path:
        """Compliance test ``test``'s LoadGen run."""
        return self.compliance(test) / PERFORMANCE_RUN
