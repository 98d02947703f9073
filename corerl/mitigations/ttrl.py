"""Test-time training (TTRL): train a label-free method on a small test set, then evaluate on it.

:func:`select_test_time_set` keeps at most 128 questions of a test set, label-free (arXiv
2603.08660 finds sets of <= 128 questions do not collapse). ``corerl train --test-time-training``
applies it, and scores the set before and after training, through ``corerl.mitigations.hooks``
(which states this recipe's departures from TTRL's).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

TTRL_MAX_QUESTIONS = 128


def select_test_time_set(
    dataset: datasets.Dataset, *, max_questions: int = TTRL_MAX_QUESTIONS, seed: int = 0
) -> datasets.Dataset:
    """At most ``max_questions`` rows of a test set (a seeded sample, original order) to train on.

    Train a label-free method on the result and evaluate on the same rows, as TTRL does. The
    ``answer`` column stays for evaluation and oracle monitoring; label-free rewards never read it.
    """
    if max_questions < 1:
        raise ValueError(f"max_questions must be >= 1, got {max_questions}")
    if max_questions > TTRL_MAX_QUESTIONS:
        logger.warning(
            "test-time training on %d questions: sets above %d tend to collapse (arXiv 2603.08660)",
            max_questions,
            TTRL_MAX_QUESTIONS,
        )
    if len(dataset) <= max_questions:
        return dataset
    return dataset.select(sorted(random.Random(seed).sample(range(len(dataset)), max_questions)))
