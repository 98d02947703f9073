"""Each reward on hand-built groups, TRL's calling convention, and the label-free guarantee."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corerl.rewards import (
    LABEL_FREE,
    PSEUDO_LABELS,
    REQUIRED_COLUMNS,
    REWARDS,
    cross_view_labels,
    cross_view_reward,
    entropy_reward,
    ground_truth_reward,
    majority_labels,
    majority_vote_reward,
    make_majority_vote_reward,
    make_random_reward,
    random_reward,
    self_certainty_reward,
    teacher_labels,
    teacher_vote_reward,
)


def boxed(answer: str | None) -> str:
    return (
        "I could not finish." if answer is None else f"Reasoning... so the answer is $\\boxed{{{answer}}}$."
    )


def as_messages(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


class FakeState:
    def __init__(self, global_step: int) -> None:
        self.global_step = global_step


def trl_columns(completions: list, **columns: list) -> dict:
    """Arguments as TRL 1.14.2 passes them: every dataset column plus its own extras."""
    metrics: dict[str, list[float]] = {}
    return {
        "prompts": columns.pop("prompts", ["question"] * len(completions)),
        "completions": completions,
        "completion_ids": [[0]] * len(completions),
        "trainer_state": FakeState(3),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: metrics.setdefault(name, []).append(value),
        **columns,
    }


def test_ground_truth_reward_uses_equivalence() -> None:
    completions = [boxed("0.5"), boxed(r"\frac{1}{2}"), boxed("2"), boxed(None)]
    rewards = ground_truth_reward(**trl_columns(completions, answer=[r"\frac12"] * 4))
    assert rewards == [1.0, 1.0, 0.0, 0.0]


def test_ground_truth_reward_with_a_missing_label_is_zero() -> None:
    assert ground_truth_reward(**trl_columns([boxed("1")], answer=[None])) == [0.0]


def test_majority_vote_groups_by_id_and_never_rewards_empty_answers() -> None:
    completions = [
        boxed("4"),
        boxed("4"),
        boxed(None),
        boxed(None),
        boxed(None),
        boxed("7"),
        boxed("8"),
        boxed("8"),
    ]
    ids = ["a"] * 5 + ["b"] * 3
    rewards = majority_vote_reward(**trl_columns(completions, id=ids))
    # group a: "4" wins over three empty answers; group b: "8".
    assert rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert majority_labels(**trl_columns(completions, id=ids)) == ["4"] * 5 + ["8"] * 3


def test_majority_vote_groups_by_prompt_without_an_id_and_accepts_messages() -> None:
    prompts = [[{"role": "user", "content": "p1"}]] * 3 + [[{"role": "user", "content": "p2"}]] * 3
    completions = [as_messages(boxed(a)) for a in ["1", "1", "2", "5", "6", "6"]]
    rewards = majority_vote_reward(**trl_columns(completions, prompts=prompts))
    assert rewards == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]


def test_majority_vote_all_empty_group_gets_zero() -> None:
    assert majority_vote_reward(**trl_columns([boxed(None)] * 4, id=["x"] * 4)) == [0.0] * 4


def test_majority_vote_min_share_and_merge_equivalent() -> None:
    completions = [boxed("0.5"), boxed(r"\frac{1}{2}"), boxed("3")]
    assert make_majority_vote_reward(min_share=0.5)(**trl_columns(completions, id=[1] * 3)) == [0.0] * 3
    merged = make_majority_vote_reward(merge_equivalent=True)(**trl_columns(completions, id=[1] * 3))
    assert merged == [1.0, 1.0, 0.0]


def test_cross_view_scores_each_view_by_the_other() -> None:
    completions = [boxed(a) for a in ["3", "3", "4", "4", "4", "3"]]
    columns = trl_columns(completions, id=[9] * 6, view=["original"] * 3 + ["rephrased"] * 3)
    # original majority 3 scores the rephrased rollouts; rephrased majority 4 scores the originals.
    assert cross_view_reward(**columns) == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert cross_view_labels(**columns) == ["4", "4", "4", "3", "3", "3"]


def test_cross_view_with_interleaved_pairs_and_several_questions() -> None:
    completions = [boxed(a) for a in ["1", "2", "1", "2", "5", "5", "1", "6"]]
    ids = ["q1", "q2", "q1", "q2", "q1", "q2", "q1", "q2"]
    views = ["original"] * 4 + ["rephrased"] * 4
    columns = trl_columns(completions, id=ids, view=views)
    # Majorities: q1 original 1, q2 original 2; q1 rephrased [5, 1] -> 5 (tie, first seen), q2 [5, 6] -> 5.
    assert cross_view_labels(**columns) == ["5", "5", "5", "5", "1", "2", "1", "2"]
    assert cross_view_reward(**columns) == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_cross_view_missing_twin_gets_zero_and_is_logged() -> None:
    logged: dict[str, list[float]] = {}
    columns = trl_columns([boxed("2"), boxed("2")], id=["solo", "solo"], view=["original", "original"])
    columns["log_metric"] = lambda name, value: logged.setdefault(name, []).append(value)
    assert cross_view_reward(**columns) == [0.0, 0.0]
    assert logged["missing_view_rate"] == [1.0]


def test_cross_view_empty_twin_majority_gives_zero() -> None:
    completions = [boxed("2"), boxed("2"), boxed(None), boxed(None)]
    columns = trl_columns(completions, id=[1] * 4, view=["original", "original", "rephrased", "rephrased"])
    assert cross_view_reward(**columns) == [0.0, 0.0, 0.0, 0.0]


def test_cross_view_rejects_an_unknown_view() -> None:
    with pytest.raises(ValueError, match="view must be one of"):
        cross_view_reward(**trl_columns([boxed("1")], id=[1], view=["paraphrase"]))


def test_teacher_vote_reward() -> None:
    teacher_a = [boxed("10"), boxed("10"), boxed("11"), boxed(None)]
    teacher_b = [boxed(None), boxed(None)]
    completions = [boxed("10"), boxed("11"), boxed("3"), boxed("3")]
    columns = trl_columns(completions, teacher_completions=[teacher_a, teacher_a, teacher_b, teacher_b])
    assert teacher_vote_reward(**columns) == [1.0, 0.0, 0.0, 0.0]
    assert teacher_labels(**columns) == ["10", "10", None, None]


def test_teacher_vote_accepts_message_completions() -> None:
    teacher = [as_messages(boxed("2"))] * 3
    assert teacher_vote_reward(**trl_columns([as_messages(boxed("2"))], teacher_completions=[teacher])) == [
        1.0
    ]


def test_entropy_and_self_certainty_map_trainer_statistics() -> None:
    assert entropy_reward(**trl_columns(["a", "b"], token_entropy=[0.25, 1.5])) == [-0.25, -1.5]
    assert self_certainty_reward(**trl_columns(["a", "b"], self_certainty=[3.0, 0.5])) == [3.0, 0.5]
    assert entropy_reward(**trl_columns(["a"], token_entropy=[None])) == [None]


def test_random_reward_is_seeded_per_step_and_balanced() -> None:
    columns = trl_columns(["x"] * 2000)
    first = random_reward(**columns)
    assert first == random_reward(**columns)
    assert 0.45 < sum(first) / len(first) < 0.55
    columns["trainer_state"] = FakeState(4)
    assert random_reward(**columns) != first
    assert make_random_reward(seed=1)(**trl_columns(["x"] * 2000)) != first


def test_voting_rewards_log_diagnostics_through_log_metric(capsys: pytest.CaptureFixture[str]) -> None:
    logged: dict[str, list[float]] = {}
    columns = trl_columns([boxed("1"), boxed("1"), boxed(None), boxed("2")], id=["a"] * 4)
    columns["log_metric"] = lambda name, value: logged.setdefault(name, []).append(value)
    majority_vote_reward(**columns)
    assert logged == {"label_share": [2 / 3], "no_label_rate": [0.0], "no_answer_rate": [0.25]}
    assert capsys.readouterr().out == ""


def test_registry_is_complete_and_consistent() -> None:
    methods = {
        "ground-truth",
        "majority-vote",
        "entropy",
        "self-certainty",
        "co-rewarding-1",
        "co-rewarding-2",
        "random",
    }
    assert methods <= set(REWARDS)
    assert set(REWARDS) == set(REQUIRED_COLUMNS)
    assert set(PSEUDO_LABELS) <= set(REWARDS)
    assert set(REWARDS) - {"ground-truth"} == LABEL_FREE
    for name, reward in REWARDS.items():
        parameters = inspect.signature(reward).parameters
        assert list(parameters)[:2] == ["prompts", "completions"], name
        assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()), name
        if name in LABEL_FREE:
            assert "answer" not in parameters, name


def _label_free_columns() -> dict[str, dict]:
    completions = [boxed(a) for a in ["1", "1", "2", None, "3", "3", "3", "1"]]
    teacher = [[boxed("1"), boxed("2"), boxed("1")]] * 4 + [[boxed("3")] * 3] * 4
    return {
        "majority-vote": trl_columns(completions, id=["a"] * 4 + ["b"] * 4),
        "co-rewarding-1": trl_columns(completions, id=["a"] * 8, view=["original"] * 4 + ["rephrased"] * 4),
        "co-rewarding-2": trl_columns(completions, teacher_completions=teacher),
        "co-rewarding-3": trl_columns(
            completions, teacher_completions=teacher, id=["a"] * 8, view=["original"] * 4 + ["rephrased"] * 4
        ),
        "entropy": trl_columns(completions, token_entropy=[0.1 * i for i in range(8)]),
        "self-certainty": trl_columns(completions, self_certainty=[0.2 * i for i in range(8)]),
        "random": trl_columns(completions),
        "offline-labels": trl_columns(completions, offline_label=["1"] * 8),
        "step-check": trl_columns(
            ["2 - 1 = 1\n" + text for text in completions], question=["Compute 2 - 1."] * 8
        ),
        "self-verify": trl_columns(completions, self_verification=[0.1 * i for i in range(8)]),
        "self-verify-vote": trl_columns(
            completions, id=["a"] * 4 + ["b"] * 4, self_verification=[0.1 * i for i in range(8)]
        ),
    }


@pytest.mark.parametrize("method", sorted(LABEL_FREE))
def test_label_free_rewards_ignore_the_answer_column(method: str) -> None:
    columns = _label_free_columns()[method]
    without = REWARDS[method](**columns)
    with_right = REWARDS[method](**columns, answer=["1"] * 8)
    with_wrong = REWARDS[method](**columns, answer=["999"] * 8)
    assert without == with_right == with_wrong
    if method in PSEUDO_LABELS:
        assert PSEUDO_LABELS[method](**columns) == PSEUDO_LABELS[method](**columns, answer=["999"] * 8)


completion_texts = st.one_of(
    st.text(max_size=80),
    st.builds(lambda inner: f"\\boxed{{{inner}}}", st.text(max_size=20)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(completion_texts, min_size=1, max_size=8))
def test_no_completion_makes_a_reward_raise(completions: list[str]) -> None:
    n = len(completions)
    views = (["original", "rephrased"] * n)[:n]
    columns = trl_columns(
        completions,
        id=[0] * n,
        view=views,
        answer=["1"] * n,
        teacher_completions=[completions] * n,
        token_entropy=[0.5] * n,
        self_certainty=[0.5] * n,
        self_verification=[0.5] * n,
        offline_label=completions,
        question=completions,
    )
    for name, reward in REWARDS.items():
        rewards = reward(**columns)
        assert len(rewards) == n, name
        assert all(value is None or isinstance(value, float) for value in rewards), name


# ------------------------------------------------ smaller defects of issue 13.11


def test_a_nan_label_is_missing_not_the_answer_nan() -> None:
    from corerl.rewards import ground_truth_reward

    assert ground_truth_reward(["q"], [r"\boxed{nan}"], answer=[float("nan")]) == [0.0]
    assert ground_truth_reward(["q"], [r"\boxed{12}"], answer=[12]) == [1.0]


def test_an_integer_offline_label_matches() -> None:
    from corerl.rewards import offline_label_reward

    assert offline_label_reward(["q", "q"], [r"\boxed{12}", r"\boxed{3}"], offline_label=[12, 12]) == [
        1.0,
        0.0,
    ]


@pytest.mark.parametrize("method", ["ground-truth", "majority-vote", "random", "entropy"])
def test_rewards_refuse_a_batch_of_mismatched_lengths(method) -> None:
    from corerl.rewards import REWARDS

    columns = {
        "ground-truth": {"answer": ["1"]},
        "majority-vote": {"id": ["a"]},
        "random": {},
        "entropy": {"token_entropy": [0.5]},
    }[method]
    with pytest.raises(ValueError, match="mismatched lengths"):
        REWARDS[method](["q", "q"], [r"\boxed{1}"] * (2 if columns else 3), **columns)


def test_reward_parameters_outside_zero_one_are_refused() -> None:
    from corerl.rewards import make_majority_vote_reward, make_random_reward

    with pytest.raises(ValueError, match=r"min_share must be in \[0, 1\], got 1.5"):
        make_majority_vote_reward(min_share=1.5)
    with pytest.raises(ValueError, match=r"probability must be in \[0, 1\], got -0.1"):
        make_random_reward(probability=-0.1)
