"""The names raybench accepts: benchmarks, scenarios, modes, engines, transports,
compliance tests.

Each is a :class:`~enum.StrEnum` (members are their string values) that also accepts
any capitalisation of a name, as users type them (``offline``, ``server``).
"""

from __future__ import annotations

from enum import StrEnum

from raybench.errors import ConfigError, choices


class _Name(StrEnum):
    """A StrEnum whose lookup ignores case."""

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None

    @classmethod
    def parse(cls, value: str, kind: str):
        """The member named ``value`` in any case, or a ConfigError naming the allowed ones."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"unknown {kind} {choices(value, [m.value for m in cls])}") from None


class BenchmarkId(_Name):
    """MLPerf benchmark ids: the model name, with the accuracy target where a model has two."""

    RESNET50 = "resnet50"
    SSD_MOBILENET = "ssd-mobilenet"
    SSD_RESNET34 = "ssd-resnet34"
    BERT_99 = "bert-99"
    BERT_99_9 = "bert-99.9"
    DLRM_99 = "dlrm-99"
    DLRM_99_9 = "dlrm-99.9"
    RNNT = "rnnt"
    UNET3D_99 = "3d-unet-99"
    UNET3D_99_9 = "3d-unet-99.9"


class Scenario(_Name):
    """LoadGen scenarios."""

    SINGLE_STREAM = "SingleStream"
    MULTI_STREAM = "MultiStream"
    SERVER = "Server"
    OFFLINE = "Offline"


class Mode(_Name):
    """What a run measures: a LoadGen test mode, or both (accuracy, then performance)."""

    PERFORMANCE = "PerformanceOnly"
    ACCURACY = "AccuracyOnly"
    SUBMISSION = "SubmissionRun"

    @classmethod
    def _missing_(cls, value):
        found = super()._missing_(value)
        if found is None and isinstance(value, str):  # "performance", "accuracy", "submission"
            for member in cls:
                if member.value.lower().removesuffix("only").removesuffix("run") == value.lower():
                    return member
        return found


class EngineName(_Name):
    """Inference engines."""

    ONNXRUNTIME = "onnxruntime"
    NULL = "null"
    SIM = "sim"
    TORCH = "torch"
    TENSORRT = "tensorrt"


class TransportName(_Name):
    """How batches travel from the LoadGen actor to the engine actors."""

    GRAPH = "graph"  # Ray Compiled Graphs: shared-memory channels, one graph per engine lane
    CALLS = "calls"  # Ray actor calls
    INLINE = "inline"  # the one engine runs inside the LoadGen actor: no Ray in between


class AuditTestName(_Name):
    """MLPerf compliance (audit) tests; their settings are rules data
    (``rules/<round>-submission.yaml``), which may name only these."""

    TEST01 = "TEST01"
    TEST04_A = "TEST04-A"
    TEST04_B = "TEST04-B"
    TEST05 = "TEST05"


BENCHMARKS = tuple(b.value for b in BenchmarkId)
SCENARIOS = tuple(s.value for s in Scenario)
MODES = tuple(m.value for m in Mode)
AUDIT_TESTS = tuple(t.value for t in AuditTestName)


def model_of(benchmark: str) -> str:
    """The model name of a benchmark id ('bert-99.9' -> 'bert').

    Args:
        benchmark: A benchmark id from :data:`BENCHMARKS`.

    Returns:
        The model name used as the key of the rules and of LoadGen's config files.
    """
    benchmark = str(benchmark)
    for suffix in ("-99.9", "-99"):
        if benchmark.endswith(suffix):
            return benchmark[: -len(suffix)]
    return benchmark


def accuracy_target_of(benchmark: str) -> float:
    """The fraction of the FP32 accuracy a benchmark id must reach (0.99 or 0.999)."""
    return 0.999 if str(benchmark).endswith("-99.9") else 0.99


def check_benchmark(value: str) -> BenchmarkId:
    """The benchmark ``value`` names (any case), else a ConfigError."""
    return BenchmarkId.parse(value, "benchmark")


def check_scenario(value: str) -> Scenario:
    """The scenario ``value`` names (any case), else a ConfigError."""
    return Scenario.parse(value, "scenario")


def check_mode(value: str) -> Mode:
    """The test mode ``value`` names (any case), else a ConfigError."""
    return Mode.parse(value, "mode")
