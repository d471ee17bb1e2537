"""The single error hierarchy of raybench.

Every error raised for bad input or a failed run derives from :class:`RaybenchError`;
its message is one line meant for the user. The CLI prints it and exits with code 2.
:class:`Interrupted` (Ctrl-C, SIGTERM) is a ``KeyboardInterrupt`` instead, so no failure
handler swallows it; the CLI exits with 130 or 143.
"""

import signal


class RaybenchError(Exception):
    """Base class of every raybench error; ``str(err)`` is one line for the user."""


class ConfigError(RaybenchError):
    """A bad value in a command line, system file, rules file or spec."""


class DataError(RaybenchError):
    """A missing, truncated or malformed dataset file."""


class ModelError(RaybenchError):
    """A model file that is missing or does not match the benchmark's signature."""


class EngineError(RaybenchError):
    """An inference engine could not be created or failed while running."""


class RunError(RaybenchError):
    """A LoadGen run could not complete (for example every engine died)."""


def error_line(exc: BaseException) -> str:
    """The one line of an exception worth showing, also for Ray's wrapped errors.

    Ray wraps an actor's or task's exception with its traceback (in ``cause`` or the
    text); the last line naming an error is the original one.
    """
    cause = getattr(exc, "cause", None)
    lines = [ln.strip() for ln in str(cause if cause is not None else exc).splitlines()
             if ln.strip()]
    for line in reversed(lines):
        if "Error" in line:
            return line
    return lines[-1] if lines else type(exc).__name__


def choices(value: object, allowed) -> str:
    """Format 'X' (allowed: a, b, c) for one-line error messages.

    Args:
        value: The bad value.
        allowed: Iterable of allowed values.

    Returns:
        The formatted fragment.
    """
    value = getattr(value, "value", value)  # an enum member reads as its value
    return f"{value!r} (allowed: {', '.join(str(getattr(a, 'value', a)) for a in allowed)})"


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT) or SIGTERM.

    A ``KeyboardInterrupt``, so code that handles failures (``except Exception``) never
    swallows it. ``str(err)`` is one line for the user: the signal, what was stopped
    and where its partial results are; :attr:`exit_code` is 128 + the signal number
    (130 for Ctrl-C, 143 for SIGTERM), as shells report a process a signal ended.

    Args:
        what: What was stopped, e.g. ``during the PerformanceOnly test of ...``.
        signum: The signal (Ray reports a signal that arrives while it waits as a plain
            KeyboardInterrupt, so whoever installed the handler may correct it).
    """

    def __init__(self, what: str = "", signum: int = signal.SIGINT):
        super().__init__(what)
        self.what = what
        self.signum = signum

    def __str__(self) -> str:
        name = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}.get(self.signum,
                                                                       f"signal {self.signum}")
        return f"interrupted ({name}) {self.what}".strip()

    @property
    def exit_code(self) -> int:
        """128 + the signal number."""
        return 128 + self.signum
