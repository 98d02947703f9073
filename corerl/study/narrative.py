"""What a run showed, in sentences computed from its own numbers (the notebooks print them after figures).

Every function reads the same inputs as the figure it follows (a run mapped to its ``metrics.jsonl``
frame or to its seeds' frames; :mod:`corerl.evaluate` rows; the held-out long-form frame) and returns
Markdown: one bullet per run, numbers taken from the data, never a fixed text. Seeds are averaged
step by step, as the figures draw them; "sd" is the standard deviation over seeds.

- :func:`describe_curves`: a metric's start, peak and end per run;
- :func:`describe_reward_vs_accuracy`: did the reward rise while training-batch accuracy fell;
- :func:`describe_heldout`: rise, peak and fall of held-out accuracy by :func:`corerl.collapse.heldout_verdict`;
- :func:`describe_results`: each model against the base model per benchmark, with the seeds' spread;
- :func:`describe_strategies`: which organism strategies grew and shrank;
- :func:`describe_collapse_steps`: where each run reached the Model Collapse Step, or how close it came;
- :func:`describe_final_shares`: which strategy each method's final models converged to (saved
  benchmark results, ``corerl.study.curves.saved_regime_shares``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from corerl.collapse import heldout_verdict
from corerl.plots import LABELS, long_form, run_key, run_order, strategy_curves

if TYPE_CHECKING:
    import pandas as pd

Runs = Mapping[str, "pd.DataFrame | Sequence[pd.DataFrame]"]


def _seeds(count: int) -> str:
    return f"{count} seed{'s' * (count != 1)}"


def _mean_curve(long: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    grouped = long.groupby("step")["value"]
    return grouped.mean().sort_index(), grouped.std(ddof=1).sort_index()


def describe_curves(runs: Runs, column: str, *, window: int = 1) -> str:
    """Per run: the seed-mean ``column`` at the first and last logged step and its peak.

    >>> import pandas as pd
    >>> seeds = [pd.DataFrame({"step": [1, 2, 3], "kl": [0.0, 0.4, 0.2]}), pd.DataFrame({"step": [1, 2, 3], "kl": [0.0, 0.2, 0.4]})]
    >>> print(describe_curves({"entropy": seeds}, "kl"))
    KL, seed mean:
    - **entropy** (2 seeds): 0 at step 1 → 0.3 at step 3 (highest 0.3 at step 2; sd over seeds at the end 0.141)
    """
    long = long_form(runs, [column], window=window)
    if long.empty:
        return f"No run logged {LABELS.get(column, column)}."
    lines = [
        f"{LABELS.get(column, column)}, seed mean{f' (rolling mean over {window} steps)' * (window > 1)}:"
    ]
    for run in run_order(list(dict.fromkeys(long["run"]))):
        part = long[long["run"] == run]
        mean, sd = _mean_curve(part)
        end_sd = sd.iloc[-1]
        spread = f"; sd over seeds at the end {end_sd:.3g}" if not math.isnan(end_sd) else ""
        lines.append(
            f"- **{run}** ({_seeds(part['seed'].nunique())}): {mean.iloc[0]:.3g} at step {mean.index[0]} → "
            f"{mean.iloc[-1]:.3g} at step {mean.index[-1]} (highest {mean.max():.3g} at step {mean.idxmax()}{spread})"
        )
    return "\n".join(lines)


def describe_reward_vs_accuracy(runs: Runs, *, window: int = 1) -> str:
    """Per run: the change of the mean reward (in the run's own sd, as scales differ) from the first to
    the last logged step, against the change of the training batch's oracle accuracy.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"step": [1, 2, 3], "reward_mean": [10.0, 12.0, 14.0], "oracle_accuracy": [0.5, 0.45, 0.4]})
    >>> print(describe_reward_vs_accuracy({"self-certainty": frame}))
    - **self-certainty**: mean reward 10 → 14 (+2.4 sd of its own values); oracle accuracy (training batch) 50.0% → 40.0% (-10.0 points): the reward rose while accuracy fell
    """
    lines = []
    for run in run_order(list(runs)):
        long = long_form({run: runs[run]}, ["reward_mean", "oracle_accuracy"], window=window)
        reward, _ = _mean_curve(long[long["metric"] == "reward_mean"])
        accuracy, _ = _mean_curve(long[long["metric"] == "oracle_accuracy"])
        if reward.empty or accuracy.empty:
            lines.append(f"- **{run}**: no reward or oracle accuracy logged")
            continue
        scale = float(reward.std(ddof=0)) or 1.0
        reward_change = (reward.iloc[-1] - reward.iloc[0]) / scale
        accuracy_change = (accuracy.iloc[-1] - accuracy.iloc[0]) * 100
        if reward_change > 0 and accuracy_change < 0:
            reading = "the reward rose while accuracy fell"
        elif reward_change > 0 and accuracy_change > 0:
            reading = "both rose"
        else:
            reading = "the reward did not rise" if reward_change <= 0 else "accuracy did not move"
        lines.append(
            f"- **{run}**: mean reward {reward.iloc[0]:.3g} → {reward.iloc[-1]:.3g} ({reward_change:+.2g} sd of its own "
            f"values); {LABELS['oracle_accuracy']} {accuracy.iloc[0]:.1%} → {accuracy.iloc[-1]:.1%} "
            f"({accuracy_change:+.1f} points): {reading}"
        )
    return "\n".join(lines)


def describe_heldout(frame: pd.DataFrame) -> str:
    """Per method: held-out accuracy at the start, its peak and the end, and the collapse verdict
    (:func:`corerl.collapse.heldout_verdict`); ``frame`` has columns method, seed, step, accuracy."""
    values = frame.dropna(subset=["accuracy"])
    if values.empty:
        return "No held-out accuracy was logged (train with eval_every > 0)."
    lines = ["Held-out accuracy, seed mean (rule: `corerl.collapse.heldout_verdict`):"]
    for method in run_order(list(dict.fromkeys(values["method"]))):
        verdict = heldout_verdict(values[values["method"] == method])
        numbers = (
            f"{verdict.base:.1%} at the start → highest {verdict.peak:.1%} at step {verdict.peak_step} → "
            f"{verdict.final:.1%} at step {verdict.final_step}"
        )
        if verdict.n_seeds < 2:
            reading = "one seed: no spread to judge a fall by, so no verdict"
        elif verdict.collapsed:
            reading = (
                f"it rose, then fell {verdict.drop * 100:.1f} points, more than the seeds' band "
                f"({verdict.spread * 100:.1f} points): **collapse**"
            )
        elif verdict.rose:
            reading = f"it rose and did not fall back by more than the seeds' band ({verdict.spread * 100:.1f} points)"
        elif verdict.base - verdict.final > max(verdict.spread, 0.02):
            reading = (
                f"no rise beyond the seeds' band ({verdict.spread * 100:.1f} points); it ended "
                f"{(verdict.base - verdict.final) * 100:.1f} points below the start"
            )
        else:
            reading = f"no rise beyond the seeds' band ({verdict.spread * 100:.1f} points)"
        lines.append(f"- **{method}** ({_seeds(verdict.n_seeds)}): {numbers}; {reading}")
    return "\n".join(lines)


def _own_baseline(model: str, baseline: str, present: list[str]) -> str | None:
    """The baseline row ``model`` is compared with: ``<baseline>-<suffix>`` for a model named
    ``...-<suffix>`` (longest suffix first), else ``baseline`` itself; None when neither is present."""
    for name in sorted(present, key=len, reverse=True):
        if name != baseline and model.endswith(name.removeprefix(baseline)):
            return name
    return baseline if baseline in present else None


def describe_results(results: pd.DataFrame, *, metric: str = "avg@k", baseline: str = "base") -> str:
    """Per benchmark: each model's ``metric`` (mean ± sd over its seeds) and its difference to ``baseline``;
    a difference within the model's seed sd is called so. A model named ``<name>-<suffix>`` (a run on
    another prior, e.g. ``majority-vote-illusion``) is compared with ``<baseline>-<suffix>`` when that
    row exists (``base-illusion``), so that no run is measured against another prior's base.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"benchmark": "organism", "metric": "avg@k", "model": ["base", "gt", "gt-seed1"],
    ...                      "value": [0.5, 0.7, 0.74]})
    >>> print(describe_results(rows))
    **organism**, avg@k (mean ± sd over seeds):
    - gt: 72.0 ± 2.8 (2 seeds), +22.0 points against base (best)
    - base: 50.0 (1 seed)
    >>> rows = pd.DataFrame({"benchmark": "organism", "metric": "avg@k", "model": ["base", "base-illusion",
    ...                      "mv-illusion"], "value": [0.5, 0.4, 0.3]})
    >>> print(describe_results(rows).splitlines()[-1])
    - mv-illusion: 30.0 (1 seed), -10.0 points against base-illusion
    """
    chosen = results[results["metric"] == metric].assign(model=lambda f: f["model"].map(run_key))
    if chosen.empty:
        return f"No evaluation with metric {metric!r}."
    lines = []
    for benchmark, rows in chosen.groupby("benchmark", sort=False):
        stats = rows.groupby("model")["value"].agg(["mean", "std", "count"]) * [100, 100, 1]
        stats = stats.sort_values("mean", ascending=False)
        lines.append(f"**{benchmark}**, {metric} (mean ± sd over seeds):")
        baselines = [name for name in stats.index if name == baseline or name.startswith(f"{baseline}-")]
        for position, (model, row) in enumerate(stats.iterrows()):
            spread = f" ± {row['std']:.1f}" if not math.isnan(row["std"]) else ""
            text = f"- {model}: {row['mean']:.1f}{spread} ({_seeds(int(row['count']))})"
            own = _own_baseline(str(model), baseline, baselines)
            if own is not None and model not in baselines:
                difference = row["mean"] - stats["mean"][own]
                text += f", {difference:+.1f} points against {own}"
                if not math.isnan(row["std"]) and abs(difference) <= row["std"]:
                    text += " (within the seeds' sd)"
            best = (
                position == 0 and len(stats) > 1 and row["mean"] > stats["mean"].iloc[1]
            )  # a tie has no best
            lines.append(text + (" (best)" if best else ""))
    return "\n".join(lines)


def describe_strategies(runs: Runs, *, window: int = 1, prefix: str = "strategy/") -> str:
    """Per run: the strategy shares at the first and last step (seed mean), the largest rise and fall.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"step": [1, 2], "strategy/worked-correct": [0.4, 0.7], "strategy/template": [0.3, 0.1],
    ...                       "strategy/other": [0.3, 0.2]})
    >>> print(describe_strategies({"majority-vote": frame}))
    - **majority-vote** (1 seed): worked-correct 40% → 70% (+30 points, the largest rise); template 30% → 10% (-20 points, the largest fall); most common at the end: worked-correct
    """
    lines = []
    for run in run_order(list(runs)):
        mean, _ = strategy_curves(runs[run], window=window, run=run, prefix=prefix)
        first, last = mean.iloc[0], mean.iloc[-1]
        change = (last - first).sort_values()
        grew, shrank = change.index[-1], change.index[0]
        seeds = 1 if hasattr(runs[run], "columns") else len(runs[run])
        if change.abs().max() < 0.01:
            lines.append(
                f"- **{run}** ({_seeds(seeds)}): no share moved by 1 point or more; most common: {last.idxmax()}"
            )
            continue
        parts = [
            f"{grew} {first[grew]:.0%} → {last[grew]:.0%} ({change[grew] * 100:+.0f} points, the largest rise)",
            f"{shrank} {first[shrank]:.0%} → {last[shrank]:.0%} ({change[shrank] * 100:+.0f} points, the largest fall)",
        ]
        lines.append(
            f"- **{run}** ({_seeds(seeds)}): {'; '.join(parts)}; most common at the end: {last.idxmax()}"
        )
    return "\n".join(lines)


def describe_final_shares(rows: pd.DataFrame, *, baseline: str = "base") -> str:
    """Per model of ``rows`` (model, metric ``strategy/<name>``, value; ``n_seeds`` optional, as
    :func:`corerl.study.curves.saved_regime_shares` gives them): its most common strategy (what it
    converged to, where that share is large) and the share that moved most from ``baseline``'s.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"model": ["base"] * 3 + ["majority-vote"] * 3,
    ...                      "metric": ["strategy/worked-correct", "strategy/template", "strategy/other"] * 2,
    ...                      "value": [0.6, 0.3, 0.1, 0.1, 0.9, 0.0], "n_seeds": [1, 1, 1, 3, 3, 3]})
    >>> print(describe_final_shares(rows))
    - **majority-vote** (3 seeds): most common at the end template (90% of samples; base 30%); the largest move from the base: template +60 points
    """
    table = rows.pivot_table(index="model", columns="metric", values="value", aggfunc="mean", sort=False)
    table = table.rename(columns=lambda column: str(column).removeprefix("strategy/"))
    if baseline not in table.index:
        raise ValueError(f"no {baseline!r} row among the models ({', '.join(map(str, table.index))})")
    base = table.loc[baseline]
    lines = []
    for model in run_order([model for model in table.index if model != baseline]):
        shares = table.loc[model]
        top = str(shares.idxmax())
        moved = (shares - base).dropna()
        largest = str(moved.abs().idxmax())
        seeds = int(rows.loc[rows["model"] == model, "n_seeds"].max()) if "n_seeds" in rows else 1
        lines.append(
            f"- **{model}** ({_seeds(seeds)}): most common at the end {top} ({shares[top]:.0%} of samples; "
            f"base {base[top]:.0%}); the largest move from the base: {largest} {moved[largest] * 100:+.0f} points"
        )
    return "\n".join(lines)


def describe_collapse_steps(table: pd.DataFrame, *, threshold: float = 0.01) -> str:
    """Per run of ``corerl.collapse.model_collapse_steps``'s table: the seeds' Model Collapse Steps, or,
    where a seed never went below ``threshold``, that it was not reached in its steps and the lowest
    reward accuracy it came to.

    >>> import pandas as pd
    >>> table = pd.DataFrame({"run": ["mv", "mv"], "seed": [0, 1], "steps": [50, 50],
    ...                       "model_collapse_step": [None, 31], "lowest": [0.12, 0.0], "lowest_step": [44, 31]})
    >>> print(describe_collapse_steps(table))
    - **mv** (2 seeds): reached at step 31 by 1 of 2 seeds; not reached in 50 steps by the other (lowest reward accuracy 12% at step 44)
    """
    lines = []
    for run in run_order(list(dict.fromkeys(table["run"]))):
        rows = table[table["run"] == run]
        reached = rows[rows["model_collapse_step"].notna()]
        held = rows[rows["model_collapse_step"].isna()]
        parts = []
        if len(reached):
            steps = ", ".join(str(int(step)) for step in reached["model_collapse_step"])
            parts.append(f"reached at step {steps} by {len(reached)} of {len(rows)} seeds")
        if len(held):
            lowest = held.loc[held["lowest"].idxmin()]
            who = "the other" if len(reached) else "any seed"
            who = who if len(held) == 1 or not len(reached) else "the others"
            parts.append(
                f"not reached in {int(held['steps'].max())} steps by {who} (lowest reward accuracy "
                f"{lowest['lowest']:.0%} at step {int(lowest['lowest_step'])})"
            )
        lines.append(f"- **{run}** ({_seeds(len(rows))}): {'; '.join(parts)}")
    return "\n".join(lines) or f"No run logged reward accuracy (threshold {threshold:.0%})."


def describe_early_stopping(plain: pd.DataFrame, kept: pd.DataFrame) -> str:
    """SRT's claim (Sec. 5.1: the validation peak is the test peak) read off saved runs: ``plain`` the
    held-out curves (method, seed, step, accuracy) of the run without early stopping, ``kept``
    (``corerl.study.curves.saved_kept_models``) the early-stopped seeds. Says where they stopped, what
    the kept checkpoints score against the plain run's peak and final, and whether that is within the
    plain run's spread of its peak (``corerl.collapse.heldout_verdict``).

    >>> import pandas as pd
    >>> plain = pd.DataFrame([(seed, s, a + 0.02 * seed) for seed in range(2) for s, a in [(0, 0.4), (100, 0.6), (200, 0.5)]],
    ...                      columns=["seed", "step", "accuracy"])
    >>> kept = pd.DataFrame({"seed": [0, 1], "stopped_at": [175, 200], "kept_step": [100, 100], "kept": [0.6, 0.58]})
    >>> print(describe_early_stopping(plain, kept))
    Early stopping stopped at steps 175, 200 and kept the checkpoints of steps 100, 100: held-out 59.0 ± 1.4 (2 seeds), against the run without it: peak 61.0 (step 100), final 51.0. The kept models are within the plain run's spread (2.8) of its peak and above its final.
    """
    if plain.empty or kept.empty:
        return "No saved run to compare (the plain or the early-stopped file is missing)."
    verdict = heldout_verdict(plain)
    score = 100.0 * kept["kept"]
    spread = f" ± {score.std(ddof=1):.1f}" if len(score) > 1 else ""
    near = verdict.peak - score.mean() / 100.0 <= verdict.spread
    above = score.mean() / 100.0 > verdict.final
    reading = (
        f"{'within' if near else 'below'} the plain run's spread ({100 * verdict.spread:.1f}) of its peak and "
        f"{'above' if above else 'not above'} its final"
    )
    return (
        f"Early stopping stopped at steps {', '.join(map(str, kept['stopped_at']))} and kept the checkpoints of "
        f"steps {', '.join(map(str, kept['kept_step']))}: held-out {score.mean():.1f}{spread} "
        f"({_seeds(len(score))}), against the run without it: peak {100 * verdict.peak:.1f} (step "
        f"{verdict.peak_step}), final {100 * verdict.final:.1f}. The kept models are {reading}."
    )
