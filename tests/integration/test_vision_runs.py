"""Full AccuracyOnly runs of the vision stand-ins through ``raybench run`` (Offline)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

CASES = [
    # benchmark id, stand-in sample count, metric text
    ("ssd-mobilenet", 8, "mAP"),
    ("ssd-resnet34", 4, "mAP"),
    ("3d-unet-99", 2, "DICE"),
]


@pytest.mark.parametrize("benchmark_id,count,metric", CASES)
def test_accuracy_run_passes(tmp_path, benchmark_id, count, metric):
    from typer.testing import CliRunner

    from raybench.benchmarks import get_benchmark
    from raybench.cli import app

    standin = get_benchmark(benchmark_id).synth(tmp_path / "standin", count, seed=0)
    output = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", "--benchmark", benchmark_id, "--scenario", "Offline", "--mode", "AccuracyOnly",
        "--engine", "onnxruntime", "--system", "cpu", "--model", str(standin.model),
        "--data-dir", str(standin.data_dir), "--output", str(output), "--duration", "1",
    ])
    assert result.exit_code == 0, result.output
    text = (output / "cpu" / benchmark_id / "Offline" / "accuracy" / "accuracy.txt").read_text()
    assert metric in text
    assert "PASS" in text
