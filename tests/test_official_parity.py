"""Where corerl reproduces the papers' official code, checked against values read from that code.

Each expected value comes from the official behaviour as read in the file and commit its table names
(no official code is copied or imported here):
- MATH_PY: resistzzz/Co-rewarding@6c60ea458a1a3439230c6f2ef49e248a3e577c8a,
  Co-rewarding-I/verl/utils/reward_score/math.py (``is_equiv``, ``strip_string``; the same file in
  Co-rewarding-II/);
- CO_REWARDING_III: resistzzz/Co-rewarding@d5f4d6a5957e6d9af074d6faae099fde520dd04c,
  Co-rewarding-III/verl/workers/reward_manager/co_rewarding_III.py (``majority_vote``, ``__call__``).
"""

from __future__ import annotations

import pytest

from corerl.answers import answers_match, normalize_answer
from corerl.graders import hendrycks_equiv
from corerl.rewards import (
    REQUIRED_COLUMNS,
    REWARDS,
    cross_view_teacher_labels,
    cross_view_teacher_reward,
    ground_truth_reward,
    majority_vote_reward,
)
from corerl.voting import majority_vote

# (answer, truth, is_equiv(answer, truth)) from MATH_PY; the comment says which rule decides.
HENDRYCKS_CASES = [
    (r"10\text{ cm}^2", "10", True),  # remove_right_units: split at "\text{ ", everything after dropped
    (r"4\text{ or }5", "4", True),  # the same rule takes a hedge for a unit
    (r"10\text{cm}", "10", False),  # no space after the brace: the unit stays
    ("$5$", "5", False),  # only "\$" is removed, a bare $ stays
    (r"\$5", "5", True),
    ("50%", "50", False),  # only "\%" is removed, a bare % stays
    (r"50\%", "50", True),
    ("x = 5", "5", True),  # split("=")[0] == "x " has 2 characters, measured before spaces go
    ("xy = 5", "5", False),  # "xy " has 3
    ("xy=5", "5", True),  # "xy" has 2
    (" x = 5", "5", False),  # " x " has 3 (the string is never stripped)
    ("k = 3", "3", True),
    ("a=b=c", "c", False),  # the rule needs exactly one "="
    (r"\text{ a}\text{ b}", r"\text{ a}\text{ b}", True),  # two "\text{ ": assert fails, raw strings equal
    (r"1\text{ a}\text{ b}", "1", False),  # ... and raw strings differ
    (r"\sqrt", r"\sqrt", True),  # fix_sqrt indexes an empty tail: raw comparison
    (r"2\sqrt", "2", False),
    (r"\sqrt3", r"\sqrt{3}", True),
    (r"\frac12", r"\frac{1}{2}", True),  # fix_fracs
    (r"\frac1{72}", r"\frac{1}{72}", True),
    ("0.5", r"\frac{1}{2}", True),  # the one special-cased decimal
    ("0.25", r"\frac{1}{4}", False),
    (".5", "0.5", True),  # a leading "." gets a 0
    ("1/2", "0.5", True),
    ("-3/4", r"\frac{-3}{4}", True),  # fix_a_slash_b: int() accepts the sign, the string round-trips
    ("03/4", r"\frac{3}{4}", False),  # "03" does not round-trip through int()
    ("13/4", r"\frac{13}{4}", True),
    (r"\dfrac{3}{4}", "3/4", True),
    (r"\rightarrow", "arrow", True),  # "\right" is removed wherever it occurs
    (r"\left(1,2\right)", "(1,2)", True),
    (r"90^\circ", "90", True),
    ("81, 256", "81256", False),  # no thousands rule in strip_string
    (None, None, True),  # is_equiv: both None is True (with a printed warning)
    (None, "1", False),
]


@pytest.mark.parametrize(("answer", "truth", "expected"), HENDRYCKS_CASES)
def test_hendrycks_equiv_reproduces_the_official_is_equiv(answer, truth, expected) -> None:
    assert hendrycks_equiv(answer, truth) is expected


def test_the_default_grader_keeps_refusing_what_hendrycks_accepts() -> None:
    # corerl's own choice (issue 13.5): math-verify never grades a hedge as its first number.
    assert hendrycks_equiv(r"4\text{ or }5", "4") and not answers_match("4", r"4\text{ or }5")


# Item 2 of issue 24: a list written with ", " is not one number (math-train-3679's gold is "81, 256").
@pytest.mark.parametrize(("listed", "joined"), [("81, 256", "81256"), ("10, 100", "10100")])
def test_a_list_is_not_read_as_a_thousands_number(listed, joined) -> None:
    assert normalize_answer(listed) != normalize_answer(joined)
    reward = ground_truth_reward(
        ["q"] * 2, [rf"\boxed{{{joined}}}", rf"\boxed{{{listed}}}"], answer=[listed] * 2
    )
    assert reward == [0.0, 1.0]
    vote = majority_vote([joined, listed, listed])
    assert (vote.label, vote.count) == (normalize_answer(listed), 2)


def test_thousands_separators_still_merge_in_one_number() -> None:
    assert normalize_answer("1,000") == normalize_answer("1000") == "1000"
    assert normalize_answer("x = 12,345") == "12345" and normalize_answer("1,000.") == "1000"
    # MATH's ",\!" thousands groups, with or without spaces (math_test: "111, \! 111, \! 111")
    assert normalize_answer(r"111, \! 111, \! 111") == normalize_answer(r"111,\!111,\!111") == "111111111"


def test_shipped_lists_of_angles_stay_lists() -> None:
    # math_train: "60^\circ, 120^\circ" was read as 60120 before issue 24.
    assert normalize_answer(r"60^\circ, 120^\circ") == "60,120" != normalize_answer("60120")


def test_an_integer_fraction_votes_with_its_latex_form() -> None:
    # Item 3: hendrycks_normalize (MATH_PY's fix_a_slash_b) and TTRL's normaliser fold "13/4".
    assert normalize_answer("13/4") == normalize_answer(r"\frac{13}{4}") == normalize_answer(r"\dfrac{13}{4}")
    assert normalize_answer("-13/4") == normalize_answer(r"-\frac{13}{4}")
    vote = majority_vote(["13/4", r"\frac{13}{4}", "3.25"])
    assert (vote.label, vote.count) == (r"\frac{13}{4}", 2)
    done = [r"\boxed{13/4}", r"\boxed{\frac{13}{4}}", r"\boxed{3}"]
    assert majority_vote_reward(["q"] * 3, done) == [1.0, 1.0, 0.0]


def _views(group: int) -> list[str]:
    return ["original"] * group + ["rephrased"] * group


def _boxed(answers: list[str | None]) -> list[str]:
    return [f"so \\boxed{{{a}}}." if a is not None else "no box" for a in answers]


# Co-rewarding-III cases, from CO_REWARDING_III's __call__: per question uid, the policy's answers on
# the original view are scored against majority_vote(teacher answers on the rephrased view) and vice
# versa; majority_vote drops None and blank answers and keeps Counter.most_common's first-seen
# winner; an empty label ('') pays nothing; reward = 1.0 when ans == label, else 0.0.
CO_REWARDING_III_CASES = [
    pytest.param(
        # teacher on original, teacher on rephrased, policy on original, policy on rephrased
        ["3", "3", "4", None],
        ["4", "4", None, None],
        ["4", "3", "4", None],
        ["3", "3", "4", None],
        [1.0, 0.0, 1.0, 0.0] + [1.0, 1.0, 0.0, 0.0],  # original by "4" (rephrased teacher), rephrased by "3"
        id="each-view-by-the-teacher-on-the-other",
    ),
    pytest.param(
        ["7", "7", "7", "7"],
        ["8", "8", "8", "8"],
        ["7", "7", "7", "7"],
        ["7", "7", "8", "8"],
        [0.0] * 4 + [1.0, 1.0, 0.0, 0.0],  # the teacher's vote on a view never scores that view
        id="never-the-own-view",
    ),
    pytest.param(
        [None, None, None, None],
        ["2", "2", "1", "2"],
        [None, "2", "1", None],
        [None, None, None, None],
        [0.0, 1.0, 0.0, 0.0] + [0.0] * 4,  # no teacher answer on the original: label '', reward 0
        id="no-teacher-answer-no-reward",
    ),
    pytest.param(
        ["6", "5", "5", "6"],
        ["5", "6", "6", "5"],
        ["5", "6", "5", "6"],
        ["6", "5", "6", "5"],
        [1.0, 0.0, 1.0, 0.0] + [1.0, 0.0, 1.0, 0.0],  # a tie goes to the first-seen answer
        id="tie-first-seen",
    ),
]


@pytest.mark.parametrize(
    ("teacher_o", "teacher_r", "policy_o", "policy_r", "expected"), CO_REWARDING_III_CASES
)
def test_co_rewarding_3_reward_matches_the_official_manager(
    teacher_o, teacher_r, policy_o, policy_r, expected
):
    group = len(teacher_o)
    views = _views(group)
    teacher = {"original": _boxed(teacher_o), "rephrased": _boxed(teacher_r)}
    columns = {"teacher_completions": [teacher[v] for v in views], "id": ["q1"] * (2 * group), "view": views}
    completions = _boxed(policy_o) + _boxed(policy_r)
    assert cross_view_teacher_reward(["p"] * (2 * group), completions, **columns) == expected
    assert REWARDS["co-rewarding-3"] is cross_view_teacher_reward
    assert REQUIRED_COLUMNS["co-rewarding-3"] == ("rephrased",)


def test_co_rewarding_3_keeps_questions_apart_and_logs_its_diagnostics() -> None:
    views = _views(2) * 2
    ids = ["a"] * 4 + ["b"] * 4
    teacher = {("a", "original"): ["1", "1"], ("a", "rephrased"): ["2", "2"], ("b", "original"): ["3", "3"]}
    teacher_completions = [_boxed(teacher.get((i, v), [None, None])) for i, v in zip(ids, views, strict=True)]
    completions = _boxed(["2", "2", "1", "1", "9", "9", "3", "3"])
    logged: dict[str, float] = {}
    rewards = cross_view_teacher_reward(
        ["p"] * 8,
        completions,
        teacher_completions=teacher_completions,
        id=ids,
        view=views,
        log_metric=logged.__setitem__,
    )
    assert rewards == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    labels = cross_view_teacher_labels(["p"] * 8, completions, teacher_completions, ids, views)
    assert labels == ["2", "2", "1", "1", None, None, "3", "3"]
    assert logged["missing_view_rate"] == 0.0 and logged["no_answer_rate"] == 0.0


def test_co_rewarding_3_without_the_twin_view_gives_zero() -> None:
    logged: dict[str, float] = {}
    rewards = cross_view_teacher_reward(
        ["p"] * 2,
        _boxed(["4", "4"]),
        teacher_completions=[_boxed(["4", "4"])] * 2,
        id=["a", "a"],
        view=["original", "original"],
        log_metric=logged.__setitem__,
    )
    assert rewards == [0.0, 0.0] and logged["missing_view_rate"] == 1.0


def test_co_rewarding_3_departs_from_raw_string_equality_as_documented() -> None:
    # CO_REWARDING_III compares raw strings (ans == pseudo_label): ".5" against "0.5" earns 0 there.
    # corerl compares normalised strings (corerl.rewards' departures): it earns 1 here.
    views = _views(1)
    teacher = {"original": _boxed(["0.5"]), "rephrased": _boxed(["0.5"])}
    rewards = cross_view_teacher_reward(
        ["p"] * 2,
        _boxed([".5", "0.5"]),
        teacher_completions=[teacher[v] for v in views],
        id=["a"] * 2,
        view=views,
    )
    assert rewards == [1.0, 1.0]
