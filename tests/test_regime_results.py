"""The benchmark's saved regime results as the notebooks read them (issue 21.3): curves, shares, verdicts,
and the Model Collapse Step table of live runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from corerl.collapse import heldout_verdict, heldout_verdicts, model_collapse_steps
from corerl.study.curves import (
    REGIME_RESULTS,
    regime_file,
    regime_markdown,
    regime_matrix,
    saved_kept_models,
    saved_regime_curves,
    saved_regime_shares,
    saved_regime_verdicts,
)
from corerl.study.narrative import describe_early_stopping, describe_final_shares


def _write(directory: Path, method: str, curves: list[dict[str, float]], **extra: object) -> Path:
    path = regime_file(directory, "long", "illusion", method)
    entry = {
        "curves": curves,
        "share/template_base": 20.0,
        "share/template_final_mean": 80.0,
        "share/worked-correct_base": 50.0,
        "share/worked-correct_final_mean": 10.0,
        **extra,
    }
    path.write_text(json.dumps({method: entry}))
    return path


def test_saved_curves_are_long_form_fractions_per_seed_and_missing_files_are_absent(tmp_path: Path) -> None:
    _write(tmp_path, "majority-vote", [{"0": 40.0, "25": 50.0}, {"0": 42.0, "25": 30.0}])
    frame = saved_regime_curves(
        ["majority-vote", "entropy"], regime="long", prior="illusion", directory=tmp_path
    )
    assert frame.columns.tolist() == ["method", "seed", "step", "accuracy"]
    assert frame.values.tolist() == [
        ["majority-vote", 0, 0, 0.4],
        ["majority-vote", 0, 25, 0.5],
        ["majority-vote", 1, 0, 0.42],
        ["majority-vote", 1, 25, 0.3],
    ]
    assert set(frame["method"]) == {"majority-vote"}  # entropy has no file yet: no rows, no error
    assert heldout_verdict(frame).n_seeds == 2


def test_saved_curves_read_an_additional_held_out_set(tmp_path: Path) -> None:
    _write(tmp_path, "ground-truth", [{"0": 40.0}], curves_heldout_hard=[{"0": 10.0, "400": 20.0}])
    frame = saved_regime_curves(
        ["ground-truth"], regime="long", prior="illusion", directory=tmp_path, eval_set="hard"
    )
    assert frame["accuracy"].tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="curves_heldout_other"):
        saved_regime_curves(
            ["ground-truth"], regime="long", prior="illusion", directory=tmp_path, eval_set="other"
        )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not a readable"),
        (json.dumps({"entropy": {}}), "no entry 'random'"),
        (json.dumps({"random": {"curves": []}}), "no per-seed 'curves'"),
    ],
)
def test_a_file_that_is_not_the_benchmark_s_json_is_named(tmp_path: Path, text: str, problem: str) -> None:
    path = regime_file(tmp_path, "long", "illusion", "random")
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as error:
        saved_regime_curves(["random"], regime="long", prior="illusion", directory=tmp_path)
    assert str(path) in str(error.value)


def test_saved_shares_give_the_base_once_and_each_method_s_final_mean(tmp_path: Path) -> None:
    _write(tmp_path, "majority-vote", [{"0": 40.0}, {"0": 40.0}, {"0": 41.0}])
    _write(tmp_path, "co-rewarding-1", [{"0": 40.0}, {"0": 40.0}], **{"share/template_final_mean": 5.0})
    rows = saved_regime_shares(
        ["majority-vote", "co-rewarding-1"], regime="long", prior="illusion", directory=tmp_path
    )
    table = rows.pivot_table(index="model", columns="metric", values="value")
    assert table.loc["base", "strategy/template"] == pytest.approx(0.2)
    assert table.loc["majority-vote", "strategy/template"] == pytest.approx(0.8)
    assert table.loc["co-rewarding-1", "strategy/template"] == pytest.approx(0.05)
    assert rows.groupby("model")["n_seeds"].max().to_dict() == {
        "base": 1,
        "co-rewarding-1": 2,
        "majority-vote": 3,
    }
    text = describe_final_shares(rows)
    assert "**majority-vote** (3 seeds): most common at the end template (80%" in text
    assert "**co-rewarding-1** (2 seeds): most common at the end worked-correct" in text


def test_the_shipped_long_regime_files_load() -> None:
    """The files the notebooks read: every saved long-regime file on the illusion prior is readable."""
    methods = [
        path.name.removeprefix("long-illusion-").removesuffix(".json")
        for path in sorted(REGIME_RESULTS.glob("long-illusion-*.json"))
    ]
    if not methods:
        pytest.skip(f"no long-regime results under {REGIME_RESULTS}")
    frame = saved_regime_curves(methods, regime="long", prior="illusion")
    assert set(frame["method"]) == set(methods)
    assert frame.groupby("method")["step"].min().eq(0).all()
    assert frame["accuracy"].between(0, 1).all()


def test_verdict_table_is_per_method_in_percent() -> None:
    rows = [
        (method, seed, step, value + 0.01 * seed)
        for method, curve in (
            ("rises", [(0, 0.4), (10, 0.7), (20, 0.7)]),
            ("falls", [(0, 0.4), (10, 0.3), (20, 0.1)]),
        )
        for seed in range(3)
        for step, value in curve
    ]
    table = heldout_verdicts(pd.DataFrame(rows, columns=["method", "seed", "step", "accuracy"])).set_index(
        "method"
    )
    assert table.loc["rises", ["rose", "fell", "collapsed"]].tolist() == [True, False, False]
    assert table.loc["falls", ["rose", "fell", "peak_step"]].tolist() == [False, True, 0]
    assert table.loc["falls", "final"] == pytest.approx(11.0)


def test_model_collapse_steps_say_where_it_was_reached_and_how_close_a_run_came() -> None:
    collapsed = pd.DataFrame({"step": [1, 2, 3, 4], "reward_accuracy": [0.5, 0.2, 0.005, 0.0]})
    held = pd.DataFrame({"step": [1, 2, 3], "reward_accuracy": [0.6, 0.3, 0.4]})
    continuous = pd.DataFrame({"step": [1, 2], "reward_accuracy": [None, None]})
    table = model_collapse_steps({"majority-vote": [collapsed, held], "entropy": [continuous]})
    assert table[["run", "seed", "model_collapse_step", "lowest_step"]].values.tolist() == [
        ["majority-vote", 0, 3, 4],
        ["majority-vote", 1, None, 2],
    ]
    assert table["lowest"].tolist() == [0.0, 0.3]


def test_saved_shares_draw_as_bars_with_the_seed_note(tmp_path: Path) -> None:
    from corerl.plots import plot_eval_strategy_shares

    _write(tmp_path, "majority-vote", [{"0": 40.0}, {"0": 40.0}, {"0": 41.0}])
    rows = saved_regime_shares(["majority-vote"], regime="long", prior="illusion", directory=tmp_path)
    figure = plot_eval_strategy_shares(rows, tmp_path, name="shares", note="finals: mean of 3 seeds")
    assert "finals: mean of 3 seeds" in figure.get_suptitle()
    assert (tmp_path / "shares.png").is_file()


def test_the_regime_table_judges_every_saved_file_and_held_out_set(tmp_path: Path) -> None:
    rising = [{"0": 40.0 + seed, "200": 60.0 + seed, "400": 62.0 + seed} for seed in range(3)]
    collapsing = [{"0": 40.0 + seed, "200": 60.0 + seed, "400": 20.0 + seed} for seed in range(3)]
    _write(
        tmp_path,
        "ground-truth",
        rising,
        prior="illusion",
        regime="long",
        commit="abcdef123",
        curves_heldout_hard=collapsing,
    )
    _write(tmp_path, "entropy", collapsing, prior="illusion", regime="long", commit="abcdef123")
    table = saved_regime_verdicts(tmp_path)
    assert table[["method", "heldout_set", "rose", "fell", "collapsed", "n_seeds"]].values.tolist() == [
        ["entropy", "heldout", True, True, True, 3],
        ["ground-truth", "heldout", True, False, False, 3],
        ["ground-truth", "heldout_hard", True, True, True, 3],
    ]
    assert table.loc[0, "peak"] == 61.0 and table.loc[0, "peak_step"] == 200 and table.loc[0, "final"] == 21.0
    markdown = regime_markdown(table)
    assert "| illusion | long | entropy | heldout | 41.0 | 61.0 (200) | 21.0 | 40.0 |" in markdown
    assert markdown.count("\n") == 2 + 3 and "abcdef1 |" in markdown
    assert saved_regime_verdicts(tmp_path / "none").empty


def test_the_regime_table_names_a_file_that_is_not_the_benchmarks(tmp_path: Path) -> None:
    (tmp_path / "long-illusion-x.json").write_text("{not json")
    with pytest.raises(ValueError, match="long-illusion-x.json: not a readable"):
        saved_regime_verdicts(tmp_path)


def test_kept_models_are_early_stoppings_checkpoints_or_the_last_step(tmp_path: Path) -> None:
    plain = [{"0": 40.0, "25": 60.0, "50": 45.0}, {"0": 41.0, "25": 62.0, "50": 44.0}]
    _write(tmp_path, "entropy", plain)
    stopped = [{"0": 40.0, "25": 60.0, "50": 50.0}, {"0": 41.0, "25": 58.0, "50": 59.0}]
    _write(tmp_path, "entropy-early-stopping", stopped, stopped_at=[50, 50], kept_steps=[25, 50])
    kept = saved_kept_models(
        ["entropy", "entropy-early-stopping"], regime="long", prior="illusion", directory=tmp_path
    )
    assert kept.values.tolist() == [
        ["entropy", 0, 50, 50, 0.45],  # saved without early stopping: the last step
        ["entropy", 1, 50, 50, 0.44],
        ["entropy-early-stopping", 0, 50, 25, 0.6],
        ["entropy-early-stopping", 1, 50, 50, 0.59],
    ]
    curves = saved_regime_curves(["entropy"], regime="long", prior="illusion", directory=tmp_path)
    sentence = describe_early_stopping(curves, kept[kept["method"] == "entropy-early-stopping"])
    assert "held-out 59.5 ± 0.7 (2 seeds)" in sentence and "peak 61.0 (step 25), final 44.5" in sentence
    assert "within the plain run's spread" in sentence and "above its final" in sentence
    assert describe_early_stopping(curves.iloc[0:0], kept).startswith("No saved run")


def test_a_kept_step_off_the_curve_is_named(tmp_path: Path) -> None:
    _write(tmp_path, "entropy", [{"0": 40.0, "50": 45.0}], stopped_at=[50], kept_steps=[30])
    with pytest.raises(ValueError, match="seed 0's kept step 30 has no held-out value"):
        saved_kept_models(["entropy"], regime="long", prior="illusion", directory=tmp_path)


def test_the_regime_matrix_has_a_column_per_prior_and_regime_and_a_row_per_method() -> None:
    def row(prior, regime, method, final, seeds=3, **verdict):
        flags = {"rose": False, "fell": False, "collapsed": False} | verdict
        return dict(
            prior=prior,
            regime=regime,
            method=method,
            heldout_set="heldout",
            base=40.0,
            peak=60.0,
            peak_step=100,
            final=final,
            drop=0.0,
            spread=1.0,
            n_seeds=seeds,
            commit="x",
            **flags,
        )

    table = pd.DataFrame(
        [
            row("illusion", "long", "majority-vote", 3.2, fell=True),
            row("illusion", "long", "majority-vote-lr5e-6", 27.0, fell=True),
            row("illusion", "long", "entropy-early-stopping", 55.0),  # left out: stopped, not kept
            row("illusion", "hard", "ground-truth", 63.0, seeds=2, rose=True),
            row("illusion", "hard", "majority-vote", 8.0, seeds=3, fell=True),
            row("aligned", "long", "entropy", 50.0, rose=True, fell=True, collapsed=True),
            {**row("illusion", "hard", "ground-truth", 20.0), "heldout_set": "heldout_hard"},  # left out
        ]
    )
    lines = regime_matrix(table).splitlines()
    assert lines[0] == (
        "| method | aligned long (3 seeds) | illusion long (3 seeds) | illusion long, lr 5e-6 (3 seeds) | illusion hard |"
    )
    assert lines[2] == "| base | 40.0 | 40.0 | 40.0 | 40.0 |"
    assert lines[3:] == [
        "| ground-truth |  |  |  | 63.0 rose [2] |",
        "| majority-vote |  | 3.2 fell | 27.0 fell | 8.0 fell [3] |",
        "| entropy | 50.0 collapsed from 60.0 (100) |  |  |  |",
    ]
