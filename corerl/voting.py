"""Majority voting over a group of final answers: the pseudo-label of every voting method.

The rule, chosen once for the whole package (methods.md lists how the papers differ):
- ``None`` and blank answers never vote, so an empty answer can never become the label (a known
  bug of one public implementation, where empty answers then earned reward 1);
- answers are compared after ``normalize_answer``: normalised strings, as TTRL votes (its
  ``strip_string`` in ``qwen_math_parser.py``, TTRL @3e2cc937), but not TTRL's normaliser. On the
  shipped MATH rewrites the two agree on about 97% of pairs. corerl also merges thousands separators
  (``1,000``/``1000``), trailing zeros (``2.50``/``2.5``), ``-0``/``0`` and spacing commands
  (``\\,``, ``\\quad``); TTRL also merges ``05``/``5``, ``ab=5``/``5`` (any two-character left
  side) and unit words (``10 cm``/``10``). Both fold ``13/4`` into ``\\frac{13}{4}``. With
  ``merge_equivalent=True`` candidates that ``answers_match`` are merged too (closer to the
  scaling study's sympy voting);
- a tie goes to the candidate seen first, so the vote is deterministic given the rollout order;
- ``min_share`` is SRT's optional threshold tau: below it there is no label.
The share is ``count / valid``: the majority count over the number of PARSEABLE answers, as SRT's
code divides (``self_learning.py``, SRT @212e57e0; SRT's paper text says "of all generations"), with
one difference in what counts as parseable: SRT's extractor returns ``''`` for an empty
``\\boxed{}`` and counts it, corerl does not (``['-2', 'x = 2', '-2', '', '', '-2', '2.0', '2']``
is 3/8 in SRT, 3/6 here), and an empty box is never a candidate label in either. SRT's tau and the
curriculum's ranking (``corerl.mitigations.votes``) use this share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corerl.answers import answers_match, normalize_answer


@dataclass(frozen=True)
class Vote:
    """The outcome of one vote: ``label`` got ``count`` of ``total`` votes, ``valid`` answered."""

    label: str | None
    count: int
    valid: int
    total: int

    @property
    def share(self) -> float:
        """The label's share of the parseable answers, SRT's majority share (0.0 when none parsed).

        >>> Vote(label="4", count=2, valid=4, total=8).share
        0.5
        """
        return self.count / self.valid if self.valid else 0.0  # SRT code: count / parseable answers


def majority_vote(
    answers: Sequence[str | None], *, merge_equivalent: bool = False, min_share: float = 0.0
) -> Vote:
    """The most common normalised answer among ``answers``.

    >>> majority_vote(["1/2", "0.5", r"\\frac12", r"\\frac{1}{2}", None])
    Vote(label='\\\\frac{1}{2}', count=3, valid=4, total=5)
    >>> majority_vote(["1/2", "0.5", r"\\frac12", r"\\frac{1}{2}", None], merge_equivalent=True).count
    4
    >>> majority_vote(["7", "7.0", "8", ""]).label, majority_vote([None, " "]).label
    ('7', None)
    >>> majority_vote(["a", "b"]).label, majority_vote(["a", "b", "b"], min_share=0.7).label
    ('a', None)
    >>> majority_vote(["3", "3", None, None], min_share=0.7).label  # share 2/2 of the parseable answers
    '3'
    """
    normalized = [normalize_answer(answer) for answer in answers]
    counts: dict[str, int] = {}
    for candidate in normalized:
        if candidate:
            counts[candidate] = counts.get(candidate, 0) + 1
    if merge_equivalent and len(counts) > 1:
        counts = _merge_equivalent_candidates(counts)
    valid = sum(1 for candidate in normalized if candidate)
    total = len(answers)
    if not counts:
        return Vote(label=None, count=0, valid=0, total=total)
    # max() keeps the first maximal key in insertion (first-seen) order: ties go to the first seen.
    label = max(counts, key=counts.__getitem__)
    count = counts[label]
    if count / valid < min_share:  # SRT's tau on count / parseable answers: not confident enough to label.
        return Vote(label=None, count=count, valid=valid, total=total)
    return Vote(label=label, count=count, valid=valid, total=total)


def _merge_equivalent_candidates(counts: dict[str, int]) -> dict[str, int]:
    """Fold each candidate into the first earlier candidate it is mathematically equal to."""
    merged: dict[str, int] = {}
    for candidate, count in counts.items():
        target = next((kept for kept in merged if answers_match(kept, candidate)), candidate)
        merged[target] = merged.get(target, 0) + count
    return merged


def agrees_with_label(answer: str | None, label: str | None) -> bool:
    """Whether ``answer`` votes for ``label`` (normalised equality); never true for a missing label.

    >>> agrees_with_label("0.50", "0.5"), agrees_with_label(None, None), agrees_with_label("", "")
    (True, False, False)
    """
    if label is None:
        return False
    normalized = normalize_answer(answer)
    return bool(normalized) and normalized == label
