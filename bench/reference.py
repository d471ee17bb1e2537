"""raybench side by side with the MLCommons reference Python harness, same model, same host.

The reference is MLPerf Inference v1.0.1's ``vision/classification_and_detection/python/
main.py`` with its onnxruntime backend, from a checkout given with ``--reference`` (it is
run as it is, never copied; a launcher adapts the one call LoadGen 6 changed:
``ConstructSUT`` takes no latency callback any more; the Server latency bound is
mlperf.conf's, because the reference's ``--max-latency`` also sets a field LoadGen 6
removed). Both harnesses run raybench's
resnet50 stand-in ONNX model on the stand-in's images: raybench reads NVIDIA's int8 layout
and casts to the model's float32, the reference reads the same values from its own
preprocessed-image cache, written here as float32. The reference needs OpenCV only to
import (its cache makes it skip preprocessing): ``--cv2-path`` adds a directory that has
it (e.g. ``pip install --target DIR opencv-python-headless``).

The reference's ONNX Runtime session keeps ORT's default intra-op threads (one per core)
whatever its ``--threads`` (its worker threads); raybench's SingleStream rows give their
engine as many threads, so each side runs a query on the same cores.

Every row alternates the harnesses (and raybench's transports: ``inline`` too on the rows
with one engine), ``--repeat`` rounds; a cell is the range over the rounds.

Usage: ``python bench/reference.py --reference CHECKOUT/vision/classification_and_detection/python
[--cv2-path DIR] [--duration 10] [--repeat 2] [--steps 5] [--rows offline,singlestream,server]``
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness import Cell, TRANSPORTS, peak_server, print_table
from raybench.benchmarks.resnet50 import TENSOR_DIR, find_val_map, read_val_map
from raybench.results.loadgen_log import parse_summary
from raybench.run import RunRequest, run
from raybench.standins import build_standin

LAUNCH = r'''
import runpy, sys
import mlperf_loadgen as lg
construct = lg.ConstructSUT
lg.ConstructSUT = lambda issue, flush, *latency_callback: construct(issue, flush)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


class Reference:
    """The reference harness, ready to run on the stand-in."""

    def __init__(self, checkout: Path, mlperf_conf: Path, cv2_path: str, work: Path,
                 model: Path, data_dir: Path):
        self.main = checkout / "main.py"
        self.mlperf_conf = mlperf_conf
        self.work = work
        self.model = model
        self.env = dict(os.environ)
        path = [str(checkout)] + ([cv2_path] if cv2_path else [])
        self.env["PYTHONPATH"] = os.pathsep.join(path + [self.env.get("PYTHONPATH", "")])
        self.dataset = work / "dataset"
        self._write_dataset(data_dir)
        # the same run length as raybench's side (--duration, at least one query)
        (work / "user.conf").write_text("*.*.min_query_count = 1\n")

    def _write_dataset(self, data_dir: Path) -> None:
        """val_map.txt, an empty file per image (it checks they exist) and its float32 cache."""
        names, labels = read_val_map(find_val_map(data_dir))
        cache = self.work / "preprocessed" / "imagenet" / "NCHW"
        cache.mkdir(parents=True, exist_ok=True)
        self.dataset.mkdir(exist_ok=True)
        lines = []
        for name, label in zip(names, labels):
            (self.dataset / name).touch()
            image = np.load(data_dir / TENSOR_DIR / f"{name}.npy")
            np.save(cache / name, image.astype(np.float32))
            lines.append(f"{name} {int(label)}")
        (self.dataset / "val_map.txt").write_text("\n".join(lines) + "\n")

    def test(self, scenario: str, threads: int, batch: int, qps: float, duration: float) -> dict:
        """One LoadGen test (Server latency bound: mlperf.conf's, 15 ms for resnet50)."""
        out = Path(tempfile.mkdtemp(dir=self.work))
        cmd = [sys.executable, "-c", LAUNCH, str(self.main), "--profile", "resnet50-onnxruntime",
               "--model", str(self.model), "--dataset-path", str(self.dataset),
               "--scenario", scenario, "--threads", str(threads), "--max-batchsize", str(batch),
               "--time", str(int(duration)), "--qps", str(int(qps)),
               "--mlperf_conf", str(self.mlperf_conf),
               "--user_conf", str(self.work / "user.conf"), "--output", str(out)]
        done = subprocess.run(cmd, cwd=self.work, env=self.env, capture_output=True, text=True)
        # LoadGen 6 no longer reports latencies back, so the reference's own report at the
        # very end fails once LoadGen's logs are written: those are what is read here
        if not (out / "mlperf_log_summary.txt").is_file():
            raise RuntimeError(f"the reference harness failed:\n{done.stderr[-3000:]}")
        summary = parse_summary(out / "mlperf_log_summary.txt")
        return {"valid": bool(summary.valid), "metric": summary.metric,
                "percentiles": summary.percentiles}


def raybench(scenario: str, model: Path, data_dir: Path, out: Path, qps: float,
             duration: float, **kw) -> dict:
    request = RunRequest(scenario=scenario, mode="PerformanceOnly", engine="onnxruntime",
                         system="cpu", model=model, data_dir=data_dir, output=out,
                         duration=duration, queries=1, target_qps=qps, **kw)
    test = run(request).tests[0]
    return {"valid": bool(test.summary.valid), "metric": test.summary.metric,
            "percentiles": test.summary.percentiles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True,
                        help="v1.0.1 vision/classification_and_detection/python")
    parser.add_argument("--mlperf-conf", type=Path,
                        help="v1.0.1 mlperf.conf (default: the checkout's, three levels up)")
    parser.add_argument("--cv2-path", default="", help="a directory with OpenCV for the reference")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per test")
    parser.add_argument("--repeat", type=int, default=2, help="rounds, harnesses alternated")
    parser.add_argument("--steps", type=int, default=5, help="bisection steps per Server search")
    parser.add_argument("--count", type=int, default=256, help="stand-in images")
    parser.add_argument("--rows", default="offline,singlestream,server",
                        help="which rows (offline, singlestream, server)")
    args = parser.parse_args()
    wanted = set(args.rows.split(","))
    cores = os.cpu_count() or 1  # ORT's default intra-op threads, the reference's
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ray

    work = Path(tempfile.mkdtemp(prefix="raybench-reference-"))
    standin = build_standin("resnet50", work / "standin", count=args.count)
    conf = args.mlperf_conf or args.reference.parents[2] / "mlperf.conf"
    ref = Reference(args.reference.resolve(), conf.resolve(), args.cv2_path, work,
                    standin.model, standin.data_dir)
    ray.init(address="local", num_cpus=max(3, os.cpu_count() or 1),
             logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
    out, d = work / "results", args.duration
    def rb(scenario: str, qps: float, transport: str, **kw) -> dict:
        return raybench(scenario, standin.model, standin.data_dir, out, qps, d,
                        transport=transport, **kw)

    cols = ("reference",) + TRANSPORTS + ("inline",)
    single = f"(ref 1 thread; raybench 1 engine x {cores} threads)"
    rows = {name: {c: Cell() for c in cols} for name in (
        "Offline samples/s, batch 32 (ref 2 threads; raybench 2 engines x 1 thread)",
        "Offline samples/s, batch 8 (ref 2 threads; raybench 2 engines x 1 thread)",
        "Offline samples/s, batch 8 (raybench 1 engine x 2 threads)",
        f"SingleStream p90 ms {single}", f"SingleStream p99 ms {single}",
        "Server VALID QPS, 15 ms (ref 1 thread; raybench 1 engine x 1 thread)",
        "Server VALID QPS, 15 ms (ref 2 threads; raybench 2 engines x 1 thread)")}
    start = time.time()
    try:
        for r in range(args.repeat):
            order = TRANSPORTS if r % 2 == 0 else tuple(reversed(TRANSPORTS))
            one = order + ("inline",) if r % 2 == 0 else ("inline",) + order  # one engine
            if "offline" in wanted:
                for batch in (32, 8):
                    name = (f"Offline samples/s, batch {batch} "
                            "(ref 2 threads; raybench 2 engines x 1 thread)")
                    rows[name]["reference"].add(ref.test("Offline", 2, batch, 8000, d)["metric"])
                    for t in order:
                        rows[name][t].add(rb("Offline", 8000, t, batch_size=batch, engines=2,
                                             threads=1)["metric"])
                for t in one:
                    rows["Offline samples/s, batch 8 (raybench 1 engine x 2 threads)"][t].add(
                        rb("Offline", 8000, t, batch_size=8, engines=1, threads=2)["metric"])
            if "singlestream" in wanted:
                got = ref.test("SingleStream", 1, 1, 4000, d)
                for p in (90, 99):
                    rows[f"SingleStream p{p} ms {single}"]["reference"].add(
                        got["percentiles"][f"{p}.00"] / 1e6)
                for t in one:
                    got = rb("SingleStream", 4000, t, engines=1, threads=cores)
                    for p in (90, 99):
                        rows[f"SingleStream p{p} ms {single}"][t].add(
                            got["percentiles"][f"{p}.00"] / 1e6)
            if "server" in wanted:  # one ORT thread: more made raybench's Server worse here
                for n in (1, 2):
                    name = (f"Server VALID QPS, 15 ms (ref {n} thread{'s' * (n > 1)}; "
                            f"raybench {n} engine{'s' * (n > 1)} x 1 thread)")
                    rows[name]["reference"].add(peak_server(
                        lambda q: ref.test("Server", n, 32, q, d), 200, 8000, args.steps))
                    for t in one if n == 1 else order:
                        rows[name][t].add(peak_server(
                            lambda q: rb("Server", q, t, engines=n, threads=1, batch_size=32),
                            200, 8000, args.steps))
    finally:
        ray.shutdown()
    print(f"\nraybench against the MLCommons reference harness: {time.time() - start:.0f} s, "
          f"{args.repeat} rounds, {d:g} s tests, {os.cpu_count()} CPUs; "
          "cells: lowest-highest over rounds")
    fmt = lambda name: ".3f" if "ms" in name else ",.0f"  # noqa: E731
    print_table("resnet50 stand-in, ONNX Runtime on the CPU",
                [(name, cells, fmt(name)) for name, cells in rows.items()
                 if any(cell.values for cell in cells.values())], cols)


if __name__ == "__main__":
    main()
