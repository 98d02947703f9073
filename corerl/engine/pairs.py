"""Co-rewarding-I on the data side: two views per question, kept together in one generation batch.

Co-rewarding-III (``co-rewarding-3``) uses the same views, sampler and loss, with the EMA teacher of
``corerl.engine.teacher`` on top (``corerl.rewards.VIEW_METHODS``).

``expand_views`` turns each question into two consecutive prompts, the original and its rephrasing,
sharing ``id`` and tagged ``view``. ``PairRepeatSampler`` is TRL's ``RepeatSampler`` with the shuffle
applied to whole pairs, so both views of a question always land in the same generation batch (with
TRL's default shuffle they would be separated). Each view is its own prompt, so GRPO's per-prompt
group normalisation gives each view its own advantages and both are trained. ``cross_view_reward``
then scores each view against the other view's majority answer.

The loss (``ViewLossMixin``) follows the official code (``dp_actor.py``): (policy gradient + KL)
token-mean over the original view's rollouts PLUS the same over the rephrased view's, two token-means
summed, so each view's weight does not depend on how long the other view's completions are. TRL's
own loss would be one token-mean over both views' tokens together. Each token-mean runs over the
view's tokens in the whole generation batch (all processes), as TRL's ``dapo`` normalises by the
generation batch; ``bnpo`` gives a token-mean per micro-batch and view instead. Departure: on
several processes (torchrun) the loss is TRL's one token-mean over both views, because one forward
pass per view desynchronises DDP (a warning says so).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sized
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

VIEWS = ("original", "rephrased")


def expand_views(dataset: Dataset) -> Dataset:
    """Rows ``2i`` / ``2i+1`` = question ``i`` as written / rephrased; ``question`` holds the view's text.

    >>> from datasets import Dataset
    >>> rows = expand_views(Dataset.from_dict({"id": ["a"], "question": ["Q"], "rephrased": ["Q'"]}))
    >>> [(r["id"], r["view"], r["question"]) for r in rows]
    [('a', 'original', 'Q'), ('a', 'rephrased', "Q'")]
    """

    def both_views(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {key: [] for key in batch}
        out["view"] = []
        for index in range(len(batch["question"])):
            for view in VIEWS:
                for key in batch:
                    out[key].append(batch[key][index])
                out["view"].append(view)
                if view == "rephrased":
                    out["question"][-1] = batch["rephrased"][index]
        return out

    return dataset.map(both_views, batched=True, remove_columns=dataset.column_names)


class PairRepeatSampler:
    """``RepeatSampler`` semantics (trl 1.14.2) over pairs ``(2i, 2i+1)`` shuffled as units.

    Yields each index ``mini_repeat_count`` times in a row, in chunks of ``batch_size`` prompts (an
    even number, so whole pairs), each chunk ``repeat_count`` times; incomplete chunks are dropped.

    >>> list(PairRepeatSampler(range(4), mini_repeat_count=2, batch_size=2, shuffle=False))
    [0, 0, 1, 1, 2, 2, 3, 3]
    """

    def __init__(
        self,
        data_source: Sized,
        mini_repeat_count: int,
        batch_size: int = 2,
        repeat_count: int = 1,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> None:
        import torch

        if batch_size % 2 or len(data_source) % 2:
            raise ValueError(
                f"paired views need whole pairs: batch of {batch_size} prompts, {len(data_source)} rows"
            )
        self.num_pairs = len(data_source) // 2
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.shuffle = shuffle
        self.seed = seed
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def __iter__(self) -> Iterator[int]:
        import torch

        pairs = (
            torch.randperm(self.num_pairs, generator=self.generator).tolist()
            if self.shuffle
            else list(range(self.num_pairs))
        )
        indexes = [index for pair in pairs for index in (2 * pair, 2 * pair + 1)]
        chunks = [indexes[i : i + self.batch_size] for i in range(0, len(indexes), self.batch_size)]
        for chunk in chunks:
            if len(chunk) < self.batch_size:
                continue
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        prompts = (2 * self.num_pairs // self.batch_size) * self.batch_size
        return prompts * self.mini_repeat_count * self.repeat_count


class PairSamplerMixin:
    """Replaces ``GRPOTrainer._get_train_sampler(self, dataset=None)`` (trl 1.14.2) with the pair sampler."""

    def _get_train_sampler(self, dataset=None):
        if dataset is None:
            dataset = self.train_dataset
        return PairRepeatSampler(
            data_source=dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
        )


VIEW_INDEX, VIEW_TOKENS = "view_index", "view_tokens"  # per-row tensors added to TRL's batch


def rows_of(inputs: dict[str, Any], rows: Any) -> dict[str, Any]:
    """The rows ``rows`` (an index tensor) of a TRL training batch: per-row tensors and lists are
    indexed, scalars (``num_items_in_batch``) and None kept.

    >>> import torch
    >>> part = rows_of({"a": torch.arange(4), "n": torch.tensor(9), "b": None}, torch.tensor([1, 3]))
    >>> part["a"].tolist(), int(part["n"]), part["b"]
    ([1, 3], 9, None)
    """
    part: dict[str, Any] = {}
    for key, value in inputs.items():
        if value is None or (hasattr(value, "ndim") and value.ndim == 0):
            part[key] = value
        elif isinstance(value, list):
            part[key] = [value[int(i)] for i in rows]
        else:
            part[key] = value[rows.to(value.device)]
    return part


class ViewLossMixin:
    """Co-rewarding-I's loss: one token-mean per view, summed (official ``dp_actor.py``).

    Overrides ``_generate_and_score_completions(self, inputs)`` (trl 1.14.2, private: tags each row
    with its view and the view's token count over the whole generation batch) and the public
    ``compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None)`` (calls TRL's
    loss once per view, with the view's token count as the normaliser, and adds the two). Going
    through the public ``compute_loss`` keeps the split when Unsloth replaces TRL's loss computation.
    """

    def _generate_and_score_completions(self, inputs):
        import torch

        output = super()._generate_and_score_completions(inputs)
        if self.accelerator.num_processes > 1:
            # Departure: a per-view loss runs one forward pass per view of a micro-batch, and two
            # forward passes before one backward desynchronise DDP's collectives across ranks. On
            # several processes Co-rewarding-I therefore keeps TRL's one token-mean over both views.
            _warn_single_token_mean()
            return output
        mask = output["completion_mask"]
        if output.get("tool_mask") is not None:
            mask = mask * output["tool_mask"]
        views = torch.tensor([VIEWS.index(row["view"]) for row in inputs], device=mask.device)
        local = torch.stack([mask[views == v].sum() for v in range(len(VIEWS))]).to(torch.float32)
        totals = self.accelerator.gather(local).view(-1, len(VIEWS)).sum(0)  # all processes' tokens
        output[VIEW_INDEX] = views
        output[VIEW_TOKENS] = totals[views]
        return output

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        views = inputs.get(VIEW_INDEX)
        if views is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = None
        for view in views.unique(sorted=True).tolist():  # a micro-batch may hold one view only
            rows = (views == view).nonzero(as_tuple=True)[0]
            part = rows_of(inputs, rows)
            part["num_items_in_batch"] = inputs[VIEW_TOKENS][rows[0]]  # this view's token count
            term = super().compute_loss(model, part, return_outputs, num_items_in_batch)
            loss = term if loss is None else loss + term  # Co-rewarding-I: L = L_original + L_rephrased
        return loss


@functools.cache
def _warn_single_token_mean() -> None:
    logger.warning(
        "co-rewarding-1/-3 on several processes: one token-mean over both views (TRL's loss), not the official "
        "sum of one token-mean per view (corerl.engine.pairs)"
    )
