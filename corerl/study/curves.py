"""The training curves of a study's runs for figures.

- :func:`smooth`: trailing rolling means of the curves of ``metrics.jsonl`` (``corerl.plots`` smooths each
  seed itself with its ``window`` and draws the seeds' band);
- :func:`heldout_curve` / :func:`heldout_curves`: the held-out accuracy (and strategy shares) logged
  during training (``corerl.engine.heldout``), one run's and several runs' and seeds' in long form;
- :func:`saved_regime_curves` / :func:`saved_regime_shares` / :func:`saved_kept_models`: the same long
  form, the final models' strategy shares, and where each run stopped and which checkpoint it kept, read from ``benchmarks/organism_rl.py``'s saved JSON files
  (``figures/regimes/<regime>-<prior>-<method>.json``): the notebooks draw the long regime's multi-seed
  curves from them instead of training 400-step runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Where ``benchmarks/organism_rl.py``'s regime results are kept in the source checkout (absent from a wheel).
REGIME_RESULTS = Path(__file__).resolve().parents[2] / "figures" / "regimes"


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


def regime_file(directory: str | Path, regime: str, prior: str, method: str) -> Path:
    """The saved result of ``method`` in ``regime`` on ``prior``: ``<directory>/<regime>-<prior>-<method>.json``.

    >>> regime_file("figures/regimes", "long", "illusion", "majority-vote").as_posix()
    'figures/regimes/long-illusion-majority-vote.json'
    """
    return Path(directory) / f"{regime}-{prior}-{method}.json"


def _saved_file(path: Path) -> Any:
    """A saved benchmark JSON file, parsed; ValueError naming the file when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable benchmarks/organism_rl.py JSON file ({error})") from error


def _saved_entry(path: Path, method: str, saved: Any = None) -> dict[str, Any]:
    """The entry of ``method`` in a saved benchmark JSON file (``saved``: the file, already parsed);
    ValueError naming the file and the key."""
    saved = _saved_file(path) if saved is None else saved
    if not isinstance(saved, dict) or not isinstance(saved.get(method), dict):
        raise ValueError(f"{path}: no entry {method!r} (keys: {', '.join(map(str, saved)) or 'none'})")
    entry = saved[method]
    if not isinstance(entry.get("curves"), list) or not entry["curves"]:
        raise ValueError(f"{path}: entry {method!r} has no per-seed 'curves' list")
    return entry


def _saved_entries(
    methods: Sequence[str], regime: str, prior: str, directory: str | Path
) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """``(method, file, entry)`` of each method whose file (:func:`regime_file`) is saved; missing files are
    skipped (the benchmark writes a file when a method completes)."""
    for method in methods:
        path = regime_file(directory, regime, prior, method)
        if path.is_file():
            yield method, path, _saved_entry(path, method)


def saved_regime_curves(
    methods: Sequence[str],
    *,
    regime: str,
    prior: str,
    directory: str | Path = REGIME_RESULTS,
    eval_set: str | None = None,
) -> pd.DataFrame:
    """The held-out curves that ``benchmarks/organism_rl.py`` saved for ``methods`` in ``regime`` on
    ``prior``, in :func:`heldout_curves`'s long form (method, seed, step, accuracy in [0, 1]), for
    ``corerl.plots.plot_heldout_accuracy`` and ``corerl.collapse.heldout_verdict``.

    A method whose file (:func:`regime_file`) does not exist has no rows (the benchmark writes a file when
    a method completes; compare ``set(methods)`` with the frame's methods to say which are missing); a
    file that exists but is not the benchmark's JSON raises ValueError naming it. ``eval_set`` NAME reads
    the curves of the additional held-out set ``heldout_NAME`` (``curves_heldout_NAME``); seeds are
    numbered 0, 1, ... in the file's order.
    """
    import pandas as pd

    key = "curves" if eval_set is None else f"curves_heldout_{eval_set}"
    rows = []
    for method, path, entry in _saved_entries(methods, regime, prior, directory):
        if key not in entry:
            raise ValueError(f"{path}: entry {method!r} has no {key!r} (held-out sets: curves)")
        for seed, curve in enumerate(entry[key]):
            rows += [(method, seed, int(step), float(value) / 100.0) for step, value in curve.items()]
    frame = pd.DataFrame(rows, columns=["method", "seed", "step", "accuracy"])
    return frame.sort_values(["method", "seed", "step"], kind="stable").reset_index(drop=True)


def saved_regime_shares(
    methods: Sequence[str], *, regime: str, prior: str, directory: str | Path = REGIME_RESULTS
) -> pd.DataFrame:
    """The strategy shares of the base model and of each method's final models from the saved JSON files
    (the benchmark's measure: 8 samples at T = 1 on the held-out problems; finals averaged over the
    seeds), as results rows for ``corerl.plots.plot_eval_strategy_shares``: columns model (``base``,
    then each method), metric (``strategy/<name>``), value (in [0, 1]) and n_seeds (the seeds a final
    share averages; 1 for the base). The base model's row comes from the first file found; missing
    files are skipped as in :func:`saved_regime_curves`.
    """
    import pandas as pd

    rows: list[tuple[str, str, float, int]] = []
    for method, _path, entry in _saved_entries(methods, regime, prior, directory):
        shares = {
            key.removeprefix("share/"): value for key, value in entry.items() if key.startswith("share/")
        }
        if not rows:
            rows += [
                ("base", f"strategy/{key.removesuffix('_base')}", value / 100.0, 1)
                for key, value in shares.items()
                if key.endswith("_base")
            ]
        rows += [
            (method, f"strategy/{key.removesuffix('_final_mean')}", value / 100.0, len(entry["curves"]))
            for key, value in shares.items()
            if key.endswith("_final_mean")
        ]
    return pd.DataFrame(rows, columns=["model", "metric", "value", "n_seeds"])


def saved_kept_models(
    methods: Sequence[str], *, regime: str, prior: str, directory: str | Path = REGIME_RESULTS
) -> pd.DataFrame:
    """Where each saved seed's run ended and the model it handed over, from the saved JSON files: columns
    method, seed, stopped_at, kept_step, kept (held-out accuracy in [0, 1]). Under early stopping the
    benchmark records the best checkpoint (``kept_steps``, and its held-out value on the curve); a run
    without it (or a file saved before early stopping was recorded) hands over its last step. Missing
    files are skipped as in :func:`saved_regime_curves`.
    """
    import pandas as pd

    rows = []
    for method, path, entry in _saved_entries(methods, regime, prior, directory):
        for seed, curve in enumerate(entry["curves"]):
            by_step = {int(step): float(value) for step, value in curve.items()}
            last = max(by_step)  # files saved before early stopping was recorded: the last step
            stopped_at = int(entry["stopped_at"][seed]) if "stopped_at" in entry else last
            kept_step = int(entry["kept_steps"][seed]) if "kept_steps" in entry else last
            if kept_step not in by_step:
                raise ValueError(
                    f"{path}: seed {seed}'s kept step {kept_step} has no held-out value on its curve"
                )
            rows.append((method, seed, stopped_at, kept_step, by_step[kept_step] / 100.0))
    return pd.DataFrame(rows, columns=["method", "seed", "stopped_at", "kept_step", "kept"])


def saved_regime_verdicts(directory: str | Path = REGIME_RESULTS) -> pd.DataFrame:
    """The regime table: the study's one collapse rule (``corerl.collapse.heldout_verdicts``) on every
    saved result in ``directory`` (each ``<regime>-<prior>-<method>.json``, each held-out set it logged),
    one row per (prior, regime, method, held-out set), in percent: base, peak, peak_step, final, drop,
    spread, rose, fell, collapsed, n_seeds, and the commit the benchmark ran from. Sorted by prior,
    regime and method; empty when no file is saved.
    """
    import pandas as pd

    from corerl.collapse import heldout_verdicts

    frames = []
    for path in sorted(Path(directory).glob("*.json")):
        saved = _saved_file(path)
        for method in saved:
            entry = _saved_entry(path, method, saved)
            for key in [name for name in entry if name == "curves" or name.startswith("curves_heldout_")]:
                rows = [
                    (method, seed, int(step), float(value) / 100.0)
                    for seed, curve in enumerate(entry[key])
                    for step, value in curve.items()
                ]
                verdicts = heldout_verdicts(
                    pd.DataFrame(rows, columns=["method", "seed", "step", "accuracy"])
                )
                frames.append(
                    verdicts.assign(
                        prior=entry.get("prior", "?"),
                        regime=entry.get("regime", "?"),
                        heldout_set="heldout" if key == "curves" else key.removeprefix("curves_"),
                        commit=str(entry.get("commit", "?"))[:7],
                    )
                )
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    leading = ["prior", "regime", "method", "heldout_set"]
    table = table[leading + [column for column in table.columns if column not in leading]]
    return table.sort_values(leading, kind="stable").reset_index(drop=True)


def regime_markdown(table: pd.DataFrame) -> str:
    """:func:`saved_regime_verdicts`'s table as Markdown (yes/no verdicts, peak with its step).

    >>> import pandas as pd
    >>> row = dict(prior="illusion", regime="long", method="entropy", heldout_set="heldout", base=40.1, peak=61.8,
    ...            peak_step=150, final=50.6, drop=11.2, spread=5.2, rose=True, fell=True, collapsed=True,
    ...            n_seeds=3, commit="5bef700")
    >>> print(regime_markdown(pd.DataFrame([row])).splitlines()[-1])
    | illusion | long | entropy | heldout | 40.1 | 61.8 (150) | 50.6 | 11.2 | 5.2 | yes | yes | yes | 3 | 5bef700 |
    """
    lines = [
        "| prior | regime | method | held-out set | base | peak (step) | final | drop | spread | rose | fell "
        "| collapsed | seeds | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        verdicts = " | ".join("yes" if flag else "no" for flag in (row.rose, row.fell, row.collapsed))
        lines.append(
            f"| {row.prior} | {row.regime} | {row.method} | {row.heldout_set} | {row.base:.1f} | "
            f"{row.peak:.1f} ({row.peak_step}) | {row.final:.1f} | {row.drop:.1f} | {row.spread:.1f} | "
            f"{verdicts} | {row.n_seeds} | {row.commit} |"
        )
    return "\n".join(lines) + "\n"


PRIOR_ORDER = ("aligned", "misaligned", "illusion")
REGIME_ORDER = ("long", "hard", "small", "large")
METHOD_ORDER = (
    "ground-truth",
    "random",
    "majority-vote",
    "co-rewarding-1",
    "co-rewarding-2",
    "co-rewarding-2-no-ema",
)
VARIANT = "-lr5e-6"  # the long horizon's recalibrated rate (corerl.organism's docstring)


def _verdict_word(row: Any) -> str:
    if row.collapsed:
        return f"collapsed from {row.peak:.1f} ({row.peak_step})"
    return "rose" if row.rose else "fell" if row.fell else "neither"


def regime_matrix(table: pd.DataFrame) -> str:
    """:func:`saved_regime_verdicts`'s table on the default held-out set as one Markdown matrix: a row per
    method (``base`` first), a column per prior and regime (``-lr5e-6`` runs in their own column), each
    cell the final held-out avg@4 and the verdict (rose, fell, collapsed from its peak (step), neither).
    The base is step 0 of the column's run with the most seeds (their sampling differs by seed). A
    column whose cells share one number of seeds names it in its header, else each cell does; early-
    stopped runs (``-early-stopping``) are left out: their final is where they stopped, not a model kept.

    >>> import pandas as pd
    >>> row = dict(prior="illusion", regime="long", heldout_set="heldout", base=40.1, peak=61.8, peak_step=150,
    ...            final=50.6, drop=11.2, spread=5.2, rose=True, fell=True, collapsed=True, n_seeds=3, commit="x")
    >>> table = pd.DataFrame([row | {"method": "entropy"}, row | {"method": "random", "final": 37.3,
    ...                       "peak": 40.1, "peak_step": 0, "rose": False, "fell": False, "collapsed": False}])
    >>> print(regime_matrix(table))
    | method | illusion long (3 seeds) |
    |---|---|
    | base | 40.1 |
    | random | 37.3 neither |
    | entropy | 50.6 collapsed from 61.8 (150) |
    <BLANKLINE>
    """
    rows = table[(table["heldout_set"] == "heldout") & ~table["method"].str.endswith("-early-stopping")]
    rows = rows.assign(
        variant=rows["method"].str.endswith(VARIANT),
        name=rows["method"].str.removesuffix(VARIANT),
    )

    def rank(name: str, order: tuple[str, ...]) -> int:
        return order.index(name) if name in order else len(order)  # unknown names last

    columns = sorted(
        {(row.prior, row.regime, row.variant) for row in rows.itertuples()},
        key=lambda key: (rank(key[0], PRIOR_ORDER), rank(key[1], REGIME_ORDER), key[2]),
    )
    names = sorted(
        set(rows["name"]),
        key=lambda name: (rank(name, METHOD_ORDER), name),
    )
    headers, cells = [], {}
    for column in columns:
        prior, regime, variant = column
        inside = rows[(rows["prior"] == prior) & (rows["regime"] == regime) & (rows["variant"] == variant)]
        seeds = set(inside["n_seeds"])
        label = f"{prior} {regime}{', lr 5e-6' if variant else ''}"
        headers.append(f"{label} ({seeds.pop()} seeds)" if len(seeds) == 1 else label)
        most_seeds = inside.sort_values("n_seeds", ascending=False, kind="stable")
        cells[column, "base"] = f"{most_seeds['base'].iloc[0]:.1f}"  # step 0 averaged over the most seeds
        for row in inside.itertuples():
            seeds_note = "" if headers[-1] != label else f" [{row.n_seeds}]"
            cells[column, row.name] = f"{row.final:.1f} {_verdict_word(row)}{seeds_note}"
    lines = ["| method | " + " | ".join(headers) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in ["base", *names]:
        lines.append(f"| {name} | " + " | ".join(cells.get((column, name), "") for column in columns) + " |")
    return "\n".join(lines) + "\n"
