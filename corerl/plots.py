"""The study's figures: one function per figure, each saved as PNG and SVG into a given folder.

Figures are built on ``matplotlib.figure.Figure`` directly, not through ``pyplot``: nothing
switches the global backend (PNGs render with Agg), nothing needs a display, and no figure stays
open in pyplot's registry. Each function returns the figure, so a notebook cell that ends with the
call shows it. Inputs are the frames of :mod:`corerl.collapse` and :mod:`corerl.evaluate`, keyed
by run name. The strategy-share figures (issue 11) read the organism's ``strategy/<name>`` metrics
and take several seeds' frames per run, plotting their mean.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from corerl.collapse import CURVE_COLUMNS
from corerl.organism.strategies import METRIC_PREFIX, STRATEGIES

FORMATS: tuple[str, ...] = ("png", "svg")
SVG_HASHSALT = "corerl"  # fixed salt for the SVG ids, so the files do not change from run to run

LABELS: dict[str, str] = {
    "reward_mean": "mean reward",
    "oracle_accuracy": "oracle accuracy",
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
}


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


def _grid(count: int, columns: int = 3, size: tuple[float, float] = (4.0, 2.8)) -> tuple[Figure, list]:
    if count == 0:
        raise ValueError("nothing to plot: no runs, or no metric with a value in any run")
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for unused in axes[count:]:
        unused.set_visible(False)
    return figure, axes[:count]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise KeyError(f"{what} has no column(s) {missing}")


def _line(axis: Any, metrics: pd.DataFrame, column: str, **style: Any) -> None:
    """One curve against step; with a ``<column>_sd`` column (seeds, ``Study.seed_curves``) a
    mean ± sd band around it."""
    sd = f"{column}_sd"
    values = metrics[["step", column, *([sd] if sd in metrics.columns else [])]].dropna(subset=[column])
    (line,) = axis.plot(values["step"], values[column].astype(float), **style)
    if sd in values.columns and values[sd].notna().any():
        mean, spread = values[column].astype(float), values[sd].astype(float).fillna(0.0)
        axis.fill_between(values["step"], mean - spread, mean + spread, color=line.get_color(), alpha=0.2)


def plot_training_curves(
    runs: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    columns: Sequence[str] = CURVE_COLUMNS,
    name: str = "training_curves",
) -> Figure:
    """One panel per metric (those with any value in any run), one line per run, against step."""
    present = [c for c in columns if any(c in m.columns and m[c].notna().any() for m in runs.values())]
    figure, axes = _grid(len(present))
    for axis, column in zip(axes, present, strict=True):
        for run, metrics in runs.items():
            if column in metrics.columns and metrics[column].notna().any():
                _line(axis, metrics, column, label=run)
        axis.set_title(LABELS.get(column, column))
        axis.set_xlabel("step")
    if axes:
        axes[0].legend(fontsize="small")
    save_figure(figure, out_dir, name)
    return figure


def plot_reward_vs_accuracy(
    runs: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    collapse_steps: Mapping[str, int | None] | None = None,
    name: str = "reward_vs_accuracy",
) -> Figure:
    """Per run: mean reward and oracle accuracy against step; a dashed line at the collapse step."""
    figure, axes = _grid(len(runs))
    for axis, (run, metrics) in zip(axes, runs.items(), strict=True):
        _require(metrics, ["step", "reward_mean", "oracle_accuracy"], f"metrics of run {run!r}")
        for column in ("reward_mean", "oracle_accuracy"):
            _line(axis, metrics, column, label=LABELS[column])
        step = (collapse_steps or {}).get(run)
        if step is not None:
            axis.axvline(step, color="grey", linestyle="--", label=f"collapse (step {step})")
        axis.set_title(run)
        axis.set_xlabel("step")
        axis.legend(fontsize="small")
    save_figure(figure, out_dir, name)
    return figure


def plot_reward_accuracy(
    runs: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    threshold: float = 0.01,
    name: str = "reward_accuracy",
) -> Figure:
    """Reward accuracy against step for each run, the Model Collapse Step threshold as a line."""
    if not runs:
        raise ValueError("nothing to plot: no runs")
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axis = figure.subplots()
    for run, metrics in runs.items():
        _require(metrics, ["step", "reward_accuracy"], f"metrics of run {run!r}")
        values = metrics[["step", "reward_accuracy"]].dropna()
        axis.plot(values["step"], values["reward_accuracy"].astype(float), label=run)
    axis.axhline(threshold, color="grey", linestyle="--", label=f"threshold {threshold:g}")
    axis.set_xlabel("step")
    axis.set_ylabel(LABELS["reward_accuracy"])
    axis.legend(fontsize="small")
    save_figure(figure, out_dir, name)
    return figure


def plot_degenerate_outputs(
    diagnostics: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    columns: Sequence[str] = (
        "identical_answer_share",
        "repeated_ngram_share",
        "no_answer_rate",
        "truncation_rate",
    ),
    name: str = "degenerate_outputs",
) -> Figure:
    """Panels of :func:`corerl.collapse.degenerate_outputs` columns against step, one line per run."""
    present = [c for c in columns if any(c in d.columns and d[c].notna().any() for d in diagnostics.values())]
    figure, axes = _grid(len(present), columns=2)
    for axis, column in zip(axes, present, strict=True):
        for run, frame in diagnostics.items():
            if column in frame.columns and frame[column].notna().any():
                values = frame[["step", column]].dropna()
                axis.plot(values["step"], values[column].astype(float), marker=".", label=run)
        axis.set_title(LABELS.get(column, column))
        axis.set_xlabel("step")
    if axes:
        axes[0].legend(fontsize="small")
    save_figure(figure, out_dir, name)
    return figure


def plot_eval_results(
    results: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    metric: str = "avg@k",
    name: str = "eval_results",
) -> Figure:
    """Grouped bars of one metric from a :mod:`corerl.evaluate` table: benchmarks x models."""
    _require(results, ["benchmark", "model", "metric", "value"], "results table")
    chosen = results[results["metric"] == metric]
    if chosen.empty:
        raise ValueError(f"results table has no rows for metric {metric!r}")
    table = chosen.pivot_table(index="benchmark", columns="model", values="value", aggfunc="mean", sort=False)
    figure = Figure(
        figsize=(max(4.0, 1.6 * len(table.index) * max(1, len(table.columns)) / 2), 3.5), layout="constrained"
    )
    axis = figure.subplots()
    width = 0.8 / max(1, len(table.columns))
    for offset, model in enumerate(table.columns):
        positions = [i + (offset - (len(table.columns) - 1) / 2) * width for i in range(len(table.index))]
        axis.bar(positions, table[model].to_numpy() * 100, width=width, label=str(model))
    axis.set_xticks(range(len(table.index)), [str(b) for b in table.index])
    axis.set_ylabel(f"{metric} (%)")
    axis.legend(fontsize="small")
    save_figure(figure, out_dir, name)
    return figure


STRATEGY_COLORS: dict[str, str] = {
    "worked-correct": "tab:green",
    "worked-wrong": "tab:red",
    "shortcut-first": "tab:blue",
    "shortcut-last": "tab:purple",
    "template": "tab:orange",
    "no-answer": "tab:gray",
    "other": "tab:olive",
}


def strategy_curves(
    runs: pd.DataFrame | Sequence[pd.DataFrame], *, window: int = 1, run: str = "run"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard deviation over seeds of each strategy share at each step (``step`` the index).

    ``runs`` is one run's metrics or several seeds' metrics of one run; each seed is smoothed first by
    a trailing rolling mean over ``window`` steps (shares still sum to 1), steps without shares (no
    labels) are dropped. The deviation is 0 with one seed.

    >>> seeds = [pd.DataFrame({"step": [1, 2], **{f"strategy/{s}": [0.0, 0.0] for s in STRATEGIES}})
    ...          .assign(**{"strategy/worked-correct": share, "strategy/other": 1 - share}) for share in (0.2, 0.6)]
    >>> mean, sd = strategy_curves(seeds)
    >>> mean["worked-correct"].round(2).tolist(), sd["worked-correct"].round(2).tolist()
    ([0.4, 0.4], [0.2, 0.2])
    """
    frames = [runs] if isinstance(runs, pd.DataFrame) else list(runs)
    if not frames:
        raise ValueError(f"run {run!r}: no metrics given")
    columns = [f"{METRIC_PREFIX}{strategy}" for strategy in STRATEGIES]
    smoothed = []
    for seed, metrics in enumerate(frames):
        _require(
            metrics,
            ["step", *columns],
            f"metrics of run {run!r} (seed {seed}); strategy shares exist only on the organism's data",
        )
        shares = metrics[["step", *columns]].dropna().sort_values("step").set_index("step").astype(float)
        smoothed.append(shares.rolling(max(1, window), min_periods=1).mean())
    stacked = pd.concat(smoothed).rename(columns=lambda column: column.removeprefix(METRIC_PREFIX))
    if stacked.empty:
        raise ValueError(f"run {run!r}: no step has strategy shares (were the labels missing?)")
    grouped = stacked.groupby(level="step")
    return grouped.mean(), grouped.std(ddof=0).fillna(0.0)


def plot_strategy_shares(
    runs: Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]],
    out_dir: str | os.PathLike[str],
    *,
    name: str = "strategy_shares",
    kind: str = "area",
    window: int = 1,
    bands: bool = True,
) -> Figure:
    """One panel per run: the share of each organism strategy among its rollouts against step.

    ``runs`` maps a run (method) to its metrics, or to several seeds' metrics, whose mean is drawn
    (:func:`strategy_curves`). ``kind="area"`` stacks the shares (they sum to 1); ``kind="lines"``
    draws one line per strategy, with a band of ± one standard deviation over seeds when ``bands``.
    """
    if kind not in ("area", "lines"):
        raise ValueError(f"kind must be 'area' or 'lines', got {kind!r}")
    curves = {run: strategy_curves(frames, window=window, run=run) for run, frames in runs.items()}
    figure, axes = _grid(len(curves))
    for axis, (run, (mean, sd)) in zip(axes, curves.items(), strict=True):
        steps = mean.index.to_numpy()
        colors = [STRATEGY_COLORS[strategy] for strategy in STRATEGIES]
        if kind == "area":
            axis.stackplot(steps, *(mean[s].to_numpy() for s in STRATEGIES), labels=STRATEGIES, colors=colors)
        else:
            for strategy, color in zip(STRATEGIES, colors, strict=True):
                axis.plot(steps, mean[strategy], color=color, label=strategy)
                if bands and (sd[strategy] > 0).any():
                    low, high = mean[strategy] - sd[strategy], mean[strategy] + sd[strategy]
                    axis.fill_between(steps, low.clip(0, 1), high.clip(0, 1), color=color, alpha=0.2)
        seeds = 1 if isinstance(runs[run], pd.DataFrame) else len(runs[run])
        axis.set_title(run if seeds == 1 else f"{run} (mean of {seeds} seeds)")
        axis.set_xlabel("step")
        axis.set_ylabel("share of rollouts")
        axis.set_ylim(0, 1)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(STRATEGIES), fontsize="small")
    save_figure(figure, out_dir, name)
    return figure


def plot_eval_strategy_shares(
    results: pd.DataFrame, out_dir: str | os.PathLike[str], *, name: str = "eval_strategy_shares"
) -> Figure:
    """Stacked bars: the strategy shares of each model's evaluation samples (``strategy/<name>`` rows)."""
    _require(results, ["model", "metric", "value"], "results table")
    chosen = results[results["metric"].astype(str).str.startswith(METRIC_PREFIX)]
    if chosen.empty:
        raise ValueError("results table has no strategy/<name> rows (the organism benchmark writes them)")
    table = chosen.pivot_table(index="model", columns="metric", values="value", aggfunc="mean", sort=False)
    figure = Figure(figsize=(max(4.0, 0.9 * len(table.index) + 2), 3.5), layout="constrained")
    axis = figure.subplots()
    bottom = [0.0] * len(table.index)
    for strategy in STRATEGIES:
        column = f"{METRIC_PREFIX}{strategy}"
        values = table[column].fillna(0.0).tolist() if column in table else [0.0] * len(table.index)
        axis.bar(
            range(len(table.index)), values, bottom=bottom, color=STRATEGY_COLORS[strategy], label=strategy
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_xticks(range(len(table.index)), [str(model) for model in table.index], rotation=30, ha="right")
    axis.set_ylabel("share of evaluation samples")
    axis.set_ylim(0, 1)
    axis.legend(fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    save_figure(figure, out_dir, name)
    return figure
