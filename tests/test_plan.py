"""``corerl plan``: the t4 defaults fit free quotas by the cost model, and the plan matches the notebooks."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from corerl.cli import main
from corerl.config import make_config
from corerl.study.runs import run_name
from corerl.tools.notebooks import own_cells
from corerl.tools.plan import (
    NOTEBOOK_WORK,
    T4,
    format_plan,
    generation_seconds,
    heldout_seconds,
    plan,
    run_seconds,
    step_seconds,
    train_passes,
)
from corerl.tools.reproduce import find_notebooks

ROOT = Path(__file__).resolve().parent.parent


def test_every_t4_notebook_fits_three_hours_and_all_fit_thirty() -> None:
    result = plan("t4")
    hours = {name: entry["hours"] for name, entry in result["notebooks"].items()}
    assert hours["00_quickstart"] <= 1.0
    # 3.75, not 3: since the recompute, the KL reference and the teacher's slower decode are charged
    # (issue 23), 01_baselines plans at 3.2 h, and 03 at 3.7 h with Co-rewarding-III (4G generations a
    # question, issue 24) beside Co-rewarding-II and its ablation; what must hold is each run within its
    # time budget, below (a stopped run resumes in the next session).
    assert all(value <= 3.75 for value in hours.values()), hours
    assert result["total_hours"] <= 30.0 and result["constants"] == "estimated"
    assert "estimated from public figures" in format_plan(result)


def test_the_cost_model_reproduces_the_issue_estimate_for_the_old_settings() -> None:
    """32 rollouts of up to 1,024 tokens: 60-105 s a step by the public-figure estimate of issue 10 (its
    upper end now that the recompute and the KL reference are charged); Co-rewarding-II adds the teacher's
    decode at twice the policy's cost (issue 23)."""
    old = dataclasses.replace(make_config("t4"), max_completion_length=1024)
    assert 90 <= step_seconds(old) <= 105
    co_rewarding_2 = dataclasses.replace(old, method="co-rewarding-2")
    assert 200 <= step_seconds(co_rewarding_2) <= 260


def test_every_planned_run_fits_its_time_budget_with_room() -> None:
    """A run past time_budget_minutes stops Run all (checkpointed, resumed by the next session): the
    planned training (its steps and held-out evaluations) keeps a quarter of the budget spare."""
    from corerl.study import GPU_MODELS

    for work in NOTEBOOK_WORK.values():
        for run in work["runs"]:
            config = make_config("t4", method=run.method, model=GPU_MODELS[run.prior], **run.options)
            training = config.max_steps * step_seconds(config) + heldout_seconds(config)
            assert training <= 0.75 * 60 * config.time_budget_minutes, run.name


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
        names = _gpu_names(tree)
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
            if isinstance(node, ast.If)
            and (ast.unparse(node.test) == "study.profile == 'tiny'" or _false_on_gpu(node.test, names))
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
                    found.append(_gpu_value(keywords["name"], names))
                else:
                    prior = _gpu_value(keywords["prior"], names) if "prior" in keywords else "aligned"
                    found.append(run_name(method, prior))
        runs[name] = found
    return runs


def _gpu_value(node: ast.expr, names: dict[str, object]) -> object:
    """The value of a notebook expression on a GPU profile (what the plan prices): constants, names assigned
    before, ``run_name(...)``, subscripts of dict literals, and ``A if study.profile == "tiny" else B`` -> B."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.IfExp) and ast.unparse(node.test) == "study.profile == 'tiny'":
        return _gpu_value(node.orelse, names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "run_name":
        return run_name(*(_gpu_value(argument, names) for argument in node.args))
    if isinstance(node, ast.Dict):
        return {
            _gpu_value(key, names): _gpu_value(value, names)
            for key, value in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Subscript):
        return _gpu_value(node.value, names)[_gpu_value(node.slice, names)]
    raise ValueError(f"the plan test cannot evaluate {ast.unparse(node)!r}")


def _false_on_gpu(test: ast.expr, names: dict[str, object]) -> bool:
    """``if A == B:`` whose two sides this test can evaluate and differ on a GPU profile (``PRIOR == "illusion"``)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    try:
        return _gpu_value(test.left, names) != _gpu_value(test.comparators[0], names)
    except (KeyError, ValueError, TypeError):
        return False


def _gpu_names(tree: ast.Module) -> dict[str, object]:
    """Names a notebook assigns at its top level, as on a GPU profile (those this test can evaluate)."""
    names: dict[str, object] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                try:
                    names[target.id] = _gpu_value(statement.value, names)
                except (KeyError, ValueError, TypeError):
                    continue
    return names


def test_the_plan_lists_every_run_of_every_notebook() -> None:
    planned = {name: sorted(run.name for run in work["runs"]) for name, work in NOTEBOOK_WORK.items()}
    assert planned == {name: sorted(found) for name, found in _notebook_runs().items()}


def test_each_extra_forward_is_charged_a_third_of_training() -> None:
    """Gradient checkpointing's recompute and the KL reference (beta > 0) each add one forward pass."""
    config = make_config("t4", method="majority-vote")
    assert config.gradient_checkpointing and config.beta > 0
    assert train_passes(config) == pytest.approx(1 + 2 / 3)
    plain = dataclasses.replace(config, gradient_checkpointing=False, beta=0.0)
    assert train_passes(plain) == 1
    assert train_passes(dataclasses.replace(plain, method="entropy")) == pytest.approx(1 + 1 / 3)
    assert step_seconds(config) > step_seconds(plain)


def test_the_teacher_decode_is_charged_apart_from_the_policys() -> None:
    policy = make_config("t4", method="majority-vote")
    teacher = dataclasses.replace(policy, method="co-rewarding-2")
    rollouts = policy.questions_per_step * policy.num_generations
    decode = generation_seconds(policy.model, rollouts, rollouts, policy.max_completion_length)
    slower = dataclasses.replace(T4, teacher_decode_factor=3.0)
    assert step_seconds(teacher) - step_seconds(policy) == pytest.approx(T4.teacher_decode_factor * decode)
    assert step_seconds(teacher, slower) - step_seconds(policy, slower) == pytest.approx(3 * decode)


def test_the_heldout_evaluation_during_training_is_priced_when_on() -> None:
    """``eval_every``/``eval_size``/``eval_samples`` (issue 20) are read with defaults: absent or 0, no cost."""
    from corerl.mitigations.hooks import generation_batch_size

    config = make_config("t4", method="majority-vote")
    fields = {**dataclasses.asdict(config), "eval_every": 10, "eval_size": 50, "eval_samples": 4}
    with_eval = SimpleNamespace(**fields)
    evaluations = 1 + config.max_steps // 10  # step 0 and every 10 steps
    one = generation_seconds(
        config.model, 50 * 4, generation_batch_size(config), config.max_completion_length
    )
    assert one > 0 and heldout_seconds(with_eval) == pytest.approx(evaluations * one)
    assert run_seconds(with_eval) - run_seconds(SimpleNamespace(**{**fields, "eval_every": 0})) == (
        pytest.approx(evaluations * one)
    )
    assert heldout_seconds(SimpleNamespace(**{**fields, "eval_every": 0})) == 0
    without = {key: value for key, value in fields.items() if not key.startswith("eval_")}
    assert heldout_seconds(SimpleNamespace(**without)) == 0  # a config from before issue 20


KV_BUDGET_BYTES = 8e9  # of a 15 GB T4, beside the model, LoRA + Adam, log-prob micro-batches, CUDA context


@pytest.mark.parametrize("method", ["majority-vote", "co-rewarding-1", "co-rewarding-2", "self-verify"])
def test_t4_rollouts_kv_cache_fits_its_budget(method: str) -> None:
    """A step decodes all its rollouts at once: at most rollouts x (max_prompt_length + cap) KV positions
    (prompts beyond max_prompt_length are dropped, corerl.engine.lengths)."""
    config = make_config("t4", method=method)
    rollouts = config.questions_per_step * config.num_generations * (2 if method == "co-rewarding-1" else 1)
    positions = rollouts * (config.max_prompt_length + config.max_completion_length)
    assert positions * T4.kv_bytes_per_token <= KV_BUDGET_BYTES
    unbounded = rollouts * (1024 + config.max_completion_length)  # Unsloth's room without the cap
    assert method != "co-rewarding-1" or unbounded * T4.kv_bytes_per_token > KV_BUDGET_BYTES


def test_t4_evaluation_batches_are_bounded_in_kv_positions() -> None:
    from corerl.study import EVALUATION

    settings = EVALUATION["t4"]
    assert settings["max_batch_tokens"] * T4.kv_bytes_per_token <= 6e9  # beside a 6.4 GB fp16 3B model
    assert settings["batch_size"] * (600 + settings["max_new_tokens"]) * T4.kv_bytes_per_token > 6e9
