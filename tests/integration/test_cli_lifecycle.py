"""`raybench run` as a process on a user's machine: two runs on one results path, Ctrl-C,
SIGTERM and SIGKILL mid-run, and the ports a local run opens. Each test starts the real
command line (its own local Ray) and watches its process tree."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

RAYBENCH = [sys.executable, "-m", "raybench"]
# A Server run at a low rate: it stays mid-test for as long as the test needs.
LONG_RUN = ["run", "--engine", "null", "--scenario", "Server", "--target-qps", "100",
            "--duration", "120"]


def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*RAYBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})


def tree(proc: subprocess.Popen) -> list:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(processes: list) -> list:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def wait_mid_test(proc: subprocess.Popen, partial: Path, timeout_s: float = 180) -> list:
    """Wait until LoadGen runs (its actor process is up and writes into ``partial``);
    return every process of the run seen by then."""
    seen: dict[int, object] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for p in tree(proc):
            seen[p.pid] = p
        names = []
        for p in seen.values():
            try:
                names.append(" ".join(p.cmdline()))
            except psutil.Error:
                pass
        if partial.is_dir() and any("ray::loadgen" in n.lower() for n in names):
            time.sleep(2)  # LoadGen issuing queries
            for p in tree(proc):
                seen[p.pid] = p
            return list(seen.values())
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the run never reached its LoadGen test")


def test_two_concurrent_runs_on_one_path(tmp_path):
    """The embedded default twice on one --output, 1.5 s apart, on a cold stand-in cache:
    one run owns the results directory, the other is refused with one line; the owner's
    results are complete and its own; Ray's warnings stay in the log file."""
    env = {"RAYBENCH_CACHE": str(tmp_path / "cache")}
    args = ["run", "--duration", "1", "--output", str(tmp_path / "out")]
    first = start(args, env)
    time.sleep(1.5)
    second = start(args, env)
    runs = [first, second]
    outputs = [p.communicate(timeout=400) for p in runs]
    codes = sorted(p.returncode for p in runs)
    assert codes == [0, 2], outputs
    winner, loser = (0, 1) if first.returncode == 0 else (1, 0)
    refused = [ln for ln in outputs[loser][1].splitlines() if ln.strip()]
    assert refused[-1] == (f"Error: results directory {tmp_path / 'out' / 'cpu/resnet50/Offline'} is "
                           f"in use by another raybench run (pid {runs[winner].pid}); wait for it or "
                           "pass another --output"), outputs[loser]
    assert "Traceback" not in outputs[loser][1]
    root = tmp_path / "out" / "cpu" / "resnet50" / "Offline"
    settings = [root / "accuracy" / "raybench_settings.json",
                root / "performance" / "run_1" / "raybench_settings.json"]
    assert all(s.is_file() for s in settings)
    assert (root / "accuracy" / "accuracy.txt").is_file()
    assert not list(root.rglob("*.partial")) and not (root / "history").exists()
    assert "PASS" in outputs[winner][0]  # the accuracy test of the stand-in
    # Quiet by default: Ray's token warning is in the log file, not on the terminal.
    for _, stderr in outputs:
        assert "WARNING" not in stderr and "authentication_token" not in stderr, stderr
    assert "Token authentication is enabled" in (root / "raybench.log").read_text()
    unwrapped = outputs[winner][1].replace("\n", "")  # lines wrap at the terminal's width
    assert f"Ray's log: {root / 'raybench.log'};" in unwrapped


def listening(processes: list) -> list[tuple[str, str, int]]:
    found = []
    for p in alive(processes):
        try:
            for conn in p.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((p.name(), conn.laddr.ip, conn.laddr.port))
        except psutil.Error:
            pass
    return found


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_says_what_stopped_and_leaves_no_ray_behind(tmp_path, signum):
    """Ctrl-C (SIGINT) or SIGTERM mid-test: one line naming the test and its partial logs,
    exit 130/143, every process of the run gone. While it runs, the local Ray (GCS,
    raylet, workers, agents, metrics) listens on loopback addresses only."""
    out = tmp_path / "out"
    proc = start([*LONG_RUN, "--output", str(out)])
    partial = out / "cpu" / "resnet50" / "Server" / "performance" / "run_1.partial"
    processes = wait_mid_test(proc, partial)
    if signum == signal.SIGINT:
        sockets = listening(processes)
        assert len(sockets) >= 4, sockets  # GCS, raylet, workers, agents at least
        assert [s for s in sockets if not is_loopback(s[1])] == []
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, (stdout, stderr)
    last = [ln for ln in stderr.splitlines() if ln.strip()][-1]
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert last == (f"Error: interrupted ({name}) during the PerformanceOnly test of "
                    f"cpu/resnet50/Server; LoadGen's partial logs: {partial}; LoadGen, the "
                    "engines and the local Ray are stopped"), stderr
    assert "Traceback" not in stderr
    assert (partial / "mlperf_log_detail.txt").is_file()
    deadline = time.monotonic() + 15
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p.name() for p in alive(processes)] == []


def test_a_killed_run_leaves_no_ray_behind_for_long(tmp_path):
    """SIGKILL cannot be handled: Ray's GCS and raylet die with raybench, and raybench's
    watcher kills the agents Ray would leave listening for a minute."""
    proc = start([*LONG_RUN, "--output", str(tmp_path)])
    processes = wait_mid_test(proc, tmp_path / "cpu/resnet50/Server/performance/run_1.partial")
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p.name() for p in alive(processes)] == []


def test_a_disk_that_fills_up_during_the_run(small_disk):
    """Room for the start, not for LoadGen's logs and raybench's files: one line naming
    where the results were going, exit code 2, no result that looks complete."""
    from tests.conftest import fill

    out = small_disk / "results"
    out.mkdir()
    fill(small_disk, leave=24 * 1024)
    done = subprocess.run([*RAYBENCH, "run", "--engine", "null", "--duration", "1", "--output",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)
    last = [ln for ln in done.stderr.splitlines() if ln.strip()][-1]
    partial = out / "cpu" / "resnet50" / "Offline" / "performance" / "run_1.partial"
    assert last.startswith(f"Error: cannot write results: {partial}"), done.stderr
    assert "no space left on the device" in last and "Traceback" not in done.stderr
    assert not (partial.parent / "run_1").exists()
