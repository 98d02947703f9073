"""The study's figures, drawn with seaborn: one function per figure, saved as PNG and SVG into a folder.

Conventions that hold in every figure (issue 22):

- **One colour per run, the same everywhere.** :data:`STUDY_ORDER` fixes the order and :func:`color_of`
  the colour of every run the notebooks train (a seed suffix ``-seedN`` is ignored); a name outside
  the list gets a colour from its name's hash, so it too is the same in every figure. A panel that
  lacks some runs keeps the others' colours (the colour never follows the plotting order).
- **Seeds as bands.** Inputs map a run to its ``metrics.jsonl`` frame or to a list of its seeds'
  frames; they are turned into long-form frames (:func:`long_form`) and drawn by ``seaborn.lineplot``
  as the seed mean with a ± one standard deviation band (``errorbar="sd"``; no band with one seed).
- **Rewards on different scales.** Entropy and self-certainty rewards are not in [0, 1] (self-certainty
  is about 16 on the organism): where a shared panel holds such a reward, every run's mean reward is
  **standardised within the run** (z-score over its steps and seeds) and the panel title says so;
  the per-run panels of :func:`plot_reward_vs_accuracy` give the reward **its own right-hand axis**.
- **Collapse markers only from held-out curves**, by :func:`corerl.collapse.heldout_verdict` (with at
  least two seeds); the noisy training-batch accuracy never gets one.
- **One legend per figure**, outside the data; every drawn line has an entry. Every figure is titled
  with the question it answers and its n (seeds, questions).
- Per-run panels are a facet grid drawn on one ``matplotlib.figure.Figure`` with seaborn's axes-level
  functions, not ``seaborn.FacetGrid`` (which opens pyplot figures that a notebook's inline backend
  would show a second time). Nothing switches the global backend or seaborn's global theme (styles are
  applied in a context), and the files are byte-identical from run to run (:func:`save_figure`).

The strategy-share figures read the organism's ``strategy/<name>`` (training rollouts) or
``heldout/share/<name>`` (held-out samples) metrics; a run logged before a strategy class existed
(``template``) simply lacks that class.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from corerl.arithmetic.strategies import METRIC_PREFIX, STRATEGIES
from corerl.collapse import CURVE_COLUMNS, heldout_verdict

FORMATS: tuple[str, ...] = ("png", "svg")
SVG_HASHSALT = "corerl"  # fixed salt for the SVG ids, so the files do not change from run to run
HELDOUT_ACCURACY = "heldout/accuracy"
HELDOUT_SHARE_PREFIX = "heldout/share/"
COLLAPSE_GID = "collapse"  # the gid of a collapse marker's artists (tests find them by it)
STYLE = "whitegrid"

LABELS: dict[str, str] = {
    "reward_mean": "mean reward",
    "oracle_accuracy": "oracle accuracy (training batch)",
    "pseudo_label_accuracy": "pseudo-label accuracy",
    "reward_accuracy": "reward accuracy",
    "point_biserial": "corr(reward, GT reward)",
    "majority_share": "majority share",
    "distinct_answers": "distinct answers / group",
    "no_answer_rate": "no-answer rate",
    "completion_length": "completion length (tokens)",
    "token_entropy": "token entropy",
    "kl": "KL",
    "identical_answer_share": "same answer across questions",
    "repeated_ngram_share": "repeated 4-grams",
    "truncation_rate": "truncation rate",
    HELDOUT_ACCURACY: "held-out accuracy",
}

# Every run the notebooks train, in the order figures and legends show them.
STUDY_ORDER: tuple[str, ...] = (
    "base",
    "ground-truth",
    "majority-vote",
    "entropy",
    "self-certainty",
    "random",
    "co-rewarding-1",
    "co-rewarding-2",
    "co-rewarding-3",
    "majority-vote-rephrased",
    "co-rewarding-2-no-ema",
    "majority-vote-misaligned",
    "majority-vote-illusion",
    "early-stopping",
    "offline-labels",
    "curriculum",
    "test-time",
    "base-test-time",
    "step-check",
    "self-verify",
    "self-verify-vote",
    "quickstart",
)
_TAB10 = sns.color_palette("tab10")
# The base and the main methods take tab10; each variant a colour far from the runs it is drawn beside
# (majority-vote-misaligned beside majority-vote, test-time beside majority-vote, step-check beside
# majority-vote and ground truth, self-verify beside self-certainty).
_VARIANT_COLORS = (
    "#17becf",  # majority-vote-rephrased
    "#1b9e77",  # co-rewarding-2-no-ema
    "#393b79",  # majority-vote-misaligned
    "#d95f02",  # majority-vote-illusion (beside majority-vote in notebook 04)
    "#7570b3",  # early-stopping
    "#e7298a",  # offline-labels
    "#66a61e",  # curriculum
    "#843c39",  # test-time
    "#a6761d",  # base-test-time
    "#7b4173",  # step-check
    "#8c6d31",  # self-verify
    "#d6616b",  # self-verify-vote
    "#9c9ede",  # quickstart
)
_COLORS = [_TAB10[7], *(_TAB10[i] for i in (0, 1, 2, 3, 4, 5, 6, 8)), *sns.color_palette(_VARIANT_COLORS)]
PALETTE: dict[str, tuple[float, float, float]] = dict(zip(STUDY_ORDER, _COLORS, strict=True))
_OTHER_COLORS = sns.color_palette("Set2")  # names outside STUDY_ORDER, by the hash of the name
_SEED_SUFFIX = re.compile(r"-seed\d+$")
ILLUSION = "illusion"  # the organism prior whose runs take their method's colour (corerl.organism)

STRATEGY_COLORS: dict[str, str] = {
    "worked-correct": "tab:green",
    "worked-wrong": "tab:red",
    "shortcut-first": "tab:blue",
    "shortcut-last": "tab:purple",
    "template": "tab:orange",
    "no-answer": "tab:gray",
    "other": "tab:olive",
}
_STRATEGY_ORDER = tuple(STRATEGY_COLORS)

Runs = Mapping[str, "pd.DataFrame | Sequence[pd.DataFrame]"]


def run_key(name: str) -> str:
    """The run a name stands for: a seed suffix dropped (``entropy-seed2`` -> ``entropy``)."""
    return _SEED_SUFFIX.sub("", str(name))


def _method_key(name: str) -> str:
    """The study run a name is drawn as: ``run_key``, and a run on the ``illusion`` prior
    (``majority-vote-illusion``) as its method, so that a method keeps its colour and place there."""
    key = run_key(name)
    method = key.removesuffix(f"-{ILLUSION}")
    return key if key in PALETTE or method not in PALETTE else method


def color_of(name: str) -> tuple[float, float, float]:
    """The run's colour in every figure of the study.

    >>> color_of("entropy-seed1") == color_of("entropy") == color_of("entropy-illusion") == PALETTE["entropy"]
    True
    >>> color_of("my-own-run") == color_of("my-own-run")
    True
    """
    key = _method_key(name)
    if key in PALETTE:
        return PALETTE[key]
    return _OTHER_COLORS[zlib.crc32(key.encode()) % len(_OTHER_COLORS)]


def figure_colors(names: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """The colour of each run in one figure: :func:`color_of`, except that a name outside the study's
    palette whose hashed colour an earlier name of the figure already has takes the next free one, so
    that no two runs of a figure share a colour (while there are colours left).

    >>> colors = figure_colors(["majority vote, aligned", "majority vote, misaligned"])
    >>> colors["majority vote, aligned"] != colors["majority vote, misaligned"]
    True
    >>> figure_colors(["entropy", "random"]) == {"entropy": PALETTE["entropy"], "random": PALETTE["random"]}
    True
    """
    colors: dict[str, tuple[float, float, float]] = {}
    for name in names:
        color = color_of(name)
        if _method_key(name) not in PALETTE:
            start = _OTHER_COLORS.index(color)
            rotated = [*_OTHER_COLORS[start:], *_OTHER_COLORS[:start]]
            color = next((free for free in rotated if free not in colors.values()), color)
        colors[name] = color
    return colors


def run_order(names: Sequence[str]) -> list[str]:
    """``names`` in the study's fixed order (:data:`STUDY_ORDER`), names outside it last, as given.

    >>> run_order(["random", "mine", "ground-truth"])
    ['ground-truth', 'random', 'mine']
    """
    rank = {name: i for i, name in enumerate(STUDY_ORDER)}
    unique = list(dict.fromkeys(names))
    return sorted(unique, key=lambda name: (rank.get(_method_key(name), len(rank)), unique.index(name)))


def save_figure(figure: Figure, out_dir: str | os.PathLike[str], name: str) -> list[Path]:
    """Write ``figure`` as ``out_dir/name.png`` and ``out_dir/name.svg``; returns the paths.

    The files are byte-identical from run to run for the same figure: the SVG's ids (clip paths,
    glyphs) are hashed with the fixed :data:`SVG_HASHSALT` instead of a random salt, and no date
    is written (Agg's PNG carries none).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{fmt}" for fmt in FORMATS]
    with rc_context({"svg.hashsalt": SVG_HASHSALT}):
        for path in paths:
            figure.savefig(
                path, dpi=150, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None
            )
    return paths


def _grid(
    count: int, columns: int = 3, size: tuple[float, float] = (4.0, 2.8), **subplots: Any
) -> tuple[Figure, list]:
    if count == 0:
        raise ValueError("nothing to plot: no runs, or no metric with a value in any run")
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    with sns.axes_style(STYLE):
        figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False, **subplots).ravel().tolist()
    for unused in axes[count:]:
        unused.set_visible(False)
    return figure, axes[:count]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise KeyError(f"{what} has no column(s) {missing}")


def _seeds(frames: pd.DataFrame | Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    return [frames] if isinstance(frames, pd.DataFrame) else list(frames)


def long_form(runs: Runs, columns: Sequence[str], *, window: int = 1) -> pd.DataFrame:
    """The ``columns`` of every run's seeds as one long frame: run, seed, step, metric, value.

    A run maps to one frame (one seed) or a list of its seeds' frames. Each seed's curve is a
    trailing rolling mean over ``window`` logged values (1: raw); nulls and absent columns are dropped.

    >>> seeds = [pd.DataFrame({"step": [1, 2], "kl": [0.0, 1.0]}), pd.DataFrame({"step": [1, 2], "kl": [2.0, 3.0]})]
    >>> long_form({"entropy": seeds}, ["kl", "reward_mean"], window=2)["value"].tolist()
    [0.0, 0.5, 2.0, 2.5]
    """
    parts = []
    for run, frames in runs.items():
        for seed, metrics in enumerate(_seeds(frames)):
            _require(metrics, ["step"], f"metrics of run {run!r} (seed {seed})")
            for column in (c for c in columns if c in metrics.columns):
                values = metrics[["step", column]].dropna().sort_values("step")
                series = values[column].astype(float).rolling(max(1, window), min_periods=1).mean()
                parts.append(
                    pd.DataFrame(
                        {"run": run, "seed": seed, "step": values["step"].astype(int), "metric": column}
                    ).assign(value=series.to_numpy())
                )
    if not parts:
        return pd.DataFrame(columns=["run", "seed", "step", "metric", "value"])
    return pd.concat(parts, ignore_index=True)


def _seed_counts(frame: pd.DataFrame, by: str) -> str:
    counts = frame.groupby(by)["seed"].nunique() if len(frame) else pd.Series([0])
    low, high = int(counts.min()), int(counts.max())
    return f"{low} seed{'s' * (high != 1)}" if low == high else f"{low}-{high} seeds"


def _title(figure: Figure, question: str, n: str) -> None:
    figure.suptitle(f"{question}\nn = {n}", fontsize="medium")


def _run_handles(runs: Sequence[str]) -> list[Line2D]:
    colors = figure_colors(runs)
    return [Line2D([], [], color=colors[run], linewidth=2, label=run) for run in runs]


def _legend(figure: Figure, handles: Sequence[Any], title: str | None = None) -> None:
    """The figure's one legend, outside the data (below the panels)."""
    columns = min(len(handles), 5)
    figure.legend(
        handles=list(handles), loc="outside lower center", ncols=columns, fontsize="small", title=title
    )


def _lines(
    axis: Any,
    long: pd.DataFrame,
    order: Sequence[str],
    colors: Mapping[str, tuple[float, float, float]] | None = None,
    **style: Any,
) -> None:
    """Seed mean ± sd band per run on ``axis`` (``value`` against ``step``), in the runs' own colours
    (``colors``; default: :func:`figure_colors` of ``order``)."""
    colors = colors or figure_colors(order)
    present = [run for run in order if run in set(long["run"])]
    sns.lineplot(
        data=long,
        x="step",
        y="value",
        hue="run",
        hue_order=present,
        palette={run: colors[run] for run in present},
        errorbar="sd",
        legend=False,
        ax=axis,
        **style,
    )
    axis.set_ylabel("")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers


def _standardised(long: pd.DataFrame) -> pd.DataFrame:
    """``value`` z-scored within each run (over its steps and seeds); a constant run becomes 0."""
    grouped = long.groupby("run")["value"]
    scale = grouped.transform("std").replace(0.0, 1.0).fillna(1.0)
    return long.assign(value=(long["value"] - grouped.transform("mean")) / scale)


def _off_unit_scale(values: pd.Series) -> bool:
    return bool(len(values)) and (values.min() < -1e-9 or values.max() > 1 + 1e-9)


def plot_training_curves(
    runs: Runs,
    out_dir: str | os.PathLike[str],
    *,
    columns: Sequence[str] = CURVE_COLUMNS,
    name: str = "training_curves",
    window: int = 1,
    question: str = "How do the training signals move during training?",
    questions_per_step: int | None = None,
) -> Figure:
    """One panel per metric (those with a value in some run), one colour per run: seed mean ± sd.

    Where some run's mean reward lies outside [0, 1] (entropy, self-certainty), the mean-reward
    panel shows every run's reward standardised within the run (the panel title says so).
    """
    long = long_form(runs, columns, window=window)
    present = [column for column in columns if column in set(long["metric"])]
    figure, axes = _grid(len(present))
    order = run_order(list(runs))
    for axis, column in zip(axes, present, strict=True):
        values = long[long["metric"] == column]
        title = LABELS.get(column, column)
        if column == "reward_mean" and _off_unit_scale(values["value"]):
            values, title = _standardised(values), f"{title}\n(z-scored within each run: scales differ)"
        _lines(axis, values, order)
        axis.set_title(title, fontsize="small")
        axis.set_xlabel("step")
    drawn = [run for run in order if run in set(long["run"])]
    per_step = f", {questions_per_step} questions a step" if questions_per_step else ""
    _title(figure, question, f"{_seed_counts(long, 'run')} per run{per_step}; band: ± 1 sd over seeds")
    _legend(figure, _run_handles(drawn))
    save_figure(figure, out_dir, name)
    return figure


def heldout_frame(runs: Runs, column: str = HELDOUT_ACCURACY) -> pd.DataFrame:
    """The held-out accuracy rows of the runs' metrics, long-form: method, seed, step, accuracy.

    >>> seed = pd.DataFrame({"step": [0, 1, 2], "heldout/accuracy": [0.4, None, 0.5]})
    >>> heldout_frame({"entropy": [seed, seed]}).groupby("method")["accuracy"].size().tolist()
    [4]
    """
    long = long_form(runs, [column])
    return long.rename(columns={"run": "method", "value": "accuracy"})[["method", "seed", "step", "accuracy"]]


def _collapse_marker(axis: Any, method_frame: pd.DataFrame, color: Any) -> bool:
    """Mark the peak before a held-out collapse (:func:`corerl.collapse.heldout_verdict`); True if marked."""
    if method_frame["seed"].nunique() < 2:
        return False
    verdict = heldout_verdict(method_frame.rename(columns={"value": "accuracy"}))
    if not verdict.collapsed:
        return False
    axis.axvline(verdict.peak_step, color=color, linestyle=":", linewidth=1.5, gid=COLLAPSE_GID)
    axis.plot(
        [verdict.peak_step],
        [verdict.peak],
        marker="v",
        markersize=9,
        color=color,
        linestyle="",
        gid=COLLAPSE_GID,
    )
    return True


def _collapse_handle() -> Line2D:
    return Line2D(
        [],
        [],
        color="black",
        linestyle=":",
        marker="v",
        label="collapse: peak, then a fall wider\nthan the sd band",
    )


def plot_heldout_accuracy(
    frame: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    name: str = "heldout_accuracy",
    question: str = "Does held-out accuracy rise, and does it fall back?",
    questions: int | None = None,
    samples: int | None = None,
) -> Figure:
    """Held-out accuracy against step: seed mean ± sd band, one colour per method (the papers' plot).

    ``frame`` is long-form with columns method, seed, step, accuracy (:func:`heldout_frame` builds it
    from runs' metrics). A method whose curves rise and then fall by more than the seeds' spread
    (:func:`corerl.collapse.heldout_verdict`) gets a dotted line and a triangle at its peak; no
    other marker is drawn. ``questions`` and ``samples`` (the held-out set's size) go into the title.
    """
    _require(frame, ["method", "seed", "step", "accuracy"], "held-out frame")
    values = frame.dropna(subset=["accuracy"])
    if values.empty:
        raise ValueError("nothing to plot: no held-out accuracy (train with eval_every > 0)")
    order = run_order(list(values["method"]))
    long = values.rename(columns={"method": "run", "accuracy": "value"})
    figure, (axis,) = _grid(1, size=(6.5, 4.0))
    _lines(axis, long, order, marker="o", markersize=4)
    colors = figure_colors(order)
    marked = [_collapse_marker(axis, long[long["run"] == run], colors[run]) for run in order]
    axis.set(xlabel="step", ylabel=LABELS[HELDOUT_ACCURACY], ylim=(0, 1))
    size = f", {questions} held-out questions" if questions else ""
    size += f" x {samples} samples" if questions and samples else ""
    _title(figure, question, f"{_seed_counts(long, 'run')} per method{size}; band: ± 1 sd over seeds")
    _legend(figure, _run_handles(order) + ([_collapse_handle()] if any(marked) else []))
    save_figure(figure, out_dir, name)
    return figure


def plot_reward_vs_accuracy(
    runs: Runs,
    out_dir: str | os.PathLike[str],
    *,
    name: str = "reward_vs_accuracy",
    window: int = 1,
    question: str = "Does the reward keep rising while accuracy falls?",
) -> Figure:
    """One panel per run: accuracy (left axis, [0, 1]) and the mean reward on its own right axis.

    Accuracy is the training batch's oracle accuracy (solid; smoothed over ``window`` steps) and,
    where logged, the held-out accuracy (dots, never smoothed); collapse is marked only from the
    held-out curves (:func:`corerl.collapse.heldout_verdict`). Seeds: mean ± sd bands.
    """
    order = run_order(list(runs))
    colors = figure_colors(order)
    figure, axes = _grid(len(order))
    marked = heldout_drawn = False
    for axis, run in zip(axes, order, strict=True):
        seeds = {run: runs[run]}
        for seed, metrics in enumerate(_seeds(runs[run])):
            _require(
                metrics, ["step", "reward_mean", "oracle_accuracy"], f"metrics of run {run!r} (seed {seed})"
            )
        color = colors[run]
        _lines(axis, long_form(seeds, ["oracle_accuracy"], window=window), [run], colors)
        heldout = long_form(seeds, [HELDOUT_ACCURACY])
        if len(heldout):
            heldout_drawn = True
            _lines(
                axis,
                heldout,
                [run],
                colors,
                marker="o",
                markersize=6,
                markeredgecolor="black",
                linestyle="none",
            )
            marked |= _collapse_marker(axis, heldout, color)
        axis.set(ylim=(0, 1), xlabel="step", ylabel="accuracy")
        reward_axis = axis.twinx()
        _lines(reward_axis, long_form(seeds, ["reward_mean"], window=window), [run], colors, linestyle="--")
        reward_axis.set_ylabel("mean reward (own scale)", fontsize="small")
        reward_axis.grid(False)
        axis.set_title(run, color=color)
    styles = [
        Line2D([], [], color="grey", label="oracle accuracy,\ntraining batch (left)"),
        *[
            Line2D(
                [],
                [],
                color="grey",
                marker="o",
                markeredgecolor="black",
                linestyle="none",
                label="held-out accuracy (left)",
            )
        ]
        * heldout_drawn,
        Line2D([], [], color="grey", linestyle="--", label="mean reward (right,\neach run its own scale)"),
    ]
    counts = _seed_counts(long_form(runs, ["reward_mean"]), "run")
    _title(figure, question, f"{counts} per run; band: ± 1 sd over seeds")
    _legend(figure, _run_handles(order) + styles + ([_collapse_handle()] if marked else []))
    save_figure(figure, out_dir, name)
    return figure


def plot_reward_accuracy(
    runs: Runs,
    out_dir: str | os.PathLike[str],
    *,
    threshold: float = 0.01,
    name: str = "reward_accuracy",
    question: str = "When does reward accuracy fall below the Model Collapse Step threshold?",
) -> Figure:
    """Reward accuracy against step for each run (raw values, seeds as bands), the threshold as a line."""
    if not runs:
        raise ValueError("nothing to plot: no runs")
    for run, frames in runs.items():
        for seed, metrics in enumerate(_seeds(frames)):
            _require(metrics, ["step", "reward_accuracy"], f"metrics of run {run!r} (seed {seed})")
    long = long_form(runs, ["reward_accuracy"])
    order = run_order(list(runs))
    figure, (axis,) = _grid(1, size=(6.5, 3.8))
    _lines(axis, long, order)
    axis.axhline(threshold, color="black", linestyle="--", linewidth=1)
    axis.set(xlabel="step", ylabel=LABELS["reward_accuracy"])
    _title(figure, question, f"{_seed_counts(long, 'run')} per run; raw per-step values")
    threshold_handle = Line2D([], [], color="black", linestyle="--", label=f"threshold {threshold:g}")
    _legend(figure, _run_handles(order) + [threshold_handle])
    save_figure(figure, out_dir, name)
    return figure


def plot_degenerate_outputs(
    diagnostics: Runs,
    out_dir: str | os.PathLike[str],
    *,
    columns: Sequence[str] = (
        "identical_answer_share",
        "repeated_ngram_share",
        "no_answer_rate",
        "truncation_rate",
    ),
    name: str = "degenerate_outputs",
    window: int = 1,
    question: str = "Do the outputs degenerate (one answer for all, repetition, no answer, truncation)?",
) -> Figure:
    """Panels of :func:`corerl.collapse.degenerate_outputs` columns against step, one colour per run
    (rolling means over ``window`` logged steps)."""
    long = long_form(diagnostics, columns, window=window)
    present = [column for column in columns if column in set(long["metric"])]
    figure, axes = _grid(len(present), columns=2)
    order = run_order(list(diagnostics))
    for axis, column in zip(axes, present, strict=True):
        _lines(axis, long[long["metric"] == column], order, marker=".")
        axis.set_title(LABELS.get(column, column), fontsize="small")
        axis.set_xlabel("step")
    smoothing = f", rolling mean over {window} steps" if window > 1 else ""
    _title(
        figure, question, f"{_seed_counts(long, 'run')} per run; the logged samples of each step{smoothing}"
    )
    _legend(figure, _run_handles([run for run in order if run in set(long["run"])]))
    save_figure(figure, out_dir, name)
    return figure


def plot_eval_results(
    results: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    metric: str = "avg@k",
    name: str = "eval_results",
    by: str | None = None,
    question: str = "How accurate is each model on the held-out benchmarks?",
) -> Figure:
    """Bars of one metric from :mod:`corerl.evaluate` rows: benchmarks x models, seeds' sd as error bars.

    Rows of a model's seeds share its name (``Study.evaluate_seeds``; a ``-seedN`` suffix is dropped
    here too): the bar is their mean, the error bar ± one sd. ``by`` names a column (a prior, a regime)
    whose every value gets its own chart, side by side.
    """
    _require(results, ["benchmark", "model", "metric", "value", *([by] if by else [])], "results table")
    chosen = results[results["metric"] == metric].copy()
    if chosen.empty:
        raise ValueError(f"results table has no rows for metric {metric!r}")
    chosen["model"] = chosen["model"].map(run_key)
    chosen["value"] = chosen["value"].astype(float) * 100
    if "seed" not in chosen.columns:
        chosen["seed"] = chosen.groupby(["model", "benchmark"]).cumcount()
    chosen["seed"] = chosen["seed"].fillna(0)
    panels = list(dict.fromkeys(chosen[by])) if by else [None]
    order = run_order(list(chosen["model"]))
    colors = figure_colors(order)
    benchmarks = list(dict.fromkeys(chosen["benchmark"]))
    width = max(4.0, 0.35 * len(benchmarks) * len(order) + 1.5)
    figure, axes = _grid(len(panels), columns=len(panels), size=(width, 3.8), sharey=True)
    for axis, panel in zip(axes, panels, strict=True):
        rows = chosen if panel is None else chosen[chosen[by] == panel]
        present = [model for model in order if model in set(rows["model"])]
        sns.barplot(
            data=rows,
            x="benchmark",
            y="value",
            hue="model",
            order=benchmarks,
            hue_order=present,
            palette={model: colors[model] for model in present},
            errorbar="sd",
            capsize=0.15,
            err_kws={"linewidth": 1},
            legend=False,
            ax=axis,
        )
        axis.set(xlabel="", ylabel=f"{metric} (%)", title=f"{by}: {panel}" if by else "")
    questions = f", {int(chosen['n'].max())} questions per benchmark" if "n" in chosen.columns else ""
    samples = f" x {int(chosen['k'].max())} samples" if questions and "k" in chosen.columns else ""
    counts = _seed_counts(chosen, "model")
    _title(figure, question, f"{counts} per model{questions}{samples}; error bar: ± 1 sd over seeds")
    handles = [Patch(color=colors[model], label=model) for model in order]
    _legend(figure, handles)
    save_figure(figure, out_dir, name)
    return figure


def strategy_curves(
    runs: pd.DataFrame | Sequence[pd.DataFrame],
    *,
    window: int = 1,
    run: str = "run",
    prefix: str = METRIC_PREFIX,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard deviation over seeds of each strategy share at each step (``step`` the index).

    ``runs`` is one run's metrics or several seeds' metrics of one run; each seed is smoothed first by
    a trailing rolling mean over ``window`` steps (shares still sum to 1), steps without shares (no
    labels) are dropped. The deviation is 0 with one seed. ``prefix``: ``strategy/`` for the training
    rollouts, ``heldout/share/`` for the held-out samples. Strategy classes a run did not log (a run
    from before ``template`` existed) are absent from its frames.

    >>> seeds = [pd.DataFrame({"step": [1, 2], **{f"strategy/{s}": [0.0, 0.0] for s in STRATEGIES}})
    ...          .assign(**{"strategy/worked-correct": share, "strategy/other": 1 - share}) for share in (0.2, 0.6)]
    >>> mean, sd = strategy_curves(seeds)
    >>> mean["worked-correct"].round(2).tolist(), sd["worked-correct"].round(2).tolist()
    ([0.4, 0.4], [0.2, 0.2])
    """
    frames = _seeds(runs)
    if not frames:
        raise ValueError(f"run {run!r}: no metrics given")
    smoothed = []
    for seed, metrics in enumerate(frames):
        columns = [column for column in metrics.columns if str(column).startswith(prefix)]
        if "step" not in metrics.columns or not columns:
            raise KeyError(
                f"metrics of run {run!r} (seed {seed}) have no {prefix}<strategy> columns; "
                "strategy shares exist only on the organism's data"
            )
        shares = metrics[["step", *columns]].dropna().sort_values("step").set_index("step").astype(float)
        smoothed.append(shares.rolling(max(1, window), min_periods=1).mean())
    stacked = pd.concat(smoothed).rename(columns=lambda column: column.removeprefix(prefix))
    if stacked.empty:
        raise ValueError(f"run {run!r}: no step has strategy shares (were the labels missing?)")
    grouped = stacked.groupby(level="step")
    return grouped.mean(), grouped.std(ddof=0).fillna(0.0)


def _strategy_order(columns: Sequence[str]) -> list[str]:
    known = [strategy for strategy in (*_STRATEGY_ORDER, *STRATEGIES) if strategy in columns]
    return list(dict.fromkeys(known + sorted(set(columns) - set(known))))


def _strategy_color(strategy: str) -> Any:
    return STRATEGY_COLORS.get(strategy, _OTHER_COLORS[zlib.crc32(strategy.encode()) % len(_OTHER_COLORS)])


def plot_strategy_shares(
    runs: Runs,
    out_dir: str | os.PathLike[str],
    *,
    name: str = "strategy_shares",
    kind: str = "area",
    window: int = 1,
    bands: bool = True,
    prefix: str = METRIC_PREFIX,
    question: str = "Which strategies spread among the rollouts as training goes on?",
) -> Figure:
    """One panel per run: the share of each organism strategy among its rollouts against step.

    ``runs`` maps a run (method) to its metrics, or to several seeds' metrics, whose mean is drawn
    (:func:`strategy_curves`). ``kind="area"`` stacks the shares (they sum to 1); ``kind="lines"``
    draws one line per strategy, with a band of ± one standard deviation over seeds when ``bands``.
    Each strategy has one colour (:data:`STRATEGY_COLORS`; ``template`` is the constant answer).
    """
    if kind not in ("area", "lines"):
        raise ValueError(f"kind must be 'area' or 'lines', got {kind!r}")
    order = run_order(list(runs))
    curves = {run: strategy_curves(runs[run], window=window, run=run, prefix=prefix) for run in order}
    strategies = _strategy_order([s for mean, _ in curves.values() for s in mean.columns])
    figure, axes = _grid(len(curves))
    for axis, (run, (mean, sd)) in zip(axes, curves.items(), strict=True):
        steps = mean.index.to_numpy()
        drawn = [strategy for strategy in strategies if strategy in mean.columns]
        colors = [_strategy_color(strategy) for strategy in drawn]
        if kind == "area":
            axis.stackplot(steps, *(mean[s].to_numpy() for s in drawn), colors=colors, linewidth=0)
        else:
            for strategy, color in zip(drawn, colors, strict=True):
                axis.plot(steps, mean[strategy], color=color)
                if bands and (sd[strategy] > 0).any():
                    low, high = mean[strategy] - sd[strategy], mean[strategy] + sd[strategy]
                    axis.fill_between(
                        steps, low.clip(0, 1), high.clip(0, 1), color=color, alpha=0.2, linewidth=0
                    )
        seeds = len(_seeds(runs[run]))
        axis.set_title(f"{run} (mean of {seeds} seeds)" if seeds > 1 else run)
        axis.set(xlabel="step", ylabel="share of samples", ylim=(0, 1))
    counts = {len(_seeds(frames)) for frames in runs.values()}
    seeds_text = "-".join(map(str, sorted(counts)[:: max(1, len(counts) - 1)]))
    where = "held-out samples" if prefix != METRIC_PREFIX else "the step's training rollouts"
    _title(
        figure,
        question,
        f"{seeds_text} seed(s) per run; shares of {where}, rolling mean over {window} step(s)",
    )
    handles = [Patch(color=_strategy_color(strategy), label=strategy) for strategy in strategies]
    _legend(figure, handles, title="strategy")
    save_figure(figure, out_dir, name)
    return figure


def plot_eval_strategy_shares(
    results: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    name: str = "eval_strategy_shares",
    question: str = "Which strategies do the trained models use on held-out problems?",
    note: str | None = None,
) -> Figure:
    """Stacked bars: the strategy shares of each model's evaluation samples (``strategy/<name>`` rows,
    averaged over a model's seeds). ``note`` replaces the subtitle's seed count (counted from a ``seed``
    column), for rows that are already seed means (``corerl.study.curves.saved_regime_shares``)."""
    _require(results, ["model", "metric", "value"], "results table")
    chosen = results[results["metric"].astype(str).str.startswith(METRIC_PREFIX)].copy()
    if chosen.empty:
        raise ValueError("results table has no strategy/<name> rows (the organism benchmark writes them)")
    chosen["model"] = chosen["model"].map(run_key)
    table = chosen.pivot_table(index="model", columns="metric", values="value", aggfunc="mean", sort=False)
    models = run_order(list(table.index))
    table = table.loc[models].rename(columns=lambda column: column.removeprefix(METRIC_PREFIX))
    strategies = _strategy_order(list(table.columns))
    figure, (axis,) = _grid(1, size=(max(4.0, 0.8 * len(models) + 2), 3.8))
    bottom = [0.0] * len(models)
    for strategy in strategies:
        values = table[strategy].fillna(0.0).tolist()
        axis.bar(range(len(models)), values, bottom=bottom, color=_strategy_color(strategy), label=strategy)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_xticks(range(len(models)), models, rotation=30, ha="right")
    axis.set(ylabel="share of evaluation samples", ylim=(0, 1))
    seeds = chosen.groupby("model")["seed"].nunique() if "seed" in chosen.columns else pd.Series([1])
    low, high = int(seeds.min()), int(seeds.max())
    questions = f", {int(chosen['n'].max())} questions" if "n" in chosen.columns else ""
    counted = f"{low if low == high else f'{low}-{high}'} seed(s) per model{questions}"
    _title(figure, question, note or counted)
    handles = [Patch(color=_strategy_color(strategy), label=strategy) for strategy in strategies]
    _legend(figure, handles, title="strategy")
    save_figure(figure, out_dir, name)
    return figure
