"""The numbered notebooks' shared cells and stripped outputs: ``python -m corerl.notebooks [--check] [DIR]``.

The notebooks in ``notebooks/`` are the source: edit them in Jupyter, Colab or a text editor. A few cells
must read the same in every notebook; each carries a cell tag (``metadata.tags``) and its one text lives
here, in ``SHARED``:

* ``shared-intro`` (markdown, after the title): the notebook's Colab/Kaggle badges and how to run it;
* ``parameters`` (papermill's tag; ``corerl reproduce`` injects values after it): the parameters every
  notebook takes, optionally followed by lines of the notebook's own parameters;
* ``shared-install``: the install cell, skipped where corerl is importable: it stops before any pip call
  while the parameter ``CORERL_SOURCE`` names the placeholder repository, installs corerl alone from that
  source (a git URL, a wheel, a zip or folder of the repository) and hands over to ``corerl.install`` for
  the pinned stack;
* ``shared-setup``: imports, logging and the ``Study`` of the parameters;
* ``shared-strategy-shares`` (markdown, only in the notebooks that plot them): what the organism's
  strategy shares are.

Outputs stay out of git: no outputs, no execution counts, no execution metadata (Jupyter's, Colab's),
no widget state. Without ``--check`` the command rewrites the shared cells from the texts here, strips
outputs and restores the notebook metadata that opens a notebook on a T4 in Colab, writing only the
notebooks it changed; with ``--check`` it changes nothing, names every notebook and cell that differs and
exits 1 (CI runs the check through ``tests/test_notebooks.py``). To change a shared cell everywhere, edit its
text here and run the command. Standard library and nbformat only: it must run
where the notebooks are edited, without torch.

>>> [cell.tag for cell in SHARED]
['shared-intro', 'parameters', 'shared-install', 'shared-setup', 'shared-strategy-shares']
>>> SHARED[0].source("01_baselines").count("notebooks/01_baselines.ipynb")
2
"""

from __future__ import annotations

import argparse
import copy
import difflib
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from corerl.tools.reproduce import default_notebooks_dir, find_notebooks

# The GitHub repository the badges and the install cell point to ("owner/name").
PLACEHOLDER = "OWNER/corerl"  # until the repository is public: every notebook then fails with the fix
REPOSITORY = PLACEHOLDER
BRANCH = "main"
NOTEBOOK = "{notebook}"  # stands for the notebook's name (00_quickstart) in a shared text

_BADGE_PATH = f"{REPOSITORY}/blob/{BRANCH}/notebooks/{NOTEBOOK}.ipynb"
INTRO = (
    f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    f"(https://colab.research.google.com/github/{_BADGE_PATH}) "
    f"[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]"
    f"(https://kaggle.com/kernels/welcome?src=https://github.com/{_BADGE_PATH})\n\n"
    "Run all. On a CPU the `tiny` profile trains the model organism (a small arithmetic task and tiny models "
    "built on this machine) in minutes; on a Colab/Kaggle T4 the `t4` profile trains Qwen3-1.7B-Base with "
    "Unsloth QLoRA. Runs that already exist in `RUNS_DIR` are loaded, not retrained."
)

PARAMETERS = """\
# Parameters: papermill and `corerl reproduce` inject new values in a cell right after this one.
PROFILE = "auto"  # "auto": t4 on a CUDA GPU, else tiny | "tiny": CPU organism, minutes | "t4": Colab/Kaggle T4, real 1.7B model, hours | "a100"
STEPS = None  # optimizer steps per run, None for the profile's: tiny 50, t4 30 (fits a free T4 quota: corerl plan --profile t4); more steps show slower dynamics such as collapse, cost grows linearly
MODEL = None  # base model, hub id or path; None for the profile's: the organism's aligned model, built here once, on tiny; Qwen3-1.7B-Base on t4
SMOKE = False  # True: 2 steps and a few questions everywhere, to check the notebook runs; the numbers then mean nothing
RETRAIN = False  # False: finished runs are loaded, interrupted ones resumed; True: retrain the runs this notebook uses, shared with others
RUNS_DIR = None  # runs, checkpoints, evaluations; None: Google Drive or /kaggle/working when present, which survives a disconnect, else ./runs
FIGURES_DIR = "figures"  # figures are written here as PNG and SVG
SMOOTHING = 10  # training curves are rolling means over this many steps; 1 shows raw values, honest but noisy: a tiny step sees 16 rollouts
EVAL_QUESTIONS = None  # questions per benchmark, None for the profile's: tiny 200, t4 50; more gives tighter numbers and slower evaluation
USE_DRIVE = True  # on Colab: mount Google Drive so checkpoints survive a disconnect; asks permission once
SEED = 0  # one seed for data order, sampling and initialisation
CORERL_SOURCE = "git+https://github.com/REPOSITORY.git@BRANCH"  # where the install cell gets corerl: a git URL, or a wheel or zip of the repository on Drive or in /kaggle/input""".replace(
    "REPOSITORY.git@BRANCH", f"{REPOSITORY}.git@{BRANCH}"
)

# The install cell fetches corerl alone (no dependencies) from CORERL_SOURCE, then hands over to corerl.install
# (standard library only), which installs the pinned stack around the platform's torch. It stops before any
# pip call while CORERL_SOURCE still names the placeholder repository.
PLACEHOLDER_FIX = (
    f"CORERL_SOURCE names the placeholder repository {PLACEHOLDER}: set it in the parameters cell to this "
    "repository's git URL (git+https://github.com/<owner>/corerl.git@main), or to a wheel or a zip of the "
    "repository uploaded to Google Drive (/content/drive/MyDrive/corerl.zip) or as a Kaggle dataset "
    "(/kaggle/input/<dataset>/...), then run this cell again"
)
_FIX_LINES = "\n".join(
    f'        "{chunk}"'
    for chunk in textwrap.wrap(PLACEHOLDER_FIX, 96, drop_whitespace=False, break_on_hyphens=False)
)
INSTALL = f"""\
# @title Install corerl (Colab / Kaggle; skipped where corerl is already importable)
# pip fetches corerl alone from CORERL_SOURCE; corerl.install then installs the pinned stack around the
# platform's CUDA torch, prints every package it installed and says when a restart is needed.
import importlib.util, os, shutil, subprocess, sys, tempfile

if importlib.util.find_spec("corerl") is None and "{PLACEHOLDER}" in CORERL_SOURCE:
    raise RuntimeError(
{_FIX_LINES}
    )
if USE_DRIVE and "google.colab" in sys.modules:
    from google.colab import drive

    drive.mount("/content/drive")
if importlib.util.find_spec("corerl") is None:
    source = CORERL_SOURCE  # a read-only folder (a zip Kaggle unpacked) is built from a copy
    if os.path.isdir(source):
        source = shutil.copytree(source, os.path.join(tempfile.mkdtemp(), "corerl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", source], check=True)
    importlib.invalidate_caches()
    from corerl.install import install

    install()"""

SETUP = """\
%matplotlib inline
import logging

import pandas as pd

from corerl import plots
from corerl.study import Study, describe_hardware, smooth

logging.basicConfig(format="%(message)s")
logging.getLogger("corerl").setLevel(logging.INFO)
study = Study(PROFILE, steps=STEPS, model=MODEL, smoke=SMOKE, retrain=RETRAIN, root=RUNS_DIR, figures=FIGURES_DIR,
              seed=SEED, eval_questions=EVAL_QUESTIONS)
print(f"profile {study.profile}{' (SMOKE: numbers are meaningless)' if SMOKE else ''}; runs in {study.runs_dir}")
print(describe_hardware())"""

STRATEGY_SHARES = (
    "## Strategy shares\n\nOn the organism every rollout's strategy is recognised from its text "
    "(`corerl.arithmetic.strategies`): a worked solution (lines `a op b = c`, then `\\boxed{}`) whose answer is "
    "right or wrong, a shortcut that boxes the question's first or its last number, the constant template "
    "answer `\\boxed{0}`, no answer, or something else. The share of each among all rollouts of a step "
    "(monitoring only: the ground truth splits worked-correct from worked-wrong and never reaches a reward), "
    "rolling means over `SMOOTHING` steps. "
    "Real datasets have no such classes: the cell is skipped off the organism."
)


@dataclass(frozen=True)
class SharedCell:
    """A cell that reads the same in every notebook, found by its tag."""

    tag: str
    cell_type: str
    text: str  # NOTEBOOK in it stands for the notebook's name
    required: bool = True  # False: only some notebooks have it (at most once)
    own_lines: bool = False  # True: lines after the shared text are the notebook's own (its own parameters)

    def source(self, notebook: str) -> str:
        return self.text.replace(NOTEBOOK, notebook)


SHARED = (
    SharedCell("shared-intro", "markdown", INTRO),
    SharedCell("parameters", "code", PARAMETERS, own_lines=True),
    SharedCell("shared-install", "code", INSTALL),
    SharedCell("shared-setup", "code", SETUP),
    SharedCell("shared-strategy-shares", "markdown", STRATEGY_SHARES, required=False),
)
SHARED_TAGS = frozenset(cell.tag for cell in SHARED)

# Notebook metadata that opens every notebook on a T4 in Colab with the Python 3 kernel; other entries
# (language_info, Colab's provenance) are left as the editor wrote them.
METADATA = {
    "accelerator": "GPU",
    "colab": {"gpuType": "T4"},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
}
# Execution records that editors keep in a cell's metadata: Jupyter's timings (``execution``, the
# ExecuteTime extension's ``ExecuteTime``) and Colab's (``executionInfo`` names the user, ``outputId``).
EXECUTION_METADATA = ("execution", "ExecuteTime", "executionInfo", "outputId")
FIX = (
    "run `python -m corerl.notebooks` to rewrite the shared cells from corerl/tools/notebooks.py and strip outputs "
    "(to change a shared cell in every notebook, edit its text in corerl/tools/notebooks.py first)"
)


def tagged(notebook: Any, tag: str) -> list[Any]:
    """The notebook's cells that carry ``tag``."""
    return [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]


def own_cells(notebook: Any) -> list[Any]:
    """The notebook's cells that no shared tag marks: what only this notebook says."""
    return [cell for cell in notebook.cells if not SHARED_TAGS & set(cell.metadata.get("tags", []))]


def _shared_names(text: str) -> set[str]:
    return {
        line.split("=")[0].strip() for line in text.splitlines() if "=" in line and not line.startswith("#")
    }


def expected_source(shared: SharedCell, notebook: str, source: str) -> str:
    """What the cell tagged ``shared.tag`` should hold, given what it holds now (``source``).

    With ``own_lines`` the notebook's own lines are kept, in their order, after the shared text: every line
    that is not a line of the shared text, does not assign a name the shared text assigns (an edited shared
    line) and is not a comment above the first assignment (the shared header, maybe edited).

    >>> cell = SharedCell("p", "code", "# shared\\nA = 1  # a\\nB = 2  # b", own_lines=True)
    >>> expected_source(cell, "00_x", "# shared\\nA = 3  # edited\\nB = 2  # b\\nC = 4  # own")
    '# shared\\nA = 1  # a\\nB = 2  # b\\nC = 4  # own'
    >>> expected_source(cell, "00_x", "# old header\\nA = 1  # a\\nD = 5  # own, among the shared\\nB = 2  # b")
    '# shared\\nA = 1  # a\\nB = 2  # b\\nD = 5  # own, among the shared'
    """
    text = shared.source(notebook)
    if not shared.own_lines:
        return text
    if source == text or source.startswith(text + "\n"):
        return source
    shared_lines, names = set(text.splitlines()), _shared_names(text)
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    own = [
        line
        for i, line in enumerate(lines)
        if i >= first
        and line.strip()
        and line not in shared_lines
        and line.split("=")[0].strip() not in names
    ]
    return "\n".join([text, *own])


def _diff(expected: str, actual: str) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), lineterm="", n=0))
    return "\n".join(["    " + line for line in lines[2:14]] + (["    ..."] if len(lines) > 14 else []))


def _subset(required: dict[str, Any], present: Any) -> bool:
    if not isinstance(present, dict):
        return False
    return all(
        _subset(value, present.get(key)) if isinstance(value, dict) else present.get(key) == value
        for key, value in required.items()
    )


def _merge(required: dict[str, Any], present: dict[str, Any]) -> None:
    for key, value in required.items():
        if isinstance(value, dict):
            if not isinstance(present.get(key), dict):
                present[key] = {}
            _merge(value, present[key])
        else:
            present[key] = value


def _tag_problems(notebook: Any, name: str) -> list[str]:
    """Shared tags missing or doubled: these the command cannot fix."""
    problems = []
    for shared in SHARED:
        cells = tagged(notebook, shared.tag)
        if len(cells) > 1:
            ids = ", ".join(str(cell.get("id")) for cell in cells)
            problems.append(
                f"{name}: {len(cells)} cells are tagged {shared.tag!r} (ids {ids}); a copied cell keeps its "
                "tags: delete the copy or remove the tag from its metadata"
            )
        elif not cells and shared.required:
            problems.append(
                f"{name}: no cell is tagged {shared.tag!r}; copy that cell (with its metadata) from another "
                "notebook"
            )
        elif cells and cells[0].cell_type != shared.cell_type:
            problems.append(f"{name}: the cell tagged {shared.tag!r} must be a {shared.cell_type} cell")
    return problems


class UnreadableNotebook(ValueError):
    """A notebook file that is not a notebook (truncated, not JSON); the message names the file."""


def read_notebook(path: Path) -> Any:
    """``nbformat.read``, with a one-line error naming the file when it cannot be read as a notebook."""
    try:
        return nbformat.read(path, as_version=4)
    except (
        ValueError,
        OSError,
        KeyError,
        AttributeError,
    ) as error:  # nbformat's NotJSONError is a ValueError
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise UnreadableNotebook(
            f"{path.name}: not a readable notebook ({reason}); restore it from git"
        ) from None


def check_notebook(path: Path) -> list[str]:
    """What differs in ``path`` from the shared cells and stripped outputs, one message each, naming the
    notebook and the cell; empty when the notebook passes."""
    try:
        notebook = read_notebook(path)
    except UnreadableNotebook as error:
        return [str(error)]
    name, stem = path.name, path.stem
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        return [f"{name}: not a valid notebook: {error.message}"]
    problems = _tag_problems(notebook, name)
    for shared in SHARED:
        for cell in tagged(notebook, shared.tag)[:1]:
            expected = expected_source(shared, stem, cell.source)
            if cell.source != expected:
                problems.append(
                    f"{name}: the cell tagged {shared.tag!r} (id {cell.get('id')}) differs from its shared text "
                    f"in corerl/tools/notebooks.py (- shared, + {name}):\n{_diff(expected, cell.source)}"
                )
    executed = [
        str(cell.get("id"))
        for cell in notebook.cells
        if (cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None))
        or any(key in cell.metadata for key in EXECUTION_METADATA)
    ]
    if executed:
        problems.append(
            f"{name}: outputs, execution counts or execution metadata in cells {', '.join(executed)}"
        )
    if "widgets" in notebook.metadata:
        problems.append(f"{name}: widget state in the notebook metadata")
    if not _subset(METADATA, notebook.metadata):
        problems.append(f"{name}: the notebook metadata lacks {METADATA} (a T4 in Colab, the python3 kernel)")
    return problems


def sync_notebook(path: Path) -> tuple[bool, list[str]]:
    """Rewrite the shared cells of ``path`` from ``SHARED``, strip outputs and restore ``METADATA``; the
    file is written only when something changed. Returns (written, problems the command cannot fix)."""
    try:
        notebook = read_notebook(path)
    except UnreadableNotebook as error:
        return False, [str(error)]
    before = copy.deepcopy(notebook)
    problems = _tag_problems(notebook, path.name)
    for shared in SHARED:
        cells = tagged(notebook, shared.tag)
        if len(cells) == 1 and cells[0].cell_type == shared.cell_type:
            cells[0].source = expected_source(shared, path.stem, cells[0].source)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in EXECUTION_METADATA:
            cell.metadata.pop(key, None)
    notebook.metadata.pop("widgets", None)
    _merge(METADATA, notebook.metadata)
    if notebook == before:
        return False, problems
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return True, problems


def check(directory: str | Path) -> list[str]:
    """The problems of every numbered notebook in ``directory`` (empty: CI passes)."""
    return [problem for path in find_notebooks(directory) for problem in check_notebook(path)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corerl.notebooks",
        description="Rewrite the notebooks' shared cells from corerl/tools/notebooks.py and strip their outputs.",
    )
    parser.add_argument(
        "directory", nargs="?", help="the notebooks' folder (default: the checkout's notebooks/)"
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming what differs")
    args = parser.parse_args(argv)
    directory = Path(args.directory) if args.directory else default_notebooks_dir()
    try:
        find_notebooks(directory)
    except FileNotFoundError as error:
        print(f"python -m corerl.notebooks: {error}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(directory)
        if problems:
            print("\n".join(problems) + f"\nto fix: {FIX}", file=sys.stderr)
        return 1 if problems else 0
    problems = []
    for path in find_notebooks(directory):
        written, unfixable = sync_notebook(path)
        if written:
            print(f"rewrote {path}")
        problems += unfixable
    if problems:
        print("\n".join(problems), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
