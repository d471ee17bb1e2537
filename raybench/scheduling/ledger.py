"""Exactly-once accounting of the samples LoadGen issued."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


class LedgerError(RuntimeError):
    """A batch was closed twice or never opened: an exactly-once violation."""


@dataclass
class Batch:
    """A batch on its way to (or back from) an engine."""

    batch_id: int
    ids: list[int]
    indices: list[int]
    engine: int
    attempt: int = 1
    incident: int = 0  # the engine's incident number when it was sent (see Router)


class Ledger:
    """Remembers every open batch; each batch leaves exactly once.

    Samples enter with :meth:`received`, travel in batches opened with :meth:`open`,
    and leave by :meth:`close` (completed) or :meth:`fail` (to be sent again in a new
    batch). At the end, :meth:`check_drained` says whether every received sample was
    completed exactly once. With ``track_ids`` it also checks sample ids one by one.

    Not thread-safe: the dispatcher holds its lock around every call.
    """

    def __init__(self, track_ids: bool = False):
        self.open_batches: dict[int, Batch] = {}
        self.received_count = 0
        self.completed_count = 0
        self.retried_count = 0
        self._next_id = 0
        self._track = track_ids
        self._outstanding_ids: set[int] = set()

    def received(self, ids: list[int]) -> None:
        """Count samples issued by LoadGen."""
        self.received_count += len(ids)
        if self._track:
            # ids are LoadGen's addresses of its sample records: unique among the samples
            # outstanding, reused once completed (accuracy runs, from one set to the next)
            dupes = self._outstanding_ids.intersection(ids)
            if dupes:
                raise LedgerError(f"sample ids issued twice: {sorted(dupes)[:5]}")
            self._outstanding_ids.update(ids)

    def open(self, ids: list[int], indices: list[int], engine: int, attempt: int = 1,
             incident: int = 0) -> Batch:
        """Record a batch sent to ``engine`` (in its incident ``incident``)."""
        batch = Batch(self._next_id, ids, indices, engine, attempt, incident)
        self._next_id += 1
        self.open_batches[batch.batch_id] = batch
        return batch

    def _pop(self, batch_id: int) -> Batch:
        batch = self.open_batches.pop(batch_id, None)
        if batch is None:
            raise LedgerError(f"batch {batch_id} is not open (closed twice or never opened)")
        return batch

    def close(self, batch_id: int) -> Batch:
        """A batch completed: its samples leave the ledger."""
        batch = self._pop(batch_id)
        self.completed_count += len(batch.ids)
        if self._track:
            missing = set(batch.ids) - self._outstanding_ids
            if missing:
                raise LedgerError(f"sample ids completed twice: {sorted(missing)[:5]}")
            self._outstanding_ids.difference_update(batch.ids)
        return batch

    def fail(self, batch_id: int) -> Batch:
        """A batch's engine failed: the batch leaves so its samples can be sent again."""
        batch = self._pop(batch_id)
        self.retried_count += len(batch.ids)
        return batch

    def outstanding(self) -> int:
        """Samples received and not yet completed."""
        return self.received_count - self.completed_count

    def check_drained(self) -> Optional[str]:
        """None if every received sample completed exactly once, else what is wrong."""
        if self.open_batches:
            return f"{len(self.open_batches)} batches still open"
        if self.completed_count != self.received_count:
            return f"received {self.received_count} samples, completed {self.completed_count}"
        if self._track and self._outstanding_ids:
            return f"{len(self._outstanding_ids)} sample ids never completed"
        return None
