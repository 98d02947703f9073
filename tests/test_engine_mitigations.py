"""The mitigations as ``corerl train`` options, without a training run: row selection, base-model votes
(scripted generations), label-freedom, the CLI flags, the ``truncated`` sample column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

import corerl.generation
from corerl.config import MATH_PROMPT, ORGANISM_PROMPT, make_config
from corerl.engine.dataset import select_rows
from corerl.engine.monitor import MonitoredReward
from corerl.mitigations.hooks import add_base_model_votes

# Per question: the base model's scripted answers (8 samples); shares 6/8, 2/8, 8/8, 4/8, 3/8, 5/8.
ANSWERS = {
    f"q{i}": [str(i)] * agree + [str(100 + j) for j in range(8 - agree)]
    for i, agree in enumerate([6, 2, 8, 4, 3, 5])
}


def questions(answer: str | None = "truth") -> Dataset:
    rows = [{"id": qid, "question": f"solve {qid}"} for qid in ANSWERS]
    if answer is not None:
        rows = [{**row, "answer": f"{answer}-{row['id']}"} for row in rows]
    return Dataset.from_list(rows)


class Tokenizer:
    chat_template = "{{ messages }}"


def scripted(log: list[dict]):
    def fake_generate(model, tokenizer, prompts, *, n, **options):
        log.append({"prompts": list(prompts), "n": n, **options})
        texts = [p if isinstance(p, str) else p[-1]["content"] for p in prompts]
        return [
            [f"\\boxed{{{a}}}" for a in next(v for q, v in ANSWERS.items() if f"solve {q}" in t)[:n]]
            for t in texts
        ]

    return fake_generate


def vote(config, dataset: Dataset, out: Path) -> Dataset:
    rows, _ = select_rows(config, dataset)
    return add_base_model_votes(rows, config, object(), Tokenizer(), out)


def test_curriculum_and_offline_labels_never_read_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log: list[dict] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted(log))
    config = make_config(
        "tiny",
        offline_labels=True,
        curriculum_fraction=0.5,
        curriculum_samples=8,
        questions_per_step=2,
        seed=5,
    )
    results = [
        vote(config, data, tmp_path / name)
        for name, data in [("truth", questions()), ("changed", questions("other")), ("none", questions(None))]
    ]
    kept = [(row["id"], row["offline_label"], row["offline_label_share"]) for row in results[0]]
    assert [r[0] for r in kept] == ["q0", "q2", "q5"]  # the easiest half by majority share, in order
    assert [r[1] for r in kept] == ["0", "2", "5"]
    assert all(
        [(row["id"], row["offline_label"], row["offline_label_share"]) for row in result] == kept
        for result in results[1:]
    )
    # Per run: the curriculum pass (8 samples) then the offline-label pass (8) on the kept questions.
    assert [(len(call["prompts"]), call["n"]) for call in log] == [(6, 8), (3, 8)] * 3
    assert all(call["seed"] == 5 and call["temperature"] == 1.0 for call in log)
    assert log[0]["prompts"][0] == ORGANISM_PROMPT.replace("{question}", "solve q0")  # the run's prompt
    assert (tmp_path / "none" / "offline_labels.json").is_file()
    assert (tmp_path / "none" / "curriculum_votes.json").is_file()


def test_votes_use_the_math_chat_prompt_on_gpu_profiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log: list[dict] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted(log))
    config = make_config("t4", model="unused", curriculum_fraction=1 / 3)
    easy = vote(config, questions(), tmp_path)
    assert easy["id"] == ["q0", "q2"]  # round(6 / 3) = 2 questions
    assert (
        log[0]["n"] == config.curriculum_samples and log[0]["max_new_tokens"] == config.max_completion_length
    )
    assert log[0]["prompts"][0] == [
        {"role": "user", "content": MATH_PROMPT.replace("{question}", "solve q0")}
    ]


def test_gpu_profiles_vote_only_for_the_questions_a_run_sees(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log: list[dict] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted(log))
    config = make_config("t4", model="unused", offline_labels=True, max_steps=1, questions_per_step=2)
    labelled = vote(config, questions(), tmp_path / "offline")
    assert len(labelled) == 2 and sum(len(call["prompts"]) for call in log) == 2  # 1 step x 2 questions
    assert vote(config, questions(answer=None), tmp_path / "again")["id"] == labelled["id"]  # label-free
    log.clear()
    curriculum = make_config("t4", model="unused", curriculum_fraction=0.5, max_steps=1, questions_per_step=2)
    assert len(vote(curriculum, questions(), tmp_path / "curriculum")) == 2  # the easier half of 4 voted
    assert sum(len(call["prompts"]) for call in log) == 4
    assert not make_config("tiny").votes_for_seen_questions  # the organism votes on its whole set


def test_test_time_training_keeps_at_most_128_questions_whatever_the_answers() -> None:
    big = Dataset.from_list([{"id": str(i), "question": f"q{i}", "answer": str(i)} for i in range(300)])
    config = make_config("tiny", test_time_training=True, seed=2)
    chosen, validation = select_rows(config, big)
    assert len(chosen) == 128 and validation is None and len(set(chosen["id"])) == 128
    assert select_rows(config, big.remove_columns("answer"))[0]["id"] == chosen["id"]
    changed = big.map(lambda row: {"answer": "x"})
    assert select_rows(config, changed)[0]["id"] == chosen["id"]
    assert select_rows(make_config("tiny", test_time_training=True, seed=3), big)[0]["id"] != chosen["id"]
    ten = make_config("tiny", test_time_training=True, test_time_questions=10)
    assert len(select_rows(ten, big)[0]) == 10
    with pytest.raises(ValueError, match=r"test_time_questions must be in \[1, 128\]"):
        make_config("tiny", test_time_training=True, test_time_questions=129)


def test_early_stopping_removes_the_validation_slice_from_training() -> None:
    data = Dataset.from_list([{"id": str(i), "question": f"q{i}", "answer": str(i)} for i in range(200)])
    config = make_config("tiny", early_stopping=True, validation_fraction=0.05, seed=1)
    train, validation = select_rows(config, data)
    assert len(validation) == 10 and len(train) == 190
    train_ids, validation_ids = set(train["id"]), set(validation["id"])
    assert not train_ids & validation_ids and train_ids | validation_ids == set(data["id"])
    assert select_rows(config, data)[1]["id"] == validation["id"]
    other_seed = make_config("tiny", early_stopping=True, validation_fraction=0.05, seed=2)
    assert select_rows(other_seed, data)[1]["id"] != validation["id"]
    with pytest.raises(ValueError, match="early stopping scores a labelled validation slice"):
        select_rows(config, data.remove_columns("answer"))
    no_labels = select_rows(make_config("tiny"), data.remove_columns("answer"))
    assert no_labels[1] is None and len(no_labels[0]) == 200  # without early stopping no label is needed


def test_offline_labels_method_without_labels_names_the_flag() -> None:
    with pytest.raises(ValueError, match="offline-labels needs a column 'offline_label'.*--offline-labels"):
        select_rows(make_config("tiny", method="offline-labels"), questions())


def test_samples_record_truncation() -> None:
    monitor = MonitoredReward("majority-vote", stop_token_ids=frozenset({2}), max_completion_length=3)
    completions = [r"\boxed{1}", r"\boxed{1}", "cut", "short"]
    monitor(["p"] * 4, completions, completion_ids=[[5, 6, 2], [5, 6, 7], [5, 6, 7], [5]], id=["a"] * 4)
    assert [row["truncated"] for row in monitor.samples] == [False, True, True, False]
    unknown = MonitoredReward("majority-vote")
    unknown(["p"], ["x"], id=["a"])
    assert unknown.samples[0]["truncated"] is None


def test_cli_flags_set_the_config_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import corerl.engine
    from corerl.cli import main

    seen = []
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "model.safetensors").write_bytes(b"")  # a finished run: exit status 0
    monkeypatch.setattr(corerl.engine, "train", lambda config, resume=False: seen.append(config) or tmp_path)
    flags = ["--early-stopping", "--validation-fraction", "0.02", "--offline-labels", "--curriculum", "0.33"]
    assert main(["train", *flags, "--out", str(tmp_path)]) == 0
    config = seen[-1]
    assert config.early_stopping and config.validation_fraction == 0.02 and config.offline_labels
    assert config.method == "offline-labels" and config.curriculum_fraction == 0.33
    assert not config.test_time_training
    yaml_path = tmp_path / "ttt.yaml"
    yaml_path.write_text(
        json.dumps({"method": "entropy", "test_time_training": True, "data": "organism-test"})
    )
    assert main(["train", "--config", str(yaml_path), "--test-time-questions", "64"]) == 0
    config = seen[-1]
    assert (config.method, config.test_time_training, config.test_time_questions) == ("entropy", True, 64)
    assert main(["train", "--config", str(yaml_path)]) == 0 and not seen[-1].early_stopping


def test_early_stopping_scores_a_short_run_at_its_last_step() -> None:
    from corerl.mitigations.hooks import early_stopping_callback

    short = make_config("tiny", early_stopping=True, max_steps=3)
    callback = early_stopping_callback(short, questions(), Tokenizer())
    assert (callback.eval_steps, callback.patience) == (3, 3)
    longer = make_config("tiny", early_stopping=True, early_stopping_eval_steps=4, early_stopping_patience=2)
    callback = early_stopping_callback(longer, questions(), Tokenizer())
    assert (callback.eval_steps, callback.patience) == (4, 2)
