"""Short simulated twin runs: sim engines with a seed system's calibrated latency model."""

from __future__ import annotations

import pytest

from raybench.config.systems import load_system
from raybench.experiments.twins import TwinCase, run_case

SYSTEM = "SBA-4119SG-X_A100-PCIex1"  # one GPU: every scenario has settings


@pytest.mark.parametrize("scenario", [
    s for s in ("SingleStream", "MultiStream", "Server", "Offline")
    if s in load_system(SYSTEM).settings["resnet50"]
])
def test_short_simulated_run_completes_and_parses(ray_cluster, tmp_path, scenario):
    row = run_case(TwinCase(SYSTEM, "resnet50", scenario), duration=1.0, output=tmp_path)
    assert row.error is None
    assert row.simulated is not None and row.simulated > 0
    assert row.valid is not None
    summary = next((tmp_path / "sim" / SYSTEM / "resnet50" / scenario).rglob("mlperf_log_summary.txt"))
    assert f"Scenario : {scenario}" in summary.read_text()
    if scenario == "Offline":
        assert row.published == pytest.approx(30265.4)
        # one GPU at ~30k samples/s is well inside what the harness carries on 2 cores
        assert 0.7 < row.ratio < 1.1
