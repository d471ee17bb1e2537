"""Loading system files from ``systems/``.

A system file is YAML validated by :class:`raybench.config.models.System`. It may name one
other file in the same folder with ``extends: <stem>``; that parent's fields are the starting
point and the child overrides them per benchmark, scenario and field (``description`` per
key). Parents may not extend anything themselves (one level only). Files whose name starts
with ``_`` hold shared defaults: they can be extended but are not systems.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from raybench.config.models import System
from raybench.config.names import BENCHMARKS, SCENARIOS
from raybench.errors import ConfigError, choices

log = logging.getLogger(__name__)

_MISSING = object()


def systems_dir() -> Path:
    """The folder of system files: $RAYBENCH_SYSTEMS_DIR, else the project's ``systems/``
    (installed as package data inside ``raybench/``, beside it in a source tree)."""
    env = os.environ.get("RAYBENCH_SYSTEMS_DIR")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    installed = package / "systems"
    return installed if installed.is_dir() else package.parent / "systems"


def system_ids(directory: Path | None = None) -> list[str]:
    """The ids of every system file in ``directory`` (shared ``_*.yaml`` files excluded)."""
    directory = directory or systems_dir()
    return sorted(p.stem for p in directory.glob("*.yaml") if not p.stem.startswith("_"))


def _read(path: Path) -> dict[str, Any]:
    """Parse one YAML file into a mapping, or raise a one-line ConfigError."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a YAML text file (byte {exc.start} is not UTF-8)") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {first}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of fields, got {type(data).__name__}")
    return data


def _merge(parent: Any, child: Any) -> Any:
    """Deep-merge two parsed YAML values: mappings per key, anything else the child wins."""
    if isinstance(parent, dict) and isinstance(child, dict):
        merged = dict(parent)
        for key, value in child.items():
            merged[key] = _merge(parent[key], value) if key in parent else value
        return merged
    return child


def _lookup(data: Any, loc: tuple) -> Any:
    """The value at ``loc`` in nested mappings, or _MISSING."""
    for part in loc:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _resolve_parent(path: Path, data: dict[str, Any], directory: Path) -> tuple[Path, dict[str, Any]] | None:
    """Read the file ``data['extends']`` names; check it exists and extends nothing."""
    parent_id = data.get("extends")
    if parent_id is None:
        return None
    if not isinstance(parent_id, str) or not parent_id:
        raise ConfigError(f"{path}: extends: expected the name of a file in {directory}, got {parent_id!r}")
    if parent_id == path.stem:
        raise ConfigError(f"{path}: extends: cycle: {path.stem} extends itself")
    parent_path = directory / f"{parent_id}.yaml"
    if not parent_path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml") if p.stem != path.stem)
        raise ConfigError(f"{path}: extends: no file {choices(parent_id, known)}")
    parent = _read(parent_path)
    grand = parent.get("extends")
    if grand is not None:
        if grand == path.stem:
            raise ConfigError(f"{path}: extends: cycle: {path.stem} -> {parent_id} -> {grand}")
        raise ConfigError(
            f"{path}: extends: {parent_id!r} itself extends {grand!r}; only one level of extends is allowed"
        )
    return parent_path, parent


def _format_error(err: dict, path: Path, child: dict, parent: tuple[Path, dict] | None) -> str:
    """One line naming the file and the field a pydantic error is about."""
    loc = tuple(err["loc"])
    where = path
    if parent is not None and _lookup(child, loc) is _MISSING and _lookup(parent[1], loc) is not _MISSING:
        where = parent[0]
    if loc and loc[-1] == "[key]":
        # A bad key inside settings: an unknown benchmark id or scenario name.
        loc = loc[:-1]
        field = ".".join(str(p) for p in loc)
        kind, allowed = ("benchmark", BENCHMARKS) if len(loc) == 2 else ("scenario", SCENARIOS)
        return f"{where}: {field}: unknown {kind} {choices(loc[-1], allowed)}"
    field = ".".join(str(p) for p in loc) or "(top level)"
    msg = " ".join(str(err["msg"]).split())
    if err.get("type") == "missing":
        msg = "required field missing"
    elif err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return f"{where}: {field}: {msg}"


def load_system(system_id: str, directory: Path | None = None) -> System:
    """Load and validate one system.

    Args:
        system_id: The file stem in ``systems/``.
        directory: Folder to read instead of :func:`systems_dir`.

    Returns:
        The validated system, with its parent's settings merged in.

    Raises:
        ConfigError: Unknown id, or a malformed file (one line naming the file and field).
    """
    directory = Path(directory) if directory else systems_dir()
    path = directory / f"{system_id}.yaml"
    if system_id.startswith("_") or "/" in system_id or not path.is_file():
        raise ConfigError(f"unknown system {choices(system_id, system_ids(directory))}")
    data = _read(path)
    if "id" in data:
        raise ConfigError(f"{path}: id: unknown field (the id is the file name)")
    parent = _resolve_parent(path, data, directory)
    merged = dict(data)
    if parent is not None:
        base = {k: v for k, v in parent[1].items() if k != "extends"}
        merged = _merge(base, data)
        log.debug("system %s extends %s", system_id, data["extends"])
    try:
        return System(id=system_id, **merged)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc.errors()[0], path, data, parent)) from exc
