"""Find the GPUs of this host and the system file that describes it.

Order of probes: the CUDA driver API through cuda-python (``from cuda.bindings import driver``
or the older ``from cuda import cuda``), else ``nvidia-smi --query-gpu=name,memory.total
--format=csv,noheader``, else the host is a CPU host and the system is ``cpu``.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from raybench.config.systems import load_system, system_ids

log = logging.getLogger(__name__)

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
CPU_SYSTEM = "cpu"
# Where several system files fit the same GPUs, the first of these that fits is chosen.
PREFERRED = ("SYS-420GP-TNAR_A100-SXM-80GBx8", "AS-2124GQ-NART_A100-SXM-80GBx4")

Runner = Callable[[list[str]], str]


@dataclass(frozen=True)
class Gpu:
    """One GPU as a probe saw it: its name and total memory in MiB (0 when unknown)."""

    name: str
    memory_mib: int = 0


@dataclass
class Detection:
    """What :func:`detect_system` found.

    Attributes:
        system_id: The system file to use.
        gpu_names: The name of every GPU found, in device order (empty on a CPU host).
        source: Which probe answered: "cuda-python", "nvidia-smi" or "none".
        message: One line for people: what was found and why this system.
        exact: False when no system file matches the GPUs and the nearest one was chosen.
    """

    system_id: str
    gpu_names: list[str] = field(default_factory=list)
    source: str = "none"
    message: str = ""
    exact: bool = True


def accelerator_of(name: str, memory_mib: int = 0) -> Optional[str]:
    """The accelerator name the system files use for a GPU name, or None for unknown GPUs.

    Args:
        name: The GPU name as the driver reports it, e.g. "NVIDIA A100-SXM4-80GB".
        memory_mib: Total memory in MiB, used where the name leaves the size open.

    Returns:
        "A100-SXM-80GB", "A100-SXM4-40GB", "A100-PCIe-40GB", "A100-PCIe-80GB", "H200", or None.
    """
    upper = name.upper()
    if "H200" in upper:
        return "H200"
    if "A100" in upper:
        big = "80GB" in upper or (not re.search(r"\d+GB", upper) and memory_mib > 60 * 1024)
        if "PCIE" in upper:
            return "A100-PCIe-80GB" if big else "A100-PCIe-40GB"
        return "A100-SXM-80GB" if big else "A100-SXM4-40GB"
    return None


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`` output.

    Lines without a comma (such as "No devices were found") are ignored.
    """
    gpus = []
    for line in output.splitlines():
        if "," not in line:
            continue
        name, _, memory = line.rpartition(",")
        digits = re.search(r"\d+", memory)
        gpus.append(Gpu(name.strip(), int(digits.group()) if digits else 0))
    return gpus


def _run(cmd: list[str]) -> str:
    """Run a command and return its stdout (the default nvidia-smi runner)."""
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30).stdout


def probe_cuda() -> Optional[list[Gpu]]:
    """List GPUs through the CUDA driver API; None when cuda-python or a driver is missing."""
    try:
        from cuda.bindings import driver  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cuda as driver  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return None
    try:
        ok = driver.CUresult.CUDA_SUCCESS
        (err,) = driver.cuInit(0)
        if err != ok:
            log.debug("cuInit failed: %s", err)
            return None
        err, count = driver.cuDeviceGetCount()
        if err != ok:
            return None
        gpus = []
        for index in range(count):
            err, device = driver.cuDeviceGet(index)
            err_name, raw = driver.cuDeviceGetName(256, device)
            err_mem, total = driver.cuDeviceTotalMem(device)
            if err != ok or err_name != ok:
                return None
            name = bytes(raw).split(b"\0", 1)[0].decode(errors="replace").strip()
            gpus.append(Gpu(name, int(total) // (1024 * 1024) if err_mem == ok else 0))
        return gpus
    except Exception as exc:  # a broken binding or driver must not stop a CPU run
        log.debug("cuda-python probe failed: %s", exc)
        return None


def probe_nvidia_smi(runner: Optional[Runner] = None) -> Optional[list[Gpu]]:
    """List GPUs with nvidia-smi; None when nvidia-smi is missing or fails."""
    runner = runner or _run
    try:
        output = runner(list(NVIDIA_SMI))
    except (FileNotFoundError, PermissionError):
        log.debug("nvidia-smi not found")
        return None
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log.debug("nvidia-smi failed: %s", exc)
        return None
    return parse_nvidia_smi(output)


def _catalogue(directory: Optional[Path]) -> dict[str, tuple[Optional[str], int, str]]:
    """Every loadable system: id -> (accelerator, count, submitter)."""
    systems = {}
    for system_id in system_ids(directory):
        try:
            system = load_system(system_id, directory)
        except Exception as exc:  # a broken file is reported by `systems list`, not here
            log.debug("skipping system %s: %s", system_id, exc)
            continue
        submitter = str(system.description.get("submitter", ""))
        systems[system_id] = (system.accelerator, system.accelerator_count, submitter)
    return systems


def _pick(candidates: list[str]) -> str:
    for preferred in PREFERRED:
        if preferred in candidates:
            return preferred
    return sorted(candidates)[0]


def match_system(gpus: list[Gpu], directory: Optional[Path] = None) -> tuple[str, bool, str]:
    """Choose the system file for a list of GPUs.

    Args:
        gpus: The GPUs found (non-empty).
        directory: Folder of system files instead of the project's ``systems/``.

    Returns:
        (system id, exact match?, one-line reason).
    """
    catalogue = _catalogue(directory)
    names = Counter(g.name for g in gpus)
    count = len(gpus)
    accels = {accelerator_of(g.name, g.memory_mib) for g in gpus}
    found = ", ".join(f"{n} x {name}" for name, n in names.items())
    if len(accels) == 1 and None not in accels:
        accel = accels.pop()
        exact = [sid for sid, (a, c, _) in catalogue.items() if a == accel and c == count]
        if exact:
            chosen = _pick(exact)
            others = [s for s in sorted(exact) if s != chosen]
            also = f" (also matching: {', '.join(others)})" if others else ""
            return chosen, True, f"found {found}: system {chosen}{also}"
        same = [sid for sid, (a, c, _) in catalogue.items() if a == accel]
        if not same:
            family = accel.split("-")[0]
            same = [sid for sid, (a, c, _) in catalogue.items() if a and a.split("-")[0] == family]
        if same:
            chosen = min(same, key=lambda s: (abs(catalogue[s][1] - count), s not in PREFERRED, s))
            return chosen, False, (
                f"found {found}: no system file for {count} x {accel}; nearest is {chosen} "
                f"({catalogue[chosen][1]} x {catalogue[chosen][0]}); copy it to a new file and adjust it"
            )
    generic = [sid for sid, (a, c, sub) in catalogue.items() if c > 0 and sub == "raybench"]
    chosen = min(generic, key=lambda s: abs(catalogue[s][1] - count)) if generic else CPU_SYSTEM
    unknown = sorted({g.name for g in gpus if accelerator_of(g.name, g.memory_mib) is None})
    what = f"unknown GPU {', '.join(repr(u) for u in unknown)}" if unknown else "mixed GPUs"
    return chosen, False, (
        f"found {found}: {what}; no system file describes it, nearest generic system is {chosen}; "
        f"copy systems/{chosen}.yaml to a new file and adjust it"
    )


def detect_system(
    runner: Optional[Runner] = None,
    *,
    use_cuda: Optional[bool] = None,
    directory: Optional[Path] = None,
) -> Detection:
    """Detect this host's GPUs and the system file that describes it.

    Args:
        runner: Runs a command (a list of strings) and returns its stdout; replaces the real
            nvidia-smi call (tests pass recorded outputs). Raise FileNotFoundError for "no
            nvidia-smi", subprocess.CalledProcessError for a failed call.
        use_cuda: Try cuda-python first; default: only when no runner is given.
        directory: Folder of system files instead of the project's ``systems/``.

    Returns:
        The detection; ``system_id`` is "cpu" on a host without GPUs.
    """
    if use_cuda is None:
        use_cuda = runner is None
    gpus, source = None, "none"
    if use_cuda:
        gpus = probe_cuda()
        source = "cuda-python"
    if not gpus:
        gpus = probe_nvidia_smi(runner)
        source = "nvidia-smi"
    if not gpus:
        return Detection(CPU_SYSTEM, [], "none", "no NVIDIA GPU found: system cpu (CPU host)")
    system_id, exact, message = match_system(gpus, directory)
    log.info("detected %s via %s: %s", system_id, source, message)
    return Detection(system_id, [g.name for g in gpus], source, f"{message} [{source}]", exact)
