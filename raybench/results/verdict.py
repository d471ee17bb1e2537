"""What a LoadGen test's result means: the rules' headline metric with its unit and, for
an INVALID result, each unmet constraint in numbers and LoadGen's own advice.

Everything comes from the test's ``mlperf_log_detail.txt`` (through
:func:`raybench.results.loadgen_log.parse_summary`): the checks, the percentiles, the
effective test settings, the measured interval (``power_begin``/``power_end``) and
LoadGen's advice (``result_invalid_reason``, ``early_stopping_result``, the lines its
summary prints under "Recommendations" and "Early Stopping Result"); plus the
``mlperf.conf`` raybench writes beside them for the v1.0 MultiStream interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from raybench.results.loadgen_log import SUMMARY, Summary, parse_summary

POWER_TIME = "%m-%d-%Y %H:%M:%S.%f"  # LoadGen's power_begin/power_end, UTC
CHECKS = ("Performance constraints satisfied", "Min duration satisfied", "Min queries satisfied",
          "Early stopping satisfied")


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
        """Value and unit for a table cell: ``3,008/s``, ``4.86 ms``, ``107 ms``."""
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
    target_qps: Optional[float] = None  # LoadGen's effective target QPS
    bound_ms: Optional[float] = None  # Server latency bound or v1.0 MultiStream interval
    problems: list[str] = field(default_factory=list)  # unmet constraints, in numbers
    advice: list[str] = field(default_factory=list)  # LoadGen's own lines (INVALID only)
    notes: list[str] = field(default_factory=list)  # e.g. MultiStream against v1.0's interval
    percentiles: dict[str, int] = field(default_factory=dict)  # "99.00" -> ns


def measured_interval(fields: dict[str, Any]) -> Optional[tuple[float, float]]:
    """LoadGen's measured interval (power_begin, power_end) as Unix seconds, if logged."""
    try:
        begin, end = (datetime.strptime(fields[k], POWER_TIME).replace(tzinfo=timezone.utc)
                      for k in ("power_begin", "power_end"))
    except (KeyError, TypeError, ValueError):
        return None
    return begin.timestamp(), end.timestamp()


def loadgen_advice(fields: dict[str, Any]) -> list[str]:
    """LoadGen's recommendation and early-stopping lines, one per bullet."""
    lines = [str(fields.get("result_invalid_reason") or "").strip()]
    lines += re.split(r"\s*\*\s+", str(fields.get("early_stopping_result") or ""))
    return [" ".join(line.split()) for line in lines
            if line.strip() and line.strip() != "Run unsuccessful."]


def _float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def headline(summary: Summary) -> Optional[Headline]:
    """The rules' headline metric of a performance test: samples/s (Offline), scheduled
    samples/s (Server), the percentile latency in ms (SingleStream, MultiStream)."""
    if summary.scenario == "Server":
        scheduled = _float(summary.fields.get("result_scheduled_samples_per_sec"))
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


def _problems(summary: Summary) -> list[str]:
    """Each check LoadGen failed, with the measured value against the bound."""
    f, failed, problems = summary.fields, set(summary.invalid_reasons), []
    if CHECKS[0] in failed:
        pct = _float(f.get("effective_target_latency_percentile")) or 0.99
        measured = summary.percentiles.get(f"{pct * 100:.2f}")
        bound = _float(f.get("effective_target_latency_ns"))
        problems.append(f"p{pct * 100:g} latency {ms_text(measured / 1e6)} ms > "
                        f"{bound / 1e6:g} ms bound" if measured is not None and bound
                        else "latency bound not met")
    if CHECKS[1] in failed:
        minimum, interval = _float(f.get("effective_min_duration_ms")), measured_interval(f)
        problems.append(f"ran {interval[1] - interval[0]:.2f} s < {minimum / 1000:g} s "
                        "minimum duration" if minimum and interval
                        else "shorter than the minimum duration")
    if CHECKS[2] in failed:
        count, minimum = f.get("result_query_count"), f.get("effective_min_query_count")
        problems.append(f"{count:,} queries < {minimum:,} minimum"
                        if isinstance(count, int) and isinstance(minimum, int)
                        else "minimum query count not met")
    if CHECKS[3] in failed:
        problems.append("early stopping not met")
    return problems + [c.replace(" satisfied", "") + " not met"
                       for c in sorted(failed - set(CHECKS))]


def explain(directory: Path) -> Verdict:
    """The verdict of the LoadGen test in ``directory``.

    Raises:
        DataError: The directory has no (or a malformed) LoadGen detail log.
    """
    directory = Path(directory)
    summary = parse_summary(directory / SUMMARY)
    f = summary.fields
    verdict = Verdict(summary.scenario, summary.valid, headline(summary),
                      target_qps=_float(f.get("effective_target_qps")),
                      percentiles=summary.percentiles, problems=_problems(summary))
    if summary.valid is False:
        verdict.advice = loadgen_advice(f)
    bound = _float(f.get("effective_target_latency_ns"))
    if summary.scenario == "Server" and bound:
        verdict.bound_ms = bound / 1e6
    interval = _v10_interval_ms(directory, summary.scenario)
    p99 = summary.percentiles.get("99.00")
    if interval:
        verdict.bound_ms = interval
    if interval and p99 is not None:
        ok = p99 / 1e6 <= interval
        spq = f.get("effective_samples_per_query", "?")
        verdict.notes.append(f"v1.0 interval {interval:g} ms at {spq} samples/query "
                             f"{'met' if ok else 'not met'}: p99 {ms_text(p99 / 1e6)} ms")
    return verdict
