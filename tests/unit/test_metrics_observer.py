"""The dispatcher's metrics observer aggregates without Ray."""

from __future__ import annotations

from raybench.actors.telemetry import MetricsObserver
from raybench.scheduling.ledger import Batch


def test_observer_aggregates_between_takes():
    now = [0.0]
    obs = MetricsObserver(2, clock=lambda: now[0])
    obs.on_issue(5)
    a, b = Batch(1, [1, 2, 3], [0, 1, 2], engine=0), Batch(2, [4, 5], [3, 4], engine=1)
    obs.on_batch(a, queued=2)
    obs.on_batch(b, queued=0)
    now[0] = 0.004
    obs.on_complete(a)
    snap = obs.take()
    assert snap["issued"] == 5 and snap["completed"] == 3
    assert snap["inflight"] == [0, 2] and snap["queued"] == 0
    assert snap["sizes"] == [(0, 3), (1, 2)]
    assert snap["times"] == [(0, 0.004)]
    obs.on_complete(b, ok=False)  # failed: leaves flight, not completed, no time
    snap = obs.take()
    assert snap["issued"] == 0 and snap["completed"] == 0
    assert snap["inflight"] == [0, 0] and snap["sizes"] == [] and snap["times"] == []
