"""`raybench data synth` and the stand-in cache."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from raybench.cli import app
from raybench.standins.cache import LAYOUT
from raybench.standins import cached_standin, read_standin


def test_synth_without_count_uses_the_standins_own(tmp_path):
    out = tmp_path / "rnnt"
    result = CliRunner().invoke(app, ["data", "synth", "rnnt", "--out", str(out)])
    assert result.exit_code == 0, result.output
    standin = read_standin(out)
    assert standin.data_dir == out / "build" / "preprocessed_data"
    assert json.loads((out / "standin.complete.json").read_text())["count"] == 16
    assert str(standin.model) in result.output.replace("\n", "")


def test_synth_bad_count_and_unknown_benchmark_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(app, ["data", "synth", "rnnt", "--out", str(tmp_path / "a"),
                                      "--count", "0"])
    assert result.exit_code == 2 and "greater than or equal to 1" in result.output
    result = CliRunner().invoke(app, ["data", "synth", "gnmt", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "gnmt" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "b").exists()


def test_cached_standins_of_another_layout_stay_and_leftovers_are_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYBENCH_CACHE", str(tmp_path))
    old = tmp_path / "standins" / "rnnt"  # layout 1 kept its stand-ins here
    (old / "preprocessed_data").mkdir(parents=True)
    (old / "standin.complete.json").write_text(json.dumps(
        {"benchmark": "rnnt", "count": 16, "seed": 0, "model": "rnnt.onnx",
         "data_dir": "preprocessed_data"}))
    leftover = tmp_path / "standins" / f"layout-{LAYOUT}" / "rnnt"
    (leftover / "build").mkdir(parents=True)  # an interrupted generation: no marker
    standin = cached_standin("rnnt")
    assert standin.data_dir == leftover / "build" / "preprocessed_data" and standin.model.is_file()
    assert cached_standin("rnnt") == standin
    assert (old / "standin.complete.json").is_file()  # another raybench's cache, untouched
