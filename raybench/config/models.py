"""Typed models of the system files in ``systems/``; unknown fields are rejected."""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from raybench.config.names import BENCHMARKS, SCENARIOS
from raybench.errors import ConfigError, choices


class Strict(BaseModel):
    """Base model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def parse(cls, values: Any, where: str = "",
              name: Callable[[tuple], str] = lambda loc: ".".join(map(str, loc))):
        """Validate ``values`` into this model, or raise a one-line ConfigError.

        Args:
            values: A mapping of field values.
            where: Prefix of the message (a file name, say), or "".
            name: How the message names a field from its pydantic location
                (``--batch-size`` on a command line, ``grid.batch_size`` in a file).
        """
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError((f"{where}: " if where else "") + validation_line(exc, name)) from None


def validation_line(exc: ValidationError, name: Callable[[tuple], str]) -> str:
    """One line for the first error of a pydantic ValidationError: the field, the bad
    value and what is allowed, e.g. ``--batch-size 0: must be >= 1``."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    kind, msg = err.get("type", ""), " ".join(str(err["msg"]).split())
    limits = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
              "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}
    if kind in limits:
        symbol, key = limits[kind]
        msg = f"must be {symbol} {err['ctx'][key]:g}"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "missing":
        msg = "required field missing"
    elif kind == "finite_number":
        msg = "must be a finite number"
    else:
        msg = msg[0].lower() + msg[1:] if msg else kind
    field = name(loc) if loc else "value"
    if kind in ("missing", "extra_forbidden") or "input" not in err:
        return f"{field}: {msg}"
    return f"{field} {err['input']!r}: {msg}"


class SimLatency(Strict):
    """Time one simulated GPU takes for a batch: ``fixed_us + per_sample_us * n``, and
    ``batch1_us`` for a lone sample where the system runs those on an engine of its own
    (NVIDIA's batch-1 SingleStream engine with CUDA graphs)."""

    fixed_us: float = Field(ge=0)
    per_sample_us: float = Field(ge=0)
    batch1_us: Optional[float] = Field(default=None, ge=0)
    derivation: Optional[str] = None

    def batch_us(self, count: int) -> float:
        """Modelled time of a batch of ``count`` samples, in us."""
        if count == 1 and self.batch1_us is not None:
            return self.batch1_us
        return self.fixed_us + self.per_sample_us * count


class HarnessSettings(Strict):
    """Harness settings of one benchmark and scenario on one system.

    The NVIDIA v1.0 config names are given in brackets.
    """

    batch_size: int = Field(ge=1)  # gpu_batch_size
    batch_timeout_us: int = Field(default=0, ge=0)  # deque_timeout_usec
    copy_streams: int = Field(default=1, ge=1)  # gpu_copy_streams
    inference_streams: int = Field(default=1, ge=1)  # gpu_inference_streams
    use_graphs: bool = False  # use_graphs
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    input_dtype: Literal["fp32", "fp16", "int8", "int32"] = "fp32"
    input_format: str = "linear"
    server_target_qps: Optional[float] = Field(default=None, gt=0)
    offline_expected_qps: Optional[float] = Field(default=None, gt=0)
    single_stream_expected_latency_ns: Optional[int] = Field(default=None, gt=0)
    multi_stream_samples_per_query: Optional[int] = Field(default=None, ge=1)
    max_inflight: int = Field(default=2, ge=1)  # batches in flight per engine (>= streams)
    workspace_mb: Optional[int] = Field(default=None, ge=1)  # TensorRT builder workspace
    sim: Optional[SimLatency] = None


class System(Strict):
    """One system under test: its submission description and harness settings.

    ``extends`` names the file whose settings this one starts from (already merged in when
    loaded); ``submission_id`` is the MLPerf submission's system id, where there is one.
    """

    id: str
    extends: Optional[str] = None
    submission_id: Optional[str] = None
    description: dict[str, object] = Field(default_factory=dict)
    accelerator: Optional[str] = None
    accelerator_count: int = Field(default=0, ge=0)
    engine_count: Optional[int] = Field(default=None, ge=1)
    settings: dict[Literal[BENCHMARKS], dict[Literal[SCENARIOS], HarnessSettings]]  # type: ignore[valid-type] = Field(default_factory=dict)

    def harness(self, benchmark: str, scenario: str) -> HarnessSettings:
        """The harness settings for ``benchmark`` in ``scenario``.

        Raises:
            ConfigError: The system has no settings for that pair.
        """
        per_scenario = self.settings.get(benchmark)
        if per_scenario is None:
            raise ConfigError(
                f"system {self.id!r} has no settings for benchmark "
                f"{choices(benchmark, sorted(self.settings))}"
            )
        if scenario not in per_scenario:
            raise ConfigError(
                f"system {self.id!r} has no {benchmark} settings for scenario "
                f"{choices(scenario, [s for s in SCENARIOS if s in per_scenario])}"
            )
        return per_scenario[scenario]

    def engines(self, cpu_count: int) -> int:
        """How many engine actors a run starts: one per accelerator, else engine_count."""
        if self.accelerator_count:
            return self.accelerator_count
        return self.engine_count or max(1, cpu_count)
