"""Unit tests for raybench.scheduling.batcher.Batcher (pure Python, fake clock)."""

from __future__ import annotations

import pytest

from raybench.scheduling.batcher import Batcher


class FakeClock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def drain(b: Batcher, now=None):
    out = []
    while True:
        got = b.pop(now)
        if got is None:
            return out
        out.append(got)


# -- construction ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1])
def test_max_batch_must_be_positive(bad):
    with pytest.raises(ValueError):
        Batcher(bad)


def test_negative_timeout_is_clamped_to_zero():
    clock = FakeClock()
    b = Batcher(8, timeout_s=-5.0, clock=clock)
    assert b.timeout_s == 0.0
    b.add([1], [10])
    assert b.ready()
    assert b.pop() == ([1], [10], 1)


def test_empty_batcher():
    b = Batcher(4, timeout_s=1.0, clock=FakeClock())
    assert len(b) == 0
    assert not b.ready()
    assert b.pop() is None
    assert b.next_due() is None
    b.flush()  # no-op on empty
    assert b.pop() is None


def test_add_empty_is_ignored():
    b = Batcher(4, clock=FakeClock())
    b.add([], [])
    assert len(b) == 0
    assert b.next_due() is None
    b.requeue([], [], attempt=3)
    assert len(b) == 0
    assert b.pop() is None


# -- max size cut -----------------------------------------------------------------------
def test_cut_at_max_batch_before_timeout():
    clock = FakeClock()
    b = Batcher(3, timeout_s=10.0, clock=clock)
    b.add([1, 2], [11, 12])
    assert not b.ready()
    assert b.pop() is None
    b.add([3], [13])
    assert b.ready()  # 3 >= max_batch, although nothing is due yet
    assert b.pop() == ([1, 2, 3], [11, 12, 13], 1)
    assert len(b) == 0
    assert b.pop() is None


def test_max_batch_cut_leaves_remainder_waiting_for_timeout():
    clock = FakeClock()
    b = Batcher(4, timeout_s=10.0, clock=clock)
    b.add([1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5])
    assert b.pop() == ([1, 2, 3, 4], [0, 1, 2, 3], 1)
    assert len(b) == 2
    # the remainder (2 < max_batch) is not due yet
    assert not b.ready()
    assert b.pop() is None
    clock.advance(10.0)
    assert b.pop() == ([5, 6], [4, 5], 1)
    assert len(b) == 0


def test_batches_never_exceed_max_batch():
    b = Batcher(5, clock=FakeClock())
    for start in range(0, 37, 3):
        ids = list(range(start, min(start + 3, 37)))
        b.add(ids, [i * 10 for i in ids])
    sizes = [len(ids) for ids, _, _ in drain(b)]
    assert all(s <= 5 for s in sizes)
    assert sum(sizes) == 37


# -- timeout cut ---------------------------------------------------------------------
def test_timeout_cut_with_fake_clock():
    clock = FakeClock(100.0)
    b = Batcher(8, timeout_s=0.5, clock=clock)
    b.add([1], [10])
    assert b.next_due() == pytest.approx(100.5)
    clock.advance(0.2)
    b.add([2, 3], [20, 30])
    assert not b.ready()
    clock.advance(0.29)  # 100.49: oldest has waited 0.49 < 0.5
    assert not b.ready()
    assert b.pop() is None
    clock.advance(0.01)  # exactly due (due <= now)
    assert b.ready()
    # oldest is due: the batch carries everything waiting (up to max_batch)
    assert b.pop() == ([1, 2, 3], [10, 20, 30], 1)
    assert len(b) == 0
    assert b.next_due() is None


def test_timeout_is_measured_from_the_oldest_chunk():
    clock = FakeClock()
    b = Batcher(8, timeout_s=1.0, clock=clock)
    b.add([1], [1])
    clock.advance(0.9)
    b.add([2], [2])
    assert b.next_due() == pytest.approx(1.0)
    clock.advance(0.1)
    assert b.pop() == ([1, 2], [1, 2], 1)


def test_explicit_now_overrides_clock():
    clock = FakeClock(0.0)
    b = Batcher(8, timeout_s=1.0, clock=clock)
    b.add([1], [1], now=50.0)
    assert b.next_due() == pytest.approx(51.0)
    assert not b.ready(now=50.5)
    assert b.pop(now=50.5) is None
    assert b.ready(now=51.0)
    # the clock itself (0.0) would say not ready
    assert not b.ready()
    assert b.pop(now=51.0) == ([1], [1], 1)


def test_zero_timeout_chunks_are_ready_at_once():
    clock = FakeClock()
    b = Batcher(4, timeout_s=0.0, clock=clock)
    b.add([7, 8], [70, 80])
    assert b.ready()
    assert b.pop() == ([7, 8], [70, 80], 1)


# -- flush -----------------------------------------------------------------------------
def test_flush_makes_everything_ready_now():
    clock = FakeClock()
    b = Batcher(4, timeout_s=1000.0, clock=clock)
    b.add([1], [1])
    b.add([2, 3], [2, 3])
    assert not b.ready()
    b.flush()
    assert b.ready()
    assert b.next_due() == float("-inf")
    assert b.pop() == ([1, 2, 3], [1, 2, 3], 1)
    assert b.pop() is None


def test_flush_does_not_affect_later_adds():
    clock = FakeClock()
    b = Batcher(4, timeout_s=5.0, clock=clock)
    b.add([1], [1])
    b.flush()
    assert b.pop() == ([1], [1], 1)
    b.add([2], [2])
    assert not b.ready()
    clock.advance(5.0)
    assert b.pop() == ([2], [2], 1)


def test_flush_with_more_than_max_batch_yields_full_batches_then_rest():
    b = Batcher(3, timeout_s=100.0, clock=FakeClock())
    b.add(list(range(7)), list(range(100, 107)))
    b.flush()
    got = drain(b)
    assert [g[0] for g in got] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [g[1] for g in got] == [[100, 101, 102], [103, 104, 105], [106]]


# -- requeue ---------------------------------------------------------------------------
def test_requeue_goes_first_and_is_ready_at_once_with_its_attempt():
    clock = FakeClock()
    b = Batcher(2, timeout_s=10.0, clock=clock)
    b.add([1], [10])
    b.requeue([5, 6], [50, 60], attempt=2)
    assert len(b) == 3
    assert b.ready()
    assert b.next_due() == float("-inf")
    assert b.pop() == ([5, 6], [50, 60], 2)
    # the fresh sample still waits for its own timeout
    assert not b.ready()
    clock.advance(10.0)
    assert b.pop() == ([1], [10], 1)


def test_requeue_ready_even_below_max_batch_and_before_timeout():
    clock = FakeClock()
    b = Batcher(100, timeout_s=1e9, clock=clock)
    b.requeue([9], [90], attempt=4)
    assert b.pop() == ([9], [90], 4)


def test_batch_attempt_is_highest_of_its_samples():
    b = Batcher(4, clock=FakeClock())
    b.add([1, 2], [1, 2])
    b.requeue([3], [3], attempt=3)
    # requeued first; the batch mixes attempt 3 and fresh samples => attempt 3
    assert b.pop() == ([3, 1, 2], [3, 1, 2], 3)


def test_latest_requeue_goes_in_front_of_earlier_requeue():
    b = Batcher(1, clock=FakeClock())
    b.add([1], [1])
    b.requeue([2], [2], attempt=2)
    b.requeue([3], [3], attempt=5)
    assert [g for g in drain(b)] == [([3], [3], 5), ([2], [2], 2), ([1], [1], 1)]


def test_fresh_batch_after_requeue_resets_attempt():
    b = Batcher(2, clock=FakeClock())
    b.requeue([1, 2], [1, 2], attempt=3)
    b.add([3, 4], [3, 4])
    assert b.pop() == ([1, 2], [1, 2], 3)
    assert b.pop() == ([3, 4], [3, 4], 1)


# -- chunks: no-copy path, splitting, order ---------------------------------------------
def test_whole_chunk_is_returned_without_copy():
    b = Batcher(4, clock=FakeClock())
    ids, idx = [1, 2, 3], [10, 20, 30]
    b.add(ids, idx)
    got_ids, got_idx, attempt = b.pop()
    assert got_ids is ids
    assert got_idx is idx
    assert attempt == 1


def test_exactly_max_batch_chunk_is_not_copied():
    b = Batcher(3, clock=FakeClock())
    ids, idx = [1, 2, 3], [10, 20, 30]
    b.add(ids, idx)
    got_ids, got_idx, _ = b.pop()
    assert got_ids is ids and got_idx is idx


def test_combining_chunks_never_mutates_callers_lists():
    b = Batcher(4, clock=FakeClock())
    a_ids, a_idx = [1, 2], [10, 20]
    c_ids, c_idx = [3, 4], [30, 40]
    b.add(a_ids, a_idx)
    b.add(c_ids, c_idx)
    got = b.pop()
    assert got == ([1, 2, 3, 4], [10, 20, 30, 40], 1)
    assert a_ids == [1, 2] and a_idx == [10, 20]
    assert c_ids == [3, 4] and c_idx == [30, 40]


def test_splitting_never_mutates_callers_lists():
    b = Batcher(2, clock=FakeClock())
    ids, idx = [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]
    b.add(ids, idx)
    drain(b)
    assert ids == [1, 2, 3, 4, 5]
    assert idx == [10, 20, 30, 40, 50]


def test_chunk_split_across_batches():
    b = Batcher(3, clock=FakeClock())
    b.add([1, 2], [10, 20])
    b.add([3, 4, 5, 6], [30, 40, 50, 60])
    b.add([7], [70])
    got = drain(b)
    assert got == [
        ([1, 2, 3], [10, 20, 30], 1),
        ([4, 5, 6], [40, 50, 60], 1),
        ([7], [70], 1),
    ]
    assert len(b) == 0


def test_partially_consumed_chunk_keeps_its_due_time():
    clock = FakeClock()
    b = Batcher(2, timeout_s=1.0, clock=clock)
    b.add([1, 2, 3], [1, 2, 3])  # due at 1.0
    assert b.pop() == ([1, 2], [1, 2], 1)  # size cut
    assert b.next_due() == pytest.approx(1.0)
    assert not b.ready()
    clock.advance(1.0)
    assert b.pop() == ([3], [3], 1)


def test_order_preserved_and_ids_match_indices():
    b = Batcher(7, clock=FakeClock())
    expected = []
    n = 0
    for size in [1, 5, 2, 9, 3, 1, 11, 4]:
        ids = list(range(n, n + size))
        b.add(ids, [i * 3 + 1 for i in ids])
        expected.extend(ids)
        n += size
    out_ids, out_idx = [], []
    for ids, idx, attempt in drain(b):
        assert 1 <= len(ids) <= 7
        assert len(ids) == len(idx)
        assert attempt == 1
        out_ids.extend(ids)
        out_idx.extend(idx)
    assert out_ids == expected
    assert out_idx == [i * 3 + 1 for i in expected]


def test_len_accounting():
    clock = FakeClock()
    b = Batcher(4, timeout_s=1.0, clock=clock)
    assert len(b) == 0
    b.add([1, 2, 3], [1, 2, 3])
    assert len(b) == 3
    b.add([4, 5, 6], [4, 5, 6])
    assert len(b) == 6
    b.requeue([7, 8], [7, 8], attempt=2)
    assert len(b) == 8
    ids, _, _ = b.pop()
    assert len(ids) == 4 and len(b) == 4
    ids, _, _ = b.pop()
    assert len(ids) == 4 and len(b) == 0
    assert b.pop() is None
    assert len(b) == 0
    b.add([9], [9])
    assert len(b) == 1
    clock.advance(1.0)
    b.pop()
    assert len(b) == 0


def test_every_sample_comes_out_exactly_once():
    clock = FakeClock()
    b = Batcher(6, timeout_s=0.01, clock=clock)
    sent = []
    n = 0
    for step in range(50):
        size = (step * 7) % 5 + 1
        b.add(list(range(n, n + size)), list(range(n, n + size)))
        n += size
        clock.advance(0.004)
        for ids, _, _ in drain(b):
            sent.extend(ids)
    b.flush()
    for ids, _, _ in drain(b):
        sent.extend(ids)
    assert sorted(sent) == list(range(n))
    assert len(sent) == n
    assert len(b) == 0
