"""The papers' regimes as named study settings: small dicts of ``TrainConfig`` overrides (issue 21).

One factor changes at a time from ``long`` (400 steps over 512 problems of 1-3 operations, about 3
epochs): ``hard`` trains on 3-4 operations (SRT's hard-set condition) and is also evaluated on the
held-out problems of 3-4 operations (``heldout_hard/...``, ``corerl.engine.heldout.EVAL_SETS``), ``small`` and ``large`` on 128
and 2,000 problems (the scaling study's training-set sizes). ``default`` is the tiny profile as it is.
Settings, predictions and the budget are pre-registered in ``corerl.organism``'s docstring.

>>> regime_overrides("hard")
{'max_steps': 400, 'data_limit': 512, 'organism_difficulty': '3-4', 'eval_sets': ['hard']}
>>> regime_overrides("default")
{}
"""

from __future__ import annotations

from typing import Any

# The operations of the hard regime's training data and of the held-out hard slice
# (``corerl.engine.heldout.EVAL_SETS["hard"]``: ``heldout_hard/...``), the organism's test split.
from corerl.arithmetic.task import HARD_OPERATIONS

LONG_STEPS = 400  # 8x the tiny profile's 50 steps

REGIMES: dict[str, dict[str, Any]] = {
    "default": {},
    "long": {"max_steps": LONG_STEPS, "data_limit": 512},
    "hard": {
        "max_steps": LONG_STEPS,
        "data_limit": 512,
        "organism_difficulty": HARD_OPERATIONS,
        "eval_sets": ["hard"],
    },
    "small": {"max_steps": LONG_STEPS, "data_limit": 128},
    "large": {"max_steps": LONG_STEPS, "data_limit": 2000},
}


def regime_overrides(name: str) -> dict[str, Any]:
    """A copy of the ``TrainConfig`` overrides of regime ``name``; ValueError naming the choices."""
    if name not in REGIMES:
        raise ValueError(f"unknown regime {name!r}; expected one of {', '.join(REGIMES)}")
    return dict(REGIMES[name])
