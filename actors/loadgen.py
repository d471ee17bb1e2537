"""The LoadGen actor: owns LoadGen's SUT and QSL for one test, then is discarded.

LoadGen keeps per-process configuration state, so every test runs in a fresh actor.
"""

from __future__ import annotations

import ray

from typing import Optional

from raybench.cluster.loadgen_test import LiveTest, Progress, TestOutcome, TestPlan, run_test


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=2)
class LoadGenActor:
    """Thin Ray shell around :func:`raybench.cluster.loadgen_test.run_test`.

    Two concurrent calls: ``run`` blocks for the whole test while ``progress`` answers.
    """

    def __init__(self, engines: list):
        self.engines = engines
        self.live = LiveTest()

    def run(self, plan: TestPlan) -> TestOutcome:
        """Run one LoadGen test against the engines; blocks until LoadGen is done."""
        return run_test(plan, self.engines, self.live)

    def progress(self) -> Optional[Progress]:
        """A snapshot of the running test (None before it starts)."""
        return self.live.progress()
