"""Co-rewarding-I's loss: one token-mean per view, summed (official dp_actor.py), not one over both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset

from corerl.config import make_config
from corerl.engine.pairs import VIEW_INDEX, VIEW_TOKENS, ViewLossMixin, rows_of
from corerl.engine.run import prepare_run

PROMPT_LENGTH = 3
ORIGINAL = [(1.0, 4), (-0.5, 2)]  # (advantage, completion length) of the original view's rollouts


class _TokenSumLoss:
    """Stands in for TRL's dapo loss: sum over tokens of (weight x mask) / num_items_in_batch."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return (inputs["weight"] * inputs["completion_mask"]).sum() / inputs["num_items_in_batch"]


class _Split(ViewLossMixin, _TokenSumLoss):
    pass


def test_split_loss_is_the_sum_of_one_token_mean_per_view() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.float32)
    inputs = {
        "completion_mask": mask,
        "weight": torch.tensor([[2.0, 2.0, 9.0], [5.0, 9.0, 9.0], [1.0, 1.0, 4.0]]),
        "num_items_in_batch": torch.tensor(6.0),
        VIEW_INDEX: torch.tensor([0, 0, 1]),
        VIEW_TOKENS: torch.tensor([3.0, 3.0, 3.0]),
    }
    loss = _Split().compute_loss(None, inputs)
    assert float(loss) == pytest.approx((2 + 2 + 5) / 3 + (1 + 1 + 4) / 3)
    # Without the view tags the loss is TRL's: one token-mean over both views.
    plain = {key: value for key, value in inputs.items() if key not in (VIEW_INDEX, VIEW_TOKENS)}
    assert float(_Split().compute_loss(None, plain)) == pytest.approx((9 + 6) / 6)


def test_rows_of_keeps_scalars_and_indexes_rows() -> None:
    part = rows_of(
        {"x": torch.arange(6).view(3, 2), "n": torch.tensor(4), "l": ["a", "b", "c"]}, torch.tensor([2])
    )
    assert part["x"].tolist() == [[4, 5]] and int(part["n"]) == 4 and part["l"] == ["c"]


@pytest.fixture(scope="module")
def trainer(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real co-rewarding-1 trainer (trl 1.14.2) on the tiny model, never trained: only its loss is used."""
    config = make_config(
        "tiny",
        method="co-rewarding-1",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path_factory.mktemp("cr1")),
        questions_per_step=1,
        num_generations=2,
        max_completion_length=12,
        progress=False,
    )
    data = Dataset.from_dict({"id": ["a"], "question": ["1 + 1?"], "rephrased": ["One plus one?"]})
    run = prepare_run(config, dataset=data)
    run.trainer.model.train()
    run.trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which never runs here
    return run.trainer


def _batch(rephrased: list[tuple[float, int]], *, tag_views: bool) -> dict[str, torch.Tensor]:
    """Two original rollouts (ORIGINAL) and the given rephrased ones, as TRL's training batch."""
    rows = ORIGINAL + rephrased
    width = max(length for _, length in rows)
    generator = torch.Generator().manual_seed(0)
    completion_ids = torch.randint(5, 100, (len(rows), width), generator=generator)
    completion_mask = torch.tensor([[1] * n + [0] * (width - n) for _, n in rows])
    views = torch.tensor([0] * len(ORIGINAL) + [1] * len(rephrased))
    batch = {
        "prompt_ids": torch.randint(5, 100, (len(rows), PROMPT_LENGTH), generator=generator),
        "prompt_mask": torch.ones(len(rows), PROMPT_LENGTH, dtype=torch.long),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.tensor([advantage for advantage, _ in rows]),
        "num_items_in_batch": completion_mask.sum(),
    }
    if tag_views:
        tokens = torch.stack([completion_mask[views == v].sum() for v in (0, 1)]).float()
        batch[VIEW_INDEX], batch[VIEW_TOKENS] = views, tokens[views]
    return batch


def _value(loss: torch.Tensor) -> float:
    return float(loss.detach())


def _expected(rows: list[tuple[float, int]]) -> float:
    """On-policy (ratio 1), beta 0: the token-mean of -advantage over the rows' tokens."""
    return -sum(advantage * length for advantage, length in rows) / sum(length for _, length in rows)


@pytest.mark.parametrize("length", [1, 3, 12])
def test_each_view_weight_is_independent_of_the_other_views_lengths(trainer, length: int) -> None:
    rephrased = [(0.5, length), (-1.0, 2)]
    loss = trainer.compute_loss(trainer.model, _batch(rephrased, tag_views=True))
    assert _value(loss) == pytest.approx(_expected(ORIGINAL) + _expected(rephrased), abs=1e-5)


def test_one_token_mean_over_both_views_would_depend_on_them(trainer) -> None:
    """The form the official code does not use: the original view's share shrinks as the other grows."""
    silent = [(0.0, 1), (0.0, 1)], [(0.0, 12), (0.0, 12)]  # rephrased rows with no advantage
    tagged = [_value(trainer.compute_loss(trainer.model, _batch(r, tag_views=True))) for r in silent]
    plain = [_value(trainer.compute_loss(trainer.model, _batch(r, tag_views=False))) for r in silent]
    assert tagged[0] == pytest.approx(tagged[1], abs=1e-6) == pytest.approx(_expected(ORIGINAL), abs=1e-5)
    assert plain[0] != pytest.approx(plain[1], abs=1e-3)


def test_rows_are_tagged_with_their_views_token_count(trainer) -> None:
    class _Base:
        accelerator = trainer.accelerator

        def _generate_and_score_completions(self, inputs):
            return {"completion_mask": torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]])}

    class _Tagger(ViewLossMixin, _Base):
        pass

    output = _Tagger()._generate_and_score_completions(
        [{"view": "original"}, {"view": "rephrased"}, {"view": "original"}]
    )
    assert output[VIEW_INDEX].tolist() == [0, 1, 0]
    assert output[VIEW_TOKENS].tolist() == [5.0, 1.0, 5.0]
