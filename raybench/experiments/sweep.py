"""Sweeps: a grid of short runs expanded into trials, run in parallel on a Ray cluster.

A sweep spec (YAML, see ``launch/sweep-example.yaml``) holds ``base`` run settings and a
``grid`` of values to try. :func:`expand` makes one :class:`Trial` per point of the grid
with an id that depends only on its parameters, so a rerun of the same spec finds the
trials it already finished in the results CSV and skips them. :func:`run_sweep` runs the
trials as Ray tasks on the already-initialized cluster; each trial calls
:func:`raybench.run.run`, which places its engines in its own placement group, so
as many trials run at once as the cluster holds (bounded by ``parallel``).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml
from pydantic import Field

from raybench.config.models import Strict
from raybench.run.request import RunRequest, table_fields
from raybench.errors import ConfigError, error_line

log = logging.getLogger(__name__)

CSV_NAME = "sweep.csv"
# Sweep parameters are the argument table's fields, under the same names, minus those of
# the sweep as a whole: every trial writes under the sweep's directory, on its cluster.
PARAMS = tuple(name for name in table_fields(cli_only=False)
               if name not in ("output", "address", "dashboard"))
COLUMNS = ("trial", "status", *PARAMS, "valid", "metric_name", "metric", "p99_ms",
           "wall_s", "attempts", "node_id", "error", "directory")


class SweepSpec(Strict):
    """A sweep file: a name, base settings, a grid and where results go.

    ``base`` holds settings every trial shares and ``grid`` a list of values per setting;
    both take the argument table's names (``raybench run --help``, with ``_`` for ``-``).
    """

    name: str = "sweep"
    output: Path = Path("results/sweeps")
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    retries: int = Field(default=1, ge=0)


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep spec.

    Raises:
        ConfigError: Missing file, bad YAML, unknown field or bad value (one line).
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"sweep spec {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"sweep spec {path} is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sweep spec {path} is not a text file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with base: and grid:")
    spec = SweepSpec.parse(doc, where=str(path))
    check_spec(spec, str(path))
    return spec


def check_spec(spec: SweepSpec, where: str = "sweep spec") -> None:
    """Check every key of ``base`` and ``grid`` is a table field with valid values.

    Raises:
        ConfigError: One line naming the key and the bad value.
    """
    for section, values in (("base", spec.base), ("grid", spec.grid)):
        for key in values:
            if key not in PARAMS:
                raise ConfigError(f"{where}: {section}.{key}: unknown setting "
                                  f"(allowed: {', '.join(PARAMS)})")
    for key, values in spec.grid.items():
        if not values:
            raise ConfigError(f"{where}: grid.{key} is empty")
        for value in values:
            RunRequest.parse({key: value}, where=where, name=lambda loc: f"grid.{loc[0]}")
    RunRequest.parse(spec.base, where=where, name=lambda loc: f"base.{loc[0]}")


@dataclass(frozen=True)
class Trial:
    """One point of the grid."""

    trial_id: str
    params: dict[str, Any]  # the settings the spec gives (argument-table names)

    def label(self) -> str:
        """A short human description, e.g. ``resnet50 Server bs=64 qps=2000``."""
        short = {"batch_size": "bs", "batch_timeout_us": "timeout_us", "target_qps": "qps",
                 "engines": "engines", "max_inflight": "inflight"}
        parts = [str(self.params.get(k, "")) for k in ("benchmark", "scenario") if k in self.params]
        parts += [f"{short[k]}={self.params[k]:g}" if isinstance(self.params[k], float)
                  else f"{short[k]}={self.params[k]}" for k in short if k in self.params]
        return " ".join(parts)


def trial_id(params: dict[str, Any]) -> str:
    """A stable id: the same parameters give the same id in every run of every spec."""
    canon = json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)
    return hashlib.sha1(canon.encode()).hexdigest()[:10]


def expand(spec: SweepSpec) -> list[Trial]:
    """The grid's cross product over the base settings, in a stable order, deduplicated."""
    axes = [(name, spec.grid[name]) for name in PARAMS if name in spec.grid]
    trials, seen = [], set()
    for combo in itertools.product(*(values for _, values in axes)):
        params = dict(spec.base)
        params.update({name: value for (name, _), value in zip(axes, combo)})
        request = RunRequest.parse(params, where=f"trial {params}")
        params = request.model_dump(mode="json", include=set(params))
        tid = trial_id(params)
        if tid not in seen:
            seen.add(tid)
            trials.append(Trial(tid, params))
    return trials


def run_request(params: dict[str, Any], output: Path) -> RunRequest:
    """The :class:`RunRequest` of a trial, writing under ``output``."""
    return RunRequest.parse({**params, "output": output})


def run_trial(params: dict[str, Any], output: str) -> dict[str, Any]:
    """Run one trial on the current Ray cluster and return its result row fields.

    Raises:
        RaybenchError: The run could not complete.
    """
    from raybench.run import run

    start = time.perf_counter()
    report = run(run_request(params, Path(output)))
    wall = time.perf_counter() - start
    perf = next((t for t in reversed(report.tests) if t.mode == "PerformanceOnly"), report.tests[-1])
    s = perf.summary
    p99 = s.percentiles.get("99.00") if s else None
    nodes = sorted({info.get("node_id", "") for info in report.engine_info})
    return {
        "valid": None if s is None else s.valid, "metric_name": s.metric_name if s else None,
        "metric": s.metric if s else None, "p99_ms": None if p99 is None else p99 / 1e6,
        "wall_s": round(wall, 3), "node_id": ";".join(nodes), "directory": str(perf.directory),
        "engine_nodes": [info.get("node_id") for info in report.engine_info],
    }


@dataclass
class TrialResult:
    """A finished (or failed) trial."""

    trial: Trial
    status: str  # "ok" | "failed" | "skipped"
    row: dict[str, Any] = field(default_factory=dict)


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """The rows of an existing results CSV, by trial id (empty if there is none)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["trial"]: row for row in csv.DictReader(f)}


def write_rows(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    """Write every row atomically (a crash never leaves half a CSV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows.values():
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    os.replace(tmp, path)


def default_parallel(trials: list[Trial], cluster_resources: list[dict[str, float]],
                     engines_of: Callable[[dict], int]) -> int:
    """How many of the biggest trials fit on the cluster at once (at least 1).

    Args:
        trials: The trials to run.
        cluster_resources: Per alive node, its total resources.
        engines_of: Engines a trial's parameters ask for.
    """
    if not trials:
        return 1
    need = max(engines_of(t.params) for t in trials)
    fits = sum(int(node.get("GPU", 0) // need) for node in cluster_resources)
    if fits == 0:
        fits = sum(int(node.get("CPU", 0) // (need + 1)) for node in cluster_resources)
    return max(1, fits)


def _engines_needed(params: dict) -> int:
    from raybench.run import prepare

    try:
        return prepare(run_request(params, Path("/tmp"))).engines
    except Exception:  # a bad trial fails later, with its own message
        return params.get("engines", 1)


def run_sweep(spec: SweepSpec, parallel: Optional[int] = None, output: Optional[Path] = None,
              on_result: Optional[Callable[[TrialResult], None]] = None,
              trial_fn: Callable[[dict, str], dict] = run_trial) -> list[TrialResult]:
    """Run every trial of a sweep not already in its CSV, on the initialized Ray cluster.

    Each trial is a Ray task (zero CPUs) that calls :func:`raybench.run.run`; its
    LoadGen actor lands on the task's node and its engines in their own placement group.
    A trial that fails is retried ``spec.retries`` times, then marked failed while the
    others go on; a rerun skips trials whose row says ok and tries failed ones again. Results are written to ``OUTPUT/sweep.csv`` after every trial.

    Args:
        spec: The sweep.
        parallel: Most trials at once (default: as many of the biggest as the cluster holds).
        output: Results directory (default: ``spec.output / spec.name``).
        on_result: Called for every finished, failed or skipped trial.
        trial_fn: Runs one trial in a Ray task (default :func:`run_trial`; tests fake it).

    Returns:
        One result per trial, in grid order.

    Raises:
        ConfigError: A trial's settings are invalid (checked before anything runs).
    """
    import ray

    from raybench.run import prepare
    from raybench.errors import RaybenchError

    out = Path(output or spec.output / spec.name).resolve()
    csv_path = out / CSV_NAME
    trials = expand(spec)
    for trial in trials:  # fail fast on a bad point of the grid
        try:
            prepare(run_request(trial.params, out))
        except RaybenchError as exc:
            raise ConfigError(f"trial {trial.trial_id} ({trial.label()}): {exc}") from None
    rows: dict[str, dict[str, Any]] = dict(read_rows(csv_path))
    results: dict[str, TrialResult] = {}
    todo = []
    for trial in trials:
        if rows.get(trial.trial_id, {}).get("status") == "ok":
            results[trial.trial_id] = TrialResult(trial, "skipped", rows[trial.trial_id])
            if on_result:
                on_result(results[trial.trial_id])
        else:
            todo.append(trial)
    if parallel is None:
        nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
        parallel = default_parallel(todo, nodes, _engines_needed)
    log.info("sweep %s: %d trials, %d to run, %d at once", spec.name, len(trials), len(todo), parallel)

    remote = ray.remote(num_cpus=0, max_retries=0)(trial_fn)
    pending: dict[Any, tuple[Trial, int]] = {}
    queue = [(t, 1) for t in todo]

    def launch(trial: Trial, attempt: int) -> None:
        trial_out = out / "trials" / trial.trial_id
        pending[remote.remote(trial.params, str(trial_out))] = (trial, attempt)

    while queue or pending:
        while queue and len(pending) < parallel:
            launch(*queue.pop(0))
        done, _ = ray.wait(list(pending), num_returns=1)
        trial, attempt = pending.pop(done[0])
        row = {"trial": trial.trial_id, **trial.params, "attempts": attempt}
        try:
            row.update(ray.get(done[0]))
            row["status"] = "ok"
        except Exception as exc:  # RunError inside the task, a dead node or worker
            error = error_line(exc)[:300]
            if attempt <= spec.retries:
                log.warning("trial %s failed (attempt %d), retrying: %s", trial.trial_id, attempt, error)
                queue.insert(0, (trial, attempt + 1))
                continue
            log.error("trial %s failed: %s", trial.trial_id, error)
            row.update(status="failed", error=error)
        rows[trial.trial_id] = row
        write_rows(csv_path, rows)
        results[trial.trial_id] = TrialResult(trial, row["status"], row)
        if on_result:
            on_result(results[trial.trial_id])
    return [results[t.trial_id] for t in trials]


def local_init_kwargs(trials: list[Trial]) -> dict[str, Any]:
    """``ray.init`` arguments for a local Ray that can hold the sweep's trials.

    Like a single run, a local Ray declares the system's GPUs when every trial uses a
    data-less engine (sim, null), so a simulated GPU system places like the real one.
    """
    from raybench.run import prepare
    from raybench.engines import engine_class

    kwargs: dict[str, Any] = {"num_cpus": max(os.cpu_count() or 1, 2)}
    gpus, dataless = 0, True
    for trial in trials:
        prepared = prepare(run_request(trial.params, Path("/tmp")))
        gpus = max(gpus, prepared.system.accelerator_count, prepared.engines
                   if prepared.system.accelerator_count else 0)
        dataless = dataless and not engine_class(prepared.request.engine).needs_data
    if gpus and dataless:
        kwargs["num_gpus"] = gpus
    return kwargs
