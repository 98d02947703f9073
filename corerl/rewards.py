"""Reward functions of the study, with TRL's contract ``f(prompts, completions, **columns) -> list``.

TRL calls a reward function once per generation batch with every completion of the process, the
dataset columns as keyword lists aligned with the completions, and ``trainer_state``,
``log_metric`` and ``log_extra``. Each function here names the columns it reads and ignores the rest:
the label-free rewards never look at ``answer``. Completions may be strings or message lists.

Paper references (methods.md):
- ``ground_truth_reward``: RLVR, r(y) = 1[ans(y) == label].
- ``majority_vote_reward``: SRT / TTRL, r(y) = 1[ans(y) == maj(ans(y_1..G))].
- ``cross_view_reward``: Co-rewarding-I, r(y_i) = 1[ans(y_i) == maj(ans(y'_1..G))] and vice versa.
- ``teacher_vote_reward``: Co-rewarding-II, r(y_i) = 1[ans(y_i) == maj(teacher answers)].
- ``cross_view_teacher_reward``: Co-rewarding-III (official code only), r(y_i) = 1[ans(y_i) ==
  maj(ans(teacher rollouts on the other view))], for both views.
- ``entropy_reward``: RENT, r(y) = -mean_t H(p_t) (EM-RL sums instead; we follow RENT's mean).
- ``self_certainty_reward``: Intuitor, r(y) = mean_t KL(U || p_t).
- ``random_reward``: the spurious-reward control, Bernoulli(0.5).
- ``offline_label_reward``: SRT's offline labels, r(y) = 1[ans(y) == label voted once by the frozen model].
- ``step_check_reward``: an external label-free reward (the direction of arXiv 2603.08660; the
  definition is ours, organism only): r(y) = 1[y's worked steps carry out the question's problem].
- ``self_verify_reward``: self-verification, an external label-free reward (the direction of arXiv
  2603.08660; prompt and judgement are ours, ``corerl.engine.verifier``): r(y) = v(y) =
  P(Yes) / (P(Yes) + P(No)) from the policy prompted as a verifier of y; 0 without a boxed answer.
  ``self-verify-vote`` averages it with the majority vote: r(y) = (v(y) + 1[ans(y) == maj]) / 2.

Departures: voting compares normalised strings (see ``corerl.voting``); a completion whose other
view (Co-rewarding-I) is absent from the batch gets 0, like an empty majority, and the share of such
completions is logged as ``missing_view_rate``. A completion without a closed box ("... the answer
is 4." or a box cut off by the length limit, ``\\boxed{4``) gets 0 from every answer-based reward
here, as the papers define ans(y) as the last closed box; the official code of SRT (math-verify over
the whole text, SRT @212e57e0) and of TTRL (a last-number fallback, TTRL @3e2cc937) pay such
completions when the number is right (116 and 195 of 2,400 test rollouts, issue 24). We do not:
paying unboxed text lets the policy skip the answer format the vote depends on.
Co-rewarding's official reward managers compare raw extracted strings (``ans == pseudo_label``);
corerl compares normalised strings, so ``0.5`` and ``.5`` vote and match together here.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from corerl.answers import answers_match, extract_answer, normalize_answer
from corerl.voting import Vote, agrees_with_label, majority_vote

Completion = str | list[dict[str, Any]]
RewardFunction = Callable[..., list[float | None]]
LabelFunction = Callable[..., list[str | None]]
VIEWS = ("original", "rephrased")
VIEW_METHODS = frozenset({"co-rewarding-1", "co-rewarding-3"})
"""Methods trained on both views of each question (``corerl.engine.pairs``)."""
TEACHER_METHODS = frozenset({"co-rewarding-2", "co-rewarding-3"})
"""Methods whose labels an EMA teacher votes (``corerl.engine.teacher``)."""


def completion_text(completion: Completion) -> str:
    """The text of a completion given as a string or as a list of chat messages.

    >>> completion_text("x"), completion_text([{"role": "assistant", "content": "y"}])
    ('x', 'y')
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(
            str(message.get("content") or "") for message in completion if isinstance(message, dict)
        )
    return ""


def completion_answers(completions: Sequence[Completion]) -> list[str | None]:
    """``ans(y)`` for each completion: the last boxed answer, ``None`` when there is none."""
    return [extract_answer(completion_text(completion)) for completion in completions]


def prompt_key(prompt: Any) -> Hashable:
    """The group key of a prompt (a string, or a chat message list) when there is no ``id`` column."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)


def label_text(label: Any) -> str | None:
    """A label as text; ``None`` for a missing one (None, NaN from a table's empty cell, blank).

    >>> label_text(float("nan")), label_text(""), label_text(12), label_text("3")
    (None, None, '12', '3')
    """
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return None
    text = str(label).strip()
    return text or None


def _check_batch(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> None:
    """TRL's reward contract: one prompt, one completion and one value of each column per rollout."""
    lengths = {"prompts": len(prompts), "completions": len(completions)}
    lengths.update({name: len(value) for name, value in columns.items() if isinstance(value, list | tuple)})
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "reward batch of mismatched lengths: " + ", ".join(f"{k}={v}" for k, v in lengths.items())
        )


def _group(keys: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return groups


def _scores(answers: Sequence[str | None], labels: Sequence[str | None], equivalent: bool) -> list[float]:
    if equivalent:
        return [
            float(label is not None and answers_match(label, answer))
            for answer, label in zip(answers, labels, strict=True)
        ]
    return [float(agrees_with_label(answer, label)) for answer, label in zip(answers, labels, strict=True)]


def _log_vote_diagnostics(log_metric: Callable[[str, float], None] | None, votes: Sequence[Vote]) -> None:
    if log_metric is None or not votes:
        return
    log_metric("label_share", sum(vote.share for vote in votes) / len(votes))
    log_metric("no_label_rate", sum(vote.label is None for vote in votes) / len(votes))


def _log_no_answer_rate(
    log_metric: Callable[[str, float], None] | None, answers: Sequence[str | None]
) -> None:
    if log_metric is not None and answers:
        log_metric("no_answer_rate", sum(answer is None for answer in answers) / len(answers))


def ground_truth_reward(
    prompts: Sequence[Any], completions: Sequence[Completion], answer: Sequence[str], **kwargs: Any
) -> list[float | None]:
    """RLVR: 1.0 when the completion's boxed answer is equivalent to the ground truth ``answer``.

    >>> ground_truth_reward(["q", "q"], [r"\\boxed{0.5}", r"\\boxed{2}"], answer=[r"\\frac12", r"\\frac12"])
    [1.0, 0.0]
    """
    _check_batch(prompts, completions, answer=answer)
    answers = completion_answers(completions)
    _log_no_answer_rate(kwargs.get("log_metric"), answers)
    labels = [label_text(label) for label in answer]  # a NaN label is missing, never "nan"
    return [  # RLVR: r(y) = 1[ans(y) == label]
        float(label is not None and answers_match(label, predicted))
        for predicted, label in zip(answers, labels, strict=True)
    ]


def majority_labels(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    id: Sequence[Hashable] | None = None,  # noqa: A002 - the dataset column is called ``id``
    *,
    merge_equivalent: bool = False,
    min_share: float = 0.0,
    **kwargs: Any,
) -> list[str | None]:
    """The majority answer of each completion's group (by ``id``, else by prompt): SRT/TTRL's label.

    >>> majority_labels(["p"] * 3, [r"\\boxed{1}", r"\\boxed{1}", r"\\boxed{2}"])
    ['1', '1', '1']
    """
    labels, _ = _majority_labels_and_votes(prompts, completions, id, merge_equivalent, min_share)
    return labels


def _majority_labels_and_votes(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    ids: Sequence[Hashable] | None,
    merge_equivalent: bool,
    min_share: float,
) -> tuple[list[str | None], list[Vote]]:
    answers = completion_answers(completions)
    keys = list(ids) if ids is not None else [prompt_key(prompt) for prompt in prompts]
    labels: list[str | None] = [None] * len(completions)
    votes = []
    for members in _group(keys).values():
        vote = majority_vote(
            [answers[i] for i in members], merge_equivalent=merge_equivalent, min_share=min_share
        )  # SRT/TTRL: label = most common non-empty answer of the group
        votes.append(vote)
        for i in members:
            labels[i] = vote.label
    return labels, votes


def make_majority_vote_reward(*, merge_equivalent: bool = False, min_share: float = 0.0) -> RewardFunction:
    """A majority-voting reward (SRT/TTRL); ``min_share`` is SRT's threshold tau (no label below it)."""
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must be in [0, 1], got {min_share}")

    def majority_vote_reward(
        prompts: Sequence[Any],
        completions: Sequence[Completion],
        id: Sequence[Hashable] | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[float | None]:
        """1.0 when a completion's answer equals its group's majority answer (groups by ``id``, else prompt).

        >>> majority_vote_reward(["p"] * 4, [r"\\boxed{1}", r"\\boxed{1.0}", r"\\boxed{2}", "no answer"])
        [1.0, 1.0, 0.0, 0.0]
        """
        _check_batch(prompts, completions, id=id)
        labels, votes = _majority_labels_and_votes(prompts, completions, id, merge_equivalent, min_share)
        answers = completion_answers(completions)
        _log_vote_diagnostics(kwargs.get("log_metric"), votes)
        _log_no_answer_rate(kwargs.get("log_metric"), answers)
        return list(_scores(answers, labels, merge_equivalent))  # r(y) = 1[ans(y) == maj]

    return majority_vote_reward


majority_vote_reward = make_majority_vote_reward()


def _other_view(view: str) -> str:
    if view not in VIEWS:
        raise ValueError(f"cross_view_reward: view must be one of {VIEWS}, got {view!r}")
    return VIEWS[1 - VIEWS.index(view)]


def _cross_view_labels_and_votes(
    completions: Sequence[Completion], ids: Sequence[Hashable], views: Sequence[str], merge_equivalent: bool
) -> tuple[list[str | None], list[Vote], int]:
    answers = completion_answers(completions)
    votes = {
        key: majority_vote([answers[i] for i in members], merge_equivalent=merge_equivalent)
        for key, members in _group(list(zip(ids, views, strict=True))).items()
    }
    labels: list[str | None] = []
    missing = 0
    for question_id, view in zip(ids, views, strict=True):
        other = votes.get((question_id, _other_view(view)))  # Co-rewarding-I: score by the OTHER view
        missing += other is None
        labels.append(other.label if other is not None else None)
    return labels, list(votes.values()), missing


def cross_view_labels(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    id: Sequence[Hashable],  # noqa: A002
    view: Sequence[str],
    *,
    merge_equivalent: bool = False,
    **kwargs: Any,
) -> list[str | None]:
    """Co-rewarding-I's label of each completion: the majority answer of the twin view's rollouts."""
    labels, _, _ = _cross_view_labels_and_votes(completions, id, view, merge_equivalent)
    return labels


def make_cross_view_reward(*, merge_equivalent: bool = False) -> RewardFunction:
    """Co-rewarding-I's cross-view reward (arXiv 2508.00410, data side)."""

    def cross_view_reward(
        prompts: Sequence[Any],
        completions: Sequence[Completion],
        id: Sequence[Hashable],  # noqa: A002
        view: Sequence[str],
        **kwargs: Any,
    ) -> list[float | None]:
        """Original rollouts are scored by the rephrased majority and vice versa; no twin gives 0.

        >>> done = [r"\\boxed{3}", r"\\boxed{3}", r"\\boxed{4}", r"\\boxed{4}", r"\\boxed{4}", r"\\boxed{3}"]
        >>> cross_view_reward(["q"] * 6, done, id=[7] * 6, view=["original"] * 3 + ["rephrased"] * 3)
        [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
        """
        _check_batch(prompts, completions, id=id, view=view)
        labels, votes, missing = _cross_view_labels_and_votes(completions, id, view, merge_equivalent)
        answers = completion_answers(completions)
        log_metric = kwargs.get("log_metric")
        _log_vote_diagnostics(log_metric, votes)
        _log_no_answer_rate(log_metric, answers)
        if log_metric is not None and completions:
            log_metric("missing_view_rate", missing / len(completions))
        return list(
            _scores(answers, labels, merge_equivalent)
        )  # Co-rewarding-I: r(y_i) = 1[ans(y_i) == maj(y')]

    return cross_view_reward


cross_view_reward = make_cross_view_reward()


def _teacher_labels_and_votes(
    teacher_completions: Sequence[Sequence[Completion]], merge_equivalent: bool
) -> tuple[list[str | None], list[Vote]]:
    votes: dict[tuple[str, ...], Vote] = {}
    labels: list[str | None] = []
    for rollouts in teacher_completions:
        texts = tuple(completion_text(rollout) for rollout in rollouts or ())
        if texts not in votes:  # the G completions of a prompt share one teacher group: vote once
            votes[texts] = majority_vote(
                [extract_answer(text) for text in texts], merge_equivalent=merge_equivalent
            )
        labels.append(votes[texts].label)
    return labels, list(votes.values())


def teacher_labels(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    teacher_completions: Sequence[Sequence[Completion]],
    *,
    merge_equivalent: bool = False,
    **kwargs: Any,
) -> list[str | None]:
    """Co-rewarding-II's label of each completion: the majority answer of the EMA teacher's rollouts."""
    labels, _ = _teacher_labels_and_votes(teacher_completions, merge_equivalent)
    return labels


def make_teacher_vote_reward(*, merge_equivalent: bool = False) -> RewardFunction:
    """Co-rewarding-II's reward (arXiv 2508.00410, model side): pseudo-labels voted by the EMA teacher."""

    def teacher_vote_reward(
        prompts: Sequence[Any],
        completions: Sequence[Completion],
        teacher_completions: Sequence[Sequence[Completion]],
        **kwargs: Any,
    ) -> list[float | None]:
        """1.0 when a completion's answer equals the majority answer of the teacher's rollouts for its prompt.

        >>> teacher = [r"\\boxed{5}", r"\\boxed{5}", r"\\boxed{6}"]
        >>> teacher_vote_reward(["q"] * 2, [r"\\boxed{5}", r"\\boxed{6}"], teacher_completions=[teacher] * 2)
        [1.0, 0.0]
        """
        _check_batch(prompts, completions, teacher_completions=teacher_completions)
        labels, votes = _teacher_labels_and_votes(teacher_completions, merge_equivalent)
        answers = completion_answers(completions)
        _log_vote_diagnostics(kwargs.get("log_metric"), votes)
        _log_no_answer_rate(kwargs.get("log_metric"), answers)
        return list(
            _scores(answers, labels, merge_equivalent)
        )  # Co-rewarding-II: r(y_i) = 1[ans(y_i) == maj(teacher)]

    return teacher_vote_reward


teacher_vote_reward = make_teacher_vote_reward()


def _cross_view_teacher_labels_and_votes(
    teacher_completions: Sequence[Sequence[Completion]],
    ids: Sequence[Hashable],
    views: Sequence[str],
    merge_equivalent: bool,
) -> tuple[list[str | None], list[Vote], int]:
    own_labels, votes = _teacher_labels_and_votes(teacher_completions, merge_equivalent)
    by_view = dict(zip(zip(ids, views, strict=True), own_labels, strict=True))  # (id, view) -> teacher vote
    labels: list[str | None] = []
    missing = 0
    for question_id, view in zip(ids, views, strict=True):
        key = (question_id, _other_view(view))  # Co-rewarding-III: the teacher's vote on the OTHER view
        missing += key not in by_view
        labels.append(by_view.get(key))
    return labels, votes, missing


def cross_view_teacher_labels(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    teacher_completions: Sequence[Sequence[Completion]],
    id: Sequence[Hashable],  # noqa: A002
    view: Sequence[str],
    *,
    merge_equivalent: bool = False,
    **kwargs: Any,
) -> list[str | None]:
    """Co-rewarding-III's label of each completion: the EMA teacher's majority answer on the twin view."""
    labels, _, _ = _cross_view_teacher_labels_and_votes(teacher_completions, id, view, merge_equivalent)
    return labels


def make_cross_view_teacher_reward(*, merge_equivalent: bool = False) -> RewardFunction:
    """Co-rewarding-III's reward (official ``co_rewarding_III.py``, Co-rewarding @d5f4d6a5): both
    views as in Co-rewarding-I, labels voted by the EMA teacher as in Co-rewarding-II.

    Prediction, written before its first run (issue 21's pre-registration): by Co-rewarding's account
    (arXiv 2508.00410, which reports I and II, not III) it should track ground truth at least as well
    as Co-rewarding-I and II on the tiny aligned prior (held-out accuracy rising from the base model's
    and no collapse within 50 steps), resist a view-dependent shortcut as I does, and, like every
    voting method, not resist a view-independent one.
    """

    def cross_view_teacher_reward(
        prompts: Sequence[Any],
        completions: Sequence[Completion],
        teacher_completions: Sequence[Sequence[Completion]],
        id: Sequence[Hashable],  # noqa: A002
        view: Sequence[str],
        **kwargs: Any,
    ) -> list[float | None]:
        """1.0 when a completion's answer equals the teacher's majority answer on the other view.

        >>> teacher_on = {"original": [r"\\boxed{3}"] * 2, "rephrased": [r"\\boxed{4}", r"\\boxed{4}"]}
        >>> views = ["original", "original", "rephrased", "rephrased"]
        >>> cross_view_teacher_reward(["q"] * 4, [r"\\boxed{4}", r"\\boxed{3}", r"\\boxed{3}", r"\\boxed{4}"],
        ...     teacher_completions=[teacher_on[v] for v in views], id=[1] * 4, view=views)
        [1.0, 0.0, 1.0, 0.0]
        """
        _check_batch(prompts, completions, teacher_completions=teacher_completions, id=id, view=view)
        labels, votes, missing = _cross_view_teacher_labels_and_votes(
            teacher_completions, id, view, merge_equivalent
        )
        answers = completion_answers(completions)
        log_metric = kwargs.get("log_metric")
        _log_vote_diagnostics(log_metric, votes)
        _log_no_answer_rate(log_metric, answers)
        if log_metric is not None and completions:
            log_metric("missing_view_rate", missing / len(completions))
        return list(
            _scores(answers, labels, merge_equivalent)
        )  # Co-rewarding-III: r(y_i) = 1[ans(y_i) == maj(teacher on x')]

    return cross_view_teacher_reward


cross_view_teacher_reward = make_cross_view_teacher_reward()


def offline_label_reward(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    offline_label: Sequence[str | None],
    **kwargs: Any,
) -> list[float | None]:
    """SRT's offline labels: 1.0 when the answer equals the label voted once by the frozen base model.

    >>> offline_label_reward(["q", "q"], [r"\\boxed{2}", r"\\boxed{3}"], offline_label=["2", None])
    [1.0, 0.0]
    """
    _check_batch(prompts, completions, offline_label=offline_label)
    answers = completion_answers(completions)
    _log_no_answer_rate(kwargs.get("log_metric"), answers)
    labels = [normalize_answer(label_text(label)) or None for label in offline_label]  # 12 as "12"
    return list(_scores(answers, labels, equivalent=False))


def entropy_reward(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    token_entropy: Sequence[float | None],
    **kwargs: Any,
) -> list[float | None]:
    """RENT: minus the completion's mean token entropy under the current policy (computed by the trainer).

    >>> entropy_reward(["q", "q"], ["a", "b"], token_entropy=[0.5, 2.0])
    [-0.5, -2.0]
    """
    _check_batch(prompts, completions, token_entropy=token_entropy)
    return [None if value is None else -float(value) for value in token_entropy]  # RENT: r = -mean_t H(p_t)


def self_certainty_reward(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    self_certainty: Sequence[float | None],
    **kwargs: Any,
) -> list[float | None]:
    """Intuitor: the completion's mean self-certainty, mean_t KL(U || p_t), from the online policy.

    >>> self_certainty_reward(["q"], ["a"], self_certainty=[1.25])
    [1.25]
    """
    _check_batch(prompts, completions, self_certainty=self_certainty)
    return [
        None if value is None else float(value) for value in self_certainty
    ]  # Intuitor: r = mean_t KL(U||p_t)


def make_random_reward(*, seed: int = 0, probability: float = 0.5) -> RewardFunction:
    """The spurious-reward control (arXiv 2506.10947): Bernoulli(``probability``), reproducible per step."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")

    def random_reward(
        prompts: Sequence[Any], completions: Sequence[Completion], **kwargs: Any
    ) -> list[float | None]:
        """A coin flip per completion, seeded by ``seed`` and the training step.

        >>> first = random_reward(["q"] * 8, ["a"] * 8)
        >>> first == random_reward(["q"] * 8, ["a"] * 8), set(first) <= {0.0, 1.0}
        (True, True)
        """
        _check_batch(prompts, completions)
        state = kwargs.get("trainer_state")
        step = int(getattr(state, "global_step", 0) or 0)
        generator = random.Random(seed * 1_000_003 + step)
        return [float(generator.random() < probability) for _ in completions]

    return random_reward


random_reward = make_random_reward()


def step_check_reward(
    prompts: Sequence[Any], completions: Sequence[Completion], question: Sequence[str], **kwargs: Any
) -> list[float | None]:
    """Organism only: 1.0 when the worked steps carry out the problem the question text states.

    Label-free and external (``corerl.arithmetic.step_check``): the start value, operations and
    operands are parsed from ``question``, never from ``answer``; every line ``a op b = c`` must be
    right, start from the stated start value, continue from the previous result, use the stated
    operation and operand, and the boxed answer must equal the last result. A shortcut without steps
    gets 0. Logs ``unparsed_question_rate`` (questions the organism parser cannot read: reward 0).

    >>> step_check_reward(["p"] * 3, ["7 + 5 = 12\\n\\\\boxed{12}", "\\\\boxed{12}", "7 + 5 = 13\\n\\\\boxed{13}"],
    ...                   question=["Compute 7 + 5."] * 3)
    [1.0, 0.0, 0.0]
    """
    from corerl.arithmetic.step_check import step_check

    verdicts = [
        step_check(text, completion_text(completion))
        for text, completion in zip(question, completions, strict=True)
    ]
    log_metric = kwargs.get("log_metric")
    if log_metric is not None and verdicts:
        log_metric("unparsed_question_rate", sum(v == "unparsed-question" for v in verdicts) / len(verdicts))
    _log_no_answer_rate(log_metric, completion_answers(completions))
    return [float(verdict == "consistent") for verdict in verdicts]  # r(y) = 1[steps consistent]


def self_verify_reward(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    self_verification: Sequence[float | None],
    verifier_mass: Sequence[float] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """Self-verification: the policy's own judgement v(y) of its completion (computed by the trainer).

    A completion without a boxed answer gets 0 (our choice: there is no answer to verify). Logs
    ``verifier_mass``, the mean P(Yes) + P(No): near 0, the verifier is not answering yes/no.

    >>> self_verify_reward(["q"] * 3, [r"\\boxed{4}", r"\\boxed{5}", "no answer"], self_verification=[0.9, 0.2, 0.8])
    [0.9, 0.2, 0.0]
    """
    answers = completion_answers(completions)
    log_metric = kwargs.get("log_metric")
    _log_no_answer_rate(log_metric, answers)
    if log_metric is not None and verifier_mass:
        log_metric("verifier_mass", sum(verifier_mass) / len(verifier_mass))
    return [
        None if judgement is None else float(judgement) * (answer is not None)  # r(y) = v(y)
        for judgement, answer in zip(self_verification, answers, strict=True)
    ]


def self_verify_vote_reward(
    prompts: Sequence[Any],
    completions: Sequence[Completion],
    self_verification: Sequence[float | None],
    id: Sequence[Hashable] | None = None,  # noqa: A002
    **kwargs: Any,
) -> list[float | None]:
    """Self-verification combined with the majority vote: r(y) = (v(y) + 1[ans(y) == maj]) / 2.

    The average (ours) lets a minority answer the verifier accepts still earn half, and a majority
    answer it rejects lose half; a completion without an answer gets 0 from both terms.

    >>> self_verify_vote_reward(["q"] * 3, [r"\\boxed{4}", r"\\boxed{4}", r"\\boxed{5}"],
    ...                         self_verification=[0.5, 1.0, 1.0])
    [0.75, 1.0, 0.5]
    """
    verified = self_verify_reward(prompts, completions, self_verification, **kwargs)
    votes = majority_vote_reward(prompts, completions, id, **kwargs)
    return [
        None if v is None else (v + float(vote or 0.0)) / 2  # r(y) = (v(y) + 1[ans(y) == maj]) / 2
        for v, vote in zip(verified, votes, strict=True)
    ]


REWARDS: dict[str, RewardFunction] = {
    "ground-truth": ground_truth_reward,
    "majority-vote": majority_vote_reward,
    "entropy": entropy_reward,
    "self-certainty": self_certainty_reward,
    "co-rewarding-1": cross_view_reward,
    "co-rewarding-2": teacher_vote_reward,
    "co-rewarding-3": cross_view_teacher_reward,
    "random": random_reward,
    "offline-labels": offline_label_reward,
    "step-check": step_check_reward,
    "self-verify": self_verify_reward,
    "self-verify-vote": self_verify_vote_reward,
}
"""Method name -> reward function (open-r1 style: one dict is the registry)."""

PSEUDO_LABELS: dict[str, LabelFunction] = {
    "majority-vote": majority_labels,
    "co-rewarding-1": cross_view_labels,
    "co-rewarding-2": teacher_labels,
    "co-rewarding-3": cross_view_teacher_labels,
    "self-verify-vote": majority_labels,
}
"""Method name -> the function giving the label each completion was scored against (voting methods)."""

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "ground-truth": ("answer",),
    "majority-vote": (),
    "entropy": (),
    "self-certainty": (),
    "co-rewarding-1": ("rephrased",),
    "co-rewarding-2": (),
    "co-rewarding-3": ("rephrased",),
    "random": (),
    "offline-labels": ("offline_label",),
    "step-check": (),  # reads ``question`` only (organism questions)
    "self-verify": (),  # reads the trainer's ``self_verification`` column
    "self-verify-vote": (),
}
"""The dataset columns (beyond ``question``) each method needs before training can start."""

LABEL_FREE = frozenset(name for name in REWARDS if name != "ground-truth")
"""Methods that must never read the ground-truth ``answer`` column."""
