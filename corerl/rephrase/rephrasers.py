"""Where rewrites come from (rows in, one ``Candidate`` per row out) and the answer-consistency check.

A model (``ModelRephraser``), the model organism's templates (``OrganismRephraser``) or the rows' own
``rephrased`` column (``existing_rephraser``). ``ConsistencyCheck`` asks a solver model for k answers
per view and keeps a pair only when the majority answers agree: label-free, it never reads ``answer``.

``sample_completions`` is the one place the package calls a model; tests script it by patching
``corerl.rephrase.rephrasers.sample_completions`` (the name this module looks up), not the re-export
in ``corerl.rephrase``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corerl.rephrase.prompt import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    Candidate,
    build_rephrase_prompt,
    parse_rephrase,
    solve_prompt,
    without_thinking,
)
from corerl.rephrase.rules import is_not_identical

# Reason code of a pair whose two views' majority answers differ.
ANSWERS_DISAGREE = "answers_disagree"


class Rephraser(Protocol):
    """Anything that proposes one rewrite per row (a model, the organism's templates, a column).

    A rephraser may also carry ``skip_rules``: names of validation rules that do not apply to it.
    """

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[Candidate]: ...


def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str | list[dict[str, str]]],
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int,
) -> list[list[str]]:
    """``n`` completions per prompt: the one place this package calls a model.

    Tests script it with ``monkeypatch.setattr(corerl.rephrase.rephrasers, "sample_completions", ...)``.
    """
    from corerl.generation import generate

    return generate(
        model,
        tokenizer,
        prompts,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
        progress=False,
    )


@dataclass
class ModelRephraser:
    """Rewrites with an instruction-following model and the paper's instruction (one sample per row)."""

    model: Any
    tokenizer: Any
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    seed: int = 0
    batch_size: int = 16

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
        prompts = [without_thinking(self.tokenizer, build_rephrase_prompt(row["question"])) for row in rows]
        outputs = sample_completions(
            self.model,
            self.tokenizer,
            prompts,
            n=1,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            batch_size=self.batch_size,
        )
        return [parse_rephrase(samples[0]) for samples in outputs]


@dataclass
class OrganismRephraser:
    """The model organism's template rephraser: another of the row's surface ``forms``.

    The choice is seeded by (seed, id), so it does not depend on batching or resuming. The length
    rules are skipped: a template is exact by construction and its equation form is short by design.

    >>> rows = [{"id": "a", "question": "Ann has 3 pens. How many pens?", "forms": [
    ...     "Ann has 3 pens. How many pens?", "Compute 3."]}]
    >>> OrganismRephraser()(rows)[0].rephrased
    'Compute 3.'
    """

    seed: int = 0
    skip_rules: tuple[str, ...] = ("too_short", "too_long")

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
        candidates = []
        for row in rows:
            if not row.get("forms"):
                raise KeyError(
                    f"row {row['id']!r} has no 'forms' column: the organism rephraser needs a dataset made by "
                    "corerl.organism (e.g. corerl.arithmetic.dataset.export_jsonl)"
                )
            others = [form for form in row["forms"] if is_not_identical(row["question"], form)]
            if not others:
                candidates.append(Candidate(None, "", "no_other_form"))
                continue
            choice = random.Random(f"organism-rephrase/{self.seed}/{row['id']}").choice(others)
            candidates.append(Candidate(choice, choice))
        return candidates


def existing_rephraser(rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The rows' own ``rephrased`` column, to validate rewrites made elsewhere (``--check-existing``).

    >>> existing_rephraser([{"id": 1, "question": "Q", "rephrased": "R"}])
    [Candidate(rephrased='R', raw='R', parse_error=None)]
    """
    if any("rephrased" not in row for row in rows):
        raise KeyError("--check-existing needs a 'rephrased' column, which the input lacks")
    return [Candidate(row["rephrased"], row["rephrased"] or "") for row in rows]


def views_agree(
    original_answers: Sequence[str | None], rephrased_answers: Sequence[str | None]
) -> dict[str, Any]:
    """Majority answer of each view and whether they agree (both present and equivalent).

    Label-free: only the model's own answers are compared, never a ground truth.

    >>> views_agree(["4", "4", "5"], ["4.0", None, "4"])
    {'original': '4', 'rephrased': '4', 'agree': True}
    >>> views_agree(["4", "4"], [None, None])["agree"]
    False
    """
    from corerl.answers import answers_match
    from corerl.voting import majority_vote

    original = majority_vote(original_answers).label
    rephrased = majority_vote(rephrased_answers).label
    agree = (
        original is not None
        and rephrased is not None
        and (original == rephrased or answers_match(original, rephrased))
    )
    return {"original": original, "rephrased": rephrased, "agree": agree}


@dataclass
class ConsistencyCheck:
    """Co-rewarding-I's premise made a filter: k answers on each view from a solver model must agree."""

    model: Any
    tokenizer: Any
    k: int = 4
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 1024
    seed: int = 0
    batch_size: int = 16

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        from corerl.answers import extract_answer

        if not pairs:
            return []
        prompts = [without_thinking(self.tokenizer, solve_prompt(text)) for pair in pairs for text in pair]
        samples = sample_completions(
            self.model,
            self.tokenizer,
            prompts,
            n=self.k,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            batch_size=self.batch_size,
        )
        answers = [[extract_answer(text) for text in group] for group in samples]
        return [views_agree(answers[2 * index], answers[2 * index + 1]) for index in range(len(pairs))]
