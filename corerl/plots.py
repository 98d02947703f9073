"""The study's figures: one function per figure, each saved as PNG and SVG into a given folder.

Figures are built on ``matplotlib.figure.Figure`` directly, not through ``pyplot``: nothing
switches the global backend (PNGs render with Agg), nothing needs a display, and no figure stays
open in pyplot's registry. Each function returns the figure, so a notebook cell that ends with the
call shows it. Inputs are the frames of :mod:`corerl.collapse` and :mod:`corerl.evaluate`, keyed
by run name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from corerl.collapse import CURVE_COLUMNS

FORMATS: tuple[str, ...] = ("png", "svg")

LABELS: dict[str, str] = {
    "reward_mean": "mean reward",
    "oracle_accuracy": "oracle accuracy",
    "pseudo_label_accuracy": "pseudo-label accuracy",
    "reward_accuracy": "reward accuracy",
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
    """Write ``figure`` as ``out_dir/name.png`` and ``out_dir/name.svg``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{fmt}" for fmt in FORMATS]
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
