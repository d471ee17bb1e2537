"""Command-line options derived from the argument table (:class:`RunRequest`).

A command decorated with :func:`run_options` gets one typer option per field of the
table (``--batch-size`` for ``batch_size``), grouped into help panels, with the field's
help, choices and default; it is called with the values the user gave (None when not
given) collected in one ``dict``, ready for :meth:`RunRequest.from_options`.
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Optional

import typer

from raybench.errors import choices
from raybench.run.request import table_fields


def _base_type(annotation: Any) -> Any:
    """``int`` for ``Optional[int]``, the annotation itself otherwise."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) in (typing.Union, getattr(
        __import__("types"), "UnionType", None)) and len(args) == 1 else annotation


def choice_parser(kind: type[enum.Enum], only: Optional[tuple] = None) -> Callable[[str], str]:
    """A parser that accepts a member's value (of ``only``, if given) in any case and names
    the allowed ones."""
    allowed = [m.value for m in kind if only is None or m in only]

    def parse(value: str) -> str:
        try:
            member = kind(value)
        except ValueError:
            member = None
        if member is None or member.value not in allowed:
            raise typer.BadParameter(choices(value, allowed)) from None
        return member.value

    return parse


METAVARS = {int: "N", float: "NUM", str: "TEXT", Path: "PATH"}  # short, so help fits 80


def flag(name: str) -> str:
    """The command-line flag of a table field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def table_parameters(skip: Iterable[str] = (), defaults: dict | None = None,
                     help_overrides: dict | None = None) -> list[inspect.Parameter]:
    """One keyword parameter per table field, annotated with its typer option.

    Args:
        skip: Fields the command does not offer.
        defaults: Shown defaults that differ from the table's (e.g. a command's own).
        help_overrides: Help texts that differ from the table's.
    """
    defaults, help_overrides = defaults or {}, help_overrides or {}
    params = []
    for name, info in table_fields().items():
        if name in skip:
            continue
        kind = _base_type(info.annotation)
        panel = (info.json_schema_extra or {}).get("panel")
        is_bool = kind is bool
        default = defaults.get(name, info.default if is_bool else None)
        shown = defaults.get(name, info.default)
        help_text = help_overrides.get(name, info.description)
        extra: dict = {"metavar": METAVARS.get(kind, "VALUE")}
        if isinstance(kind, type) and issubclass(kind, enum.Enum):  # any case: "offline"
            values = [m.value for m in kind]
            extra = {"parser": choice_parser(kind), "metavar": "NAME"}
            help_text = f"{help_text} One of: {', '.join(values)}."
            kind = str
        if is_bool:
            extra = {"metavar": ""}  # a flag takes no value
        elif shown is not None and "default" not in help_text.lower():
            help_text = f"{help_text} Default: {getattr(shown, 'value', shown)}."
        option = typer.Option(flag(name), help=help_text, rich_help_panel=panel,
                              show_default=False, **extra)
        annotation = Annotated[kind if is_bool else typing.Optional[kind], option]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                        default=default, annotation=annotation))
    return params


def run_options(skip: Iterable[str] = (), defaults: dict | None = None,
                help_overrides: dict | None = None) -> Callable:
    """Decorate ``command(request_values: dict, **own_options)`` with the table's options.

    The command's own parameters (after ``request_values``) are kept as its options, after
    the table's.
    """
    table = table_parameters(skip, defaults, help_overrides)
    names = {p.name for p in table}

    def decorate(func: Callable) -> Callable:
        own = list(inspect.signature(func, eval_str=True).parameters.values())[1:]

        @functools.wraps(func)
        def command(**kwargs):
            values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            return func(values, **kwargs)

        command.__signature__ = inspect.Signature(
            table + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own])
        return command

    return decorate
