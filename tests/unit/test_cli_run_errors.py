"""`raybench run` rejects bad input with one line and exit code 2, before starting Ray."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from raybench.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, ["run", *args])
    return result.exit_code, result.output


def assert_one_line_error(output: str, *fragments: str) -> None:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("args,fragments", [
    (["--benchmark", "resnet51"], ["'resnet51'", "resnet50", "bert-99.9"]),
    (["--scenario", "Servr"], ["'Servr'", "SingleStream", "Offline"]),
    (["--mode", "Fast"], ["'Fast'", "PerformanceOnly", "SubmissionRun"]),
    (["--engine", "trt"], ["'trt'", "onnxruntime", "null", "sim"]),
    (["--system", "nope"], ["'nope'", "cpu", "SYS-420GP-TNAR_A100-SXM-80GBx8"]),
    (["--benchmark", "3d-unet-99", "--scenario", "Server"], ["3d-unet", "Server", "Offline"]),
    (["--engine", "null", "--mode", "AccuracyOnly"], ["'null'", "PerformanceOnly"]),
    (["--official", "--duration", "5"], ["--official"]),
    (["--scenario", "Offline", "--samples-per-query", "4"], ["MultiStream", "Offline"]),
])
def test_bad_values_name_the_value_and_the_allowed_ones(args, fragments):
    code, output = invoke(*args)
    assert code == 2
    assert_one_line_error(output, *fragments)


def test_missing_model_path(tmp_path):
    code, output = invoke("--system", "cpu", "--model", str(tmp_path / "missing.onnx"),
                          "--data-dir", str(tmp_path))
    assert code == 2
    assert_one_line_error(output, "missing.onnx", "does not exist")


def test_missing_data_dir(resnet50_standin, tmp_path):
    code, output = invoke("--system", "cpu", "--model", str(resnet50_standin.model),
                          "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2
    assert_one_line_error(output, "nowhere")


def test_model_without_data_dir(resnet50_standin):
    code, output = invoke("--system", "cpu", "--model", str(resnet50_standin.model))
    assert code == 2
    assert_one_line_error(output, "--model", "--data-dir")


def test_model_whose_inputs_do_not_match(resnet50_standin, tmp_path):
    from onnx import TensorProto, helper

    from raybench.standins.tree import save_model

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "wrong",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
    )
    wrong = save_model(graph, tmp_path / "wrong.onnx")
    code, output = invoke("--system", "cpu", "--model", str(wrong),
                          "--data-dir", str(resnet50_standin.data_dir))
    assert code == 2
    assert_one_line_error(output, "wrong.onnx", "input_tensor:0 float32 [N,3,224,224]")


def test_model_with_wrong_input_shape(resnet50_standin, tmp_path):
    from onnx import TensorProto, helper

    from raybench.standins.tree import save_model

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_tensor:0"], ["y"])], "wrong_shape",
        [helper.make_tensor_value_info("input_tensor:0", TensorProto.FLOAT, ["N", 3, 300, 300])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 300, 300])],
    )
    wrong = save_model(graph, tmp_path / "shape.onnx")
    code, output = invoke("--system", "cpu", "--model", str(wrong),
                          "--data-dir", str(resnet50_standin.data_dir))
    assert code == 2
    assert_one_line_error(output, "[N,3,300,300]", "resnet50")


def test_truncated_sample_file_is_named(resnet50_standin, tmp_path):
    from raybench.benchmarks import get_benchmark
    from raybench.errors import DataError

    import shutil

    shutil.copytree(resnet50_standin.data_dir.parent.parent, tmp_path / "root")  # NVIDIA's tree
    data = tmp_path / "root" / "build" / "preprocessed_data"
    dataset = get_benchmark("resnet50").open_dataset(data)
    victim = dataset.path(3)
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(DataError, match=victim.name):
        dataset.load([3])
    np.save(dataset.path(4), np.zeros((3, 224, 223), np.int8))
    with pytest.raises(DataError, match=r"expected int8 \[3,224,224\]"):
        dataset.load([4])


@pytest.mark.parametrize("args,fragments", [
    (["--batch-size", "0"], ["--batch-size", "0", ">= 1"]),
    (["--threads", "0"], ["--threads", "0", ">= 1"]),
    (["--engines", "0"], ["--engines", "0", ">= 1"]),
    (["--target-qps", "-5"], ["--target-qps", "-5", "> 0"]),
    (["--duration", "0"], ["--duration", "0", "> 0"]),
    (["--duration", "inf"], ["--duration", "inf", "finite"]),
    (["--queries", "0"], ["--queries", "0", ">= 1"]),
    (["--batch-timeout-us", "-1"], ["--batch-timeout-us", "-1", ">= 0"]),
    (["--max-restarts", "-1"], ["--max-restarts", "-1", ">= 0"]),
])
def test_out_of_range_numbers_are_one_line_errors(args, fragments):
    code, output = invoke(*args)
    assert code == 2
    assert_one_line_error(output, *fragments)


def test_names_are_accepted_in_any_case():
    from raybench.run import RunRequest

    request = RunRequest.from_options({"scenario": "offline", "mode": "performance",
                                       "benchmark": "BERT-99", "engine": "Null"})
    assert (request.scenario, request.mode, request.benchmark, request.engine) == (
        "Offline", "PerformanceOnly", "bert-99", "null")
    assert RunRequest.from_options({"mode": "accuracyonly"}).mode == "AccuracyOnly"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    from raybench import __version__

    assert result.output.strip() == f"raybench {__version__}"


@pytest.mark.parametrize("engine,packages,extra", [
    ("torch", ["torch"], "torch"), ("tensorrt", ["tensorrt", "cuda"], "gpu")])
def test_engine_without_its_packages_fails_before_ray_with_the_extra(engine, packages, extra,
                                                                       monkeypatch):
    import importlib.util

    if all(importlib.util.find_spec(p) for p in packages):
        pytest.skip(f"{engine} is installed here")
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, output = invoke("--engine", engine, "--system", "H200x1", "--engine", engine)
    assert code == 2
    assert_one_line_error(output, f"'{engine}'", f"'.[{extra}]'")
    assert not ray.is_initialized()
