"""One real LoadGen test against a small in-process SUT, for tests that need real logs.

Run as a script (LoadGen keeps per-process state, so each test gets its own process)::

    python tests/loadgen_bare.py SPEC.json

SPEC holds ``values`` (an EffectiveSettings.values dict), ``outdir``, ``audit_config``
(a path or null), ``total_count``, ``performance_count``, ``sample_us`` (the service time
of one sample), ``cache`` (a sample served before costs nothing: the cheat TEST04 catches)
and ``payloads`` (a JSON file mapping qsl_idx to the response's hex data, or null for
data-less responses). The SUT completes samples in issue order on one worker thread.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time

import numpy as np


def run(spec: dict) -> None:
    import mlperf_loadgen as lg

    from raybench.rules.settings import to_test_settings

    payloads = {}
    if spec.get("payloads"):
        with open(spec["payloads"]) as f:
            payloads = {int(k): bytes.fromhex(v) for k, v in json.load(f).items()}
    sample_s = spec.get("sample_us", 0) / 1e6
    cache = spec.get("cache", False)
    seen: set[int] = set()
    work: queue.Queue = queue.Queue()

    def worker() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            ids, indices = item
            new = set(indices) - seen if cache else indices
            seen.update(indices)
            if new and sample_s:
                time.sleep(sample_s * len(new))
            blobs = [np.frombuffer(payloads.get(i, b""), np.uint8) for i in indices]
            lg.QuerySamplesComplete([
                lg.QuerySampleResponse(s, b.ctypes.data if len(b) else 0, len(b))
                for s, b in zip(ids, blobs)
            ])

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    sut = lg.ConstructFastSUT(lambda ids, idx: work.put((list(ids), list(idx))), lambda: None)
    qsl = lg.ConstructQSL(spec["total_count"], spec["performance_count"],
                          lambda _: None, lambda _: None)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = spec["outdir"]
    log_settings.log_output.copy_summary_to_stdout = False
    os.makedirs(spec["outdir"], exist_ok=True)
    audit = spec.get("audit_config") or os.path.join(spec["outdir"], "no-audit.config")
    lg.StartTestWithLogSettings(sut, qsl, to_test_settings(spec["values"]), log_settings, audit)
    work.put(None)
    thread.join()
    lg.DestroyFastSUT(sut)
    lg.DestroyQSL(qsl)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        run(json.load(f))


SAMPLE_US = 4000  # 256 samples take as long as a 1 s Offline run: every run's fixed costs weigh alike


def sut_settings(scenario="Offline", benchmark="resnet50", total=256, sample_us=SAMPLE_US,
                 duration_s=1.0):
    """Short-run settings whose expected rate is the bare SUT's (``1 / sample_us``).

    Runs of about a second keep the scheduling delays of a busy host to a few percent of
    a run, below the 5 % band TEST05 allows.
    """
    from raybench.config.models import HarnessSettings
    from raybench.rules import load_rules
    from raybench.rules.settings import Overrides, build_settings

    harness = HarnessSettings(batch_size=1, offline_expected_qps=1e6 / sample_us,
                              server_target_qps=0.5e6 / sample_us,
                              single_stream_expected_latency_ns=int(sample_us * 1000))
    return build_settings(load_rules(), benchmark, scenario, "PerformanceOnly", harness, total,
                          Overrides(duration=duration_s, queries=1))


def bare_run(outdir, settings, audit_test=None, sample_us=SAMPLE_US, cache=False, payloads=None,
             total_count=256):
    """Run one bare LoadGen test in a child process and return its log directory.

    Args:
        outdir: Where LoadGen writes its logs.
        settings: An EffectiveSettings (its values become the TestSettings).
        audit_test: Write that test's audit.config beside the logs and apply it.
        sample_us, cache, payloads: The SUT (see the module docstring).
    """
    import subprocess
    from pathlib import Path

    from raybench.rules.audit import apply_audit, audit_config_text

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    audit = None
    if audit_test:
        settings = apply_audit(settings, audit_test)
        audit = outdir / "audit.config"
        audit.write_text(audit_config_text(audit_test, settings.benchmark))
    spec = {"values": settings.values, "outdir": str(outdir), "audit_config": audit and str(audit),
            "total_count": total_count,
            "performance_count": settings.values["performance_sample_count_override"],
            "sample_us": sample_us, "cache": cache, "payloads": payloads and str(payloads)}
    spec_path = outdir.parent / f".{outdir.name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run([sys.executable, __file__, str(spec_path)], check=True, timeout=120)
    spec_path.unlink()
    return outdir
