"""The typed record of one LoadGen test: ``raybench_settings.json`` beside its logs.

Written by the run lifecycle and read back (by ``raybench report`` and the submission
tools) through the same model.
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
    harness_outcome: LoadGenOutcome

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
            err = exc.errors(include_url=False)[0]
            where = ".".join(map(str, err["loc"])) or "(top level)"
            raise DataError(f"{path}: not a raybench record ({where}: {err['msg']})") from None
