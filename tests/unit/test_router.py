"""Unit tests for raybench.scheduling.router.Router."""

from __future__ import annotations

import pytest

from raybench.scheduling.router import Router


@pytest.mark.parametrize("engines,inflight", [(0, 1), (1, 0), (-1, 2), (2, -1)])
def test_rejects_bad_sizes(engines, inflight):
    with pytest.raises(ValueError):
        Router(engines, inflight)


def test_initial_state():
    r = Router(3, 2)
    assert r.live == 3
    assert r.inflight == [0, 0, 0]
    assert r.failures == [0, 0, 0]
    assert r.retired == set()
    assert r.total_inflight() == 0


def test_round_robin_among_idle_engines():
    r = Router(3, 4)
    assert [r.acquire() for _ in range(3)] == [0, 1, 2]
    assert r.inflight == [1, 1, 1]
    # all equally loaded again: keeps rotating
    assert [r.acquire() for _ in range(3)] == [0, 1, 2]
    assert r.inflight == [2, 2, 2]


def test_round_robin_with_release_in_between():
    r = Router(2, 4)
    for _ in range(6):
        e = r.acquire()
        r.release(e)
    # load stays at 0 everywhere; choices alternate
    r2 = Router(2, 4)
    seq = []
    for _ in range(6):
        e = r2.acquire()
        seq.append(e)
        r2.release(e)
    assert seq == [0, 1, 0, 1, 0, 1]
    assert r.total_inflight() == 0


def test_least_loaded_wins_over_round_robin():
    r = Router(3, 5)
    # load: e0=2, e1=1, e2=0
    r.inflight = [2, 1, 0]
    assert r.acquire() == 2
    assert r.inflight == [2, 1, 1]
    # now e1 and e2 tie at 1, e0 at 2; next pointer is 0 => first among equals from 0 is e1
    assert r.acquire() == 1
    assert r.inflight == [2, 2, 1]
    assert r.acquire() == 2
    assert r.inflight == [2, 2, 2]


def test_least_loaded_after_releases():
    r = Router(3, 3)
    for _ in range(6):
        r.acquire()
    assert r.inflight == [2, 2, 2]
    r.release(1)
    assert r.acquire() == 1
    r.release(2)
    r.release(2)
    assert r.inflight == [2, 2, 0]
    assert r.acquire() == 2
    assert r.acquire() == 2
    assert r.inflight == [2, 2, 2]


def test_backpressure_none_when_all_full():
    r = Router(2, 2)
    got = [r.acquire() for _ in range(4)]
    assert sorted(got) == [0, 0, 1, 1]
    assert r.inflight == [2, 2]
    assert r.total_inflight() == 4
    assert r.acquire() is None
    assert r.acquire() is None
    # a refused acquire changes nothing
    assert r.inflight == [2, 2]
    r.release(1)
    assert r.acquire() == 1
    assert r.acquire() is None


def test_bound_per_engine_never_exceeded():
    r = Router(4, 3)
    taken = []
    while (e := r.acquire()) is not None:
        taken.append(e)
        assert max(r.inflight) <= 3
    assert len(taken) == 12
    assert r.inflight == [3, 3, 3, 3]


def test_single_slot_single_engine():
    r = Router(1, 1)
    assert r.acquire() == 0
    assert r.acquire() is None
    r.release(0)
    assert r.acquire() == 0


def test_retire_after_consecutive_failures():
    r = Router(2, 4, max_failures=3)
    for i in range(3):
        assert 0 not in r.retired
        r.inflight[0] += 1
        r.release(0, ok=False)
        assert r.failures[0] == i + 1
    assert r.retired == {0}
    assert r.live == 1
    # never chosen again, even though it is idle
    for _ in range(4):
        assert r.acquire() == 1
    assert r.acquire() is None
    assert r.inflight == [0, 4]


def test_success_resets_failure_count():
    r = Router(1, 4, max_failures=3)
    for _ in range(2):
        r.acquire()
        r.release(0, ok=False)
    assert r.failures[0] == 2
    r.acquire()
    r.release(0, ok=True)
    assert r.failures[0] == 0
    for _ in range(2):
        r.acquire()
        r.release(0, ok=False)
    assert r.retired == set()
    assert r.live == 1
    r.acquire()
    r.release(0, ok=False)
    assert r.retired == {0}
    assert r.live == 0


def test_all_retired_acquire_none():
    r = Router(2, 2, max_failures=1)
    a, b = r.acquire(), r.acquire()
    r.release(a, ok=False)
    assert r.live == 1
    r.release(b, ok=False)
    assert r.live == 0
    assert r.retired == {0, 1}
    assert r.acquire() is None


def test_release_frees_slot_even_on_failure():
    r = Router(1, 1, max_failures=5)
    assert r.acquire() == 0
    r.release(0, ok=False)
    assert r.inflight == [0]
    assert r.acquire() == 0


def test_retired_engine_inflight_still_released():
    r = Router(2, 2, max_failures=1)
    r.acquire()  # e0
    r.acquire()  # e1
    r.acquire()  # e0
    r.release(0, ok=False)
    assert 0 in r.retired
    assert r.inflight == [1, 1]
    r.release(0, ok=True)  # a late success on the retired engine
    assert r.inflight == [0, 1]
    assert 0 in r.retired  # success does not un-retire
    assert r.acquire() == 1


def test_live_counts_not_retired():
    r = Router(5, 1, max_failures=1)
    for e in (1, 3):
        r.inflight[e] += 1
        r.release(e, ok=False)
    assert r.live == 3
    seen = set()
    while (e := r.acquire()) is not None:
        seen.add(e)
    assert seen == {0, 2, 4}


def test_a_failed_engine_is_chosen_only_when_healthy_ones_are_full():
    router = Router(engines=2, max_inflight=2)
    assert router.acquire() == 0
    router.release(0, ok=False)  # engine 0 failed its batch: it is idle but suspect
    assert router.acquire() == 1
    assert router.acquire() == 1
    assert router.acquire() == 0  # engine 1 is full: the suspect engine is still used
    router.release(0, ok=True)  # a success clears the suspicion
    router.release(1)
    assert router.acquire() == 0


def test_batches_failed_in_one_incident_count_once():
    r = Router(2, 4, max_failures=2)
    sent = [(r.acquire(lambda e: e == 0), r.incident(0)) for _ in range(4)]
    assert [e for e, _ in sent] == [0, 0, 0, 0]
    opened = [r.release(0, ok=False, incident=i) for _, i in sent]  # one crash, four batches
    assert opened == [True, False, False, False]
    assert r.failures[0] == 1 and r.retired == set() and r.inflight[0] == 0
    # a batch sent after that incident failing is a second incident: retired
    assert r.acquire(lambda e: e == 0) == 0
    assert r.release(0, ok=False, incident=r.incident(0)) is True
    assert r.retired == {0}


def test_a_down_engine_is_not_chosen_until_it_is_back():
    r = Router(2, 1)
    r.down(0)
    assert r.available == 1 and r.live == 2
    assert r.acquire() == 1
    assert r.acquire() is None  # engine 0 is idle, but down
    r.back(0)
    assert r.acquire() == 0
    r.down(1)
    r.retire(1)
    assert r.lost == set() and r.live == 1 and r.available == 1
