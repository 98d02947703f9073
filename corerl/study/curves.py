"""The training curves of a study's runs for figures: smoothed, and averaged over a run's seeds.

- :func:`smooth`: trailing rolling means of the curves of ``metrics.jsonl``;
- :func:`seed_curves`: the seeds' mean curves with a ``<column>_sd`` band, which ``corerl.plots`` draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def smooth(metrics: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """The curves of ``corerl.collapse.CURVE_COLUMNS`` as trailing rolling means over ``window`` steps.

    For figures only: a tiny-profile step sees 16 rollouts, so raw per-step values are noisy.
    Collapse detection smooths on its own (``corerl.collapse.detect_collapse``): give it raw metrics.

    >>> import pandas as pd
    >>> smooth(pd.DataFrame({"step": [1, 2, 3], "reward_mean": [0.0, 1.0, 0.5]}), window=2)["reward_mean"].tolist()
    [0.0, 0.5, 0.75]
    """
    from corerl.collapse import CURVE_COLUMNS

    smoothed = metrics.sort_values("step").copy()
    for column in CURVE_COLUMNS:
        if column in smoothed.columns:
            smoothed[column] = smoothed[column].astype(float).rolling(window, min_periods=1).mean()
    return smoothed


def seed_curves(frames: Sequence[pd.DataFrame], window: int = 10) -> pd.DataFrame:
    """The curves of one run's seeds (their ``metrics.jsonl`` frames): each seed smoothed
    (:func:`smooth`), then per step the mean over seeds and the standard deviation as ``<column>_sd``
    (NaN for one seed)."""
    import pandas as pd

    from corerl.collapse import CURVE_COLUMNS

    stacked = pd.concat([smooth(frame, window) for frame in frames], ignore_index=True)
    columns = [c for c in stacked.columns if c in CURVE_COLUMNS or c.endswith("_mul")]
    stacked[columns] = stacked[columns].astype(float)
    grouped = stacked.groupby("step")[columns]
    return pd.concat([grouped.mean(), grouped.std().add_suffix("_sd")], axis=1).reset_index()
