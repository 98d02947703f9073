"""GPU detection never degrades silently, bf16 only where native, backends chosen by importing them.

There is no GPU here or in CI: the detection inputs are injected (``corerl.machine.hardware.GpuFacts``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from corerl.config import make_config
from corerl.engine import model as engine_model
from corerl.machine import hardware
from corerl.machine.hardware import GpuFacts, GpuUnusableError, check_gpu, cuda_usable

CUDA13_ON_CUDA12_DRIVER = GpuFacts(
    nvidia_driver=True, driver_cuda="12.4", torch_version="2.13.0", torch_cuda="13.0", cuda_available=False
)


def test_a_cuda13_torch_on_a_cuda12_driver_names_both_versions_and_the_fix() -> None:
    with pytest.raises(GpuUnusableError) as raised:
        check_gpu(CUDA13_ON_CUDA12_DRIVER)
    message = str(raised.value)
    assert "CUDA up to 12.4" in message and "torch 2.13.0, built for CUDA 13.0" in message
    assert "needs a newer driver" in message and "whl/cu126" in message and "install cell" in message


def test_a_cpu_torch_on_a_gpu_machine_stops_too() -> None:
    facts = GpuFacts(True, "12.2", "2.13.0+cpu", None, cuda_available=False)
    with pytest.raises(GpuUnusableError, match=r"torch 2\.13\.0\+cpu, a CPU-only build, cannot use it"):
        cuda_usable(facts)


def test_no_driver_means_a_cpu_machine_and_a_working_gpu_passes() -> None:
    assert cuda_usable(GpuFacts(False, None, "2.13.0+cpu", None, cuda_available=False)) is False
    working = GpuFacts(True, "12.4", "2.9.0+cu126", "12.6", cuda_available=True, capability=(7, 5))
    assert cuda_usable(working) is True
    assert not hardware.bf16_supported(working.capability)


def test_auto_never_quietly_becomes_tiny_on_a_broken_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from corerl.study import resolve_profile

    monkeypatch.setattr(hardware, "gpu_facts", lambda: CUDA13_ON_CUDA12_DRIVER)
    with pytest.raises(GpuUnusableError, match="CUDA up to 12.4"):
        resolve_profile("auto")
    assert resolve_profile("tiny") == "tiny"  # chosen explicitly: the CPU is what was asked for
    with pytest.raises(GpuUnusableError):
        engine_model.choose_backend(make_config("t4"))


def test_detection_reads_proc_driver_nvidia(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from corerl.machine import install

    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    assert not install.nvidia_gpu_present(str(tmp_path / "absent"))
    (tmp_path / "nvidia").mkdir()
    assert install.nvidia_gpu_present(str(tmp_path / "nvidia"))


def test_a_broken_preinstalled_backend_is_not_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """find_spec finds a package that crashes on import; the import attempt falls back with a warning."""
    import torch

    (tmp_path / "unsloth").mkdir()
    (tmp_path / "unsloth" / "__init__.py").write_text("raise RuntimeError('built for another torch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hardware, "cuda_usable", lambda facts=None: True)
    assert hardware.import_error("unsloth") == "RuntimeError: built for another torch"
    with caplog.at_level(logging.WARNING, logger="corerl.engine.model"):
        backend = engine_model.choose_backend(make_config("t4", use_vllm=False))
    assert backend.cuda and not backend.unsloth and not backend.vllm
    assert "unsloth cannot be imported (RuntimeError: built for another torch)" in caplog.text


def test_a_gpu_study_prints_why_unsloth_cannot_be_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import torch

    from corerl.study import profiles

    (tmp_path / "unsloth").mkdir()
    (tmp_path / "unsloth" / "__init__.py").write_text("raise ImportError('no module named triton')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    profiles.prepare_process("t4")
    printed = capsys.readouterr().out
    assert "Unsloth cannot be imported (ImportError: no module named triton)" in printed
    assert "plain TRL + PEFT" in printed


def test_generation_picks_fp16_on_a_t4_and_bf16_on_ampere() -> None:
    from corerl.generation import default_dtype

    assert default_dtype("cuda:0", (7, 5)) == "float16"
    assert default_dtype("cuda", (8, 0)) == "bfloat16"
    assert default_dtype("cpu") == "float32"


def test_the_gpu_benchmark_stops_clearly_without_cuda() -> None:
    import subprocess

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: run benchmarks/gpu_step.py itself")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "gpu_step.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "gpu_step:" in done.stderr and "GPU" in done.stderr


def test_the_cli_reports_an_unusable_gpu_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from corerl.cli import main

    monkeypatch.setattr(hardware, "gpu_facts", lambda: CUDA13_ON_CUDA12_DRIVER)
    assert main(["train", "--profile", "t4", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("corerl train: error: an NVIDIA GPU is present") and "Traceback" not in error
