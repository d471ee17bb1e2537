"""raybench on a Ray the user already runs: a real `ray start --head` (on 127.0.0.1, its own
temp dir and ports, token authentication as Ray sets it up), joined through $RAY_ADDRESS
and through `ray job submit --working-dir`. The run's named actors and its named job are
on that cluster, and raybench starts no Ray of its own."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

BIN = Path(sys.executable).parent
NULL_RUN = ["run", "--engine", "null", "--duration", "2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """A Ray head listening on 127.0.0.1 only (Ray's single-host mode), stopped after."""
    temp = tempfile.mkdtemp(prefix="rbhead-")  # short: Ray's socket paths have a length limit
    gcs, dashboard = free_port(), free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--port", str(gcs), "--temp-dir", temp,
         "--num-cpus", "4", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
         "--ray-client-server-port", str(free_port()),
         "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, "ray start --head exited"
            if Path(temp, "ray_current_cluster").is_file() and query(url, "nodes") == 1:
                break
            time.sleep(2)
        else:
            pytest.fail("the Ray head did not come up")
        yield {"address": f"127.0.0.1:{gcs}", "dashboard": url}
    finally:
        processes = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for p in processes:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, left = psutil.wait_procs(processes, timeout=5)  # then kill what ignores SIGTERM
        for p in left:
            p.kill()
        shutil.rmtree(temp, ignore_errors=True)


STATE = """
import json, sys
from ray.job_submission import JobSubmissionClient
from ray.util.state import list_actors, list_nodes
url, what = sys.argv[1], sys.argv[2]
if what == "nodes":
    print(json.dumps(len(list_nodes(address=url))))
elif what == "actors":
    print(json.dumps([[a.name, a.class_name, a.repr_name, a.job_id]
                      for a in list_actors(address=url, detail=True, limit=1000)]))
else:
    print(json.dumps([[j.job_id, j.submission_id, str(j.status), (j.metadata or {}).get("job_name")]
                      for j in JobSubmissionClient(url).list_jobs()]))
"""


def query(url: str, what: str):
    """Ray's state API on the head (in a process of its own, with the head's token)."""
    done = subprocess.run([sys.executable, "-c", STATE, url, what], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RAY_AUTH_MODE": "token"})
    return json.loads(done.stdout) if done.returncode == 0 else None


def client_env(head) -> dict:
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    return env


def run_watching(args: list[str], env: dict) -> tuple[int, str, str, set[str]]:
    """Run a command; also return the names of every process it started."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    names: set[str] = set()
    while proc.poll() is None:
        try:
            names.update(p.name() for p in psutil.Process(proc.pid).children(recursive=True))
        except psutil.Error:
            pass
        time.sleep(0.3)
    stdout, stderr = proc.communicate()
    return proc.returncode, stdout, stderr, names


def test_ray_address_joins_the_running_cluster(head, tmp_path):
    env = {**client_env(head), "RAY_ADDRESS": head["address"]}
    code, stdout, stderr, started = run_watching(
        [sys.executable, "-m", "raybench", *NULL_RUN, "--output", str(tmp_path)], env)
    assert code == 0, stderr
    assert f"Ray: the Ray cluster at {head['address']} (from RAY_ADDRESS)" in stderr
    assert f"Ray dashboard: {head['dashboard']} (token: `ray get-auth-token`)" in stderr
    assert not started & {"gcs_server", "raylet"}, started  # no Ray of its own
    assert query(head["dashboard"], "nodes") == 1
    jobs = [j for j in query(head["dashboard"], "jobs") if j[3] == "raybench run cpu/resnet50/Offline"]
    assert len(jobs) == 1 and jobs[0][1] is None  # a driver job, named
    actors = [a for a in query(head["dashboard"], "actors") if a[3] == jobs[0][0]]
    names = sorted(a[0] for a in actors)
    host = socket.gethostname()
    assert names == [f"engine-0@{host}", f"engine-1@{host}",
                     "loadgen-cpu/resnet50/Offline/performance/run_1"], actors
    assert sorted(a[2] for a in actors if a[1] == "EngineActor") == [
        f"engine-0-cpu@{host}", f"engine-1-cpu@{host}"]


def test_ray_job_submit_runs_on_the_jobs_cluster(head, tmp_path):
    """`ray job submit --working-dir` (the working dir is uploaded as the job's runtime
    environment): the job's command joins the job's cluster instead of starting a Ray."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("a job's working directory\n")
    submission = f"raybench-test-{os.getpid()}"
    env = {**client_env(head), "RAY_API_SERVER_ADDRESS": head["dashboard"]}
    code, stdout, stderr, _ = run_watching(
        [str(BIN / "ray"), "job", "submit", "--submission-id", submission, "--working-dir",
         str(work), "--", sys.executable, "-m", "raybench", *NULL_RUN, "--output",
         str(tmp_path / "out")], env)
    assert code == 0, (stdout, stderr)
    logs = stdout + stderr
    assert f"Ray: the Ray cluster at {head['address']} (from RAY_ADDRESS)" in logs
    assert "the local Ray" not in logs
    job = next(j for j in query(head["dashboard"], "jobs") if j[1] == submission)
    assert job[2] == "SUCCEEDED"
    actors = [a for a in query(head["dashboard"], "actors") if a[3] == job[0]]
    assert sorted(a[1] for a in actors) == ["EngineActor", "EngineActor", "LoadGenActor"], actors
    assert (tmp_path / "out/cpu/resnet50/Offline/performance/run_1/mlperf_log_summary.txt").is_file()
