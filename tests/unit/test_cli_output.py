"""Output that fits 80 columns and machine-readable output, without Ray: systems tables
and JSON, and the run's progress line with its ETA."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from raybench.actors.loadgen import Progress
from raybench.cli.run import ProgressLine
from raybench.cli.tables import Column, fold, make_table
from raybench.config.systems import system_ids
from raybench.run import RunRequest, prepare


def _cli(*args: str):
    from raybench.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def assert_fits(output: str) -> None:
    assert "…" not in output
    too_long = [line for line in output.splitlines() if len(line.rstrip()) > 80]
    assert not too_long


def test_systems_list_fits_and_shows_whole_ids():
    out = _cli("systems", "list")
    assert out.exit_code == 0, out.output
    assert_fits(out.output)
    for system_id in system_ids():
        assert system_id in out.output  # ids are never broken: people copy them


@pytest.mark.parametrize("system_id", ["SYS-420GP-TNAR_A100-SXM-80GBx8", "cpu", "H200x1"])
def test_systems_show_fits_and_states_each_derivation_once(system_id):
    out = _cli("systems", "show", system_id)
    assert out.exit_code == 0, out.output
    assert_fits(out.output)
    assert out.output.count("is solved from") <= 1  # the sim derivation paragraph, once


def test_systems_json_parses():
    listed = json.loads(_cli("systems", "list", "--json").stdout)
    assert {s["id"] for s in listed} == set(system_ids())
    shown = json.loads(_cli("systems", "show", "SYS-420GP-TNAR_A100-SXM-80GBx8", "-b",
                            "resnet50", "--json").stdout)
    assert shown["engines"] == 8
    assert [(s["scenario"], s["batch_size"]) for s in shown["settings"]] == [
        ("Server", 128), ("Offline", 2048)]
    detected = json.loads(_cli("systems", "detect", "--json").stdout)
    assert detected["system"] in system_ids()


def test_fold_breaks_only_after_separators():
    assert fold("SYS-420GP-TNAR_A100-SXM-80GBx8", 16) == "SYS-420GP-TNAR_\nA100-SXM-80GBx8"
    assert fold("a/b/c", 80) == "a/b/c"
    assert fold("nobreakpossiblehere", 5) == "nobreakpossiblehere"


def test_table_hoists_constant_columns_and_hides_wide_ones():
    from rich.console import Console

    console = Console(width=80, record=True)
    console.print(make_table([Column("system", hoist=True), Column("qps", "right"),
                              Column("detail", wide=True)],
                             [["cpu", "1", "x"], ["cpu", "2", "y"]],
                             title="runs"))
    text = console.export_text()
    assert text.splitlines()[0].strip() == "runs · cpu" and "detail" not in text


def progress(prepared, mode, elapsed, completed, received, in_qsl=False):
    return Progress(mode, elapsed, prepared.settings.values["min_duration_ms"] / 1000,
                    received, completed, 2, 0, in_qsl=in_qsl)


def test_server_eta_is_the_minimum_duration_left_at_the_target_rate():
    prepared = prepare(RunRequest(engine="null", system="cpu", scenario="Server", duration=10,
                                  target_qps=1000))
    line = ProgressLine(prepared)
    for t in (1, 2, 3, 4):
        text = line.line(progress(prepared, "PerformanceOnly", t, 1000 * t, 1000 * t), 80).plain
    assert "40%" in text and "ETA 6 s" in text and "1,000/s" in text
    assert len(text) <= 79


def test_offline_eta_follows_the_completion_rate():
    prepared = prepare(RunRequest(engine="null", system="cpu", scenario="Offline", duration=1))
    line = ProgressLine(prepared)
    line.line(progress(prepared, "PerformanceOnly", 1, 0, 10_000), 80)
    text = line.line(progress(prepared, "PerformanceOnly", 3, 4_000, 10_000), 80).plain
    assert "ETA 3 s" in text and "2,000/s" in text  # 6,000 left at 2,000/s


def test_accuracy_eta_counts_every_sample_and_narrow_lines_drop_details():
    prepared = prepare(RunRequest(engine="null", system="cpu", scenario="Server", duration=600,
                                  mode="PerformanceOnly"))
    line = ProgressLine(prepared)
    line.line(progress(prepared, "AccuracyOnly", 1, 0, 0), 80)
    # 1,024 samples (the null engine's performance sample count), 512 done at 512/s
    assert "ETA 1 s" in line.line(progress(prepared, "AccuracyOnly", 2, 512, 512), 80).plain
    text = line.line(progress(prepared, "AccuracyOnly", 2, 512, 512), 40).plain
    assert text.startswith("Accuracy") and len(text) <= 39


def test_the_line_says_when_loadgen_waits_for_a_sample_load():
    prepared = prepare(RunRequest(engine="null", system="cpu", scenario="Offline", duration=1))
    line = ProgressLine(prepared)
    assert "loading samples" not in line.line(progress(prepared, "AccuracyOnly", 1, 0, 0), 80).plain
    text = line.line(progress(prepared, "AccuracyOnly", 2, 512, 512, in_qsl=True), 80).plain
    assert "ETA" in text and "loading samples" in text and len(text) <= 79
