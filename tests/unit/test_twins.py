"""The seed systems' sim latency models reproduce their published results (no Ray)."""

from __future__ import annotations

import heapq
import math

import pytest

from raybench.config.systems import load_system
from raybench.experiments.twins import (TWIN_BENCHMARKS, batch_us, modelled_offline_rate,
                                        plan_cases, published, published_results, seed_systems)
from raybench.scheduling.batcher import Batcher
from raybench.scheduling.dispatcher import Dispatcher
from raybench.scheduling.router import Router

SEED_SYSTEMS = seed_systems()
PAIRS = [(s, b) for s in SEED_SYSTEMS for b in TWIN_BENCHMARKS]


@pytest.mark.parametrize("system_id,benchmark", PAIRS)
def test_model_reproduces_published_offline_rate(system_id, benchmark):
    system = load_system(system_id)
    pub = published(system, benchmark, "Offline")
    assert pub is not None, "every seed system published these Offline results"
    assert modelled_offline_rate(system, benchmark) == pytest.approx(pub.value, rel=0.005)


@pytest.mark.parametrize("system_id,benchmark", PAIRS)
def test_per_gpu_rate_at_configured_batch(system_id, benchmark):
    system = load_system(system_id)
    harness = system.harness(benchmark, "Offline")
    per_gpu = published(system, benchmark, "Offline").value / system.accelerator_count
    b = harness.batch_size
    assert b / (batch_us(harness, b) * 1e-6) == pytest.approx(per_gpu, rel=0.005)


def short_offline_rate(system_id: str, benchmark: str, duration: float, balance: bool) -> float:
    """Samples/s of one twin Offline run of ``duration`` s through the real dispatcher onto
    the modelled GPUs (one device timeline each, no host cost): LoadGen's query of
    1.1 x expected QPS x duration samples, issued at once; the run ends with the last batch."""
    system = load_system(system_id)
    harness = system.harness(benchmark, "Offline")
    gpus = system.engines(1)
    now, free_at, running = [0.0], [0.0] * gpus, []

    def submit(batch):  # the sim engine: a batch starts when its GPU is free
        start = max(now[0], free_at[batch.engine])
        free_at[batch.engine] = start + batch_us(harness, len(batch.ids)) * 1e-6
        heapq.heappush(running, (free_at[batch.engine], batch.batch_id))

    clock = lambda: now[0]  # noqa: E731
    dispatcher = Dispatcher(Batcher(harness.batch_size, clock=clock),
                            Router(gpus, harness.max_inflight), submit,
                            lambda ids, data: None, clock=clock, balance=balance)
    samples = math.ceil(1.1 * harness.offline_expected_qps * duration)
    dispatcher.issue(list(range(samples)), list(range(samples)))
    while running:
        now[0], batch_id = heapq.heappop(running)
        dispatcher.done(batch_id, None)
    assert dispatcher.ledger.check_drained() is None
    return samples / now[0]


@pytest.mark.parametrize("duration", [1.0, 5.0])
@pytest.mark.parametrize("system_id,benchmark", PAIRS)
def test_short_offline_twin_reaches_the_modelled_rate(system_id, benchmark, duration):
    # a short run's last round of batches must not leave GPUs idle: the 8-GPU bert twins
    # (1280-sample batches, 16.1 rounds in 5 s) lost 5 % to one GPU's lone last batch
    rate = short_offline_rate(system_id, benchmark, duration, balance=True)
    assert rate == pytest.approx(modelled_offline_rate(load_system(system_id), benchmark),
                                 rel=0.005)


def test_unbalanced_short_offline_twin_loses_the_tail():
    system_id = "SYS-420GP-TNAR_A100-SXM-80GBx8"
    rate = short_offline_rate(system_id, "bert-99", 5.0, balance=False)
    assert rate < 0.96 * modelled_offline_rate(load_system(system_id), "bert-99")


@pytest.mark.parametrize("system_id,benchmark", PAIRS)
def test_derivation_present_and_server_uses_the_same_gpu(system_id, benchmark):
    system = load_system(system_id)
    offline = system.harness(benchmark, "Offline").sim
    server = system.harness(benchmark, "Server").sim
    for sim in (offline, server):
        assert sim is not None and sim.derivation and "published" in sim.derivation
    assert (offline.fixed_us, offline.per_sample_us) == (server.fixed_us, server.per_sample_us)


@pytest.mark.parametrize("benchmark", TWIN_BENCHMARKS)
def test_single_stream_model_is_the_same_gpu_with_its_published_batch1_latency(benchmark):
    system = load_system("SBA-4119SG-X_A100-PCIex1")
    harness = system.harness(benchmark, "SingleStream")
    p90_ns = published(system, benchmark, "SingleStream").value
    assert batch_us(harness, 1) * 1000 == pytest.approx(p90_ns, rel=0.005)
    assert harness.sim.derivation and "published" in harness.sim.derivation
    offline = system.harness(benchmark, "Offline")
    assert batch_us(harness, 2) == batch_us(offline, 2)  # larger batches: the Offline GPU
    assert batch_us(offline, 1) < batch_us(harness, 1)


def test_seed_systems_are_the_systems_with_published_results():
    assert len(SEED_SYSTEMS) == 8
    submitters = [load_system(s).description["submitter"] for s in SEED_SYSTEMS]
    assert submitters.count("Supermicro") == 7 and submitters.count("NVIDIA") == 1
    assert "cpu" not in SEED_SYSTEMS and "H200x1" not in SEED_SYSTEMS
    counts = [load_system(s).accelerator_count for s in SEED_SYSTEMS]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == 8


def test_published_results_are_read_from_the_shipped_csv():
    rows = published_results()
    key = ("Supermicro", "SYS-420GP-TNAR_A100-SXM-80GBx8_TRT", "resnet50", "Server")
    assert rows[key].target_qps == 260000 and rows[key].value == pytest.approx(259993.64)
    assert published(load_system("SYS-420GP-TNAR_A100-SXM-80GBx8"), "resnet50", "Server") == rows[key]
    assert published(load_system("cpu"), "resnet50", "Offline") is None


def test_plan_has_every_system_and_a_null_ceiling():
    cases = plan_cases(SEED_SYSTEMS, ["resnet50"], ["Offline", "Server"], ceiling=True)
    sims = [c for c in cases if c.engine == "sim"]
    nulls = [c for c in cases if c.engine == "null"]
    assert len(sims) == 2 * len(SEED_SYSTEMS)
    assert [(c.scenario, load_system(c.system).accelerator_count) for c in nulls] == [
        ("Offline", 8), ("Server", 8)]
