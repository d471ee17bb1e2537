"""Which Ray a command uses, and bad addresses answered in seconds (no Ray is started)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from raybench.errors import ConfigError
from raybench.run import session
from raybench.run.session import check_listen, cluster_address, probe_address


def test_address_comes_from_the_option_then_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) == (None, "local")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # as `ray job submit` sets it
    assert cluster_address(None) == ("10.0.0.5:6379", "RAY_ADDRESS")
    assert cluster_address("auto") == ("auto", "--address")
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert cluster_address(None) == (None, "local")


@pytest.mark.parametrize("address,fragment", [
    ("127.0.0.1:1", "127.0.0.1:1: no Ray cluster answers there (connection refused)"),
    ("notahost", "--address notahost: expected auto"),
    ("127.0.0.1:notaport", "port 'notaport' is not a number"),
    ("127.0.0.1:70000", "port '70000' is not a number from 1 to 65535"),
    ("notahost.invalid:6379", "cannot resolve host 'notahost.invalid'"),
    ("http://127.0.0.1:8265", "a dashboard URL is for `ray job submit`"),
])
def test_bad_addresses_fail_in_seconds(address, fragment):
    start = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        probe_address(address)
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)
    assert time.monotonic() - start < 15


def test_auto_without_a_ray_started_on_this_host(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where `ray start` records its address
    with pytest.raises(ConfigError, match="--address auto: no Ray was started on this host"):
        probe_address("auto")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")  # a stale record
    with pytest.raises(ConfigError, match=r"auto \(127.0.0.1:1\): no Ray cluster answers"):
        probe_address("auto")


def test_a_server_that_is_not_a_ray_head():
    """Something accepts the connection but does not speak Ray's GCS protocol."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def accept() -> None:
        try:
            while True:
                accepted.append(server.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        with pytest.raises(ConfigError, match="something answers there, but not a Ray head's GCS"):
            probe_address(f"127.0.0.1:{server.getsockname()[1]}", timeout_s=2)
    finally:
        server.close()
        for conn in accepted:
            conn.close()


def test_listen_accepts_this_hosts_addresses_only():
    assert check_listen(None) == "127.0.0.1"
    assert check_listen("localhost") == "127.0.0.1"
    assert check_listen("0.0.0.0") == "0.0.0.0"
    with pytest.raises(ConfigError, match=r"--listen 203.0.113.7: not an address of this host"):
        check_listen("203.0.113.7")
    with pytest.raises(ConfigError, match=r"--listen nohost.invalid: not an address"):
        check_listen("nohost.invalid")


def test_the_watcher_kills_what_it_was_given_once_its_pipe_closes():
    """reaper.py kills the listed processes still alive with the same start time, and
    nothing else (a pid with another start time is a different process)."""
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        entries = dict(session._descendants(os.getpid()))
        lines = [f"{p.pid} {entries[p.pid]}" for p in sleepers[:2]]
        lines.append(f"{sleepers[2].pid} 1")  # a reused pid: start time differs
        reaper = subprocess.Popen([sys.executable, str(session._REAPER)],
                                  stdin=subprocess.PIPE, start_new_session=True)
        reaper.stdin.write(("\n".join(lines) + "\n").encode())
        reaper.stdin.flush()
        time.sleep(0.5)
        assert all(p.poll() is None for p in sleepers)  # nothing before the pipe closes
        reaper.stdin.close()
        assert reaper.wait(10) == 0
        assert [p.wait(10) for p in sleepers[:2]] == [-9, -9]
        assert sleepers[2].poll() is None
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
