"""Co-rewarding-I on the data side: two views per question, kept together in one generation batch.

``expand_views`` turns each question into two consecutive prompts, the original and its rephrasing,
sharing ``id`` and tagged ``view``. ``PairRepeatSampler`` is TRL's ``RepeatSampler`` with the shuffle
applied to whole pairs, so both views of a question always land in the same generation batch (with
TRL's default shuffle they would be separated). Each view is its own prompt, so GRPO's per-prompt
group normalisation gives each view its own advantages and both are trained; the two views' losses
are summed in one batch (Co-rewarding-I, Sec. 3.1). ``cross_view_reward`` then scores each view
against the other view's majority answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset

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
                f"co-rewarding-1 needs whole pairs: batch of {batch_size} prompts, {len(data_source)} rows"
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
