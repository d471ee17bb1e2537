"""Sweep specs: validation, grid expansion and stable trial ids (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raybench.experiments.sweep import (SweepSpec, default_parallel, expand, load_spec, read_rows,
                                    run_request, trial_id, write_rows)
from raybench.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "launch" / "sweep-example.yaml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_example_spec_expands_to_its_cross_product():
    spec = load_spec(EXAMPLE)
    trials = expand(spec)
    assert len(trials) == 8
    assert len({t.trial_id for t in trials}) == 8
    assert all(t.params["engine"] == "sim" for t in trials)


def test_trial_ids_depend_only_on_parameters(tmp_path):
    a = expand(SweepSpec.model_validate({"base": {"engine": "sim"},
                                         "grid": {"batch_size": [8, 16], "scenario": ["Server"]}}))
    b = expand(SweepSpec.model_validate({"name": "other", "base": {"scenario": "Server"},
                                         "grid": {"batch_size": [16], "engine": ["sim"]}}))
    assert a[1].trial_id == b[0].trial_id
    assert trial_id({"x": 1, "y": 2}) == trial_id({"y": 2, "x": 1})


def test_grid_overrides_base_and_duplicates_collapse():
    spec = SweepSpec.model_validate({"base": {"batch_size": 4}, "grid": {"batch_size": [8, 8]}})
    (trial,) = expand(spec)
    assert trial.params == {"batch_size": 8}


@pytest.mark.parametrize("text,fragment", [
    ("grid: {bogus: [1]}", "grid.bogus"),
    ("base: {batch_size: 0}", "base.batch_size"),
    ("grid: {batch_size: []}", "grid.batch_size is empty"),
    ("colour: red", "colour"),
    ("grid: [1, 2", "not valid YAML"),
    ("- 1", "expected a mapping"),
])
def test_bad_specs_are_one_line_config_errors(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as err:
        load_spec(write(tmp_path, text))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_spec(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_run_request_moves_test_settings_into_overrides(tmp_path):
    req = run_request({"engine": "sim", "target_qps": 100.0, "duration": 1.0,
                       "batch_size": 8}, tmp_path)
    assert req.overrides().target_qps == 100.0 and req.overrides().duration == 1.0
    assert req.batch_size == 8 and req.output == tmp_path


def test_rows_round_trip(tmp_path):
    path = tmp_path / "sweep.csv"
    write_rows(path, {"a": {"trial": "a", "status": "ok", "metric": 1.5, "batch_size": 8}})
    rows = read_rows(path)
    assert rows["a"]["status"] == "ok" and rows["a"]["metric"] == "1.5"
    assert read_rows(tmp_path / "none.csv") == {}


def test_default_parallel_counts_whole_trials_per_node():
    trials = expand(SweepSpec.model_validate({"grid": {"engines": [2, 3]}}))
    nodes = [{"GPU": 8}, {"GPU": 8}, {"GPU": 4}]
    assert default_parallel(trials, nodes, lambda p: p["engines"]) == 2 + 2 + 1
    assert default_parallel(trials, [{"GPU": 1}], lambda p: p["engines"]) == 1
