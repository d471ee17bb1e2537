"""Simulated twins of the seed systems: the sim engine calibrated against published results.

Each seed system's file gives, per benchmark and scenario, a ``sim`` latency model (time
per batch ``fixed_us + per_sample_us * n``, one batch at a time per GPU) fitted to the
system's published MLPerf Inference v1.0 Offline result, and for SingleStream the latency of a
lone sample (``batch1_us``) fitted to the published p90 latency. :func:`run_twins` runs every
seed system through the real path (:func:`raybench.run.run` with ``sim`` engines,
the system's batch sizes and timeouts, short durations) on one Ray instance and compares
the simulated results with the published ones. Optional ``null``-engine runs measure what
this machine's harness itself can carry, so a simulated shortfall that is the machine's
limit, not the model's, shows as such.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Optional

from raybench.config.models import HarnessSettings, System
from raybench.config.systems import load_system, system_ids, systems_dir
from raybench.errors import ConfigError, RaybenchError
from raybench.results.verdict import headline

log = logging.getLogger(__name__)

TWIN_SCENARIOS = ("Offline", "Server", "SingleStream")
TWIN_BENCHMARKS = ("resnet50", "bert-99", "ssd-resnet34")
PUBLISHED_CSV = "published-v1.0.csv"  # in systems/: every published result of the seed systems


class Published(NamedTuple):
    """One published result: the metric's value and the run's target (qps)."""

    value: float
    target_qps: float


@lru_cache(maxsize=None)
def published_results() -> dict[tuple[str, str, str, str], Published]:
    """The published MLPerf Inference v1.0 results shipped in ``systems/``, keyed
    (submitter, submission system id, benchmark, scenario); the value is samples/s
    (Offline), scheduled samples/s (Server) or p90 latency in ns (SingleStream).

    Raises:
        ConfigError: The file is missing or malformed.
    """
    path = systems_dir() / PUBLISHED_CSV
    try:
        with path.open(newline="") as f:
            return {(r["submitter"], r["system"], r["benchmark"], r["scenario"]):
                    Published(float(r["value"]), float(r["target_qps"]))
                    for r in csv.DictReader(f)}
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the published results ({exc})") from None


def seed_systems() -> list[str]:
    """The systems with published results: the seven Supermicro v1.0 systems and NVIDIA's
    DGX-A100 reference, smallest first."""
    keys = {(submitter, system) for submitter, system, _, _ in published_results()}
    found = []
    for system_id in system_ids():
        system = load_system(system_id)
        if (str(system.description.get("submitter", "")), system.submission_id) in keys:
            found.append(system)
    return [s.id for s in sorted(found, key=lambda s: (s.accelerator_count, s.id))]


def published(system: System, benchmark: str, scenario: str) -> Optional[Published]:
    """The published v1.0 result of ``system`` for one benchmark and scenario, if any."""
    submitter = str(system.description.get("submitter", ""))
    return published_results().get((submitter, system.submission_id or "", benchmark, scenario))


def batch_us(harness: HarnessSettings, count: int) -> float:
    """Modelled time of one batch of ``count`` samples on one simulated GPU, in us.

    Raises:
        ConfigError: The settings have no ``sim`` latency model.
    """
    if harness.sim is None:
        raise ConfigError("no sim latency model in these harness settings")
    return harness.sim.batch_us(count)


def modelled_offline_rate(system: System, benchmark: str) -> float:
    """Samples/s the latency model gives the whole system in Offline (full batches, all GPUs busy).

    Raises:
        ConfigError: No Offline settings or no sim model for ``benchmark``.
    """
    harness = system.harness(benchmark, "Offline")
    gpus = system.engines(os.cpu_count() or 1)
    return gpus * harness.batch_size / (batch_us(harness, harness.batch_size) * 1e-6)


@dataclass
class TwinRow:
    """One simulated (or null-engine) run and how it compares with the published result."""

    system: str
    benchmark: str
    scenario: str
    engine: str
    target_qps: Optional[float]
    published: Optional[float]
    simulated: Optional[float] = None
    valid: Optional[bool] = None
    p99_ms: Optional[float] = None
    wall_s: float = 0.0
    error: Optional[str] = None

    @property
    def ratio(self) -> Optional[float]:
        """Simulated over published, where both exist."""
        if self.simulated is None or not self.published:
            return None
        return self.simulated / self.published


@dataclass
class TwinCase:
    """One run to do: a system, benchmark, scenario and engine."""

    system: str
    benchmark: str
    scenario: str
    engine: str = "sim"


def plan_cases(systems: Iterable[str], benchmarks: Iterable[str], scenarios: Iterable[str],
               ceiling: bool) -> list[TwinCase]:
    """The runs of one ``raybench twins``: every system x benchmark x scenario it has settings for.

    With ``ceiling``, each benchmark and scenario is also run with ``null`` engines on the
    system with the most GPUs (the first such in ``systems``): that is the most this machine's
    harness carries, whatever the model.

    Raises:
        ConfigError: An unknown system id.
    """
    systems = list(systems)
    loaded = {sid: load_system(sid) for sid in systems}
    cases = []
    for bench in benchmarks:
        for scen in scenarios:
            for sid in systems:
                if scen in loaded[sid].settings.get(bench, {}):
                    cases.append(TwinCase(sid, bench, scen))
            if ceiling and systems:
                biggest = max(systems, key=lambda s: loaded[s].accelerator_count)
                if scen in loaded[biggest].settings.get(bench, {}):
                    cases.append(TwinCase(biggest, bench, scen, "null"))
    return cases


def run_case(case: TwinCase, duration: float, output: Path,
             transport: Optional[str] = None) -> TwinRow:
    """Run one case through :func:`raybench.run.run`; errors become the row's note.

    Args:
        case: What to run.
        duration: LoadGen minimum duration in seconds.
        output: Results root.
        transport: The run's transport (default: the argument table's).
    """
    import time

    from raybench.run import RunRequest, run

    system = load_system(case.system)
    harness = system.harness(case.benchmark, case.scenario)
    pub = published(system, case.benchmark, case.scenario)
    target = asked = None
    if case.scenario == "Server":
        target = asked = pub.target_qps if pub else harness.server_target_qps
    elif case.scenario == "Offline":
        target = harness.offline_expected_qps
    elif case.scenario == "SingleStream" and pub:
        # LoadGen issues duration / expected latency queries and a test that ends sooner is
        # INVALID: expect the published p90, which the modelled GPU alone already takes
        asked = 1e9 / pub.value
    row = TwinRow(case.system, case.benchmark, case.scenario, case.engine, target,
                  pub.value if pub else None)
    request = RunRequest(benchmark=case.benchmark, scenario=case.scenario, engine=case.engine,
                         system=case.system, output=output / case.engine, duration=duration,
                         queries=1, target_qps=asked,
                         **({"transport": transport} if transport else {}))
    start = time.perf_counter()
    try:
        report = run(request)
    except RaybenchError as exc:
        row.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("twin %s %s %s (%s) failed: %s", case.system, case.benchmark, case.scenario,
                    case.engine, row.error)
        return row
    finally:
        row.wall_s = time.perf_counter() - start
    summary = report.tests[-1].summary
    scheduled = headline(summary) if case.scenario == "Server" else None
    row.simulated = scheduled.value if scheduled else summary.metric  # as published
    row.valid = summary.valid
    p99 = summary.percentiles.get("99.00")
    if p99 is not None and case.scenario != "Offline":  # Offline: one query, p99 says nothing
        row.p99_ms = p99 / 1e6
    return row


def run_twins(cases: list[TwinCase], duration: float, output: Path,
              on_row: Optional[Callable[[TwinRow], None]] = None,
              transport: Optional[str] = None, verbose: bool = False) -> list[TwinRow]:
    """Run every case on one Ray: the one this process is connected to, else
    ``$RAY_ADDRESS``'s, else a local Ray that declares the largest system's GPUs (Ray's
    own records go to ``output/raybench.log``).

    Args:
        cases: From :func:`plan_cases`.
        duration: LoadGen minimum duration of each run in seconds (overrides the rules' 600 s).
        output: Results root; runs go under ``output/<engine>/<system>/...``.
        on_row: Called with each row as soon as its run ends (progress).
        transport: The runs' transport (default: the argument table's).
        verbose: Ray's records on the terminal too.

    Returns:
        One row per case, in order.
    """
    from raybench.run.outputs import check_output_dir
    from raybench.run.session import ray_session

    gpus = max((load_system(c.system).accelerator_count for c in cases), default=0)
    rows = []
    with ray_session(None, gpus, gpus + 1,  # a floor: a local Ray declares every core
                     ray_log=check_output_dir(output) / "raybench.log", verbose=verbose):
        for case in cases:
            log.info("twin %s %s %s (%s)", case.system, case.benchmark, case.scenario, case.engine)
            row = run_case(case, duration, output, transport)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows
