"""`raybench submission`: bad input is one line and exit code 2; the small commands' output."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from raybench.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, ["submission", *map(str, args)])
    return result.exit_code, result.output


def one_line_error(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert "Traceback" not in output
    return lines[0]


def test_a_system_without_the_required_fields_is_named_in_one_line(tmp_path):
    code, output = invoke("assemble", tmp_path, "--system", "H200x1", "--out", tmp_path / "out")
    line = one_line_error(output)
    assert code == 2
    assert "system 'H200x1': description lacks" in line
    for field in ("host_processor_model_name", "operating_system", "accelerator_on-chip_memories", "sw_notes"):
        assert field in line
    assert not (tmp_path / "out").exists()


def test_no_runs_is_an_error_that_says_where_it_looked(tmp_path):
    code, output = invoke("assemble", tmp_path, "--system", "cpu", "--out", tmp_path / "out")
    assert code == 2
    assert "no runs of system 'cpu' under" in one_line_error(output)
    assert not list((tmp_path / "out").rglob("*.json"))  # nothing half-written


@pytest.mark.parametrize("args,fragment", [
    (["audit-config", "TEST03"], "'TEST03' (allowed: TEST01, TEST04-A, TEST04-B, TEST05)"),
    (["audit-config", "TEST01", "--benchmark", "resnet"], "'resnet'"),
    (["assemble", ".", "--system", "nope", "--out", "x"], "unknown system 'nope'"),
    (["assemble", ".", "--system", "cpu", "--out", "x", "--scenario", "Ofline"], "'Ofline'"),
    (["verify", ".", "--system", "cpu"], "no performance run at"),
    (["check-conf", "missing.conf"], "cannot read"),
    (["check-conf", "x.conf", "--kind", "audit"], "'audit' (allowed: user, mlperf)"),
])
def test_bad_values(args, fragment):
    code, output = invoke(*args)
    assert code == 2
    assert fragment in one_line_error(output)


def test_audit_config_prints_the_file():
    code, output = invoke("audit-config", "TEST04-B", "--benchmark", "ssd-resnet34")
    assert code == 0
    assert [ln for ln in output.splitlines() if not ln.startswith("#")] == [
        "*.*.mode = 2", "*.*.performance_issue_unique = 0", "*.*.performance_issue_same = 1",
        "*.*.performance_issue_same_index = 3"]


def test_check_conf_shows_the_settings_and_names_a_bad_line(tmp_path):
    good = tmp_path / "user.conf"
    good.write_text("# mine\n*.Server.target_qps = 777\n*.Server.min_duration = 60000\n")
    code, output = invoke("check-conf", good, "--scenario", "Server")
    assert code == 0, output
    assert "server_target_qps" in output and "777.0" in output
    assert "overridden" in output and "min_duration: 600000 -> 60000" in output
    bad = tmp_path / "bad.conf"
    bad.write_text("*.Server.target_qps = 777\n*.Server.target_qps: 5\n")
    code, output = invoke("check-conf", bad, "--scenario", "Server")
    assert code == 2
    assert f"{bad}:2: '*.Server.target_qps: 5': expected" in one_line_error(output)
