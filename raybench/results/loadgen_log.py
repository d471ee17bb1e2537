"""Reading LoadGen's own logs: the detail log's results and the accuracy log.

Results come from ``mlperf_log_detail.txt``: every line starting with ``:::MLLOG`` holds
one JSON message (``key``, ``value``, ``metadata`` with ``is_error``/``is_warning``);
where a key appears more than once the first message counts, as in MLCommons'
``tools/submission/log_parser.py``. The summary text is for people and is not parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from raybench.errors import DataError

SUMMARY = "mlperf_log_summary.txt"
DETAIL = "mlperf_log_detail.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
MARKER = ":::MLLOG"

# detail-log key -> the line the summary prints for it ("... satisfied : Yes/NO")
_CHECKS = {
    "result_perf_constraints_met": "Performance constraints satisfied",
    "result_min_duration_met": "Min duration satisfied",
    "result_min_queries_met": "Min queries satisfied",
    "early_stopping_met": "Early stopping satisfied",
}
_PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")


@dataclass
class DetailLog:
    """The ``:::MLLOG`` messages of one ``mlperf_log_detail.txt``, in file order."""

    path: Path
    messages: list[dict]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of the first message with ``key``."""
        for message in self.messages:
            if message.get("key") == key:
                return message.get("value")
        return default

    def values(self) -> dict[str, Any]:
        """Every key with the value of its first message."""
        out: dict[str, Any] = {}
        for message in self.messages:
            out.setdefault(message.get("key"), message.get("value"))
        return out

    def _flagged(self, flag: str) -> list[str]:
        return [str(m.get("value")) for m in self.messages
                if (m.get("metadata") or {}).get(flag)]

    @property
    def errors(self) -> list[str]:
        """The texts of the messages LoadGen marked as errors."""
        return self._flagged("is_error")

    @property
    def warnings(self) -> list[str]:
        """The texts of the messages LoadGen marked as warnings."""
        return self._flagged("is_warning")


def read_detail(path: Path) -> DetailLog:
    """Parse ``mlperf_log_detail.txt``.

    Raises:
        DataError: Missing file, or a ``:::MLLOG`` line that is not a JSON object with a key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: LoadGen detail log missing") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a LoadGen detail log (byte {exc.start} is not UTF-8)") from None
    messages = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith(MARKER):
            continue
        try:
            message = json.loads(line[len(MARKER):])
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: malformed {MARKER} line ({exc.msg})") from None
        if not isinstance(message, dict) or "key" not in message:
            raise DataError(f"{path}:{number}: {MARKER} line without a key")
        messages.append(message)
    return DetailLog(path, messages)


@dataclass
class Summary:
    """A LoadGen test's result, read from its detail log.

    ``checks`` and ``metric_name`` use the wording of LoadGen's summary (e.g. "Min
    duration satisfied", "Samples per second", "90.0th percentile latency (ns)");
    ``percentiles`` maps "99.00" to ns (per query in MultiStream, as the summary shows);
    ``fields`` holds every detail-log key with its first value.
    """

    scenario: str
    mode: str
    valid: Optional[bool]
    metric_name: Optional[str]
    metric: Optional[float]
    checks: dict[str, bool] = field(default_factory=dict)
    percentiles: dict[str, int] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def invalid_reasons(self) -> list[str]:
        """The checks LoadGen reported as not satisfied."""
        return [name for name, ok in self.checks.items() if not ok]


def _metric(values: dict, scenario: str) -> tuple[Optional[str], Optional[str]]:
    """(summary name, detail key) of a scenario's metric."""
    if scenario == "Offline":
        return "Samples per second", "result_samples_per_second"
    if scenario == "Server":
        return "Completed samples per second", "result_completed_samples_per_sec"
    if scenario in ("SingleStream", "MultiStream"):
        percentile = float(values.get("effective_target_latency_percentile") or 0.9) * 100
        per_query = "_per_query" if scenario == "MultiStream" else ""
        return (f"{percentile:.1f}th percentile latency (ns)",
                f"result_{percentile:.2f}_percentile{per_query}_latency_ns")
    return None, None


def summarize(detail: DetailLog) -> Summary:
    """The :class:`Summary` of a parsed detail log."""
    values = detail.values()
    scenario = values.get("effective_scenario") or ""
    validity = values.get("result_validity")
    checks = {name: bool(values[key]) for key, name in _CHECKS.items() if key in values}
    kind = "_per_query" if scenario == "MultiStream" else ""
    percentiles = {p: int(values[f"result_{p}_percentile{kind}_latency_ns"]) for p in _PERCENTILES
                   if f"result_{p}_percentile{kind}_latency_ns" in values}
    metric_name, metric_key = _metric(values, scenario)
    metric = values.get(metric_key) if metric_key else None
    return Summary(
        scenario=scenario, mode=values.get("effective_test_mode") or "",
        valid=None if validity is None else validity == "VALID",
        metric_name=metric_name, metric=None if metric is None else float(metric),
        checks=checks, percentiles=percentiles, fields=values,
    )


def parse_summary(path: Path) -> Summary:
    """The result of the LoadGen test whose ``mlperf_log_summary.txt`` is ``path``, read
    from ``mlperf_log_detail.txt`` in the same directory.

    Raises:
        DataError: The detail log is missing or malformed.
    """
    path = Path(path)
    return summarize(read_detail(path.parent / DETAIL if path.name != DETAIL else path))


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
