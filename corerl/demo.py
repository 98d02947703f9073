"""``corerl demo``: the reward core on real questions, in a few seconds and without a model.

For a few MATH-500 questions it builds a group of 8 completions that a model could have written (the
right answer, an equivalent spelling of it, a wrong answer, a missing answer) and prints what each
reward gives them: how voting turns agreement into a label, and where that label can be wrong.
"""

from __future__ import annotations

import argparse
import random

from corerl.answers import extract_answer, normalize_answer
from corerl.data import load_dataset
from corerl.rewards import REWARDS, completion_answers, majority_labels


def _completion(answer: str | None) -> str:
    if answer is None:
        return "Let me think step by step... I am not sure."
    return f"Working through the problem step by step, the result is $\\boxed{{{answer}}}$."


def demo_groups(n_questions: int = 3, group_size: int = 8, seed: int = 0) -> list[dict]:
    """Groups of completions for the first ``n_questions`` of MATH-500, reproducible from ``seed``."""
    generator = random.Random(seed)
    questions = load_dataset("math500", limit=n_questions)
    groups = []
    for row in questions:
        right = row["answer"]
        wrong = f"{generator.randint(2, 99)}"
        # A plausible spread: the majority is right for some questions and wrong for others.
        pool = [right, normalize_answer(right), wrong, wrong, None]
        completions = [_completion(generator.choice(pool)) for _ in range(group_size)]
        groups.append(
            {"id": row["id"], "question": row["question"], "answer": right, "completions": completions}
        )
    return groups


def run(args: argparse.Namespace) -> int:
    for group in demo_groups(args.questions, args.group_size, args.seed):
        n = len(group["completions"])
        columns = {
            "prompts": [group["question"]] * n,
            "completions": group["completions"],
            "id": [group["id"]] * n,
            "answer": [group["answer"]] * n,
        }
        label = majority_labels(**columns)[0]
        print(f"\n{group['id']}: {group['question'][:90]!r}")
        print(f"  ground truth {group['answer']!r}; majority label {label!r}")
        print(f"  extracted answers: {completion_answers(group['completions'])}")
        for method in ("ground-truth", "majority-vote", "random"):
            print(f"  {method:>14}: {REWARDS[method](**columns)}")
    example = r"... so the answer is \boxed{\dfrac{1}{2}}."
    print(f"\nextract_answer({example!r}) -> {extract_answer(example)!r}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="show extraction, voting and rewards on real MATH-500 questions"
    )
    parser.add_argument("--questions", type=int, default=3, help="how many MATH-500 questions")
    parser.add_argument("--group-size", type=int, default=8, help="completions per question (G)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
