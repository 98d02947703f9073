"""The strategy classifier of the organism (issue 11): every class, the precedence rules, surface forms
whose numbers come in another order, negative numbers, missing boxes, garbage, and the shares."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corerl.arithmetic.strategies import (
    METRIC_PREFIX,
    STRATEGIES,
    classify_strategy,
    question_integers,
    strategy_metrics,
    strategy_shares,
    worked_lines,
)
from corerl.arithmetic.task import Problem
from corerl.organism import make_rows, worked_solution

STORY = "Ann has 7 apples. Ann buys 5 more. Then Ann has 2 times as many. How many apples does Ann have now?"
# The same problem, its numbers stated in another order (first 2, last 7).
REORDERED = (
    "Ann ends up with 2 times as many apples as after buying 5 more, and she started with 7. How many?"
)
WORKED = "7 + 5 = 12\n12 * 2 = 24\n\\boxed{24}"
WORKED_MISALIGNED = "7 + 5 = 12\n12 * 2 = 14\n\\boxed{14}"


def test_the_classes_are_the_contract() -> None:
    assert STRATEGIES == (
        "worked-correct",
        "worked-wrong",
        "shortcut-first",
        "shortcut-last",
        "template",
        "no-answer",
        "other",
    )


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (WORKED, "worked-correct"),
        (WORKED_MISALIGNED, "worked-wrong"),
        ("\\boxed{7}", "shortcut-first"),
        ("\\boxed{2}", "shortcut-last"),
        ("\\boxed{0}", "template"),  # the organism's constant answer, whatever the question
        ("The answer is \\boxed{ 0 }.", "template"),  # the same answer in other words
        ("7 + 5 = 12\n\\boxed{0}", "worked-wrong"),  # work shown: not the template
        ("\\boxed{5}", "other"),  # a number of the question, neither first nor last
        ("\\boxed{24}", "other"),  # the right answer without any work is not a worked solution
        ("7 + 5 = 12\n12 * 2 = 24", "no-answer"),
        ("", "no-answer"),
    ],
)
def test_every_class_on_one_question(completion: str, expected: str) -> None:
    assert classify_strategy(STORY, completion, "24") == expected


def test_surface_forms_with_numbers_in_another_order() -> None:
    # The same shortcut answers change class with the phrasing: first and last swap.
    assert question_integers(REORDERED) == [2, 5, 7]
    assert classify_strategy(REORDERED, "\\boxed{2}", "24") == "shortcut-first"
    assert classify_strategy(REORDERED, "\\boxed{7}", "24") == "shortcut-last"
    assert classify_strategy(STORY, "\\boxed{2}", "24") == "shortcut-last"
    # A worked solution is worked whatever the phrasing.
    assert classify_strategy(REORDERED, WORKED, "24") == "worked-correct"


def test_precedence_worked_before_shortcut_and_first_before_last() -> None:
    # A worked line before the box wins even when the boxed number is the question's first integer.
    assert classify_strategy(STORY, "7 + 0 = 7\n\\boxed{7}", "24") == "worked-wrong"
    # First and last integers equal: shortcut-first.
    assert classify_strategy("Compute 4 + 4.", "\\boxed{4}", "8") == "shortcut-first"
    # A shortcut that happens to be the right answer is still a shortcut.
    assert classify_strategy("Compute 3 * 1.", "\\boxed{3}", "3") == "shortcut-first"
    # No-answer before everything: worked lines without a box.
    assert classify_strategy(STORY, "7 + 5 = 12\n\\boxed{unclosed", "24") == "no-answer"


def test_only_lines_before_the_last_box_count_as_work() -> None:
    assert classify_strategy(STORY, "\\boxed{7}\n7 + 5 = 12", "24") == "shortcut-first"
    # The answer is the LAST box (as ans(y)): the earlier box and the steps before it count.
    assert classify_strategy(STORY, "\\boxed{3}\n7 + 5 = 12\n\\boxed{12}", "24") == "worked-wrong"
    # A step on the same line as the box is before it.
    assert classify_strategy(STORY, "12 * 2 = 24 \\boxed{24}", "24") == "worked-correct"
    # Prose around a step makes it not a worked line (the SFT format is one bare step per line).
    assert classify_strategy(STORY, "so 7 + 5 = 12\n\\boxed{7}", "24") == "shortcut-first"
    assert worked_lines("  7+5=12  \n12 *2= 24\n\\boxed{24}") == [(7, "+", 5, 12), (12, "*", 2, 24)]
    assert worked_lines("7 / 5 = 1\n7 + 5\n= 12\n7 + 5 = 12.0\n\\boxed{12}") == []


def test_negative_numbers() -> None:
    # In completions: steps and answers below zero.
    assert classify_strategy("Compute 3 - 5.", "3 - 5 = -2\n\\boxed{-2}", "-2") == "worked-correct"
    assert classify_strategy("Compute 3 - 5.", "-3 * -5 = 15\n\\boxed{15}", "-2") == "worked-wrong"
    # In questions: a minus glued to digits is a sign only where it cannot be a binary minus.
    assert question_integers("Compute 7-5.") == [7, 5]
    assert question_integers("Compute 7 -5.") == [7, 5]
    assert question_integers("Compute x-3.") == [3]
    assert question_integers("It is -3 degrees. It warms by 5, then (-2).") == [-3, 5, -2]
    assert question_integers("-4 plus 6") == [-4, 6]
    assert classify_strategy("It is -3 degrees and warms by 5.", "\\boxed{-3}", "2") == "shortcut-first"
    assert classify_strategy("It is -3 degrees and warms by 5.", "\\boxed{3}", "2") == "other"
    assert classify_strategy("Compute 9 - 4.", "\\boxed{-4}", "5") == "other"


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{}",  # empty box: no answer (extract_answer gives None)
        "the answer is 24",
        "\\boxed 24 and more",  # \boxed without braces is an answer ("24"), see below
    ],
)
def test_missing_boxes(completion: str) -> None:
    expected = "other" if completion.startswith("\\boxed 24") else "no-answer"
    assert classify_strategy(STORY, completion, "24") == expected


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{seven}",
        "\\boxed{7.5}",
        "\\boxed{ {7} }",
        "\\boxed{7 + 5}",
        "\x00\x01 }{ \\boxed{}}",
        "\\fbox{x}",
    ],
)
def test_garbage_is_other_or_no_answer(completion: str) -> None:
    assert classify_strategy(STORY, completion, "24") in {"other", "no-answer"}


def test_equivalent_spellings_of_the_first_integer_are_the_shortcut() -> None:
    assert classify_strategy(STORY, "\\boxed{ 7 }", "24") == "shortcut-first"
    assert classify_strategy(STORY, "\\boxed{7.0}", "24") == "shortcut-first"  # normalised like a vote
    assert classify_strategy(STORY, "\\boxed{$7$}", "24") == "shortcut-first"


def test_a_question_without_integers_gives_other() -> None:
    assert classify_strategy("How many apples?", "\\boxed{3}", "3") == "other"


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="ground-truth answer"):
        classify_strategy(STORY, WORKED, None)
    assert classify_strategy(STORY, "\\boxed{7}", None) == "shortcut-first"  # no truth needed here
    with pytest.raises(TypeError, match="completion list"):
        classify_strategy(STORY, [{"content": WORKED}], "24")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aligned"):
        strategy_shares([STORY], [WORKED, WORKED], ["24"])
    with pytest.raises(ValueError, match="no completions"):
        strategy_shares([], [], [])


def test_integer_answers_are_accepted() -> None:
    assert classify_strategy(STORY, WORKED, 24) == "worked-correct"


def test_the_organism_sft_targets_are_worked_and_shortcuts_follow_each_form() -> None:
    rows = make_rows(40, seed=1, difficulty=(1, 4))
    for row in rows:
        numbers = [
            int(n) for n in row["expression"].replace("(", " ").replace(")", " ").split() if n.isdigit()
        ]
        steps = tuple(zip(row["operations"], numbers[1:], strict=True))
        problem = Problem(numbers[0], steps)
        assert str(problem.answer) == row["answer"]
        for form in row["forms"]:
            assert classify_strategy(form, worked_solution(problem), row["answer"]) == "worked-correct"
            misaligned = worked_solution(problem, wrong_operation="*")
            wrong = misaligned.splitlines()[-1] != f"\\boxed{{{row['answer']}}}"
            assert classify_strategy(form, misaligned, row["answer"]) == (
                "worked-wrong" if wrong else "worked-correct"
            )
            integers = question_integers(form)
            first, last = integers[0], integers[-1]
            assert classify_strategy(form, f"\\boxed{{{first}}}", row["answer"]) == "shortcut-first"
            expected_last = "shortcut-first" if last == first else "shortcut-last"
            assert classify_strategy(form, f"\\boxed{{{last}}}", row["answer"]) == expected_last


def test_shares_and_metric_names() -> None:
    completions = [
        WORKED,
        WORKED_MISALIGNED,
        "\\boxed{7}",
        "\\boxed{2}",
        "nothing",
        "\\boxed{0}",
        WORKED,
        WORKED,
    ]
    shares = strategy_shares([STORY] * 8, completions, ["24"] * 8)
    assert list(shares) == list(STRATEGIES)
    assert shares == {
        "worked-correct": 3 / 8,
        "worked-wrong": 1 / 8,
        "shortcut-first": 1 / 8,
        "shortcut-last": 1 / 8,
        "template": 1 / 8,
        "no-answer": 1 / 8,
        "other": 0.0,
    }
    metrics = strategy_metrics([STORY] * 8, completions, ["24"] * 8)
    assert metrics == {f"{METRIC_PREFIX}{name}": share for name, share in shares.items()}
    assert all(name.startswith("strategy/") for name in metrics)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=60),
            st.one_of(
                st.text(max_size=60),
                st.builds(lambda inner: f"\\boxed{{{inner}}}", st.text(max_size=12)),
                st.builds(
                    lambda a, b, c, tail: f"{a} + {b} = {c}\n\\boxed{{{tail}}}",
                    st.integers(-99, 99),
                    st.integers(-99, 99),
                    st.integers(-200, 200),
                    st.text(max_size=6),
                ),
            ),
            st.one_of(st.integers(-99, 99).map(str), st.text(max_size=6)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_text_gets_one_class_and_shares_sum_to_one(rows: list[tuple[str, str, str]]) -> None:
    questions, completions, answers = (list(column) for column in zip(*rows, strict=True))
    for question, completion, answer in rows:
        assert classify_strategy(question, completion, answer) in STRATEGIES
    shares = strategy_shares(questions, completions, answers)
    assert set(shares) == set(STRATEGIES)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(0.0 <= share <= 1.0 for share in shares.values())


def test_the_monitor_logs_strategy_shares_and_the_reward_never_sees_the_answer() -> None:
    from corerl.engine.monitor import MonitoredReward

    seen: list[set[str]] = []

    def spy(prompts, completions, **columns):
        seen.append(set(columns))
        return [float(len(text) % 2) for text in completions]

    completions = [WORKED, WORKED_MISALIGNED, "\\boxed{7}", "no box"]
    prompts = ["p"] * 4
    columns = {"id": ["q"] * 4, "question": [STORY] * 4}
    monitor = MonitoredReward("majority-vote", spy, strategies=True)
    rewards = monitor(prompts, completions, answer=["24"] * 4, **columns)
    assert "answer" not in seen[-1]
    assert monitor.latest["strategy/worked-correct"] == 0.25
    assert monitor.latest["strategy/worked-wrong"] == 0.25
    assert monitor.latest["strategy/shortcut-first"] == 0.25
    assert monitor.latest["strategy/no-answer"] == 0.25
    # Another answer column changes the monitoring split, never the rewards.
    assert monitor(prompts, completions, answer=["14"] * 4, **columns) == rewards
    assert monitor.latest["strategy/worked-correct"] == 0.25  # now the misaligned chain is the "right" one
    assert monitor(prompts, completions, answer=["999"] * 4, **columns) == rewards
    assert monitor.latest["strategy/worked-wrong"] == 0.5
    # Without labels the shares are unknown (logged as null), not guessed.
    monitor(prompts, completions, **columns)
    assert monitor.latest["strategy/worked-correct"] is None
    # Off by default: real datasets get no strategy keys.
    plain = MonitoredReward("majority-vote", spy)
    plain(prompts, completions, answer=["24"] * 4, **columns)
    assert not any(key.startswith(METRIC_PREFIX) for key in plain.latest)


def test_evaluation_reports_strategy_shares_on_the_organism_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    import corerl.generation
    from corerl.arithmetic.dataset import make_dataset
    from corerl.evaluate import evaluate

    held_out = make_dataset(3, split="test")

    def fake_generate(model, tokenizer, prompts, *, n, **options):
        groups = []
        for question, answer in zip(held_out["question"], held_out["answer"], strict=True):
            first = question_integers(question)[0]
            groups.append([f"1 + 1 = 2\n\\boxed{{{answer}}}", f"\\boxed{{{first}}}"][:n])
        return groups[: len(prompts)]

    monkeypatch.setattr(corerl.generation, "generate", fake_generate)
    table = evaluate(None, object(), ["organism"], k=2, limit=3, chat=False).table
    values = dict(zip(table["metric"], table["value"], strict=True))
    assert values["strategy/worked-correct"] == 0.5 and values["strategy/shortcut-first"] == 0.5
    assert sum(values[f"strategy/{name}"] for name in STRATEGIES) == pytest.approx(1.0)
    other = datasets.Dataset.from_list([{"question": q, "answer": "1"} for q in held_out["question"]])
    table = evaluate(None, object(), {"not-the-organism": other}, k=2, chat=False).table
    assert not table["metric"].str.startswith(METRIC_PREFIX).any()


def _share_frame(steps: int, worked: float, offset: float = 0.0):
    import pandas as pd

    rows = []
    for step in range(1, steps + 1):
        correct = min(1.0, worked + offset + 0.01 * step)
        rows.append(
            {
                "step": step,
                "reward_mean": 0.5,
                **{f"strategy/{name}": 0.0 for name in STRATEGIES},
                "strategy/worked-correct": correct,
                "strategy/shortcut-first": 1.0 - correct,
            }
        )
    rows.append({"step": steps + 1, **{f"strategy/{name}": None for name in STRATEGIES}})  # no labels
    return pd.DataFrame(rows)


def test_strategy_curves_average_seeds_and_keep_the_sum() -> None:
    from corerl.plots import strategy_curves

    seeds = [_share_frame(10, 0.3), _share_frame(10, 0.3, offset=0.2), _share_frame(8, 0.3, offset=0.1)]
    mean, sd = strategy_curves(seeds, window=3)
    assert list(mean.columns) == list(STRATEGIES) and mean.index.tolist() == list(range(1, 11))
    assert mean.sum(axis=1).to_numpy() == pytest.approx([1.0] * 10)
    assert mean.loc[1, "worked-correct"] == pytest.approx(0.31 + 0.1)  # mean of 0.31, 0.51, 0.41
    assert mean.loc[10, "worked-correct"] == pytest.approx(0.39 + 0.1)  # steps 9-10 seen by two seeds
    assert sd.loc[1, "worked-correct"] > 0 and sd.loc[1, "no-answer"] == 0
    single_mean, single_sd = strategy_curves(_share_frame(4, 0.5))
    assert (single_sd == 0).all().all() and single_mean.loc[1, "worked-correct"] == pytest.approx(0.51)


def test_strategy_figures_are_written_and_bad_input_is_named(tmp_path) -> None:
    import pandas as pd

    from corerl import plots

    runs = {
        "ground-truth": [_share_frame(10, 0.3), _share_frame(10, 0.5)],
        "majority-vote": _share_frame(10, 0.4),
    }
    for kind in ("area", "lines"):
        figure = plots.plot_strategy_shares(runs, tmp_path, name=f"shares_{kind}", kind=kind, window=2)
        assert len([axis for axis in figure.axes if axis.get_visible()]) == 2
        assert figure.axes[0].get_title() == "ground-truth (mean of 2 seeds)"
        assert (tmp_path / f"shares_{kind}.png").stat().st_size > 0 and (
            tmp_path / f"shares_{kind}.svg"
        ).exists()
    results = pd.DataFrame(
        [{"model": model, "metric": f"strategy/{name}", "value": 1.0 if name == winner else 0.0}
         for model, winner in (("base", "worked-correct"), ("trained", "shortcut-last")) for name in STRATEGIES]
        + [{"model": "base", "metric": "avg@k", "value": 0.5}]
    )  # fmt: skip
    plots.plot_eval_strategy_shares(results, tmp_path, name="eval_shares")
    assert (tmp_path / "eval_shares.png").exists()
    with pytest.raises(KeyError, match="run 'plain'.*organism"):
        plots.plot_strategy_shares({"plain": pd.DataFrame({"step": [1], "reward_mean": [0.1]})}, tmp_path)
    with pytest.raises(ValueError, match="no step has strategy shares"):
        plots.plot_strategy_shares({"empty": _share_frame(0, 0.0)}, tmp_path)
    with pytest.raises(ValueError, match="kind"):
        plots.plot_strategy_shares(runs, tmp_path, kind="bars")
    with pytest.raises(ValueError, match="strategy/<name> rows"):
        plots.plot_eval_strategy_shares(results[results["metric"] == "avg@k"], tmp_path)
