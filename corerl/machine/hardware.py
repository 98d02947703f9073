"""What the machine's GPU can do for torch, and a stop instead of a silent CPU fallback.

Where an NVIDIA driver is loaded (``nvidia-smi`` on the PATH or ``/proc/driver/nvidia``) but torch
cannot use the GPU (a CPU build, or a CUDA build newer than the driver, e.g. PyPI's CUDA 13 torch on a
CUDA 12 T4 driver), :func:`check_gpu` raises :class:`GpuUnusableError` naming the driver's CUDA
version, torch's and the fix; ``PROFILE="auto"`` (:func:`corerl.study.resolve_profile`) and every GPU
profile go through it, so a T4 session never trains the CPU organism by accident. Choosing the
``tiny`` profile explicitly still runs on the CPU.

:func:`import_error`: whether an optional GPU package (Unsloth, vLLM) imports on this machine, and why not.

bf16: ``torch.cuda.is_bf16_supported()`` counts emulation and says True on a T4 (compute capability
7.5); :func:`bf16_supported` asks for native bf16, compute capability 8.0 or higher (Ampere on).

>>> facts = GpuFacts(nvidia_driver=True, driver_cuda="12.4", torch_version="2.13.0", torch_cuda="13.0",
...                  cuda_available=False)
>>> check_gpu(facts)
Traceback (most recent call last):
...
corerl.machine.hardware.GpuUnusableError: an NVIDIA GPU is present (its driver supports CUDA up to 12.4) but torch 2.13.0, built for CUDA 13.0, cannot use it ...
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from corerl.machine.install import cuda12_fix, driver_cuda_version, nvidia_gpu_present, version_tuple

BF16_MIN_CAPABILITY = (8, 0)  # native bf16 tensor cores: Ampere (sm_80) and newer


class GpuUnusableError(RuntimeError):
    """An NVIDIA GPU is present but torch cannot use it; the message names the versions and the fix."""


@dataclass(frozen=True)
class GpuFacts:
    """What detection found (injected in tests: there is no GPU on CI)."""

    nvidia_driver: bool
    driver_cuda: str | None
    torch_version: str
    torch_cuda: str | None
    cuda_available: bool
    capability: tuple[int, int] | None = None
    name: str | None = None


def gpu_facts() -> GpuFacts:
    """Detect the driver and torch's view of it on this machine."""
    import torch

    driver = nvidia_gpu_present()
    available = torch.cuda.is_available()
    return GpuFacts(
        nvidia_driver=driver,
        driver_cuda=driver_cuda_version() if driver else None,
        torch_version=torch.__version__,
        torch_cuda=torch.version.cuda,
        cuda_available=available,
        capability=tuple(torch.cuda.get_device_capability(0)) if available else None,
        name=torch.cuda.get_device_name(0) if available else None,
    )


def check_gpu(facts: GpuFacts) -> None:
    """Raise GpuUnusableError when an NVIDIA GPU is present but torch cannot use it."""
    if not facts.nvidia_driver or facts.cuda_available:
        return
    driver = f"its driver supports CUDA up to {facts.driver_cuda}" if facts.driver_cuda else "driver found"
    build = f"built for CUDA {facts.torch_cuda}" if facts.torch_cuda else "a CPU-only build"
    if (
        facts.torch_cuda
        and facts.driver_cuda
        and version_tuple(facts.torch_cuda) > version_tuple(facts.driver_cuda)
    ):
        why = f"CUDA {facts.torch_cuda} needs a newer driver than this one"
    elif facts.torch_cuda:
        why = "the GPU is not visible to this process (CUDA_VISIBLE_DEVICES, or a driver/runtime mismatch)"
    else:
        why = "a CPU build has no CUDA"
    raise GpuUnusableError(
        f"an NVIDIA GPU is present ({driver}) but torch {facts.torch_version}, {build}, cannot use it "
        f"({why}). Fix: on Colab/Kaggle start a fresh runtime and run the notebook's install cell, which "
        f"keeps the platform's CUDA torch; elsewhere {cuda12_fix(facts.driver_cuda)}, then restart Python. "
        "To train on the CPU anyway, choose the tiny profile explicitly."
    )


def cuda_usable(facts: GpuFacts | None = None) -> bool:
    """True when torch can use a CUDA GPU; raises GpuUnusableError when a GPU is there but unusable."""
    facts = facts or gpu_facts()
    check_gpu(facts)
    return facts.cuda_available


def bf16_supported(capability: tuple[int, int] | None) -> bool:
    """Native bf16 (compute capability >= 8.0); a T4 (7.5) emulates it, slowly.

    >>> bf16_supported((7, 5)), bf16_supported((8, 0)), bf16_supported(None)
    (False, True, False)
    """
    return capability is not None and tuple(capability) >= BF16_MIN_CAPABILITY


def import_error(module: str) -> str | None:
    """Import ``module`` on a CUDA machine; None when it imported, else why not (a one-line reason).

    An import attempt, not ``find_spec``: a preinstalled but broken package (a wheel built for another
    torch, a missing CUDA library) is found by ``find_spec`` and then crashes mid-run. Without CUDA
    the module is never imported (``import unsloth`` fails there by design).
    """
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    try:
        importlib.import_module(module)
    except Exception as error:  # ImportError, but also RuntimeError/OSError from a broken build
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None
