"""corerl.plots read back from the drawn figures (matplotlib artists): colours fixed per run, every line in
the one legend, rewards on other scales not squashing the rest, collapse markers only from held-out curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from corerl import plots
from corerl.arithmetic.strategies import STRATEGIES

STEPS = np.arange(0, 41)


def seed_frame(seed: int, *, reward_scale: float = 1.0, heldout=None, entropy: bool = False) -> pd.DataFrame:
    """One seed's metrics: accuracy rising with noise, reward = accuracy x ``reward_scale``, held-out
    accuracy every 10 steps from ``heldout(step)`` plus the seed's offset."""
    noise = np.random.default_rng(seed).normal(0, 0.03, len(STEPS))
    accuracy = 0.4 + 0.01 * STEPS + noise
    frame = pd.DataFrame({"step": STEPS, "oracle_accuracy": accuracy, "reward_mean": accuracy * reward_scale})
    if entropy:
        frame["token_entropy"] = 1.5 - 0.02 * STEPS + noise
    if heldout is not None:
        offset = (-0.02, 0.0, 0.02)[seed % 3]
        frame["heldout/accuracy"] = [heldout(s) + offset if s % 10 == 0 else None for s in STEPS]
    return frame


def rising(step: int) -> float:
    return 0.4 + 0.008 * step


def rise_then_fall(step: int) -> float:
    return 0.4 + 0.02 * step if step <= 20 else 0.8 - 0.025 * (step - 20)


def seeds(**options) -> list[pd.DataFrame]:
    return [seed_frame(seed, **options) for seed in range(3)]


def data_lines(figure: Figure) -> list:
    """The drawn curves: lines with at least two points, in every axes (twin axes included)."""
    return [
        line
        for axis in figure.axes
        for line in axis.get_lines()
        if len(line.get_xdata()) >= 2 and line.get_gid() != plots.COLLAPSE_GID
    ]


def legend_colors(figure: Figure) -> set[str]:
    assert len(figure.legends) == 1, "one legend per figure"
    assert all(axis.get_legend() is None for axis in figure.axes), "no legend inside a panel"
    return {to_hex(handle.get_color()) for handle in figure.legends[0].legend_handles}


def panel(figure: Figure, title: str):
    return next(axis for axis in figure.axes if axis.get_title().startswith(title))


def markers(figure: Figure) -> list:
    return [
        artist
        for axis in figure.axes
        for artist in axis.get_children()
        if artist.get_gid() == plots.COLLAPSE_GID
    ]


def test_a_run_missing_a_metric_keeps_its_colour(tmp_path: Path) -> None:
    runs = {"ground-truth": seeds(), "entropy": seeds(entropy=True), "self-certainty": seeds(entropy=True)}
    figure = plots.plot_training_curves(runs, tmp_path)
    entropy_panel = panel(figure, "token entropy")
    colors = [to_hex(line.get_color()) for line in entropy_panel.get_lines()]
    assert colors == [to_hex(plots.color_of("entropy")), to_hex(plots.color_of("self-certainty"))]
    accuracy_panel = panel(figure, "oracle accuracy")
    assert [to_hex(line.get_color()) for line in accuracy_panel.get_lines()] == [
        to_hex(plots.color_of(run)) for run in ("ground-truth", "entropy", "self-certainty")
    ]
    # The same colour in another figure, whatever else it holds, and in any key order.
    alone = plots.plot_training_curves({"self-certainty": seeds(), "random": seeds()}, tmp_path, name="alone")
    assert to_hex(panel(alone, "oracle accuracy").get_lines()[0].get_color()) == to_hex(
        plots.color_of("self-certainty")
    )


def test_every_line_is_in_the_one_legend(tmp_path: Path) -> None:
    runs = {
        "majority-vote": seeds(heldout=rise_then_fall),
        "entropy": seeds(entropy=True, reward_scale=-1.0, heldout=rising),
        "my-variant": seeds(),
    }
    figures = [
        plots.plot_training_curves(runs, tmp_path),
        plots.plot_reward_vs_accuracy(runs, tmp_path),
        plots.plot_heldout_accuracy(plots.heldout_frame(runs), tmp_path),
        plots.plot_reward_accuracy(
            {run: [f.assign(reward_accuracy=0.5) for f in runs[run]] for run in runs}, tmp_path
        ),
    ]
    for figure in figures:
        colors = legend_colors(figure)
        drawn = {to_hex(line.get_color()) for line in data_lines(figure)}
        assert drawn and drawn <= colors, figure.get_suptitle()
        labels = [text.get_text() for text in figure.legends[0].get_texts()]
        # my-variant logged no held-out accuracy: it is drawn, and named, everywhere but there.
        assert ("my-variant" in labels) == (figure is not figures[2])
    labels = [text.get_text() for text in figures[0].legends[0].get_texts()]
    assert labels == ["majority-vote", "entropy", "my-variant"]  # the study's order, then others


def test_a_self_certainty_scale_reward_does_not_squash_the_others(tmp_path: Path) -> None:
    runs = {"majority-vote": seeds(), "self-certainty": seeds(reward_scale=16.0)}
    figure = plots.plot_training_curves(runs, tmp_path, columns=("reward_mean", "oracle_accuracy"))
    reward = panel(figure, "mean reward")
    assert "z-scored within each run" in reward.get_title()
    low, high = reward.get_ylim()
    for line in reward.get_lines():
        assert np.ptp(line.get_ydata()) > 0.5 * (high - low), line.get_color()
    # Per-run panels: the reward on each run's own right axis.
    figure = plots.plot_reward_vs_accuracy(runs, tmp_path)
    twins = [axis for axis in figure.axes if axis.get_ylabel().startswith("mean reward")]
    assert len(twins) == 2
    for axis in twins:
        low, high = axis.get_ylim()
        assert np.ptp(axis.get_lines()[0].get_ydata()) > 0.5 * (high - low)
    # Rewards all in [0, 1] stay unstandardised.
    plain = plots.plot_training_curves({"majority-vote": seeds()}, tmp_path, columns=("reward_mean",))
    assert plain.axes[0].get_title() == "mean reward"


def test_collapse_markers_come_only_from_heldout_curves(tmp_path: Path) -> None:
    rising_runs = {"entropy": seeds(heldout=rising)}
    for figure in (
        plots.plot_heldout_accuracy(plots.heldout_frame(rising_runs), tmp_path),
        plots.plot_reward_vs_accuracy(rising_runs, tmp_path),
    ):
        assert markers(figure) == []
    collapsing = {"majority-vote": seeds(heldout=rise_then_fall), "entropy": seeds(heldout=rising)}
    figure = plots.plot_heldout_accuracy(plots.heldout_frame(collapsing), tmp_path, questions=200, samples=4)
    found = markers(figure)
    assert found and {to_hex(artist.get_color()) for artist in found} == {
        to_hex(plots.color_of("majority-vote"))
    }
    assert 20 in {float(x) for artist in found for x in artist.get_xdata()}  # at the peak step
    assert "3 seeds per method, 200 held-out questions x 4 samples" in figure.get_suptitle()
    assert markers(plots.plot_reward_vs_accuracy(collapsing, tmp_path))
    # One seed has no spread to judge noise by: no marker, even on a rise-then-fall.
    one_seed = {"majority-vote": [seed_frame(0, heldout=rise_then_fall)]}
    assert markers(plots.plot_heldout_accuracy(plots.heldout_frame(one_seed), tmp_path)) == []
    # The training batch's own accuracy never gets a marker: it falls here, nothing is held out.
    falling = [f.assign(oracle_accuracy=[rise_then_fall(s) for s in STEPS]) for f in seeds()]
    assert markers(plots.plot_reward_vs_accuracy({"majority-vote": falling}, tmp_path)) == []
    with pytest.raises(ValueError, match="eval_every"):
        plots.plot_heldout_accuracy(plots.heldout_frame({"entropy": seeds()}), tmp_path)


def test_every_figure_states_its_question_and_n(tmp_path: Path) -> None:
    figure = plots.plot_training_curves({"entropy": seeds()}, tmp_path, questions_per_step=4, question="Why?")
    assert figure.get_suptitle().startswith("Why?\nn = 3 seeds per run, 4 questions a step")
    results = pd.DataFrame(
        [
            {
                "benchmark": "organism",
                "model": model,
                "metric": "avg@k",
                "k": 4,
                "value": value,
                "n": 200,
                "seed": seed,
            }
            for model, values in (("base", [0.5]), ("entropy", [0.6, 0.7, 0.8]))
            for seed, value in enumerate(values)
        ]
    )
    figure = plots.plot_eval_results(results, tmp_path)
    assert "1-3 seeds per model, 200 questions per benchmark x 4 samples" in figure.get_suptitle()
    bars = [patch for patch in figure.axes[0].patches if patch.get_height() > 0]
    assert [round(bar.get_height()) for bar in bars] == [50, 70]  # the mean over seeds
    spans = [
        np.nanmax(line.get_ydata()) - np.nanmin(line.get_ydata())
        for line in figure.axes[0].get_lines()
        if not np.isnan(line.get_ydata()).all()
    ]
    assert spans == [pytest.approx(20.0)]  # entropy's seeds: ± 10 points (one sd); base has one seed
    split = plots.plot_eval_results(
        results.assign(prior=["aligned", "aligned", "misaligned", "aligned"]), tmp_path, by="prior"
    )
    assert [axis.get_title() for axis in split.axes] == ["prior: aligned", "prior: misaligned"]


def test_strategy_shares_show_the_template_class_beside_older_runs(tmp_path: Path) -> None:
    def shares(template: bool) -> pd.DataFrame:
        names = [*STRATEGIES, "template"] if template else list(STRATEGIES)
        return pd.DataFrame({"step": [1, 2], **{f"strategy/{name}": [1 / len(names)] * 2 for name in names}})

    figure = plots.plot_strategy_shares({"majority-vote": shares(True), "entropy": shares(False)}, tmp_path)
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "template" in labels and set(STRATEGIES) <= set(labels)
    held_out = shares(True).rename(columns=lambda c: c.replace("strategy/", "heldout/share/"))
    figure = plots.plot_strategy_shares({"entropy": held_out}, tmp_path, prefix=plots.HELDOUT_SHARE_PREFIX)
    assert "held-out samples" in figure.get_suptitle()


def test_runs_outside_the_study_palette_get_distinct_colours_in_one_figure(tmp_path: Path) -> None:
    """Two labels whose hashed colours collide (notebook 04's "majority vote, <prior>") are told apart."""
    names = ["majority vote, aligned", "majority vote, misaligned"]
    assert plots.color_of(names[0]) == plots.color_of(names[1])  # the collision this guards against
    frame = pd.DataFrame(
        [(name, seed, step, 0.4 + 0.01 * step) for name in names for seed in range(2) for step in (0, 10)],
        columns=["method", "seed", "step", "accuracy"],
    )
    figure = plots.plot_heldout_accuracy(frame, tmp_path, name="distinct")
    drawn = {handle.get_label(): to_hex(handle.get_color()) for handle in figure.legends[0].legend_handles}
    assert drawn[names[0]] != drawn[names[1]]
