"""The recipe around the rewards (issue 12): one setup for every method, comparable to the papers."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from corerl.config import GPU_BETA, PROFILES, STUDY_METHODS, load_config, make_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_method_gets_the_profiles_kl_setting(profile: str) -> None:
    betas = {method: make_config(profile, method=method).beta for method in STUDY_METHODS}
    assert len(set(betas.values())) == 1, betas


def test_gpu_profiles_use_the_papers_kl() -> None:
    assert GPU_BETA == 0.005  # Co-rewarding App. C.2 / Co-rewarding-I scripts: low-variance KL 0.005
    assert make_config("t4").beta == make_config("a100").beta == GPU_BETA


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_configs_keep_the_profiles_kl_setting(path: Path) -> None:
    values = yaml.safe_load(path.read_text())
    assert "beta" not in values, f"{path.name} sets beta per method"
    config = load_config(path)
    assert config.beta == make_config(config.profile).beta


def _notebook_sources(pattern: str = "[0-9][0-9]_*.ipynb") -> list[str]:
    """The cell sources of the numbered notebooks (all of them, or those matching ``pattern``)."""
    return [
        cell.source
        for path in sorted((ROOT / "notebooks").glob(pattern))
        for cell in nbformat.read(path, as_version=4).cells
    ]


def test_notebooks_never_set_beta() -> None:
    strings = _notebook_sources()
    assert not [text for text in strings if "beta=" in text.replace(" ", "") or '"beta"' in text]


def test_study_refuses_a_per_run_beta(tmp_path: Path) -> None:
    from corerl.study import Study

    study = Study(profile="tiny", root=tmp_path, model=str(tmp_path / "model"))
    with pytest.raises(ValueError, match="beta is one setting per profile"):
        study.config("co-rewarding-2", beta=0.001)
    shared = Study(profile="tiny", root=tmp_path, model=str(tmp_path / "model"), overrides={"beta": 0.01})
    assert {shared.config(method).beta for method in STUDY_METHODS} == {0.01}


def test_gpu_profiles_prompt_with_the_co_rewarding_papers_wording() -> None:
    from corerl.evaluate import make_formatter

    paper = "Let's think step by step and output the final answer within \\boxed{}."
    for profile in ("t4", "a100"):
        config = make_config(profile)
        assert config.chat and config.format_prompt("What is 1+1?") == f"What is 1+1? {paper}"
    assert make_formatter(chat=True)("Q")[0]["content"] == f"Q {paper}"  # evaluation's default too


def test_qwen_math_wording_is_a_named_option() -> None:
    from corerl.config import QWEN_MATH_PROMPT, from_yaml, to_yaml
    from corerl.evaluate import make_formatter

    config = make_config("t4", prompt_template="qwen-math")
    assert config.prompt_template == QWEN_MATH_PROMPT
    assert config.format_prompt("Q").endswith(
        "Please reason step by step, and put your final answer within \\boxed{}."
    )
    assert from_yaml(to_yaml(config)) == config
    assert make_formatter("qwen-math", chat=False)("Q") == config.format_prompt("Q")


def _early_stopped_run(run_dir: Path, best_step: int | None = 3) -> None:
    import json

    for folder in ("checkpoint-3", "checkpoint-6", "final"):
        (run_dir / folder).mkdir(parents=True)
    history = {"history": [{"step": 3, "score": 0.5}, {"step": 6, "score": 0.2}], "best_step": best_step}
    (run_dir / "early_stopping.json").write_text(json.dumps(history))


def test_an_early_stopped_run_is_evaluated_at_its_best_checkpoint(tmp_path: Path) -> None:
    from corerl.mitigations.early_stopping import evaluation_model

    _early_stopped_run(tmp_path / "es")
    assert evaluation_model(tmp_path / "es") == tmp_path / "es" / "checkpoint-3"
    (tmp_path / "plain" / "final").mkdir(parents=True)
    assert evaluation_model(tmp_path / "plain") == tmp_path / "plain" / "final"
    _early_stopped_run(tmp_path / "never", best_step=None)
    with pytest.raises(ValueError, match="never evaluated"):
        evaluation_model(tmp_path / "never")
    (tmp_path / "es" / "checkpoint-3").rmdir()
    with pytest.raises(FileNotFoundError, match="checkpoint-3: the best checkpoint"):
        evaluation_model(tmp_path / "es")


def _fake_evaluate_model(calls: list):
    import pandas as pd

    def evaluate_model(path, benchmarks, *, model_name="model", **options):
        calls.append(path)
        value = 0.9 if str(path).endswith("checkpoint-3") else 0.1  # best checkpoint vs final/
        row = {"benchmark": "organism", "model": model_name, "metric": "avg@k", "k": 4, "temperature": 0.8}
        table = pd.DataFrame([{**row, "value": value, "n": 200}])
        return type("Evaluation", (), {"table": table, "save": lambda self, out: []})()

    return evaluate_model


def test_study_evaluation_and_results_table_use_the_best_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from corerl.study import Study

    monkeypatch.setattr(Study, "base_model", lambda self, prior="aligned": f"/models/{prior}")
    study = Study("tiny", root=tmp_path / "runs", figures=tmp_path / "figures")
    _early_stopped_run(study.runs_dir / "early-stopping")
    calls: list = []
    monkeypatch.setattr("corerl.evaluate.evaluate_model", _fake_evaluate_model(calls))
    study.evaluate("early-stopping")  # as notebook 05 does
    assert calls == [str(study.runs_dir / "early-stopping" / "checkpoint-3")]
    assert study.results_table().loc["early-stopping", "organism"] == 90.0  # notebook 06's table


def test_notebook_05_evaluates_early_stopping_through_the_study() -> None:
    source = "\n".join(_notebook_sources("05_*.ipynb"))
    assert 'EARLY_STOPPING = run_name("early-stopping", PRIOR)' in source  # the run on the illusion prior
    assert "study.evaluate(EARLY_STOPPING)" in source and "best_checkpoint" not in source


def test_corerl_eval_of_a_run_directory_uses_the_best_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from corerl.cli import main

    _early_stopped_run(tmp_path / "es")
    calls: list = []
    monkeypatch.setattr("corerl.evaluate.evaluate_model", _fake_evaluate_model(calls))
    main(
        ["eval", "--model", str(tmp_path / "es"), "--benchmarks", "organism", "--out", str(tmp_path / "out")]
    )
    assert calls == [str(tmp_path / "es" / "checkpoint-3")]


def test_several_updates_per_generation_reach_trl() -> None:
    from corerl.engine.model import Backend
    from corerl.engine.trainer import grpo_args

    cpu = Backend(cuda=False, unsloth=False, vllm=False)
    default = grpo_args(make_config("tiny"), cpu, Path("unused"))
    assert (default.steps_per_generation, default.num_iterations) == (1, 1)  # strictly on-policy
    config = make_config("tiny", method="random", steps_per_generation=8, num_iterations=2)
    args = grpo_args(config, cpu, Path("unused"))
    assert (args.steps_per_generation, args.num_iterations) == (8, 2)
    assert args.generation_batch_size == 8 * config.questions_per_step * config.num_generations
    assert load_config(ROOT / "configs" / "t4-random.yaml").steps_per_generation == 8  # Spurious Rewards: 8
    with pytest.raises(ValueError, match=r"num_iterations must be in \[1, 1024\]"):
        make_config("tiny", num_iterations=0)


@pytest.mark.slow
def test_off_policy_updates_keep_old_log_probabilities(tiny_model_dir: Path, tmp_path: Path) -> None:
    """With 2 steps per generation TRL keeps the sampling policy's log-probs, so the ratio can leave 1."""
    from datasets import Dataset

    from corerl.engine.run import cpu_threads, prepare_run

    data = Dataset.from_dict({"id": ["a", "b"], "question": ["1 + 1?", "2 + 2?"]})
    buffered = {}
    for spg in (1, 2):
        config = make_config(
            "tiny",
            method="random",
            model=str(tiny_model_dir),
            output_dir=str(tmp_path / f"spg{spg}"),
            steps_per_generation=spg,
            max_steps=2,
            questions_per_step=1,
            num_generations=4,
            max_completion_length=8,
            learning_rate=1e-2,
            save_steps=100,
            progress=False,
        )
        run = prepare_run(config, dataset=data)
        with cpu_threads(config):
            run.trainer.train()
        buffered[spg] = run.trainer._buffered_inputs
    assert all("old_per_token_logps" not in part for part in buffered[1])  # ratio exactly 1: clip never binds
    assert len(buffered[2]) == 2 and all("old_per_token_logps" in part for part in buffered[2])


def test_point_biserial_is_pearsons_r_with_the_ground_truth_reward() -> None:
    import numpy as np

    from corerl.engine.monitor import point_biserial, rollout_metrics

    rewards, truth = [0.3, -1.2, 0.8, 0.1, None, 2.0], [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    kept = [i for i, r in enumerate(rewards) if r is not None]
    expected = np.corrcoef([rewards[i] for i in kept], [truth[i] for i in kept])[0, 1]
    assert point_biserial(rewards, truth) == pytest.approx(expected)
    assert point_biserial([0.5, 0.5, 0.5], [1.0, 0.0, 1.0]) is None  # constant reward: undefined
    figures = rollout_metrics(
        "majority-vote", ["p"] * 4, [r"\boxed{1}", r"\boxed{1}", r"\boxed{2}", r"\boxed{2}"],
        [1.0, 1.0, 0.0, 0.0], ["2"] * 4, ["1"] * 4,
    )  # fmt: skip
    assert figures["point_biserial"] == pytest.approx(-1.0)  # rewards the wrong answer: r = -1
    assert rollout_metrics("entropy", ["p"], ["x"], [0.1], None, None)["point_biserial"] is None  # no labels


def test_hendrycks_grader_is_a_string_match_after_normalisation() -> None:
    from corerl.evaluate import grade
    from corerl.graders import hendrycks_equiv

    assert hendrycks_equiv(r"\dfrac{1}{2}", r"\frac12") and hendrycks_equiv(r"\left(1,2\right)", "(1,2)")
    assert (
        hendrycks_equiv(r"90^\circ", "90") and hendrycks_equiv(r"\$5", "5") and hendrycks_equiv("x = 3", "3")
    )
    assert not hendrycks_equiv("0.25", r"\frac{1}{4}")  # a string match: math-verify would accept it
    assert grade(["0.25", r"\frac14"], r"\frac{1}{4}", "hendrycks").correct == (False, True)
    with pytest.raises(ValueError, match="unknown grader"):
        grade(["1"], "1", "exact")


def test_corerl_eval_passes_the_grader(tmp_path: Path, monkeypatch) -> None:
    from corerl.cli import main

    seen = {}

    def evaluate_model(path, benchmarks, **options):
        seen.update(options)
        return _fake_evaluate_model([])(path, benchmarks)

    monkeypatch.setattr("corerl.evaluate.evaluate_model", evaluate_model)
    main(
        [
            "eval",
            "--model",
            str(tmp_path),
            "--benchmarks",
            "organism",
            "--grader",
            "hendrycks",
            "--out",
            str(tmp_path),
        ]
    )
    assert seen["grader"] == "hendrycks"
