"""Harness benchmark: actor calls against compiled graphs, and both against bare LoadGen.

Every figure comes from one run of this script on one machine, the two transports
(``calls``: a Ray actor call per batch; ``graph``: a Ray Compiled Graph per engine lane)
alternated, ``--repeat`` rounds; a cell shows the range over the rounds.

1. The transport alone: a driver actor sends index batches to 8 ``null`` engine actors
   (4 in flight each) through raybench's own transport: calls/s and the driver's CPU per
   call, at batch 128 (the 8x A100 systems' resnet50 Server batch) and 2048 (Offline);
   and the round trip of a 1-sample batch, one at a time, to one engine, through Ray
   alone (an actor call, or a compiled graph's ``execute().get()``) and through
   raybench's transport (submit to the reader's ``done``): what SingleStream pays.
2. The query path with ``null`` engines against bare LoadGen (FastSUT completing inside
   the issue callback, a fresh process per test): Offline samples/s, the highest VALID
   Server QPS (15 ms p99; batch 8192, 4 ms), SingleStream latency percentiles (one engine;
   also ``inline``: the engine inside the LoadGen actor).
3. Eight ``sim`` A100 engines with SYS-420GP-TNAR's own settings (resnet50: Server batch
   128, 4 ms timeout, two inference streams; Offline batch 2048): the highest VALID Server
   QPS (published: 260,000), the LoadGen actor's CPU per sample and per batch at 200k QPS
   (beside bare LoadGen's own CPU per sample at that rate), and Offline samples/s against
   the modelled ideal. Bare LoadGen's Offline is a FastSUT that completes the samples at
   exactly the ideal rate from the moment its issue callback runs: the most a Python SUT
   gets, since LoadGen's binding turns the query's sample ids and indices into Python
   lists (about 80 ns a sample on a 2-core host) after its clock has started. The
   system's settings make 16 graph lanes: on a host with fewer than two cores per lane,
   where the compiled graphs' spinning loops crowd LoadGen out, ``raybench run`` picks
   calls by itself; this table shows both.

Usage: ``python bench/harness.py [--duration 3] [--repeat 2] [--steps 6] [--tables 1,2,3]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from raybench.config.systems import load_system
from raybench.experiments.twins import modelled_offline_rate
from raybench.results.loadgen_log import parse_summary
from raybench.run import RunRequest, run

TRANSPORTS = ("calls", "graph")
SYSTEM = "SYS-420GP-TNAR_A100-SXM-80GBx8"

BARE = r'''
import json, sys, threading, time, mlperf_loadgen as lg
scenario, qps, duration_ms, outdir = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rate = float(sys.argv[5])  # 0: complete in the issue callback; else an ideal device's samples/s
done = [0]
def device(ids):
    start = time.perf_counter()
    for i in range(0, len(ids), 2048):
        chunk = ids[i:i + 2048]
        due = start + (i + len(chunk)) / rate
        while due - time.perf_counter() > 0:
            time.sleep(due - time.perf_counter())
        lg.QuerySamplesComplete([lg.QuerySampleResponse(x, 0, 0) for x in chunk])
def issue(ids, indices):
    done[0] += len(ids)
    if rate:
        threading.Thread(target=device, args=(ids,)).start()
    else:
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
ts.single_stream_expected_latency_ns = int(1e9 / qps)
ts.server_target_latency_ns = 15_000_000
ts.server_target_latency_percentile = 0.99
ts.server_coalesce_queries = True
ls = lg.LogSettings()
ls.log_output.outdir = outdir
ls.log_output.copy_summary_to_stdout = False
ls.enable_trace = False
cpu = time.process_time()
lg.StartTestWithLogSettings(sut, qsl, ts, ls, outdir + "/no-audit.config")
print(json.dumps({"cpu_s": time.process_time() - cpu, "samples": done[0]}))
'''


class Cell:
    """The values one measurement took over the rounds."""

    def __init__(self):
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)

    def show(self, fmt: str = ",.0f") -> str:
        if not self.values:
            return "-"
        lo, hi = min(self.values), max(self.values)
        return format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"


class Count(Cell):
    """How many of the rounds' runs were VALID."""

    def __init__(self, flags: list[bool]):
        super().__init__()
        self.values = [float(f) for f in flags]

    def show(self, fmt: str = "") -> str:
        return f"{int(sum(self.values))} of {len(self.values)}"


# -- one measurement each ----------------------------------------------------------------
def bare(scenario: str, qps: float, duration_s: float, rate: float = 0.0) -> dict:
    """One bare LoadGen test in a fresh process: the FastSUT completes each issue call's
    samples inside the callback, or (``rate``) on another thread at that many samples/s
    from the moment the callback runs, as ideal devices would."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", BARE, scenario, str(qps),
                               str(int(duration_s * 1000)), out, str(rate)],
                              check=True, capture_output=True, text=True)
        summary = parse_summary(Path(out) / "mlperf_log_summary.txt")
    own = json.loads(done.stdout.strip().splitlines()[-1])
    return {"valid": bool(summary.valid), "metric": summary.metric,
            "percentiles": summary.percentiles,
            "cpu_us_per_sample": own["cpu_s"] / max(1, own["samples"]) * 1e6}


def raybench(scenario: str, qps: float, duration_s: float, out: Path, **kw) -> dict:
    """One raybench performance test."""
    request = RunRequest(scenario=scenario, mode="PerformanceOnly", output=out,
                         duration=duration_s, queries=1, target_qps=qps, **kw)
    test = run(request).tests[0]
    o = test.outcome
    return {"valid": bool(test.summary.valid), "metric": test.summary.metric,
            "percentiles": test.summary.percentiles, "cpu_s": o.cpu_s,
            "cpu_us_per_sample": o.cpu_s / max(1, o.completed) * 1e6,
            "cpu_us_per_batch": o.cpu_s / max(1, o.batches) * 1e6, "transport": o.transport}


def peak_server(trial: Callable[[float], dict], lo: float, hi: float, steps: int) -> float:
    """Highest QPS in [lo, hi] for which ``trial(qps)`` is VALID, by bisection."""
    best = 0.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        valid = trial(mid)["valid"]
        logging.info("  server %.0f qps: %s", mid, "VALID" if valid else "INVALID")
        if valid:
            best, lo = mid, mid
        else:
            hi = mid
    return best


class TransportProbe:
    """A driver actor that sends batches through raybench's transport to engine actors."""

    def __init__(self, engines: list):
        self.engines = engines

    def measure(self, kind: str, batch: int, calls: int, inflight: int) -> dict:
        import threading
        from queue import SimpleQueue

        from raybench.actors.transport import open_transport
        from raybench.scheduling.ledger import Batch

        n = len(self.engines)
        transport = open_transport(kind, self.engines, lanes=1, want_outputs=False,
                                   max_inflight=inflight)
        slots = [SimpleQueue() for _ in range(n)]  # one token per free in-flight slot
        for queue in slots:
            for _ in range(inflight):
                queue.put(True)
        total, finished = calls * n, threading.Event()
        lock, done = threading.Lock(), [0]

        class Sink:
            def done(self, batch_id, result):
                slots[batch_id % n].put(True)
                with lock:
                    done[0] += 1
                    if done[0] == total:
                        finished.set()

            def failed(self, batch_id, error, retry):
                raise RuntimeError(error)

        transport.start(Sink())
        indices = list(range(batch))
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(total):
            slots[i % n].get()
            transport.submit(Batch(i, indices, indices, i % n))
        finished.wait()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        transport.stop()
        return {"calls_per_s": total / wall, "cpu_us_per_call": cpu / total * 1e6}

    def round_trip(self, kind: str, calls: int) -> list[float]:
        """Microseconds from submit to the sink's ``done``, one 1-sample batch at a time,
        through raybench's transport to engine 0."""
        import threading

        from raybench.actors.transport import open_transport
        from raybench.scheduling.ledger import Batch

        transport = open_transport(kind, self.engines[:1], lanes=1, want_outputs=False,
                                   max_inflight=1)
        answered = threading.Event()

        class Sink:
            def done(self, batch_id, result):
                answered.set()

            def failed(self, batch_id, error, retry):
                raise RuntimeError(error)

        transport.start(Sink())
        took = []
        for i in range(calls):
            answered.clear()
            start = time.perf_counter()
            transport.submit(Batch(i, [i], [0], 0))
            answered.wait()
            took.append((time.perf_counter() - start) * 1e6)
        transport.stop()
        return took[calls // 10:]  # past the warm-up

    def ray_round_trip(self, kind: str, calls: int) -> list[float]:
        """The same round trip on Ray alone: ``ray.get(engine.run.remote(...))`` (calls), or
        ``execute(...).get()`` on a compiled graph to the engine (graph, spinning get)."""
        import ray
        from ray.dag import InputNode

        from raybench.actors.transport import pack

        handle, packed = self.engines[0], pack([0])
        if kind == "graph":
            with InputNode() as arg:
                node = handle.run.bind(arg, False)
            graph = node.experimental_compile()
            call = lambda: graph.execute(packed).get()  # noqa: E731
        else:
            call = lambda: ray.get(handle.run.remote(packed, False))  # noqa: E731
        took = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            took.append((time.perf_counter() - start) * 1e6)
        if kind == "graph":
            graph.teardown()
        return took[calls // 10:]


# -- the tables --------------------------------------------------------------------------
def table_transport(rounds: int, seconds: float) -> list[tuple[str, dict[str, Cell]]]:
    import ray

    from raybench.actors.engine import EngineActor, EngineSpec
    from raybench.engines.base import EngineOptions

    spec = EngineSpec(benchmark="resnet50", engine="null", options=EngineOptions())
    engines = [ray.remote(EngineActor).options(num_cpus=0, num_gpus=1).remote(spec)
               for _ in range(8)]
    ray.get([h.info.remote() for h in engines])
    probe = ray.remote(TransportProbe).options(num_cpus=0).remote(engines)
    rows = {f"batch {b}: {what}": {t: Cell() for t in TRANSPORTS}
            for b in (128, 2048) for what in ("calls/s", "driver CPU us per call")}
    for r in range(rounds):
        for batch in (128, 2048):
            for kind in TRANSPORTS if r % 2 == 0 else reversed(TRANSPORTS):
                calls = max(50, int(seconds * (300 if kind == "calls" else 800)))
                got = ray.get(probe.measure.remote(kind, batch, calls, 4))
                logging.info("  transport %s batch %d: %s", kind, batch, got)
                rows[f"batch {batch}: calls/s"][kind].add(got["calls_per_s"])
                rows[f"batch {batch}: driver CPU us per call"][kind].add(got["cpu_us_per_call"])
    trips = {f"1 sample, 1 in flight: {what} p{p} us": {t: Cell() for t in TRANSPORTS}
             for what in ("Ray alone", "raybench transport") for p in (50, 90)}
    for r in range(rounds):
        for kind in TRANSPORTS if r % 2 == 0 else reversed(TRANSPORTS):
            calls = max(200, int(seconds * 1000))
            for what, method in (("Ray alone", probe.ray_round_trip),
                                 ("raybench transport", probe.round_trip)):
                took = sorted(ray.get(method.remote(kind, calls)))
                for p in (50, 90):
                    trips[f"1 sample, 1 in flight: {what} p{p} us"][kind].add(
                        took[len(took) * p // 100])
    for h in engines + [probe]:
        ray.kill(h)
    return list(rows.items()) + list(trips.items())


def table_null(rounds: int, d: float, steps: int, out: Path) -> list[tuple[str, dict, str]]:
    cols = ("bare",) + TRANSPORTS
    offline = {c: Cell() for c in cols}
    server = {c: Cell() for c in cols}
    single = {f"SingleStream p{p} ms": {c: Cell() for c in cols + ("inline",)}
              for p in (50, 90, 99)}
    null_offline = dict(engine="null", system="cpu", engines=2, batch_size=16384)
    null_server = dict(engine="null", system="cpu", engines=2, batch_size=8192,
                       batch_timeout_us=4000)
    null_single = dict(engine="null", system="cpu", engines=1)
    for r in range(rounds):
        order = TRANSPORTS if r % 2 == 0 else tuple(reversed(TRANSPORTS))
        offline["bare"].add(bare("Offline", 1_500_000, d)["metric"])
        for t in order:
            offline[t].add(raybench("Offline", 1_500_000, d, out, transport=t,
                                    **null_offline)["metric"])
        got = bare("SingleStream", 20_000, d)
        for p in (50, 90, 99):
            single[f"SingleStream p{p} ms"]["bare"].add(got["percentiles"][f"{p}.00"] / 1e6)
        for t in order + ("inline",):
            got = raybench("SingleStream", 20_000, d, out, transport=t, **null_single)
            for p in (50, 90, 99):
                single[f"SingleStream p{p} ms"][t].add(got["percentiles"][f"{p}.00"] / 1e6)
        server["bare"].add(peak_server(lambda q: bare("Server", q, d), 20_000, 700_000, steps))
        for t in order:
            server[t].add(peak_server(
                lambda q: raybench("Server", q, d, out, transport=t, **null_server),
                20_000, 700_000, steps))
    rows = [("Offline samples/s", offline, ",.0f"),
            ("Server VALID QPS, 15 ms p99 (batch 8192, 4 ms)", server, ",.0f")]
    rows += [(name, cells, ".3f") for name, cells in single.items()]
    return rows


def table_sim(rounds: int, d: float, steps: int, out: Path) -> tuple[list, float]:
    system = load_system(SYSTEM)
    ideal = modelled_offline_rate(system, "resnet50")
    sim = dict(engine="sim", system=SYSTEM)
    rows = {name: {t: Cell() for t in ("bare",) + TRANSPORTS} for name in (
        "Server VALID QPS (published 260,000)", "200k QPS: p99 ms",
        "200k QPS: LoadGen-actor CPU us per sample", "200k QPS: LoadGen-actor CPU us per batch",
        "Offline samples/s", "Offline % of modelled ideal")}
    valid_200k = {t: [] for t in TRANSPORTS}
    for r in range(rounds):
        order = TRANSPORTS if r % 2 == 0 else tuple(reversed(TRANSPORTS))
        got = bare("Server", 200_000, d)
        rows["200k QPS: p99 ms"]["bare"].add(got["percentiles"]["99.00"] / 1e6)
        rows["200k QPS: LoadGen-actor CPU us per sample"]["bare"].add(got["cpu_us_per_sample"])
        for t in order:
            got = raybench("Server", 200_000, d, out, transport=t, **sim)
            valid_200k[t].append(got["valid"])
            rows["200k QPS: p99 ms"][t].add(got["percentiles"]["99.00"] / 1e6)
            rows["200k QPS: LoadGen-actor CPU us per sample"][t].add(got["cpu_us_per_sample"])
            rows["200k QPS: LoadGen-actor CPU us per batch"][t].add(got["cpu_us_per_batch"])
        got = bare("Offline", ideal, max(d, 5.0), rate=ideal)
        rows["Offline samples/s"]["bare"].add(got["metric"])
        rows["Offline % of modelled ideal"]["bare"].add(100 * got["metric"] / ideal)
        for t in order:
            got = raybench("Offline", ideal, max(d, 5.0), out, transport=t, **sim)
            rows["Offline samples/s"][t].add(got["metric"])
            rows["Offline % of modelled ideal"][t].add(100 * got["metric"] / ideal)
        for t in order:
            rows["Server VALID QPS (published 260,000)"][t].add(peak_server(
                lambda q: raybench("Server", q, d, out, transport=t, **sim),
                20_000, 300_000, steps))
    fmt = {"Offline % of modelled ideal": ".1f", "200k QPS: p99 ms": ".2f",
           "200k QPS: LoadGen-actor CPU us per sample": ".2f"}
    table = [(name, cells, fmt.get(name, ",.0f")) for name, cells in rows.items()]
    table.append(("200k QPS: VALID runs", {t: Count(valid_200k[t]) for t in TRANSPORTS}))
    return table, ideal


def print_table(title: str, rows: list, columns: tuple[str, ...]) -> None:
    print(f"\n{title}")
    print(f"{'measure':50}" + "".join(f"{c:>22}" for c in columns))
    for row in rows:
        name, cells = row[0], row[1]
        fmt = row[2] if len(row) > 2 else ",.0f"
        print(f"{name:50}" + "".join(
            f"{cells[c].show(fmt) if c in cells else '':>22}" for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per LoadGen test")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (transports alternated)")
    parser.add_argument("--steps", type=int, default=6, help="bisection steps per search")
    parser.add_argument("--tables", default="1,2,3", help="which tables (1,2,3)")
    parser.add_argument("--json", type=Path, help="also write every value here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ray

    tables = {int(t) for t in args.tables.split(",")}
    ray.init(address="local", num_cpus=max(9, os.cpu_count() or 1), num_gpus=8,
             logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
    out = Path(tempfile.mkdtemp(prefix="raybench-bench-"))
    start = time.time()
    printed = []
    try:
        if 1 in tables:
            printed.append(("1. The transport alone: a driver actor, 8 null engine actors, "
                            "4 batches in flight each", table_transport(args.repeat,
                                                                        args.duration),
                            TRANSPORTS))
        if 2 in tables:
            printed.append(("2. The query path, null engines, against bare LoadGen",
                            table_null(args.repeat, args.duration, args.steps, out),
                            ("bare",) + TRANSPORTS + ("inline",)))
        if 3 in tables:
            rows, ideal = table_sim(args.repeat, args.duration, args.steps, out)
            printed.append((f"3. Eight sim A100 engines, {SYSTEM} settings (modelled Offline "
                            f"ideal {ideal:,.0f} samples/s)", rows, ("bare",) + TRANSPORTS))
    finally:
        ray.shutdown()
    print(f"\nraybench harness benchmark: {time.time() - start:.0f} s, {args.repeat} rounds, "
          f"{args.duration:g} s tests, {os.cpu_count()} CPUs; cells: lowest-highest over rounds")
    for title, rows, columns in printed:
        print_table(title, rows, columns)
    if args.json:
        args.json.write_text(json.dumps(
            {title: {row[0]: {c: cell.values for c, cell in row[1].items()} for row in rows}
             for title, rows, _ in printed}, indent=1))


if __name__ == "__main__":
    main()
