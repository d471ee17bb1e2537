"""Peak search: the highest Server target QPS that LoadGen still calls VALID, on Ray Tune.

:class:`PeakSearch` is the search as pure logic: it first brackets the peak (doubling up
from a valid start or halving down from an invalid one), then narrows the bracket by
k-section (``parallel`` points per round, plain bisection when ``parallel`` is 1) until
it is within ``tolerance``. :class:`Confirmation` then asks for one run at the rules'
duration at the peak, stepping down by ``tolerance`` while it is INVALID.

:class:`PeakSearcher` is both as a Ray Tune searcher: each round's probes are trials
that run at once, then the confirming runs, one at a time. :func:`find_peak` runs that
search as one Tune experiment (every probe and every confirming run a trial, and a row
of ``peak.csv``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ray.tune.search import Searcher

from raybench.errors import ConfigError, RunError, error_line
from raybench.experiments.trials import (PARAMS, RESULTS, STATUS_OK, alive_nodes, normalize,
                                         result_row, run_trials, systems_fit, trial_bundles,
                                         trial_error, write_rows)

log = logging.getLogger(__name__)

CSV_NAME = "peak.csv"
COLUMNS = ("trial", "probe", "status", *PARAMS, *RESULTS, "node_id", "error", "directory")
SEARCH, CONFIRM, MEASURE = "search", "confirm", "measure"  # a probe's kind
MAX_AUTO_PARALLEL = 4  # probes per round when the cluster holds more systems


@dataclass
class Probe:
    """One trial of the search (or a confirming run)."""

    qps: float
    valid: bool
    metric: Optional[float] = None
    p99_ms: Optional[float] = None
    error: Optional[str] = None
    kind: str = SEARCH
    row: dict[str, Any] = field(default_factory=dict)  # the trial's full result row


@dataclass
class PeakResult:
    """The outcome of a search: the highest VALID target QPS and every probe made."""

    peak_qps: Optional[float]
    lowest_invalid_qps: Optional[float]
    probes: list[Probe] = field(default_factory=list)  # in the order they started
    confirmed: Optional[Probe] = None
    rounds: int = 0
    directory: Optional[Path] = None
    wall_s: float = 0.0


class PeakSearch:
    """Bracket, then narrow, the highest VALID target QPS (no Ray: feed it probes).

    Args:
        start: The first target QPS to try (e.g. the system's own Server target).
        tolerance: Stop when ``(high - low) / low`` is at most this.
        max_rounds: Most rounds.
        parallel: Target QPS values per round.
        floor: Give up halving below this QPS (then no peak is found).

    Raises:
        ConfigError: A non-positive start, tolerance or parallel.
    """

    def __init__(self, start: float, tolerance: float = 0.05, max_rounds: int = 12,
                 parallel: int = 1, floor: float = 1.0):
        if start <= 0 or tolerance <= 0 or parallel < 1:
            raise ConfigError("peak search needs start > 0, tolerance > 0 and parallel >= 1")
        self.start, self.tolerance, self.max_rounds = start, tolerance, max_rounds
        self.parallel, self.floor = parallel, floor
        self.rounds = 0
        self.probes: list[Probe] = []
        self.low: Optional[float] = None  # highest valid
        self.high: Optional[float] = None  # lowest invalid above low

    def next_round(self) -> list[float]:
        """The target QPS values of the next round ([] when the search is over)."""
        low, high, k = self.low, self.high, self.parallel
        if self.rounds >= self.max_rounds:
            return []
        if low is None and high is None:
            values = [self.start * 2.0 ** i for i in range(k)]
        elif low is None:  # everything so far invalid: go down
            values = [high / 2.0 ** (i + 1) for i in range(k)]
            if values[0] < self.floor:
                return []
            values = [v for v in values if v >= self.floor]
        elif high is None:  # everything so far valid: go up
            values = [low * 2.0 ** (i + 1) for i in range(k)]
        elif (high - low) / low > self.tolerance:  # k-section of (low, high)
            width = (high - low) / (k + 1)
            values = [low + width * (i + 1) for i in range(k)]
        else:
            return []
        self.rounds += 1
        return values

    def absorb(self, probes: Sequence[Probe]) -> None:
        """Take a round's results into the bracket."""
        self.probes.extend(probes)
        log.info("peak round %d: %s", self.rounds,
                 ", ".join(f"{p.qps:g}={'VALID' if p.valid else 'INVALID'}" for p in probes))
        for p in probes:
            if p.valid and (self.low is None or p.qps > self.low):
                self.low = p.qps
        for p in probes:
            if (not p.valid and (self.low is None or p.qps > self.low)
                    and (self.high is None or p.qps < self.high)):
                self.high = p.qps
        if self.high is not None and self.low is not None and self.high <= self.low:
            self.high = None  # noisy: an invalid below a valid one; search above the valid one

    def rounds_left(self) -> Optional[int]:
        """Rounds still needed once the peak is bracketed (None while bracketing)."""
        if self.low is None or self.high is None:
            return None
        ratio = (self.high - self.low) / self.low / self.tolerance
        need = 0 if ratio <= 1 else math.ceil(math.log(ratio) / math.log(self.parallel + 1))
        return min(need, self.max_rounds - self.rounds)

    def result(self) -> PeakResult:
        """The search so far as a :class:`PeakResult`."""
        return PeakResult(self.low, self.high, list(self.probes), rounds=self.rounds)


TrialFn = Callable[[Sequence[float]], Sequence[Probe]]


def search_peak(trial: TrialFn, start: float, tolerance: float = 0.05, max_rounds: int = 12,
                parallel: int = 1, floor: float = 1.0) -> PeakResult:
    """Run a :class:`PeakSearch` with a trial function (tests; no Ray).

    Args:
        trial: Runs the given target QPS values and returns one :class:`Probe` per value.
        start, tolerance, max_rounds, parallel, floor: See :class:`PeakSearch`.

    Raises:
        ConfigError: A non-positive start, tolerance or parallel.
        RunError: The trial function returned a wrong number of probes.
    """
    search = PeakSearch(start, tolerance, max_rounds, parallel, floor)
    while values := search.next_round():
        probes = list(trial(values))
        if len(probes) != len(values):
            raise RunError(f"trial function returned {len(probes)} results for "
                           f"{len(values)} QPS values")
        search.absorb(probes)
    return search.result()


class Confirmation:
    """Confirming runs: one at ``peak``; while INVALID, the next ``tolerance`` lower.

    Args:
        peak: The search's peak QPS.
        tolerance: Relative step down after an INVALID confirming run.
        attempts: Most confirming runs.
    """

    def __init__(self, peak: float, tolerance: float = 0.05, attempts: int = 3):
        self.qps, self.tolerance, self.attempts = peak, tolerance, attempts
        self.probes: list[Probe] = []

    def next(self) -> Optional[float]:
        """The next confirming run's target QPS, or None when done."""
        if len(self.probes) >= self.attempts or (self.probes and self.probes[-1].valid):
            return None
        return self.qps * (1.0 - self.tolerance) ** len(self.probes)

    def absorb(self, probe: Probe) -> None:
        """Take a confirming run's result."""
        self.probes.append(probe)

    @property
    def result(self) -> Optional[Probe]:
        """The first VALID confirming run, or the last INVALID one (None before any)."""
        return self.probes[-1] if self.probes else None


def confirm_peak(trial: Callable[[float], Probe], peak: float, tolerance: float = 0.05,
                 attempts: int = 3) -> Optional[Probe]:
    """Run a :class:`Confirmation` with a trial function (tests; no Ray)."""
    confirmation = Confirmation(peak, tolerance, attempts)
    while (qps := confirmation.next()) is not None:
        confirmation.absorb(trial(qps))
    return confirmation.result


def probe_of(kind: str, qps: float, row: dict[str, Any]) -> Probe:
    """A probe from a trial's result row (a run that failed counts as INVALID)."""
    ok = row.get("status") == STATUS_OK
    return Probe(qps=qps, valid=ok and bool(row.get("valid")), metric=row.get("metric"),
                 p99_ms=row.get("p99_ms"), error=None if ok else row.get("error") or "failed",
                 kind=kind, row=row)


class PeakSearcher(Searcher):
    """A Ray Tune searcher for the peak: each round of a :class:`PeakSearch` as trials
    at once, then the :class:`Confirmation` runs one by one.

    Every suggested config is the whole run's parameters plus ``probe`` (its kind).

    Args:
        search: The search (its ``parallel`` is the probes per round).
        params: Run parameters of the search's short runs (``target_qps`` is set per probe).
        confirm_params: Run parameters of the confirming runs.
        attempts: Most confirming runs.
    """

    def __init__(self, search: PeakSearch, params: dict[str, Any],
                 confirm_params: dict[str, Any], attempts: int = 3):
        super().__init__()
        self.search, self.params, self.confirm_params = search, params, confirm_params
        self.attempts = attempts
        self.confirmation: Optional[Confirmation] = None
        self.queue: list[tuple[str, float]] = []
        self.running: dict[str, tuple[str, float]] = {}
        self.round: list[Probe] = []
        self.done = False
        self.round_started = time.monotonic()
        self.round_walls: list[float] = []

    def suggest(self, trial_id: str):
        """The next probe's config, None to wait for a round, or FINISHED."""
        if not self.queue and not self.running and not self.done:
            self._plan()
        if self.queue:
            kind, qps = self.queue.pop(0)
            self.running[trial_id] = (kind, qps)
            params = self.params if kind == SEARCH else self.confirm_params
            return {**params, "target_qps": qps, "probe": kind}
        return Searcher.FINISHED if self.done and not self.running else None

    def _plan(self) -> None:
        if self.round:
            self.round_walls.append(time.monotonic() - self.round_started)
        self.round_started = time.monotonic()
        if self.confirmation is None:
            if self.round:
                self.search.absorb(self.round)
                self.round = []
            values = self.search.next_round()
            if values:
                self.queue = [(SEARCH, v) for v in values]
                return
            if self.search.low is None:
                self.done = True
                return
            self.confirmation = Confirmation(self.search.low, self.search.tolerance,
                                             self.attempts)
        elif self.round:
            self.confirmation.absorb(self.round[-1])
            self.round = []
        qps = self.confirmation.next()
        if qps is None:
            self.done = True
        else:
            self.queue = [(CONFIRM, qps)]

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None,
                          error: bool = False) -> None:
        """Take a probe's result; the round is planned once all its probes are in."""
        kind, qps = self.running.pop(trial_id, (SEARCH, 0.0))
        row = dict(result or {})
        if error:
            row.update(status="failed", error=row.get("error") or "trial failed")
        self.round.append(probe_of(kind, qps, row))

    def eta_s(self) -> Optional[float]:
        """Seconds the search's rounds may still take, from the rounds so far (None while
        bracketing, and once the confirming runs, of another length, have begun)."""
        left = self.search.rounds_left()
        if left is None or not self.round_walls or self.confirmation is not None:
            return None
        return sum(self.round_walls) / len(self.round_walls) * left


def default_parallel(params: dict[str, Any]) -> int:
    """Probes per round: as many systems as the cluster holds at once, at most
    :data:`MAX_AUTO_PARALLEL` (at least 1)."""
    fits = systems_fit(trial_bundles(params), alive_nodes())
    return max(1, min(MAX_AUTO_PARALLEL, fits))


def _probes(grid) -> list[Probe]:
    """Every trial of the experiment as a probe, in the order they started."""
    probes = []
    for result in grid:
        metrics = result.metrics or {}
        error = None if result.error is None else error_line(result.error)[:300]
        row = {"trial": metrics.get("trial_id") or Path(result.path).name,
               "probe": result.config.get("probe", MEASURE),
               **result_row(result.config, metrics, result.path, error)}
        probes.append(probe_of(row["probe"], float(result.config.get("target_qps") or 0.0),
                               row))
    return probes


def find_peak(params: dict[str, Any], output: Path, start: float, tolerance: float = 0.05,
              max_rounds: int = 12, parallel: Optional[int] = None,
              confirm_duration: Optional[float] = None,
              on_probe: Optional[Callable[[Probe, Optional[float]], None]] = None,
              verbose: bool = False) -> PeakResult:
    """Search the Server peak with short runs, then confirm it, as one Tune experiment.

    Args:
        params: Run settings (argument-table names); ``duration`` is the length of the
            search's short runs.
        output: Where the experiment directory ``peak-<time>`` goes.
        start: First target QPS.
        tolerance: Relative precision of the search.
        max_rounds: Most search rounds.
        parallel: Probes per round (None: :func:`default_parallel`).
        confirm_duration: Seconds of the confirming runs (None: the rules').
        on_probe: Called with every finished probe and the search's ETA in seconds
            (None while bracketing).
        verbose: Let Tune print its own progress table.
    """
    params = normalize({k: v for k, v in params.items() if k in PARAMS})
    parallel = parallel or default_parallel(params)
    long_params = {k: v for k, v in params.items() if k not in ("duration", "queries")}
    if confirm_duration is not None:
        long_params["duration"] = confirm_duration
    else:
        long_params["official"] = True
    searcher = PeakSearcher(PeakSearch(start, tolerance, max_rounds, parallel), params,
                            long_params)
    experiment = _experiment_dir(output)

    def listener(event: str, trial) -> None:
        if event not in ("complete", "error"):
            return
        error = trial_error(trial) if event == "error" else None
        row = {"trial": trial.trial_id, "probe": trial.config.get("probe", SEARCH),
               **result_row(trial.config, trial.last_result or {}, trial.path, error)}
        if on_probe is not None:
            on_probe(probe_of(row["probe"], float(trial.config["target_qps"]), row),
                     searcher.eta_s())

    start_time = time.perf_counter()
    grid = run_trials(experiment, listener, searcher=searcher, parallel=parallel,
                      retries=1, verbose=verbose)
    result = searcher.search.result()
    result.probes = _probes(grid)
    result.confirmed = searcher.confirmation.result if searcher.confirmation else None
    result.directory, result.wall_s = experiment, time.perf_counter() - start_time
    write_probes(experiment / CSV_NAME, result.probes)
    return result


def measure(params: dict[str, Any], output: Path,
            on_probe: Optional[Callable[[Probe, Optional[float]], None]] = None,
            verbose: bool = False) -> PeakResult:
    """Offline (or any scenario without a target to search): one run, its measured rate."""
    params = normalize({k: v for k, v in params.items() if k in PARAMS})
    experiment = _experiment_dir(output)
    start_time = time.perf_counter()
    grid = run_trials(experiment, None, param_space={**params, "probe": MEASURE},
                      retries=1, verbose=verbose)
    probes = _probes(grid)
    for p in probes:
        p.kind = MEASURE
        if on_probe is not None:
            on_probe(p, None)
    write_probes(experiment / CSV_NAME, probes)
    return PeakResult(None, None, probes, directory=experiment,
                      wall_s=time.perf_counter() - start_time)


def _experiment_dir(output: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = Path(output).resolve() / f"peak-{stamp}", 1
    while path.exists():
        n += 1
        path = Path(output).resolve() / f"peak-{stamp}-{n}"
    return path


def write_probes(path: Path, probes: list[Probe]) -> None:
    """``peak.csv``: one row per probe and confirming run, in the order they started."""
    write_rows(path, [p.row for p in probes], COLUMNS)
