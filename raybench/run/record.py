"""The typed record of one LoadGen test: ``raybench_settings.json`` beside its logs.

Written by the run lifecycle and read back (by ``raybench report`` and the submission
tools, also from a submission tree's ``raybench_runs.json``) through the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from raybench import __version__
from raybench.actors.loadgen import LoadGenOutcome
from raybench.config.models import HarnessSettings, Strict
from raybench.errors import DataError
from raybench.run.request import RunRequest

SETTINGS_JSON = "raybench_settings.json"


class RunRecord(Strict):
    """What one LoadGen test was asked, how it was set up and what the harness saw."""

    raybench_version: str = __version__
    request: RunRequest
    system: str
    engines: int
    harness: HarnessSettings
    tuned: list[str]
    rules_round: str
    test_settings: dict[str, Any]
    overridden: list[str]
    submittable: bool
    model: Optional[Path] = None
    data_dir: Optional[Path] = None
    audit: Optional[str] = None  # the compliance test this LoadGen test ran, if any
    harness_outcome: LoadGenOutcome

    @property
    def engine(self) -> str:
        """The engine the run used."""
        return self.request.engine.value

    @property
    def has_outputs(self) -> bool:
        """Whether the run's engine returns outputs (sim and null return none)."""
        from raybench.engines import engine_class

        return engine_class(self.request.engine).needs_data

    @property
    def standin(self) -> bool:
        """Whether the model was raybench's generated stand-in (no --model given)."""
        return self.request.model is None and self.model is not None

    def write(self, directory: Path) -> Path:
        """Write the record into ``directory``; returns its path."""
        path = Path(directory) / SETTINGS_JSON
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> "RunRecord":
        """Read the record of the test in ``directory``.

        Raises:
            DataError: Missing, unreadable or not a raybench record.
        """
        path = Path(directory) / SETTINGS_JSON
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise DataError(f"{path}: no raybench record") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except ValidationError as exc:
            raise DataError(f"{path}: {_not_a_record(exc)}") from None

    @classmethod
    def find(cls, directory: Path) -> Optional["RunRecord"]:
        """The record of the test in ``directory``, or None when it has none (a run not
        made by raybench).

        Raises:
            DataError: The file is there but unreadable or not a raybench record.
        """
        return cls.read(directory) if (Path(directory) / SETTINGS_JSON).is_file() else None

    @classmethod
    def from_json(cls, doc: Any, where: str) -> "RunRecord":
        """A record from its parsed JSON (as kept in a submission's ``raybench_runs.json``).

        Raises:
            DataError: ``doc`` is not a raybench record (``where`` names it).
        """
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise DataError(f"{where}: {_not_a_record(exc)}") from None


def _not_a_record(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(map(str, err["loc"])) or "(top level)"
    return f"not a raybench record ({where}: {err['msg']})"
