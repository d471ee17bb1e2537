"""Hostile input to the CLI: one line naming the value, exit code 2, before Ray starts."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from raybench.cli import app

runner = CliRunner()


def one_line_error(args: list[str], *fragments: str, env: dict | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def ray_started() -> bool:
    import ray

    return ray.is_initialized()


NULL_RUN = ["run", "--engine", "null", "--duration", "1"]


def test_an_address_where_no_cluster_answers_fails_within_seconds(tmp_path):
    start = time.monotonic()
    one_line_error([*NULL_RUN, "--output", str(tmp_path), "--address", "127.0.0.1:1"],
                   "--address 127.0.0.1:1", "no Ray cluster answers")
    assert time.monotonic() - start < 30
    assert not ray_started()


@pytest.mark.parametrize("address,fragment", [
    ("notahost", "expected auto"),
    ("127.0.0.1:notaport", "'notaport' is not a number"),
])
def test_malformed_addresses(tmp_path, address, fragment):
    one_line_error([*NULL_RUN, "--output", str(tmp_path), "--address", address], fragment)


def test_auto_with_no_cluster(tmp_path):
    one_line_error([*NULL_RUN, "--output", str(tmp_path / "out"), "--address", "auto"],
                   "--address auto: no Ray was started on this host",
                   env={"RAY_TMPDIR": str(tmp_path), "RAY_ADDRESS": ""})


def test_ray_address_from_the_environment_is_probed_too(tmp_path):
    one_line_error([*NULL_RUN, "--output", str(tmp_path)], "RAY_ADDRESS 127.0.0.1:1",
                   env={"RAY_ADDRESS": "127.0.0.1:1"})


def test_output_that_is_a_file(tmp_path):
    a_file = tmp_path / "results"
    a_file.write_text("not a directory")
    one_line_error([*NULL_RUN, "--output", str(a_file)], f"--output {a_file}: not a directory")
    one_line_error([*NULL_RUN, "--output", "/dev/null"], "--output /dev/null: not a directory")
    assert a_file.read_text() == "not a directory"
    assert not ray_started()


def test_listen_on_an_address_of_another_host(tmp_path):
    one_line_error([*NULL_RUN, "--output", str(tmp_path), "--listen", "203.0.113.7"],
                   "--listen 203.0.113.7: not an address of this host")
    assert not ray_started()


@pytest.mark.parametrize("value,fragment", [
    ("inf", "--duration inf: must be a finite number"),
    ("1e300", "--duration 1e+300: must be <= 604800"),
])
def test_durations_loadgen_cannot_take(value, fragment, tmp_path):
    one_line_error([*NULL_RUN[:3], "--output", str(tmp_path), "--duration", value], fragment)


def test_a_query_count_beyond_64_bits(tmp_path):
    one_line_error([*NULL_RUN, "--output", str(tmp_path), "--queries", "9" * 23],
                   "--queries 99999999999999999999999: must be <=")


@pytest.mark.parametrize("content,fragment", [
    (b"\xff\xfe\x00\x01garbage", "(byte 0 is not UTF-8)"),
    (b':::MLLOG {"key": "result_validity", "value": \n', "malformed :::MLLOG line"),
    (None, "detail log missing"),
])
def test_report_on_corrupt_loadgen_logs(tmp_path, content, fragment):
    run_dir = tmp_path / "cpu" / "resnet50" / "Offline" / "performance" / "run_1"
    run_dir.mkdir(parents=True)
    (run_dir / "mlperf_log_summary.txt").write_bytes(b"\xff\xfe garbage")
    if content is not None:
        (run_dir / "mlperf_log_detail.txt").write_bytes(content)
    one_line_error(["report", str(tmp_path), "--no-plots"], "mlperf_log_detail.txt", fragment)


@pytest.mark.parametrize("content,fragment", [
    (bytes(range(256)), "not a YAML text file (byte 128 is not UTF-8)"),
    (b"description: \x00\x01\x02\x03", "not valid YAML"),
])
def test_a_systems_file_with_binary_content(tmp_path, content, fragment):
    (tmp_path / "binary.yaml").write_bytes(content)
    one_line_error(["systems", "show", "binary"], "binary.yaml", fragment,
                   env={"RAYBENCH_SYSTEMS_DIR": str(tmp_path)})
    one_line_error([*NULL_RUN, "--system", "binary", "--output", str(tmp_path / "out")],
                   "binary.yaml", fragment, env={"RAYBENCH_SYSTEMS_DIR": str(tmp_path)})


def test_quiet_and_verbose_exclude_each_other():
    one_line_error(["--quiet", "--verbose", "systems", "list"], "--quiet", "--verbose")


def test_listen_with_a_cluster_address(tmp_path):
    one_line_error([*NULL_RUN, "--output", str(tmp_path), "--address", "127.0.0.1:1",
                    "--listen", "0.0.0.0"], "--listen 0.0.0.0: applies to a local Ray only")
