"""Loading system files from ``systems/``."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from raybench.config.models import System
from raybench.errors import ConfigError, choices


def systems_dir() -> Path:
    """The folder of system files: $RAYBENCH_SYSTEMS_DIR, else the project's ``systems/``."""
    env = os.environ.get("RAYBENCH_SYSTEMS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "systems"


def system_ids(directory: Path | None = None) -> list[str]:
    """The ids of every system file in ``directory``."""
    directory = directory or systems_dir()
    return sorted(p.stem for p in directory.glob("*.yaml") if not p.stem.startswith("_"))


def load_system(system_id: str, directory: Path | None = None) -> System:
    """Load and validate one system.

    Args:
        system_id: The file stem in ``systems/``.
        directory: Folder to read instead of :func:`systems_dir`.

    Raises:
        ConfigError: Unknown id or malformed file.
    """
    directory = directory or systems_dir()
    path = directory / f"{system_id}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown system {choices(system_id, system_ids(directory))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return System(id=system_id, **data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {field}: {err['msg']}") from exc
