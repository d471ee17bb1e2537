"""One run: the request (the argument table), placement, the lifecycle, the record."""

from raybench.run.lifecycle import Prepared, RunReport, TestReport, execute, prepare, run
from raybench.run.request import RunRequest

__all__ = ["RunRequest", "Prepared", "RunReport", "TestReport", "prepare", "execute", "run"]
