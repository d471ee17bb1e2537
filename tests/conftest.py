"""Shared fixtures: small stand-ins generated once per session."""

from __future__ import annotations

import pytest

from raybench.standins import build_standin


@pytest.fixture(scope="session")
def resnet50_standin(tmp_path_factory):
    """A 256-image resnet50 stand-in (model + NVIDIA-layout data)."""
    return build_standin("resnet50", tmp_path_factory.mktemp("standin") / "resnet50", count=256)
