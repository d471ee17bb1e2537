"""raybench installed from a wheel, not from the source tree: systems, rules and actors
ship inside the package, and a run works from any directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    (path,) = out.glob("raybench-*.whl")
    return path


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {f"raybench/{p.relative_to(ROOT / 'raybench').as_posix()}"
            for p in (ROOT / "raybench").rglob("*") if p.suffix in (".py", ".yaml")}
    want |= {f"raybench/actors/{p.name}" for p in (ROOT / "actors").iterdir()
             if p.suffix in (".py", ".json")}  # the Grafana dashboard ships too
    want |= {f"raybench/systems/{p.name}" for p in (ROOT / "systems").iterdir()}
    assert not want - names
    assert not [n for n in names if n.startswith(("actors/", "systems/", "tests/"))]


def test_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "RAYBENCH_SYSTEMS_DIR"}
    env["PYTHONPATH"] = str(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def raybench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "raybench", *args], cwd=elsewhere,
                              env=env, capture_output=True, text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import raybench.actors.engine as m; "
                            "print(m.__file__)"], cwd=elsewhere, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert where.startswith(str(target))
    listed = raybench("systems", "list")
    assert listed.returncode == 0, listed.stderr
    for system in ("cpu", "H200x1", "SYS-420GP-TNAR_A100-SXM-80GBx8"):
        assert system in listed.stdout
    run = raybench("run", "--engine", "null", "--system", "cpu", "--scenario", "singlestream",
                   "--duration", "1", "--output", str(tmp_path / "results"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"PerformanceOnly\s+VALID", run.stdout), run.stdout
    assert list((tmp_path / "results").rglob("mlperf_log_summary.txt"))
