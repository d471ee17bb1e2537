"""Cluster scaling with sim engines on a simulated Ray cluster (one machine).

1. The same sweep of N short trials on NODES x 8 fake GPUs (1 CPU each, the LoadGen
   bundle: one trial per node at a time), one by one and K at once, two ways, in
   alternating order, R times:

   * ``tune``: ``raybench sweep`` (each trial a Ray Tune trial whose placement group is
     the run's, see raybench/experiments/trials.py);
   * ``tasks``: each trial a plain Ray task (0 CPUs) whose run makes its own placement
     group, at most K pending (how sweeps ran before Tune).

   Per trial, the run's start-up (prepare, placement, engine actors up) is apart from its
   test (LoadGen actor, the test, results written); "outside" is the slot time per trial
   not spent inside a run: ``(wall x at once - sum of run walls) / N`` (Tune's or Ray's
   own work, placement of the trial, idle slots at the end).
2. One Offline run with 1..8 sim engines: samples/s against ideal linear scaling.

Usage: .venv/bin/python bench/cluster_scaling.py [--nodes 4] [--trials 16] [--levels 1,4]
       [--repeat 2] [--skip-scaling]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def task_trial(params: dict, output: str) -> dict:
    """One trial as a plain Ray task: the run makes its own placement group."""
    from raybench.run import RunRequest, execute, prepare

    start, ready = time.perf_counter(), []
    execute(prepare(RunRequest.parse({**params, "output": output})),
            on_ready=lambda _: ready.append(time.perf_counter()))
    end = time.perf_counter()
    return {"status": "ok", "setup_s": ready[0] - start, "test_s": end - ready[0],
            "wall_s": end - start}


def task_sweep(trials: list[dict], parallel: int, output: Path) -> list[dict]:
    """The trials as Ray tasks, at most ``parallel`` at once (no retries)."""
    import ray

    remote = ray.remote(num_cpus=0, max_retries=0)(task_trial)
    queue, pending, rows = list(enumerate(trials)), {}, []
    while queue or pending:
        while queue and len(pending) < parallel:
            i, params = queue.pop(0)
            pending[remote.remote(params, str(output / str(i)))] = i
        done, _ = ray.wait(list(pending), num_returns=1)
        pending.pop(done[0])
        try:
            rows.append(ray.get(done[0]))
        except Exception as exc:  # noqa: BLE001 - counted as not ok
            rows.append({"status": "failed", "error": str(exc).splitlines()[0]})
    return rows


def tune_sweep(spec, parallel: int, output: Path) -> list[dict]:
    """The trials as Ray Tune trials (``raybench sweep``), Tune's own output dropped."""
    from raybench.experiments.sweep import plan_sweep, run_sweep

    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        result = run_sweep(plan_sweep(spec, output), parallel=parallel)
    return [t.row for t in result.trials]


def span(values: list[float], fmt: str = ".1f") -> str:
    """``a-b`` over the repeats (one value when they agree)."""
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}}-{hi:{fmt}}"


def sweep_comparison(args, tmp: Path, console: Console) -> None:
    from raybench.experiments.sweep import SweepSpec, expand

    base = {"engine": "sim", "system": SYSTEM, "mode": "PerformanceOnly",
            "scenario": "Offline", "engines": args.engines, "duration": args.duration,
            "queries": 1, "target_qps": 5000.0 * args.engines}
    grid = {"batch_size": [16 + i for i in range(args.trials)]}
    levels = [int(x) for x in args.levels.split(",")]
    results: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.repeat):
        for level in levels:
            order = ("tasks", "tune") if (r + level) % 2 == 0 else ("tune", "tasks")
            for mode in order:
                name = f"{mode}-{level}-{r}"
                spec = SweepSpec.model_validate({"name": name, "base": base, "grid": grid})
                start = time.perf_counter()
                rows = (tune_sweep(spec, level, tmp / name) if mode == "tune"
                        else task_sweep(expand(spec), level, tmp / name))
                wall = time.perf_counter() - start
                ok = [row for row in rows if row.get("status") == "ok"]
                console.print(f"  {mode:5s} {level} at once, round {r + 1}: {wall:.1f} s, "
                              f"{len(ok)}/{len(rows)} ok", highlight=False)
                results.setdefault((mode, level), []).append({
                    "wall": wall, "ok": len(ok), "n": len(rows),
                    "setup": statistics.mean(row["setup_s"] for row in ok) if ok else 0.0,
                    "test": statistics.mean(row["test_s"] for row in ok) if ok else 0.0,
                    "outside": (wall * level - sum(row["wall_s"] for row in ok)) / len(rows),
                })
    first = statistics.median(x["wall"] for x in results[("tasks", levels[0])])
    table = Table(title=f"sweep of {args.trials} trials ({args.engines} sim engines, "
                        f"{args.duration:g} s each) on {args.nodes} nodes x 8 GPUs, "
                        f"{args.repeat} rounds (ranges)")
    for name in ("sweep", "at once", "wall s", "ok", "speed-up", "start-up s", "test s",
                 "outside s"):
        table.add_column(name, justify="right")
    for level in levels:
        for mode in ("tasks", "tune"):
            xs = results[(mode, level)]
            table.add_row(mode, str(level), span([x["wall"] for x in xs]),
                          f"{min(x['ok'] for x in xs)}/{xs[0]['n']}",
                          span([first / x["wall"] for x in xs], ".2f") + "x",
                          span([x["setup"] for x in xs], ".2f"),
                          span([x["test"] for x in xs], ".2f"),
                          span([x["outside"] for x in xs], ".2f"))
    console.print(table)
    console.print("speed-up: against the median wall of tasks one by one; start-up and "
                  "test: per trial, inside the run; outside: per trial, see the module "
                  "docstring.")


def engine_scaling(args, tmp: Path, console: Console) -> None:
    from raybench.run import RunRequest, run

    table = Table(title="one Offline run, sim engines on one node")
    for name in ("engines", "samples/s", "ideal", "efficiency"):
        table.add_column(name, justify="right")
    base = None
    for n in range(1, args.max_engines + 1):
        report = run(RunRequest(engine="sim", system=SYSTEM, scenario="Offline", engines=n,
                                batch_size=64, output=tmp / f"scale-{n}", duration=2.0,
                                queries=1, target_qps=20000.0 * n))
        qps = report.tests[-1].summary.metric
        base = base or qps
        table.add_row(str(n), f"{qps:,.0f}", f"{base * n:,.0f}", f"{qps / (base * n):.0%}")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--engines", type=int, default=2, help="engines per sweep trial")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per trial")
    ap.add_argument("--levels", default="1,4", help="trials at once to compare")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of every comparison")
    ap.add_argument("--max-engines", type=int, default=8)
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    console = Console(width=110)  # the tables are wider than a terminal's 80 columns
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 8})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1, num_gpus=8)
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    cluster.wait_for_nodes()
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="raybench-scaling-"))
    try:
        if not args.skip_sweep:
            sweep_comparison(args, tmp, console)
        if not args.skip_scaling:
            engine_scaling(args, tmp, console)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
