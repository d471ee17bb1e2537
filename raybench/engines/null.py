"""The null engine: completes every batch at once; measures the harness itself."""

from __future__ import annotations

from raybench.engines.base import Engine


class NullEngine(Engine):
    """Does no work and produces no outputs."""

    name = "null"
    needs_data = False

    def run_count(self, count: int) -> None:
        return None
