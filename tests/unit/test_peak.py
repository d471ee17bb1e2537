"""Peak search logic and its Tune searcher, driven by fake trials (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raybench.experiments.peak import (CONFIRM, SEARCH, PeakSearch, PeakSearcher, Probe,
                                       confirm_peak, search_peak)
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


# -- the search as a Ray Tune searcher (driven by hand: no Ray) ------------------------


def drive(searcher, capacity: float, confirm_capacity: float | None = None):
    """Play Tune: ask for trials while the searcher gives them, run each "round" at once.

    Returns the configs in the order they were suggested, in rounds.
    """
    from ray.tune.search import Searcher

    rounds, n = [], 0
    while True:
        batch = []
        while True:
            config = searcher.suggest(f"t{n}")
            if config is None or config == Searcher.FINISHED:
                break
            batch.append((f"t{n}", config))
            n += 1
        if not batch:
            assert config == Searcher.FINISHED
            return rounds
        rounds.append([c for _, c in batch])
        for trial_id, config in batch:
            cap = capacity if config["probe"] == SEARCH else (confirm_capacity or capacity)
            valid = config["target_qps"] <= cap
            searcher.on_trial_complete(trial_id, {"status": "ok", "valid": valid,
                                                  "metric": config["target_qps"]})


def test_searcher_runs_rounds_in_parallel_then_confirms_at_the_rules_duration():
    short, long = {"engine": "sim", "duration": 2.0}, {"engine": "sim", "official": True}
    searcher = PeakSearcher(PeakSearch(1000.0, tolerance=0.05, parallel=3), short, long)
    rounds = drive(searcher, 2500.0)
    search = [r for r in rounds if r[0]["probe"] == SEARCH]
    confirm = [r for r in rounds if r[0]["probe"] == CONFIRM]
    assert all(len(r) == 3 for r in search) and len(search) == searcher.search.rounds
    assert all(c["duration"] == 2.0 for r in search for c in r)
    assert [len(r) for r in confirm] == [1]
    assert confirm[0][0]["official"] and "duration" not in confirm[0][0]
    assert confirm[0][0]["target_qps"] == searcher.search.low
    assert 2500 * 0.95 <= searcher.search.low <= 2500 < searcher.search.high
    assert searcher.confirmation.result.valid


def test_searcher_steps_the_confirming_run_down_while_invalid():
    searcher = PeakSearcher(PeakSearch(1000.0, tolerance=0.05), {}, {"official": True},
                            attempts=3)
    rounds = drive(searcher, 2500.0, confirm_capacity=2300.0)
    confirm = [r[0]["target_qps"] for r in rounds if r[0]["probe"] == CONFIRM]
    peak = searcher.search.low
    assert confirm == pytest.approx([peak, peak * 0.95, peak * 0.95 ** 2][:len(confirm)])
    assert confirm[-1] <= 2300.0 and searcher.confirmation.result.valid


def test_searcher_with_nothing_valid_finishes_without_a_confirming_run():
    searcher = PeakSearcher(PeakSearch(100.0, max_rounds=30), {}, {})
    rounds = drive(searcher, 0.5)
    assert all(r[0]["probe"] == SEARCH for r in rounds) and searcher.confirmation is None


def test_a_failed_probe_counts_as_invalid():
    searcher = PeakSearcher(PeakSearch(1000.0, parallel=2), {}, {})
    first = [searcher.suggest("a"), searcher.suggest("b")]
    assert searcher.suggest("c") is None  # the round is running
    searcher.on_trial_complete("a", {"status": "ok", "valid": True})
    searcher.on_trial_complete("b", None, error=True)
    assert [c["target_qps"] for c in first] == [1000.0, 2000.0]
    nxt = searcher.suggest("c")
    assert searcher.search.low == 1000.0 and searcher.search.high == 2000.0
    assert 1000.0 < nxt["target_qps"] < 2000.0


def test_eta_is_known_once_bracketed():
    search = PeakSearch(1000.0, tolerance=0.01, parallel=1)
    assert search.rounds_left() is None
    search.next_round()
    search.absorb([Probe(1000.0, True)])
    search.next_round()
    search.absorb([Probe(2000.0, False)])
    assert search.rounds_left() == 7  # log2(100) rounds of bisection


def test_probes_table_fits_80_columns():
    from rich.console import Console

    from raybench.cli.peak import probes_table
    from raybench.experiments.peak import PeakResult

    probes = [Probe(123456.789, i % 2 == 0, metric=123450.5, p99_ms=14.987, kind=kind,
                    row={"status": "ok", "valid": i % 2 == 0, "metric_name":
                         "Completed samples per second", "wall_s": 612.3, "trial": "x_00001",
                         "node_id": "abcdef0123456789", "directory": "/e/" + "d" * 90})
              for i, kind in enumerate([SEARCH, SEARCH, CONFIRM])]
    for wide in (False, True):
        console = Console(width=80, record=True)
        console.print(probes_table(PeakResult(1.0, 2.0, probes, directory=Path("/e")), wide))
        text = console.export_text()
        assert "…" not in text and max(map(len, text.splitlines())) <= 80
        assert text.count("123,456.8") == 3 and text.count("confirm") == 1
        assert ("abcdef01" in text) == wide
