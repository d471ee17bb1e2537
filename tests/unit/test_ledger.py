"""Unit tests for raybench.scheduling.ledger.Ledger."""

from __future__ import annotations

import pytest

from raybench.scheduling.ledger import Batch, Ledger, LedgerError


def test_fresh_ledger_is_drained():
    led = Ledger()
    assert led.check_drained() is None
    assert led.outstanding() == 0
    assert led.open_batches == {}


def test_open_assigns_unique_increasing_ids_and_records_batch():
    led = Ledger()
    a = led.open([1, 2], [10, 20], engine=0)
    b = led.open([3], [30], engine=1, attempt=2)
    assert isinstance(a, Batch)
    assert a.batch_id != b.batch_id
    assert b.batch_id > a.batch_id
    assert (a.ids, a.indices, a.engine, a.attempt) == ([1, 2], [10, 20], 0, 1)
    assert (b.ids, b.indices, b.engine, b.attempt) == ([3], [30], 1, 2)
    assert set(led.open_batches) == {a.batch_id, b.batch_id}


def test_received_open_close_drains():
    led = Ledger()
    led.received([1, 2, 3])
    assert led.outstanding() == 3
    b = led.open([1, 2, 3], [0, 1, 2], engine=0)
    assert led.check_drained() == "1 batches still open"
    closed = led.close(b.batch_id)
    assert closed is b
    assert led.completed_count == 3
    assert led.outstanding() == 0
    assert led.open_batches == {}
    assert led.check_drained() is None


def test_close_twice_raises():
    led = Ledger()
    led.received([1])
    b = led.open([1], [0], engine=0)
    led.close(b.batch_id)
    with pytest.raises(LedgerError, match="not open"):
        led.close(b.batch_id)
    # the failed second close did not count anything
    assert led.completed_count == 1


def test_close_never_opened_raises():
    led = Ledger()
    with pytest.raises(LedgerError):
        led.close(12345)
    with pytest.raises(LedgerError):
        led.fail(12345)


def test_fail_then_close_raises_and_fail_twice_raises():
    led = Ledger()
    led.received([1])
    b = led.open([1], [0], engine=0)
    led.fail(b.batch_id)
    with pytest.raises(LedgerError):
        led.close(b.batch_id)
    with pytest.raises(LedgerError):
        led.fail(b.batch_id)


def test_close_then_fail_raises():
    led = Ledger()
    led.received([1])
    b = led.open([1], [0], engine=0)
    led.close(b.batch_id)
    with pytest.raises(LedgerError):
        led.fail(b.batch_id)


def test_fail_then_requeue_in_new_batch():
    led = Ledger()
    led.received([1, 2])
    b1 = led.open([1, 2], [10, 20], engine=0)
    failed = led.fail(b1.batch_id)
    assert failed is b1
    assert led.retried_count == 2
    assert led.completed_count == 0
    assert led.outstanding() == 2
    assert led.open_batches == {}
    # not drained: nothing open, but samples not completed
    assert led.check_drained() == "received 2 samples, completed 0"
    b2 = led.open(failed.ids, failed.indices, engine=1, attempt=failed.attempt + 1)
    assert b2.batch_id != b1.batch_id
    assert b2.attempt == 2
    led.close(b2.batch_id)
    assert led.completed_count == 2
    assert led.retried_count == 2
    assert led.check_drained() is None


def test_retried_count_accumulates():
    led = Ledger()
    led.received([1, 2, 3])
    b = led.open([1, 2, 3], [0, 1, 2], engine=0)
    led.fail(b.batch_id)
    b = led.open([1, 2, 3], [0, 1, 2], engine=1, attempt=2)
    led.fail(b.batch_id)
    assert led.retried_count == 6
    b = led.open([1, 2, 3], [0, 1, 2], engine=2, attempt=3)
    led.close(b.batch_id)
    assert led.check_drained() is None


def test_check_drained_messages():
    led = Ledger()
    led.received([1, 2, 3, 4])
    b1 = led.open([1, 2], [0, 1], engine=0)
    b2 = led.open([3], [2], engine=0)
    assert led.check_drained() == "2 batches still open"
    led.close(b1.batch_id)
    assert led.check_drained() == "1 batches still open"
    led.close(b2.batch_id)
    assert led.check_drained() == "received 4 samples, completed 3"
    b3 = led.open([4], [3], engine=1)
    led.close(b3.batch_id)
    assert led.check_drained() is None


def test_untracked_ledger_ignores_duplicate_ids():
    led = Ledger(track_ids=False)
    led.received([1, 1])
    b = led.open([1, 1], [0, 0], engine=0)
    led.close(b.batch_id)
    assert led.check_drained() is None


def test_track_ids_detects_duplicates_issued():
    led = Ledger(track_ids=True)
    led.received([1, 2, 3])
    with pytest.raises(LedgerError, match="issued twice"):
        led.received([4, 2])


def test_track_ids_allows_an_id_again_once_completed():
    # LoadGen's ids are addresses of its sample records, reused from one loadable set
    # to the next in accuracy runs larger than the performance sample count
    led = Ledger(track_ids=True)
    led.received([1, 2])
    b = led.open([1, 2], [0, 1], engine=0)
    led.close(b.batch_id)
    led.received([2])
    b = led.open([2], [1], engine=0)
    led.close(b.batch_id)
    assert led.check_drained() is None and led.completed_count == 3


def test_track_ids_detects_id_completed_twice():
    led = Ledger(track_ids=True)
    led.received([1, 2])
    b1 = led.open([1, 2], [0, 1], engine=0)
    b2 = led.open([2], [1], engine=1)  # a buggy scheduler sends id 2 twice
    led.close(b1.batch_id)
    with pytest.raises(LedgerError, match="completed twice"):
        led.close(b2.batch_id)


def test_track_ids_detects_completion_of_never_issued_id():
    led = Ledger(track_ids=True)
    led.received([1])
    b = led.open([99], [0], engine=0)
    with pytest.raises(LedgerError, match="completed twice"):
        led.close(b.batch_id)


def test_track_ids_never_completed_ids():
    led = Ledger(track_ids=True)
    led.received([1, 2])
    # counts match (2 == 2) but id 2 was never completed: id 1 went out twice in a batch
    b = led.open([1, 1], [0, 0], engine=0)
    led.close(b.batch_id)
    assert led.completed_count == led.received_count
    assert led.check_drained() == "1 sample ids never completed"


def test_track_ids_happy_path_with_retry():
    led = Ledger(track_ids=True)
    led.received([1, 2, 3])
    led.received([4])
    b = led.open([1, 2], [0, 1], engine=0)
    led.fail(b.batch_id)
    b = led.open([1, 2], [0, 1], engine=1, attempt=2)
    led.close(b.batch_id)
    b = led.open([3, 4], [2, 3], engine=0)
    led.close(b.batch_id)
    assert led.check_drained() is None
    assert led.retried_count == 2
