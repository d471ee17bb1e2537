"""Cluster scaling with sim engines on a simulated Ray cluster (one machine).

1. A sweep of N short trials on NODES x 8 fake GPUs: wall time in parallel vs one by one.
2. One Offline run with 1..8 sim engines: samples/s against ideal linear scaling.

Usage: .venv/bin/python bench/cluster_scaling.py [--nodes 4] [--trials 16] [--engines 2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--engines", type=int, default=2, help="engines per sweep trial")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per trial")
    ap.add_argument("--levels", default="1,4,0",
                    help="trials at once to compare (0: as many as the cluster holds)")
    ap.add_argument("--max-engines", type=int, default=8)
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from raybench.run import RunRequest, run
    from raybench.experiments.sweep import SweepSpec, run_sweep
    
    console = Console()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 8})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1, num_gpus=8)
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    cluster.wait_for_nodes()
    tmp = Path(tempfile.mkdtemp(prefix="raybench-scaling-"))
    try:
        if not args.skip_sweep:
            table = Table(title=f"sweep of {args.trials} trials ({args.engines} sim engines, "
                                f"{args.duration:g} s each) on {args.nodes} nodes x 8 GPUs")
            for name in ("mode", "at once", "wall s", "ok", "speed-up"):
                table.add_column(name, justify="right")
            walls = {}
            levels = [int(x) for x in args.levels.split(",")]
            first = None
            for level in levels:
                parallel = level or None
                label = "one by one" if level == 1 else f"{level} at once" if level else "parallel"
                spec = SweepSpec.model_validate({
                    "name": label.replace(" ", "-"),
                    "base": {"engine": "sim", "system": SYSTEM, "mode": "PerformanceOnly",
                             "scenario": "Offline", "engines": args.engines,
                             "duration": args.duration, "queries": 1,
                             "target_qps": 5000.0 * args.engines},
                    "grid": {"batch_size": [16 + i for i in range(args.trials)]},
                })
                start = time.perf_counter()
                results = run_sweep(spec, parallel=parallel, output=tmp / label.replace(" ", "-"),
                                    on_result=lambda r: print(f"  {r.trial.trial_id} {r.status} "
                                                              f"{r.row.get('wall_s')} s", flush=True))
                walls[label] = time.perf_counter() - start
                first = first or walls[label]
                ok = sum(r.status == "ok" for r in results)
                at_once = parallel or (args.nodes * 8) // args.engines
                table.add_row(label, str(at_once), f"{walls[label]:.1f}", f"{ok}/{len(results)}",
                              f"{first / walls[label]:.2f}x")
            console.print(table)
        if not args.skip_scaling:
            table = Table(title="one Offline run, sim engines on one node")
            for name in ("engines", "samples/s", "ideal", "efficiency"):
                table.add_column(name, justify="right")
            base = None
            for n in range(1, args.max_engines + 1):
                report = run(RunRequest(
                    engine="sim", system=SYSTEM, scenario="Offline", engines=n, batch_size=64,
                    output=tmp / f"scale-{n}",
                    duration=2.0, queries=1, target_qps=20000.0 * n))
                qps = report.tests[-1].summary.metric
                base = base or qps
                table.add_row(str(n), f"{qps:,.0f}", f"{base * n:,.0f}", f"{qps / (base * n):.0%}")
            console.print(table)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
