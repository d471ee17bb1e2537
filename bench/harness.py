"""Harness benchmark: bare LoadGen against raybench with null engines, and 8 sim engines.

Prints one table, all measured in one run on this machine:

1. Offline samples/s and the highest VALID Server QPS (15 ms p99, found by bisection
   with short runs) of bare LoadGen (FastSUT completing inside the issue callback, in
   a fresh process per test) and of raybench with ``null`` engines (the full path:
   LoadGen actor, batcher, router, engine actors, completion).
2. Eight ``sim`` engines at the A100 ResNet50 rate (2 ms + 26 us per sample, batch
   2048): Offline samples/s against the ideal 8 x B / T.

Usage: ``python bench/harness.py [--duration 3] [--engines 2]``
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from raybench.run import RunRequest, run
from raybench.config.models import SimLatency
from raybench.results.loadgen_log import parse_summary

BARE = r'''
import json, sys, mlperf_loadgen as lg
scenario, qps, duration_ms, outdir = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def issue(ids, indices):
    lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
sut = lg.ConstructFastSUT(issue, lambda: None)
qsl = lg.ConstructQSL(1024, 1024, lambda x: None, lambda x: None)
ts = lg.TestSettings()
ts.scenario = getattr(lg.TestScenario, scenario)
ts.mode = lg.TestMode.PerformanceOnly
ts.min_duration_ms = duration_ms
ts.min_query_count = 1
ts.server_target_qps = qps
ts.offline_expected_qps = qps
ts.server_target_latency_ns = 15_000_000
ts.server_target_latency_percentile = 0.99
ts.server_coalesce_queries = True
ls = lg.LogSettings()
ls.log_output.outdir = outdir
ls.log_output.copy_summary_to_stdout = False
ls.enable_trace = False
lg.StartTestWithLogSettings(sut, qsl, ts, ls, outdir + "/no-audit.config")
'''

A100_RESNET50 = SimLatency(fixed_us=2000, per_sample_us=26, derivation="issue 2 benchmark")


def bare(scenario: str, qps: float, duration_s: float) -> tuple[bool, float]:
    """One bare LoadGen test in a fresh process: (valid, metric)."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-c", BARE, scenario, str(qps),
                        str(int(duration_s * 1000)), out], check=True)
        summary = parse_summary(Path(out) / "mlperf_log_summary.txt")
    return bool(summary.valid), summary.metric


def raybench(scenario: str, qps: float, duration_s: float, out: Path, **kw) -> tuple[bool, float]:
    """One raybench test with the given engine settings: (valid, metric)."""
    request = RunRequest(scenario=scenario, mode="PerformanceOnly", output=out,
                         duration=duration_s, queries=1, target_qps=qps, **kw)
    summary = run(request).tests[0].summary
    return bool(summary.valid), summary.metric


def peak_server(trial, lo: float, hi: float, steps: int) -> float:
    """Highest QPS in [lo, hi] for which ``trial(qps)`` is VALID, by bisection."""
    best = 0.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        valid, _ = trial(mid)
        logging.info("server %.0f qps: %s", mid, "VALID" if valid else "INVALID")
        if valid:
            best, lo = mid, mid
        else:
            hi = mid
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per trial")
    parser.add_argument("--engines", type=int, default=2, help="null engine actors")
    parser.add_argument("--steps", type=int, default=6, help="bisection steps per search")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ray

    ray.init(address="local", num_cpus=max(9, args.engines + 1), num_gpus=8,
             logging_level=logging.WARNING,
             log_to_driver=False, include_dashboard=False)
    out = Path(tempfile.mkdtemp(prefix="raybench-bench-"))
    # Offline takes whole chunks; Server cuts at 4 ms so Ray calls stay few (see README).
    null_offline = dict(engine="null", system="cpu", engines=args.engines, batch_size=16384)
    null_server = dict(engine="null", system="cpu", engines=args.engines, batch_size=8192,
                       batch_timeout_us=4000)
    d = args.duration
    rows = []
    t0 = time.time()
    _, bare_off = bare("Offline", 1_500_000, d)
    _, rb_off = raybench("Offline", 1_500_000, d, out, **null_offline)
    rows.append(("Offline samples/s (null engines)", bare_off, rb_off))
    bare_srv = peak_server(lambda q: bare("Server", q, d), 50_000, 700_000, args.steps)
    rb_srv = peak_server(lambda q: raybench("Server", q, d, out, **null_server), 50_000, 700_000,
                         args.steps)
    rows.append(("Server VALID QPS, 15 ms p99 (null engines)", bare_srv, rb_srv))

    batch, engines = 2048, 8
    ideal = engines * batch / ((A100_RESNET50.fixed_us + A100_RESNET50.per_sample_us * batch) * 1e-6)
    # the 8x A100-SXM-80GB system's own settings (batch 2048, two inference streams)
    _, sim_off = raybench("Offline", ideal, max(d, 5.0), out, engine="sim",
                          system="SYS-420GP-TNAR_A100-SXM-80GBx8", batch_size=batch,
                          sim=A100_RESNET50)
    ray.shutdown()

    print(f"\nraybench harness benchmark ({time.time() - t0:.0f} s, {d:g} s trials)")
    print(f"{'measure':46} {'bare LoadGen':>14} {'raybench':>12} {'ratio':>7}")
    for name, b, r in rows:
        print(f"{name:46} {b:>14,.0f} {r:>12,.0f} {r / b:>7.1%}")
    print(f"{'8 sim A100 engines, Offline samples/s':46} {'ideal ' + format(ideal, ',.0f'):>14} "
          f"{sim_off:>12,.0f} {sim_off / ideal:>7.1%}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "sim": [ideal, sim_off]}, indent=1))


if __name__ == "__main__":
    main()
