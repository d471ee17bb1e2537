"""The TorchScript twin of the resnet50 stand-in computes what the ONNX stand-in does, and
the torch engine takes TorchScript .pt models only."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from raybench.benchmarks import get_benchmark  # noqa: E402
from raybench.engines import create_engine  # noqa: E402
from raybench.engines.base import EngineOptions  # noqa: E402
from raybench.engines.torch import TorchEngine  # noqa: E402
from raybench.engines.torch_export import quiet_jit  # noqa: E402
from raybench.errors import EngineError, ModelError  # noqa: E402
from raybench.standins import torchscript_standin  # noqa: E402
from raybench.standins.torchscript import export_resnet50_standin  # noqa: E402


@pytest.fixture(scope="module")
def feeds(resnet50_standin):
    dataset = get_benchmark("resnet50").open_dataset(resnet50_standin.data_dir)
    return dataset.feeds(list(range(32)))


@pytest.fixture(scope="module")
def pt_model(resnet50_standin):
    return torchscript_standin(resnet50_standin.model)


def test_torch_engine_on_cpu_matches_onnxruntime(resnet50_standin, pt_model, feeds):
    ort = create_engine("onnxruntime", EngineOptions(model=resnet50_standin.model))
    want = ort.run(feeds)
    engine = TorchEngine(EngineOptions(model=pt_model, batch_size=32), device="cpu")
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


def test_torchscript_standin_is_made_once_beside_the_onnx(resnet50_standin, pt_model, tmp_path):
    assert pt_model == resnet50_standin.model.with_suffix(".pt")
    made = pt_model.stat().st_mtime_ns
    assert torchscript_standin(resnet50_standin.model) == pt_model
    assert pt_model.stat().st_mtime_ns == made
    other = tmp_path / "other.onnx"
    other.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        torchscript_standin(other)
    with pytest.raises(ModelError, match="does not exist"):
        torchscript_standin(tmp_path / "missing.onnx")


def test_torch_engine_refuses_anything_but_a_pt_file(resnet50_standin, tmp_path):
    for model, fragment in ((resnet50_standin.model, "TorchScript .pt models only"),
                            (tmp_path / "missing.pt", "does not exist"),
                            (None, "needs a TorchScript model")):
        with pytest.raises(ModelError, match=fragment) as err:
            TorchEngine(EngineOptions(model=model), device="cpu")
        assert "\n" not in str(err.value)


def test_no_cuda_is_one_line(pt_model):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(EngineError) as err:
        create_engine("torch", EngineOptions(model=pt_model))
    assert "\n" not in str(err.value) and "no CUDA GPU" in str(err.value)


def test_archive_without_signature(tmp_path):
    path = tmp_path / "bare.pt"
    with quiet_jit():
        torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    with pytest.raises(ModelError, match="raybench.json"):
        TorchEngine(EngineOptions(model=path), device="cpu")
