"""Throughput of answer extraction, voting and every reward, against a naive math-verify baseline.

Builds 4,096 MATH-style completions (512 MATH-train questions x 8 rollouts, ~1.5 kB of reasoning
each, final answers drawn from the right answer, an equivalent spelling, wrong answers and no answer)
and prints completions per second on one core. The naive baseline votes by calling math-verify on
every pair of answers in a group (what voting "by equivalence" costs without normalisation); it is
timed on a subset of groups because it is slow, and reported per completion.

    python benchmarks/rewards.py [--questions 512] [--baseline-groups 32]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from corerl.answers import _answers_match_cached, answers_match, extract_answer, normalize_answer
from corerl.data import load_dataset
from corerl.rewards import REWARDS, completion_answers
from corerl.voting import majority_vote

GROUP_SIZE = 8
REASONING = (
    "Let us set up the problem carefully. We denote the unknown quantity by $x$ and translate each "
    "condition into an equation: $3x + 7 = 2(x - 1) + 15$, so $x = 6$. Checking the boundary cases "
    "$x = 0$ and $x = 1$ rules them out, because $\\frac{x^2 - 1}{x + 1} = x - 1$ only when $x \\neq -1$. "
)


def make_batch(n_questions: int, seed: int) -> dict[str, list]:
    generator = random.Random(seed)
    questions = load_dataset("math-train", limit=n_questions)
    columns: dict[str, list] = {"prompts": [], "completions": [], "id": [], "answer": [], "view": []}
    columns.update(teacher_completions=[], token_entropy=[], self_certainty=[], offline_label=[])
    columns["question"] = []  # step-check reads it (MATH wording: its organism parser gives up at once)
    for row in questions:
        right = row["answer"] or "0"
        choices = [right, right, right, normalize_answer(right), str(generator.randint(0, 99)), None]
        group = []
        for rollout in range(GROUP_SIZE):
            answer = generator.choice(choices)
            ending = (
                "I ran out of room." if answer is None else f"Therefore the answer is $\\boxed{{{answer}}}$."
            )
            group.append(REASONING * generator.randint(3, 5) + ending)
            columns["view"].append("original" if rollout < GROUP_SIZE // 2 else "rephrased")
        columns["completions"] += group
        columns["prompts"] += [row["question"]] * GROUP_SIZE
        columns["question"] += [row["question"]] * GROUP_SIZE
        columns["id"] += [row["id"]] * GROUP_SIZE
        columns["answer"] += [right] * GROUP_SIZE
        columns["teacher_completions"] += [group] * GROUP_SIZE
        columns["token_entropy"] += [generator.random() for _ in range(GROUP_SIZE)]
        columns["self_certainty"] += [generator.random() for _ in range(GROUP_SIZE)]
        columns["offline_label"] += [right] * GROUP_SIZE
    return columns


def throughput(function: Callable[[], object], n_completions: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        _answers_match_cached.cache_clear()  # no help from earlier runs
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return n_completions / best


def naive_pairwise_vote(answers: list[str | None]) -> str | None:
    """Majority by math-verify equivalence between every pair of answers of the group."""
    support = [sum(answers_match(a, b) for b in answers) for a in answers]
    best = max(range(len(answers)), key=support.__getitem__)
    return answers[best] if support[best] else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=512)
    parser.add_argument("--baseline-groups", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    columns = make_batch(args.questions, args.seed)
    n = len(columns["completions"])
    mean_length = sum(map(len, columns["completions"])) / n
    print(f"{n} completions ({args.questions} questions x {GROUP_SIZE}), mean {mean_length:.0f} characters")

    def extraction() -> None:
        [extract_answer(text) for text in columns["completions"]]

    def extraction_and_voting() -> None:
        answers = completion_answers(columns["completions"])
        for start in range(0, n, GROUP_SIZE):
            majority_vote(answers[start : start + GROUP_SIZE])

    rates = {
        "extract_answer": throughput(extraction, n),
        "extract + majority_vote": throughput(extraction_and_voting, n),
    }
    for name, reward in REWARDS.items():
        rates[f"reward {name}"] = throughput(lambda reward=reward: reward(**columns), n)

    subset = completion_answers(columns["completions"][: args.baseline_groups * GROUP_SIZE])

    def naive() -> None:
        for start in range(0, len(subset), GROUP_SIZE):
            naive_pairwise_vote(subset[start : start + GROUP_SIZE])

    baseline = throughput(naive, len(subset), repeats=1)
    print(f"{'what':<32}{'completions/s':>16}{'x naive':>10}")
    for name, rate in rates.items():
        print(f"{name:<32}{rate:>16,.0f}{rate / baseline:>10.1f}")
    print(
        f"{'naive pairwise math-verify vote':<32}{baseline:>16,.0f}{1.0:>10.1f}  (on {len(subset)} completions)"
    )


if __name__ == "__main__":
    main()
