"""Stops what is left of a local Ray once the raybench process that started it is gone.

Run as a script (``python reaper.py``, standard library only, nothing of raybench
imported) by :mod:`raybench.run.session`, in a session of its own. It reads
``PID START_TIME`` lines on stdin, the processes of the local Ray, and waits for the end
of stdin: raybench closes the pipe after ``ray.shutdown()``, and the operating system
closes it when raybench dies, however it dies. Then it sends SIGKILL to each of those
processes that is still alive and still the same process (same start time, so a reused
pid is never hit).
"""

from __future__ import annotations

import os
import signal
import sys


def stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, ...), or
    None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """The start time (clock ticks after boot) of a live process, or None."""
    fields = stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def reap(lines: list[str]) -> int:
    """Kill the listed processes still alive; return how many were."""
    killed = 0
    for line in lines:
        try:
            pid, started = int(line.split()[0]), line.split()[1]
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def main() -> None:
    """Read the processes, wait for the end of stdin, kill what is left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap(sys.stdin.read().splitlines())


if __name__ == "__main__":
    main()
