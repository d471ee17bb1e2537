"""Where the LoadGen actor's CPU goes during one run: per thread, per batch and per sample.

Runs one raybench test (any argument-table field as ``name=value``), and while it runs
reads the CPU time of every thread of its LoadGen actor from ``/proc`` over a window
(Linux). With py-spy installed (``pip install py-spy``; it needs ptrace rights), the
Python threads are named and the Python functions that hold the GIL are listed.

Usage: ``python bench/profile_loadgen.py [--at 6] [--seconds 5] engine=sim
system=SYS-420GP-TNAR_A100-SXM-80GBx8 scenario=Server target_qps=200000 duration=12``
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from raybench.run import RunRequest, execute, prepare

TICK = os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def loadgen_pid() -> int | None:
    """The LoadGen actor started by this process (a descendant of it)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline") as f:
                if not f.read().startswith("ray::LoadGenActor"):
                    continue
            pid = int(entry)
            while pid > 1:
                pid = _parent(pid)
                if pid == me:
                    return int(entry)
        except (OSError, ValueError):
            continue
    return None


def thread_cpu(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (command name, CPU ticks) for every thread of ``pid``."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(tid)] = (stat[stat.index("(") + 1:stat.rindex(")")],
                           int(fields[11]) + int(fields[12]))
    return found


def python_names(pid: int, spy: str | None) -> dict[int, str]:
    """tid -> Python thread name, from ``py-spy dump`` (empty without py-spy)."""
    if not spy:
        return {}
    dump = subprocess.run([spy, "dump", "-p", str(pid), "--nonblocking"],
                          capture_output=True, text=True).stdout
    names = {}
    for line in dump.splitlines():
        if line.startswith("Thread ") and ":" in line:
            try:
                names[int(line.split()[1], 0)] = line.split(":", 1)[1].strip().strip('"')
            except ValueError:
                pass
    return names


def role(comm: str, name: str) -> str:
    if name.startswith("raybench-lane"):
        return "lane readers (answers, completion, next batch)"
    if name.startswith("Dummy"):
        return "LoadGen's issue thread (LoadGen, issue callback, sends)"
    if name:
        return f"Python thread {name.rstrip('0123456789-')}"
    return f"Ray / LoadGen native threads ({comm})" if comm else "other"


def top_functions(raw: Path, count: int) -> list[tuple[float, str]]:
    """Share of GIL-holding samples per innermost Python function of a py-spy raw profile."""
    own: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith("thread (")]
        if frames:
            own[frames[-1].split(" (")[0]] += int(n)
            total += int(n)
    return [(100 * n / total, f) for f, n in own.most_common(count)] if total else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=float, default=6.0,
                        help="start the window this many seconds into the test")
    parser.add_argument("--seconds", type=float, default=5.0, help="window length")
    parser.add_argument("fields", nargs="+", help="argument-table fields as name=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray

    values = dict(f.split("=", 1) for f in args.fields)
    request = RunRequest.parse({"mode": "PerformanceOnly", "queries": 1,
                                "output": tempfile.mkdtemp(prefix="raybench-profile-"),
                                **values})
    spy = shutil.which("py-spy")
    window: dict = {}
    seen: list[tuple[float, int]] = []  # (time, samples completed) from progress snapshots

    def measure() -> None:
        pid = loadgen_pid()
        names = python_names(pid, spy)
        start = time.monotonic()
        before = thread_cpu(pid)
        raw = Path(tempfile.mkdtemp()) / "gil.txt"
        if spy:
            subprocess.run([spy, "record", "-p", str(pid), "-d", str(int(args.seconds)),
                            "-r", "200", "--gil", "-f", "raw", "-o", str(raw), "--nonblocking"],
                           capture_output=True)
        else:
            time.sleep(args.seconds)
        after, end = thread_cpu(pid), time.monotonic()
        window.update(before=before, after=after, start=start, wall=end - start, names=names,
                      raw=raw if raw.is_file() else None)

    def on_progress(snapshot) -> None:
        seen.append((time.monotonic(), snapshot.completed))
        if snapshot.elapsed_s >= args.at and "thread" not in window:
            window["thread"] = threading.Thread(target=measure, daemon=True)
            window["thread"].start()

    ray.init(address="local", num_cpus=max(9, os.cpu_count() or 1), num_gpus=8,
             logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
    try:
        test = execute(prepare(request), on_progress=on_progress).tests[0]
        if "thread" in window:
            window["thread"].join()
    finally:
        ray.shutdown()
    o, s = test.outcome, test.summary
    print(f"\n{request.scenario} {request.target_qps or ''} on {request.system} "
          f"({request.engine}, transport {o.transport}): {'VALID' if s.valid else 'INVALID'}, "
          f"{s.metric:,.0f} ({s.metric_name}), p99 {s.percentiles.get('99.00', 0) / 1e6:.2f} ms")
    print(f"whole test: LoadGen actor CPU {o.cpu_s:.2f} s over {o.wall_s:.1f} s = "
          f"{o.cpu_s / o.wall_s:.2f} cores; {o.cpu_s / o.completed * 1e6:.2f} us per sample, "
          f"{o.cpu_s / o.batches * 1e6:.0f} us per batch ({o.completed / o.batches:.0f} samples)")
    if "wall" not in window:
        print("(the test ended before the window; use a longer duration or a smaller --at)")
        return
    roles: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for tid, (comm, ticks) in window["after"].items():
        used = ticks - window["before"].get(tid, (comm, 0))[1]
        r = role(comm, window["names"].get(tid, ""))
        roles[r] += used
        count[r] += 1
    inside = [(t, n) for t, n in seen if window["start"] <= t <= window["start"] + window["wall"]]
    if len(inside) >= 2:  # the window's own rate: the tests' start and end are slower
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        batches_s = (n1 - n0) / (t1 - t0) / (o.completed / o.batches)
    else:
        batches_s = o.batches / o.wall_s
    print(f"\nwindow of {window['wall']:.1f} s from {args.at:g} s in "
          f"(about {batches_s:,.0f} batches/s): share of one core, CPU per batch")
    total = sum(roles.values()) / TICK / window["wall"]
    print(f"  {total:6.1%}  {total / batches_s * 1e6:7.0f} us/batch  the whole LoadGen actor")
    for r, ticks in roles.most_common():
        share = ticks / TICK / window["wall"]
        if share >= 0.001:
            print(f"  {share:6.1%}  {share / batches_s * 1e6:7.0f} us/batch  {r} x{count[r]}")
    if window["raw"] is not None:
        print("\nPython holding the GIL (py-spy --gil), innermost function:")
        for share, func in top_functions(window["raw"], 15):
            print(f"  {share:5.1f}%  {func}")


if __name__ == "__main__":
    main()
