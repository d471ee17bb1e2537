"""Orchestrating one `raybench run`: validate, place engines, run LoadGen tests, collect.

:func:`prepare` validates everything that can be checked without Ray (names, system,
rules, model signature, dataset layout) so bad input fails in a second; :func:`execute`
starts or joins Ray, places the engine actors with one STRICT_PACK placement group on a
single node, runs each LoadGen test in a fresh LoadGen actor and writes the results.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pydantic import Field

from raybench.benchmarks import get_benchmark
from raybench.benchmarks.base import Benchmark
from raybench.cluster.loadgen_test import TestOutcome, TestPlan
from raybench.cluster.worker import EngineSpec
from raybench.config.models import HarnessSettings, SimLatency, Strict, System
from raybench.config.names import (accuracy_target_of, check_benchmark, check_mode,
                                   check_scenario, model_of)
from raybench.config.systems import load_system
from raybench.engines import engine_class
from raybench.engines.base import EngineOptions
from raybench.errors import ConfigError, RaybenchError, RunError, error_line
from raybench.results.accuracy import AccuracyResult
from raybench.results.loadgen_log import (ACCURACY_LOG, SUMMARY, Summary, parse_summary,
                                          read_accuracy_log)
from raybench.rules import load_rules
from raybench.rules.settings import EffectiveSettings, Overrides, build_settings

log = logging.getLogger(__name__)

SETTINGS_JSON = "raybench_settings.json"
PROGRESS_S = 0.5  # how often a progress callback is fed


class RunRequest(Strict):
    """Everything a user can ask of one run (the CLI's flags)."""

    benchmark: str = "resnet50"
    scenario: str = "Offline"
    mode: Optional[str] = None  # default: SubmissionRun, PerformanceOnly for data-less engines
    engine: str = "onnxruntime"
    system: Optional[str] = None  # default: detected
    model: Optional[Path] = None
    data_dir: Optional[Path] = None
    output: Path = Path("results")
    overrides: Overrides = Field(default_factory=Overrides)
    batch_size: Optional[int] = Field(default=None, ge=1)
    batch_timeout_us: Optional[int] = Field(default=None, ge=0)
    engines: Optional[int] = Field(default=None, ge=1)
    max_inflight: Optional[int] = Field(default=None, ge=1)
    batches_per_call: Optional[int] = Field(default=None, ge=1)
    threads: Optional[int] = Field(default=None, ge=1)
    sim: Optional[SimLatency] = None  # replaces the system's sim latency model
    address: Optional[str] = None
    dashboard: bool = False
    track_ids: bool = False
    max_restarts: int = Field(default=3, ge=0)
    rules_round: str = "v1.0"


@dataclass
class Prepared:
    """A validated run, ready to execute."""

    request: RunRequest
    system: System
    system_note: str
    benchmark: Benchmark
    mode: str
    harness: HarnessSettings
    settings: EffectiveSettings
    tuned: list[str]
    engines: int
    model: Optional[Path]
    data_dir: Optional[Path]
    total_count: int
    result_dir: Path


@dataclass
class TestReport:
    """One LoadGen test's results."""

    mode: str
    directory: Path
    summary: Optional[Summary]
    outcome: TestOutcome
    accuracy: Optional[AccuracyResult] = None


@dataclass
class RunReport:
    """Everything a run produced."""

    prepared: Prepared
    engine_info: list[dict] = field(default_factory=list)
    tests: list[TestReport] = field(default_factory=list)

    @property
    def submittable(self) -> bool:
        """True when no rule was overridden."""
        return not self.prepared.settings.overridden


def _resolve_system(request: RunRequest) -> tuple[System, str]:
    if request.system:
        return load_system(request.system), f"system {request.system} (chosen)"
    try:
        from raybench.config.detect import detect_system
    except ImportError:  # detection not available: the CPU default
        return load_system("cpu"), "system cpu (default)"
    found = detect_system()
    return load_system(found.system_id), f"system {found.system_id} (detected: {found.message})"


def prepare(request: RunRequest) -> Prepared:
    """Validate a run request without starting Ray.

    Raises:
        RaybenchError: Any bad value, missing path or mismatching model, with one line.
    """
    check_benchmark(request.benchmark)
    check_scenario(request.scenario)
    engine_cls = engine_class(request.engine)
    mode = request.mode or ("SubmissionRun" if engine_cls.needs_data else "PerformanceOnly")
    check_mode(mode)
    if mode != "PerformanceOnly" and not engine_cls.needs_data:
        raise ConfigError(f"engine {request.engine!r} produces no outputs, so mode {mode!r} "
                          "cannot measure accuracy (allowed: PerformanceOnly)")
    rules = load_rules(request.rules_round)
    rules.check_scenario(model_of(request.benchmark), request.scenario)
    benchmark = get_benchmark(request.benchmark)
    system, note = _resolve_system(request)
    harness = system.harness(request.benchmark, request.scenario)

    tuned = []
    changes = {"batch_size": request.batch_size, "batch_timeout_us": request.batch_timeout_us,
               "max_inflight_per_engine": request.max_inflight,
               "batches_per_call": request.batches_per_call, "sim": request.sim}
    for key, value in changes.items():
        if value is not None and value != getattr(harness, key):
            tuned.append(f"{key}: {getattr(harness, key)} -> {value}")
            harness = harness.model_copy(update={key: value})

    model = data_dir = None
    if engine_cls.needs_data:
        model, data_dir = _model_and_data(request, benchmark)
        total = benchmark.open_dataset(data_dir).total_count
    else:
        total = rules.model(model_of(request.benchmark)).performance_sample_count
    settings = build_settings(rules, request.benchmark, request.scenario, mode, harness,
                              total, request.overrides)
    engines = request.engines or system.engines(os.cpu_count() or 1)
    if request.engines and system.accelerator_count and request.engines > system.accelerator_count:
        raise ConfigError(f"--engines {request.engines} exceeds the {system.accelerator_count} "
                          f"GPUs of system {system.id!r}")
    result_dir = Path(request.output) / system.id / request.benchmark / request.scenario
    return Prepared(request, system, note, benchmark, mode, harness, settings, tuned, engines,
                    model, data_dir, total, result_dir)


def _model_and_data(request: RunRequest, benchmark: Benchmark) -> tuple[Path, Path]:
    if (request.model is None) != (request.data_dir is None):
        raise ConfigError("give both --model and --data-dir, or neither (the generated stand-in)")
    if request.model is None:
        from raybench.standins import cached_standin

        standin = cached_standin(request.benchmark)
        return standin.model, standin.data_dir
    if not request.data_dir.is_dir():
        raise ConfigError(f"--data-dir {request.data_dir} is not a directory")
    if request.model.suffix == ".onnx" or request.engine == "onnxruntime":
        from raybench.benchmarks.onnx_util import check_signature

        check_signature(request.model, benchmark.inputs, request.benchmark)
    return request.model, request.data_dir


@contextmanager
def ray_session(request: RunRequest, system: System, engines: int):
    """Join the cluster at ``request.address``, reuse a running Ray, or start a local one.

    A local Ray declares the system's GPUs for data-less engines (sim, null) on a host
    without them, so a simulated 8-GPU system places like the real one.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs: dict = {"logging_level": logging.WARNING, "log_to_driver": False}
    if request.address:
        kwargs["address"] = request.address
    else:  # a new local cluster, even if another one runs on this host
        kwargs["address"] = "local"
        kwargs["num_cpus"] = max(os.cpu_count() or 1, engines + 1)
        if system.accelerator_count and not engine_class(request.engine).needs_data:
            kwargs["num_gpus"] = max(system.accelerator_count, engines)
        kwargs["include_dashboard"] = request.dashboard
        if request.dashboard:
            kwargs["dashboard_host"] = "127.0.0.1"
    ray.init(**kwargs)
    try:
        yield
    finally:
        ray.shutdown()


def _place_engines(prepared: Prepared, spec: EngineSpec):
    """Create the engine actors in one STRICT_PACK placement group (one node)."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from actors.engine import EngineActor

    n = prepared.engines
    gpu = prepared.system.accelerator_count > 0
    bundle = {"GPU": 1} if gpu else {"CPU": 1}
    key = next(iter(bundle))
    best = max((node["Resources"].get(key, 0) for node in ray.nodes() if node["Alive"]), default=0)
    if best < n:
        raise RunError(f"{n} engines need {n} {key} on one node; the largest node has {best:g}"
                       + (" (use --system cpu, or --engine sim on a simulated system)" if gpu else ""))
    pg = placement_group([dict(bundle) for _ in range(n)], strategy="STRICT_PACK")
    if not pg.wait(timeout_seconds=120):
        ray.util.remove_placement_group(pg)
        raise RunError(f"could not place {n} engines ({bundle} each) on one node within 120 s")
    handles = [
        EngineActor.options(
            num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
            max_restarts=prepared.request.max_restarts, max_task_retries=0,
            max_concurrency=spec.concurrency,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=pg, placement_group_bundle_index=i),
        ).remote(spec)
        for i in range(n)
    ]
    return pg, handles


def _engine_spec(prepared: Prepared) -> EngineSpec:
    h = prepared.harness
    threads = prepared.request.threads or max(1, (os.cpu_count() or 1) // prepared.engines)
    options = EngineOptions(
        model=prepared.model, batch_size=h.batch_size, precision=h.precision, threads=threads,
        copy_streams=h.copy_streams, inference_streams=h.inference_streams,
        use_graphs=h.use_graphs, sim=h.sim, system=prepared.system.id,
        accelerator=prepared.system.accelerator, benchmark=prepared.request.benchmark,
    )
    concurrent = engine_class(prepared.request.engine).concurrent
    return EngineSpec(benchmark=prepared.request.benchmark, engine=prepared.request.engine,
                      options=options, data_dir=prepared.data_dir,
                      concurrency=h.inference_streams if concurrent else 1)


def execute(prepared: Prepared, on_ready: Optional[Callable[[list], None]] = None,
            on_progress: Optional[Callable] = None) -> RunReport:
    """Run the prepared tests on Ray and write the results.

    Args:
        prepared: From :func:`prepare`.
        on_ready: Called with the engine actor handles once they are up (fault tests).
        on_progress: Called about twice a second with a
            :class:`~raybench.cluster.loadgen_test.Progress` while a test runs.

    Raises:
        RunError: Engines could not be placed or started, or a test could not complete.
    """
    import ray

    report = RunReport(prepared)
    with ray_session(prepared.request, prepared.system, prepared.engines):
        pg, handles = _place_engines(prepared, _engine_spec(prepared))
        try:
            try:
                report.engine_info = ray.get([h.info.remote() for h in handles])
            except ray.exceptions.RayActorError as exc:
                raise RunError(f"engine actors failed to start: {error_line(exc)}") from None
            if on_ready:
                on_ready(handles)
            modes = (["AccuracyOnly", "PerformanceOnly"] if prepared.mode == "SubmissionRun"
                     else [prepared.mode])
            for mode in modes:
                report.tests.append(_run_one(prepared, mode, handles, on_progress))
        finally:
            for h in handles:
                ray.kill(h)
            ray.util.remove_placement_group(pg)
    return report


def _run_one(prepared: Prepared, mode: str, handles: list,
             on_progress: Optional[Callable] = None) -> TestReport:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from actors.loadgen import LoadGenActor

    final = prepared.result_dir / ("accuracy" if mode == "AccuracyOnly" else "performance/run_1")
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    settings = prepared.settings.with_mode(mode)
    h = prepared.harness
    plan = TestPlan(
        values=settings.values, log_dir=str(partial.resolve()), total_count=prepared.total_count,
        performance_count=settings.values["performance_sample_count_override"],
        batch_size=h.batch_size, batch_timeout_us=h.batch_timeout_us,
        max_inflight=h.max_inflight_per_engine, batches_per_call=h.batches_per_call,
        want_outputs=mode == "AccuracyOnly",
        track_ids=prepared.request.track_ids,
    )
    actor = LoadGenActor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node_id=ray.get_runtime_context().get_node_id(), soft=False)).remote(handles)
    try:
        ref = actor.run.remote(plan)
        while on_progress is not None and not ray.wait([ref], timeout=PROGRESS_S)[0]:
            snapshot = ray.get(actor.progress.remote())
            if snapshot is not None:
                on_progress(snapshot)
        outcome = ray.get(ref)
    except ray.exceptions.RayError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise RunError(f"{mode} test failed: {error_line(exc)}") from None
    finally:
        ray.kill(actor)
    if outcome.fatal or outcome.drained_error:
        shutil.rmtree(partial, ignore_errors=True)
        raise RunError(f"{mode} test failed: {outcome.fatal or outcome.drained_error}")
    _write_settings(prepared, settings, outcome, partial)
    accuracy = None
    if mode == "AccuracyOnly":
        accuracy = _accuracy(prepared, partial)
    summary = parse_summary(partial / SUMMARY)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return TestReport(mode, final, summary, outcome, accuracy)


def _accuracy(prepared: Prepared, directory: Path) -> AccuracyResult:
    entries = read_accuracy_log(directory / ACCURACY_LOG)
    rule = load_rules(prepared.request.rules_round).model(model_of(prepared.request.benchmark))
    value = prepared.benchmark.accuracy(entries, prepared.data_dir)
    result = AccuracyResult(prepared.request.benchmark, rule.metric, value, rule.fp32,
                            accuracy_target_of(prepared.request.benchmark))
    result.write(directory)
    return result


def _write_settings(prepared: Prepared, settings: EffectiveSettings, outcome: TestOutcome,
                    directory: Path) -> None:
    (directory / "mlperf.conf").write_text(settings.conf_text("rules"))
    (directory / "user.conf").write_text(settings.conf_text("user"))
    doc = {
        "request": json.loads(prepared.request.model_dump_json()),
        "system": prepared.system.id,
        "engines": prepared.engines,
        "harness": prepared.harness.model_dump(),
        "tuned": prepared.tuned,
        "rules_round": settings.round,
        "test_settings": settings.values,
        "overridden": settings.overridden,
        "submittable": not settings.overridden,
        "model": str(prepared.model) if prepared.model else None,
        "data_dir": str(prepared.data_dir) if prepared.data_dir else None,
        "harness_outcome": asdict(outcome),
    }
    (directory / SETTINGS_JSON).write_text(json.dumps(doc, indent=2, default=str))


def run(request: RunRequest, on_ready: Optional[Callable[[list], None]] = None) -> RunReport:
    """Validate and execute a run; see :func:`prepare` and :func:`execute`."""
    return execute(prepare(request), on_ready)


__all__ = ["RunRequest", "RunReport", "TestReport", "Prepared", "prepare", "execute", "run",
           "RaybenchError"]
