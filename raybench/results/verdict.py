"""What a LoadGen test's result means: the rules' headline metric with its unit and, for
an INVALID result, each unmet constraint in numbers and LoadGen's own advice.

Read from the test's directory: ``mlperf_log_summary.txt`` (the result, the checks, the
percentiles, the test parameters and LoadGen's "Recommendations" and "Early Stopping
Result" lines), ``mlperf_log_detail.txt`` (the measured interval and query count) and the
``mlperf.conf`` raybench writes beside them (the v1.0 MultiStream interval).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from raybench.results.loadgen_log import DETAIL, SUMMARY, Summary, parse_summary

MLLOG = ":::MLLOG "
POWER_TIME = "%m-%d-%Y %H:%M:%S.%f"  # LoadGen's power_begin/power_end, UTC


def ms_text(value: Optional[float]) -> str:
    """A latency in ms for people: 3 significant digits, no decimals from 100 ms."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.3g}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


@dataclass
class Headline:
    """The metric the rules report for a scenario."""

    name: str  # "throughput", "scheduled throughput", "p90 latency", ...
    value: float
    unit: str  # "samples/s" or "ms"

    @property
    def number(self) -> str:
        """The value as shown: a latency by :func:`ms_text`, a rate with one decimal."""
        return ms_text(self.value) if self.unit == "ms" else f"{self.value:,.1f}"

    def compact(self) -> str:
        """Value and unit for a table cell: ``3,008/s``, ``4.86 ms``, ``106.9 ms``."""
        if self.unit == "samples/s":
            return f"{self.value:,.0f}/s" if self.value >= 100 else f"{self.number}/s"
        return f"{self.number} {self.unit}"

    def __str__(self) -> str:
        return f"{self.name} {self.number} {self.unit}"


@dataclass
class Verdict:
    """One performance test's result, explained."""

    scenario: str
    valid: Optional[bool]
    headline: Optional[Headline]
    target_qps: Optional[float] = None  # LoadGen's target_qps test parameter
    bound_ms: Optional[float] = None  # Server latency bound or v1.0 MultiStream interval
    problems: list[str] = field(default_factory=list)  # unmet constraints, in numbers
    advice: list[str] = field(default_factory=list)  # LoadGen's own lines (INVALID only)
    notes: list[str] = field(default_factory=list)  # e.g. MultiStream against v1.0's interval
    percentiles: dict[str, int] = field(default_factory=dict)  # "99.00" -> ns


def read_detail(path: Path) -> dict[str, Any]:
    """The values of LoadGen's detail log by key (the last one where a key repeats);
    empty when the file is missing."""
    values: dict[str, Any] = {}
    if not path.is_file():
        return values
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(MLLOG):
            try:
                entry = json.loads(line[len(MLLOG):])
            except json.JSONDecodeError:
                continue
            values[entry.get("key")] = entry.get("value")
    return values


def measured_interval(detail: dict[str, Any]) -> Optional[tuple[float, float]]:
    """LoadGen's measured interval (power_begin, power_end) as Unix seconds, if logged."""
    try:
        begin, end = (datetime.strptime(detail[k], POWER_TIME).replace(tzinfo=timezone.utc)
                      for k in ("power_begin", "power_end"))
    except (KeyError, TypeError, ValueError):
        return None
    return begin.timestamp(), end.timestamp()


def loadgen_advice(summary_text: str, sections: tuple[str, ...]) -> list[str]:
    """The bullet lines of the summary's sections (e.g. ``Recommendations:``), each
    bullet joined into one line."""
    lines: list[str] = []
    inside = False
    for raw in summary_text.splitlines():
        stripped = raw.strip()
        if stripped in sections:
            inside = True
        elif not stripped or stripped.startswith("===") or (
                stripped.endswith(":") and not stripped.startswith("*")):
            inside = False  # a blank line, a rule or another section ends the section
        elif inside and stripped.startswith("* "):
            lines.append(stripped[2:])
        elif inside and lines:
            lines[-1] = f"{lines[-1]} {stripped}"
    return lines


def _float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def headline(summary: Summary) -> Optional[Headline]:
    """The rules' headline metric of a performance test: samples/s (Offline), scheduled
    samples/s (Server), the percentile latency in ms (SingleStream, MultiStream)."""
    if summary.scenario == "Server":
        scheduled = _float(summary.fields.get("Scheduled samples per second"))
        if scheduled is not None:
            return Headline("scheduled throughput", scheduled, "samples/s")
        return None if summary.metric is None else Headline(
            "completed throughput", summary.metric, "samples/s")
    if summary.metric is None:
        return None
    if summary.scenario == "Offline":
        return Headline("throughput", summary.metric, "samples/s")
    match = re.match(r"([\d.]+)th percentile", summary.metric_name or "")
    name = f"p{float(match.group(1)):g} latency" if match else "latency"
    return Headline(name, summary.metric / 1e6, "ms")


def _v10_interval_ms(directory: Path, scenario: str) -> Optional[float]:
    """The MultiStream interval raybench wrote as ``target_latency`` in ``mlperf.conf``."""
    conf = directory / "mlperf.conf"
    if scenario != "MultiStream" or not conf.is_file():
        return None
    for line in conf.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith(".MultiStream.target_latency"):
            return _float(value)
    return None


def explain(directory: Path) -> Verdict:
    """The verdict of the LoadGen test in ``directory``.

    Raises:
        DataError: The directory has no LoadGen summary.
    """
    directory = Path(directory)
    summary = parse_summary(directory / SUMMARY)
    text = (directory / SUMMARY).read_text(errors="replace")
    detail = read_detail(directory / DETAIL)
    fields = summary.fields
    verdict = Verdict(summary.scenario, summary.valid, headline(summary),
                      target_qps=_float(fields.get("target_qps")),
                      percentiles=summary.percentiles)
    failed = set(summary.invalid_reasons)
    bound = _float(fields.get("target_latency (ns)"))
    if summary.scenario == "Server" and bound:
        verdict.bound_ms = bound / 1e6

    if "Performance constraints satisfied" in failed:
        pct = _float(detail.get("effective_target_latency_percentile")) or 0.99
        key = f"{pct * 100:.2f}"
        measured = summary.percentiles.get(key)
        if measured is not None and bound:
            verdict.problems.append(f"p{pct * 100:g} latency {ms_text(measured / 1e6)} ms > "
                                    f"{bound / 1e6:g} ms bound")
        else:
            verdict.problems.append("latency bound not met")
    if "Min duration satisfied" in failed:
        minimum = _float(fields.get("min_duration (ms)"))
        interval = measured_interval(detail)
        if minimum and interval:
            verdict.problems.append(f"ran {interval[1] - interval[0]:.2f} s < "
                                    f"{minimum / 1000:g} s minimum duration")
        else:
            verdict.problems.append("shorter than the minimum duration" + (
                f" of {minimum / 1000:g} s" if minimum else ""))
    if "Min queries satisfied" in failed:
        count, minimum = detail.get("result_query_count"), _float(fields.get("min_query_count"))
        verdict.problems.append(f"{count:,} queries < {minimum:,.0f} minimum"
                                if isinstance(count, int) and minimum else
                                "minimum query count not met")
    if "Early stopping satisfied" in failed:
        verdict.problems.append("early stopping not met")
    for check in sorted(failed - {"Performance constraints satisfied", "Min duration satisfied",
                                  "Min queries satisfied", "Early stopping satisfied"}):
        verdict.problems.append(check.replace(" satisfied", "") + " not met")
    if summary.valid is False:
        verdict.advice = [line for line in loadgen_advice(
            text, ("Recommendations:", "Early Stopping Result:")) if line != "Run unsuccessful."]

    interval = _v10_interval_ms(directory, summary.scenario)
    p99 = summary.percentiles.get("99.00")
    if interval:
        verdict.bound_ms = interval
    if interval and p99 is not None:
        ok = p99 / 1e6 <= interval
        spq = fields.get("samples_per_query", "?")
        verdict.notes.append(f"v1.0 interval {interval:g} ms at {spq} samples/query "
                             f"{'met' if ok else 'not met'}: p99 {ms_text(p99 / 1e6)} ms")
    return verdict
