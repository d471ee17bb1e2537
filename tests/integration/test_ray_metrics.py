"""Ray metrics of a run reach the node's Prometheus endpoint under the names the README
and the Grafana dashboard use, with GPU and node labels, and the run writes its timeline."""

from __future__ import annotations

import csv
import json
import re
import time
import urllib.request

import pytest

from raybench.actors.telemetry import GRAFANA_DASHBOARD, METRICS, TIMELINE, TIMELINE_COLUMNS
from raybench.run import RunRequest, run

SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def _families(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (ray_raybench_\w+) ", text, re.M))


def _series(text: str) -> dict[str, list[dict[str, str]]]:
    """Every ray_raybench sample line: series name -> its label sets."""
    found: dict[str, list[dict[str, str]]] = {}
    for name, labels in re.findall(r"^(ray_raybench_\w+)\{(.*)\} ", text, re.M):
        found.setdefault(name, []).append(dict(re.findall(r'(\w+)="([^"]*)"', labels)))
    return found


@pytest.fixture(scope="module")
def scrape(ray_cluster, tmp_path_factory):
    """A 1 s Server run on 2 sim engines, then the node's Prometheus text with its series."""
    out = tmp_path_factory.mktemp("metrics")
    port = ray_cluster.nodes()[0]["MetricsExportPort"]
    report = run(RunRequest(system=SYSTEM, engine="sim", scenario="Server", output=out,
                            engines=2, batch_size=32, duration=1.0, queries=1, target_qps=1000))
    want = {m.prometheus for m in METRICS}
    deadline, text = time.monotonic() + 45, ""
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        if want <= _families(text):
            break
        time.sleep(1)
    return report, text


@pytest.mark.slow
def test_series_have_the_documented_names_and_labels(scrape):
    report, text = scrape
    assert _families(text) == {m.prometheus for m in METRICS}
    series = _series(text)
    run_label = f"{SYSTEM}/resnet50/Server/performance/run_1"
    gpus = {",".join(i["gpu_ids"]) for i in report.engine_info}
    hosts = {i["host"] for i in report.engine_info}
    for m in METRICS:
        names = ([f"{m.prometheus}_{s}" for s in ("bucket", "sum", "count")]
                 if m.kind == "histogram" else [m.prometheus])
        for name in names:
            mine = [labels for labels in series[name] if labels.get("run") == run_label]
            assert mine, name
            assert {labels["node"] for labels in mine} <= hosts
            if m.per_engine:
                assert {labels["engine"] for labels in mine} == {"0", "1"}
                assert {labels["gpu"] for labels in mine} == gpus, name


@pytest.mark.slow
def test_grafana_dashboard_queries_exactly_the_exported_series(scrape):
    _, text = scrape
    exported = set(_series(text))
    labels = {k for sets in _series(text).values() for s in sets for k in s}
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\bray_raybench_\w+", e)}
    assert used <= exported
    assert {re.sub(r"_(bucket|sum|count)$", "", n) for n in used} == _families(text)
    for expr in exprs:  # every label a query filters or groups by exists on the series
        named = set(re.findall(r"(\w+)=~", expr))
        named |= {w.strip() for g in re.findall(r"by \(([^)]*)\)", expr) for w in g.split(",")}
        assert named <= labels, (expr, named - labels)


@pytest.mark.slow
def test_run_writes_its_timeline(scrape):
    report, _ = scrape
    (test,) = report.tests
    with (test.directory / TIMELINE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == TIMELINE_COLUMNS
    completed = [int(r["completed"]) for r in rows]
    assert completed == sorted(completed) and completed[-1] == test.outcome.completed
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and 0.8 < times[-1] - times[0] < 60
