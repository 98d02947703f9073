"""Engine pieces without a training run: pair sampler, EMA, signals from logits, monitoring, resume files."""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import Dataset

from corerl.engine.monitor import MonitoredReward, rollout_metrics, truncate_to_step
from corerl.engine.pairs import PairRepeatSampler, expand_views
from corerl.engine.signals import completion_signals, self_certainty, token_entropy
from corerl.engine.teacher import cosine_alpha, ema_update


@pytest.mark.parametrize("seed", range(5))
def test_pair_sampler_keeps_every_pair_in_one_generation_batch(seed: int) -> None:
    generations, prompts_per_batch, rows = 3, 6, 20
    sampler = PairRepeatSampler(
        range(rows), generations, batch_size=prompts_per_batch, repeat_count=2, seed=seed
    )
    indexes = list(sampler)
    assert len(indexes) == len(sampler) == (rows // prompts_per_batch) * prompts_per_batch * generations * 2
    batch_rows = prompts_per_batch * generations
    batches = [indexes[i : i + batch_rows] for i in range(0, len(indexes), batch_rows)]
    seen_pairs = set()
    for batch in batches:
        prompts = set(batch)
        assert len(prompts) == prompts_per_batch
        for index in prompts:
            assert index ^ 1 in prompts  # the twin view is in the same batch
            assert batch.count(index) == generations
            seen_pairs.add(index // 2)
        # each index's G copies are contiguous (TRL's RepeatSampler layout)
        assert all(batch[i] == batch[i - i % generations] for i in range(len(batch)))
    assert len(seen_pairs) == rows // prompts_per_batch * prompts_per_batch // 2


def test_pair_sampler_shuffles_pairs_with_its_seed() -> None:
    first = list(PairRepeatSampler(range(40), 1, batch_size=40, seed=0))
    assert first == list(PairRepeatSampler(range(40), 1, batch_size=40, seed=0))
    assert first != list(PairRepeatSampler(range(40), 1, batch_size=40, seed=1))
    assert first != list(range(40))
    with pytest.raises(ValueError, match="whole pairs"):
        PairRepeatSampler(range(8), 2, batch_size=3)


def test_expand_views_pairs_rows_and_keeps_columns() -> None:
    data = Dataset.from_dict(
        {"id": ["a", "b"], "question": ["Qa", "Qb"], "rephrased": ["Ra", "Rb"], "answer": ["1", "2"]}
    )
    rows = list(expand_views(data))
    assert [(r["id"], r["view"], r["question"], r["answer"]) for r in rows] == [
        ("a", "original", "Qa", "1"),
        ("a", "rephrased", "Ra", "1"),
        ("b", "original", "Qb", "2"),
        ("b", "rephrased", "Rb", "2"),
    ]


def test_ema_moves_teacher_by_exactly_alpha() -> None:
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(5, 3, generator=generator)
    policy = torch.randn(5, 3, generator=generator, requires_grad=True)
    before = teacher.clone()
    ema_update([(teacher, policy)], 0.01)
    assert torch.allclose(teacher, 0.99 * before + 0.01 * policy.detach(), atol=1e-7)
    assert torch.allclose(teacher - before, 0.01 * (policy.detach() - before), atol=1e-7)
    assert not teacher.requires_grad


def test_cosine_alpha_schedule() -> None:
    assert cosine_alpha(0, 10) == pytest.approx(0.01)
    assert cosine_alpha(10, 10) == pytest.approx(1e-5)
    assert cosine_alpha(5, 10) == pytest.approx(1e-5 + 0.5 * (0.01 - 1e-5))
    values = [cosine_alpha(step, 10) for step in range(11)]
    assert values == sorted(values, reverse=True)


class TableModel(torch.nn.Module):
    """Logits depend on the input token only: logits[token] = table[token], so positions are checkable."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table)

    def get_output_embeddings(self) -> torch.nn.Module:
        return torch.nn.Linear(1, self.table.shape[1])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        return type("Output", (), {"logits": self.table[input_ids]})()


def _hand_entropy(row: list[float]) -> float:
    z = max(row)
    weights = [math.exp(v - z) for v in row]
    total = sum(weights)
    return -sum(w / total * math.log(w / total) for w in weights)


def _hand_self_certainty(row: list[float]) -> float:
    # KL(U || p) = sum_j (1/V) log((1/V) / p_j)
    z = max(row)
    log_total = z + math.log(sum(math.exp(v - z) for v in row))
    return sum((1 / len(row)) * (math.log(1 / len(row)) - (v - log_total)) for v in row)


def test_entropy_and_self_certainty_match_hand_computation() -> None:
    table = torch.tensor(
        [
            [0.0, 1.0, 2.0, 3.0],
            [5.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 1.0],
            [0.5, -2.0, 1.5, 0.0],
            [0.0, 0.0, 9.0, 1.0],
        ]
    )
    model = TableModel(table)
    prompts = [[0, 1], [3]]
    completions = [[2, 4, 1], [0]]
    entropies, certainties = completion_signals(model, prompts, completions, pad_token_id=0, temperature=1.0)
    # completion token t is predicted by the logits at the previous position
    predictors = [[1, 2, 4], [3]]
    for row, previous in enumerate(predictors):
        rows = [table[token].tolist() for token in previous]
        assert entropies[row] == pytest.approx(sum(map(_hand_entropy, rows)) / len(rows), abs=1e-5)
        assert certainties[row] == pytest.approx(sum(map(_hand_self_certainty, rows)) / len(rows), abs=1e-5)
    scaled, _ = completion_signals(model, prompts, completions, pad_token_id=0, temperature=2.0)
    rows = [(table[token] / 2).tolist() for token in predictors[1]]
    assert scaled[1] == pytest.approx(_hand_entropy(rows[0]), abs=1e-5)


def test_signal_functions_on_extremes() -> None:
    uniform = torch.zeros(3, 7)
    assert torch.allclose(token_entropy(uniform), torch.full((3,), math.log(7)))
    assert torch.allclose(self_certainty(uniform), torch.zeros(3), atol=1e-6)
    peaked = torch.tensor([[100.0, 0.0, 0.0]])
    assert token_entropy(peaked).item() < 1e-6
    assert self_certainty(peaked).item() == pytest.approx(100.0 - 100.0 / 3 - math.log(3), abs=1e-4)


def test_monitored_reward_hides_ground_truth_from_label_free_methods() -> None:
    seen: list[set[str]] = []

    def spy(prompts, completions, **columns):
        seen.append(set(columns))
        return [1.0] * len(completions)

    columns = {
        "answer": ["2", "2"],
        "id": ["q", "q"],
        "question": ["Q", "Q"],
        "completion_ids": [[1], [1, 2]],
    }
    MonitoredReward("majority-vote", spy)(["p", "p"], [r"\boxed{2}", r"\boxed{3}"], **columns)
    MonitoredReward("entropy", spy)(
        ["p", "p"], [r"\boxed{2}", r"\boxed{3}"], token_entropy=[1.0, 3.0], **columns
    )
    monitor = MonitoredReward("ground-truth", spy)
    monitor(["p", "p"], [r"\boxed{2}", r"\boxed{3}"], **columns)
    assert "answer" not in seen[0] and "answer" not in seen[1]
    assert "answer" in seen[2]
    assert monitor.latest["oracle_accuracy"] == 0.5
    assert monitor.latest["reward_accuracy"] == 0.5  # rewards [1, 1] vs correct [1, 0]
    assert monitor.latest["completion_length"] == 1.5
    assert monitor.samples[1]["answer_extracted"] == "3" and monitor.samples[1]["ground_truth"] == "2"


def test_monitor_pseudo_label_accuracy_per_group_and_without_labels() -> None:
    prompts = ["a"] * 3 + ["b"] * 3
    completions = [r"\boxed{1}", r"\boxed{1}", r"\boxed{2}", r"\boxed{5}", r"\boxed{6}", r"\boxed{6}"]
    monitor = MonitoredReward("majority-vote")
    rewards = monitor(prompts, completions, answer=["1"] * 3 + ["5"] * 3, id=["a"] * 3 + ["b"] * 3)
    assert rewards == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert monitor.latest["pseudo_label_accuracy"] == 0.5  # group a voted 1 (right), group b voted 6 (wrong)
    assert monitor.latest["majority_share"] == pytest.approx(2 / 3)
    assert monitor.latest["distinct_answers"] == 2.0
    unlabelled = rollout_metrics("majority-vote", prompts, completions, rewards, None, None)
    assert unlabelled["oracle_accuracy"] is None and unlabelled["reward_accuracy"] is None
    continuous = rollout_metrics("entropy", prompts, completions, [-1.0] * 6, ["1"] * 6, None)
    assert continuous["reward_accuracy"] is None and continuous["oracle_accuracy"] == pytest.approx(2 / 6)


def test_monitor_figures_on_two_ranks_are_those_of_the_whole_batch(monkeypatch) -> None:
    """Rank 1 of 2 (gather faked): the rewards are its slice, every figure (reward_std included:
    the std over the whole generation batch, as TRL's ``reward_std``) is the one-process value."""
    import accelerate
    import accelerate.utils

    # Group "b" is split across the ranks; its vote (5) needs both halves.
    prompts = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    answers = ["1", "1", "1", "2", "7", "5", "5", "5", "3", "3", "3", "3"]
    completions = [rf"\boxed{{{answer}}}" for answer in answers]
    columns = {"id": list(prompts), "answer": ["5"] * 12}
    whole = MonitoredReward("majority-vote")
    rewards = whole(prompts, completions, **columns)
    assert rewards == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # Over the batch, not the mean of the groups' stds (0.433, 0.433, 0): sqrt(20/144) = 0.373.
    assert whole.latest["reward_std"] == pytest.approx(math.sqrt(20 / 144))
    # The per-group figure is that mean: (0.433 + 0.433 + 0) / 3.
    assert whole.latest["reward_group_std"] == pytest.approx(2 * math.sqrt(3 / 16) / 3)

    class RankOne:
        num_processes, process_index = 2, 1

    def gather_object(part):
        rank_zero = {"prompts": prompts[:6], "completions": completions[:6]}
        return [{**rank_zero, **{name: values[:6] for name, values in columns.items()}}, *part]

    monkeypatch.setattr(accelerate, "PartialState", RankOne)
    monkeypatch.setattr(accelerate.utils, "gather_object", gather_object)
    rank = MonitoredReward("majority-vote")
    assert rank(prompts[6:], completions[6:], **{name: v[6:] for name, v in columns.items()}) == rewards[6:]
    assert rank.latest == whole.latest


def test_truncate_to_step_drops_later_and_torn_lines(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "ti')
    kept = truncate_to_step(path, 3)
    assert [row["step"] for row in kept] == [1, 2, 3]
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]


# ------------------------------------------------------------ lengths against the context (issue 13.6)


def test_lengths_are_checked_against_the_models_context(tiny_model_dir, caplog) -> None:
    import dataclasses

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corerl.config import make_config
    from corerl.engine.lengths import check_lengths, prompt_token_counts

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert model.config.max_position_embeddings == 1024
    rows = Dataset.from_dict({"id": ["a", "b"], "question": ["1 + 1?", "2 + 2?"], "rephrased": ["x", "y"]})
    config = make_config("tiny", model=str(tiny_model_dir), max_completion_length=64, questions_per_step=1)
    assert check_lengths(config, model, tokenizer, rows)["id"] == ["a", "b"]  # fits
    with pytest.raises(
        ValueError, match="max_completion_length=100000 does not fit the limit of 1024 positions"
    ):
        check_lengths(make_config("tiny", max_completion_length=100_000), model, tokenizer, rows)
    huge = Dataset.from_dict(
        {"id": ["a", "big"], "question": ["1 + 1?", "7 " * 20_000], "rephrased": ["x", "y"]}
    )
    with caplog.at_level("WARNING", logger="corerl.engine.lengths"):
        assert check_lengths(config, model, tokenizer, huge)["id"] == ["a"]  # dropped and counted
    assert "training: 1 of 2 question(s) are longer than 960 tokens" in caplog.text
    assert "dropped (ids big)" in caplog.text
    with pytest.raises(ValueError, match=r"1 left, fewer than 2 \(questions_per_step\)"):
        check_lengths(dataclasses.replace(config, questions_per_step=2), model, tokenizer, huge)
    slice_ = check_lengths(
        config, model, tokenizer, huge, columns=["question"], minimum=1, purpose="the slice"
    )
    assert slice_["id"] == ["a"]
    long_view = Dataset.from_dict(
        {"id": ["a", "b"], "question": ["1 + 1?"] * 2, "rephrased": ["9 " * 5000, "x"]}
    )
    assert len(check_lengths(config, model, tokenizer, long_view)) == 2  # no prompt of majority voting
    co_rewarding = make_config(
        "tiny", model=str(tiny_model_dir), method="co-rewarding-1", questions_per_step=1
    )
    assert check_lengths(co_rewarding, model, tokenizer, long_view)["id"] == ["b"]  # either view too long
    longer = rows.add_item({"id": "c", "question": "1 + 1 + 1 + 1 + 1 + 1?", "rephrased": "z"})
    fits = max(
        prompt_token_counts(tokenizer, [config.format_prompt(q) for q in rows["question"]], config.chat)
    )
    capped = dataclasses.replace(config, max_prompt_length=fits)
    assert check_lengths(capped, model, tokenizer, longer)["id"] == ["a", "b"]  # max_prompt_length binds


def test_unsloths_max_seq_length_is_the_limit_in_force() -> None:
    """Unsloth truncates past max_seq_length = max_completion_length + max_prompt_length (1024 without)."""
    import dataclasses
    from types import SimpleNamespace

    from corerl.config import make_config
    from corerl.engine.lengths import sequence_limit, unsloth_max_seq_length

    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=40_960))  # Qwen3-1.7B's
    t4 = make_config("t4")
    assert unsloth_max_seq_length(t4) == t4.max_completion_length + t4.max_prompt_length == 1024
    assert sequence_limit(t4, model, unsloth=True)[0] == 1024
    assert sequence_limit(t4, model, unsloth=False)[0] == 40_960  # the PEFT fallback: the model's positions
    assert unsloth_max_seq_length(dataclasses.replace(t4, max_prompt_length=None)) == 512 + 1024


def test_prepare_run_refuses_a_completion_longer_than_the_context(tiny_model_dir, tmp_path) -> None:
    from datasets import Dataset

    from corerl.config import make_config
    from corerl.engine.run import prepare_run

    rows = Dataset.from_dict({"question": ["1 + 1?"] * 4, "answer": ["2"] * 4})
    config = make_config(
        "tiny", model=str(tiny_model_dir), output_dir=str(tmp_path / "run"), max_completion_length=5000
    )
    with pytest.raises(ValueError, match="max_completion_length=5000 does not fit"):
        prepare_run(config, dataset=rows)


def test_co_rewarding_1_drops_rows_without_a_rephrasing_before_the_model_loads(caplog) -> None:
    """Issue 13.4: empty ``rephrased`` crashed with a TypeError after the model had loaded."""
    from datasets import Dataset

    from corerl.config import make_config
    from corerl.data import DataError
    from corerl.engine.dataset import select_rows, trainer_dataset

    rows = Dataset.from_dict(
        {
            "id": ["a", "b", "c", "d", "e"],
            "question": ["q1", "q2", "q3", "q4", "q5"],
            "rephrased": ["r1", None, "r3", "  ", "r5"],
        }
    )
    config = make_config("tiny", method="co-rewarding-1", model="/nonexistent", questions_per_step=2)
    kept, _ = select_rows(config, rows)
    assert kept["id"] == ["a", "c", "e"]
    assert "dropped 2 of 5 questions whose 'rephrased' is empty (ids b, d)" in caplog.text
    assert trainer_dataset(config, kept)["question"] == ["q1", "r1", "q3", "r3", "q5", "r5"]
    with pytest.raises(DataError, match="has 3 questions, fewer than questions_per_step=4"):
        select_rows(make_config("tiny", method="co-rewarding-1", questions_per_step=4), rows)


def test_ground_truth_training_on_a_benchmark_warns(caplog) -> None:
    from corerl.config import make_config
    from corerl.engine.dataset import select_rows

    select_rows(make_config("tiny", method="ground-truth", data="organism-test", data_limit=8))
    assert "trains on the labels of 'organism-test', an evaluation benchmark" in caplog.text
    caplog.clear()
    select_rows(make_config("tiny", method="ground-truth", data="organism", data_limit=8))
    assert "evaluation benchmark" not in caplog.text


def test_chat_without_a_chat_template_is_refused_before_the_weights_load(tiny_model_dir, tmp_path) -> None:
    import json
    import shutil

    from corerl.config import make_config
    from corerl.engine.model import Backend, load_model

    plain = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    settings = json.loads((plain / "tokenizer_config.json").read_text())
    settings.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(settings))
    (plain / "model.safetensors").write_text("not weights")  # proves the check comes first
    cpu = Backend(cuda=False, unsloth=False, vllm=False)
    with pytest.raises(
        ValueError, match=r"chat: true but the tokenizer of .*no-template has no chat template"
    ):
        load_model(make_config("tiny", model=str(plain), chat=True), cpu)
