"""Ray metrics of a run reach the node's Prometheus endpoint."""

from __future__ import annotations

import time
import urllib.request

import pytest

from raybench.run import RunRequest, run

NAMES = ("raybench_queries_issued", "raybench_queries_completed", "raybench_samples_in_flight",
         "raybench_batcher_queue_depth", "raybench_batch_size", "raybench_batch_seconds")


@pytest.mark.slow
def test_run_metrics_appear_on_prometheus_endpoint(ray_cluster, tmp_path):
    port = ray_cluster.nodes()[0]["MetricsExportPort"]
    run(RunRequest(system="SYS-420GP-TNAR_A100-SXM-80GBx8", engine="sim", scenario="Server",
                   output=tmp_path, engines=2, batch_size=32,
                   duration=1.0, queries=1, target_qps=1000))
    missing = set(NAMES)
    deadline = time.monotonic() + 45
    while missing and time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        missing = {n for n in NAMES if n not in text}
        time.sleep(1)
    assert not missing
    assert 'run="SYS-420GP-TNAR_A100-SXM-80GBx8/resnet50/Server/performance/run_1"' in text
