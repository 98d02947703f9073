"""The training sampler's shuffle as a function of (seed, epoch), so that a resumed run keeps its data order.

TRL's ``RepeatSampler`` (trl 1.14.2) and our ``PairRepeatSampler`` draw one ``torch.randperm`` per
epoch from a generator seeded once, so epoch ``e`` uses the ``e+1``-th permutation of that
generator. A run resumed in epoch ``e > 0`` builds a fresh sampler whose generator is back at its
seed: it replayed epoch 0's order and trained other questions than the uninterrupted run. The HF
Trainer calls ``set_epoch(epoch)`` on the sampler before each epoch (the resumed one included), so
:class:`ResumableSampler` re-seeds the generator there and replays the ``epoch`` earlier
permutations: the order is exactly the uninterrupted run's, at every step of every epoch.

>>> from trl.trainer.utils import RepeatSampler
>>> sampler = RepeatSampler(range(4), mini_repeat_count=1, batch_size=2, seed=0)
>>> epochs = [list(sampler) for _ in range(3)]  # an uninterrupted run: one permutation per epoch
>>> resumed = ResumableSampler(RepeatSampler(range(4), mini_repeat_count=1, batch_size=2, seed=0))
>>> resumed.set_epoch(2)  # what the Trainer does when it resumes in the third epoch
>>> list(resumed) == epochs[2]
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class ResumableSampler:
    """A ``RepeatSampler``/``PairRepeatSampler`` (any sampler with ``generator``, ``seed``, ``shuffle``
    and one ``randperm`` of ``num_pairs`` or ``num_samples`` per ``__iter__``) plus ``set_epoch``."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.permutation_size = getattr(sampler, "num_pairs", None) or sampler.num_samples

    def __iter__(self) -> Iterator[int]:
        return iter(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Put the generator where an uninterrupted run has it at the start of ``epoch``."""
        import torch

        if not self.sampler.shuffle or self.sampler.seed is None:
            return
        self.sampler.generator.manual_seed(self.sampler.seed)
        for _ in range(epoch):  # the permutations of the epochs already trained
            torch.randperm(self.permutation_size, generator=self.sampler.generator)


class ResumableSamplerMixin:
    """Wraps ``GRPOTrainer._get_train_sampler(self, dataset=None)`` (trl 1.14.2; the pair sampler's
    for Co-rewarding-I) in :class:`ResumableSampler`."""

    def _get_train_sampler(self, dataset=None):
        return ResumableSampler(super()._get_train_sampler(dataset))
