"""`raybench run` AccuracyOnly on the bert, dlrm and rnnt stand-ins (Ray, LoadGen), on
``--data-dir DIR/build/preprocessed_data`` of a tree written by ``raybench data synth``."""

import re

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

CASES = [
    # model, benchmark id, the submission checker's pattern for accuracy.txt
    ("bert", "bert-99", r"^\{\"exact_match\"\:\s*[\d\.]+,\s*\"f1\"\:\s*([\d\.]+)}"),
    ("bert", "bert-99.9", r"^\{\"exact_match\"\:\s*[\d\.]+,\s*\"f1\"\:\s*([\d\.]+)}"),
    ("dlrm", "dlrm-99", r"^AUC=([\d\.]+)"),
    ("rnnt", "rnnt", r"Word Error Rate\:.*, accuracy=([0-9\.]+)%"),
]


@pytest.mark.parametrize("model, benchmark_id, pattern", CASES)
def test_accuracy_run_passes(ray_cluster, standin, tmp_path, model, benchmark_id, pattern):
    from raybench.cli import app

    s = standin(model)
    output = tmp_path / "results"
    result = CliRunner().invoke(app, [
        "run", "--benchmark", benchmark_id, "--scenario", "Offline", "--mode", "AccuracyOnly",
        "--engine", "onnxruntime", "--system", "cpu", "--model", str(s.model),
        "--data-dir", str(s.data_dir), "--output", str(output), "--duration", "1",
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    text = (output / "cpu" / benchmark_id / "Offline" / "accuracy" / "accuracy.txt").read_text()
    values = [float(m.group(1)) for m in map(lambda ln: re.match(pattern, ln), text.splitlines()) if m]
    assert values == [pytest.approx(100.0)]
    assert "PASS" in text
