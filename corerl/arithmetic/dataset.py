"""Datasets of organism problems in the schema of the real datasets.

``make_dataset`` returns a ``datasets.Dataset`` with the columns every corerl dataset has (``id``,
``question``, ``rephrased``, ``answer``) plus what the organism knows about each problem:
``forms`` (all surface forms, in the order of ``corerl.arithmetic.task.FORMS``; ``question`` is the
``story`` form ``forms[0]`` and ``rephrased`` the ``story-backwards`` form, which states the numbers in
the reverse order),
``expression``, ``operations`` and ``num_ops``. ``answer`` is a string, as in the real data.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.arithmetic.task import (
    DEFAULT_DIFFICULTY,
    REPHRASED_FORM,
    SPLITS,
    generate_problem,
    parse_difficulty,
    surface_forms,
)

if TYPE_CHECKING:
    import datasets


def make_rows(
    n: int, *, seed: int = 0, difficulty: int | Sequence[int] = DEFAULT_DIFFICULTY, split: str = "train"
) -> list[dict[str, Any]]:
    """``n`` problem rows, deterministic in (seed, split, difficulty).

    >>> rows = make_rows(2, seed=3, difficulty=2, split="test")
    >>> sorted(rows[0])
    ['answer', 'expression', 'forms', 'id', 'num_ops', 'operations', 'question', 'rephrased']
    >>> rows == make_rows(2, seed=3, difficulty=2, split="test")
    True
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    low, high = parse_difficulty(difficulty)
    rows = []
    for index in range(n):
        problem = generate_problem(seed, split, index, (low, high))
        rng = random.Random(f"organism-forms/{seed}/{split}/{index}")
        forms = surface_forms(problem, rng)
        rows.append(
            {
                "id": f"organism-{split}-s{seed}-d{low}{high}-{index:06d}",
                "question": forms[0],
                "rephrased": forms[REPHRASED_FORM],
                "answer": str(problem.answer),
                "forms": forms,
                "expression": problem.expression,
                "operations": list(problem.operations),
                "num_ops": len(problem.steps),
            }
        )
    return rows


def make_dataset(
    n: int, *, seed: int = 0, difficulty: int | Sequence[int] = DEFAULT_DIFFICULTY, split: str = "train"
) -> datasets.Dataset:
    """A ``datasets.Dataset`` of ``n`` organism problems (see ``make_rows``).

    ``difficulty`` is the number of operations, an int or an inclusive (low, high) range in 1..4.
    ``split`` is ``"train"`` or ``"test"``; the two never share an expression.
    """
    import datasets

    return datasets.Dataset.from_list(make_rows(n, seed=seed, difficulty=difficulty, split=split))


def export_jsonl(
    path: str | Path,
    n: int,
    *,
    seed: int = 0,
    difficulty: int | Sequence[int] = DEFAULT_DIFFICULTY,
    split: str = "train",
) -> Path:
    """Write ``n`` rows to a JSONL file loadable by ``corerl.data.load_dataset``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in make_rows(n, seed=seed, difficulty=difficulty, split=split):
            handle.write(json.dumps(row) + "\n")
    return path
