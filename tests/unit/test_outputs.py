"""The results directory: one run at a time, nothing lost, paths checked before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from raybench.errors import ConfigError, RunError
from raybench.run.outputs import HISTORY, JOURNAL, ResultDir, check_output_dir


def write_test(results: ResultDir, name: str, text: str):
    partial = results.start_test(name)
    (partial / "mlperf_log_summary.txt").write_text(text)
    return results.finish_test(name)


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    with ResultDir(tmp_path / "r"):
        with pytest.raises(RunError, match=rf"in use by another raybench run \(pid {os.getpid()}\)"):
            ResultDir(tmp_path / "r").acquire()
    with ResultDir(tmp_path / "r"):  # released: free again
        pass


def test_an_earlier_result_goes_to_history_whole(tmp_path):
    with ResultDir(tmp_path) as results:
        first = write_test(results, "performance/run_1", "first")
        second = write_test(results, "performance/run_1", "second")
    assert first == second and second.joinpath("mlperf_log_summary.txt").read_text() == "second"
    kept = list((tmp_path / HISTORY).glob("*/performance/run_1/mlperf_log_summary.txt"))
    assert [p.read_text() for p in kept] == ["first"]
    assert not list(tmp_path.rglob("*.partial")) and not (tmp_path / JOURNAL).exists()


def test_a_partial_left_by_an_interrupted_run_is_kept_in_history(tmp_path):
    with ResultDir(tmp_path) as results:
        results.start_test("accuracy").joinpath("mlperf_log_detail.txt").write_text("cut short")
    with ResultDir(tmp_path) as results:
        fresh = results.start_test("accuracy")
        assert not any(fresh.iterdir())
    kept = list((tmp_path / HISTORY).glob("*/accuracy.partial/mlperf_log_detail.txt"))
    assert [p.read_text() for p in kept] == ["cut short"]


@pytest.mark.parametrize("renames_done", [0, 1])
def test_a_run_killed_between_the_renames_loses_nothing(tmp_path, renames_done):
    """A process dies (os._exit) after ``renames_done`` of the two renames that put a
    result in place; the next run on the directory completes the move."""
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from raybench.run.outputs import ResultDir

        results = ResultDir(Path({str(tmp_path)!r}))
        results.acquire()
        for text in ("old", "new"):
            results.start_test("performance/run_1").joinpath("summary").write_text(text)
            if text == "new":
                real_rename, count = os.rename, [0]

                def rename(src, dst):
                    if str(dst).endswith(".raybench.moving"):  # the journal itself
                        return real_rename(src, dst)
                    if count[0] == {renames_done}:
                        os._exit(9)
                    count[0] += 1
                    real_rename(src, dst)

                os.rename = rename
            results.finish_test("performance/run_1")
    """)
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert died.returncode == 9, died.stderr
    assert (tmp_path / JOURNAL).is_file()
    with ResultDir(tmp_path):
        pass
    assert (tmp_path / "performance/run_1/summary").read_text() == "new"
    assert [p.read_text() for p in (tmp_path / HISTORY).glob("*/performance/run_1/summary")] == ["old"]
    assert not (tmp_path / JOURNAL).exists() and not list(tmp_path.rglob("*.partial"))


def test_an_unreadable_journal_is_dropped(tmp_path):
    (tmp_path / JOURNAL).write_text("{not json")
    with ResultDir(tmp_path):
        pass
    assert not (tmp_path / JOURNAL).exists()
    (tmp_path / JOURNAL).write_text(json.dumps({"name": "accuracy", "keep": None}))
    with ResultDir(tmp_path):  # nothing to move: both renames were done
        pass
    assert not (tmp_path / JOURNAL).exists()


def test_output_paths_that_cannot_hold_results(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"^--output .*a_file: not a directory$"):
        check_output_dir(a_file)
    with pytest.raises(ConfigError, match=r"a_file/sub/dir: .*a_file is not a directory$"):
        check_output_dir(a_file / "sub" / "dir")
    with pytest.raises(ConfigError, match=r"^--output /dev/null: not a directory$"):
        check_output_dir("/dev/null")
    with pytest.raises(ConfigError, match=r"^results directory .*a_file/x: .*a_file is not a directory"):
        ResultDir(a_file / "x").acquire()
    assert check_output_dir(tmp_path / "new" / "dir").is_dir()
    assert list((tmp_path / "new" / "dir").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_output(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match=r"locked.*permission denied"):
        check_output_dir(locked / "results")


def test_a_full_disk_is_found_before_anything_starts(small_disk):
    from tests.conftest import fill

    fill(small_disk)
    with pytest.raises(ConfigError, match=rf"^--output {small_disk}/results: cannot write there: "
                       rf"{small_disk}/results: no space left on the device$"):
        check_output_dir(small_disk / "results")
