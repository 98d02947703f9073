"""corerl.study.narrative: the sentences after each figure carry the run's own numbers."""

from __future__ import annotations

import pandas as pd

from corerl.study.narrative import (
    describe_curves,
    describe_heldout,
    describe_results,
    describe_reward_vs_accuracy,
    describe_strategies,
)


def heldout(method: str, curve: list[float], offsets=(0.0, 0.02, -0.02)) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"method": method, "seed": seed, "step": 10 * i, "accuracy": value + offset}
            for seed, offset in enumerate(offsets)
            for i, value in enumerate(curve)
        ]
    )


def test_the_heldout_sentence_reads_the_verdict_and_the_numbers() -> None:
    frame = pd.concat(
        [
            heldout("majority-vote", [0.5, 0.7, 0.4]),
            heldout("ground-truth", [0.5, 0.6, 0.72]),
            heldout("entropy", [0.5, 0.51, 0.5], offsets=(0.0,)),
            heldout("random", [0.5, 0.45, 0.3]),
        ]
    )
    text = describe_heldout(frame).splitlines()
    assert text[1].startswith("- **ground-truth** (3 seeds): 50.0% at the start → highest 72.0% at step 20")
    assert "it rose and did not fall back" in text[1]
    assert text[2].startswith("- **majority-vote** (3 seeds): 50.0% at the start → highest 70.0% at step 10")
    assert "fell 30.0 points, more than the seeds' band (4.0 points): **collapse**" in text[2]
    assert "one seed: no spread to judge a fall by" in text[3]
    assert text[4].endswith(
        "no rise beyond the seeds' band (4.0 points); it ended 20.0 points below the start"
    )
    assert "eval_every" in describe_heldout(frame.assign(accuracy=None))


def test_results_name_the_spread_and_the_difference_to_the_base() -> None:
    rows = pd.DataFrame(
        {
            "benchmark": ["organism"] * 6,
            "metric": "avg@k",
            "model": [
                "base",
                "entropy",
                "entropy-seed1",
                "entropy-seed2",
                "ground-truth",
                "ground-truth-seed1",
            ],
            "value": [0.60, 0.55, 0.65, 0.60, 0.70, 0.72],
        }
    )
    text = describe_results(rows).splitlines()
    assert text[1] == "- ground-truth: 71.0 ± 1.4 (2 seeds), +11.0 points against base (best)"
    assert text[2] == "- base: 60.0 (1 seed)"
    assert text[3] == "- entropy: 60.0 ± 5.0 (3 seeds), +0.0 points against base (within the seeds' sd)"
    assert "No evaluation" in describe_results(rows, metric="maj@k")
    assert "(best)" not in describe_results(rows.assign(value=0.5))  # a tie has no best


def test_curves_strategies_and_reward_sentences_follow_the_data() -> None:
    seeds = [
        pd.DataFrame(
            {
                "step": [1, 2, 3],
                "reward_mean": [0.2, 0.5, 0.9],
                "oracle_accuracy": [0.5, 0.6, 0.7 + 0.1 * seed],
                "strategy/worked-correct": [0.5, 0.6, 0.8],
                "strategy/template": [0.3, 0.3, 0.1],
                "strategy/other": [0.2, 0.1, 0.1],
            }
        )
        for seed in range(2)
    ]
    curves = describe_curves({"majority-vote": seeds, "ground-truth": seeds[:1]}, "oracle_accuracy")
    assert curves.splitlines()[1].startswith("- **ground-truth** (1 seed): 0.5 at step 1 → 0.7 at step 3")
    assert curves.splitlines()[2].startswith("- **majority-vote** (2 seeds): 0.5 at step 1 → 0.75 at step 3")
    assert "No run logged KL" in describe_curves({"majority-vote": seeds}, "kl")
    assert "both rose" in describe_reward_vs_accuracy({"majority-vote": seeds})
    strategies = describe_strategies({"majority-vote": seeds})
    assert "worked-correct 50% → 80% (+30 points, the largest rise)" in strategies
    assert "template 30% → 10% (-20 points, the largest fall)" in strategies and "(2 seeds)" in strategies
    flat = [
        frame.assign(**{"strategy/worked-correct": 0.5, "strategy/template": 0.3, "strategy/other": 0.2})
        for frame in seeds
    ]
    assert "no share moved by 1 point or more; most common: worked-correct" in describe_strategies(
        {"entropy": flat}
    )
