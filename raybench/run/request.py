"""The one argument table: everything a user can ask of one run.

:class:`RunRequest` is the single source of a run's settings. The ``raybench run``
options, the ``peak`` options, the keys of a sweep spec's ``base:`` and ``grid:`` and the
``request`` of ``raybench_settings.json`` are all derived from it, with one name per knob
everywhere (``--batch-size`` on the command line is ``batch_size`` in YAML and JSON).
Each field's ``panel`` groups it in ``--help``; fields marked ``cli: False`` are for
programs (tests, sweeps, twins), not the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field

from raybench.config.models import SimLatency, Strict
from raybench.config.names import (AuditTestName, BenchmarkId, EngineName, Mode, Scenario,
                                    TransportName)
from raybench.rules.settings import Overrides

QUICK_DURATION_S = 10.0  # the minimum duration of a run that is not --official
MAX_DURATION_S = 7 * 24 * 3600.0  # longest --duration: a week (LoadGen's limit is far beyond)
MAX_COUNT = 2**63 - 1  # LoadGen's query and sample counts are 64-bit integers

WHAT = "What to run"
RULES = "LoadGen rules"
TUNING = "Harness tuning"
CLUSTER = "Cluster"
OUTPUT = "Output"


def _field(default, help: str, panel: str, cli: bool = True, **bounds):
    return Field(default, description=help, json_schema_extra={"panel": panel, "cli": cli},
                 **bounds)


class RunRequest(Strict):
    """Everything a user can ask of one run."""

    benchmark: BenchmarkId = _field(BenchmarkId.RESNET50, "Benchmark id.", WHAT)
    scenario: Scenario = _field(Scenario.OFFLINE, "LoadGen scenario.", WHAT)
    mode: Optional[Mode] = _field(
        None, "What to measure (default: SubmissionRun, i.e. accuracy then performance; "
        "PerformanceOnly for null/sim engines and --audit).", WHAT)
    engine: EngineName = _field(EngineName.ONNXRUNTIME, "Inference engine.", WHAT)
    system: Optional[str] = _field(None, "System id from `raybench systems list` "
                                   "(default: detected).", WHAT)
    model: Optional[Path] = _field(None, "Model file (default: the generated stand-in).", WHAT)
    data_dir: Optional[Path] = _field(None, "Preprocessed data in NVIDIA's layout "
                                      "(default: the generated stand-in).", WHAT)
    calibration: Optional[Path] = _field(None, "int8 calibration samples for TensorRT: a "
                                         "directory of .npy files or a list of them.", WHAT)

    official: bool = _field(False, "The round's minimum duration and query counts, no "
                            "overrides (a submission run).", RULES)
    duration: Optional[float] = _field(
        None, f"Minimum duration in seconds (default {QUICK_DURATION_S:g}; the rules' with "
        "--official).", RULES, gt=0, le=MAX_DURATION_S, allow_inf_nan=False)
    queries: Optional[int] = _field(None, "Minimum query count (default 1; the rules' with "
                                    "--official).", RULES, ge=1, le=MAX_COUNT)
    target_qps: Optional[float] = _field(None, "Server/Offline target QPS (SingleStream: "
                                         "1000 / expected latency in ms).", RULES, gt=0,
                                         allow_inf_nan=False)
    samples_per_query: Optional[int] = _field(None, "MultiStream samples per query.", RULES,
                                              ge=1, le=MAX_COUNT)
    mlperf_conf: Optional[Path] = _field(
        None, "A LoadGen mlperf.conf applied on top of the round's rules (where the system "
        "and user.conf set no value).", RULES)
    user_conf: Optional[Path] = _field(
        None, "A LoadGen user.conf applied on top of the system's values (without "
        "--duration/--queries, its values or the rules' set the run's length).", RULES)
    audit: Optional[AuditTestName] = _field(
        None, "Run this compliance test (PerformanceOnly, with its audit.config) into "
        "compliance/<TEST>/ beside the submission run.", RULES)

    batch_size: Optional[int] = _field(None, "Largest batch an engine runs.", TUNING, ge=1)
    batch_timeout_us: Optional[int] = _field(None, "Server: longest a sample waits for its "
                                             "batch to fill, in us.", TUNING, ge=0)
    engines: Optional[int] = _field(None, "Engine actors (default: one per GPU).", TUNING,
                                    ge=1)
    max_inflight: Optional[int] = _field(None, "Batches in flight per engine "
                                         "(backpressure).", TUNING, ge=1)
    transport: Optional[TransportName] = _field(
        None, "How batches reach the engines: graph (Ray Compiled Graphs, shared-memory "
        "channels), calls (Ray actor calls) or inline (one engine, run inside the LoadGen "
        "actor: the least latency, for SingleStream; no engine restarts). Default: graph "
        "when the engines' host has two cores per graph lane (one lane per engine inference "
        "stream), else calls; inline for SingleStream unless --engines asks for more.",
        TUNING)
    threads: Optional[int] = _field(None, "CPU threads per engine.", TUNING, ge=1)
    max_restarts: int = _field(3, "Times Ray restarts a dead engine actor.", TUNING, ge=0)

    address: Optional[str] = _field(None, "Ray cluster to join: auto (the one started on "
                                    "this host) or HOST:PORT (default: $RAY_ADDRESS, as set "
                                    "inside `ray job submit`, else a local Ray).", CLUSTER)
    listen: Optional[str] = _field(None, "Local Ray only: the address its ports listen on "
                                   "(default 127.0.0.1: loopback only; an address of this "
                                   "host or 0.0.0.0 opens them to the network).", CLUSTER)
    dashboard: bool = _field(False, "Start the local Ray with its dashboard.", CLUSTER)
    keep_dashboard: bool = _field(False, "Keep the local Ray and its dashboard up after the "
                                  "run, until Ctrl-C (implies --dashboard).", CLUSTER)

    output: Path = _field(Path("results"), "Results root.", OUTPUT)

    sim: Optional[SimLatency] = _field(None, "Replaces the system's sim latency model.",
                                       TUNING, cli=False)
    track_ids: bool = _field(False, "Check every sample id is completed once.", TUNING,
                             cli=False)
    rules_round: str = _field("v1.0", "MLPerf round whose rules apply.", RULES, cli=False)

    def overrides(self) -> Overrides:
        """The request's changes to the round's rules and the system's targets.

        A quick run (neither --official nor a user.conf) lasts ``QUICK_DURATION_S`` and
        one query unless --duration/--queries say otherwise; with a user.conf, as in
        LoadGen, its values (or the rules') apply unless --duration/--queries are given.
        """
        quick = not self.official and self.user_conf is None
        return Overrides(
            duration=self.duration or (QUICK_DURATION_S if quick else None),
            queries=self.queries or (1 if quick else None),
            target_qps=self.target_qps, samples_per_query=self.samples_per_query,
        )

    @classmethod
    def from_options(cls, values: dict) -> "RunRequest":
        """A request from command-line values (None: not given), or a one-line error
        naming the option as the user typed it (``--batch-size 0: must be >= 1``)."""
        return cls.parse({k: v for k, v in values.items() if v is not None},
                         name=lambda loc: "--" + str(loc[0]).replace("_", "-"))


def table_fields(cli_only: bool = True) -> dict:
    """The fields of the argument table (name -> pydantic FieldInfo), in table order."""
    return {name: f for name, f in RunRequest.model_fields.items()
            if not cli_only or (f.json_schema_extra or {}).get("cli", True)}
