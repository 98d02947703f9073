"""``corerl plan``: the t4 defaults fit free quotas by the cost model, and the plan matches the notebooks."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import nbformat

from corerl.cli import main
from corerl.config import make_config
from corerl.notebooks import own_cells
from corerl.plan import NOTEBOOK_WORK, format_plan, plan, step_seconds
from corerl.reproduce import find_notebooks

ROOT = Path(__file__).resolve().parent.parent


def test_every_t4_notebook_fits_three_hours_and_all_fit_thirty() -> None:
    result = plan("t4")
    hours = {name: entry["hours"] for name, entry in result["notebooks"].items()}
    assert hours["00_quickstart"] <= 1.0
    assert all(value <= 3.0 for value in hours.values()), hours
    assert result["total_hours"] <= 30.0 and result["constants"] == "estimated"
    assert "estimated from public figures" in format_plan(result)


def test_the_cost_model_reproduces_the_issue_estimate_for_the_old_settings() -> None:
    """32 rollouts of up to 1,024 tokens: 60-105 s a step by the public-figure estimate of issue 10."""
    old = dataclasses.replace(make_config("t4"), max_completion_length=1024)
    assert 60 <= step_seconds(old) <= 105
    co_rewarding_2 = dataclasses.replace(old, method="co-rewarding-2")
    assert 95 <= step_seconds(co_rewarding_2) <= 180


def test_json_output_has_the_issue_schema(capsys) -> None:
    assert main(["plan", "--profile", "t4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"notebooks", "total_hours", "constants"}
    assert list(printed["notebooks"]) == list(NOTEBOOK_WORK) and printed["constants"] == "estimated"
    assert abs(sum(printed["notebooks"].values()) - printed["total_hours"]) < 0.01


def _notebook_runs() -> dict[str, list[str]]:
    """The run names each notebook's ``study.run(...)`` calls train or load (its own cells, not the shared)."""
    runs: dict[str, list[str]] = {}
    for path in find_notebooks(ROOT / "notebooks"):
        name = path.stem
        code = [
            cell.source for cell in own_cells(nbformat.read(path, as_version=4)) if cell.cell_type == "code"
        ]
        lines = [line for source in code for line in source.splitlines() if not line.startswith("%")]
        tree = ast.parse("\n".join(lines))
        tuples = {
            node.targets[0].id: [element.value for element in node.value.elts]
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Tuple)
            and isinstance(node.targets[0], ast.Name)
        }
        for node in ast.walk(tree):  # for method in METHODS: study.run(method), or a comprehension's for
            if (
                isinstance(node, ast.For | ast.comprehension)
                and isinstance(node.iter, ast.Name)
                and isinstance(node.target, ast.Name)
                and node.iter.id in tuples
            ):
                tuples[node.target.id] = tuples[node.iter.id]
        tiny_only = {  # calls under `if study.profile == "tiny":` do not run on a GPU profile
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "study.profile == 'tiny'"
            for statement in node.body
            for inner in ast.walk(statement)
        }
        found: list[str] = []
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                # job, seed_jobs: for run_together (seed_jobs: one seed on GPU profiles)
                and node.func.attr in ("run", "job", "seed_jobs")
                and id(node) not in tiny_only
            ):
                continue
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            first = node.args[0]
            methods = tuples[first.id] if isinstance(first, ast.Name) else [first.value]
            for method in methods:
                if "name" in keywords:
                    found.append(keywords["name"].value)
                elif "prior" in keywords:
                    found.append(f"{method}-{keywords['prior'].value}")
                else:
                    found.append(method)
        runs[name] = found
    return runs


def test_the_plan_lists_every_run_of_every_notebook() -> None:
    planned = {name: sorted(run.name for run in work["runs"]) for name, work in NOTEBOOK_WORK.items()}
    assert planned == {name: sorted(found) for name, found in _notebook_runs().items()}
