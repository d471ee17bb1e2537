"""Telemetry without Ray: labels, the timeline, the Grafana dashboard file and its
provisioning into a Ray session folder."""

from __future__ import annotations

import csv
import json
import re

from raybench.actors.telemetry import (
    GRAFANA_DASHBOARD, METRICS, TIMELINE_COLUMNS, MetricsObserver, Telemetry, engine_labels,
    provision_grafana, write_timeline,
)
from raybench.scheduling.ledger import Batch


def test_prometheus_names_carry_rays_prefix_and_the_counter_suffix():
    names = {m.name: m.prometheus for m in METRICS}
    assert names["raybench_samples_issued"] == "ray_raybench_samples_issued_total"
    assert names["raybench_batcher_queue_depth"] == "ray_raybench_batcher_queue_depth"
    assert names["raybench_batch_seconds"] == "ray_raybench_batch_seconds"


def test_engine_labels_name_gpu_and_node():
    info = [{"gpu_ids": ["3"], "host": "gpu-host"}, {"gpu_ids": [], "host": "cpu-host"}]
    assert engine_labels(info, 3, "here") == [
        {"engine": "0", "gpu": "3", "node": "gpu-host"},
        {"engine": "1", "gpu": "cpu", "node": "cpu-host"},
        {"engine": "2", "gpu": "cpu", "node": "here"},  # no info(): the local host
    ]


def test_timeline_is_cumulative_and_written_as_csv(tmp_path):
    obs = MetricsObserver(2)
    tel = Telemetry(obs, "run", [])
    obs.on_issue(5)
    batch = Batch(1, [1, 2, 3], [0, 1, 2], engine=1)
    obs.on_batch(batch, queued=2)
    tel.record()
    obs.on_complete(batch)
    obs.on_issue(1)
    tel.record()
    assert [row[1:] for row in tel.timeline] == [(5, 0, 2, 3), (6, 3, 2, 0)]
    write_timeline(tmp_path / "t.csv", tel.timeline)
    with (tmp_path / "t.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == TIMELINE_COLUMNS and rows[1]["completed"] == "3"


def test_grafana_dashboard_has_a_panel_per_series():
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}
    assert len(panels) == 5 and len({p["id"] for p in dashboard["panels"]}) == 5

    def uses(title_word: str) -> set[str]:
        (exprs,) = [e for t, e in panels.items() if title_word in t]
        return {re.sub(r"_(bucket|sum|count)$", "", n)
                for e in exprs for n in re.findall(r"\bray_raybench_\w+", e)}

    assert uses("Throughput") == {"ray_raybench_samples_completed_total",
                                  "ray_raybench_samples_issued_total"}
    assert uses("p99") == {"ray_raybench_batch_seconds"}
    assert uses("queue") == {"ray_raybench_batcher_queue_depth"}
    assert uses("In flight") == {"ray_raybench_samples_in_flight"}
    assert uses("Batch size") == {"ray_raybench_batch_size"}
    assert set().union(*(uses(w) for w in ("Throughput", "p99", "queue", "In flight",
                                           "Batch size"))) == {m.prometheus for m in METRICS}
    assert any("histogram_quantile(0.99" in e for e in sum(panels.values(), []))


def test_grafana_dashboard_goes_where_the_session_grafana_reads(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_METRICS_GRAFANA_DASHBOARD_OUTPUT_DIR", raising=False)
    assert provision_grafana(str(tmp_path)) is None  # no Ray dashboard wrote that folder
    folder = tmp_path / "metrics" / "grafana" / "dashboards"
    folder.mkdir(parents=True)
    copy = provision_grafana(str(tmp_path))
    assert copy is not None and copy.parent == folder
    assert json.loads(copy.read_text())["uid"] == "raybench"
    elsewhere = tmp_path / "custom"
    elsewhere.mkdir()
    monkeypatch.setenv("RAY_METRICS_GRAFANA_DASHBOARD_OUTPUT_DIR", str(elsewhere))
    assert provision_grafana(str(tmp_path)).parent == elsewhere
