"""Faults during LoadGen's QSL calls: an engine killed while it loads samples, a sample
file gone bad mid-run. An accuracy run on a resnet50 stand-in larger than the
performance sample count (1,024) makes LoadGen load and unload sets throughout."""

from __future__ import annotations

import json
import os
import signal
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from raybench.cli import app
from raybench.errors import RunError
from raybench.results.loadgen_log import ACCURACY_LOG
from raybench.run import RunRequest, execute, prepare
from raybench.standins import read_standin

COUNT = 1536  # two loadable sets: 1,024 and 512


@pytest.fixture(scope="module")
def large_standin(tmp_path_factory):
    out = tmp_path_factory.mktemp("standin") / "resnet50"
    result = CliRunner().invoke(app, ["data", "synth", "resnet50", "--out", str(out),
                                      "--count", str(COUNT)])
    assert result.exit_code == 0, result.output
    return read_standin(out)


def linked_copy(standin, where):
    """The stand-in's tree with every file a link to the original: files can be replaced."""
    root = standin.data_dir.parents[1]  # OUT/build/preprocessed_data -> OUT
    copy = where / "standin"
    for path in root.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return copy / standin.data_dir.relative_to(root)


def accuracy_request(standin, tmp_path, data_dir=None, **kw) -> RunRequest:
    return RunRequest(model=standin.model, data_dir=data_dir or standin.data_dir,
                      output=tmp_path / "results", system="cpu", scenario="Offline",
                      mode="AccuracyOnly", engines=2, track_ids=True, **kw)


@pytest.fixture
def fast_progress(monkeypatch):
    """Progress snapshots every 20 ms, so a test sees a QSL load under way."""
    import raybench.run.lifecycle

    monkeypatch.setattr(raybench.run.lifecycle, "PROGRESS_S", 0.02)


@pytest.mark.parametrize("transport", ["calls", "graph"])
def test_engine_killed_during_a_sample_load_loses_no_sample(ray_cluster, large_standin,
                                                            tmp_path, fast_progress, transport):
    import ray

    killed = threading.Event()
    pids: list[int] = []

    def on_ready(handles):
        pids.append(ray.get(handles[0].info.remote())["pid"])

    def on_progress(p):
        if not killed.is_set() and p.in_qsl and p.qsl_calls % 2 == 1:  # odd calls load
            os.kill(pids[0], signal.SIGKILL)  # engine 0's process; Ray restarts it
            killed.set()

    report = execute(prepare(accuracy_request(large_standin, tmp_path, transport=transport)),
                     on_ready=on_ready, on_progress=on_progress)
    assert killed.is_set()
    (test,) = report.tests
    outcome = test.outcome
    assert outcome.fatal is None and outcome.drained_error is None
    assert outcome.completed == outcome.received == COUNT
    entries = json.loads((test.directory / ACCURACY_LOG).read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(COUNT))  # each exactly once
    assert test.accuracy.value == 100.0


def test_a_sample_file_gone_bad_mid_run_ends_the_test_naming_it(ray_cluster, large_standin,
                                                               tmp_path, fast_progress):
    data_dir = linked_copy(large_standin, tmp_path)
    files = sorted(data_dir.rglob("*.npy"))
    spoiled = threading.Event()

    def on_progress(p):  # the first set is loaded and running: spoil every file
        if not spoiled.is_set() and p.completed > 0 and not p.in_qsl:
            for path in files:
                path.unlink()
                np.save(path, np.zeros((3, 224, 224), np.float32))  # wrong dtype
            spoiled.set()

    req = accuracy_request(large_standin, tmp_path, data_dir=data_dir)
    with pytest.raises(RunError) as caught:
        execute(prepare(req), on_progress=on_progress)
    assert spoiled.is_set()
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot load samples" in message and "expected int8" in message
    assert str(data_dir) in message and ".npy" in message


def test_a_truncated_sample_file_is_one_line_and_exit_2(ray_cluster, large_standin, tmp_path):
    data_dir = linked_copy(large_standin, tmp_path)
    bad = sorted(data_dir.rglob("*.npy"))[COUNT - 1]
    blob = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(blob[:len(blob) // 2])
    out = CliRunner().invoke(app, [
        "run", "--model", str(large_standin.model), "--data-dir", str(data_dir),
        "--system", "cpu", "--scenario", "Offline", "--mode", "AccuracyOnly", "--engines", "2",
        "--output", str(tmp_path / "results")], env={"COLUMNS": "1000"})
    assert out.exit_code == 2, out.output
    errors = [line for line in out.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, out.output
    assert f"{bad}: unreadable or truncated .npy" in errors[0]
    assert "died" not in out.output and "Traceback" not in out.output
