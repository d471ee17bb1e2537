"""One ``raybench run``: validate, place, run each LoadGen test, write its results.

:func:`prepare` checks everything that can be checked without Ray (names, system, rules,
LoadGen config files, model signature, dataset layout), so bad input fails in a second;
:func:`execute` takes the results directory, starts or joins Ray, places the run and runs
each of its LoadGen tests (:class:`TestSpec`) in a fresh LoadGen actor.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from raybench.actors.engine import EngineSpec
from raybench.actors.loadgen import LoadGenOutcome, LoadGenPlan
from raybench.actors.transport import AUTO
from raybench.benchmarks import get_benchmark
from raybench.benchmarks.base import Benchmark
from raybench.config.models import HarnessSettings, System
from raybench.config.names import Mode, Scenario, TransportName, accuracy_target_of, model_of
from raybench.config.systems import load_system
from raybench.engines import check_available, engine_class
from raybench.engines.base import EngineOptions
from raybench.errors import ConfigError, Interrupted, RunError, error_line
from raybench.results.accuracy import AccuracyResult
from raybench.results.loadgen_log import ACCURACY_LOG, SUMMARY, Summary, parse_summary, read_accuracy_log
from raybench.rules import load_rules
from raybench.rules.audit import AUDIT_CONFIG, apply_audit, audit_config_text
from raybench.rules.loadgen_conf import apply_conf, read_conf
from raybench.rules.settings import EffectiveSettings, apply_overrides, build_settings
from raybench.rules.submission import load_submission_rules
from raybench.run.layout import ACCURACY, PERFORMANCE_RUN, compliance_dir
from raybench.run.outputs import ResultDir, os_error_line
from raybench.run.placement import Placement, place, run_namespace
from raybench.run.session import RaySession, ray_session
from raybench.run.record import RunRecord
from raybench.run.request import RunRequest

log = logging.getLogger(__name__)

PROGRESS_S = 0.5  # how often a progress callback is fed
ENGINE_INFO_S = 30.0  # longest wait for an engine's info (Ray may be restarting it)
TUNABLE = ("batch_size", "batch_timeout_us", "max_inflight", "sim")


@dataclass(frozen=True)
class TestSpec:
    """One LoadGen test of a run: its mode and, for a compliance test, which one."""

    __test__ = False  # not a pytest test class
    mode: Mode  # AccuracyOnly or PerformanceOnly
    audit: Optional[str] = None  # TEST01, TEST04-A, ...

    @property
    def name(self) -> str:
        """The test as messages name it (``AccuracyOnly``, ``TEST01``)."""
        return self.audit or self.mode.value

    @property
    def unit(self) -> Path:
        """What the results directory writes whole: ``accuracy``, ``performance/run_1`` or,
        for a compliance test, ``compliance/<TEST>`` (its verification files go with it)."""
        if self.audit:
            return compliance_dir(Path(), self.audit)
        return Path(ACCURACY) if self.mode == Mode.ACCURACY else PERFORMANCE_RUN

    @property
    def logs(self) -> Path:
        """Where LoadGen's logs go inside :attr:`unit`."""
        return PERFORMANCE_RUN if self.audit else Path()


def loadgen_tests(mode: Mode, audit: Optional[str] = None) -> list[TestSpec]:
    """The LoadGen tests of a run in ``mode`` (SubmissionRun: accuracy, then performance)."""
    if audit:
        return [TestSpec(Mode.PERFORMANCE, audit)]
    if mode == Mode.SUBMISSION:
        return [TestSpec(Mode.ACCURACY), TestSpec(Mode.PERFORMANCE)]
    return [TestSpec(mode)]


@dataclass
class Prepared:
    """A validated run, ready to execute."""

    request: RunRequest
    system: System
    system_note: str
    benchmark: Benchmark
    mode: Mode
    harness: HarnessSettings
    settings: EffectiveSettings
    tuned: list[str]
    engines: int
    model: Optional[Path]
    data_dir: Optional[Path]
    total_count: int
    tests: list[TestSpec] = field(default_factory=list)
    transport: Optional[TransportName] = None  # None: graph or calls, for the engines' host

    @property
    def result_dir(self) -> Path:
        """``<output>/<system>/<benchmark>/<scenario>``."""
        r = self.request
        return Path(r.output) / self.system.id / r.benchmark / r.scenario


@dataclass
class TestReport:
    """One LoadGen test's results."""

    mode: str
    directory: Path
    summary: Optional[Summary]
    outcome: LoadGenOutcome
    accuracy: Optional[AccuracyResult] = None
    audit: Optional[str] = None  # the compliance test, if it is one

    @property
    def name(self) -> str:
        """The test as messages name it (``AccuracyOnly``, ``TEST01``)."""
        return self.audit or self.mode


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


def settings_of(prepared: Prepared, test: TestSpec) -> EffectiveSettings:
    """The TestSettings of one of the run's tests (a compliance test's with its audit entries)."""
    settings = prepared.settings.with_mode(test.mode.value)
    if test.audit:
        rules = load_submission_rules(prepared.request.rules_round)
        settings = apply_audit(settings, test.audit, rules)
    return settings


def _resolve_system(request: RunRequest) -> tuple[System, str]:
    if request.system:
        return load_system(request.system), request.system
    from raybench.config.detect import detect_system

    found = detect_system()
    return load_system(found.system_id), (f"{found.system_id} (detected)" if found.exact
                                          else f"{found.system_id} ({found.message})")


def prepare(request: RunRequest) -> Prepared:
    """Validate a run request without starting Ray.

    Raises:
        RaybenchError: Any bad value, missing path or mismatching model, with one line.
    """
    engine_cls = engine_class(request.engine)
    if request.address is None and "RAY_ADDRESS" not in os.environ:  # engines run here
        check_available(request.engine)
    mode = request.mode or (Mode.SUBMISSION if engine_cls.needs_data and not request.audit
                            else Mode.PERFORMANCE)
    if request.audit and mode != Mode.PERFORMANCE:
        raise ConfigError(f"--audit {request.audit.value} is a PerformanceOnly test; drop "
                          f"--mode {mode.value}")
    if mode != Mode.PERFORMANCE and not engine_cls.needs_data:
        raise ConfigError(f"engine {request.engine.value!r} produces no outputs, so mode "
                          f"{mode.value!r} cannot measure accuracy (allowed: PerformanceOnly)")
    if request.official and (request.duration is not None or request.queries is not None):
        raise ConfigError("--official applies the rules' duration and query count; "
                          "drop --duration/--queries")
    rules = load_rules(request.rules_round)
    rules.check_scenario(model_of(request.benchmark), request.scenario)
    if request.audit:
        applicable = load_submission_rules(request.rules_round).applicable_tests(
            request.benchmark, request.scenario)
        if request.audit not in applicable:
            raise ConfigError(f"--audit {request.audit.value} does not apply to "
                              f"{request.benchmark} {request.scenario} (applicable: "
                              f"{', '.join(applicable)})")
    confs = [read_conf(path, kind) for path, kind in
             ((request.mlperf_conf, "mlperf"), (request.user_conf, "user")) if path is not None]
    benchmark = get_benchmark(request.benchmark)
    system, note = _resolve_system(request)
    harness = system.harness(request.benchmark, request.scenario)

    tuned = []
    own = engine_cls.single_stream_latency_ns
    if (request.scenario == Scenario.SINGLE_STREAM and own
            and harness.single_stream_expected_latency_ns != own):
        tuned.append(f"single_stream_expected_latency_ns: "
                     f"{harness.single_stream_expected_latency_ns} -> {own} ({engine_cls.name} engine)")
        harness = harness.model_copy(update={"single_stream_expected_latency_ns": own})
    for key in TUNABLE:
        value = getattr(request, key)
        if value is not None and value != getattr(harness, key):
            tuned.append(f"{key}: {getattr(harness, key)} -> {value}")
            harness = harness.model_copy(update={key: value})

    model = data_dir = None
    if engine_cls.needs_data:
        model, data_dir = _model_and_data(request, benchmark)
        total = benchmark.open_dataset(data_dir).total_count
    else:
        total = rules.model(model_of(request.benchmark)).performance_sample_count
    settings = build_settings(rules, request.benchmark, request.scenario, mode.value, harness,
                              total)
    for conf in confs:  # mlperf.conf, then user.conf, as LoadGen reads them
        settings = apply_conf(settings, conf, total)
    settings = apply_overrides(settings, request.overrides(), total)  # the command line wins
    engines = request.engines or system.engines(os.cpu_count() or 1)
    transport = request.transport
    if (transport is None and request.scenario == Scenario.SINGLE_STREAM
            and request.engines in (None, 1)):
        transport = TransportName.INLINE  # one query at a time: the engine's own latency
    if transport == TransportName.INLINE:
        if request.engines not in (None, 1):
            raise ConfigError(f"--engines {request.engines} with --transport inline: the "
                              "inline transport runs one engine, inside the LoadGen actor "
                              "(allowed: --engines 1, or graph or calls)")
        engines = 1
    if request.engines and system.accelerator_count and request.engines > system.accelerator_count:
        raise ConfigError(f"--engines {request.engines} exceeds the {system.accelerator_count} "
                          f"GPUs of system {system.id!r}")
    return Prepared(request, system, note, benchmark, mode, harness, settings, tuned, engines,
                    model, data_dir, total, loadgen_tests(mode, request.audit), transport)


def _model_and_data(request: RunRequest, benchmark: Benchmark) -> tuple[Path, Path]:
    if (request.model is None) != (request.data_dir is None):
        raise ConfigError("give both --model and --data-dir, or neither (the generated stand-in)")
    if request.model is None:
        from raybench.standins import cached_standin, torchscript_standin

        standin = cached_standin(request.benchmark)
        if request.engine == "torch":  # the torch engine runs TorchScript
            return torchscript_standin(standin.model), standin.data_dir
        return standin.model, standin.data_dir
    if not request.data_dir.is_dir():
        raise ConfigError(f"--data-dir {request.data_dir} is not a directory")
    if request.model.suffix == ".onnx" or request.engine == "onnxruntime":
        from raybench.benchmarks.onnx_util import check_signature

        check_signature(request.model, benchmark.inputs, request.benchmark)
    return request.model, request.data_dir


def _engine_spec(prepared: Prepared) -> EngineSpec:
    h, request = prepared.harness, prepared.request
    threads = request.threads or max(1, (os.cpu_count() or 1) // prepared.engines)
    options = EngineOptions(
        model=prepared.model, batch_size=h.batch_size, precision=h.precision, threads=threads,
        copy_streams=h.copy_streams, inference_streams=h.inference_streams,
        use_graphs=h.use_graphs, sim=h.sim, system=prepared.system.id,
        accelerator=prepared.system.accelerator, benchmark=request.benchmark,
        device="cuda" if prepared.system.accelerator_count else "cpu",
        calibration=request.calibration,
        **({"workspace_mb": h.workspace_mb} if h.workspace_mb else {}),
    )
    return EngineSpec(benchmark=request.benchmark, engine=request.engine, options=options,
                      data_dir=prepared.data_dir, concurrency=_streams(prepared))


def _streams(prepared: Prepared) -> int:
    """Batches an engine runs at once: its inference streams, if the engine can."""
    concurrent = engine_class(prepared.request.engine).concurrent
    return prepared.harness.inference_streams if concurrent else 1


def execute(prepared: Prepared, on_ready: Optional[Callable[[list], None]] = None,
            on_progress: Optional[Callable] = None,
            on_placed: Optional[Callable[[Optional[RaySession], Placement], None]] = None,
            on_done: Optional[Callable[[RunReport, Optional[RaySession]], None]] = None,
            ray_log: Optional[Path] = None, verbose: bool = False,
            group=None) -> RunReport:
    """Run the prepared tests on Ray and write the results.

    The results directory is taken (and checked writable) before Ray starts. Ctrl-C or
    SIGTERM stops the LoadGen actor, the engines and a local Ray, then raises
    :class:`~raybench.errors.Interrupted` saying what was stopped and where LoadGen's
    partial logs are.

    Args:
        prepared: From :func:`prepare`.
        on_ready: Called with the engine actor handles once they are up (fault tests).
        on_progress: Called about twice a second with a
            :class:`~raybench.actors.loadgen.Progress` while a test runs.
        on_placed: Called with the Ray session (None: a Ray this process had already
            joined) and the placement once the engines are placed.
        on_done: Called with the report while Ray is still up, after the results
            directory is released (``--keep-dashboard`` waits there).
        ray_log: Where Ray's own log records go (None: the terminal).
        verbose: Ray's records on the terminal too, and the workers' output.
        group: The placement group to run in (a Ray Tune trial's, holding the run's
            :func:`~raybench.run.placement.bundles`); None: the run makes its own.

    Raises:
        RunError: The results directory is taken, engines could not be placed or
            started, or a test could not complete.
        Interrupted: Ctrl-C or SIGTERM (everything is stopped when it is raised).
    """
    import ray

    request, system = prepared.request, prepared.system
    report = RunReport(prepared)
    gpu = system.accelerator_count > 0
    simulated_gpus = gpu and not engine_class(request.engine).needs_data
    label = f"{system.id}/{request.benchmark}/{request.scenario}"
    doing, stopped = "before Ray started; nothing was written", ""
    try:
        with ResultDir(prepared.result_dir) as results, ray_session(
                request.address,
                max(system.accelerator_count, prepared.engines) if simulated_gpus else 0,
                prepared.engines + 1, request.dashboard or request.keep_dashboard,
                listen=request.listen, job_name=f"raybench run {label}",
                ray_log=ray_log, verbose=verbose) as session:
            doing = "while placing the engines; nothing was written"
            stopped = ("; LoadGen, the engines and the local Ray are stopped"
                       if session and session.local else "; LoadGen and the engines are stopped")
            graph_lanes = 0 if prepared.transport == TransportName.CALLS else _streams(prepared)
            placement = place(_engine_spec(prepared), prepared.engines, gpu,
                              request.max_restarts,
                              namespace=run_namespace(f"{request.benchmark}-{request.scenario}"),
                              group=group, graph_lanes=graph_lanes,
                              inline=prepared.transport == TransportName.INLINE)
            try:
                if on_placed:
                    on_placed(session, placement)
                try:
                    report.engine_info = ray.get([h.info.remote() for h in placement.engines])
                except ray.exceptions.RayActorError as exc:
                    raise RunError(f"engine actors failed to start: {error_line(exc)}") from None
                if on_ready:
                    on_ready(placement.engines)
                for test in prepared.tests:
                    doing = (f"during the {test.name} test of {label}; LoadGen's partial logs: "
                             f"{results.partial_dir(str(test.unit))}")
                    report.tests.append(_run_test(prepared, test, placement, results,
                                                  on_progress, report.engine_info))
                    report.engine_info = report.engine_info or report.tests[-1].outcome.engine_info
                doing = "after the run; its results are complete"
            finally:
                placement.release()
            results.release()
            if on_done:
                on_done(report, session)
    except KeyboardInterrupt as exc:
        raise Interrupted(f"{doing}{stopped}", getattr(exc, "signum", signal.SIGINT)) from None
    return report


def _run_test(prepared: Prepared, test: TestSpec, placement: Placement, results: ResultDir,
              on_progress: Optional[Callable] = None,
              engine_info: Optional[list[dict]] = None) -> TestReport:
    """Run one LoadGen test and move its logs into place.

    A test whose LoadGen actor died while an engine actor was restarted under a graph
    transport is run once more, from the start, on actor calls: Ray (2.60) may abort the
    process that drives compiled graphs when one of their actors dies (a check in its
    C++ channel code, which no Python code can catch). The first attempt's logs are
    kept in ``history/``; the outcome says why the test ran again.
    """
    from ray.exceptions import RayActorError, RayError

    unit = str(test.unit)
    settings = settings_of(prepared, test)
    lanes = _streams(prepared)  # one lane per inference stream
    transport = prepared.transport.value if prepared.transport else AUTO
    rerun = ""
    while True:
        partial = results.start_test(unit)
        kept = f"LoadGen's partial logs: {partial}"
        plan = _plan(prepared, test, settings, partial / test.logs, transport, lanes, engine_info)
        # engine processes before the test, where a lost LoadGen actor may be run again
        may_rerun = not rerun and transport != TransportName.CALLS.value and placement.engines
        pids = _engine_pids(placement) if may_rerun else None
        try:
            outcome = _drive(placement, plan, on_progress)
            break
        except RayActorError as exc:
            restarted = [] if pids is None else [
                e for e, (before, after) in enumerate(zip(pids, _engine_pids(placement)))
                if before != after]
            if not restarted:
                raise RunError(f"{test.name} test failed: {error_line(exc)}; {kept}") from None
            rerun = (f"the LoadGen actor died ({error_line(exc)}) while engine "
                     f"{', '.join(map(str, restarted))} restarted; run again on actor calls")
            log.warning("%s test: %s", test.name, rerun)
            transport = TransportName.CALLS.value
        except RayError as exc:
            raise RunError(f"{test.name} test failed: {error_line(exc)}; {kept}") from None
    outcome.rerun = rerun
    logs = partial / test.logs
    if outcome.fatal or outcome.drained_error:
        raise RunError(f"{test.name} test failed: {outcome.fatal or outcome.drained_error}; "
                       f"{kept}")
    try:
        _write_settings(prepared, test, settings, outcome, logs)
        accuracy = _accuracy(prepared, logs) if test.mode == Mode.ACCURACY else None
    except OSError as exc:  # a full disk: a write names no file, so name the directory
        raise RunError(f"cannot write results: {os_error_line(exc, logs)}; "
                       f"{kept}") from None
    summary = parse_summary(logs / SUMMARY)
    final = results.finish_test(unit) / test.logs
    return TestReport(test.mode.value, final, summary, outcome, accuracy, test.audit)


def _plan(prepared: Prepared, test: TestSpec, settings: EffectiveSettings, logs: Path,
          transport: str, lanes: int, engine_info: Optional[list[dict]]) -> LoadGenPlan:
    """The LoadGen actor's plan for one attempt at a test (its logs directory made)."""
    logs.mkdir(parents=True, exist_ok=True)
    audit_config = None
    if test.audit:  # where LoadGen reads it, and kept beside the logs
        audit_config = logs / AUDIT_CONFIG
        audit_config.write_text(audit_config_text(test.audit, prepared.request.benchmark))
    h = prepared.harness
    return LoadGenPlan(
        values=settings.values, log_dir=str(logs.resolve()), total_count=prepared.total_count,
        performance_count=settings.values["performance_sample_count_override"],
        batch_size=h.batch_size, batch_timeout_us=h.batch_timeout_us,
        max_inflight=max(h.max_inflight, lanes), transport=transport, lanes=lanes,
        # TEST01 logs sampled responses of a performance run: they must be real outputs
        want_outputs=(test.mode == Mode.ACCURACY
                      or settings.values.get("accuracy_log_sampling_target", 0) > 0),
        track_ids=prepared.request.track_ids,
        inline_engine=_engine_spec(prepared) if transport == TransportName.INLINE.value else None,
        run_label=(f"{prepared.system.id}/{prepared.request.benchmark}/"
                   f"{prepared.request.scenario}/{test.unit / test.logs}"),
        engine_info=engine_info or [],
        audit_config=str(audit_config.resolve()) if audit_config else None,
    )


def _drive(placement: Placement, plan: LoadGenPlan,
           on_progress: Optional[Callable]) -> LoadGenOutcome:
    """Run ``plan`` in a fresh LoadGen actor, reporting progress; the actor is killed after."""
    import ray

    actor = placement.loadgen_actor(name=plan.run_label)
    try:
        ref = actor.run.remote(plan)
        while on_progress is not None and not ray.wait([ref], timeout=PROGRESS_S)[0]:
            snapshot = ray.get(actor.progress.remote())
            if snapshot is not None:
                on_progress(snapshot)
        return ray.get(ref)
    finally:
        ray.kill(actor)


def _engine_pids(placement: Placement) -> list[Optional[int]]:
    """Each engine actor's process id now (None: it does not answer)."""
    import ray

    refs = [handle.info.remote() for handle in placement.engines]  # asked all at once
    deadline = time.monotonic() + ENGINE_INFO_S
    pids: list[Optional[int]] = []
    for ref in refs:
        try:
            pids.append(ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))["pid"])
        except Exception:  # dead, or restarting for longer than that
            pids.append(None)
    return pids


def _accuracy(prepared: Prepared, directory: Path) -> AccuracyResult:
    request = prepared.request
    entries = read_accuracy_log(directory / ACCURACY_LOG)
    rule = load_rules(request.rules_round).model(model_of(request.benchmark))
    score = prepared.benchmark.accuracy(entries, prepared.data_dir)
    result = AccuracyResult(request.benchmark, rule.metric, score, rule.fp32,
                            accuracy_target_of(request.benchmark))
    result.write(directory)
    return result


def _write_settings(prepared: Prepared, test: TestSpec, settings: EffectiveSettings,
                    outcome: LoadGenOutcome, directory: Path) -> None:
    (directory / "mlperf.conf").write_text(settings.conf_text("rules"))
    (directory / "user.conf").write_text(settings.conf_text("user"))
    RunRecord(
        request=prepared.request, system=prepared.system.id, engines=prepared.engines,
        harness=prepared.harness, tuned=prepared.tuned, rules_round=settings.round,
        test_settings=settings.values, overridden=settings.overridden,
        submittable=not settings.overridden, model=prepared.model,
        data_dir=prepared.data_dir, audit=test.audit, harness_outcome=outcome,
    ).write(directory)


def run(request: RunRequest, on_ready: Optional[Callable[[list], None]] = None) -> RunReport:
    """Validate and execute a run; see :func:`prepare` and :func:`execute`."""
    return execute(prepare(request), on_ready)
