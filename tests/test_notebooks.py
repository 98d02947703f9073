"""The numbered notebooks: stripped in git, generated from notebooks/make_notebooks.py, calling only
keyword arguments that exist in the pinned versions, and executing end to end in smoke mode."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import typing
from pathlib import Path
from typing import Any

import nbformat
import pytest

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


def test_notebooks_match_their_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS_DIR / "make_notebooks.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(["--check"]) == 0, "run python notebooks/make_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_in_git_carry_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
        assert "execution" not in cell.metadata, f"{path.name}: a cell has execution timings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameter_and_install_cells_come_first(path: Path) -> None:
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
    for pin in (
        "torch==2.13.0",
        "transformers==5.17.0",
        "trl==1.14.2",
        "datasets==4.8.5",
        "peft==0.21.2",
        "accelerate==1.15.0",
        "math-verify==0.9.0",
    ):
        assert pin in install


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_papermill_sees_every_parameter(path: Path) -> None:
    """papermill's parser drops a parameter whose comment it cannot parse (an '=' or parentheses)."""
    translators = pytest.importorskip("papermill.translators", reason="papermill is optional")
    notebook = nbformat.read(path, as_version=4)
    parameters = translators.PythonTranslator.inspect(notebook.cells[1])
    assert set(PARAMETERS) <= {parameter.name for parameter in parameters}


def test_notebooks_never_call_unsloth_directly() -> None:
    """Unsloth is not installed on a CPU, so its keyword arguments cannot be checked here: the notebooks
    leave it to corerl.engine (whose Unsloth calls are pinned by the engine's own tests)."""
    for path in NOTEBOOKS:
        for source in code_cells(path):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                    assert not any(name.split(".")[0] == "unsloth" for name in names), path.name


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


def test_keyword_arguments_exist_in_the_pinned_versions() -> None:
    """Every call of a corerl/TRL/transformers/PEFT/datasets callable with keywords is checked against the
    installed signature (methods of variables are followed through constructors and return annotations)."""
    checked = 0
    for path in NOTEBOOKS:
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
    assert checked >= 30, f"only {checked} library calls were checked: the resolver lost track"


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
    results = (figures / "results.md").read_text()
    assert "SMOKE" in results
    for method in ("ground-truth", "majority-vote", "co-rewarding-1", "co-rewarding-2", "curriculum"):
        assert f"| {method} |" in results
