"""The training curves of a study's runs for figures.

- :func:`smooth`: trailing rolling means of the curves of ``metrics.jsonl`` (``corerl.plots`` smooths each
  seed itself with its ``window`` and draws the seeds' band);
- :func:`heldout_curve` / :func:`heldout_curves`: the held-out accuracy (and strategy shares) logged
  during training (``corerl.engine.heldout``), one run's and several runs' and seeds' in long form.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def heldout_curve(metrics: pd.DataFrame, eval_set: str | None = None) -> pd.DataFrame:
    """One run's held-out curve: its ``metrics.jsonl`` rows that carry a held-out evaluation
    (``corerl.engine.heldout``), as columns ``step``, ``accuracy`` and ``share/<strategy>`` (organism
    sets only), sorted by step. ``eval_set`` None is the main set (``heldout/...`` columns), NAME an
    additional set (``heldout_NAME/...``). Empty (those columns) when the run logged none.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"step": [0, 1, 2], "reward_mean": [None, 0.5, 0.6],
    ...                       "heldout/accuracy": [0.5, None, 0.625], "heldout/share/template": [0.1, None, 0.0]})
    >>> heldout_curve(frame).to_dict("list")
    {'step': [0, 2], 'accuracy': [0.5, 0.625], 'share/template': [0.1, 0.0]}
    """
    import pandas as pd

    from corerl.engine.heldout import column_prefix

    prefix = column_prefix(eval_set) + "/"
    columns = [column for column in metrics.columns if column.startswith(prefix)]
    renamed = {column: column.removeprefix(prefix) for column in columns}
    if f"{prefix}accuracy" not in renamed:
        return pd.DataFrame(columns=["step", "accuracy"])
    rows = metrics.loc[metrics[f"{prefix}accuracy"].notna(), ["step", *columns]].rename(columns=renamed)
    return rows.astype({name: float for name in renamed.values()}).sort_values("step").reset_index(drop=True)


def heldout_curves(
    runs: Mapping[str, Mapping[int, pd.DataFrame]], eval_set: str | None = None
) -> pd.DataFrame:
    """The held-out curves of several runs and seeds in one long-form frame, one row per (method, seed,
    evaluated step), for figures and ``corerl.collapse``'s verdicts.

    ``runs`` maps a method (a run name of the study, e.g. ``majority-vote``) to its seeds' metrics
    frames (seed -> ``metrics.jsonl`` frame). Columns: ``method`` (str), ``seed`` (int), ``step`` (int,
    0 = before training, the base model), ``accuracy`` (held-out avg@k in [0, 1]: the mean correctness
    of every sample) and, on the organism, ``share/<strategy>`` (the share of the evaluation samples in
    each class of ``corerl.arithmetic.strategies.STRATEGIES``; they sum to 1). ``eval_set``: as in
    :func:`heldout_curve`.

    >>> import pandas as pd
    >>> seed = pd.DataFrame({"step": [0, 1], "heldout/accuracy": [0.5, 0.75]})
    >>> heldout_curves({"random": {0: seed, 1: seed}})[["method", "seed", "step", "accuracy"]].values.tolist()
    [['random', 0, 0, 0.5], ['random', 0, 1, 0.75], ['random', 1, 0, 0.5], ['random', 1, 1, 0.75]]
    """
    import pandas as pd

    frames = [
        heldout_curve(metrics, eval_set).assign(method=method, seed=int(seed))
        for method, seeds in runs.items()
        for seed, metrics in seeds.items()
    ]
    if not frames:
        return pd.DataFrame(columns=["method", "seed", "step", "accuracy"])
    stacked = pd.concat(frames, ignore_index=True)
    ordered = ["method", "seed", "step", "accuracy"]
    return stacked[ordered + [column for column in stacked.columns if column not in ordered]]
