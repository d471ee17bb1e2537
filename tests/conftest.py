"""Shared fixtures: one small stand-in per benchmark, written once per test session by
``raybench data synth`` in NVIDIA's tree."""

from __future__ import annotations

import pytest

# model -> (benchmark id to synthesise, sample count; None = the stand-in's default)
STANDINS = {
    "resnet50": ("resnet50", 256),
    "ssd-mobilenet": ("ssd-mobilenet", 8),
    "ssd-resnet34": ("ssd-resnet34", 4),
    "3d-unet": ("3d-unet-99", 2),
    "bert": ("bert-99", None),
    "dlrm": ("dlrm-99", None),
    "rnnt": ("rnnt", None),
}


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """``standin(model)``: that model's stand-in, written on first use in the session."""
    from typer.testing import CliRunner

    from raybench.cli import app
    from raybench.standins import read_standin

    made = {}

    def get(model: str):
        if model not in made:
            benchmark_id, count = STANDINS[model]
            out = tmp_path_factory.mktemp("standins") / model
            args = ["data", "synth", benchmark_id, "--out", str(out)]
            if count is not None:
                args += ["--count", str(count)]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            made[model] = read_standin(out)
        return made[model]

    return get


@pytest.fixture(scope="session")
def resnet50_standin(standin):
    """The 256-image resnet50 stand-in (model + NVIDIA tree)."""
    return standin("resnet50")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB file system of its own (tmpfs), to fill up; skipped where mounting one is
    not allowed (it needs root)."""
    import shutil
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if not shutil.which("mount") or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small file system here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk, leave: int = 0) -> None:
    """Fill a file system until ``leave`` bytes (about) are free."""
    import os

    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))
