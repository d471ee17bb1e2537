"""What every command shares: one-line errors and exit codes, signals, how much to say.

* A :class:`~raybench.errors.RaybenchError` prints one line and exits with code 2.
* Ctrl-C and SIGTERM stop the command cleanly (:class:`~raybench.errors.Interrupted`
  unwinds through every ``finally``: LoadGen, the engines and a local Ray are stopped),
  then one line says what was interrupted; exit code 130 or 143. A second signal
  while stopping is ignored, so the stopping is never cut short.
* ``--quiet`` prints only the results; ``--verbose`` shows Ray's own log records and the
  Ray workers' output. By default Ray's log records go to a file whose path is printed.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console

from raybench.errors import Interrupted, RaybenchError

console = Console()  # results
err_console = Console(stderr=True)
info_console = Console(stderr=True)  # around the results; off with --quiet


class Verbosity:
    """The top-level ``--quiet``/``--verbose`` choice (set once by the root command)."""

    quiet = False
    verbose = False

    @classmethod
    def set(cls, quiet: bool, verbose: bool) -> None:
        """Record the choice and silence ``info_console`` when quiet."""
        cls.quiet, cls.verbose = quiet, verbose
        info_console.quiet = quiet
        logging.getLogger("raybench").setLevel(logging.INFO if verbose else logging.NOTSET)


def handle_errors(func):
    """Decorate a command: one line and exit code 2 for a RaybenchError, one line and
    130/143 for Ctrl-C/SIGTERM (with the signals turned into :class:`Interrupted`)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        received: list[int] = []
        try:
            with interrupts(received):
                return func(*args, **kwargs)
        except RaybenchError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"Error: {message}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt as exc:
            interrupted = exc if isinstance(exc, Interrupted) else Interrupted()
            if received:  # the signal that started it (Ray may have lost it on the way)
                interrupted.signum = received[0]
            print(f"Error: {' '.join(str(interrupted).split())}", file=sys.stderr)
            raise typer.Exit(code=interrupted.exit_code) from None

    return wrapper


@contextmanager
def interrupts(received: list[int]) -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into :class:`Interrupted`; ignore later ones
    (the first is still being handled: actors and Ray are being stopped).

    Args:
        received: Gets the signals received, in order.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum=signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def wait_for_interrupt(what: str) -> None:
    """Block until Ctrl-C or SIGTERM (``--keep-dashboard``), saying what stays up."""
    info_console.print(f"{what}; press Ctrl-C to stop it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
