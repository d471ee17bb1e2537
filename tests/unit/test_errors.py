"""The one-line form of exceptions, Ray's wrapped ones included."""

from raybench.errors import error_line


class Wrapped(Exception):
    """Like Ray's errors: a traceback in the text and the original in ``cause``."""

    def __init__(self, text, cause=None):
        super().__init__(text)
        self.cause = cause


def test_the_last_line_naming_an_error_wins():
    text = "Traceback (most recent call last):\n  File x\nValueError: bad shape\n  (pid=1)\n"
    assert error_line(Wrapped(text)) == "ValueError: bad shape"


def test_the_cause_is_preferred_and_empty_text_names_the_type():
    assert error_line(Wrapped("outer text", cause=KeyError("k"))) == "'k'"
    assert error_line(RuntimeError()) == "RuntimeError"
