"""The null engine: completes every batch at once; measures the harness itself."""

from __future__ import annotations

from raybench.engines.base import Engine


class NullEngine(Engine):
    """Does no work and produces no outputs."""

    name = "null"
    needs_data = False
    # LoadGen pre-generates queries for twice the minimum duration at the expected latency
    # and calls a run that used them up sooner INVALID: inline, a null query takes 10-20 us
    # (mean 16 on a 2-core host), so 20 us stays VALID down to a 10 us mean; a 10 s run
    # then holds 1M queries (about 450 MB in LoadGen)
    single_stream_latency_ns = 20_000

    def run_count(self, count: int) -> None:
        return None
