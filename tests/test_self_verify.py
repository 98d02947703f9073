"""Self-verification (issue 15, item 2): the judgement's arithmetic, padding, the reward contract, label
leakage, ``corerl train --method self-verify`` on the tiny profile, and a CPU rehearsal on SmolLM2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from corerl.config import make_config
from corerl.engine.verifier import (
    VERIFY_PROMPT,
    answer_token_ids,
    problem_text,
    self_verification,
    verification_text,
    yes_probabilities,
)
from corerl.rewards import LABEL_FREE, REQUIRED_COLUMNS, REWARDS, self_verify_reward, self_verify_vote_reward

METHODS = ("self-verify", "self-verify-vote")
# The t4 profile minus its CUDA-only parts (as in tests/test_rehearsal.py), at the smallest sizes.
REHEARSAL = {
    "use_cpu": True, "cpu_threads": 1, "precision": "fp32", "load_in_4bit": False, "use_unsloth": False,
    "use_vllm": False, "max_steps": 2, "questions_per_step": 1, "num_generations": 2,
    "max_completion_length": 16, "micro_batch_rollouts": 2, "lora_rank": 8, "lora_alpha": 16, "warmup_steps": 0, "learning_rate": 1e-3,
    "save_steps": 100, "sample_every": 1, "samples_per_step": 4, "progress": False,
}  # fmt: skip


def test_the_rewards_are_registered_label_free() -> None:
    assert (
        REWARDS["self-verify"] is self_verify_reward
        and REWARDS["self-verify-vote"] is self_verify_vote_reward
    )
    assert all(method in LABEL_FREE and REQUIRED_COLUMNS[method] == () for method in METHODS)


def test_the_rewards_read_the_judgement_not_the_answer_column() -> None:
    completions = [r"\boxed{4}", r"\boxed{4}", r"\boxed{5}", "I give up"]
    columns = {"self_verification": [0.25, 0.75, 1.0, 0.9], "verifier_mass": [0.5] * 4, "id": [1] * 4}
    metrics: dict[str, float] = {}
    plain = self_verify_reward(["p"] * 4, completions, **columns, log_metric=metrics.__setitem__)
    vote = self_verify_vote_reward(["p"] * 4, completions, **columns)
    assert plain == [0.25, 0.75, 1.0, 0.0]  # no boxed answer: nothing to verify
    assert vote == [(0.25 + 1) / 2, (0.75 + 1) / 2, 0.5, 0.0]  # the majority answer is 4
    assert metrics["verifier_mass"] == 0.5 and metrics["no_answer_rate"] == 0.25
    for answers in (["4"] * 4, ["5"] * 4, ["999"] * 4):
        assert self_verify_reward(["p"] * 4, completions, answer=answers, **columns) == plain
        assert self_verify_vote_reward(["p"] * 4, completions, answer=answers, **columns) == vote


def test_the_prompt_holds_the_problem_and_the_solution(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    chat_prompt = [{"role": "user", "content": "What is 2 + 3?"}]
    assert problem_text(chat_prompt) == "What is 2 + 3?"
    chat = verification_text(problem_text(chat_prompt), "2 + 3 = 5. \\boxed{5}", tokenizer, chat=True)
    request = VERIFY_PROMPT.format(problem="What is 2 + 3?", solution="2 + 3 = 5. \\boxed{5}")
    assert request in chat and chat.rstrip().endswith("assistant")  # the chat template's generation prompt
    plain = verification_text("What is 2 + 3?", "\\boxed{5}", tokenizer, chat=False)
    assert plain.startswith("You are checking") and plain.endswith("Answer (Yes or No):")
    yes, no = answer_token_ids(tokenizer)
    assert yes and no and not set(yes) & set(no)


def test_the_judgement_is_the_renormalised_next_token_probability(tiny_model_dir: Path) -> None:
    """Batched, left-padded judgements equal a row-by-row computation from the full logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = ["Compute 100 - 37.", [{"role": "user", "content": "What is 7 times 8?"}]] * 2
    completions = ["100 - 37 = 63. \\boxed{63}", "7 * 8 = 56", "\\boxed{1}", "Answer: 3 + 12 = 15."]
    judgements, masses = self_verification(
        model, tokenizer, prompts, completions, pad_token_id=tokenizer.pad_token_id
    )
    yes, no = answer_token_ids(tokenizer)
    for prompt, completion, judgement, mass in zip(prompts, completions, judgements, masses, strict=True):
        text = verification_text(
            problem_text(prompt), completion, tokenizer, chat=not isinstance(prompt, str)
        )
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            probabilities = torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        p_yes, p_no = probabilities[yes].sum().item(), probabilities[no].sum().item()
        assert judgement == pytest.approx(p_yes / (p_yes + p_no), abs=1e-5)
        assert mass == pytest.approx(p_yes + p_no, abs=1e-5)
    assert len(set(judgements)) > 1  # the judgement depends on the completion
    one_at_a_time = [yes_probabilities(model, [ids], yes, no, tokenizer.pad_token_id)[0][0] for ids in (
        tokenizer("short", add_special_tokens=False)["input_ids"],
        tokenizer("a much longer sequence than the first", add_special_tokens=False)["input_ids"],
    )]  # fmt: skip
    together = yes_probabilities(
        model,
        [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("short", "a much longer sequence than the first")],
        yes, no, tokenizer.pad_token_id,
    )[0]  # fmt: skip
    assert together == pytest.approx(one_at_a_time, abs=1e-5)


@pytest.mark.slow
def test_self_verify_trains_through_the_command_line_and_ignores_the_answer_column(tmp_path) -> None:
    """``corerl train --method self-verify-vote`` on the tiny profile, twice, the second time with every
    answer replaced: the rollouts, judgements and rewards are identical (only the oracle figures differ).

    The organism's model cannot verify anything (its judgement is noise: the method is plumbing-only on
    the tiny profile); this checks the method runs end to end, not that it learns.
    """
    from datasets import Dataset

    from corerl.cli import main
    from corerl.organism import ensure_base_model, make_dataset, smoke_settings

    model = ensure_base_model("aligned", cache_dir=tmp_path / "organism", settings=smoke_settings())
    rows = Dataset.from_list([dict(row) for row in make_dataset(4, seed=0, difficulty=1)])
    relabelled = rows.map(lambda row: {"answer": "999"})
    outs = []
    for name, data in (("labels", rows), ("relabelled", relabelled)):
        data_file = tmp_path / f"{name}.jsonl"
        data.to_json(data_file)
        config = tmp_path / f"{name}.yaml"
        settings = {"profile": "tiny", "questions_per_step": 2, "num_generations": 2, "max_completion_length": 16,
                    "data": str(data_file), "save_steps": 100, "sample_every": 1, "samples_per_step": 4,
                    "progress": False}  # fmt: skip
        config.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
        out = tmp_path / name
        argv = ["train", "--config", str(config), "--method", "self-verify-vote", "--max-steps", "2"]
        assert main([*argv, "--model", str(model), "--out", str(out)]) == 0
        outs.append(out)
    runs = [[json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] for out in outs]
    samples = [
        [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()] for out in outs
    ]
    assert [row["step"] for row in runs[0]] == [1, 2]
    assert all(row["method"] == "self-verify-vote" and 0.0 <= row["reward_mean"] <= 1.0 for row in runs[0])
    assert all(row["pseudo_label_accuracy"] is not None for row in runs[0])  # the vote's label, monitored
    oracle = {"oracle_accuracy", "pseudo_label_accuracy", "reward_accuracy", "time"}
    oracle |= {key for key in runs[0][0] if key.startswith("strategy/")}
    for first, second in zip(*runs, strict=True):
        assert {k: v for k, v in first.items() if k not in oracle} == {
            k: v for k, v in second.items() if k not in oracle
        }
    for first, second in zip(*samples, strict=True):
        assert (first["completion"], first["reward"]) == (second["completion"], second["reward"])
        assert second["ground_truth"] == "999"
    assert (outs[0] / "final").is_dir()


@pytest.mark.slow
def test_self_verify_rehearsal_on_smollm2(tmp_path: Path) -> None:
    """Two steps of ``self-verify`` on the t4 profile's path with SmolLM2-135M-Instruct on CPU (chat
    template, LoRA, the policy as its own verifier); plumbing, not accuracy."""
    from corerl.collapse import read_metrics
    from corerl.data import load_dataset
    from corerl.study import Study
    from corerl.tools.rehearsal import ensure_model

    smollm = ensure_model()
    math_train = load_dataset(make_config("t4").data)
    shortest = sorted(range(len(math_train)), key=lambda i: len(math_train[i]["question"]))
    questions = math_train.select(shortest[:1])
    study = Study(profile="t4", model=str(smollm), root=tmp_path, threads=1, overrides=REHEARSAL)
    run_dir = study.run("self-verify", dataset=questions)
    metrics = read_metrics(run_dir)
    assert list(metrics["step"]) == [1, 2]
    assert metrics["reward_mean"].between(0, 1).all()
    assert metrics["reward_accuracy"].isna().all()  # a graded reward: no reward accuracy
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert rows and all(0.0 <= row["reward"] <= 1.0 and not math.isnan(row["reward"]) for row in rows)
