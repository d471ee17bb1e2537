"""accuracy.txt of every benchmark carries the line the submission checker matches."""

from __future__ import annotations

import hashlib
import re

import pytest

from raybench.benchmarks import get_benchmark
from raybench.config.names import accuracy_target_of
from raybench.results.accuracy import AccuracyResult
from raybench.rules import load_rules
from tests.pipeline import run_pipeline

# the submission checker's patterns (MLPerf Inference v1.0 tools/submission)
PATTERN = {
    "resnet50": r"^accuracy=([\d\.]+)",
    "ssd-mobilenet": r"^mAP=([\d\.]+)",
    "ssd-resnet34": r"^mAP=([\d\.]+)",
    "bert": r"^\{\"exact_match\"\:\s*[\d\.]+,\s*\"f1\"\:\s*([\d\.]+)}",
    "dlrm": r"^AUC=([\d\.]+)",
    "rnnt": r"Word Error Rate\:.*, accuracy=([0-9\.]+)%",
    "3d-unet": r"Accuracy\:\s*mean\s*=\s*([\d\.]+)",
}
BENCHMARK = {"resnet50": "resnet50", "ssd-mobilenet": "ssd-mobilenet",
             "ssd-resnet34": "ssd-resnet34", "bert": "bert-99.9", "dlrm": "dlrm-99.9",
             "rnnt": "rnnt", "3d-unet": "3d-unet-99.9"}


@pytest.mark.parametrize("model", list(PATTERN))
def test_accuracy_txt_matches_the_checkers_pattern_and_hashes_the_log(standin, model, tmp_path):
    benchmark_id = BENCHMARK[model]
    benchmark = get_benchmark(benchmark_id)
    s = standin(model)
    entries = run_pipeline(benchmark, s, write_to=tmp_path)
    rule = load_rules("v1.0").model(model)
    result = AccuracyResult(benchmark_id, rule.metric, benchmark.accuracy(entries, s.data_dir),
                            rule.fp32, accuracy_target_of(benchmark_id))
    text = result.write(tmp_path).read_text()
    found, hashes = [], []
    for line in text.splitlines():  # as the checker reads it: every line, re.match
        m = re.match(PATTERN[model], line)
        if m:
            found.append(float(m.group(1)))
        m = re.match(r"^hash=([\w\d]+)$", line)
        if m:
            hashes.append(m.group(1))
    assert found == [pytest.approx(1.0 if model == "3d-unet" else 100.0)]
    assert found[0] == pytest.approx(result.value, abs=1e-3)
    assert hashes == [hashlib.sha256((tmp_path / "mlperf_log_accuracy.json").read_bytes()).hexdigest()]
    assert result.passed and "raybench summary:" in text
