"""Soak test: a random engine killed at a random time in each of many runs.

Every run is a real LoadGen test on one local Ray, with ``track_ids`` (every sample id
checked complete exactly once); they cycle through Offline and Server, performance and
accuracy, and the two transports. Performance runs use four ``sim`` engines on an
8-GPU system; accuracy runs use two onnxruntime engines on a resnet50 stand-in larger
than the performance sample count (LoadGen loads and unloads sample sets throughout).
In each run a timer SIGKILLs a random engine's process (Ray restarts it) at a random
moment, from LoadGen's start to past the middle of the test.

The table: each run, whether it completed, the samples lost (issued, never completed)
and doubled (completed more than once), the samples sent again, and whether the test ran
a second time on actor calls (its LoadGen actor died while an engine restarted; see
``raybench.run.lifecycle``). Everything must
complete with nothing lost or doubled.

Usage: ``python bench/soak.py [--runs 20] [--seed 0] [--scenario S] [--mode M] [--transport T]``
(the last three keep only the runs of that kind).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from raybench.errors import RaybenchError
from raybench.results.loadgen_log import ACCURACY_LOG
from raybench.run import RunRequest, execute, prepare
from raybench.standins import read_standin

GPU_SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"
COUNT = 1536  # accuracy stand-in: two loadable sets of LoadGen's 1,024
KINDS = [(scenario, mode, transport) for mode in ("PerformanceOnly", "AccuracyOnly")
         for scenario in ("Offline", "Server") for transport in ("calls", "graph")]


def make_standin(out: Path):
    subprocess.run([sys.executable, "-m", "raybench", "data", "synth", "resnet50", "--out",
                    str(out), "--count", str(COUNT)], check=True, capture_output=True)
    return read_standin(out)


def request(scenario: str, mode: str, transport: str, standin, output: Path) -> RunRequest:
    common = dict(scenario=scenario, mode=mode, transport=transport, output=output,
                  track_ids=True, queries=1)
    if mode == "PerformanceOnly":
        return RunRequest(system=GPU_SYSTEM, engine="sim", engines=4, batch_size=64,
                          duration=3.0, target_qps=150_000 if scenario == "Offline" else 1500,
                          **common)
    return RunRequest(system="cpu", model=standin.model, data_dir=standin.data_dir, engines=2,
                      target_qps=600 if scenario == "Server" else None, **common)


class Killer:
    """SIGKILLs one engine's process ``after_s`` seconds after the engines are up."""

    def __init__(self, rng: random.Random, after_s: float):
        self.rng = rng
        self.after_s = after_s
        self.engine = None
        self.at_s = None
        self.timer = None

    def on_ready(self, handles) -> None:
        self.timer = threading.Timer(self.after_s, self._kill, args=(handles,))
        self.timer.daemon = True
        self.start = time.monotonic()
        self.timer.start()

    def _kill(self, handles) -> None:
        import ray

        engine = self.rng.randrange(len(handles))
        try:
            pid = ray.get(handles[engine].info.remote(), timeout=10)["pid"]
            os.kill(pid, signal.SIGKILL)
        except Exception:  # the run is over and its engines are gone
            return
        self.engine, self.at_s = engine, time.monotonic() - self.start

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()


def soak_run(number: int, kind: tuple, rng: random.Random, standin, output: Path) -> dict:
    scenario, mode, transport = kind
    killer = Killer(rng, rng.uniform(0.5, 3.5))
    row = dict(run=number, scenario=scenario, mode=mode, transport=transport, ok=False,
               lost="-", doubled="-", retried="-", rerun="-", error="")
    try:
        report = execute(prepare(request(scenario, mode, transport, standin, output / str(number))),
                         on_ready=killer.on_ready)
    except RaybenchError as exc:
        row["error"] = str(exc)
        return row
    finally:
        killer.cancel()
        row["killed"] = "-" if killer.engine is None else f"{killer.engine} @ {killer.at_s:.1f} s"
    (test,) = report.tests
    outcome = test.outcome
    if mode == "AccuracyOnly":
        seen = [e["qsl_idx"] for e in json.loads((test.directory / ACCURACY_LOG).read_text())]
        lost, doubled = COUNT - len(set(seen)), len(seen) - len(set(seen))
    else:
        lost = max(0, outcome.received - outcome.completed)
        doubled = max(0, outcome.completed - outcome.received)
    row.update(ok=True, lost=lost, doubled=doubled, retried=outcome.retried,
               samples=outcome.completed, rerun="yes" if outcome.rerun else "no")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", choices=sorted({k[0] for k in KINDS}))
    parser.add_argument("--mode", choices=sorted({k[1] for k in KINDS}))
    parser.add_argument("--transport", choices=sorted({k[2] for k in KINDS}))
    args = parser.parse_args()
    kinds = [k for k in KINDS if all(want in (None, have) for want, have in
                                     zip((args.scenario, args.mode, args.transport), k))]

    import ray

    rng = random.Random(args.seed)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="raybench-soak-") as tmp:
        tmp = Path(tmp)
        standin = make_standin(tmp / "standin")
        ray.init(address="local", num_cpus=max(5, os.cpu_count() or 1), num_gpus=8,
                 include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        rows = []
        try:
            for number in range(1, args.runs + 1):
                started = time.monotonic()
                row = soak_run(number, kinds[(number - 1) % len(kinds)], rng, standin,
                               tmp / "results")
                row["wall_s"] = time.monotonic() - started
                rows.append(row)
                print(f"{row['run']:>3}  {row['scenario']:<7}  {row['mode']:<15}  "
                      f"{row['transport']:<5}  killed {row['killed']:<11}  "
                      f"{'completed' if row['ok'] else 'FAILED':<9}  "
                      f"samples {row.get('samples', '-'):>6}  lost {row['lost']:>3}  "
                      f"doubled {row['doubled']:>3}  retried {row['retried']:>5}  "
                      f"rerun {row['rerun']:<3}  "
                      f"{row['wall_s']:5.1f} s  {row['error']}", flush=True)
        finally:
            ray.shutdown()
    completed = sum(r["ok"] for r in rows)
    killed = sum(r["killed"] != "-" for r in rows)
    lost = sum(r["lost"] for r in rows if r["ok"])
    doubled = sum(r["doubled"] for r in rows if r["ok"])
    reruns = sum(r["rerun"] == "yes" for r in rows)
    print(f"\nruns completed {completed}/{len(rows)}  (an engine killed in {killed}; "
          f"{reruns} ran again on actor calls)  samples lost {lost}  doubled {doubled}")
    sys.exit(0 if completed == len(rows) and not lost and not doubled else 1)


if __name__ == "__main__":
    main()
