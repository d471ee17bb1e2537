"""`raybench run` and `raybench twins` through the command line on a local Ray: the
summary and tables fit 80 columns with no cell cut, and --json prints parseable results."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from raybench.cli import app

SERVER = ["run", "--engine", "sim", "--system", "SYS-420GP-TNAR_A100-SXM-80GBx8",
          "--scenario", "Server", "--engines", "2", "--batch-size", "32", "--duration", "1",
          "--target-qps", "50000"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def assert_fits(output: str) -> None:
    assert "…" not in output
    assert not [line for line in output.splitlines() if len(line.rstrip()) > 80]


def test_run_summary_explains_an_invalid_server_run(ray_cluster, tmp_path):
    out = invoke(*SERVER, "--output", str(tmp_path))
    assert out.exit_code == 0, out.output
    assert_fits(out.output)
    text = out.output
    assert "INVALID" in text and "scheduled throughput" in text and "samples/s" in text
    assert "ms > 15 ms bound" in text  # 50,000 QPS on 2 sim engines cannot hold 15 ms
    assert "LoadGen  Reduce target QPS" in text
    assert "(detected" not in text and "SYS-420GP-TNAR_A100-SXM-80GBx8" in text


def test_run_json_parses(ray_cluster, tmp_path):
    out = invoke("run", "--engine", "null", "--scenario", "SingleStream", "--system", "cpu",
                 "--duration", "1", "--output", str(tmp_path), "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    (test,) = data["tests"]
    assert data["scenario"] == "SingleStream" and data["system"] == "cpu"
    assert test["headline"]["name"] == "p90 latency" and test["headline"]["unit"] == "ms"
    assert test["headline"]["value"] == test["latency_ms"]["p90"]
    assert test["samples"] > 0 and test["directory"].startswith(str(tmp_path))
    assert data["submittable"] is False and data["overridden"]


def test_twins_table_fits_and_json_parses(ray_cluster, tmp_path):
    args = ["twins", "--system", "SBA-4119SG-X_A100-PCIex1", "--scenario", "Offline",
            "--duration", "1", "--output", str(tmp_path)]
    out = invoke(*args, "--scenario", "Server", "--no-ceiling")
    assert out.exit_code == 0, out.output
    assert_fits(out.output)
    assert "[1/2]" in out.output and "[2/2]" in out.output
    assert "SBA-4119SG-X_" in out.output and "30,265" in out.output  # published Offline
    data = json.loads(invoke(*args, "--json").stdout)  # with the null-engine ceiling
    assert [(r["scenario"], r["engine"]) for r in data["rows"]] == [
        ("Offline", "sim"), ("Offline", "null")]
    offline = data["rows"][0]
    assert offline["published"] == 30265.4 and offline["ratio"] == offline["simulated"] / 30265.4


def test_twins_transport_option_reaches_the_run(ray_cluster, tmp_path):
    # a 1-GPU twin with two inference streams: automatic choice on a small host is calls
    for transport in ("graph", "calls"):
        out = invoke("twins", "--system", "SBA-4119SG-X_A100-PCIex1", "--scenario", "Offline",
                     "--duration", "1", "--no-ceiling", "--transport", transport.upper(),
                     "--output", str(tmp_path / transport))
        assert out.exit_code == 0, out.output
        (path,) = (tmp_path / transport).rglob("raybench_settings.json")
        settings = json.loads(path.read_text())
        assert settings["request"]["transport"] == transport
        assert settings["harness_outcome"]["transport"] == transport
    bad = invoke("twins", "--transport", "pipes")
    assert bad.exit_code == 2 and "'pipes' (allowed: graph, calls)" in bad.output
