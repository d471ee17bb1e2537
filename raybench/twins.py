"""Simulated twins of the seed systems: the sim engine calibrated against published results.

Each seed system's file gives, per benchmark and scenario, a ``sim`` latency model (time
per batch ``fixed_us + per_sample_us * n``, one batch at a time per GPU) fitted to the
system's published MLPerf Inference v1.0 Offline result. :func:`run_twins` runs every
seed system through the real path (:func:`raybench.cluster.run.run` with ``sim`` engines,
the system's batch sizes and timeouts, short durations) on one Ray instance and compares
the simulated results with the published ones. Optional ``null``-engine runs measure what
this machine's harness itself can carry, so a simulated shortfall that is the machine's
limit, not the model's, shows as such.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Optional

from raybench.config.models import HarnessSettings, System
from raybench.config.systems import load_system
from raybench.errors import ConfigError, RaybenchError

log = logging.getLogger(__name__)

# The seven Supermicro MLPerf Inference v1.0 systems and NVIDIA's DGX-A100 reference.
SEED_SYSTEMS = (
    "SBA-4119SG-X_A100-PCIex1",
    "AS-2124GQ-NART_A100-SXM4-40GBx4",
    "AS-2124GQ-NART_A100-SXM-80GBx4",
    "AS-4124GS-TNR_A100-PCIex8",
    "AS-4124GO-NART_A100-SXM4-40GBx8",
    "AS-4124GO-NART_A100-SXM-80GBx8",
    "SYS-420GP-TNAR_A100-SXM-80GBx8",
    "DGX-A100_A100-SXM-80GBx8",
)
TWIN_SCENARIOS = ("Offline", "Server")
TWIN_BENCHMARKS = ("resnet50", "bert-99", "ssd-resnet34")


class Published(NamedTuple):
    """One published result: the metric's value and the run's target (qps)."""

    value: float
    target_qps: float


# Rows of /work/shared/reference/mlperf-v1.0/published-results.csv (the public v1.0
# results), keyed (submitter, submission system id, benchmark, scenario); value is samples/s
# (Offline), scheduled samples/s (Server) or p90 latency in ns (SingleStream).
PUBLISHED: dict[tuple[str, str, str, str], Published] = {
    ("NVIDIA", "DGX-A100_A100-SXM-80GBx8_TRT", "bert-99", "Offline"): Published(28347.4, 30000),
    ("NVIDIA", "DGX-A100_A100-SXM-80GBx8_TRT", "bert-99", "Server"): Published(25791.81, 25800),
    ("NVIDIA", "DGX-A100_A100-SXM-80GBx8_TRT", "resnet50", "Offline"): Published(304876, 294400),
    ("NVIDIA", "DGX-A100_A100-SXM-80GBx8_TRT", "resnet50", "Server"): Published(259993.64, 260000),
    ("NVIDIA", "DGX-A100_A100-SXM-80GBx8_TRT", "ssd-resnet34", "Offline"): Published(7879.48, 7800),
    ("NVIDIA", "DGX-A100_A100-SXM-80GBx8_TRT", "ssd-resnet34", "Server"): Published(7654.41, 7650),
    ("Supermicro", "A100-PCIex1_TRT", "bert-99", "Offline"): Published(2834.1, 3400),
    ("Supermicro", "A100-PCIex1_TRT", "bert-99", "SingleStream"): Published(2206063, 588.235),
    ("Supermicro", "A100-PCIex1_TRT", "resnet50", "Offline"): Published(30265.4, 36800),
    ("Supermicro", "A100-PCIex1_TRT", "resnet50", "SingleStream"): Published(484551, 1515.15),
    ("Supermicro", "A100-PCIex1_TRT", "ssd-resnet34", "Offline"): Published(825.662, 960),
    ("Supermicro", "A100-PCIex1_TRT", "ssd-resnet34", "SingleStream"): Published(1972858, 526.316),
    ("Supermicro", "A100-PCIex8_TRT", "bert-99", "Offline"): Published(22813.1, 27200),
    ("Supermicro", "A100-PCIex8_TRT", "bert-99", "Server"): Published(20792.35, 20800),
    ("Supermicro", "A100-PCIex8_TRT", "resnet50", "Offline"): Published(248411, 294400),
    ("Supermicro", "A100-PCIex8_TRT", "resnet50", "Server"): Published(207975.79, 208000),
    ("Supermicro", "A100-PCIex8_TRT", "ssd-resnet34", "Offline"): Published(6506.4, 7680),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM-80GBx4_TRT", "bert-99", "Offline"): Published(14760.4, 13600),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM-80GBx4_TRT", "bert-99", "Server"): Published(12401.65, 12400),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM-80GBx4_TRT", "resnet50", "Offline"): Published(156239, 147200),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM-80GBx4_TRT", "resnet50", "Server"): Published(126981.75, 127000),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM-80GBx4_TRT", "ssd-resnet34", "Offline"): Published(4029.74, 3840),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM-80GBx4_TRT", "ssd-resnet34", "Server"): Published(3801.73, 3800),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM4-40GBx4_TRT", "bert-99", "Offline"): Published(14139.4, 15000),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM4-40GBx4_TRT", "bert-99", "Server"): Published(12361.41, 12360),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM4-40GBx4_TRT", "resnet50", "Offline"): Published(150493, 147200),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM4-40GBx4_TRT", "resnet50", "Server"): Published(126981.75, 127000),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM4-40GBx4_TRT", "ssd-resnet34", "Offline"): Published(3940.72, 3700),
    ("Supermicro", "AS-2124GQ-NART_A100-SXM4-40GBx4_TRT", "ssd-resnet34", "Server"): Published(3801.73, 3800),
    ("Supermicro", "AS-4124GO-NART_A100-SXM4-40GBx8_TRT", "bert-99", "Offline"): Published(28221.7, 30000),
    ("Supermicro", "AS-4124GO-NART_A100-SXM4-40GBx8_TRT", "bert-99", "Server"): Published(24739.56, 24750),
    ("Supermicro", "AS-4124GO-NART_A100-SXM4-40GBx8_TRT", "resnet50", "Offline"): Published(300259, 294400),
    ("Supermicro", "AS-4124GO-NART_A100-SXM4-40GBx8_TRT", "resnet50", "Server"): Published(254991.73, 255000),
    ("Supermicro", "AS-4124GO-NART_A100-SXM4-40GBx8_TRT", "ssd-resnet34", "Offline"): Published(7842.9, 7500),
    ("Supermicro", "AS-4124GO-NART_A100-SXM4-40GBx8_TRT", "ssd-resnet34", "Server"): Published(7553.89, 7550),
    ("Supermicro", "AS-4214GO-NART_A100-SXM-80GBx8_TRT", "bert-99", "Offline"): Published(28204.8, 30000),
    ("Supermicro", "AS-4214GO-NART_A100-SXM-80GBx8_TRT", "bert-99", "Server"): Published(25191.43, 25200),
    ("Supermicro", "AS-4214GO-NART_A100-SXM-80GBx8_TRT", "resnet50", "Offline"): Published(304439, 294400),
    ("Supermicro", "AS-4214GO-NART_A100-SXM-80GBx8_TRT", "resnet50", "Server"): Published(259993.64, 260000),
    ("Supermicro", "AS-4214GO-NART_A100-SXM-80GBx8_TRT", "ssd-resnet34", "Offline"): Published(7816.58, 7800),
    ("Supermicro", "AS-4214GO-NART_A100-SXM-80GBx8_TRT", "ssd-resnet34", "Server"): Published(7553.89, 7550),
    ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "bert-99", "Offline"): Published(28191, 30000),
    ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "bert-99", "Server"): Published(24990.89, 25000),
    ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "resnet50", "Offline"): Published(302664, 294400),
    ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "resnet50", "Server"): Published(259993.64, 260000),
    ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "ssd-resnet34", "Offline"): Published(7832.72, 7800),
    ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "ssd-resnet34", "Server"): Published(7553.89, 7550),
}


def published(system: System, benchmark: str, scenario: str) -> Optional[Published]:
    """The published v1.0 result of ``system`` for one benchmark and scenario, if any."""
    submitter = str(system.description.get("submitter", ""))
    return PUBLISHED.get((submitter, system.submission_id or "", benchmark, scenario))


def batch_us(harness: HarnessSettings, count: int) -> float:
    """Modelled time of one batch of ``count`` samples on one simulated GPU, in us.

    Raises:
        ConfigError: The settings have no ``sim`` latency model.
    """
    if harness.sim is None:
        raise ConfigError("no sim latency model in these harness settings")
    return harness.sim.fixed_us + harness.sim.per_sample_us * count


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


def run_case(case: TwinCase, duration_s: float, output: Path) -> TwinRow:
    """Run one case through :func:`raybench.cluster.run.run`; errors become the row's note."""
    import time

    from raybench.cluster.run import RunRequest, run
    from raybench.rules.settings import Overrides

    system = load_system(case.system)
    harness = system.harness(case.benchmark, case.scenario)
    pub = published(system, case.benchmark, case.scenario)
    target = None
    if case.scenario == "Server":
        target = pub.target_qps if pub else harness.server_target_qps
    elif case.scenario == "Offline":
        target = harness.offline_expected_qps
    row = TwinRow(case.system, case.benchmark, case.scenario, case.engine, target,
                  pub.value if pub else None)
    overrides = Overrides(duration_s=duration_s, min_query_count=1,
                          target_qps=target if case.scenario == "Server" else None)
    request = RunRequest(benchmark=case.benchmark, scenario=case.scenario, engine=case.engine,
                         system=case.system, output=output / case.engine, overrides=overrides)
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
    row.simulated = summary.metric
    row.valid = summary.valid
    p99 = summary.percentiles.get("99.00")
    if p99 is not None and case.scenario != "Offline":  # Offline: one query, p99 says nothing
        row.p99_ms = p99 / 1e6
    return row


def start_ray(systems: Iterable[str]) -> bool:
    """Start one local Ray for every twin run (declaring the largest system's GPUs).

    Returns:
        True when this call started Ray (the caller shuts it down), False when one was running.
    """
    import ray

    if ray.is_initialized():
        return False
    gpus = max((load_system(s).accelerator_count for s in systems), default=0)
    ray.init(num_cpus=max(os.cpu_count() or 1, gpus + 1), num_gpus=gpus,
             include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    return True


def run_twins(cases: list[TwinCase], duration_s: float, output: Path,
              on_row: Optional[Callable[[TwinRow], None]] = None) -> list[TwinRow]:
    """Run every case on one Ray instance (started here unless one is running).

    Args:
        cases: From :func:`plan_cases`.
        duration_s: LoadGen minimum duration of each run (overrides the rules' 600 s).
        output: Results root; runs go under ``output/<engine>/<system>/...``.
        on_row: Called with each row as soon as its run ends (progress).

    Returns:
        One row per case, in order.
    """
    import ray

    started = start_ray({c.system for c in cases})
    rows = []
    try:
        for case in cases:
            log.info("twin %s %s %s (%s)", case.system, case.benchmark, case.scenario, case.engine)
            row = run_case(case, duration_s, output)
            rows.append(row)
            if on_row:
                on_row(row)
    finally:
        if started:
            ray.shutdown()
    return rows
