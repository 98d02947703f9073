"""The package as a user installs it: every subpackage listed, and the data inside a non-editable install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_pyproject_lists_every_subpackage_and_maps_data_in() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "corerl").rglob("__init__.py")}
    assert found | {"corerl._data"} == set(setuptools["packages"])
    assert setuptools["package-dir"] == {"corerl._data": "data"}


@pytest.mark.slow
def test_a_non_editable_install_loads_every_dataset_and_runs_notebook_00(tmp_path: Path) -> None:
    """pip install (not -e) into a fresh virtualenv, then run from a folder outside the checkout.

    The dependencies are this environment's (a .pth line adds its site-packages after the new
    environment's own), so only corerl itself is built and installed: about a minute.
    """
    from corerl.data import DATASETS

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "_corerl_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]

    outside = tmp_path / "elsewhere"
    (outside / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "00_quickstart.ipynb", outside / "notebooks")
    environment = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("PYTHONPATH", None)
    names = ", ".join(repr(name) for name in DATASETS)
    script = (
        "import corerl, corerl.data\n"
        f"assert corerl.__file__.startswith({str(venv)!r}), corerl.__file__\n"
        f"sizes = {{name: len(corerl.data.load_dataset(name)) for name in ({names})}}\n"
        "print(corerl.data.DATA_DIR, sizes)\n"
    )
    loaded = subprocess.run(
        [str(python), "-c", script], cwd=outside, env=environment, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "corerl/_data" in loaded.stdout and "'math500': 500" in loaded.stdout

    smoke = subprocess.run(
        [str(python), "-m", "corerl.cli", "reproduce", "--smoke", "--profile", "tiny", "--only", "00"]
        + ["--notebooks", "notebooks", "--runs", "runs", "--out", "executed"],
        cwd=outside,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert smoke.returncode == 0, (smoke.stdout + smoke.stderr)[-3000:]
    assert (outside / "executed").is_dir()
