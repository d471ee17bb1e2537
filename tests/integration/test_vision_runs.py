"""Full AccuracyOnly runs of the vision stand-ins through ``raybench run`` (Offline), on
``--data-dir DIR/build/preprocessed_data`` of a tree written by ``raybench data synth``."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

CASES = [
    # model, benchmark id, the submission checker's pattern for accuracy.txt, the score
    ("resnet50", "resnet50", r"^accuracy=([\d\.]+)", 100.0),
    ("ssd-mobilenet", "ssd-mobilenet", r"^mAP=([\d\.]+)", 100.0),
    ("ssd-resnet34", "ssd-resnet34", r"^mAP=([\d\.]+)", 100.0),
    ("3d-unet", "3d-unet-99", r"Accuracy\:\s*mean\s*=\s*([\d\.]+)", 1.0),
]


@pytest.mark.parametrize("model,benchmark_id,pattern,expected", CASES)
def test_accuracy_run_passes(ray_cluster, standin, tmp_path, model, benchmark_id, pattern,
                             expected):
    from typer.testing import CliRunner

    from raybench.cli import app

    s = standin(model)
    assert s.data_dir.as_posix().endswith("build/preprocessed_data")
    output = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", "--benchmark", benchmark_id, "--scenario", "Offline", "--mode", "AccuracyOnly",
        "--engine", "onnxruntime", "--system", "cpu", "--model", str(s.model),
        "--data-dir", str(s.data_dir), "--output", str(output), "--duration", "1",
    ])
    assert result.exit_code == 0, result.output
    text = (output / "cpu" / benchmark_id / "Offline" / "accuracy" / "accuracy.txt").read_text()
    values = [float(m.group(1)) for m in map(lambda ln: re.match(pattern, ln), text.splitlines()) if m]
    assert values == [pytest.approx(expected)]
    assert "PASS" in text
