"""The training curves of a study's runs, smoothed: :func:`smooth`, trailing rolling means of the curves of
``metrics.jsonl`` (``corerl.plots`` smooths each seed itself with its ``window`` and draws the seeds' band)."""

from __future__ import annotations

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
