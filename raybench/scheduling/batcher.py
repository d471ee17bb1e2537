"""Dynamic batching of LoadGen samples: cut at the maximum size or on a timeout.

Pure Python, no Ray; the clock is injectable so tests control time.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Optional


class Batcher:
    """Queues samples as LoadGen issues them and cuts batches.

    A batch is cut when ``max_batch`` samples are waiting, or when the oldest waiting
    sample has waited ``timeout_s`` (Server). With ``timeout_s == 0`` every issued chunk
    is ready at once (Offline, SingleStream, MultiStream: whole chunks of at most
    ``max_batch``). Requeued samples (from a failed engine) go first and are ready at once.

    Not thread-safe: the dispatcher holds its lock around every call.
    """

    def __init__(self, max_batch: int, timeout_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.timeout_s = max(0.0, timeout_s)
        self.clock = clock
        # each chunk: [ids, indices, offset, due_time, attempt]
        self._chunks: deque[list] = deque()
        self._pending = 0

    def __len__(self) -> int:
        return self._pending

    def add(self, ids: list[int], indices: list[int], now: Optional[float] = None) -> None:
        """Queue one issue call's samples (``ids[i]`` is the sample of ``indices[i]``)."""
        if not ids:
            return
        now = self.clock() if now is None else now
        self._chunks.append([ids, indices, 0, now + self.timeout_s, 1])
        self._pending += len(ids)

    def requeue(self, ids: list[int], indices: list[int], attempt: int) -> None:
        """Put a failed batch's samples back at the front, ready at once.

        Args:
            ids: Sample ids of the failed batch.
            indices: Their sample indices.
            attempt: The attempt number the samples' next batch will carry.
        """
        if ids:
            self._chunks.appendleft([ids, indices, 0, float("-inf"), attempt])
            self._pending += len(ids)

    def flush(self) -> None:
        """Make every queued sample ready now (LoadGen's flush, or end of issue)."""
        for chunk in self._chunks:
            chunk[3] = float("-inf")

    def next_due(self) -> Optional[float]:
        """Clock time at which the oldest queued sample becomes due, or None if empty."""
        return self._chunks[0][3] if self._chunks else None

    def ready(self, now: Optional[float] = None) -> bool:
        """Whether :meth:`pop` would return a batch at ``now``."""
        if not self._chunks:
            return False
        if self._pending >= self.max_batch:
            return True
        now = self.clock() if now is None else now
        return self._chunks[0][3] <= now

    def pop(self, now: Optional[float] = None,
            limit: Optional[int] = None) -> Optional[tuple[list[int], list[int], int]]:
        """Cut the next batch if one is ready.

        Args:
            now: Clock time (default: the clock's).
            limit: Most samples to take (default ``max_batch``); a larger limit lets one
                engine call carry several batches when the queue is long.

        Returns:
            ``(ids, indices, attempt)`` of at most ``limit`` samples, oldest first
            (attempt: the highest of the samples' attempt numbers), or None.
        """
        if not self.ready(now):
            return None
        want = min(limit or self.max_batch, self._pending)
        ids: list[int] = []
        indices: list[int] = []
        attempt = 1
        while len(ids) < want:
            chunk = self._chunks[0]
            attempt = max(attempt, chunk[4])
            c_ids, c_idx, offset = chunk[0], chunk[1], chunk[2]
            take = min(want - len(ids), len(c_ids) - offset)
            if offset == 0 and take == len(c_ids) == want:
                # the common case: one whole chunk is the whole batch, no copy (only then:
                # extending an aliased chunk list would mutate the caller's list)
                ids, indices = c_ids, c_idx
            else:
                ids.extend(c_ids[offset:offset + take])
                indices.extend(c_idx[offset:offset + take])
            if offset + take == len(c_ids):
                self._chunks.popleft()
            else:
                chunk[2] = offset + take
        self._pending -= len(ids)
        return ids, indices, attempt
