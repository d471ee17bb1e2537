"""Engines and the engine worker, without Ray."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from raybench.actors.engine import EngineActor, EngineSpec
from raybench.actors.transport import pack
from raybench.config.models import SimLatency
from raybench.engines import create_engine, engine_class
from raybench.engines.base import EngineOptions
from raybench.errors import ConfigError


def test_unknown_engine_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'trt' \(allowed: null, onnxruntime, sim, tensorrt, torch\)"):
        engine_class("trt")


def test_sim_engine_is_one_device_shared_by_concurrent_streams():
    engine = create_engine("sim", EngineOptions(sim=SimLatency(fixed_us=40_000, per_sample_us=0)))
    assert engine.batch_seconds(10) == pytest.approx(0.04)
    start = time.perf_counter()
    threads = [threading.Thread(target=engine.run_count, args=(1,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert elapsed >= 0.12  # three batches, one after the other on the modelled device
    assert engine.run_count(1) is None


def test_sim_latency_grows_per_sample():
    engine = create_engine("sim", EngineOptions(sim=SimLatency(fixed_us=100, per_sample_us=10)))
    assert engine.batch_seconds(100) == pytest.approx(1100e-6)
    assert engine.batch_seconds(1) == pytest.approx(110e-6)


def test_sim_lone_sample_takes_the_batch1_latency():
    latency = SimLatency(fixed_us=100, per_sample_us=10, batch1_us=20_000)
    engine = create_engine("sim", EngineOptions(sim=latency))
    assert engine.batch_seconds(1) == pytest.approx(0.02)
    assert engine.batch_seconds(2) == pytest.approx(120e-6)
    start = time.perf_counter()
    engine.run_count(1)
    assert time.perf_counter() - start >= 0.02


def test_worker_runs_the_stand_in_and_returns_labels(resnet50_standin):
    spec = EngineSpec(benchmark="resnet50", engine="onnxruntime",
                      options=EngineOptions(model=resnet50_standin.model, threads=1),
                      data_dir=resnet50_standin.data_dir)
    worker = EngineActor(spec)
    worker.load_samples([0, 1, 2])
    assert worker.run(pack([0, 1, 2]), want_outputs=False) is None
    blob, sizes = worker.run(pack([2, 0, 5]), want_outputs=True)  # 5 is loaded on demand
    labels = np.frombuffer(blob, np.float32)
    assert sizes == [4, 4, 4]
    assert labels.tolist() == [float(worker.dataset.labels[i]) for i in (2, 0, 5)]


def test_null_worker_needs_no_data():
    worker = EngineActor(EngineSpec(benchmark="resnet50", engine="null", options=EngineOptions()))
    assert worker.dataset is None
    worker.load_samples([1, 2])
    assert worker.run(pack([1, 2]), want_outputs=False) is None


def test_worker_runs_one_batch_per_call_in_the_order_given(resnet50_standin):
    spec = EngineSpec(benchmark="resnet50", engine="onnxruntime",
                      options=EngineOptions(model=resnet50_standin.model, threads=1, batch_size=8),
                      data_dir=resnet50_standin.data_dir)
    worker = EngineActor(spec)
    seen = []
    run = worker.engine.run
    worker.engine.run = lambda feeds: seen.append(len(feeds["input_tensor:0"])) or run(feeds)
    blob, sizes = worker.run(pack([4, 3, 2, 1, 0]), want_outputs=True)
    assert seen == [5]
    labels = np.frombuffer(blob, np.float32).tolist()
    assert labels == [float(worker.dataset.labels[i]) for i in (4, 3, 2, 1, 0)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's timer slack")
def test_sim_engine_threads_sleep_with_a_tight_timer_slack():
    import ctypes

    from raybench.engines.sim import SimEngine

    prctl = ctypes.CDLL(None).prctl
    engine = SimEngine(EngineOptions())
    slack = {}

    def batch():  # a fresh thread, with the default slack (threads inherit theirs)
        prctl(29, 50_000, 0, 0, 0)  # PR_SET_TIMERSLACK
        slack["before"] = prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK, of this thread
        engine.run_count(1)
        slack["after"] = prctl(30, 0, 0, 0, 0)

    thread = threading.Thread(target=batch)
    thread.start()
    thread.join()
    assert slack == {"before": 50_000, "after": 1}
