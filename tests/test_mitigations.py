"""corerl.mitigations: early stopping on a scripted validation curve, offline labels computed once,
the curriculum's exact fraction, the test-time training subset."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

import corerl.generation
from corerl.mitigations.early_stopping import EarlyStopping, accuracy_evaluator, split_validation
from corerl.mitigations.ttrl import select_test_time_set
from corerl.mitigations.votes import (
    OFFLINE_LABEL_COLUMN,
    OFFLINE_SHARE_COLUMN,
    base_model_votes,
    curriculum,
    offline_labels,
    select_easiest,
)

# ------------------------------------------------------------------------------- early stopping

SCRIPTED_SCORES = [0.1, 0.3, 0.5, 0.4, 0.45, 0.2, 0.9, 0.9]  # best at step 3, then 3 evaluations worse


class ScriptedScore:
    def __init__(self, scores: list[float]) -> None:
        self.scores = list(scores)
        self.calls = 0

    def __call__(self, model) -> float:
        self.calls += 1
        return self.scores[self.calls - 1]


def test_early_stopping_keeps_the_best_checkpoint_in_a_real_trainer(tiny_model_dir: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [{"input_ids": [5, 6, 7, 8], "labels": [5, 6, 7, 8]}] * 64
    callback = EarlyStopping(ScriptedScore(SCRIPTED_SCORES), eval_steps=1, patience=3)
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=20,
        per_device_train_batch_size=2,
        use_cpu=True,
        save_strategy="steps",
        save_steps=1,
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,
        logging_steps=100,
        learning_rate=1e-3,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), callbacks=[callback]
    )
    trainer.train()
    assert trainer.state.global_step == 6  # steps 4, 5, 6 did not beat 0.5: stopped after patience 3
    assert callback.best_step == 3 and callback.best_score == 0.5 and callback.stopped_at == 6
    assert callback.best_checkpoint == tmp_path / "run" / "checkpoint-3"
    # Rotation (save_total_limit=2) kept the best checkpoint next to the most recent one.
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    saved = json.loads((tmp_path / "run" / "early_stopping.json").read_text())
    assert [entry["score"] for entry in saved["history"]] == SCRIPTED_SCORES[:6]
    assert saved["best_checkpoint"].endswith("checkpoint-3")


def drive(callback: EarlyStopping, output_dir: Path, steps: range, start: int = 0):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(output_dir), report_to=[], use_cpu=True)
    state = TrainerState(global_step=start)
    callback.on_train_begin(args, state, TrainerControl())
    controls = {}
    for step in steps:
        state.global_step = step
        control = TrainerControl()
        callback.on_step_end(args, state, control, model=object())
        controls[step] = control
        if control.should_training_stop:
            break
    return state, controls


def test_early_stopping_every_k_steps_and_min_delta(tmp_path: Path):
    score = ScriptedScore([0.2, 0.25, 0.21, 0.6])
    callback = EarlyStopping(score, eval_steps=5, patience=2, min_delta=0.1)
    state, controls = drive(callback, tmp_path, range(1, 21))
    assert score.calls == 3  # steps 5, 10, 15; stopped at 15
    assert controls[5].should_save and not controls[10].should_save  # +0.05 is within min_delta
    assert controls[15].should_training_stop and max(controls) == 15
    assert callback.best_step == 5 and state.best_global_step == 5


def test_early_stopping_resumes_its_history(tmp_path: Path):
    first = EarlyStopping(ScriptedScore([0.1, 0.5, 0.4, 0.3]), eval_steps=1, patience=3)
    drive(first, tmp_path, range(1, 5))
    # Resumed from checkpoint-3: the evaluation at step 4 happened after it and is dropped.
    resumed = EarlyStopping(ScriptedScore([0.35, 0.3]), eval_steps=1, patience=3)
    state, controls = drive(resumed, tmp_path, range(4, 6), start=3)
    assert [entry["step"] for entry in resumed.history] == [1, 2, 3, 4, 5]
    assert resumed.best_step == 2 and controls[5].should_training_stop
    fresh = EarlyStopping(ScriptedScore([0.7]), eval_steps=1)
    drive(fresh, tmp_path, range(1, 2))  # a new run (step 0) ignores an old history
    assert fresh.history == [{"step": 1, "score": 0.7}]


def test_split_validation():
    dataset = datasets.Dataset.from_list(
        [{"id": str(i), "question": f"q{i}", "answer": str(i)} for i in range(300)]
    )
    train, validation = split_validation(dataset, seed=1)
    assert len(validation) == 3 and len(train) == 297
    assert set(train["id"]) | set(validation["id"]) == set(dataset["id"])
    assert split_validation(dataset, seed=1)[1]["id"] == validation["id"]
    assert split_validation(dataset, seed=2)[1]["id"] != validation["id"]
    assert len(split_validation(dataset.select(range(10)))[1]) == 1  # at least one question
    with pytest.raises(ValueError, match="fraction"):
        split_validation(dataset, fraction=0)


def scripted_generate(answers: dict[str, list[str]], log: list[list[str]]):
    """Completions per question (matched by substring of the prompt), as \\boxed answers."""

    def fake_generate(model, tokenizer, prompts, *, n, **options):
        texts = [p if isinstance(p, str) else p[-1]["content"] for p in prompts]
        log.append(texts)
        return [
            [
                f"\\boxed{{{a}}}" if a else "no answer"
                for a in next(v for q, v in answers.items() if q in t)[:n]
            ]
            for t in texts
        ]

    return fake_generate


def test_accuracy_evaluator_scores_the_labelled_slice(monkeypatch: pytest.MonkeyPatch):
    log: list[list[str]] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate({"qa": ["1"], "qb": ["9"]}, log))
    validation = datasets.Dataset.from_list(
        [{"question": "qa", "answer": "1"}, {"question": "qb", "answer": "2"}]
    )

    class Tokenizer:
        chat_template = None

    assert accuracy_evaluator(validation, Tokenizer(), prompt="{question}")(object()) == 0.5
    assert log == [["qa", "qb"]]


# ------------------------------------------------------------------------------- offline labels

QUESTIONS = {
    "q0": ["4", "4", "5", ""],
    "q1": ["", "", "", ""],
    "q2": ["7", "8", "8", "8"],
    "q3": ["1", "2", "3", "1"],
}


def unlabelled_dataset() -> datasets.Dataset:
    # No answer column at all: the labelling must not need ground truth.
    return datasets.Dataset.from_list([{"id": q, "question": f"solve {q}"} for q in QUESTIONS])


class Tokenizer:
    chat_template = None


def test_offline_labels_are_voted_once_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    log: list[list[str]] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate(QUESTIONS, log))
    path = tmp_path / "labels.json"
    labelled = offline_labels(object(), Tokenizer(), unlabelled_dataset(), path, k=4, prompt="{question}")
    assert labelled["id"] == ["q0", "q2", "q3"]  # q1: nobody answered, dropped
    assert labelled[OFFLINE_LABEL_COLUMN] == ["4", "8", "1"]
    assert labelled[OFFLINE_SHARE_COLUMN] == [2 / 3, 0.75, 0.5]  # count / parseable (SRT)
    assert len(log) == 1 and path.is_file()
    # A resumed run: the file is read, nothing is generated, the model is not even needed.
    again = offline_labels(None, Tokenizer(), unlabelled_dataset(), path, k=4, prompt="{question}")
    assert again.to_list() == labelled.to_list() and len(log) == 1
    kept = offline_labels(None, Tokenizer(), unlabelled_dataset(), path, k=4, drop_unlabelled=False)
    assert kept[OFFLINE_LABEL_COLUMN] == ["4", None, "8", "1"]
    with pytest.raises(ValueError, match="made with"):
        offline_labels(None, Tokenizer(), unlabelled_dataset(), path, k=8)
    other = datasets.Dataset.from_list([{"id": "x", "question": "solve q0"}])
    with pytest.raises(ValueError, match="another dataset"):
        offline_labels(None, Tokenizer(), other, path, k=4)


def test_interrupted_labelling_resumes_where_it_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    log: list[list[str]] = []
    working = scripted_generate(QUESTIONS, log)

    def killed_on_second_chunk(*args, **kwargs):
        if log:
            raise KeyboardInterrupt
        return working(*args, **kwargs)

    path = tmp_path / "votes.json"
    monkeypatch.setattr(corerl.generation, "generate", killed_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        base_model_votes(
            object(), Tokenizer(), unlabelled_dataset(), path, k=4, chunk_size=2, prompt="{question}"
        )
    assert [vote["id"] for vote in json.loads(path.read_text())["votes"]] == ["q0", "q1"]
    monkeypatch.setattr(corerl.generation, "generate", working)
    votes = base_model_votes(
        object(), Tokenizer(), unlabelled_dataset(), path, k=4, chunk_size=2, prompt="{question}"
    )
    assert log == [["solve q0", "solve q1"], ["solve q2", "solve q3"]]  # only the missing chunk
    assert [v["label"] for v in votes] == ["4", None, "8", "1"] and [v["valid"] for v in votes] == [
        3,
        0,
        4,
        4,
    ]


def test_offline_labels_with_a_real_tiny_model(tiny_model_dir: Path, tmp_path: Path):
    from corerl.generation import load_model

    model, tokenizer = load_model(tiny_model_dir, device="cpu", backend="hf")
    dataset = unlabelled_dataset()
    votes = base_model_votes(
        model, tokenizer, dataset, tmp_path / "v.json", k=2, max_new_tokens=4, progress=False
    )
    assert [v["id"] for v in votes] == list(QUESTIONS)
    assert all(0.0 <= v["share"] <= 1.0 and 0 <= v["valid"] <= 2 for v in votes)
    assert base_model_votes(None, tokenizer, dataset, tmp_path / "v.json", k=2, max_new_tokens=4) == votes


# ------------------------------------------------------------------------------- curriculum


@pytest.mark.parametrize(("rows", "kept"), [(9, 3), (10, 3), (11, 4), (30, 10), (1, 1), (2, 1)])
def test_curriculum_keeps_exactly_the_requested_fraction(rows: int, kept: int):
    dataset = datasets.Dataset.from_list([{"id": str(i)} for i in range(rows)])
    shares = [(i * 7 % rows) / rows for i in range(rows)]
    easiest = select_easiest(dataset, shares)
    assert len(easiest) == kept
    threshold = sorted(shares, reverse=True)[kept - 1]
    assert all(shares[int(i)] >= threshold for i in easiest["id"])
    assert easiest["id"] == sorted(easiest["id"], key=int)  # original order kept


def test_curriculum_ranks_by_base_model_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    log: list[list[str]] = []
    shares = {"q0": 2, "q1": 5, "q2": 3, "q3": 5, "q4": 1, "q5": 4}  # answers agreeing out of 6
    answers = {q: ["1"] * agree + [str(10 + j) for j in range(6 - agree)] for q, agree in shares.items()}
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate(answers, log))
    dataset = datasets.Dataset.from_list([{"id": q, "question": f"solve {q}"} for q in shares])
    easy = curriculum(
        object(), Tokenizer(), dataset, tmp_path / "c.json", fraction=0.5, k=6, prompt="{question}"
    )
    assert easy["id"] == ["q1", "q3", "q5"]
    assert easy[OFFLINE_SHARE_COLUMN] == pytest.approx([5 / 6, 5 / 6, 4 / 6])
    third = curriculum(None, Tokenizer(), dataset, tmp_path / "c.json", k=6)  # cached: no model needed
    assert third["id"] == ["q1", "q3"] and len(log) == 1
    with pytest.raises(ValueError, match="fraction"):
        select_easiest(dataset, [0.0] * 6, fraction=0)


def test_curriculum_ranks_by_share_of_parseable_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """SRT's code: majority count / parseable answers, so unanswered samples do not lower a question's rank."""
    answers = {
        "qa": ["1", "1", "1", "", "", "", "", ""],  # 3 of 3 parseable agree (3/8 of all samples)
        "qb": ["1", "1", "1", "1", "1", "2", "3", "4"],  # 5 of 8
        "qc": ["1", "2", "", "", "", "", "", ""],  # 1 of 2
    }
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate(answers, []))
    dataset = datasets.Dataset.from_list([{"id": q, "question": f"solve {q}"} for q in answers])
    easy = curriculum(
        object(), Tokenizer(), dataset, tmp_path / "c.json", fraction=2 / 3, k=8, prompt="{question}"
    )
    assert easy["id"] == ["qa", "qb"]
    assert easy[OFFLINE_SHARE_COLUMN] == pytest.approx([1.0, 5 / 8])


# ------------------------------------------------------------------------------- test-time training


def test_test_time_training_set():
    big = datasets.Dataset.from_list([{"id": str(i), "question": "q", "answer": "1"} for i in range(500)])
    chosen = select_test_time_set(big, seed=3)
    assert len(chosen) == 128 and len(set(chosen["id"])) == 128
    assert chosen["id"] == sorted(chosen["id"], key=int)
    assert select_test_time_set(big, seed=3)["id"] == chosen["id"]
    small = big.select(range(30))
    assert select_test_time_set(small)["id"] == small["id"]
    assert len(select_test_time_set(big, max_questions=10)) == 10
