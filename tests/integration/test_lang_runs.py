"""`raybench run` AccuracyOnly on the bert, dlrm and rnnt stand-ins (Ray, LoadGen)."""

import pytest
from typer.testing import CliRunner

from raybench.benchmarks import get_benchmark

pytestmark = pytest.mark.slow

CASES = [("bert-99", "F1"), ("bert-99.9", "F1"), ("dlrm-99", "AUC"), ("rnnt", "WER")]


@pytest.mark.parametrize("benchmark_id, metric_word", CASES)
def test_accuracy_run_passes(tmp_path, benchmark_id, metric_word):
    from raybench.cli import app

    benchmark = get_benchmark(benchmark_id)
    standin = benchmark.synth(tmp_path / "standin", benchmark.standin_count, seed=0)
    output = tmp_path / "results"
    result = CliRunner().invoke(app, [
        "run", "--benchmark", benchmark_id, "--scenario", "Offline", "--mode", "AccuracyOnly",
        "--engine", "onnxruntime", "--system", "cpu", "--model", str(standin.model),
        "--data-dir", str(standin.data_dir), "--output", str(output), "--duration", "1",
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    accuracy = output / "cpu" / benchmark_id / "Offline" / "accuracy" / "accuracy.txt"
    text = accuracy.read_text()
    assert metric_word in text
    assert "PASS" in text
