"""Sweeps: a grid of raybench runs as Ray Tune trials.

A sweep spec (YAML, see ``launch/sweep-example.yaml``) holds ``base`` run settings and a
``grid`` of values to try, both under the argument table's names (``raybench run --help``
with ``_`` for ``-``). The grid becomes Tune's param space (one ``tune.grid_search`` per
setting), each trial one raybench run in its own placement group
(:mod:`raybench.experiments.trials`). The experiment directory is
``OUTPUT/NAME``: Tune's trial directories (each with the run's LoadGen logs under
``results/``), Tune's experiment state, and ``sweep.csv`` (one row per trial, rewritten
as trials finish). Running the same spec again resumes it through ``Tuner.restore``:
finished trials stay, unfinished and failed ones run.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml
from pydantic import Field

from raybench.config.models import Strict
from raybench.errors import ConfigError, RaybenchError, error_line
from raybench.experiments.trials import (PARAMS, RESULTS, alive_nodes, can_restore, check_fits,
                                         normalize, params_key, params_of, read_rows, result_row,
                                         run_trials, trial_error, write_rows)
from raybench.run.request import RunRequest

log = logging.getLogger(__name__)

CSV_NAME = "sweep.csv"
SPEC_NAME = "raybench-sweep.json"  # the spec an experiment was started with
COLUMNS = ("trial", "index", "status", *PARAMS, *RESULTS, "attempts", "node_id", "error",
           "directory")


class SweepSpec(Strict):
    """A sweep file: a name, base settings, a grid and where results go.

    ``base`` holds settings every trial shares and ``grid`` a list of values per setting;
    both take the argument table's names. A sweep varies at least one setting (a single
    run is ``raybench run``).
    """

    name: str = Field(default="sweep", pattern=r"^[\w.-]+$")
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
    except OSError as exc:
        raise ConfigError(f"sweep spec {path}: {exc.strerror or exc}") from None
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
    if "engine" in spec.base and spec.base["engine"] is None or None in spec.grid.get("engine", []):
        raise ConfigError(f'{where}: engine is empty (YAML reads null as nothing): quote '
                          'it, engine: "null"')
    if not spec.grid:
        raise ConfigError(f"{where}: grid is empty; a sweep varies at least one setting, "
                          "e.g. grid: {batch_size: [32, 64]} (one run: raybench run)")
    for key, values in spec.grid.items():
        if not values:
            raise ConfigError(f"{where}: grid.{key} is empty")
        for value in values:
            RunRequest.parse({key: value}, where=where, name=lambda loc: f"grid.{loc[0]}")
    RunRequest.parse(spec.base, where=where, name=lambda loc: f"base.{loc[0]}")


def axes(spec: SweepSpec) -> dict[str, list[Any]]:
    """The grid in table order, each value as the table spells it, duplicates dropped."""
    out: dict[str, list[Any]] = {}
    for name in PARAMS:
        if name in spec.grid:
            values = []
            for value in spec.grid[name]:
                value = normalize({name: value}, where=f"grid.{name}")[name]
                if value not in values:
                    values.append(value)
            out[name] = values
    return out


def varied(spec: SweepSpec) -> list[str]:
    """The settings that take more than one value (one table column each)."""
    return [name for name, values in axes(spec).items() if len(values) > 1]


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every trial's parameters: the grid's cross product over the base settings."""
    base = normalize(spec.base, where="base")
    grid = axes(spec)
    return [{**base, **dict(zip(grid, combo))} for combo in itertools.product(*grid.values())]


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's param space of the sweep: the base settings and a ``grid_search`` per setting
    that takes several values."""
    from ray import tune

    space = normalize(spec.base, where="base")
    for name, values in axes(spec).items():
        space[name] = tune.grid_search(values) if len(values) > 1 else values[0]
    return space


def _spec_doc(spec: SweepSpec) -> dict[str, Any]:
    return {"name": spec.name, "base": normalize(spec.base, where="base"),
            "grid": axes(spec), "retries": spec.retries}


@dataclass
class TrialRow:
    """One trial of a sweep: its place in the grid, parameters and result row."""

    index: int  # 1-based, in grid order
    params: dict[str, Any]
    row: dict[str, Any] = field(default_factory=dict)
    last_error: Optional[str] = None  # why its last attempt died (it is being retried)

    @property
    def status(self) -> str:
        """``ok``, ``error`` (raybench failed; not retried), ``failed`` (Tune gave up after
        retries: a lost node or trial process) or ``pending`` (not run yet)."""
        return self.row.get("status") or "pending"


@dataclass
class Sweep:
    """A checked sweep: its trials in grid order, its experiment directory, and whether
    it resumes an interrupted one (then ``before`` holds its rows by trial id)."""

    spec: SweepSpec
    directory: Path
    trials: list[TrialRow]
    resume: bool = False
    before: dict[str, dict[str, str]] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def names(self) -> list[str]:
        """The varied settings."""
        return varied(self.spec)

    @property
    def restored(self) -> int:
        """Trials that finished before this invocation."""
        return sum(bool(row.get("status")) for row in self.before.values())

    @property
    def csv_path(self) -> Path:
        """``sweep.csv`` in the experiment directory."""
        return self.directory / CSV_NAME

    @property
    def interrupted(self) -> bool:
        """True when some trial never finished (the sweep was stopped)."""
        return any(t.status == "pending" for t in self.trials)


def plan_sweep(spec: SweepSpec, output: Optional[Path] = None) -> Sweep:
    """Check every trial of a sweep (no Ray needed) and find an experiment to resume.

    Args:
        spec: The sweep.
        output: Experiment directory (default: ``spec.output / spec.name``).

    Raises:
        ConfigError: A trial's settings are invalid, or the directory holds a sweep of
            another spec.
    """
    from raybench.run import prepare

    out = Path(output or spec.output / spec.name).resolve()
    names = varied(spec)
    trials = [TrialRow(i + 1, params) for i, params in enumerate(expand(spec))]
    for t in trials:  # fail fast on a bad point of the grid
        try:
            prepare(RunRequest.parse({**t.params, "output": out}))
        except RaybenchError as exc:
            raise ConfigError(f"trial #{t.index} ({label(t.params, names)}): {exc}") from None
    resume = can_restore(out)
    if resume:
        _check_same_spec(spec, out)
    return Sweep(spec, out, trials, resume, read_rows(out / CSV_NAME) if resume else {})


def _check_same_spec(spec: SweepSpec, out: Path) -> None:
    try:
        before = json.loads((out / SPEC_NAME).read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{out} holds a Tune experiment that is not a raybench sweep; "
                          "give the sweep another name or --output") from None
    if before != json.loads(json.dumps(_spec_doc(spec), default=str)):
        raise ConfigError(f"{out} holds sweep {before.get('name')!r} of another spec (resuming "
                          "needs the same base, grid and retries); give the sweep another "
                          "name or --output")


def run_sweep(sweep: Sweep, parallel: Optional[int] = None,
              on_event: Optional[Callable[[str, TrialRow], None]] = None,
              verbose: bool = False) -> Sweep:
    """Run (or resume) a planned sweep as Ray Tune trials on the connected Ray cluster.

    A trial whose node or process dies is retried ``spec.retries`` times by Tune; a run
    that fails for raybench's own reason is reported with its error, not retried.
    ``sweep.csv`` is rewritten whenever a trial finishes.

    Args:
        sweep: From :func:`plan_sweep`.
        parallel: Most trials at once (default: as many as the cluster holds).
        on_event: Called with ``(event, trial)`` when a trial starts (``start``), finishes
            (``complete``), fails for good (``error``) or is retried (``recover``).
        verbose: Let Tune print its own progress table.

    Returns:
        The sweep, its trials' rows filled in.

    Raises:
        ConfigError: Some trial fits on no node of the cluster.
    """
    out, trials, names = sweep.directory, sweep.trials, sweep.names
    check_fits([t.params for t in trials], alive_nodes(),
               lambda i: f"trial #{i + 1} ({label(trials[i].params, names)})")
    if not sweep.resume:
        out.mkdir(parents=True, exist_ok=True)
        (out / SPEC_NAME).write_text(json.dumps(_spec_doc(sweep.spec), indent=1, default=str))
    by_key = {params_key(t.params): t for t in trials}
    starts: dict[str, int] = {}

    def update(trial_id: str, config: dict, metrics: dict, path: Optional[str],
               error: Optional[str]) -> None:
        t = by_key.get(params_key(params_of(config)))
        if t is not None and (metrics.get("status") or error):
            earlier = sweep.before.get(trial_id, {}).get("attempts") or 0
            t.row = {"trial": trial_id, "index": t.index,
                     **result_row(config, metrics, path, error),
                     "attempts": int(earlier) + starts.get(trial_id, 0)}

    def listener(event: str, trial) -> None:
        t = by_key.get(params_key(params_of(trial.config)))
        if event == "start":
            starts[trial.trial_id] = starts.get(trial.trial_id, 0) + 1
        elif event == "recover" and t is not None:
            t.last_error = trial_error(trial)
        elif event in ("complete", "error"):
            update(trial.trial_id, trial.config, trial.last_result or {}, trial.path,
                   trial_error(trial) if event == "error" else None)
            write_rows(sweep.csv_path, [t.row for t in trials if t.row], COLUMNS)
        if on_event is not None and t is not None:
            on_event(event, t)

    log.info("sweep %s: %d trials (%d finished before) in %s", sweep.spec.name, len(trials),
             sweep.restored, out)
    start = time.perf_counter()
    grid = run_trials(out, listener, param_space=None if sweep.resume else param_space(sweep.spec),
                      parallel=parallel, retries=sweep.spec.retries, restore=sweep.resume,
                      verbose=verbose)
    for result in grid:  # Tune's record of every trial, the restored ones included
        metrics = result.metrics or {}
        update(metrics.get("trial_id") or Path(result.path).name, result.config, metrics,
               result.path, None if result.error is None else error_line(result.error)[:300])
    write_rows(sweep.csv_path, [t.row for t in trials if t.row], COLUMNS)
    sweep.wall_s = time.perf_counter() - start
    return sweep


def label(params: dict[str, Any], names: list[str]) -> str:
    """A trial named by its varied settings: ``batch_size=32 target_qps=2000``."""
    return " ".join(f"{k}={params[k]}" for k in names if k in params) or "base"
