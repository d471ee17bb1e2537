"""A run's results directory: owned by one run at a time, written atomically, never lost.

``<output>/<system>/<benchmark>/<scenario>/`` belongs to one run while it runs (an
exclusive lock on ``.raybench.lock`` inside it; the operating system drops the lock when
the process ends, however it ends), so a second run on the same path is refused with
one line naming the first one's pid.

Each LoadGen test is written into ``<test>.partial`` and renamed to ``<test>``
(``accuracy``, ``performance/run_1``) only when complete. Nothing is ever deleted:

* a result already in place is first moved, whole, into ``history/<time>/<test>``;
* the ``.partial`` of a test that failed or was interrupted stays where it is (the
  error names it) until the next run on the path moves it into
  ``history/<time>/<test>.partial``;
* the two renames that put a result in place are written down first in
  ``.raybench.moving``; a run that died between them is completed by the next run
  that takes the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Optional

from raybench.errors import ConfigError, RunError

log = logging.getLogger(__name__)

LOCK_NAME = ".raybench.lock"
JOURNAL = ".raybench.moving"
HISTORY = "history"
PARTIAL = ".partial"

_REASONS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.ENOTDIR: "a file is in the way",
            errno.EEXIST: "a file is in the way"}


def os_error_line(exc: OSError, path: Optional[Path] = None) -> str:
    """``<file>: <reason>`` for an OSError: the file it names, else ``path`` (a failed
    write, on a full disk say, names no file)."""
    where = exc.filename or path or "?"
    return f"{where}: {_REASONS.get(exc.errno, exc.strerror or str(exc))}"


def _blocker(path: Path) -> Optional[Path]:
    """The nearest existing ancestor of ``path`` (or itself) if it is not a directory."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def check_output_dir(path: Path, what: str = "--output") -> Path:
    """Create ``path`` and check a file can be written in it, before any work starts.

    Raises:
        ConfigError: One line naming the path and why it cannot hold results
            (a file in the way, ``/dev/null``, no permission, a full disk).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".raybench-write-test-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"raybench")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        blocker = _blocker(path)
        if blocker is not None:
            raise ConfigError(f"{what} {path}: "
                              + ("not a directory" if blocker == path
                                 else f"{blocker} is not a directory")) from None
        raise ConfigError(f"{what} {path}: cannot write there: {os_error_line(exc, path)}"
                          ) from None
    return path


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
        """Create the directory, take its lock and finish a move a dead run left half done.

        Raises:
            ConfigError: The path cannot be a writable directory (one line naming it).
            RunError: Another run holds the directory.
        """
        check_output_dir(self.root, "results directory")
        try:
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"results directory {os_error_line(exc, self.root)}") from None
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
        self._finish_interrupted_move()

    def release(self) -> None:
        """Drop the lock (the lock file stays; it is empty and harmless)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)
            self._lock_fd = None

    def partial_dir(self, name: str) -> Path:
        """Where test ``name`` is written while it runs."""
        return self.root / (name + PARTIAL)

    def start_test(self, name: str) -> Path:
        """A fresh ``<name>.partial`` directory for a test (``name`` like ``performance/run_1``).

        A ``.partial`` a failed or interrupted run left is moved into ``history/``.

        Raises:
            RunError: The directory cannot be written (one line naming it).
        """
        partial = self.partial_dir(name)
        try:
            if partial.exists():
                keep = self._history_slot(partial, name + PARTIAL)
                os.rename(partial, keep)
                log.warning("moved %s, left by an interrupted run, to %s", partial, keep)
            partial.mkdir(parents=True)
        except OSError as exc:
            raise RunError(f"cannot write results: {os_error_line(exc, partial)}") from None
        return partial

    def finish_test(self, name: str) -> Path:
        """Move ``<name>.partial`` into place; an earlier result goes to ``history/``.

        Returns:
            The test's final directory.

        Raises:
            RunError: The directory cannot be written (one line naming it).
        """
        final = self.root / name
        try:
            keep = self._history_slot(final, name) if final.exists() else None
            self._write_journal({"name": name, "keep": keep and str(keep.relative_to(self.root))})
            self._move_into_place(name, keep)
        except OSError as exc:
            raise RunError(f"cannot write results: {os_error_line(exc, self.root)}") from None
        return final

    # -- the two renames, written down first -----------------------------------------
    def _move_into_place(self, name: str, keep: Optional[Path]) -> None:
        final, partial = self.root / name, self.partial_dir(name)
        if keep is not None and final.exists():
            keep.parent.mkdir(parents=True, exist_ok=True)
            os.rename(final, keep)
            log.info("earlier result kept in %s", keep)
        os.rename(partial, final)
        (self.root / JOURNAL).unlink()

    def _write_journal(self, entry: dict) -> None:
        tmp = self.root / (JOURNAL + ".tmp")
        with open(tmp, "w") as f:
            json.dump(entry, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.root / JOURNAL)

    def _finish_interrupted_move(self) -> None:
        journal = self.root / JOURNAL
        if not journal.is_file():
            return
        try:
            entry = json.loads(journal.read_text())
            name, keep = entry["name"], entry.get("keep")
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable %s", journal)
            journal.unlink(missing_ok=True)
            return
        if not self.partial_dir(name).is_dir():  # both renames were done
            journal.unlink()
            return
        try:
            self._move_into_place(name, self.root / keep if keep else None)
        except OSError as exc:
            raise RunError(f"cannot finish moving an earlier result into place: "
                           f"{os_error_line(exc, self.root)}") from None
        log.warning("put %s in place: the run that wrote it died while moving it", self.root / name)

    def _history_slot(self, path: Path, name: str) -> Path:
        """A fresh ``history/<path's time>[-n]/<name>`` for ``path``."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
        keep, n = self.root / HISTORY / stamp / name, 1
        while keep.exists():
            n += 1
            keep = self.root / HISTORY / f"{stamp}-{n}" / name
        keep.parent.mkdir(parents=True, exist_ok=True)
        return keep
