"""Peak search logic with a fake trial function (no Ray)."""

from __future__ import annotations

import pytest

from raybench.experiments.peak import Probe, confirm_peak, search_peak
from raybench.errors import ConfigError


def fake(capacity: float, calls: list | None = None):
    """A system that is VALID up to ``capacity`` QPS."""
    def trial(values):
        if calls is not None:
            calls.append(list(values))
        return [Probe(qps=v, valid=v <= capacity, metric=min(v, capacity)) for v in values]
    return trial


@pytest.mark.parametrize("start", [100.0, 1000.0, 3000.0, 50000.0])
@pytest.mark.parametrize("parallel", [1, 3])
def test_finds_the_peak_within_tolerance(start, parallel):
    result = search_peak(fake(2500.0), start, tolerance=0.02, parallel=parallel, max_rounds=40)
    assert result.peak_qps is not None and result.lowest_invalid_qps is not None
    assert result.peak_qps <= 2500.0 < result.lowest_invalid_qps
    assert (result.lowest_invalid_qps - result.peak_qps) / result.peak_qps <= 0.02
    assert 2500.0 * 0.98 <= result.peak_qps


def test_parallel_rounds_send_parallel_points_and_take_fewer_rounds():
    serial, wide = [], []
    a = search_peak(fake(7777.0, serial), 1000.0, tolerance=0.01, parallel=1, max_rounds=50)
    b = search_peak(fake(7777.0, wide), 1000.0, tolerance=0.01, parallel=4, max_rounds=50)
    assert all(len(c) == 1 for c in serial) and all(len(c) == 4 for c in wide)
    assert b.rounds < a.rounds
    assert abs(a.peak_qps - b.peak_qps) / 7777.0 < 0.02


def test_round_limit_is_respected():
    calls = []
    result = search_peak(fake(2500.0, calls), 1000.0, tolerance=1e-9, max_rounds=5)
    assert len(calls) == result.rounds == 5
    assert result.peak_qps <= 2500.0


def test_nothing_valid_gives_no_peak():
    result = search_peak(fake(0.5), 100.0, tolerance=0.05, max_rounds=30, floor=1.0)
    assert result.peak_qps is None
    assert all(not p.valid for p in result.probes)


def test_noisy_invalid_below_a_valid_point_does_not_stop_the_search():
    def trial(values):  # 1500 flakes INVALID though the capacity is 4000
        return [Probe(qps=v, valid=v <= 4000 and v != 1500.0) for v in values]
    result = search_peak(trial, 1000.0, tolerance=0.05, max_rounds=30, parallel=2)
    assert 3800 <= result.peak_qps <= 4000


def test_bad_arguments():
    with pytest.raises(ConfigError):
        search_peak(fake(1.0), 0.0)
    with pytest.raises(ConfigError):
        search_peak(fake(1.0), 10.0, parallel=0)


def test_confirm_steps_down_until_valid():
    seen = []

    def trial(q):
        seen.append(q)
        return Probe(qps=q, valid=q <= 950)

    probe = confirm_peak(trial, 1000.0, tolerance=0.05)
    assert probe.valid and seen == [1000.0, 950.0]
    assert not confirm_peak(lambda q: Probe(qps=q, valid=False), 1000.0, attempts=2).valid
