"""A run's results directory: owned by one run at a time, written atomically, never lost.

``<output>/<system>/<benchmark>/<scenario>/`` belongs to one run while it runs (an
exclusive lock on ``.raybench.lock`` inside it; the operating system drops the lock when
the process ends, however it ends). Each LoadGen test is written into
``<test>.partial`` and only renamed to ``<test>`` (``accuracy``, ``performance/run_1``)
when complete. A result already there is first moved, whole, into
``history/<time>/<test>``: a second run never deletes the first.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import time
from pathlib import Path

from raybench.errors import ConfigError, RunError

log = logging.getLogger(__name__)

LOCK_NAME = ".raybench.lock"
HISTORY = "history"
PARTIAL = ".partial"


def _os_error(path: Path, exc: OSError) -> str:
    reason = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.ENOTDIR: "a file is in the way", errno.EEXIST: "a file is in the way"}
    return f"{path}: {reason.get(exc.errno, exc.strerror or str(exc))}"


class ResultDir:
    """The results directory of one run (see the module docstring).

    Args:
        root: ``<output>/<system>/<benchmark>/<scenario>``.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock_fd: int | None = None

    def __enter__(self) -> "ResultDir":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Create the directory and take its lock.

        Raises:
            ConfigError: The path cannot be a writable directory (one line naming it).
            RunError: Another run holds the directory.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"results directory {_os_error(Path(exc.filename or self.root), exc)}"
                              ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunError(f"results directory {self.root} is in use by another raybench run "
                           f"(pid {holder}); wait for it or pass another --output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def release(self) -> None:
        """Drop the lock (the lock file stays; it is empty and harmless)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)
            self._lock_fd = None

    def start_test(self, name: str) -> Path:
        """A fresh ``<name>.partial`` directory for a test (``name`` like ``performance/run_1``).

        A ``.partial`` left by a run that died is removed: with the lock held, no run
        is writing it.
        """
        partial = self.root / (name + PARTIAL)
        if partial.exists():
            log.warning("removing %s, left by an interrupted run", partial)
            shutil.rmtree(partial)
        try:
            partial.mkdir(parents=True)
        except OSError as exc:
            raise RunError(f"cannot write results: {_os_error(partial, exc)}") from None
        return partial

    def finish_test(self, name: str) -> Path:
        """Move ``<name>.partial`` into place; an earlier result goes to ``history/``.

        Returns:
            The test's final directory.
        """
        final = self.root / name
        partial = self.root / (name + PARTIAL)
        if final.exists():
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(final.stat().st_mtime))
            keep = self.root / HISTORY / stamp / name
            n = 1
            while keep.exists():
                n += 1
                keep = self.root / HISTORY / f"{stamp}-{n}" / name
            keep.parent.mkdir(parents=True, exist_ok=True)
            os.rename(final, keep)
            log.info("earlier result kept in %s", keep)
        os.rename(partial, final)
        return final

    def discard_test(self, name: str) -> None:
        """Remove the ``.partial`` of a test that failed."""
        shutil.rmtree(self.root / (name + PARTIAL), ignore_errors=True)
