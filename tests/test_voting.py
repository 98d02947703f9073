"""Majority voting: the edge cases that decide what a label-free method rewards."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corerl.voting import Vote, agrees_with_label, majority_vote


def test_all_empty_gives_no_label() -> None:
    assert majority_vote([None, "", "   "]) == Vote(label=None, count=0, valid=0, total=3)
    assert majority_vote([]) == Vote(label=None, count=0, valid=0, total=0)
    assert majority_vote([]).share == 0.0


def test_empty_answers_never_win_even_when_most_common() -> None:
    vote = majority_vote([None, None, None, "4", ""])
    assert vote.label == "4"
    assert (vote.count, vote.valid, vote.total) == (1, 1, 5)
    assert vote.share == 1.0  # SRT's code: count over the parseable answers


def test_share_is_srts_count_over_parseable_answers() -> None:
    vote = majority_vote(["7", "7", "8", None, None, "", None, None])
    assert (vote.count, vote.valid, vote.total) == (2, 3, 8)
    assert vote.share == 2 / 3  # not 2 / 8
    # tau follows: 2/3 passes 0.6 although 2/8 of all rollouts would not
    assert majority_vote(["7", "7", "8", None, None, "", None, None], min_share=0.6).label == "7"
    assert majority_vote(["7", "7", "8", None], min_share=0.7).label is None


def test_one_voter() -> None:
    assert majority_vote(["12"]) == Vote(label="12", count=1, valid=1, total=1)


def test_tie_goes_to_the_first_seen_candidate() -> None:
    assert majority_vote(["3", "5", "5", "3"]).label == "3"
    assert majority_vote(["5", "3", "3", "5"]).label == "5"


def test_normalised_spellings_vote_together() -> None:
    vote = majority_vote([r"\dfrac{1}{2}", r"\frac12", "7", "7.0", r"\frac{1}{2}"])
    assert (vote.label, vote.count) == (r"\frac{1}{2}", 3)


def test_merge_equivalent_merges_what_math_verify_finds_equal() -> None:
    answers = ["0.5", r"\frac{1}{2}", "3", "3"]
    assert majority_vote(answers).label == "3"  # 0.5 and 1/2 are different strings
    merged = majority_vote(answers, merge_equivalent=True)
    assert (merged.label, merged.count) == ("0.5", 2)  # tie 2-2, first seen wins


def test_min_share_is_srt_tau() -> None:
    answers = ["1", "1", "2", "3"]
    assert majority_vote(answers, min_share=0.5).label == "1"
    below = majority_vote(answers, min_share=0.6)
    assert below.label is None and below.count == 2


def test_agrees_with_label() -> None:
    assert agrees_with_label("1,000", "1000")
    assert not agrees_with_label("1000", None)
    assert not agrees_with_label(None, "")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=16))
def test_vote_invariants(answers: list[str | None]) -> None:
    vote = majority_vote(answers)
    assert vote.total == len(answers)
    assert 0 <= vote.count <= vote.valid <= vote.total
    assert vote.share == (vote.count / vote.valid if vote.valid else 0.0)
    assert (vote.label is None) == (vote.valid == 0)
    if vote.label is not None:
        assert vote.label != ""
        assert sum(agrees_with_label(answer, vote.label) for answer in answers) == vote.count
