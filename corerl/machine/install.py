"""The pinned install, in one place: what ``pyproject.toml``, the notebooks' install cell and CI read.

Standard library only, and importing nothing from corerl: the notebooks' install cell (tagged
``shared-install``, text in ``corerl/tools/notebooks.py``) installs corerl with ``--no-deps``, then calls
``install()`` here, before any of corerl's dependencies exist (``tests/test_install.py`` runs that cell in
a fresh environment, checks that ``pyproject.toml`` lists the same pins and, with pip's resolver in
dry-run mode, that the lists resolve).

Torch: an installed torch inside Unsloth's range (``TORCH_RANGE``) is kept, pinned by a constraint so
that pip can neither replace it nor swap its CUDA build. Colab and Kaggle ship a CUDA build of torch
that matches their driver (CUDA 12 level on their T4s), and Unsloth's own notebooks keep it; the torch
2.13.0 wheel on PyPI is a CUDA 13 build, which a CUDA 12 driver cannot run (``torch.cuda.is_available()``
is then False). Without an installed torch, ``TORCH`` is installed from PyPI: on a CPU, or on a GPU whose
driver runs CUDA 13; with an older driver the plan stops and names the fix (a CUDA 12 build from
PyTorch's wheel index), because PyTorch's index cannot be checked from this project's CI.

>>> plan = install_plan(gpu=True, torch_version="2.9.0+cu126", torch_cuda="12.6", torchvision_version="0.24.0+cu126")
>>> plan.constraints, TORCH in plan.requirements, "unsloth==2026.10.9" in plan.requirements
(['torch==2.9.0+cu126', 'torchvision==0.24.0+cu126', 'torchao==0.14.1'], False, True)
>>> install_plan(gpu=False, torch_version=None, torch_cuda=None).requirements[0]
'torch==2.13.0'
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Measured (pip's dry-run resolver and the wheels' METADATA, 2026-12-02): unsloth and unsloth_zoo
# 2026.10.9 require torch>=2.4.0,<2.15.0, transformers<=5.17.0, trl<=1.15.0, datasets<5; unsloth sets
# only a floor on unsloth_zoo, so both are pinned. 2026.10.1-.3 required trl<=1.13.0 (no resolution).
TORCH = "torch==2.13.0"
TORCH_RANGE = ((2, 4), (2, 15))  # [low, high) of the torch versions Unsloth 2026.10.9 accepts
# corerl's runtime dependencies other than torch, exactly as pyproject.toml lists them.
STACK = (
    "transformers==5.17.0",
    "trl==1.14.2",
    "datasets==4.8.5",
    "peft==0.21.2",
    "accelerate==1.15.0",
    "math-verify==0.9.0",
    "tokenizers",
    "pyyaml",
    "tqdm",
    "pandas",
    "pyarrow",
    "matplotlib",
    "seaborn==0.13.2",  # figures; METADATA: numpy>=1.20,!=1.24.0, pandas>=1.2, matplotlib>=3.4,!=3.6.1
    "nbclient",
    "nbformat",
    "ipykernel",
)
# The ``gpu`` extra: Unsloth 4-bit QLoRA (bitsandbytes floor: unsloth's own, >=0.45.5 but not 0.46.0/0.48.0).
GPU_STACK = ("unsloth==2026.10.9", "unsloth_zoo==2026.10.9", "bitsandbytes>=0.45.5,!=0.46.0,!=0.48.0")
CUDA_13 = (13, 0)
# torchao under a kept torch older than 2.10. unsloth_zoo 2026.10.9 requires torchao>=0.13.0 and torchao
# declares no torch bound, so pip takes the newest (0.18.0), whose module-level import of
# torch.nn.functional.ScalingType fails on torch < 2.10 and with it `import transformers` unless unsloth
# is imported first (unsloth/import_fixes.py, fix_torchao_torch_symbol_skew): `corerl eval`/`train`
# from a fresh shell and the PEFT fallback path. The torchao each torch gets is the one built against it
# (torchao's compatibility table, pytorch/ao issue #2919 and torchao 0.16.0's __init__.py: 0.13.0 for
# torch 2.8.0, 0.14.1 for 2.9.0, 0.15.0 for 2.9.1, 0.16.0 for 2.10.0, 0.17.0+ for 2.11+); a torch older
# than 2.8 gets the floor, 0.13.0, whose Python API supports 2.6-2.8.
TORCHAO_FLOOR = "torchao==0.13.0"
TORCHAO_FOR_TORCH = {(2, 8): TORCHAO_FLOOR, (2, 9, 0): "torchao==0.14.1", (2, 9, 1): "torchao==0.15.0"}
TORCHAO_NEEDED_BELOW = (2, 10)


def torchao_constraint(torch_version: str) -> str | None:
    """The torchao pin for a kept torch older than 2.10 (see ``TORCHAO_FOR_TORCH``), else None.

    >>> torchao_constraint("2.9.0+cu126"), torchao_constraint("2.9.1"), torchao_constraint("2.10.0")
    ('torchao==0.14.1', 'torchao==0.15.0', None)
    """
    version = version_tuple(torch_version)
    if version[:2] >= TORCHAO_NEEDED_BELOW:
        return None
    return TORCHAO_FOR_TORCH.get(version[:3]) or TORCHAO_FOR_TORCH.get(version[:2]) or TORCHAO_FLOOR


@dataclass
class InstallPlan:
    """What pip is asked for: requirements, constraints pinning the kept torch, and what was decided."""

    requirements: list[str]
    constraints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def version_tuple(version: str | None) -> tuple[int, ...]:
    """The leading numbers of a version string: ``"2.9.0+cu126"`` -> ``(2, 9, 0)``, ``"12.4"`` -> ``(12, 4)``.

    >>> version_tuple("2.9.0+cu126"), version_tuple("12.4"), version_tuple(None)
    ((2, 9, 0), (12, 4), ())
    """
    return tuple(int(part) for part in re.findall(r"\d+", (version or "").split("+")[0])[:3])


def installed_torch() -> tuple[str | None, str | None]:
    """(version, CUDA version or None) of the installed torch, read from its files without importing it.

    Importing torch here would make replacing it need a runtime restart; reading ``torch/version.py``
    does not.
    """
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None, None
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return version, None
    version_file = Path(spec.origin).parent / "version.py"
    text = version_file.read_text() if version_file.is_file() else ""
    match = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([\d.]+)['\"]", text, re.M)
    return version, match.group(1) if match else None


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvidia_gpu_present(proc_driver: str = "/proc/driver/nvidia") -> bool:
    """An NVIDIA driver is loaded: ``nvidia-smi`` on the PATH or ``/proc/driver/nvidia`` present."""
    return shutil.which("nvidia-smi") is not None or Path(proc_driver).exists()


def parse_driver_cuda(nvidia_smi_output: str) -> str | None:
    """The highest CUDA version the driver supports, from ``nvidia-smi``'s header.

    >>> parse_driver_cuda("| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |")
    '12.4'
    >>> parse_driver_cuda("no header") is None
    True
    """
    match = re.search(r"CUDA Version:\s*([\d.]+)", nvidia_smi_output)
    return match.group(1) if match else None


def driver_cuda_version() -> str | None:
    """The driver's CUDA version (``nvidia-smi``), or None when it cannot be read."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_driver_cuda(done.stdout)


def cuda12_fix(driver_cuda: str | None) -> str:
    """The command that installs a torch this driver can run (PyTorch's CUDA 12.6 wheels)."""
    return (
        f"pip install '{TORCH}' --index-url https://download.pytorch.org/whl/cu126 "
        f"(a CUDA 12 build, for a driver at CUDA {driver_cuda or '12.x'}; PyTorch's index is not "
        "checked by corerl's CI: pick the build your driver supports)"
    )


def install_plan(
    *,
    gpu: bool,
    torch_version: str | None,
    torch_cuda: str | None,
    torchvision_version: str | None = None,
    driver_cuda: str | None = None,
) -> InstallPlan:
    """Decide what to install from the machine's facts (all passed in, so tests can inject them).

    Raises RuntimeError when no install would give a torch that sees the GPU.
    """
    requirements = list(STACK) + (list(GPU_STACK) if gpu else [])
    low, high = TORCH_RANGE
    # CUDA 12.x builds run on any CUDA 12 driver (minor-version compatibility): compare the major version.
    runs_here = not gpu or (
        torch_cuda is not None
        and (driver_cuda is None or version_tuple(torch_cuda)[:1] <= version_tuple(driver_cuda)[:1])
    )
    if torch_version and low <= version_tuple(torch_version)[:2] < high and runs_here:
        constraints = [f"torch=={torch_version}"]
        if torchvision_version:
            constraints.append(f"torchvision=={torchvision_version}")
        build = f"CUDA {torch_cuda}" if torch_cuda else "CPU"
        notes = [f"keeping the installed torch {torch_version} ({build})"]
        torchao = torchao_constraint(torch_version) if gpu else None  # unsloth_zoo's dependency
        if torchao:
            constraints.append(torchao)
            notes.append(f"{torchao}: the torchao built for torch {torch_version} (0.18 breaks it)")
        return InstallPlan(requirements, constraints, notes)
    if gpu and version_tuple(driver_cuda) < CUDA_13:
        found = f"torch {torch_version} ({'CUDA ' + torch_cuda if torch_cuda else 'no CUDA'})"
        raise RuntimeError(
            f"this machine has an NVIDIA GPU (driver at CUDA {driver_cuda or 'unknown'}) but "
            f"{found if torch_version else 'no torch'} that corerl can keep, and PyPI's {TORCH} is a "
            f"CUDA 13 build this driver cannot run. Fix: {cuda12_fix(driver_cuda)}, then run this cell again."
        )
    reason = f"replacing torch {torch_version}" if torch_version else "no torch installed"
    return InstallPlan([TORCH] + requirements, [], [f"{reason}: installing {TORCH} from PyPI"])


def install(package: str | None = None, *, quiet: bool = True) -> InstallPlan:
    """Install corerl's stack into this Python, and ``package`` (a pip requirement for corerl itself)
    when given; the notebooks' install cell has already installed corerl and passes none.

    Prints what it decided, every package pip installed and the time it took. corerl itself is
    installed with ``--no-deps`` (its dependencies are the plan's requirements): its own exact torch
    pin would otherwise replace the torch the plan keeps. Raises RuntimeError when a module this
    kernel has already imported was replaced (the kernel must then be restarted; it says so).
    """
    started = time.time()
    gpu = nvidia_gpu_present()
    torch_version, torch_cuda = installed_torch()
    plan = install_plan(
        gpu=gpu,
        torch_version=torch_version,
        torch_cuda=torch_cuda,
        torchvision_version=installed_version("torchvision"),
        driver_cuda=driver_cuda_version() if gpu else None,
    )
    for note in plan.notes:
        print(f"install: {note}")
    loaded = set(sys.modules)
    before = {
        (dist.metadata["Name"] or "").lower(): dist.version for dist in importlib.metadata.distributions()
    }
    pip = [sys.executable, "-m", "pip", "install"] + (["--quiet"] if quiet else [])
    with tempfile.TemporaryDirectory() as scratch:
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text("".join(f"{line}\n" for line in plan.constraints))
        report = Path(scratch) / "report.json"
        subprocess.run(
            [*pip, "-c", str(constraints), "--report", str(report), *plan.requirements], check=True
        )
        installed = json.loads(report.read_text())["install"]
        if package is not None:
            subprocess.run([*pip, "--no-deps", "--force-reinstall", package], check=True)
    importlib.invalidate_caches()  # let this running kernel import what was just installed
    names = sorted(f"{item['metadata']['name']} {item['metadata']['version']}" for item in installed)
    print(f"install: {len(names)} packages in {time.time() - started:.0f} s: {', '.join(names) or 'none'}")
    replaced = sorted(
        item["metadata"]["name"]
        for item in installed
        if before.get(item["metadata"]["name"].lower()) not in (None, item["metadata"]["version"])
        and _import_name(item["metadata"]["name"]) in loaded
    )
    if replaced:
        raise RuntimeError(
            f"the install replaced {', '.join(replaced)}, already imported by this kernel: restart it "
            "(Colab: Runtime > Restart session; Kaggle: Run > Restart & clear outputs) and run all again "
            "(this cell is then skipped)"
        )
    return plan


def _import_name(distribution: str) -> str:
    """The top-level module name of a distribution (the usual spelling; good enough for the check)."""
    return {"pyyaml": "yaml", "pillow": "PIL", "protobuf": "google.protobuf"}.get(
        distribution.lower(), distribution.lower().replace("-", "_")
    )
