"""corerl.collapse on synthetic curves with known answers, and corerl.plots writing every figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from corerl.collapse import (
    curves,
    degenerate_outputs,
    detect_collapse,
    heldout_verdict,
    identical_answer_share,
    model_collapse_step,
    read_metrics,
    read_samples,
    repeated_ngram_share,
    summarize_run,
)

STEPS = list(range(40))


def rise_then_fall() -> pd.DataFrame:
    """Accuracy peaks at 0.5 at step 15 and then falls 0.03 per step; reward rises 0.02 per step."""
    accuracy = [0.2 + 0.02 * s if s <= 15 else 0.5 - 0.03 * (s - 15) for s in STEPS]
    return pd.DataFrame(
        {"step": STEPS, "reward_mean": [0.2 + 0.02 * s for s in STEPS], "oracle_accuracy": accuracy}
    )


def test_detect_collapse_known_step_unsmoothed():
    found = detect_collapse(rise_then_fall(), window=1, min_drop=0.05, patience=3)
    assert found is not None
    # First step at least 0.05 below the peak of 0.5: step 17 (0.44); the reward is still rising.
    assert (found.step, found.peak_step) == (17, 15)
    assert found.peak_accuracy == pytest.approx(0.5) and found.accuracy == pytest.approx(0.44)
    assert found.reward > found.peak_reward


def test_detect_collapse_known_step_smoothed():
    # Trailing means of 5: the smoothed peak is 0.47 at step 16; step 20 is the first at 0.41 <= 0.42.
    found = detect_collapse(rise_then_fall())
    assert found is not None and (found.step, found.peak_step) == (20, 16)
    assert found.accuracy == pytest.approx(0.41)


def test_detect_collapse_never():
    rising = pd.DataFrame(
        {"step": STEPS, "reward_mean": [s / 40 for s in STEPS], "oracle_accuracy": [s / 80 for s in STEPS]}
    )
    assert detect_collapse(rising) is None
    # Accuracy falls but so does the reward: degradation, not reward hacking.
    falling = rise_then_fall().assign(reward_mean=lambda f: f["oracle_accuracy"])
    assert detect_collapse(falling, window=1) is None
    # A dip shorter than the patience recovers: no collapse.
    dip = pd.DataFrame(
        {
            "step": STEPS,
            "reward_mean": [s / 40 for s in STEPS],
            "oracle_accuracy": [0.2 if s in (20, 21) else 0.5 for s in STEPS],
        }
    )
    assert detect_collapse(dip, window=1, patience=3) is None
    assert detect_collapse(dip, window=1, patience=2).step == 20
    # A larger min_drop than the fall ever reaches.
    assert detect_collapse(rise_then_fall(), window=1, min_drop=0.9) is None


def test_detect_collapse_skips_nulls_and_reports_bad_input():
    frame = rise_then_fall()
    frame.loc[frame["step"].isin([16, 17]), "oracle_accuracy"] = None
    found = detect_collapse(frame, window=1)
    assert found is not None and found.step == 18
    with pytest.raises(KeyError, match="oracle_accuracy"):
        detect_collapse(frame.drop(columns="oracle_accuracy"))
    with pytest.raises(ValueError, match="window"):
        detect_collapse(frame, window=0)


def test_model_collapse_step():
    accuracy = [0.9, 0.7, 0.4, 0.2, 0.05, 0.009, 0.0, 0.0]
    frame = pd.DataFrame({"step": [10 * (i + 1) for i in range(len(accuracy))], "reward_accuracy": accuracy})
    assert model_collapse_step(frame) == 60
    assert model_collapse_step(frame, threshold=0.1) == 50
    assert model_collapse_step(frame, threshold=0.0) is None  # never strictly below 0
    never = pd.DataFrame({"step": [1, 2, 3], "reward_accuracy": [0.8, 0.5, 0.3]})
    assert model_collapse_step(never) is None
    with_nulls = pd.DataFrame({"step": [1, 2, 3], "reward_accuracy": [None, 0.5, 0.0]})
    assert model_collapse_step(with_nulls) == 3
    with pytest.raises(ValueError, match="no values"):
        model_collapse_step(pd.DataFrame({"step": [1], "reward_accuracy": [None]}))
    with pytest.raises(KeyError, match="reward_accuracy"):
        model_collapse_step(pd.DataFrame({"step": [1]}))


def test_summarize_run():
    run = rise_then_fall().assign(
        method="majority-vote", reward_accuracy=[max(0.0, 0.9 - 0.05 * s) for s in STEPS]
    )
    summary = summarize_run(run, window=1)
    assert summary == {
        "method": "majority-vote",
        "steps": 39,
        "peak_oracle_accuracy": pytest.approx(0.5),
        "peak_step": 15,
        "final_oracle_accuracy": pytest.approx(0.5 - 0.03 * 24),
        "collapse_step": 17,
        "model_collapse_step": 18,
    }
    entropy = rise_then_fall().assign(method="entropy", reward_accuracy=None)
    assert summarize_run(entropy)["model_collapse_step"] is None


def write_jsonl(path: Path, rows: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + tail)
    return path


def test_read_metrics_tolerates_a_torn_last_line(tmp_path: Path):
    rows = [
        {"step": 1, "reward_mean": 0.1},
        {"step": 2, "reward_mean": 0.25},
        {"step": 3, "reward_mean": None},
    ]
    write_jsonl(tmp_path / "metrics.jsonl", rows, tail='{"step": 4, "rew')
    frame = read_metrics(tmp_path)
    assert frame["step"].tolist() == [1, 2, 3]
    assert frame["reward_mean"].tolist()[:2] == [0.1, 0.25] and math.isnan(frame["reward_mean"].iloc[2])
    assert curves(frame)["step"].tolist() == [1, 2]


def test_read_metrics_refuses_duplicated_steps(tmp_path: Path):
    """Two runs written into one directory are refused, not merged (issue 13.3)."""
    rows = [{"step": 1, "reward_mean": 0.1}, {"step": 2, "reward_mean": 0.2}]
    write_jsonl(tmp_path / "metrics.jsonl", rows + rows)
    with pytest.raises(ValueError, match=r"metrics.jsonl: step\(s\) 1, 2 logged more than once"):
        read_metrics(tmp_path)


def test_read_metrics_sorts_steps_as_numbers(tmp_path: Path):
    """String steps ("10" < "9" as text) are read as integers; a non-integer step is refused (13.11)."""
    write_jsonl(tmp_path / "metrics.jsonl", [{"step": "10"}, {"step": "9"}, {"step": 2}])
    assert read_metrics(tmp_path)["step"].tolist() == [2, 9, 10]
    write_jsonl(tmp_path / "bad.jsonl", [{"step": 1}, {"step": "two"}])
    with pytest.raises(ValueError, match="step 'two' is not an integer"):
        read_metrics(tmp_path / "bad.jsonl")


def test_read_metrics_reports_bad_files(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_metrics(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        read_metrics(bad)
    write_jsonl(tmp_path / "nostep.jsonl", [{"reward_mean": 1.0}])
    with pytest.raises(ValueError, match="step"):
        read_metrics(tmp_path / "nostep.jsonl")


def test_diagnostic_primitives():
    assert repeated_ngram_share("a b a b a b", n=2) == pytest.approx(0.6)
    assert repeated_ngram_share("x " * 50, n=4) == pytest.approx(1 - 1 / 47)
    assert repeated_ngram_share("", n=4) == 0.0
    assert identical_answer_share(["0", "0", "0", "0"]) == 1.0
    assert identical_answer_share([None, None]) == 0.0


def test_degenerate_outputs_per_step(tmp_path: Path):
    healthy = [
        {
            "step": 10,
            "id": f"q{i}",
            "question": f"Q{i}",
            "completion": f"work {i} then \\boxed{{{i}}}",
            "answer_extracted": str(i),
            "reward": 1.0,
        }
        for i in range(4)
    ]
    collapsed = [
        {
            "step": 20,
            "id": f"q{i}",
            "question": f"Q{i}",
            "completion": "0 0 0 0 0 0 \\boxed{0}",
            "answer_extracted": "0",
            "reward": 1.0,
        }
        for i in range(3)
    ]
    collapsed.append(
        {
            "step": 20,
            "id": "q3",
            "question": "Q3",
            "completion": "0 0 0 0 0 0 0 0",
            "answer_extracted": None,
            "reward": 0.0,
        }
    )
    samples = read_samples(write_jsonl(tmp_path / "samples.jsonl", healthy + collapsed))
    table = degenerate_outputs(samples).set_index("step")
    assert table.loc[10, "identical_answer_share"] == 0.25
    assert table.loc[20, "identical_answer_share"] == 0.75
    assert table.loc[10, "no_answer_rate"] == 0.0 and table.loc[20, "no_answer_rate"] == 0.25
    assert table.loc[10, "repeated_ngram_share"] == 0.0 and table.loc[20, "repeated_ngram_share"] > 0.4
    assert table.loc[20, "samples"] == 4
    assert table["truncation_rate"].isna().all()  # no 'truncated' column: not guessed from text
    with_flag = samples.assign(truncated=[False] * 4 + [False, False, False, True])
    assert degenerate_outputs(with_flag).set_index("step").loc[20, "truncation_rate"] == 0.25
    # Without answer_extracted, answers come from the completions.
    assert degenerate_outputs(samples.drop(columns="answer_extracted")).equals(degenerate_outputs(samples))


def test_every_plot_writes_png_and_svg(tmp_path: Path):
    from corerl import plots

    run = rise_then_fall().assign(reward_accuracy=lambda f: 1 - f["reward_mean"], kl=None)
    runs = {"majority-vote": run, "entropy": run.assign(reward_mean=lambda f: f["reward_mean"] / 2)}
    diagnostics = {
        "majority-vote": pd.DataFrame(
            {"step": [1, 2], "identical_answer_share": [0.1, 0.9], "truncation_rate": [float("nan")] * 2}
        )
    }
    results = pd.DataFrame(
        {
            "benchmark": ["math500", "math500", "gsm8k", "gsm8k"],
            "model": ["base", "trained"] * 2,
            "metric": ["avg@k"] * 4,
            "k": 4,
            "temperature": 0.8,
            "value": [0.2, 0.3, 0.4, 0.5],
            "n": 10,
        }
    )
    figures = {
        "training_curves": plots.plot_training_curves(runs, tmp_path),
        "reward_vs_accuracy": plots.plot_reward_vs_accuracy(runs, tmp_path),
        "reward_accuracy": plots.plot_reward_accuracy(runs, tmp_path),
        "degenerate_outputs": plots.plot_degenerate_outputs(diagnostics, tmp_path),
        "eval_results": plots.plot_eval_results(results, tmp_path),
    }
    for name, figure in figures.items():
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (tmp_path / f"{name}.svg").read_text()
        assert figure.axes
    # Only metrics with values get a panel: kl is null everywhere.
    titles = [axis.get_title() for axis in figures["training_curves"].axes if axis.get_visible()]
    assert "KL" not in titles and "reward accuracy" in titles
    with pytest.raises(ValueError, match="maj@k"):
        plots.plot_eval_results(results, tmp_path, metric="maj@k")
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.plot_training_curves({}, tmp_path)


def test_saved_figures_are_byte_identical_from_run_to_run(tmp_path: Path):
    """The same figure, built twice from scratch, gives the same PNG and SVG bytes (fixed SVG
    hash salt for the clip-path ids, no date metadata)."""
    from corerl import plots

    run = rise_then_fall()
    seeds = [run, run.assign(reward_mean=lambda f: f["reward_mean"] + 0.05)]  # a mean ± sd band
    runs = {"majority-vote": seeds, "entropy": run.assign(reward_mean=lambda f: f["reward_mean"] / 2)}
    first = plots.plot_training_curves(runs, tmp_path / "first")
    second = plots.plot_training_curves(runs, tmp_path / "second")
    assert first is not second
    svg = (tmp_path / "first" / "training_curves.svg").read_text()
    assert "clip-path" in svg and "<dc:date>" not in svg
    for fmt in plots.FORMATS:
        name = f"training_curves.{fmt}"
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def heldout_seeds(curve: list[float], noise: list[float], steps: list[int] | None = None) -> pd.DataFrame:
    """One held-out curve per seed: ``curve`` plus that seed's ``noise`` offsets, step by step in turn."""
    steps = steps or [10 * i for i in range(len(curve))]
    return pd.DataFrame(
        [
            {"seed": seed, "step": step, "accuracy": value + noise[(seed + i) % len(noise)]}
            for seed in range(3)
            for i, (step, value) in enumerate(zip(steps, curve, strict=True))
        ]
    )


NOISE = [0.0, 0.03, -0.03]


def test_heldout_verdict_a_rising_curve_has_not_collapsed():
    verdict = heldout_verdict(heldout_seeds([0.3, 0.4, 0.5, 0.6, 0.65, 0.7], NOISE))
    assert verdict.rose and not verdict.fell and not verdict.collapsed
    assert verdict.peak_step == 50 and verdict.base == pytest.approx(0.3) and verdict.n_seeds == 3


def test_heldout_verdict_a_rise_then_fall_across_seeds_has_collapsed():
    verdict = heldout_verdict(heldout_seeds([0.3, 0.5, 0.7, 0.6, 0.45, 0.35], NOISE))
    assert verdict.collapsed and verdict.peak_step == 20
    assert verdict.peak == pytest.approx(0.7) and verdict.final == pytest.approx(0.35)
    assert verdict.drop == pytest.approx(0.35) and verdict.spread == pytest.approx(0.06)


def test_heldout_verdict_noise_within_the_spread_is_not_a_collapse():
    # A rise to a plateau whose seed-mean wobbles (0.70, 0.68) by less than the seeds' spread.
    noisy = heldout_seeds([0.3, 0.5, 0.7, 0.69, 0.7, 0.68], [0.0, 0.05, -0.05])
    verdict = heldout_verdict(noisy)
    assert verdict.rose and not verdict.fell and not verdict.collapsed
    assert 0 < verdict.drop < verdict.spread
    # The same fall as a collapse, with seeds spread wider than the fall: no verdict of collapse.
    wide = heldout_verdict(heldout_seeds([0.3, 0.5, 0.7, 0.65, 0.6], [0.0, 0.2, -0.2]))
    assert not wide.collapsed and wide.drop < wide.spread


def test_heldout_verdict_needs_seeds_and_columns():
    one_seed = heldout_seeds([0.3, 0.7, 0.2], NOISE).query("seed == 0")
    verdict = heldout_verdict(one_seed)
    assert verdict.n_seeds == 1 and math.isnan(verdict.spread) and not verdict.collapsed
    with pytest.raises(KeyError, match="seed, step, accuracy"):
        heldout_verdict(one_seed.rename(columns={"accuracy": "heldout/accuracy"}))
    with pytest.raises(ValueError, match="no accuracy value"):
        heldout_verdict(one_seed.assign(accuracy=None))
