"""What raybench recorded about a run (``raybench_settings.json`` beside LoadGen's logs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from raybench.errors import DataError
from raybench.submission.layout import SETTINGS_JSON


@dataclass
class RunRecord:
    """The parts of a run's settings record a submission needs."""

    doc: dict
    engine: str = ""
    overridden: list[str] = field(default_factory=list)
    submittable: bool = True
    precision: str = ""
    input_dtype: str = ""
    model: Optional[str] = None
    standin: bool = False  # the model was raybench's generated stand-in
    data_dir: Optional[str] = None

    @property
    def has_outputs(self) -> bool:
        """Whether the run's engine returns outputs (sim and null return none)."""
        from raybench.engines import engine_class
        from raybench.errors import ConfigError

        try:
            return engine_class(self.engine).needs_data
        except ConfigError:
            return True  # an engine this raybench does not know: assume a real one


def record_from(doc: dict) -> RunRecord:
    """A run record from the parsed ``raybench_settings.json``."""
    request = doc.get("request") or {}
    harness = doc.get("harness") or {}
    overridden = [str(o) for o in doc.get("overridden") or []]
    return RunRecord(
        doc=doc, engine=str(request.get("engine", "")), overridden=overridden,
        submittable=bool(doc.get("submittable", not overridden)),
        precision=str(harness.get("precision", "")), input_dtype=str(harness.get("input_dtype", "")),
        model=doc.get("model"), standin=request.get("model") is None and doc.get("model") is not None,
        data_dir=doc.get("data_dir"),
    )


def read_record(run_dir: Path) -> Optional[RunRecord]:
    """The record beside a run, or None when the run has none (not made by raybench).

    Raises:
        DataError: The file is not valid JSON.
    """
    path = Path(run_dir) / SETTINGS_JSON
    if not path.is_file():
        return None
    try:
        return record_from(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
