"""Reading LoadGen's own logs: the summary and the accuracy log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from raybench.errors import DataError

SUMMARY = "mlperf_log_summary.txt"
DETAIL = "mlperf_log_detail.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"

_METRICS = {"Offline": "Samples per second", "Server": "Completed samples per second"}
# SingleStream and MultiStream report e.g. "90.0th percentile latency (ns)".
_LATENCY_METRIC = re.compile(r"^[\d.]+th percentile latency \(ns\)$")


@dataclass
class Summary:
    """The parts of ``mlperf_log_summary.txt`` raybench reports."""

    scenario: str
    mode: str
    valid: Optional[bool]
    metric_name: Optional[str]
    metric: Optional[float]
    checks: dict[str, bool] = field(default_factory=dict)  # "Min duration satisfied" -> ok
    percentiles: dict[str, int] = field(default_factory=dict)  # "99.00" -> ns
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def invalid_reasons(self) -> list[str]:
        """The checks LoadGen reported as not satisfied."""
        return [name for name, ok in self.checks.items() if not ok]


def parse_summary(path: Path) -> Summary:
    """Parse LoadGen's summary log.

    Raises:
        DataError: The file is missing.
    """
    if not path.is_file():
        raise DataError(f"{path}: LoadGen summary missing")
    fields: dict[str, str] = {}
    checks: dict[str, bool] = {}
    percentiles: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key.endswith("satisfied"):
            checks[key] = value.lower() == "yes"
        match = re.match(r"([\d.]+) percentile latency \(ns\)", key)
        if match and value.isdigit():
            percentiles[match.group(1)] = int(value)
        fields.setdefault(key, value)
    scenario = fields.get("Scenario", "")
    metric_name = _METRICS.get(scenario)
    if metric_name is None:
        metric_name = next((k for k in fields if _LATENCY_METRIC.match(k)), None)
    metric = float(fields[metric_name]) if metric_name in fields else None
    result = fields.get("Result is")
    return Summary(
        scenario=scenario, mode=fields.get("Mode", ""),
        valid=None if result is None else result == "VALID",
        metric_name=metric_name, metric=metric, checks=checks,
        percentiles=percentiles, fields=fields,
    )


def read_accuracy_log(path: Path) -> list[dict]:
    """The entries of ``mlperf_log_accuracy.json`` (seq_id, qsl_idx, data as hex).

    Raises:
        DataError: Missing or malformed file.
    """
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: accuracy log missing") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a list of entries")
    return entries


@dataclass
class DetailLog:
    """The ``:::MLLOG`` records of ``mlperf_log_detail.txt``: first value per key, errors."""

    values: dict[str, object]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, default=None):
        """The first value logged under ``key``."""
        return self.values.get(key, default)


MLLOG = ":::MLLOG"


def parse_detail(path: Path) -> DetailLog:
    """Parse LoadGen's detail log (one JSON record per ``:::MLLOG`` line).

    Raises:
        DataError: The file is missing or a record is not valid JSON.
    """
    if not path.is_file():
        raise DataError(f"{path}: LoadGen detail log missing")
    log = DetailLog(values={})
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.startswith(MLLOG):
            continue
        try:
            record = json.loads(line[len(MLLOG):])
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not a valid MLLOG record ({exc.msg})") from None
        log.values.setdefault(record["key"], record.get("value"))
        meta = record.get("metadata") or {}
        if meta.get("is_error"):
            log.errors.append(str(record.get("value")))
        elif meta.get("is_warning"):
            log.warnings.append(str(record.get("value")))
    return log
