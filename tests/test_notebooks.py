"""The numbered notebooks: stripped in git, their shared cells the same everywhere (corerl.notebooks), calling
only keyword arguments that exist in the pinned versions, and executing end to end in smoke mode.

The notebooks are the source, edited in Jupyter or Colab: ``run_ci_checks`` is every static check CI runs,
on any folder, so that a contributor's saved notebook is shown to pass them."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import shutil
import typing
from pathlib import Path
from typing import Any

import nbformat
import pytest

from corerl import notebooks
from corerl.config import FIELD_NAMES
from corerl.reproduce import NotebookFailed, execute_notebook, find_notebooks, reproduce

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = find_notebooks(NOTEBOOKS_DIR)
EXPECTED = [
    "00_quickstart",
    "01_baselines",
    "02_co_rewarding_1",
    "03_co_rewarding_2",
    "04_collapse_analysis",
    "05_mitigations",
    "06_results",
]
PARAMETERS = ("PROFILE", "STEPS", "MODEL", "SMOKE", "RETRAIN", "RUNS_DIR", "FIGURES_DIR", "SEED")
# Libraries whose callables the static check resolves and checks against their installed signatures.
CHECKED_LIBRARIES = ("corerl", "trl", "transformers", "peft", "datasets")
# corerl callables whose **overrides become TrainConfig fields (corerl.study.Study.config).
CONFIG_OVERRIDES = {"corerl.study.Study.run", "corerl.study.Study.config"}


def code_cells(path: Path) -> list[str]:
    """The notebook's code cells as plain Python (IPython magics turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    notebook = nbformat.read(path, as_version=4)
    return [
        TransformerManager().transform_cell(cell.source)
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def test_the_numbered_notebooks_are_all_there() -> None:
    assert [path.stem for path in NOTEBOOKS] == EXPECTED


def assert_shared_cells_and_stripped(directory: Path) -> None:
    """``python -m corerl.notebooks --check``: shared cells as in corerl/notebooks.py, outputs stripped."""
    problems = notebooks.check(directory)
    assert not problems, "\n".join(problems) + f"\nto fix: {notebooks.FIX}"


def test_shared_cells_match_and_outputs_are_stripped() -> None:
    assert_shared_cells_and_stripped(NOTEBOOKS_DIR)
    assert notebooks.main(["--check"]) == 0  # the command's default folder is the checkout's notebooks/


def assert_stripped(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs; {notebooks.FIX}"
            assert cell.execution_count is None, (
                f"{path.name}: a cell has an execution count; {notebooks.FIX}"
            )
        assert "execution" not in cell.metadata, f"{path.name}: a cell has execution timings; {notebooks.FIX}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_in_git_carry_no_outputs(path: Path) -> None:
    assert_stripped(path)


def assert_parameter_and_install_cells_first(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert cells[0].metadata.get("tags") == ["parameters"]
    assigned = {target.id for node in ast.parse(cells[0].source).body for target in node.targets}
    assert set(PARAMETERS) <= assigned
    for line in cells[0].source.splitlines():
        if line.split("=")[0].strip() in PARAMETERS:
            assert "#" in line, f"{path.name}: parameter without a comment: {line}"
    install = cells[1].source
    assert 'importlib.util.find_spec("corerl") is None' in install  # never pip installs where corerl exists
    assert "from corerl.install import install" in install  # the pins live in corerl/install.py


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameter_and_install_cells_come_first(path: Path) -> None:
    assert_parameter_and_install_cells_first(path)


def assert_papermill_sees_every_parameter(path: Path) -> None:
    translators = pytest.importorskip("papermill.translators", reason="papermill is optional")
    notebook = nbformat.read(path, as_version=4)
    parameters = translators.PythonTranslator.inspect(notebooks.tagged(notebook, "parameters")[0])
    assert set(PARAMETERS) <= {parameter.name for parameter in parameters}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_papermill_sees_every_parameter(path: Path) -> None:
    """papermill's parser drops a parameter whose comment it cannot parse (an '=' or parentheses)."""
    assert_papermill_sees_every_parameter(path)


def assert_no_direct_unsloth_call(paths: list[Path]) -> None:
    for path in paths:
        for source in code_cells(path):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                    assert not any(name.split(".")[0] == "unsloth" for name in names), path.name


def test_notebooks_never_call_unsloth_directly() -> None:
    """Unsloth is not installed on a CPU, so its keyword arguments cannot be checked here: the notebooks
    leave it to corerl.engine (whose Unsloth calls are pinned by the engine's own tests)."""
    assert_no_direct_unsloth_call(NOTEBOOKS)


class Instance:
    """Stands for a variable holding an instance of ``cls`` (from a constructor or a return annotation)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls


def _import(name: str) -> Any:
    """The module, or None for a module of an unchecked library that is absent here (google.colab)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        if name.split(".")[0] in CHECKED_LIBRARIES:
            raise
        return None


def _resolve(node: ast.expr, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, names)
        if isinstance(owner, Instance):
            return getattr(owner.cls, node.attr, None)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _qualified_name(target: Any) -> str:
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"


def _returned_class(target: Any) -> type | None:
    if inspect.isclass(target):
        return target
    try:
        returned = typing.get_type_hints(target).get("return")
    except Exception:  # an annotation that does not resolve at run time: leave the variable unknown
        return None
    return returned if inspect.isclass(returned) else None


def _check_call(call: ast.Call, target: Any, where: str) -> None:
    keywords = [keyword.arg for keyword in call.keywords if keyword.arg is not None]
    signature = inspect.signature(target)
    parameters = signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = {name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    for keyword in keywords:
        if keyword in named:
            continue
        if _qualified_name(target) in CONFIG_OVERRIDES:
            assert keyword in FIELD_NAMES, f"{where}: {keyword!r} is not a TrainConfig field"
        else:
            assert accepts_any, f"{where}: {_qualified_name(target)} has no keyword argument {keyword!r}"


def check_keyword_arguments(paths: list[Path]) -> int:
    """Check every call of a corerl/TRL/transformers/PEFT/datasets callable with keywords in ``paths``
    against the installed signature (methods of variables are followed through constructors and return
    annotations); returns how many calls were checked."""
    checked = 0
    for path in paths:
        names: dict[str, Any] = {}
        for source in code_cells(path):
            tree = ast.parse(source)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        module = _import(alias.name)
                        root = alias.name.split(".")[0]
                        names[alias.asname or root] = module if alias.asname else _import(root)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    module = _import(node.module)
                    if module is None:
                        continue
                    for alias in node.names:
                        try:
                            names[alias.asname or alias.name] = getattr(module, alias.name)
                        except AttributeError:  # a submodule not imported by its package
                            names[alias.asname or alias.name] = importlib.import_module(
                                f"{node.module}.{alias.name}"
                            )
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    returned = _returned_class(_resolve(node.value.func, names))
                    for target in node.targets:
                        if isinstance(target, ast.Name) and returned is not None:
                            names[target.id] = Instance(returned)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.keywords:
                    continue
                target = _resolve(node.func, names)
                if target is None or not callable(target):
                    continue
                if getattr(target, "__module__", "").split(".")[0] not in CHECKED_LIBRARIES:
                    continue
                _check_call(node, target, f"{path.name}: {ast.unparse(node.func)}")
                checked += 1
    return checked


def test_keyword_arguments_exist_in_the_pinned_versions() -> None:
    """Every library call with keywords in the notebooks exists in the installed (pinned) versions."""
    checked = check_keyword_arguments(NOTEBOOKS)
    assert checked >= 30, f"only {checked} library calls were checked: the resolver lost track"


def run_ci_checks(directory: Path) -> None:
    """Every static check above (those CI runs on notebooks/), on the numbered notebooks of ``directory``."""
    paths = find_notebooks(directory)
    assert_shared_cells_and_stripped(directory)
    for path in paths:
        assert_stripped(path)
        assert_parameter_and_install_cells_first(path)
        assert_papermill_sees_every_parameter(path)
    assert_no_direct_unsloth_call(paths)
    assert check_keyword_arguments(paths) >= 30


def _copy_notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS_DIR, folder, ignore=shutil.ignore_patterns(".*"))
    return folder


def _save_as_jupyter(notebook: nbformat.NotebookNode, path: Path) -> None:
    """As Jupyter saves: nbformat 4.5 with cell ids, indent 1, language_info filled in by the kernel."""
    notebook.metadata["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
        "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3", "version": "3.11.9",
    }  # fmt: skip
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def test_a_contributors_jupyter_edit_passes_the_ci_checks(tmp_path: Path) -> None:
    """Issue 14.1: the notebooks are the source; a markdown edit and a new code cell, saved by Jupyter."""
    folder = _copy_notebooks(tmp_path)
    path = folder / "00_quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    markdown = next(cell for cell in notebooks.own_cells(notebook) if cell.cell_type == "markdown")
    markdown.source += "\n\nA clearer sentence from a contributor."
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            'plots.plot_training_curves({"again": smooth(metrics, SMOOTHING)}, study.figures, name="00_again")'
        )
    )
    _save_as_jupyter(notebook, path)
    assert "A clearer sentence" in path.read_text() and '"id": ' in path.read_text()
    run_ci_checks(folder)


def test_a_shared_cell_edited_in_one_notebook_fails_naming_it(tmp_path: Path, capsys) -> None:
    folder = _copy_notebooks(tmp_path)
    path = folder / "03_co_rewarding_2.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebooks.tagged(notebook, "shared-setup")[0].source += "\nimport numpy as np"
    notebook.cells[0].source += " Edited too."  # the title cell is this notebook's own
    _save_as_jupyter(notebook, path)
    problems = notebooks.check(folder)
    assert len(problems) == 1
    assert problems[0].startswith("03_co_rewarding_2.ipynb: the cell tagged 'shared-setup'")
    assert "+import numpy as np" in problems[0]
    with pytest.raises(AssertionError, match="03_co_rewarding_2.ipynb: the cell tagged 'shared-setup'"):
        run_ci_checks(folder)
    assert notebooks.main(["--check", str(folder)]) == 1
    assert "to fix: run `python -m corerl.notebooks`" in capsys.readouterr().err
    assert notebooks.main([str(folder)]) == 0  # the sync restores the shared text, keeps the rest
    assert nbformat.read(path, as_version=4).cells[0].source.endswith(" Edited too.")
    run_ci_checks(folder)


def test_outputs_fail_the_check_and_the_sync_strips_them(tmp_path: Path) -> None:
    folder = _copy_notebooks(tmp_path)
    path = folder / "05_mitigations.ipynb"
    notebook = nbformat.read(path, as_version=4)
    executed = notebooks.own_cells(notebook)[-1]
    executed.execution_count = 7
    executed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    executed.metadata["executionInfo"] = {"user": {"displayName": "A Contributor"}}  # as Colab saves
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    _save_as_jupyter(notebook, path)
    problems = notebooks.check(folder)
    assert problems == [
        f"05_mitigations.ipynb: outputs, execution counts or execution metadata in cells {executed.id}",
        "05_mitigations.ipynb: widget state in the notebook metadata",
    ]
    assert notebooks.main([str(folder)]) == 0
    run_ci_checks(folder)
    assert notebooks.main([str(folder)]) == 0 and notebooks.check(folder) == []


def test_a_notebooks_own_parameters_follow_the_shared_ones(tmp_path: Path) -> None:
    folder = _copy_notebooks(tmp_path)
    path = folder / "01_baselines.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = notebooks.tagged(notebook, "parameters")[0]
    cell.source += "\nMETHODS_SHOWN = 3  # this notebook only"
    _save_as_jupyter(notebook, path)
    run_ci_checks(folder)
    edited = copy.deepcopy(notebook)
    shared = notebooks.tagged(edited, "parameters")[0]
    shared.source = shared.source.replace("SEED = 0  # one seed", "SEED = 1  # one seed")
    _save_as_jupyter(edited, path)
    assert "'parameters'" in notebooks.check(folder)[0]
    assert notebooks.main([str(folder)]) == 0
    restored = notebooks.tagged(nbformat.read(path, as_version=4), "parameters")[0].source
    assert restored == cell.source  # the shared part restored, the notebook's own line kept


def test_a_copied_shared_cell_is_named(tmp_path: Path) -> None:
    """Jupyter's copy and paste keeps a cell's tags: two cells then claim to be the shared one."""
    folder = _copy_notebooks(tmp_path)
    path = folder / "06_results.ipynb"
    notebook = nbformat.read(path, as_version=4)
    duplicate = copy.deepcopy(notebooks.tagged(notebook, "shared-setup")[0])
    duplicate.id = "06-copy"
    notebook.cells.append(duplicate)
    _save_as_jupyter(notebook, path)
    assert notebooks.check(folder) == [
        "06_results.ipynb: 2 cells are tagged 'shared-setup' (ids 06-03, 06-copy); a copied cell keeps its "
        "tags: delete the copy or remove the tag from its metadata"
    ]
    assert notebooks.main([str(folder)]) == 1


def test_a_failing_cell_names_the_notebook_and_keeps_the_executed_copy(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("SMOKE = False"),
            nbformat.v4.new_code_cell("assert not SMOKE, 'smoke was injected'"),
        ]
    )
    notebook.cells[0].metadata["tags"] = ["parameters"]
    source = tmp_path / "99_failing.ipynb"
    nbformat.write(notebook, source)
    with pytest.raises(NotebookFailed, match="99_failing.ipynb failed.*smoke was injected"):
        execute_notebook(source, tmp_path / "out" / source.name, {"SMOKE": True}, cwd=tmp_path, timeout=120)
    executed = nbformat.read(tmp_path / "out" / source.name, as_version=4)
    assert executed.cells[1].source.endswith("SMOKE = True")
    assert executed.cells[2].outputs[0]["ename"] == "AssertionError"


def test_the_notebooks_are_the_checkouts_wherever_the_command_runs(tmp_path, monkeypatch) -> None:
    """Issue 13.11: run from another folder, reproduce executed that folder's notebooks/."""
    from corerl.reproduce import default_notebooks_dir

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_other.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert default_notebooks_dir() == NOTEBOOKS_DIR


def test_ctrl_c_leaves_no_stale_copy_and_one_line(tmp_path, monkeypatch, capsys) -> None:
    """Issue 13.11: Ctrl-C printed three tracebacks and left the previous run's executed copy."""
    import argparse

    import nbclient

    from corerl.reproduce import run

    source = tmp_path / "nb" / "00_quick.ipynb"
    source.parent.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SMOKE = False")])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, source)
    stale = tmp_path / "out" / "tiny" / source.name
    stale.parent.mkdir(parents=True)
    stale.write_text("an executed copy from an earlier run")

    def interrupted(self, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nbclient.NotebookClient, "execute", interrupted)
    arguments = argparse.Namespace(
        profile="tiny", smoke=False, notebooks=str(source.parent), only=(), out=str(tmp_path / "out"),
        runs=str(tmp_path / "runs"), figures=str(tmp_path / "figures"), steps=None, retrain=False, timeout=None,
    )  # fmt: skip
    assert run(arguments) == 130
    assert not stale.exists()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("corerl reproduce: interrupted")


@pytest.mark.slow
def test_every_notebook_executes_in_smoke_mode(tmp_path: Path) -> None:
    """``corerl reproduce --smoke``: every notebook end to end on the tiny profile, any error fails."""
    figures = tmp_path / "figures"
    timings = reproduce(
        profile="tiny",
        smoke=True,
        notebooks_dir=NOTEBOOKS_DIR,
        out_dir=tmp_path / "executed",
        runs_dir=tmp_path / "runs",
        figures_dir=figures,
        timeout=600,
        progress=False,
    )
    assert [timing.notebook for timing in timings] == EXPECTED
    executed = sorted((tmp_path / "executed" / "tiny-smoke").glob("*.ipynb"))
    assert [path.stem for path in executed] == EXPECTED
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        errors = [
            output
            for cell in notebook.cells
            if cell.cell_type == "code"
            for output in cell.outputs
            if output.output_type == "error"
        ]
        assert not errors, path.name
    for name in ("01_reward_vs_accuracy", "03_co_rewarding_2_curves", "04_reward_accuracy", "06_results"):
        assert (figures / f"{name}.png").stat().st_size > 0
    for number in range(1, 6):  # the organism's strategy shares of the runs of notebooks 01-05
        assert (figures / f"0{number}_strategy_shares.png").stat().st_size > 0
    results, regimes = (figures / "results.md").read_text().split("## The papers' regimes")
    assert "SMOKE" in results
    for method in (
        "ground-truth",
        "majority-vote",
        "co-rewarding-1-illusion",
        "co-rewarding-2-illusion",
        "curriculum-illusion",
    ):
        assert f"| {method} |" in results
    assert "| illusion | long | majority-vote | heldout |" in regimes  # 06 appends the saved regime table


def test_a_users_line_among_the_shared_parameters_is_kept(tmp_path: Path) -> None:
    """Issue 25.6: the sync deleted a user's own line placed among the shared parameter lines."""
    folder = _copy_notebooks(tmp_path)
    path = folder / "02_co_rewarding_1.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = notebooks.tagged(notebook, "parameters")[0]
    cell.source = cell.source.replace("\nSMOKE = False", "\nMY_NOTE = 'keep me'  # mine\nSMOKE = False")
    cell.source = cell.source.replace("SEED = 0  # one seed", "SEED = 3  # one seed")  # a shared line edited
    _save_as_jupyter(notebook, path)
    assert notebooks.main([str(folder)]) == 0
    restored = notebooks.tagged(nbformat.read(path, as_version=4), "parameters")[0].source
    assert restored == notebooks.PARAMETERS + "\nMY_NOTE = 'keep me'  # mine"
    run_ci_checks(folder)


def _reproduce_arguments(folder: Path, tmp_path: Path):
    import argparse

    return argparse.Namespace(
        profile="tiny", smoke=True, notebooks=str(folder), only=(), out=str(tmp_path / "out"),
        runs=str(tmp_path / "runs"), figures=str(tmp_path / "figures"), steps=None, retrain=False, timeout=None,
    )  # fmt: skip


@pytest.mark.parametrize("damage", ["below-setup", "copied"])
def test_reproduce_refuses_a_misplaced_or_doubled_parameters_cell(
    tmp_path: Path, capsys, damage: str
) -> None:
    """Issue 25.11: with the tag below the setup cell (or a copy), --smoke ran the notebook's full defaults."""
    from corerl.reproduce import run

    folder = _copy_notebooks(tmp_path)
    path = folder / "04_collapse_analysis.ipynb"
    notebook = nbformat.read(path, as_version=4)
    parameters = notebooks.tagged(notebook, "parameters")[0]
    if damage == "below-setup":
        notebook.cells.remove(parameters)
        notebook.cells.insert(
            notebook.cells.index(notebooks.tagged(notebook, "shared-setup")[0]) + 1, parameters
        )
    else:
        duplicate = copy.deepcopy(parameters)
        duplicate.id = "04-copy"
        notebook.cells.append(duplicate)
    _save_as_jupyter(notebook, path)
    (tmp_path / "runs").mkdir()
    assert run(_reproduce_arguments(folder, tmp_path)) == 2
    output = capsys.readouterr().out.strip().splitlines()
    assert len(output) == 1 and output[0].startswith("corerl reproduce: 04_collapse_analysis.ipynb: ")
    assert ("comes after the setup cell" if damage == "below-setup" else "2 cells are tagged") in output[0]
    assert not (tmp_path / "out").exists()  # nothing ran


def test_check_on_an_empty_folder_or_a_truncated_notebook_is_one_line(tmp_path: Path, capsys) -> None:
    """Issue 25, tracebacks: ``python -m corerl.notebooks --check`` on an empty folder or a truncated file."""
    (tmp_path / "empty").mkdir()
    assert notebooks.main(["--check", str(tmp_path / "empty")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no notebook matching" in error and "empty" in error
    folder = _copy_notebooks(tmp_path)
    path = folder / "01_baselines.ipynb"
    path.write_text(path.read_text()[:500])
    assert notebooks.main(["--check", str(folder)]) == 1
    assert "01_baselines.ipynb: not a readable notebook" in capsys.readouterr().err
    assert notebooks.main([str(folder)]) == 1  # the sync names it too, and leaves the file as it is
    assert capsys.readouterr().err.strip().splitlines() == [
        line for line in notebooks.check(folder) if line.startswith("01_baselines.ipynb")
    ]
