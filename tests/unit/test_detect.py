"""GPU detection from recorded nvidia-smi outputs (no GPU, no Ray needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raybench.config import detect
from raybench.config.detect import Detection, Gpu, accelerator_of, detect_system, parse_nvidia_smi
from raybench.config.systems import load_system

DATA = Path(__file__).resolve().parents[1] / "data" / "nvidia-smi"


def recorded(name: str):
    """A runner that answers nvidia-smi with a recorded output and checks the command line."""

    def runner(cmd: list[str]) -> str:
        assert cmd == detect.NVIDIA_SMI
        return (DATA / name).read_text()

    return runner


@pytest.mark.parametrize(
    ("name", "system_id", "count"),
    [
        ("a100-sxm4-80gb-x8.txt", "SYS-420GP-TNAR_A100-SXM-80GBx8", 8),
        ("a100-sxm4-40gb-x4.txt", "AS-2124GQ-NART_A100-SXM4-40GBx4", 4),
        ("a100-pcie-40gb-x8.txt", "AS-4124GS-TNR_A100-PCIex8", 8),
        ("h200-x1.txt", "H200x1", 1),
    ],
)
def test_recorded_outputs(name: str, system_id: str, count: int):
    found = detect_system(runner=recorded(name))
    assert isinstance(found, Detection)
    assert found.system_id == system_id
    assert found.exact and found.source == "nvidia-smi"
    assert len(found.gpu_names) == count
    assert found.gpu_names[0] in found.message and system_id in found.message
    assert load_system(found.system_id).accelerator_count == count


def test_eight_a100_80gb_mentions_the_other_matches():
    found = detect_system(runner=recorded("a100-sxm4-80gb-x8.txt"))
    assert "DGX-A100_A100-SXM-80GBx8" in found.message
    assert load_system(found.system_id).accelerator == "A100-SXM-80GB"


def test_unknown_gpu():
    found = detect_system(runner=recorded("unknown-l4-x2.txt"))
    assert not found.exact
    assert found.gpu_names == ["NVIDIA L4", "NVIDIA L4"]
    assert "unknown GPU 'NVIDIA L4'" in found.message
    assert found.system_id == "H200x1" and "H200x1" in found.message
    assert "\n" not in found.message


def test_no_devices():
    found = detect_system(runner=recorded("none.txt"))
    assert (found.system_id, found.gpu_names, found.source) == ("cpu", [], "none")


def test_no_nvidia_smi():
    def missing(cmd):
        raise FileNotFoundError(cmd[0])

    assert detect_system(runner=missing).system_id == "cpu"


def test_nvidia_smi_fails():
    def failing(cmd):
        raise subprocess.CalledProcessError(9, cmd, output="NVIDIA-SMI has failed")

    assert detect_system(runner=failing).system_id == "cpu"


def test_known_gpu_unknown_count_picks_nearest():
    found = detect_system(runner=lambda cmd: "NVIDIA A100-SXM4-80GB, 81920 MiB\n" * 2)
    assert not found.exact
    assert found.system_id == "AS-2124GQ-NART_A100-SXM-80GBx4"
    assert "nearest" in found.message


def test_cuda_python_probe_first(monkeypatch):
    monkeypatch.setattr(detect, "probe_cuda", lambda: [Gpu("NVIDIA H200", 143771)])
    found = detect_system(runner=recorded("none.txt"), use_cuda=True)
    assert (found.system_id, found.source) == ("H200x1", "cuda-python")


def test_cuda_python_missing_falls_back(monkeypatch):
    monkeypatch.setattr(detect, "probe_cuda", lambda: None)
    found = detect_system(runner=recorded("h200-x1.txt"), use_cuda=True)
    assert (found.system_id, found.source) == ("H200x1", "nvidia-smi")


def test_parse_nvidia_smi():
    gpus = parse_nvidia_smi((DATA / "h200-x1.txt").read_text())
    assert gpus == [Gpu("NVIDIA H200", 143771)]
    assert parse_nvidia_smi("No devices were found\n") == []


@pytest.mark.parametrize(
    ("name", "memory", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", 81920, "A100-SXM-80GB"),
        ("A100-SXM-80GB", 0, "A100-SXM-80GB"),
        ("NVIDIA A100-SXM4-40GB", 40960, "A100-SXM4-40GB"),
        ("NVIDIA A100-PCIE-40GB", 40960, "A100-PCIe-40GB"),
        ("NVIDIA A100 80GB PCIe", 81920, "A100-PCIe-80GB"),
        ("NVIDIA H200", 143771, "H200"),
        ("NVIDIA L4", 23034, None),
    ],
)
def test_accelerator_of(name, memory, expected):
    assert accelerator_of(name, memory) == expected


def test_cli_detect(monkeypatch):
    from raybench.cli import app

    monkeypatch.setattr(
        detect, "detect_system",
        lambda: Detection("H200x1", ["NVIDIA H200"], "nvidia-smi", "found 1 x NVIDIA H200: system H200x1"),
    )
    result = CliRunner().invoke(app, ["systems", "detect"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "H200x1" in result.output and "NVIDIA H200" in result.output
