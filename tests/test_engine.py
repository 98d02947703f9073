"""End-to-end training on the tiny profile (CPU, no network): every method, teacher, resume, determinism."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from corerl.arithmetic.strategies import STRATEGIES
from corerl.config import STUDY_METHODS, TrainConfig, load_config, make_config, to_yaml
from corerl.engine import train
from corerl.engine.run import cpu_threads, prepare_run
from corerl.engine.teacher import TEACHER_STATE_FILE
from corerl.rewards import TEACHER_METHODS

pytestmark = pytest.mark.slow

# Offline labels: a mitigation, tested on its own. Step-check: the smoke model's arithmetic is never
# right, so its reward is 0 everywhere and no weight moves; tests/test_step_check.py trains it.
# Self-verify-vote: self-verify plus the vote, trained in tests/test_self_verify.py.
TRAINED_METHODS = [method for method in STUDY_METHODS if method not in ("step-check", "self-verify-vote")]


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The organism's smoke build: a few-second tiny model that writes worked lines and a \\boxed{} answer."""
    from corerl.organism import ensure_base_model, smoke_settings

    return ensure_base_model(
        "aligned", cache_dir=tmp_path_factory.mktemp("organism"), settings=smoke_settings()
    )


@pytest.fixture(scope="module")
def dataset(base_model: Path) -> Dataset:
    """Organism questions whose ``answer`` is the base model's own greedy answer.

    The smoke model has not learned arithmetic, so with the true answers the ground-truth reward would be
    0 everywhere and GRPO's advantages (hence gradients) would vanish; with its greedy answer as the
    label, some sampled rollouts are rewarded and every method gets a learning signal.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corerl.answers import extract_answer
    from corerl.organism import format_prompt, make_dataset

    model = AutoModelForCausalLM.from_pretrained(base_model)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    rows = []
    for row in make_dataset(8, seed=0, difficulty=1):
        inputs = tokenizer(format_prompt(row["question"]), return_tensors="pt")
        output = model.generate(
            **inputs, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        answer = extract_answer(
            tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        )
        if answer is not None:
            rows.append(
                {
                    "id": row["id"],
                    "question": row["question"],
                    "rephrased": row["rephrased"],
                    "answer": answer,
                }
            )
    assert len(rows) >= 4
    return Dataset.from_list(rows[:4])


def tiny_config(base_model: Path, out: Path, method: str, **overrides) -> TrainConfig:
    settings = {
        "model": str(base_model),
        "output_dir": str(out),
        "max_steps": 3,
        "questions_per_step": 2,
        "num_generations": 4,
        "max_completion_length": 24,
        "learning_rate": 1e-3,
        "temperature": 0.5,  # the smoke model agrees with itself at 0.5, so voting rewards carry a signal
        "save_steps": 100,
        "sample_every": 2,
        "samples_per_step": 2,
        "progress": False,
        **overrides,
    }
    return make_config("tiny", method=method, **settings)


def trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


SCHEMA = {
    "step", "time", "method", "reward_mean", "reward_std", "reward_group_std", "oracle_accuracy", "pseudo_label_accuracy",
    "reward_accuracy", "point_biserial", "majority_share", "distinct_answers", "no_answer_rate", "completion_length",
    "token_entropy", "kl", "learning_rate", "teacher_alpha", "epoch",
}  # fmt: skip


@pytest.mark.parametrize("method", TRAINED_METHODS)
def test_three_steps_change_the_trainable_weights(method: str, base_model, dataset, tmp_path) -> None:
    config = tiny_config(base_model, tmp_path / method, method)
    run = prepare_run(config, dataset=dataset)
    before = trainable(run.trainer.model)
    with cpu_threads(config):
        run.trainer.train()
    after = trainable(run.trainer.model)
    assert set(before) == set(after) and before
    assert any(not torch.equal(before[name], after[name]) for name in before)
    rows = metric_rows(run.run_dir)
    assert [row["step"] for row in rows] == [1, 2, 3]
    strategy_keys = {f"strategy/{name}" for name in STRATEGIES}  # organism data: strategy shares too
    assert all(set(row) == SCHEMA | strategy_keys and row["method"] == method for row in rows)
    assert all(sum(row[key] for key in strategy_keys) == pytest.approx(1.0) for row in rows)
    assert all(row["oracle_accuracy"] is not None for row in rows)
    # Token entropies are computed only where the reward reads them (a costly pass at Qwen's vocabulary).
    signals = method in ("entropy", "self-certainty")
    assert all((row["token_entropy"] is not None and row["token_entropy"] > 0) == signals for row in rows)
    voting = method in ("majority-vote", "co-rewarding-1", "co-rewarding-2", "co-rewarding-3")
    assert all((row["pseudo_label_accuracy"] is not None) == voting for row in rows)
    assert all((row["teacher_alpha"] is not None) == (method in TEACHER_METHODS) for row in rows)
    samples = [json.loads(line) for line in (run.run_dir / "samples.jsonl").read_text().splitlines()]
    assert sorted({row["step"] for row in samples}) == [1, 2]
    if method in TEACHER_METHODS:
        teacher = run.trainer._teacher_model
        optimized = {id(p) for group in run.trainer.optimizer.param_groups for p in group["params"]}
        assert all(not p.requires_grad and id(p) not in optimized for p in teacher.parameters())
        alphas = [row["teacher_alpha"] for row in rows]
        assert alphas[0] == pytest.approx(0.01) and alphas == sorted(alphas, reverse=True)


def test_lora_teacher_is_a_frozen_adapter_and_the_kl_reference(base_model, dataset, tmp_path) -> None:
    config = tiny_config(
        base_model,
        tmp_path / "lora",
        "co-rewarding-2",
        lora=True,
        lora_rank=4,
        lora_alpha=8,
        beta=0.05,
        save_steps=3,
    )
    run = prepare_run(config, dataset=dataset)
    trainer = run.trainer
    initial_teacher = {name: p.clone() for name, p in trainer._teacher_named().items()}
    assert initial_teacher and all(".ref." in name for name in initial_teacher)
    with cpu_threads(config):
        trainer.train()
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    teacher = trainer._teacher_named()
    assert all(not p.requires_grad and id(p) not in optimized for p in teacher.values())
    assert any(not torch.equal(initial_teacher[name], teacher[name]) for name in teacher)  # the EMA moved it
    policy_trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert policy_trainable and all(
        ".default." in n for n, p in trainer.model.named_parameters() if p.requires_grad
    )
    rows = metric_rows(run.run_dir)
    assert all(row["kl"] is not None for row in rows) and rows[-1]["kl"] > 0
    saved = torch.load(run.run_dir / "checkpoint-3" / TEACHER_STATE_FILE, weights_only=True)
    assert set(saved) == set(teacher)
    assert all(torch.equal(saved[name], teacher[name].cpu()) for name in saved)


def test_co_rewarding_3_teacher_samples_both_views_and_each_view_meets_its_twin(
    base_model, dataset, tmp_path, monkeypatch
) -> None:
    import corerl.rewards as rewards

    seen = []
    labels_and_votes = rewards._cross_view_teacher_labels_and_votes

    def spy(teacher_completions, ids, views, merge_equivalent):
        labels, votes, missing = labels_and_votes(teacher_completions, ids, views, merge_equivalent)
        seen.append((list(views), {len(group) for group in teacher_completions}, missing))
        return labels, votes, missing

    monkeypatch.setattr(rewards, "_cross_view_teacher_labels_and_votes", spy)
    config = tiny_config(base_model, tmp_path / "cr3", "co-rewarding-3", max_steps=1)
    run = prepare_run(config, dataset=dataset)
    with cpu_threads(config):
        run.trainer.train()
    assert seen
    for views, teacher_group_sizes, missing in seen:
        # both views in every reward batch, each scored by the teacher's G rollouts on its twin
        assert views.count("original") == views.count("rephrased") > 0
        assert teacher_group_sizes == {config.num_generations} and missing == 0


@pytest.mark.parametrize("where", ["terminal", "notebook"])
def test_one_progress_bar_corerls(where: str, base_model, dataset, tmp_path, monkeypatch) -> None:
    """transformers' progress callback (its notebook table under Jupyter) is removed; corerl's bar stays."""
    from transformers import trainer as hf_trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    from corerl.engine.monitor import RunLogCallback

    if where == "notebook":  # what transformers picks when imported under Jupyter
        monkeypatch.setattr(hf_trainer, "DEFAULT_PROGRESS_CALLBACK", NotebookProgressCallback)
    config = tiny_config(base_model, tmp_path / where, "majority-vote", progress=True)
    callbacks = prepare_run(config, dataset=dataset).trainer.callback_handler.callbacks
    progress = (ProgressCallback, NotebookProgressCallback, PrinterCallback)
    assert not [callback for callback in callbacks if isinstance(callback, progress)]
    assert [callback.progress for callback in callbacks if isinstance(callback, RunLogCallback)] == [True]


def test_same_seed_same_metrics(base_model, dataset, tmp_path) -> None:
    runs = [
        train(tiny_config(base_model, tmp_path / f"run{i}", "co-rewarding-1", max_steps=2), dataset=dataset)
        for i in range(2)
    ]
    first, second = ([{k: v for k, v in row.items() if k != "time"} for row in metric_rows(r)] for r in runs)
    assert first == second and len(first) == 2
    other = train(
        tiny_config(base_model, tmp_path / "seed1", "co-rewarding-1", max_steps=2, seed=1), dataset=dataset
    )
    assert [{k: v for k, v in row.items() if k != "time"} for row in metric_rows(other)] != first


def test_missing_columns_fail_before_training(base_model, dataset, tmp_path) -> None:
    config = tiny_config(Path("/nonexistent/model"), tmp_path / "x", "ground-truth")
    with pytest.raises(ValueError, match="ground-truth needs a column 'answer'"):
        train(config, dataset=dataset.remove_columns("answer"))
    config = tiny_config(Path("/nonexistent/model"), tmp_path / "y", "co-rewarding-1")
    with pytest.raises(ValueError, match="co-rewarding-1 needs a column 'rephrased'"):
        train(config, dataset=dataset.remove_columns("rephrased"))
    config = tiny_config(Path("/nonexistent/model"), tmp_path / "z", "majority-vote", questions_per_step=5)
    with pytest.raises(ValueError, match="has 4 questions, fewer than questions_per_step=5"):
        train(config, dataset=dataset)
    assert not (tmp_path / "x" / "metrics.jsonl").exists()


def test_cli_reports_a_missing_column_in_one_line(base_model, dataset, tmp_path, capsys) -> None:
    from corerl.cli import main

    data = tmp_path / "no_rephrased.jsonl"
    data.write_text(
        "".join(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n" for r in dataset)
    )
    code = main(
        [
            "train",
            "--method",
            "co-rewarding-1",
            "--model",
            str(base_model),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    assert code == 2
    assert "co-rewarding-1 needs a column 'rephrased'" in capsys.readouterr().err


def test_kill_and_resume_counts_every_step_once(base_model, dataset, tmp_path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in dataset))
    out = tmp_path / "run"
    config = tiny_config(base_model, out, "co-rewarding-2", data=str(data), max_steps=12, save_steps=2)
    config_path = tmp_path / "run.yaml"
    config_path.write_text(to_yaml(config))
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "corerl.cli", "train", "--config", str(config_path)]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    checkpoint = out / "checkpoint-2"
    try:
        while (
            not (checkpoint / "trainer_state.json").exists() or not (checkpoint / TEACHER_STATE_FILE).exists()
        ):
            assert process.poll() is None and time.monotonic() < deadline, (
                "the run ended before its first checkpoint"
            )
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-run, not finished
    assert [row["step"] for row in metric_rows(out)][:2] == [1, 2]

    with pytest.raises(ValueError, match="refuses a different config.*max_steps: 12 -> 13"):
        train(load_config(config_path, max_steps=13), resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(load_config(config_path))
    train(load_config(config_path), resume=True)
    rows = metric_rows(out)
    assert [row["step"] for row in rows] == list(range(1, 13))
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    samples = [json.loads(line)["step"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted(samples) == [step for step in (1, *range(2, 13, 2)) for _ in range(2)]
    assert (out / "final").is_dir()


WORKER = r"""
import json, sys
from accelerate import PartialState

state = PartialState(cpu=True)
from corerl.engine.monitor import MonitoredReward

# Group "b" is split across the two ranks: 7, 5 on rank 0 and 5, 5 on rank 1, so its label is 5.
if state.process_index == 0:
    prompts, answers = ["a"] * 4 + ["b"] * 2, ["1", "1", "1", "2", "7", "5"]
else:
    prompts, answers = ["b"] * 2 + ["c"] * 4, ["5", "5", "3", "3", "4", "4"]
completions = ["\\boxed{%s}" % answer for answer in answers]
monitor = MonitoredReward("majority-vote")
rewards = monitor(prompts, completions, id=list(prompts), answer=["5"] * 6)
expected = [[1.0, 1.0, 1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]][state.process_index]
assert rewards == expected, (state.process_index, rewards)
# The figures cover both ranks' 12 rollouts (8 rewarded): reward_std is the whole batch's std.
assert abs(monitor.latest["reward_mean"] - 2 / 3) < 1e-9, monitor.latest
assert abs(monitor.latest["reward_std"] - (2 / 9) ** 0.5) < 1e-9, monitor.latest
# Per group (a: 1110, b: 0111 across the ranks, c: 1100): the mean of 0.433, 0.433 and 0.5.
assert abs(monitor.latest["reward_group_std"] - (2 * (3 / 16) ** 0.5 + 0.5) / 3) < 1e-9, monitor.latest

from corerl.cli import main

sys.exit(main(["train", "--config", sys.argv[1]]))
"""


def test_two_processes_vote_on_whole_groups(base_model, dataset, tmp_path) -> None:
    """torchrun, 2 CPU processes: a split group is voted on as a whole; Co-rewarding-I trains across ranks."""
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in dataset))
    out = tmp_path / "run"
    # 3 questions x 2 views x 4 rollouts = 24 rollouts, 12 per rank: one question's views land on different ranks
    config = tiny_config(
        base_model,
        out,
        "co-rewarding-1",
        data=str(data),
        max_steps=2,
        questions_per_step=3,
        samples_per_step=24,
    )
    (tmp_path / "run.yaml").write_text(to_yaml(config))
    (tmp_path / "worker.py").write_text(WORKER)
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with socket.socket() as probe:  # a free port for the rendezvous ("0" makes torchrun hang)
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port]
    command += [str(tmp_path / "worker.py"), str(tmp_path / "run.yaml")]
    # A new session, so that on a timeout the whole group (torchrun and both workers) is killed:
    # orphaned workers would otherwise wait on their peer forever.
    process = subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"torchrun did not finish in 300 s: {stderr[-3000:]}")
    assert process.returncode == 0, stderr[-3000:]
    assert [row["step"] for row in metric_rows(out)] == [1, 2]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    first_step = [row for row in samples if row["step"] == 1]
    assert len(first_step) == 24  # the monitor saw both ranks' rollouts
    views = {}
    for row in first_step:
        views.setdefault(row["id"], set()).add(row["question"])
    assert len(views) == 3 and all(len(questions) == 2 for questions in views.values())


# ----------------------------------------------------- the mitigations as config options (corerl.mitigations)


def sample_ids(run_dir: Path) -> set[str]:
    return {json.loads(line)["id"] for line in (run_dir / "samples.jsonl").read_text().splitlines()}


def test_early_stopping_holds_out_the_labelled_slice(base_model, dataset, tmp_path) -> None:
    config = tiny_config(
        base_model,
        tmp_path / "es",
        "majority-vote",
        max_steps=2,
        early_stopping=True,
        early_stopping_eval_steps=1,
        sample_every=1,
        samples_per_step=8,
    )
    run_dir = train(config, dataset=dataset)
    validation = [
        json.loads(line) for line in (run_dir / "early_stopping_validation.jsonl").read_text().splitlines()
    ]
    assert len(validation) == 1 and validation[0]["answer"]  # 1% of 4 questions: at least one
    trained = sample_ids(run_dir)
    assert trained and validation[0]["id"] not in trained and trained <= set(dataset["id"])
    history = json.loads((run_dir / "early_stopping.json").read_text())
    assert [entry["step"] for entry in history["history"]] == [1, 2]
    assert history["best_step"] in (1, 2) and (run_dir / f"checkpoint-{history['best_step']}").is_dir()
    # Early stopping needs labels: data without answers fails before any model loads.
    unlabelled = tiny_config(
        Path("/nonexistent/model"), tmp_path / "none", "majority-vote", early_stopping=True
    )
    with pytest.raises(ValueError, match="early stopping scores a labelled validation slice.*no 'answer'"):
        train(unlabelled, dataset=dataset.remove_columns("answer"))


def test_offline_labels_are_voted_once_and_not_again_on_resume(
    base_model, dataset, tmp_path, monkeypatch
) -> None:
    import corerl.generation

    calls = []
    real_generate = corerl.generation.generate

    def counting_generate(*args, **kwargs):
        calls.append(len(args[2]))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(corerl.generation, "generate", counting_generate)
    config = tiny_config(
        base_model,
        tmp_path / "offline",
        "majority-vote",
        max_steps=2,
        save_steps=1,
        offline_labels=True,
        offline_label_samples=4,
    )
    assert config.method == "offline-labels"
    run_dir = train(config, dataset=dataset.remove_columns("answer"))
    labels = run_dir / "offline_labels.json"
    assert calls == [4] and labels.is_file()  # one pass over the 4 questions
    votes = json.loads(labels.read_text())["votes"]
    assert [vote["id"] for vote in votes] == dataset["id"] and sum(v["label"] is not None for v in votes) >= 2
    assert all(row["method"] == "offline-labels" for row in metric_rows(run_dir))
    written = labels.stat().st_mtime_ns
    (run_dir / "final").rename(run_dir / "final-before")
    train(config, dataset=dataset.remove_columns("answer"), resume=True)
    assert calls == [4] and labels.stat().st_mtime_ns == written  # read back, never sampled again
    assert (run_dir / "final").is_dir()


def test_curriculum_trains_on_the_easiest_fraction(base_model, dataset, tmp_path) -> None:
    config = tiny_config(
        base_model,
        tmp_path / "curriculum",
        "majority-vote",
        max_steps=2,
        curriculum_fraction=0.5,
        curriculum_samples=4,
        sample_every=1,
        samples_per_step=8,
    )
    run_dir = train(config, dataset=dataset)
    saved = json.loads((run_dir / "curriculum_votes.json").read_text())
    votes = saved["votes"]
    assert len(votes) == 4 and saved["settings"]["k"] == 4
    ranked = sorted(range(4), key=lambda i: (-votes[i]["share"], i))
    easiest = {votes[i]["id"] for i in ranked[:2]}
    assert sample_ids(run_dir) == easiest  # exactly half the questions, the two with the highest shares
    assert [row["step"] for row in metric_rows(run_dir)] == [1, 2]


def test_test_time_training_on_a_small_test_set(base_model, tmp_path) -> None:
    from corerl.mitigations.ttrl import select_test_time_set
    from corerl.organism import make_dataset

    config = tiny_config(
        base_model,
        tmp_path / "ttt",
        "majority-vote",
        max_steps=2,
        data="organism-test",
        data_limit=20,
        test_time_training=True,
        test_time_questions=6,
        sample_every=1,
        samples_per_step=8,
    )
    run_dir = train(config)
    chosen = select_test_time_set(make_dataset(20, seed=0, split="test"), max_questions=6, seed=config.seed)
    assert sample_ids(run_dir) <= set(chosen["id"]) and len(chosen) == 6
    results = json.loads((run_dir / "test_time_eval.json").read_text())
    assert {row["model"] for row in results} == {"base", "trained"}
    assert all(row["n"] == 6 and row["benchmark"] == "organism-test" for row in results)
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert all(isinstance(row["truncated"], bool) for row in samples)
    with pytest.raises(ValueError, match="test_time_training trains a label-free method"):
        tiny_config(base_model, tmp_path / "gt", "ground-truth", test_time_training=True)


def test_a_time_budget_checkpoints_stops_cleanly_and_the_next_call_resumes(
    base_model, dataset, tmp_path
) -> None:
    from corerl.engine.run import is_finished

    out = tmp_path / "budget"
    config = tiny_config(base_model, out, "majority-vote", max_steps=3, time_budget_minutes=1e-9)
    assert train(config, dataset=dataset) == out  # ends normally, as an interrupted run
    assert not is_finished(out) and (out / "checkpoint-1" / "trainer_state.json").is_file()
    assert [row["step"] for row in metric_rows(out)] == [1]
    resumed = dataclasses.replace(config, time_budget_minutes=None)
    train(resumed, resume=True, dataset=dataset)  # a changed budget is not a different run
    assert is_finished(out) and [row["step"] for row in metric_rows(out)] == [1, 2, 3]


def test_micro_batches_split_a_step_into_accumulation_passes() -> None:
    from corerl.engine.model import Backend
    from corerl.engine.trainer import grpo_args

    config = make_config("tiny", method="co-rewarding-1", questions_per_step=4, num_generations=8)
    args = grpo_args(
        dataclasses.replace(config, micro_batch_rollouts=8), Backend(False, False, False), Path("x")
    )
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (8, 8)  # 64 rollouts
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == args.generation_batch_size
    with pytest.raises(ValueError, match="micro-batches of 24"):
        grpo_args(
            dataclasses.replace(config, micro_batch_rollouts=24), Backend(False, False, False), Path("x")
        )
