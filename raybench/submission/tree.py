"""Assembling the submission tree ``<division>/<submitter>/`` of one system from its runs.

::

    <division>/<submitter>/
        systems/<id>.json                                 the system file's description
        code/README.md, code/<benchmark>/README.md        how raybench produced the results
        measurements/<id>/<benchmark>/<scenario>/         mlperf.conf, user.conf, README.md,
                                                          <id>_<scenario>.json, raybench_runs.json
        results/<id>/<benchmark>/<scenario>/performance/run_1/   summary and detail logs
        results/<id>/<benchmark>/<scenario>/accuracy/     + accuracy.txt (with hash=), truncated log
        compliance/<id>/<benchmark>/<scenario>/<TEST>/    performance/run_1/, verify_*.txt,
                                                          TEST01: accuracy/ (truncated log, hash)

``<id>`` is the system's MLPerf submission id (``submission_id`` in the system file, else
its raybench id). ``raybench_runs.json`` keeps what raybench recorded about every run
(settings, overridden rules, engine), which the checker reads. The parts of this system are
built beside the tree and moved into place only when complete; other systems of the same
submitter are left alone.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import raybench
from raybench.config.models import System
from raybench.config.names import BENCHMARKS, SCENARIOS
from raybench.config.systems import load_system
from raybench.errors import ConfigError
from raybench.results.accuracy import ACCURACY_TXT
from raybench.results.loadgen_log import ACCURACY_LOG
from raybench.rules.submission import SubmissionRules, load_submission_rules
from raybench.run.layout import (ACCURACY, BASELINE_ACCURACY, COMPLIANCE_ACCURACY,
                                 PERFORMANCE_RUN, VERIFY_ACCURACY, VERIFY_PERFORMANCE,
                                 ScenarioRuns)
from raybench.run.record import RunRecord
from raybench.submission.accuracy_log import seal_accuracy_log
from raybench.submission.verify import Verdict, verify_compliance

log = logging.getLogger(__name__)

RUNS_JSON = "raybench_runs.json"
PARTS = ("systems", "code", "measurements", "results", "compliance")


@dataclass
class AssembledScenario:
    """One benchmark and scenario put into the tree."""

    benchmark: str
    scenario: str
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Assembled:
    """What :func:`assemble` wrote."""

    root: Path  # <out>/<division>/<submitter>
    system_id: str  # the id used in the tree
    scenarios: list[AssembledScenario] = field(default_factory=list)


def system_json(system: System, rules: SubmissionRules) -> dict:
    """The submission's system description from a system file.

    Raises:
        ConfigError: Required fields are missing (all named in one line) or the division
            or status is not one the rules allow.
    """
    description = dict(system.description)
    missing = [f for f in rules.tree.system_fields if f not in description]
    if missing:
        raise ConfigError(f"system {system.id!r}: description lacks {len(missing)} required "
                          f"field(s): {', '.join(missing)} (add them under description: in "
                          f"systems/{system.id}.yaml; an unknown value may be \"\")")
    division = str(description["division"])
    if division not in rules.tree.divisions:
        raise ConfigError(f"system {system.id!r}: division {division!r} "
                          f"(allowed: {', '.join(rules.tree.divisions)})")
    status = str(description["status"]).lower()
    if status not in rules.tree.statuses:
        raise ConfigError(f"system {system.id!r}: status {description['status']!r} "
                          f"(allowed: {', '.join(rules.tree.statuses)})")
    rules.scenario_set(str(description["system_type"]))  # raises on an unknown type
    return description


def find_scenarios(results: Path, system_id: str, benchmarks: Optional[Iterable[str]] = None,
                   scenarios: Optional[Iterable[str]] = None) -> list[ScenarioRuns]:
    """Every benchmark and scenario of a system under ``results`` with a performance run."""
    wanted_b = set(benchmarks or BENCHMARKS)
    wanted_s = set(scenarios or SCENARIOS)
    found = []
    for benchmark in BENCHMARKS:
        for scenario in SCENARIOS:
            runs = ScenarioRuns.at(results, system_id, benchmark, scenario)
            if benchmark in wanted_b and scenario in wanted_s and runs.performance.is_dir():
                found.append(runs)
    return found


def _copy(src: Path, dst: Path, names: Iterable[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def _code_version() -> str:
    """raybench's version and, in a git checkout, its commit."""
    here = Path(raybench.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"raybench {raybench.__version__}"
    return f"raybench {raybench.__version__} (git {commit}{', uncommitted changes' if dirty else ''})"


def _implementation(record: Optional[RunRecord], benchmark: str) -> dict:
    """The measurements' ``<id>_<scenario>.json`` fields from a run's record."""
    from raybench.benchmarks import get_benchmark

    if record is not None and not record.has_outputs:
        none = f"none ({record.engine} engine: no model is run)"
        return {"input_data_types": none, "retraining": "N", "starting_weights_filename": none,
                "weight_data_types": none, "weight_transformations": none}
    precision = record.harness.precision if record else ""
    name = Path(record.model).name if record and record.model else ""
    try:
        name = name or get_benchmark(benchmark).model_filename
    except ConfigError:
        pass
    if record is not None and record.standin:
        name += " (raybench's generated stand-in, not the MLPerf reference weights)"
    transformations = {"fp32": "none", "fp16": "fp16 conversion", "int8": "int8 quantization"}
    return {
        "input_data_types": record.harness.input_dtype if record else "",
        "retraining": "N",
        "starting_weights_filename": name,
        "weight_data_types": precision,
        "weight_transformations": transformations.get(precision, precision),
    }


def _readme(runs: ScenarioRuns, records: dict[str, Optional[RunRecord]], notes: list[str],
            version: str) -> str:
    perf = records.get("performance")
    lines = [f"# {runs.benchmark} {runs.scenario} on {runs.system}", "",
             f"Produced by {version}. The accuracy and performance runs and every compliance "
             "test ran as LoadGen tests of one `raybench submission compliance` (each can be "
             "run alone with `raybench run`, a compliance test with `--audit TEST`); the "
             "settings of every run (the request, the resolved harness settings, the exact "
             f"LoadGen TestSettings and any overridden rule) are in `{RUNS_JSON}`.", "",
             "To reproduce, in this directory (`mlperf.conf` holds the round's rules, "
             "`user.conf` the system's values and any override; with `--official` instead "
             "of the two files, the run has the round's rules and the system's values):", "",
             "```",
             f"raybench submission compliance --benchmark {runs.benchmark} --scenario "
             f"{runs.scenario} --system {runs.system}"
             + (f" --engine {perf.engine}" if perf else "")
             + " --mlperf-conf mlperf.conf --user-conf user.conf --output RESULTS",
             f"raybench submission assemble RESULTS --system {runs.system} --out SUBMISSION",
             "```"]
    if notes:
        lines += ["", "## Notes", ""] + [f"* {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _scenario(runs: ScenarioRuns, tree_id: str, stage: Path, rules: SubmissionRules,
              data_dir: Optional[Path], version: str) -> AssembledScenario:
    done = AssembledScenario(runs.benchmark, runs.scenario)
    tests = rules.applicable_tests(runs.benchmark, runs.scenario)
    records = {"performance": RunRecord.find(runs.performance),
               "accuracy": RunRecord.find(runs.accuracy)}
    records.update({t: RunRecord.find(runs.compliance_run(t)) for t in tests})
    done.verdicts = verify_compliance(runs, data_dir, rules)

    where = Path(tree_id) / runs.benchmark / runs.scenario
    perf = records["performance"]
    for name, record in records.items():
        if record is not None and not record.submittable:
            done.notes.append(f"The {name} run was made with overridden rules, so it is not a "
                              f"valid submission run: {'; '.join(record.overridden)}.")
    if perf is not None and not perf.has_outputs:
        done.notes.append(f"The {perf.engine} engine produces no outputs: there is no accuracy "
                          "run and TEST01 cannot compare sampled responses; the results are "
                          "performance only.")
    for test in tests:
        if not runs.compliance_run(test).is_dir():
            done.notes.append(f"No {test} run.")

    measurements = stage / "measurements" / where
    measurements.mkdir(parents=True)
    source = runs.performance if (runs.performance / "mlperf.conf").is_file() else runs.accuracy
    _copy(source, measurements, ["mlperf.conf", "user.conf"])
    (measurements / f"{tree_id}_{runs.scenario}.json").write_text(
        json.dumps(_implementation(perf or records["accuracy"], runs.benchmark), indent=4) + "\n")
    (measurements / RUNS_JSON).write_text(json.dumps(
        {name: record.model_dump(mode="json") if record else None
         for name, record in records.items()}, indent=2) + "\n")
    (measurements / "README.md").write_text(_readme(runs, records, done.notes, version))

    results = stage / "results" / where
    _copy(runs.performance, results / PERFORMANCE_RUN, rules.tree.performance_files)
    if runs.accuracy.is_dir():
        _copy(runs.accuracy, results / ACCURACY, rules.tree.accuracy_files)
        if (results / ACCURACY / ACCURACY_LOG).is_file():
            seal_accuracy_log(results / ACCURACY / ACCURACY_LOG, results / ACCURACY / ACCURACY_TXT,
                              rules.tree.max_accuracy_log_bytes, rules.tree.accuracy_log_kept_chars)

    for test in tests:
        if not runs.compliance(test).is_dir():
            continue
        target = stage / "compliance" / where / test
        _copy(runs.compliance_run(test), target / PERFORMANCE_RUN, rules.tree.performance_files)
        _copy(runs.compliance(test), target, [VERIFY_PERFORMANCE, VERIFY_ACCURACY])
        sampled = runs.compliance_run(test) / ACCURACY_LOG
        if rules.test(test).verify == "accuracy-and-performance" and sampled.is_file():
            _copy(runs.compliance_run(test), target / ACCURACY, [ACCURACY_LOG])
            _copy(runs.compliance(test) / ACCURACY, target / ACCURACY,
                  [BASELINE_ACCURACY, COMPLIANCE_ACCURACY])
            seal_accuracy_log(target / ACCURACY / ACCURACY_LOG, target / ACCURACY / ACCURACY_TXT,
                              rules.tree.max_accuracy_log_bytes, rules.tree.accuracy_log_kept_chars)
    return done


def _code(stage: Path, benchmarks: list[str], version: str) -> None:
    code = stage / "code"
    code.mkdir(parents=True)
    (code / "README.md").write_text(
        f"# raybench\n\nThese results were produced by {version}: MLPerf Inference on Ray. A "
        "LoadGen actor runs the official MLPerf LoadGen and routes queries through a dynamic "
        "batcher and a bounded-in-flight router to engine actors, one per accelerator. The "
        "project's README describes how to install it and run every benchmark; each "
        "measurements/.../README.md gives the commands of its runs.\n")
    for benchmark in benchmarks:
        (code / benchmark).mkdir()
        (code / benchmark / "README.md").write_text(
            f"# {benchmark}\n\nraybench's {benchmark}: the dataset reader for NVIDIA's "
            "preprocessed layout, pre- and post-processing and the accuracy metric are in "
            "`raybench/benchmarks/`, the engines in `raybench/engines/`. See ../README.md.\n")


def assemble(results: Path, system: str, out: Path, benchmarks: Optional[Iterable[str]] = None,
             scenarios: Optional[Iterable[str]] = None, data_dir: Optional[Path] = None,
             rules: Optional[SubmissionRules] = None) -> Assembled:
    """Build ``<out>/<division>/<submitter>/`` for one system from its runs under ``results``.

    Verifies the compliance runs first (writing their verify files beside them), then
    copies what the tree needs. This system's parts of an existing tree are replaced.

    Args:
        results: The directory ``raybench run --output`` wrote to.
        system: The raybench system id (the runs' directory under ``results``).
        out: The submission root (the parent of ``closed/`` or ``open/``).
        benchmarks, scenarios: Restrict to these (default: every one with a run).
        data_dir: Dataset for TEST01's accuracy check (default: the accuracy run's).

    Raises:
        ConfigError: Unknown system, a description missing required fields, or no runs.
    """
    rules = rules or load_submission_rules()
    spec = load_system(system)
    description = system_json(spec, rules)
    tree_id = spec.submission_id or spec.id
    found = find_scenarios(results, spec.id, benchmarks, scenarios)
    if not found:
        raise ConfigError(f"no runs of system {spec.id!r} under {results} (expected "
                          f"{Path(results) / spec.id}/<benchmark>/<scenario>/{PERFORMANCE_RUN})")
    root = Path(out) / str(description["division"]) / str(description["submitter"])
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.{tree_id}.", dir=root.parent))
    version = _code_version()
    assembled = Assembled(root, tree_id)
    try:
        (stage / "systems").mkdir()
        (stage / "systems" / f"{tree_id}.json").write_text(json.dumps(description, indent=4) + "\n")
        for runs in found:
            assembled.scenarios.append(_scenario(runs, tree_id, stage, rules, data_dir, version))
        _code(stage, sorted({r.benchmark for r in found}), version)
        _move_into_place(stage, root, tree_id)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return assembled


def _move_into_place(stage: Path, root: Path, tree_id: str) -> None:
    """Replace this system's parts of the tree with the staged ones."""
    for part in PARTS:
        (root / part).mkdir(parents=True, exist_ok=True)
    (stage / "systems" / f"{tree_id}.json").replace(root / "systems" / f"{tree_id}.json")
    for part in ("measurements", "results", "compliance"):
        shutil.rmtree(root / part / tree_id, ignore_errors=True)
        if (stage / part / tree_id).is_dir():
            (stage / part / tree_id).rename(root / part / tree_id)
    for item in (stage / "code").iterdir():
        target = root / "code" / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
