"""The TorchScript twin of the resnet50 stand-in computes what the ONNX stand-in does."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from raybench.benchmarks import get_benchmark  # noqa: E402
from raybench.engines import create_engine  # noqa: E402
from raybench.engines.base import EngineOptions  # noqa: E402
from raybench.engines.torch import TorchEngine  # noqa: E402
from raybench.engines.torch_export import (export_resnet50_standin,  # noqa: E402
                                           quiet_jit, torchscript_for)
from raybench.errors import EngineError, ModelError  # noqa: E402


@pytest.fixture(scope="module")
def feeds(resnet50_standin):
    dataset = get_benchmark("resnet50").open_dataset(resnet50_standin.data_dir)
    return dataset.feeds(list(range(32)))


def test_torch_engine_on_cpu_matches_onnxruntime(resnet50_standin, feeds, tmp_path):
    ort = create_engine("onnxruntime", EngineOptions(model=resnet50_standin.model))
    want = ort.run(feeds)
    engine = TorchEngine(EngineOptions(model=resnet50_standin.model, batch_size=32,
                                       cache_dir=tmp_path), device="cpu")
    got = engine.run(feeds)
    assert list(got) == ["ArgMax:0", "softmax_tensor:0"]
    assert got["ArgMax:0"].dtype == np.int64 and got["ArgMax:0"].shape == (32,)
    assert got["softmax_tensor:0"].dtype == np.float32
    np.testing.assert_array_equal(got["ArgMax:0"], want["ArgMax:0"])
    np.testing.assert_allclose(got["softmax_tensor:0"], want["softmax_tensor:0"], atol=1e-5)
    # partial batch
    part = engine.run({k: v[:5] for k, v in feeds.items()})
    np.testing.assert_array_equal(part["ArgMax:0"], want["ArgMax:0"][:5])


def test_exported_module_directly(resnet50_standin, feeds, tmp_path):
    out = export_resnet50_standin(resnet50_standin.model, tmp_path / "standin.pt")
    with quiet_jit():
        module = torch.jit.load(str(out))
    argmax, softmax = module(torch.from_numpy(feeds["input_tensor:0"].astype(np.float32)))
    want = create_engine("onnxruntime", EngineOptions(model=resnet50_standin.model)).run(feeds)
    np.testing.assert_array_equal(argmax.numpy(), want["ArgMax:0"])
    np.testing.assert_allclose(softmax.numpy(), want["softmax_tensor:0"], atol=1e-5)


def test_torchscript_for_reuses_and_rejects(resnet50_standin, tmp_path):
    first = torchscript_for(resnet50_standin.model, tmp_path)
    assert first.suffix == ".pt"
    assert torchscript_for(resnet50_standin.model, tmp_path) == first
    assert torchscript_for(first) == first
    other = tmp_path / "other.onnx"
    other.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="TorchScript"):
        torchscript_for(other)
    with pytest.raises(ModelError, match="does not exist"):
        torchscript_for(tmp_path / "missing.pt")


def test_no_cuda_is_one_line(resnet50_standin, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(EngineError) as err:
        create_engine("torch", EngineOptions(model=resnet50_standin.model))
    assert "\n" not in str(err.value) and "no CUDA GPU" in str(err.value)


def test_archive_without_signature(tmp_path):
    path = tmp_path / "bare.pt"
    with quiet_jit():
        torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    with pytest.raises(ModelError, match="raybench.json"):
        TorchEngine(EngineOptions(model=path), device="cpu")
