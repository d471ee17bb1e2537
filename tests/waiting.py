"""Waiting for another thread in tests of threaded pure logic (no Ray)."""

from __future__ import annotations

import time
from typing import Callable

WAIT_S = 10.0  # generous: only reached if something is broken


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """Poll ``predicate`` every millisecond; whether it became true within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return predicate()
