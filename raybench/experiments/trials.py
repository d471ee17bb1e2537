"""raybench runs as Ray Tune trials: the trainable, its resources, and trial events.

Each trial is one raybench run. Its Tune resources are a placement group of the run's own
layout (:func:`raybench.run.placement.bundles`: one bundle per engine, one CPU bundle for
the LoadGen actor, STRICT_PACK) plus an empty head bundle for the trainable itself, and
the run places its actors in that group instead of making its own. (A group of its own
would reserve the system's GPUs a second time, and on a node whose only CPU the trial
holds it would never be placed.) So Tune starts as many trials as the cluster holds whole
systems, spreads them over nodes and never splits one.

Failures: a trial whose process or node dies (a lost node, a killed trial actor) is
retried by Tune (``FailureConfig(max_failures=retries)``). A run that fails inside the
trial (a :class:`~raybench.errors.RaybenchError`, or any exception: a bug in raybench)
is that trial's result, status ``error`` with its one-line error, and is not retried:
it would fail the same way again.

Each trial writes its run under ``results/`` in its Tune working directory, which Tune
syncs into the trial's directory of the experiment (``SyncConfig(sync_artifacts=True)``).
Tune reuses a finished trial's actor and placement group for the next trial of the same
shape (``reuse_actors``): about 3 s less per trial than a fresh actor on 2 cores.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ray import tune

from raybench.errors import ConfigError, error_line
from raybench.run.request import RunRequest, table_fields

log = logging.getLogger(__name__)

# Trial parameters are the argument table's fields, under the same names, minus those of
# the experiment as a whole: every trial writes into its trial directory, on one cluster.
PARAMS = tuple(name for name in table_fields(cli_only=False)
               if name not in ("output", "address", "dashboard"))
PATH_PARAMS = ("model", "data_dir", "calibration")
TRIAL_OUTPUT = "results"  # a trial's run results, inside its trial directory
# A trial's status: its run completed (VALID or not), failed for raybench's own reason
# (not retried), or Tune gave up on it (its node or process died, retries used up).
STATUS_OK, STATUS_ERROR, STATUS_FAILED = "ok", "error", "failed"
# What a trial reports (see :func:`run_trial`), as columns of a results CSV.
RESULTS = ("valid", "metric_name", "metric", "p99_ms", "setup_s", "test_s", "wall_s")


def params_of(config: dict[str, Any]) -> dict[str, Any]:
    """The run parameters in a trial's config (its other keys are the experiment's)."""
    return {k: v for k, v in config.items() if k in PARAMS}


def normalize(params: dict[str, Any], where: str = "trial") -> dict[str, Any]:
    """Parameters as the argument table spells them (``offline`` -> ``Offline``), relative
    paths made absolute (a trial runs in its own working directory).

    Raises:
        ConfigError: A value the table does not accept (one line).
    """
    request = RunRequest.parse(params, where=where)
    out = request.model_dump(mode="json", include=set(params))
    for key in PATH_PARAMS:
        if out.get(key) is not None:
            out[key] = str(Path(out[key]).expanduser().resolve())
    return out


def params_key(params: dict[str, Any]) -> str:
    """A trial's parameters as a key (the same parameters, the same key)."""
    return json.dumps(params, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _prepared(key: str) -> tuple[int, int]:
    from raybench.run import prepare

    prepared = prepare(RunRequest.parse({**json.loads(key), "output": Path(TRIAL_OUTPUT)}))
    return prepared.engines, prepared.system.accelerator_count


def layout(params: dict[str, Any]) -> tuple[int, bool]:
    """``(engines, gpu)`` of a trial's run, as :func:`raybench.run.prepare` resolves them.

    Raises:
        RaybenchError: The parameters do not make a valid run (one line).
    """
    engines, gpus = _prepared(params_key(params))
    return engines, gpus > 0


def trial_bundles(params: dict[str, Any]) -> list[dict[str, float]]:
    """The placement group bundles of one trial (the run's layout)."""
    from raybench.run.placement import bundles

    return bundles(*layout(params))


def trial_resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """A trial's Tune resources: an empty head bundle for the trainable, then the run's
    bundles, all on one node."""
    return tune.PlacementGroupFactory([{}] + trial_bundles(params_of(config)),
                                      strategy="STRICT_PACK")


def _total(bundles: list[dict[str, float]]) -> dict[str, float]:
    need: dict[str, float] = {}
    for b in bundles:
        for k, v in b.items():
            need[k] = need.get(k, 0.0) + v
    return need


def systems_fit(bundles: list[dict[str, float]], nodes: list[dict[str, float]]) -> int:
    """How many groups of ``bundles`` (STRICT_PACK) the nodes hold at once.

    Args:
        bundles: One trial's bundles.
        nodes: Total resources per alive node.
    """
    need = _total(bundles)
    return sum(int(min(node.get(k, 0.0) // v for k, v in need.items())) for node in nodes)


def alive_nodes() -> list[dict[str, float]]:
    """Total resources of every alive node of the connected Ray cluster."""
    import ray

    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def check_fits(trials: list[dict[str, Any]], nodes: list[dict[str, float]],
               label: Callable[[int], str]) -> None:
    """Raise a one-line ConfigError if some trial fits on no node of the cluster.

    Args:
        trials: Each trial's parameters.
        nodes: Total resources per alive node (:func:`alive_nodes`).
        label: How a message names trial ``i``.
    """
    for i, params in enumerate(trials):
        bundles = trial_bundles(params)
        if not systems_fit(bundles, nodes):
            need = _total(bundles)
            most = {k: max((n.get(k, 0.0) for n in nodes), default=0.0) for k in need}
            raise ConfigError(
                f"{label(i)} needs {', '.join(f'{v:g} {k}' for k, v in need.items())} on one "
                f"node; no node of the cluster has that (most per node: "
                f"{', '.join(f'{v:g} {k}' for k, v in most.items())})")


def local_resources(trials: list[dict[str, Any]]) -> tuple[int, int]:
    """``(num_gpus, num_cpus)`` a new local Ray declares to hold the trials.

    Like a single run, a local Ray declares the system's GPUs when every trial uses a
    data-less engine (sim, null), so a simulated GPU system places like the real one
    (0: Ray detects them); and enough CPUs for the biggest CPU trial (engines, LoadGen).
    """
    from raybench.engines import engine_class

    cpus, gpus, dataless = 1, 0, True
    for params in trials:
        engines, system_gpus = _prepared(params_key(params))
        gpus = max(gpus, system_gpus, engines) if system_gpus else gpus
        cpus = max(cpus, 1 if system_gpus else engines + 1)
        dataless = dataless and not engine_class(params.get("engine", "onnxruntime")).needs_data
    return (gpus if dataless else 0), cpus


def _outcome(report, trial_dir: Path) -> dict[str, Any]:
    perf = next((t for t in reversed(report.tests) if t.mode == "PerformanceOnly"),
                report.tests[-1])
    s = perf.summary
    out: dict[str, Any] = {"status": STATUS_OK,
                           "node_id": ";".join(sorted({i.get("node_id", "") for i in
                                                       report.engine_info}))}
    if s is not None:
        out.update(valid=bool(s.valid), metric_name=s.metric_name or "")
        if s.metric is not None:
            out["metric"] = float(s.metric)
        p99 = s.percentiles.get("99.00")
        if p99 is not None:
            out["p99_ms"] = p99 / 1e6
    out["directory"] = str(perf.directory.relative_to(trial_dir))
    return out


def run_trial(config: dict[str, Any]) -> None:
    """The Tune trainable: one raybench run in the trial's placement group.

    Reports one result: ``status`` (``ok`` or ``error``), ``valid``, ``metric_name``,
    ``metric``, ``p99_ms``, the engines' ``node_id``, the test ``directory`` (relative to
    the trial directory), ``error``, and the times ``setup_s`` (prepare, engine actors
    placed and started), ``test_s`` (LoadGen actors and tests, results written) and
    ``wall_s``.
    """
    from ray.util.placement_group import get_current_placement_group

    from raybench.run import execute, prepare

    start = time.perf_counter()
    ready: list[float] = []
    trial_dir = Path(tune.get_context().get_trial_dir())
    try:
        group = get_current_placement_group()
        request = RunRequest.parse({**params_of(config), "output": trial_dir / TRIAL_OUTPUT})
        if request.engines is None and group is not None:  # the trial's resources decide
            request = request.model_copy(update={"engines": len(group.bundle_specs) - 1})
        report = execute(prepare(request), on_ready=lambda _: ready.append(time.perf_counter()),
                         group=group)
        metrics = _outcome(report, trial_dir)
    except Exception as exc:  # noqa: BLE001 - raybench's own failure: the trial's result
        log.warning("trial failed: %s", error_line(exc))
        metrics = {"status": STATUS_ERROR, "error": error_line(exc)[:300]}
    end = time.perf_counter()
    if ready:
        metrics.update(setup_s=round(ready[0] - start, 3), test_s=round(end - ready[0], 3))
    metrics["wall_s"] = round(end - start, 3)
    tune.report(metrics)


# -- trial events on the driver ---------------------------------------------------------

Listener = Callable[[str, Any], None]
_LISTENERS: dict[str, Listener] = {}


class TrialEvents(tune.Callback):
    """Forwards Tune's trial events (``start``, ``complete``, ``error``, ``recover``) to
    the listener registered for its experiment in this process.

    Tune pickles its callbacks with the experiment (``Tuner.restore`` brings them back),
    so the callback holds only the experiment's key and the listener stays in the process.
    """

    def __init__(self, key: str):
        self.key = key

    def _emit(self, event: str, trial) -> None:
        listener = _LISTENERS.get(self.key)
        if listener is not None:
            listener(event, trial)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._emit("start", trial)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._emit("complete", trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._emit("error", trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._emit("recover", trial)


def trial_error(trial) -> str:
    """One line for why Tune marked a trial failed (a lost node, a dead trial actor)."""
    try:  # Tune's error file on the driver: "Failure # N (occurred at ...)" then the error
        text = Path(trial.error_file).read_text()
    except (OSError, TypeError):
        return "trial failed"
    last = text.rsplit("Failure # ", 1)[-1].split("\n", 1)[-1].strip()
    return error_line(RuntimeError(last))[:300] if last else "trial failed"


def run_trials(experiment: Path, listener: Optional[Listener] = None, *,
               param_space: Optional[dict] = None, searcher=None,
               parallel: Optional[int] = None, retries: int = 1, restore: bool = False,
               verbose: bool = False) -> "tune.ResultGrid":
    """Run (or resume) a Tune experiment of raybench trials on the connected cluster.

    Args:
        experiment: The experiment directory (``storage_path/name``).
        listener: Called with ``(event, trial)`` for every trial event (see
            :class:`TrialEvents`), in this process.
        param_space: Tune's param space (a grid); with ``searcher``, the searcher's
            suggestions are the whole config.
        searcher: A :class:`ray.tune.search.Searcher` (peak search), or None for the grid.
        parallel: Most trials at once (None: as many as the cluster holds).
        retries: Times a trial whose node or process died is tried again.
        restore: Resume the interrupted experiment in ``experiment`` (``Tuner.restore``):
            finished trials stay, unfinished and failed ones run.
        verbose: Let Tune print its own progress table.

    Returns:
        Tune's ResultGrid of every trial of the experiment.
    """
    trainable = tune.with_resources(run_trial, trial_resources)
    key = str(experiment)
    if listener is not None:
        _LISTENERS[key] = listener
    try:
        if restore:
            tuner = tune.Tuner.restore(key, trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=True)
        else:
            tuner = tune.Tuner(
                trainable, param_space=param_space or {},
                tune_config=tune.TuneConfig(search_alg=searcher, reuse_actors=True,
                                            num_samples=-1 if searcher else 1,
                                            max_concurrent_trials=parallel),
                run_config=tune.RunConfig(
                    name=experiment.name, storage_path=str(experiment.parent),
                    failure_config=tune.FailureConfig(max_failures=retries),
                    sync_config=tune.SyncConfig(sync_artifacts=True),
                    callbacks=[TrialEvents(key)], verbose=1 if verbose else 0))
        return tuner.fit()
    finally:
        _LISTENERS.pop(key, None)


def can_restore(experiment: Path) -> bool:
    """Whether ``experiment`` holds a Tune experiment that :func:`run_trials` can resume."""
    return Path(experiment).is_dir() and tune.Tuner.can_restore(str(experiment))


def result_row(trial_config: dict[str, Any], metrics: dict[str, Any], path: Optional[str],
               error: Optional[str]) -> dict[str, Any]:
    """A trial's result row: its parameters, what it reported, where its run is.

    Args:
        trial_config: The trial's config.
        metrics: Its last reported result ({} if it never reported).
        path: The trial directory in the experiment.
        error: Why Tune failed the trial, if it did.
    """
    row = dict(params_of(trial_config))
    for name in ("status", *RESULTS, "node_id", "error", "directory"):
        if metrics.get(name) is not None:
            row[name] = metrics[name]
    if error is not None and row.get("status") != STATUS_OK:
        row.update(status=STATUS_FAILED, error=error)
    if row.get("directory") and path and not Path(row["directory"]).is_absolute():
        row["directory"] = str(Path(path) / row["directory"])
    return row


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """The rows of an existing results CSV, by trial id (empty if there is none)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["trial"]: row for row in csv.DictReader(f)}


def write_rows(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """Write every row atomically (a crash never leaves half a CSV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    os.replace(tmp, path)
