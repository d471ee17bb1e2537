"""Shared fixtures: small stand-ins generated once per session."""

from __future__ import annotations

import pytest

from raybench.standins import build_standin


@pytest.fixture(scope="session")
def resnet50_standin(tmp_path_factory):
    """A 256-image resnet50 stand-in (model + NVIDIA-layout data)."""
    return build_standin("resnet50", tmp_path_factory.mktemp("standin") / "resnet50", count=256)


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
