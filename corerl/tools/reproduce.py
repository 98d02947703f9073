"""``corerl reproduce``: execute the numbered notebooks in order, headless, and rewrite ``figures/``.

Each notebook in ``notebooks/`` (``00_quickstart.ipynb`` ... ``06_results.ipynb``) runs in a fresh
Python kernel through ``nbclient``. The parameters are injected papermill-style: a cell tagged
``injected-parameters`` is inserted after the cell tagged ``parameters``, so the notebook sees
``PROFILE``, ``SMOKE``, ``RUNS_DIR``, ``FIGURES_DIR`` (and ``STEPS`` when given). The executed copies
go to ``--out`` (outside git), the figures to ``--figures``, and the results table to
``<figures>/results.md`` (written by ``06_results``). Runs that exist under ``--runs`` are loaded,
not retrained; ``--retrain`` deletes the profile's runs first (needed after changing ``--steps``, as
a finished run made with other settings is refused).

Headless means: Jupyter's and IPython's folders are temporary (nothing lands in ``$HOME``), each
kernel's own stderr goes to ``<copy>.kernel.log``, and on the CPU profile ``HF_HOME`` is a temporary
folder with the hub switched off (the tiny profile never downloads). ``--smoke`` runs a handful of
steps everywhere, starts from an empty ``<runs>/<profile>-smoke`` and, unless ``--figures`` is given,
writes its figures under ``--out`` so that it never overwrites the real ones.

    corerl reproduce                      # tiny profile on a CPU (t4 on a GPU): figures/ rewritten
    corerl reproduce --smoke              # every notebook, a few steps: the CI check
    corerl reproduce --only 01 04         # some notebooks (runs that exist are loaded, not retrained)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
SETUP_TAG = "shared-setup"  # the cell that reads the parameters (corerl.tools.notebooks)
KERNEL_NAME = "python3"  # ipykernel's own kernel: jupyter_client runs it with this interpreter
JUPYTER_DIRS = ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")


def default_notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the source checkout corerl runs from, wherever the command is run
    (another folder's ``notebooks/`` is never picked up); ``--notebooks`` chooses another."""
    checkout = Path(__file__).resolve().parents[2] / "notebooks"  # corerl/tools/ -> the checkout
    if not checkout.is_dir():
        raise FileNotFoundError(
            f"no notebooks/ next to the corerl package ({checkout}); pass --notebooks DIR"
        )
    return checkout


def find_notebooks(directory: str | os.PathLike[str], only: Sequence[str] = ()) -> list[Path]:
    """The numbered notebooks of ``directory`` in order; ``only`` keeps those whose name starts with one
    of the given prefixes (``"01"``, ``"04_collapse"``). Raises FileNotFoundError when none match."""
    paths = sorted(Path(directory).glob(NOTEBOOK_PATTERN))
    if only:
        paths = [path for path in paths if any(path.name.startswith(prefix) for prefix in only)]
    if not paths:
        raise FileNotFoundError(f"no notebook matching {NOTEBOOK_PATTERN} {list(only) or ''} in {directory}")
    return paths


def check_parameters_cell(notebook: Any, name: str) -> None:
    """Raise ValueError (one line naming ``name``) unless exactly one cell is tagged ``parameters`` and it
    comes before the setup cell (tagged ``shared-setup``): injected values would otherwise be overwritten by
    the notebook's defaults, or come after the cell that reads them."""
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    positions = [i for i, cell_tags in enumerate(tags) if PARAMETERS_TAG in cell_tags]
    setup = next((i for i, cell_tags in enumerate(tags) if SETUP_TAG in cell_tags), None)
    if len(positions) != 1:
        raise ValueError(
            f"{name}: {len(positions)} cells are tagged {PARAMETERS_TAG!r} (cells {positions}); exactly one "
            "must be: run `python -m corerl.notebooks --check` for the fix"
        )
    if setup is not None and positions[0] > setup:
        raise ValueError(
            f"{name}: the cell tagged {PARAMETERS_TAG!r} (cell {positions[0]}) comes after the setup cell "
            f"(cell {setup}), which reads the parameters: move it above"
        )


def inject_parameters(notebook: Any, parameters: Mapping[str, Any]) -> Any:
    """Insert ``NAME = value`` lines after the ``parameters`` cell (papermill's convention).

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SMOKE = False")])
    >>> nb.cells[0].metadata["tags"] = ["parameters"]
    >>> inject_parameters(nb, {"SMOKE": True}).cells[1].source
    '# Parameters injected by corerl reproduce\\nSMOKE = True'
    """
    import nbformat

    positions = [
        i for i, cell in enumerate(notebook.cells) if PARAMETERS_TAG in cell.metadata.get("tags", [])
    ]
    if not positions:
        raise ValueError(f"the notebook has no cell tagged {PARAMETERS_TAG!r} to inject parameters after")
    lines = ["# Parameters injected by corerl reproduce"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    notebook.cells.insert(positions[0] + 1, cell)
    return notebook


@contextlib.contextmanager
def headless_environment(offline_hub: bool) -> Iterator[Path]:
    """Temporary Jupyter/IPython folders (and HF_HOME, hub off, when ``offline_hub``) for the kernels."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="corerl-reproduce-") as scratch:
        root = Path(scratch)
        for name in JUPYTER_DIRS:
            folder = root / name.lower()
            folder.mkdir()
            os.environ[name] = str(folder)
        os.environ.setdefault("TQDM_MININTERVAL", "5")
        if offline_hub:
            os.environ["HF_HOME"] = str(root / "hf_home")
            os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            yield root
        finally:
            os.environ.clear()
            os.environ.update(saved)


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook, the executed copy and the error."""


def execute_notebook(
    path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    cwd: str | os.PathLike[str] = ".",
    timeout: int | None = None,
) -> Path:
    """Run one notebook with ``parameters`` in kernel directory ``cwd``; write the executed copy.

    The copy is written even when a cell fails (then NotebookFailed is raised), so the error can be
    read in context.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = inject_parameters(nbformat.read(path, as_version=4), parameters)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        notebook, kernel_name=KERNEL_NAME, timeout=timeout, resources={"metadata": {"path": str(cwd)}}
    )
    try:
        # The kernel's own stderr (its startup warnings, a crash) goes to a log next to the copy.
        with out_path.with_suffix(".kernel.log").open("w") as kernel_log:
            client.execute(stderr=kernel_log)
    except KeyboardInterrupt:  # no copy of an earlier run may pass for this one's
        out_path.unlink(missing_ok=True)
        raise
    except CellExecutionError as error:
        nbformat.write(notebook, out_path)
        summary = str(error).strip().splitlines()
        last_line = summary[-1] if summary else str(error)
        raise NotebookFailed(f"{Path(path).name} failed (executed copy: {out_path}): {last_line}") from error
    nbformat.write(notebook, out_path)
    return out_path


@dataclass(frozen=True)
class Timing:
    notebook: str
    seconds: float


def reproduce(
    *,
    profile: str = "auto",
    smoke: bool = False,
    notebooks_dir: str | os.PathLike[str] | None = None,
    only: Sequence[str] = (),
    out_dir: str | os.PathLike[str] = "runs/notebooks",
    runs_dir: str | os.PathLike[str] = "runs",
    figures_dir: str | os.PathLike[str] | None = None,
    steps: int | None = None,
    retrain: bool = False,
    timeout: int | None = None,
    progress: bool = True,
) -> list[Timing]:
    """Execute the notebooks in order; returns the time each took. See the module docstring."""
    import nbformat
    from tqdm.auto import tqdm

    from corerl.study import Study, resolve_profile

    resolved = resolve_profile(profile)
    paths = find_notebooks(notebooks_dir or default_notebooks_dir(), only)
    for path in paths:  # before anything is removed or run: a misplaced parameters cell runs full defaults
        check_parameters_cell(nbformat.read(path, as_version=4), path.name)
    label = f"{resolved}-smoke" if smoke else resolved
    out_dir = Path(out_dir).resolve() / label
    runs_dir = Path(runs_dir).resolve()
    figures = Path(figures_dir or (out_dir / "figures" if smoke else "figures")).resolve()
    if smoke or retrain:
        # Notebooks share runs (01 trains majority-vote, 02-05 load it), so retraining means starting
        # from an empty runs folder, not retraining in each notebook. A smoke run always starts empty:
        # it checks that training works, so it never loads old smoke runs.
        stale = Study(resolved, smoke=smoke, root=runs_dir).runs_dir
        if stale.exists():
            logger.info("removing %s", stale)
            shutil.rmtree(stale)
    parameters: dict[str, Any] = {
        "PROFILE": resolved,
        "SMOKE": smoke,
        "RUNS_DIR": str(runs_dir),
        "FIGURES_DIR": str(figures),
        "USE_DRIVE": False,
    }
    if steps is not None:
        parameters["STEPS"] = steps
    timings = []
    with headless_environment(offline_hub=resolved == "tiny"):
        bar = tqdm(paths, desc=f"notebooks ({label})", unit="notebook", disable=not progress)
        for path in bar:
            bar.set_postfix_str(path.stem)
            started = time.perf_counter()
            execute_notebook(path, out_dir / path.name, parameters, cwd=Path.cwd(), timeout=timeout)
            timings.append(Timing(path.stem, time.perf_counter() - started))
            logger.info("%s: %.1f s", path.stem, timings[-1].seconds)
    return timings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="execute the numbered notebooks headless and rewrite figures/ and figures/results.md",
        description="Execute notebooks/NN_*.ipynb in order with a profile; executed copies go to --out.",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "tiny", "t4", "a100"),
        default="auto",
        help="auto: t4 on a CUDA GPU, tiny otherwise (default)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a handful of steps everywhere (CI); meaningless numbers"
    )
    parser.add_argument(
        "--only", nargs="+", default=(), metavar="PREFIX", help="notebooks whose name starts so (01 04)"
    )
    parser.add_argument("--notebooks", default=None, help="notebook folder (default: ./notebooks)")
    parser.add_argument("--out", default="runs/notebooks", help="executed copies (default: runs/notebooks)")
    parser.add_argument("--runs", default="runs", help="training runs and evaluations (default: runs)")
    parser.add_argument(
        "--figures",
        default=None,
        help="figures and results.md (default: figures/; with --smoke: under --out)",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="optimizer steps per run (default: the notebooks')"
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="delete this profile's runs (under --runs) first and train everything again",
    )
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        timings = reproduce(
            profile=args.profile,
            smoke=args.smoke,
            notebooks_dir=args.notebooks,
            only=args.only,
            out_dir=args.out,
            runs_dir=args.runs,
            figures_dir=args.figures,
            steps=args.steps,
            retrain=args.retrain,
            timeout=args.timeout,
        )
    except NotebookFailed as error:
        print(f"corerl reproduce: {error}")
        return 1
    except ValueError as error:  # a notebook's parameters cell misplaced or doubled, checked up front
        print(f"corerl reproduce: {error}")
        return 2
    except KeyboardInterrupt:
        print("corerl reproduce: interrupted; the notebook that was running has no executed copy")
        return 130
    for timing in timings:
        print(f"{timing.notebook:<24} {timing.seconds:8.1f} s")
    print(f"{'total':<24} {time.perf_counter() - started:8.1f} s")
    return 0
