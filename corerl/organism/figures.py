"""Measure a base model's prior on held-out organism problems by real sampling.

For each held-out question, ``n_samples`` completions are sampled at ``temperature`` (default 8 at
1.0, the rollout setting of the study) with ``corerl.generation.generate``; answers are extracted with
``corerl.answers.extract_answer`` and voted with ``corerl.voting.majority_vote``. Reported:

- ``pass@1``: mean share of correct samples (the expected accuracy of one sample);
- ``maj@8``: share of questions whose majority label is correct (no label counts as wrong);
- ``majority_share``: mean share of the samples that voted for the majority label;
- ``label_accuracy``: share of questions *with* a label whose label is correct (what a
  majority-vote reward is scored against);
- ``no_answer_rate``: share of samples without a ``\\boxed{}`` answer;
- ``distinct_answers``: mean number of distinct answers per question;
- ``strategies``: the share of each organism strategy among the samples
  (``corerl.arithmetic.strategies.strategy_shares``: worked-correct, worked-wrong, the shortcuts, ...).

``measure_views`` samples both views of each problem (``question`` and its ``rephrased`` twin) and
says how often the wrong answers agree across them (``ViewFigures``).

Each figure is also given on the problems with and without a multiplication (the misaligned prior's
systematic error is on the first subset). Correctness is normalised-string equality, exact for the
organism's integer answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from corerl.answers import extract_answer, normalize_answer
from corerl.arithmetic.dataset import make_rows
from corerl.arithmetic.task import DEFAULT_DIFFICULTY, format_prompt
from corerl.voting import majority_vote


@dataclass(frozen=True)
class PriorFigures:
    questions: int
    samples: int
    pass_at_1: float
    maj_at_k: float
    majority_share: float
    label_accuracy: float
    no_answer_rate: float
    distinct_answers: float
    strategies: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(groups: Sequence[Sequence[str | None]], answers: Sequence[str]) -> PriorFigures:
    """Figures for groups of extracted answers against the ground-truth answers.

    >>> figures = summarize([["3", "3", "4", None], ["5", "6", "6", "6"]], ["3", "5"])
    >>> figures.pass_at_1, figures.maj_at_k, figures.majority_share, figures.label_accuracy
    (0.375, 0.5, 0.7083333333333333, 0.5)
    """
    if len(groups) != len(answers):
        raise ValueError(f"{len(groups)} groups of samples for {len(answers)} answers")
    if not groups:
        raise ValueError("no questions to summarize")
    correct = labelled = labelled_correct = missing = distinct = samples = 0
    majority_correct = 0
    share = 0.0
    for group, answer in zip(groups, answers, strict=True):
        truth = normalize_answer(answer)
        normalized = [normalize_answer(extracted) if extracted is not None else "" for extracted in group]
        correct += sum(1 for value in normalized if value and value == truth)
        missing += sum(1 for value in normalized if not value)
        distinct += len({value for value in normalized if value})
        samples += len(group)
        vote = majority_vote(group)
        share += vote.share
        if vote.label is not None:
            labelled += 1
            labelled_correct += vote.label == truth
        majority_correct += vote.label is not None and vote.label == truth
    questions = len(groups)
    return PriorFigures(
        questions=questions,
        samples=samples // questions,
        pass_at_1=correct / samples,
        maj_at_k=majority_correct / questions,
        majority_share=share / questions,
        label_accuracy=labelled_correct / labelled if labelled else 0.0,
        no_answer_rate=missing / samples,
        distinct_answers=distinct / questions,
    )


def measure_prior(
    model_dir: str | Path,
    *,
    questions: int = 200,
    samples: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    difficulty: int | Sequence[int] = DEFAULT_DIFFICULTY,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    threads: int | None = 1,
) -> dict[str, PriorFigures]:
    """Figures of the model in ``model_dir`` on ``questions`` held-out problems.

    Returns ``{"all": ..., "with_multiplication": ..., "without_multiplication": ...}`` (a subset
    without questions is left out). ``threads`` sets torch's CPU threads while sampling (None: leave
    them); one thread is the fastest for these tiny models on a busy machine.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corerl.generation import generate

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = make_rows(questions, seed=seed, difficulty=difficulty, split="test")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        completions = generate(
            model,
            tokenizer,
            [format_prompt(row["question"]) for row in rows],
            n=samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
        )
    finally:
        torch.set_num_threads(previous_threads)
    from corerl.arithmetic.strategies import strategy_shares

    groups = [[extract_answer(text) for text in group] for group in completions]
    subsets = {
        "all": list(range(len(rows))),
        "with_multiplication": [i for i, row in enumerate(rows) if "*" in row["operations"]],
        "without_multiplication": [i for i, row in enumerate(rows) if "*" not in row["operations"]],
    }
    figures = {}
    for name, indices in subsets.items():
        if not indices:
            continue
        shares = strategy_shares(
            [rows[i]["question"] for i in indices for _ in completions[i]],
            [text for i in indices for text in completions[i]],
            [rows[i]["answer"] for i in indices for _ in completions[i]],
        )
        figures[name] = replace(
            summarize([groups[i] for i in indices], [rows[i]["answer"] for i in indices]), strategies=shares
        )
    return figures


@dataclass(frozen=True)
class ViewFigures:
    """How the base model's wrong answers behave across the two views (issue 21's illusion prior).

    ``shortcut_agreement``: among the problems where both views have a shortcut answer (a non-worked
    sample whose answer is the first or last number of that view's text), the share whose plurality
    shortcut answers are equal: how often a cross-view vote could back a shortcut.
    ``majority_agreement``: share of problems whose two views' majority labels are equal;
    ``wrong_majority_agreement``: share of problems whose two views' majority labels are equal and
    wrong (what Co-rewarding-I's cross-view reward would reinforce). ``by_ops``: per number of
    operations, pass@1, maj@8 and ``illusion_majority`` (share of problems whose majority label on the
    first view is the template's answer or the shortcut answer of that view) on the first view.
    """

    questions: int
    shortcut_problems: int
    shortcut_agreement: float
    majority_agreement: float
    wrong_majority_agreement: float
    by_ops: dict[int, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shortcut_plurality(question: str, completions: Sequence[str]) -> str | None:
    from collections import Counter

    from corerl.arithmetic.strategies import classify_strategy

    answers = [
        normalize_answer(extract_answer(text) or "")
        for text in completions
        if classify_strategy(question, text, "") in ("shortcut-first", "shortcut-last")
    ]
    return Counter(answers).most_common(1)[0][0] if answers else None


def measure_views(
    model_dir: str | Path,
    *,
    questions: int = 200,
    samples: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 64,
    batch_size: int = 64,
) -> ViewFigures:
    """``ViewFigures`` of the model in ``model_dir``: ``samples`` completions of each held-out problem's
    ``question`` and of its ``rephrased`` twin (default mix), one torch thread."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corerl.arithmetic.strategies import question_integers
    from corerl.arithmetic.task import TEMPLATE_SOLUTION
    from corerl.generation import generate

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = make_rows(questions, seed=seed, split="test")
    texts = [row["question"] for row in rows] + [row["rephrased"] for row in rows]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        completions = generate(
            model,
            tokenizer,
            [format_prompt(text) for text in texts],
            n=samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
        )
    finally:
        torch.set_num_threads(previous_threads)
    first, second = completions[: len(rows)], completions[len(rows) :]
    template = normalize_answer(extract_answer(TEMPLATE_SOLUTION) or "")
    shortcut_pairs = []
    majority_equal = wrong_equal = 0
    by_ops: dict[int, dict[str, float]] = {}
    for index, row in enumerate(rows):
        pair = (
            _shortcut_plurality(row["question"], first[index]),
            _shortcut_plurality(row["rephrased"], second[index]),
        )
        if None not in pair:
            shortcut_pairs.append(pair[0] == pair[1])
        labels = [
            majority_vote([extract_answer(text) for text in group]).label
            for group in (first[index], second[index])
        ]
        truth = normalize_answer(row["answer"])
        majority_equal += labels[0] is not None and labels[0] == labels[1]
        wrong_equal += labels[0] is not None and labels[0] == labels[1] and labels[0] != truth
        numbers = [str(value) for value in question_integers(row["question"])]
        illusions = {template, numbers[0], numbers[-1]} if numbers else {template}
        answers = [normalize_answer(extract_answer(text) or "") for text in first[index]]
        cell = by_ops.setdefault(
            row["num_ops"], {"problems": 0, "pass@1": 0.0, "maj@8": 0.0, "illusion_majority": 0.0}
        )
        cell["problems"] += 1
        cell["pass@1"] += sum(answer == truth for answer in answers) / len(answers)
        cell["maj@8"] += labels[0] == truth
        cell["illusion_majority"] += labels[0] in illusions
    for cell in by_ops.values():
        for key in ("pass@1", "maj@8", "illusion_majority"):
            cell[key] /= cell["problems"]
    return ViewFigures(
        questions=len(rows),
        shortcut_problems=len(shortcut_pairs),
        shortcut_agreement=sum(shortcut_pairs) / len(shortcut_pairs) if shortcut_pairs else 0.0,
        majority_agreement=majority_equal / len(rows),
        wrong_majority_agreement=wrong_equal / len(rows),
        by_ops=dict(sorted(by_ops.items())),
    )
