"""Peak search: the highest Server target QPS that LoadGen still calls VALID.

The search is pure logic over a *trial function* that runs a batch of target QPS values
(possibly in parallel) and says for each whether the run was VALID; :func:`search_peak`
first brackets the peak (doubling up from a valid start or halving down from an invalid
one), then narrows the bracket by k-section (``parallel`` points per round, plain
bisection when ``parallel`` is 1) until it is within ``tolerance``. :func:`find_peak`
wires it to real short runs on Ray and finishes with one confirming run of full length.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from raybench.errors import ConfigError, RunError, error_line

log = logging.getLogger(__name__)


@dataclass
class Probe:
    """One trial of the search."""

    qps: float
    valid: bool
    metric: Optional[float] = None
    p99_ms: Optional[float] = None
    error: Optional[str] = None


@dataclass
class PeakResult:
    """The outcome of a search: the highest VALID target QPS and every probe made."""

    peak_qps: Optional[float]
    lowest_invalid_qps: Optional[float]
    probes: list[Probe] = field(default_factory=list)
    confirmed: Optional[Probe] = None
    rounds: int = 0


TrialFn = Callable[[Sequence[float]], Sequence[Probe]]


def search_peak(trial: TrialFn, start: float, tolerance: float = 0.05, max_rounds: int = 12,
                parallel: int = 1, floor: float = 1.0) -> PeakResult:
    """Bracket and narrow the highest VALID target QPS.

    Args:
        trial: Runs the given target QPS values (it may run them at once) and returns one
            :class:`Probe` per value, in order.
        start: The first target QPS to try (e.g. the system's own Server target).
        tolerance: Stop when ``(high - low) / low`` is at most this.
        max_rounds: Most calls of ``trial``.
        parallel: Target QPS values per call of ``trial``.
        floor: Give up halving below this QPS (then no peak is found).

    Returns:
        The highest VALID QPS seen (None if none was) and the lowest INVALID one above it.

    Raises:
        ConfigError: A non-positive start, tolerance or parallel.
    """
    if start <= 0 or tolerance <= 0 or parallel < 1:
        raise ConfigError("peak search needs start > 0, tolerance > 0 and parallel >= 1")
    result = PeakResult(None, None)
    low: Optional[float] = None  # highest valid
    high: Optional[float] = None  # lowest invalid above low

    def probe(values: list[float]) -> list[Probe]:
        result.rounds += 1
        probes = list(trial(values))
        if len(probes) != len(values):
            raise RunError(f"trial function returned {len(probes)} results for {len(values)} QPS values")
        result.probes.extend(probes)
        log.info("peak round %d: %s", result.rounds,
                 ", ".join(f"{p.qps:g}={'VALID' if p.valid else 'INVALID'}" for p in probes))
        return probes

    def absorb(probes: list[Probe]) -> None:
        nonlocal low, high
        for p in probes:
            if p.valid and (low is None or p.qps > low):
                low = p.qps
        for p in probes:
            if not p.valid and (low is None or p.qps > low) and (high is None or p.qps < high):
                high = p.qps
        if high is not None and low is not None and high <= low:
            high = None  # noisy: an invalid below a valid one; search above the valid one

    # Bracketing: geometric steps from start, `parallel` at a time.
    while result.rounds < max_rounds and (low is None or high is None):
        if low is None and high is None:
            values = [start * 2.0 ** i for i in range(parallel)]
        elif low is None:  # everything so far invalid: go down
            values = [high / 2.0 ** (i + 1) for i in range(parallel)]
            if values[0] < floor:
                break
            values = [v for v in values if v >= floor] or [floor]
        else:  # everything so far valid: go up
            values = [low * 2.0 ** (i + 1) for i in range(parallel)]
        absorb(probe(values))
    # Narrowing: k-section of (low, high).
    while (result.rounds < max_rounds and low is not None and high is not None
           and (high - low) / low > tolerance):
        width = (high - low) / (parallel + 1)
        absorb(probe([low + width * (i + 1) for i in range(parallel)]))
    result.peak_qps, result.lowest_invalid_qps = low, high
    return result


def confirm_peak(trial: Callable[[float], Probe], peak: float, tolerance: float = 0.05,
                 attempts: int = 3) -> Optional[Probe]:
    """One full-length run at ``peak``; if INVALID, step down by ``tolerance`` and retry.

    Returns:
        The first VALID confirming probe, or the last INVALID one.
    """
    qps, last = peak, None
    for _ in range(attempts):
        last = trial(qps)
        if last.valid:
            return last
        qps *= 1.0 - tolerance
    return last


# -- Ray wiring -----------------------------------------------------------------------

def _probe_from_row(qps: float, row: dict[str, Any]) -> Probe:
    return Probe(qps=qps, valid=bool(row.get("valid")), metric=row.get("metric"),
                 p99_ms=row.get("p99_ms"))


def ray_trials(params: dict[str, Any], output: Path, parallel: int = 1) -> TrialFn:
    """A trial function that runs short runs as Ray tasks (at most ``parallel`` at once).

    A run that fails (RunError, dead node) counts as INVALID, with its error kept.
    """
    import ray

    from raybench.experiments.sweep import run_trial, trial_id

    remote = ray.remote(num_cpus=0, max_retries=0)(run_trial)

    def trial(values: Sequence[float]) -> list[Probe]:
        refs = []
        for qps in values:
            p = {**params, "target_qps": float(qps)}
            refs.append(remote.remote(p, str(Path(output) / "probes" / trial_id(p))))
        probes = []
        for qps, ref in zip(values, refs):
            try:
                probes.append(_probe_from_row(qps, ray.get(ref)))
            except Exception as exc:  # a failed run is not a valid one
                probes.append(Probe(qps=qps, valid=False, error=error_line(exc)[:300]))
        return probes

    return trial


def find_peak(params: dict[str, Any], output: Path, start: float, tolerance: float = 0.05,
              max_rounds: int = 12, parallel: int = 1,
              confirm_duration: Optional[float] = None) -> PeakResult:
    """Search the Server peak with short runs, then confirm it with one long run.

    Args:
        params: Run settings (argument-table names, see :class:`raybench.run.RunRequest`);
            ``duration`` is the length of the search's short runs.
        output: Results directory.
        start: First target QPS.
        tolerance: Relative precision of the search.
        max_rounds: Most search rounds.
        parallel: Runs at once per round.
        confirm_duration: Length of the confirming run in seconds (None: the rules').
    """
    start_time = time.perf_counter()
    short = ray_trials(params, output, parallel)
    result = search_peak(short, start, tolerance, max_rounds, parallel)
    if result.peak_qps is not None:
        long_params = {k: v for k, v in params.items() if k not in ("duration", "queries")}
        if confirm_duration is not None:
            long_params["duration"] = confirm_duration
        else:
            long_params["official"] = True
        long = ray_trials(long_params, Path(output) / "confirm", 1)
        result.confirmed = confirm_peak(lambda q: long([q])[0], result.peak_qps, tolerance)
    log.info("peak search done in %.1f s", time.perf_counter() - start_time)
    return result


def measure_offline(params: dict[str, Any], output: Path) -> Probe:
    """Offline has no peak to search: one run, its measured samples per second."""
    import ray

    from raybench.experiments.sweep import run_trial

    row = ray.get(ray.remote(num_cpus=0, max_retries=0)(run_trial).remote(params, str(output)))
    return _probe_from_row(params.get("target_qps") or 0.0, row)
