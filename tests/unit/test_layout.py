"""The package layout: nothing imports upward, no two packages import each other, heavy
imports stay inside their engines, and no file names an absolute path of a machine."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each package may import only packages of a lower rank (or its own).
RANK = {
    "cli": 7, "__main__": 7,
    "experiments": 6, "submission": 6,
    "run": 5,
    "actors": 4,
    "standins": 3,
    "benchmarks": 2, "engines": 2,
    "rules": 1, "config": 1, "results": 1,
    "scheduling": 0,
    "errors": -1, "__init__": -1,
}
HEAVY = {"torch", "tensorrt", "onnxruntime", "cuda"}


def _sources():
    for path in sorted((ROOT / "raybench").rglob("*.py")):
        parts = path.relative_to(ROOT / "raybench").with_suffix("").parts
        yield parts[0], path
    for path in sorted((ROOT / "actors").glob("*.py")):
        yield "actors", path


def _imports(path: Path):
    """Every module a file imports, also inside functions (lazy imports count)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def _edges():
    for package, path in _sources():
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "raybench" and len(parts) > 1 and parts[1] != package:
                yield package, parts[1], path


def test_every_package_has_a_rank():
    assert {package for package, _ in _sources()} <= set(RANK)


def test_nothing_imports_upward():
    upward = [f"{path.relative_to(ROOT)}: {src} imports {dst}"
              for src, dst, path in _edges() if RANK[dst] > RANK[src]]
    assert not upward


def test_no_two_packages_import_each_other():
    pairs = {(src, dst) for src, dst, _ in _edges()}
    assert not {(a, b) for a, b in pairs if (b, a) in pairs and a < b}


@pytest.mark.parametrize("src,forbidden", [
    ("engines", "benchmarks"), ("engines", "standins"), ("config", "engines"),
    ("config", "benchmarks"), ("scheduling", "ray"),
])
def test_forbidden_imports(src, forbidden):
    bad = [str(path.relative_to(ROOT)) for package, path in _sources() if package == src
           for module in _imports(path)
           if module == forbidden or module.startswith(forbidden + ".")
           or module == f"raybench.{forbidden}" or module.startswith(f"raybench.{forbidden}.")]
    assert not bad


def test_only_the_cli_imports_the_cli():
    assert not [path for src, dst, path in _edges()
                if dst == "cli" and src not in ("cli", "__main__")]


def test_heavy_imports_only_inside_their_engine():
    bad = []
    for package, path in _sources():
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: engines import lazily
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(n.split(".")[0] in HEAVY for n in names):
                bad.append(str(path.relative_to(ROOT)))
    assert not bad


def test_no_file_names_an_absolute_path_of_a_machine():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    pattern = re.compile(r"(?<![\w.~$])/(?:work|home|root|Users)/\w")
    bad = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".npy", ".onnx"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        bad += [f"{name}: {m.group(0)}" for m in pattern.finditer(text)]
    assert not bad
