"""The torch and tensorrt engines on a real CUDA GPU (skipped without one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from raybench.benchmarks import get_benchmark
from raybench.engines import create_engine
from raybench.engines.base import EngineOptions

pytestmark = pytest.mark.gpu


def _need_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    return torch


@pytest.fixture(autouse=True, scope="module")
def cuda():
    """Skip the whole module early (before building the stand-in) without a GPU."""
    return _need_cuda()


@pytest.fixture(scope="module")
def pt_model(resnet50_standin):
    """The stand-in's TorchScript twin: the torch engine runs .pt models only."""
    from raybench.standins import torchscript_standin

    return torchscript_standin(resnet50_standin.model)


@pytest.fixture(scope="module")
def reference(resnet50_standin):
    dataset = get_benchmark("resnet50").open_dataset(resnet50_standin.data_dir)
    feeds = dataset.feeds(list(range(64)))
    ort = create_engine("onnxruntime", EngineOptions(model=resnet50_standin.model))
    return feeds, ort.run(feeds)


@pytest.mark.parametrize("precision,graphs", [("fp32", False), ("fp16", False),
                                              ("fp16", True), ("int8", True)])
def test_torch_engine_matches_onnxruntime(pt_model, reference, tmp_path, precision, graphs):
    _need_cuda()
    feeds, want = reference
    engine = create_engine("torch", EngineOptions(
        model=pt_model, batch_size=64, precision=precision, use_graphs=graphs,
        inference_streams=2, copy_streams=2, cache_dir=tmp_path))
    for n in (64, 33, 1):
        got = engine.run({k: v[:n] for k, v in feeds.items()})
        assert got["softmax_tensor:0"].dtype == np.float32 and got["ArgMax:0"].dtype == np.int64
        agree = np.mean(got["ArgMax:0"] == want["ArgMax:0"][:n])
        assert agree >= (1.0 if precision == "fp32" else 0.9), agree
        tol = 1e-4 if precision == "fp32" else 2e-2
        np.testing.assert_allclose(got["softmax_tensor:0"], want["softmax_tensor:0"][:n], atol=tol)


def test_torch_engine_concurrent_streams(pt_model, reference, tmp_path):
    _need_cuda()
    feeds, want = reference
    engine = create_engine("torch", EngineOptions(
        model=pt_model, batch_size=16, precision="fp32", use_graphs=True,
        inference_streams=4, copy_streams=2, cache_dir=tmp_path))
    starts = list(range(0, 64, 16)) * 8

    def one(start):
        got = engine.run({k: v[start:start + 16] for k, v in feeds.items()})
        return np.array_equal(got["ArgMax:0"], want["ArgMax:0"][start:start + 16])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(one, starts))


def test_tensorrt_engine(resnet50_standin, reference, tmp_path):
    _need_cuda()
    pytest.importorskip("tensorrt")
    feeds, want = reference
    options = EngineOptions(model=resnet50_standin.model, batch_size=64, precision="fp16",
                            use_graphs=True, inference_streams=2, cache_dir=tmp_path)
    engine = create_engine("tensorrt", options)
    plans = sorted(tmp_path.glob("*.plan"))
    assert len(plans) == 1
    for n in (64, 5):
        got = engine.run({k: v[:n] for k, v in feeds.items()})
        assert np.mean(got["ArgMax:0"].astype(np.int64) == want["ArgMax:0"][:n]) >= 0.9
    mtime = plans[0].stat().st_mtime
    create_engine("tensorrt", options)  # reuses the cached plan
    assert plans[0].stat().st_mtime == mtime
