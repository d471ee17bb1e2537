"""The GPU engines' CPU-side planning: no torch, no tensorrt, no GPU needed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from raybench.benchmarks.base import TensorSpec
from raybench.engines import calibration, engine_cache, engine_names, gpu_plan
from raybench.errors import ConfigError, EngineError


def test_no_heavy_imports():
    code = ("import sys, raybench.engines.gpu_plan, raybench.engines.engine_cache, "
            "raybench.engines.calibration, raybench.engines.torch, "
            "raybench.engines.tensorrt, raybench.engines.torch_export; "
            "assert not {'torch', 'tensorrt'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered():
    assert {"torch", "tensorrt"} <= set(engine_names())


def test_precisions():
    assert gpu_plan.torch_compute_dtype("fp32") == "float32"
    assert gpu_plan.torch_compute_dtype("fp16") == "float16"
    assert gpu_plan.torch_compute_dtype("int8") == "float16"
    assert gpu_plan.trt_flags("fp32") == []
    assert gpu_plan.trt_flags("int8") == ["INT8", "FP16"]
    with pytest.raises(ConfigError, match="bf16"):
        gpu_plan.check_precision("bf16")


def test_profiles_cover_every_batch_once():
    profiles = gpu_plan.profile_batches([64, 8, 64, 1])
    assert profiles == [(1, 1, 1), (2, 8, 8), (9, 64, 64)]
    for batch in range(1, 65):
        hits = [i for i, (lo, _, hi) in enumerate(profiles) if lo <= batch <= hi]
        assert hits == [gpu_plan.choose_profile(profiles, batch)]
    with pytest.raises(EngineError, match="exceeds"):
        gpu_plan.choose_profile(profiles, 65)
    with pytest.raises(ConfigError):
        gpu_plan.profile_batches([])
    assert gpu_plan.profile_index(slot=2, profile=1, per_slot=3) == 7


def test_shapes_and_bytes():
    spec = TensorSpec("input_tensor:0", "float32", (None, 3, 224, 224))
    assert gpu_plan.profile_shape(spec.shape, 8) == (8, 3, 224, 224)
    assert gpu_plan.tensor_nbytes(spec.shape, "float32", 2) == 2 * 3 * 224 * 224 * 4
    outs = (TensorSpec("ArgMax:0", "int64", (None,)),
            TensorSpec("softmax_tensor:0", "float32", (None, 1001)))
    plan = gpu_plan.buffer_plan((spec, *outs), 4, dtypes={"input_tensor:0": "int8"})
    assert plan == {"input_tensor:0": 4 * 3 * 224 * 224, "ArgMax:0": 32,
                    "softmax_tensor:0": 4 * 1001 * 4}
    assert gpu_plan.dims_to_shape((-1, 3, 224, 224)) == (None, 3, 224, 224)
    assert gpu_plan.numpy_dtype_of_trt("DataType.HALF") == "float16"
    with pytest.raises(EngineError):
        gpu_plan.numpy_dtype_of_trt("DataType.FP4")


def test_graph_batches_and_padding():
    assert gpu_plan.graph_batches(64) == [1, 2, 4, 8, 16, 32, 64]
    assert gpu_plan.graph_batches(48) == [1, 2, 4, 8, 16, 32, 48]
    assert gpu_plan.graph_batches(2048, limit=3) == [512, 1024, 2048]
    sizes = gpu_plan.graph_batches(48)
    assert gpu_plan.padded_batch(33, sizes) == 48
    assert gpu_plan.padded_batch(3, sizes) == 4
    assert gpu_plan.padded_batch(49, sizes) is None


def test_plan_key_and_paths(tmp_path, monkeypatch):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"model")
    key = engine_cache.make_key(onnx, "fp16", [64, 1], "10.3.0", "NVIDIA H200")
    assert key.batch_sizes == (1, 64)
    assert key.file_name().startswith("fp16-b1-64-") and key.file_name().endswith(".plan")
    same = engine_cache.make_key(onnx, "fp16", [1, 64], "10.3.0", "NVIDIA H200")
    assert same.digest() == key.digest()
    for changed in (engine_cache.make_key(onnx, "int8", [1, 64], "10.3.0", "NVIDIA H200"),
                    engine_cache.make_key(onnx, "fp16", [1, 64], "10.4.0", "NVIDIA H200"),
                    engine_cache.make_key(onnx, "fp16", [1, 64], "10.3.0", "NVIDIA A100")):
        assert changed.digest() != key.digest()
    onnx.write_bytes(b"other model")
    assert engine_cache.make_key(onnx, "fp16", [1, 64], "10.3.0", "NVIDIA H200").digest() != key.digest()

    monkeypatch.setenv("RAYBENCH_CACHE", str(tmp_path / "cache"))
    where = engine_cache.engine_dir(None, "H200x1", "resnet50")
    assert where == tmp_path / "cache" / "engines" / "H200x1" / "resnet50"
    assert engine_cache.engine_dir(tmp_path / "x", "H200x1", "resnet50") == tmp_path / "x"
    assert engine_cache.plan_path(where, key).parent == where
    assert engine_cache.slug("NVIDIA H200 NVL") == "NVIDIA_H200_NVL"
    cal = engine_cache.calibration_cache_path(where, key.onnx_sha256, 32)
    assert cal.name.endswith("-b32.cache")


def test_explain_mismatch():
    want = engine_cache.PlanKey("abc", "fp16", (64,), "10.3.0", "NVIDIA H200")
    assert engine_cache.explain_mismatch(eval(want.to_json().replace("null", "None")), want) is None
    found = {"gpu_name": "NVIDIA A100-SXM4-80GB", "trt_version": "10.3.0"}
    assert "A100" in engine_cache.explain_mismatch(found, want)
    found = {"gpu_name": "NVIDIA H200", "trt_version": "8.6.1"}
    assert "8.6.1" in engine_cache.explain_mismatch(found, want)


def test_gpu_matches_system():
    assert engine_cache.gpu_matches_system("NVIDIA H200", "H200")
    assert engine_cache.gpu_matches_system("NVIDIA A100-SXM4-80GB", "A100-SXM-80GB")
    assert not engine_cache.gpu_matches_system("NVIDIA H200", "A100-SXM-80GB")
    assert engine_cache.gpu_matches_system("NVIDIA H200", None)


def test_calibration_files(tmp_path):
    with pytest.raises(EngineError, match="calibration"):
        calibration.calibration_files(None, tmp_path / "m.onnx")
    data = tmp_path / "preprocessed_data" / "imgs"
    data.mkdir(parents=True)
    for i in range(5):
        np.save(data / f"s{i}.npy", np.zeros(2, np.int8))
    found = calibration.calibration_files(None, tmp_path / "m.onnx", count=3)
    assert [p.name for p in found] == ["s0.npy", "s1.npy", "s2.npy"]
    listing = tmp_path / "cal_list.txt"
    listing.write_text("preprocessed_data/imgs/s4.JPEG\n\npreprocessed_data/imgs/s1.npy\n")
    assert [p.name for p in calibration.calibration_files(listing, None)] == ["s4.npy", "s1.npy"]
    assert len(calibration.calibration_files(data, None)) == 5
    batches = calibration.calibration_batches(found, 2)
    assert [len(b) for b in batches] == [2, 1]
