"""The pinned install: one list for pyproject, the notebooks' install cell and CI, and pip resolves it.

The dry-run tests ask pip's resolver (metadata only, nothing is installed) in a throwaway virtual
environment whether the exact lists resolve; they need the package registry, as CI has.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corerl.machine import install
from corerl.machine.install import GPU_STACK, STACK, TORCH, install_plan

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
# A platform torch of the CUDA 12 era, as preinstalled on Colab/Kaggle (kept by the install cell).
PLATFORM_TORCH = ("torch==2.9.0", "torchvision==0.24.0")
TORCHAO_FOR_2_9_0 = "torchao==0.14.1"  # built against torch 2.9.0 (pytorch/ao issue #2919)


def test_pyproject_lists_the_same_pins_as_the_install_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == [TORCH, *STACK]
    assert project["optional-dependencies"]["gpu"] == list(GPU_STACK)


def test_every_notebook_install_cell_hands_over_to_the_install_module() -> None:
    import nbformat

    from corerl.tools.notebooks import INSTALL, tagged

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cell = tagged(nbformat.read(path, as_version=4), "shared-install")[0].source
        assert cell == INSTALL, f"{path.name}: run python -m corerl.notebooks"
    assert '"--no-deps", source]' in INSTALL and "from corerl.install import install" in INSTALL
    assert len(INSTALL.splitlines()) < 30


def _repository(tmp_path: Path) -> Path:
    """A copy of what pip builds corerl from (pyproject.toml, README.md, corerl/, data/)."""
    copy = tmp_path / "corerl-main"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    for name in ("corerl", "data"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def _run_install_cell(tmp_path: Path, source: str, **env: str) -> subprocess.CompletedProcess:
    """The parameters and install cells, as a notebook runs them, in a fresh virtual environment without
    corerl; pip may not reach an index (``PIP_NO_INDEX``) and logs every call it gets to ``pip.log``."""
    from corerl.tools.notebooks import INSTALL, PARAMETERS

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    parameters = re.sub(r"^CORERL_SOURCE = .*$", f"CORERL_SOURCE = {source!r}", PARAMETERS, flags=re.M)
    script = tmp_path / "cells.py"
    script.write_text(parameters + "\n" + INSTALL + "\n")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_LOG": str(tmp_path / "pip.log"),
        **env,
    }
    return subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


def _installed_corerl(tmp_path: Path) -> str:
    done = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", "import corerl.install, importlib.metadata as m; "
         "print(m.version('corerl'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_the_install_cell_stops_on_the_placeholder_before_any_pip_call(tmp_path: Path) -> None:
    from corerl.tools.notebooks import PARAMETERS, PLACEHOLDER

    assert PLACEHOLDER in PARAMETERS  # the shipped default until the repository is public
    done = _run_install_cell(tmp_path, f"git+https://github.com/{PLACEHOLDER}.git@main")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "RuntimeError: CORERL_SOURCE names the placeholder repository OWNER/corerl: set it in the parameters"
        )
    )
    assert "/kaggle/input/" in done.stderr and "git+https://github.com/<owner>/corerl.git" in done.stderr
    assert not (tmp_path / "pip.log").exists()  # pip was never called


def test_the_install_cell_installs_corerl_alone_from_a_wheel_then_hands_over(tmp_path: Path) -> None:
    """A wheel (on Drive or in /kaggle/input): corerl alone, then corerl.install plans the stack; pip has no
    index here, so the stack's install fails after the plan is printed, which is as far as a test goes."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels),
         str(_repository(tmp_path))],
        check=True, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("corerl-*.whl")
    done = _run_install_cell(tmp_path, str(wheel))
    # corerl alone: with its dependencies, pip (no index) could not have installed it
    assert _installed_corerl(tmp_path) == "0.1.0"
    assert "install: no torch installed: installing torch==2.13.0 from PyPI" in done.stdout
    assert "torch==2.13.0" in (tmp_path / "pip.log").read_text()  # then the plan's requirements
    assert done.returncode == 1 and "CalledProcessError" in done.stderr  # no index: the stack stops here


@pytest.mark.slow
def test_the_install_cell_installs_corerl_from_a_zip_of_the_repository(tmp_path: Path) -> None:
    """A zip as GitHub's "Download ZIP" makes (one top folder); pip builds it with setuptools, fetched
    here into a local folder (the registry is needed for that, as on Colab)."""
    archive = shutil.make_archive(str(tmp_path / "corerl"), "zip", tmp_path, _repository(tmp_path).name)
    links = tmp_path / "links"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "-d", str(links), "setuptools>=77", "wheel"],
        check=True, timeout=600,
    )  # fmt: skip
    done = _run_install_cell(tmp_path, archive, PIP_FIND_LINKS=str(links))
    assert _installed_corerl(tmp_path) == "0.1.0"
    assert "install: no torch installed: installing torch==2.13.0 from PyPI" in done.stdout


def test_a_platform_cuda_torch_is_kept_and_pinned() -> None:
    plan = install_plan(
        gpu=True,
        torch_version="2.9.0+cu126",
        torch_cuda="12.6",
        torchvision_version="0.24.0+cu126",
        driver_cuda="12.4",
    )
    assert plan.constraints == ["torch==2.9.0+cu126", "torchvision==0.24.0+cu126", TORCHAO_FOR_2_9_0]
    assert not any(requirement.startswith("torch") for requirement in plan.requirements)
    assert set(GPU_STACK) <= set(plan.requirements)
    assert "keeping the installed torch 2.9.0+cu126 (CUDA 12.6)" in plan.notes


@pytest.mark.parametrize(
    ("torch_version", "torchao"),
    [
        ("2.7.1+cu126", "torchao==0.13.0"),
        ("2.8.0+cu126", "torchao==0.13.0"),
        ("2.9.0+cu126", "torchao==0.14.1"),
        ("2.9.1+cu128", "torchao==0.15.0"),
        ("2.10.0+cu128", None),
        ("2.13.0+cu130", None),
    ],
)
def test_torchao_is_pinned_to_the_kept_torch_below_2_10(torch_version: str, torchao: str | None) -> None:
    """torchao 0.18.0 (what unsloth_zoo's floor lets pip take) breaks `import transformers` below torch 2.10."""
    plan = install_plan(gpu=True, torch_version=torch_version, torch_cuda="12.6", driver_cuda="13.0")
    pinned = [constraint for constraint in plan.constraints if constraint.startswith("torchao")]
    assert pinned == ([torchao] if torchao else [])
    cpu = install_plan(gpu=False, torch_version=torch_version, torch_cuda=None)
    assert not [constraint for constraint in cpu.constraints if constraint.startswith("torchao")]


def test_a_cuda13_torch_on_a_cuda12_driver_stops_with_the_fix() -> None:
    with pytest.raises(RuntimeError, match=r"driver at CUDA 12\.4.*torch 2\.13\.0 \(CUDA 13\.0\).*cu126"):
        install_plan(gpu=True, torch_version="2.13.0", torch_cuda="13.0", driver_cuda="12.4")


def test_a_cpu_torch_on_a_gpu_machine_is_not_kept() -> None:
    plan = install_plan(gpu=True, torch_version="2.13.0+cpu", torch_cuda=None, driver_cuda="13.0")
    assert plan.requirements[0] == TORCH and not plan.constraints


def test_without_torch_a_cpu_machine_gets_the_exact_pin() -> None:
    plan = install_plan(gpu=False, torch_version=None, torch_cuda=None)
    assert plan.requirements == [TORCH, *STACK] and not plan.constraints


def test_a_torch_outside_unsloths_range_is_replaced_on_a_cpu() -> None:
    plan = install_plan(gpu=False, torch_version="2.15.1", torch_cuda=None)
    assert plan.requirements[0] == TORCH and "replacing torch 2.15.1" in plan.notes[0]


def test_installed_torch_reads_the_cuda_build_without_importing_torch() -> None:
    version, cuda = install.installed_torch()
    import torch

    assert version == torch.__version__.split("+")[0] or version == torch.__version__
    assert cuda == torch.version.cuda


def _dry_run(tmp_path: Path, arguments: list[str], *, cwd: Path = ROOT) -> dict:
    """pip's resolver on ``arguments`` for a fresh Python 3 environment; returns pip's report."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    command += ["--dry-run", "--ignore-installed", "--quiet", "--report", str(report), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=900)
    errors = "\n".join(line for line in done.stderr.splitlines() if "is ignored" not in line)
    assert done.returncode == 0, f"pip cannot resolve {arguments}:\n{errors[-3000:]}"
    installed = json.loads(report.read_text())["install"]
    return {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"] for item in installed
    }


@pytest.mark.slow
def test_the_notebook_gpu_install_resolves_around_a_platform_torch(tmp_path: Path) -> None:
    """The install cell's exact list on a T4 runtime whose CUDA 12 torch is kept (pinned by constraints)."""
    plan = install_plan(
        gpu=True, torch_version="2.9.0", torch_cuda="12.6", torchvision_version="0.24.0", driver_cuda="12.4"
    )
    assert plan.constraints == [*PLATFORM_TORCH, TORCHAO_FOR_2_9_0]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(plan.constraints) + "\n")
    resolved = _dry_run(tmp_path, ["-c", str(constraints), *plan.requirements])
    assert resolved["torch"] == "2.9.0" and resolved["unsloth"] == "2026.10.9"
    assert resolved["trl"] == "1.14.2" and resolved["transformers"] == "5.17.0"
    assert resolved["torchao"] == "0.14.1"  # not 0.18.0, which breaks import transformers on torch 2.9


@pytest.mark.slow
def test_the_gpu_extra_resolves_with_the_exact_pins(tmp_path: Path) -> None:
    resolved = _dry_run(tmp_path, [f"{ROOT}[gpu]"])
    assert resolved["unsloth"] == resolved["unsloth-zoo"] == "2026.10.9"
    assert resolved["torch"].split("+")[0] == "2.13.0" and resolved["trl"] == "1.14.2"
