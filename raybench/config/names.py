"""The names raybench accepts: benchmarks, scenarios, modes."""

from __future__ import annotations

from raybench.errors import ConfigError, choices

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MODES = ("PerformanceOnly", "AccuracyOnly", "SubmissionRun")

# MLPerf benchmark ids: the model name, with the accuracy target where a model has two.
BENCHMARKS = (
    "resnet50",
    "ssd-mobilenet",
    "ssd-resnet34",
    "bert-99",
    "bert-99.9",
    "dlrm-99",
    "dlrm-99.9",
    "rnnt",
    "3d-unet-99",
    "3d-unet-99.9",
)


def model_of(benchmark: str) -> str:
    """The model name of a benchmark id ('bert-99.9' -> 'bert').

    Args:
        benchmark: A benchmark id from :data:`BENCHMARKS`.

    Returns:
        The model name used as the key of the rules and of LoadGen's config files.
    """
    for suffix in ("-99.9", "-99"):
        if benchmark.endswith(suffix):
            return benchmark[: -len(suffix)]
    return benchmark


def accuracy_target_of(benchmark: str) -> float:
    """The fraction of the FP32 accuracy a benchmark id must reach (0.99 or 0.999)."""
    return 0.999 if benchmark.endswith("-99.9") else 0.99


def check_benchmark(value: str) -> str:
    """Return ``value`` if it names a benchmark, else raise ConfigError."""
    if value not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {choices(value, BENCHMARKS)}")
    return value


def check_scenario(value: str) -> str:
    """Return ``value`` if it names a scenario, else raise ConfigError."""
    if value not in SCENARIOS:
        raise ConfigError(f"unknown scenario {choices(value, SCENARIOS)}")
    return value


def check_mode(value: str) -> str:
    """Return ``value`` if it names a test mode, else raise ConfigError."""
    if value not in MODES:
        raise ConfigError(f"unknown mode {choices(value, MODES)}")
    return value
