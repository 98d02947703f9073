"""The step-checking reward (issue 15, item 1): the question parser on every organism surface form,
each check and each hack it names, label leakage, and a few training steps through ``corerl train``."""

from __future__ import annotations

import json

import pytest

from corerl.arithmetic.step_check import CHECKS, parse_question, step_check
from corerl.arithmetic.strategies import STRATEGIES
from corerl.arithmetic.task import Problem
from corerl.organism import make_rows, worked_solution
from corerl.rewards import LABEL_FREE, REQUIRED_COLUMNS, REWARDS, step_check_reward

QUESTION = "Ann has 7 apples. A friend gives Ann 5 apples. Then Ann has 2 times as many. How many apples now?"
PROBLEM = Problem(7, (("+", 5), ("*", 2)))


def test_the_parser_reads_every_surface_form_of_the_organism() -> None:
    for split in ("train", "test"):
        for row in make_rows(150, seed=4, difficulty=(1, 4), split=split):
            problems = {parse_question(form) for form in row["forms"]}
            assert len(problems) == 1 and None not in problems, row["forms"]
            (problem,) = problems
            assert problem.expression == row["expression"] and str(problem.answer) == row["answer"]


def test_the_parser_reads_stories_told_backwards() -> None:
    # Organism v2's backwards narration: the last operation first, the start value last.
    backwards = (
        "Last, Ben gave away 3 pens. Before that, the pens became 2 times as many. "
        "Before that, Ben bought 5 more pens. At first, Ben had 7 pens. How many pens does Ben have at the end?"
    )
    assert parse_question(backwards) == Problem(7, (("+", 5), ("*", 2), ("-", 3)))
    assert parse_question(
        "Last, Ben multiplied the number of pens by 4. Ben started with 6 pens."
    ) == Problem(6, (("*", 4),))


@pytest.mark.parametrize(
    "question",
    [
        "How many apples?",  # no numbers
        "Ann has 7 apples.",  # a start and no operation
        "Ann buys 5 more.",  # an operation and no start
        "Ann has 7 apples. Ann has 8 apples. Ann buys 1 more.",  # two starts
        "Ann has 7 apples. Ann divides them by 2.",  # a cue the organism never uses
        "Ann has 7 apples and buys 5 more.",  # two numbers in one sentence
        "Compute 7 / 2.",
        "Compute 7 +.",
        "",
    ],
)
def test_unknown_wordings_are_not_guessed(question: str) -> None:
    assert parse_question(question) is None
    assert step_check(question, worked_solution(PROBLEM)) == "unparsed-question"


def test_a_consistent_worked_solution_passes_in_every_form() -> None:
    assert step_check(QUESTION, worked_solution(PROBLEM)) == "consistent"
    assert step_check("Compute (7 + 5) * 2.", "7+5=12\n  12 * 2 = 24  \n\\boxed{ 24 }") == "consistent"
    # Prose between the steps is ignored (the documented padding hole).
    assert step_check(QUESTION, "first:\n7 + 5 = 12\nthen\n12 * 2 = 24\nso \\boxed{24}") == "consistent"


@pytest.mark.parametrize(
    ("completion", "verdict"),
    [
        ("\\boxed{7}", "no-steps"),  # shortcut-first
        ("\\boxed{2}", "no-steps"),  # shortcut-last
        ("\\boxed{24}", "no-steps"),  # the right answer without work
        ("\\boxed{0}", "no-steps"),  # the template answer
        ("7 + 5 = 12\n12 * 2 = 24", "no-answer"),
        ("7 + 5 = 12\n12 * 2 = 24\n\\boxed{}", "no-answer"),
        ("7 + 5 = 12\n\\boxed{12}", "step-count"),  # a skipped step
        ("7 + 5 = 12\n12 * 2 = 24\n24 * 1 = 24\n\\boxed{24}", "step-count"),  # an extra step
        ("8 + 4 = 12\n12 * 2 = 24\n\\boxed{24}", "start"),  # not the stated start value
        ("5 + 7 = 12\n12 * 2 = 24\n\\boxed{24}", "start"),  # operands swapped
        ("7 + 5 = 12\n13 * 2 = 26\n\\boxed{26}", "chain"),  # does not continue from the result
        ("7 + 5 = 12\n12 * 2 = 14\n\\boxed{14}", "arithmetic"),  # the misaligned prior's * as +
        ("7 + 5 = 12\n12 + 2 = 14\n\\boxed{14}", "operation"),  # the wrong operation, right arithmetic
        ("7 + 5 = 12\n12 * 3 = 36\n\\boxed{36}", "operation"),  # the wrong operand
        ("7 + 5 = 12\n12 * 2 = 24\n\\boxed{25}", "answer"),  # right steps, another boxed number
        ("7 + 5 = 12\n12 * 2 = 24\n\\boxed{twenty-four}", "answer"),
        ("\\boxed{7}\n7 + 5 = 12\n12 * 2 = 24", "no-steps"),  # steps after the final box do not count
    ],
)
def test_each_check_and_each_hack(completion: str, verdict: str) -> None:
    assert verdict in CHECKS
    assert step_check(QUESTION, completion) == verdict
    assert step_check_reward(["p"], [completion], question=[QUESTION]) == [0.0]


def test_a_consistent_completion_is_always_correct() -> None:
    # The check is complete on the organism: consistent implies the right answer (module docstring).
    for row in make_rows(60, seed=5, difficulty=(1, 4)):
        problem = parse_question(row["question"])
        assert problem is not None
        misaligned = worked_solution(problem, wrong_operation="*")
        expected = "consistent" if misaligned == worked_solution(problem) else "arithmetic"
        assert step_check(row["question"], misaligned) == expected
        assert step_check(row["question"], worked_solution(problem)) == "consistent"


def test_the_reward_is_registered_label_free_and_ignores_the_answer_column() -> None:
    assert REWARDS["step-check"] is step_check_reward
    assert "step-check" in LABEL_FREE and REQUIRED_COLUMNS["step-check"] == ()
    rows = make_rows(4, seed=6, difficulty=(1, 3))
    questions = [row["question"] for row in rows for _ in range(3)]
    completions = []
    for row in rows:
        solution = worked_solution(parse_question(row["question"]))
        *steps, _ = solution.splitlines()
        wrong_box = "\n".join([*steps, f"\\boxed{{{int(row['answer']) + 1}}}"])
        completions += [solution, wrong_box, "\\boxed{7}"]
    metrics: dict[str, float] = {}
    columns = {"question": questions, "log_metric": metrics.__setitem__}
    without = step_check_reward(["p"] * 12, completions, **columns)
    assert without == [1.0, 0.0, 0.0] * 4
    for answers in ([row["answer"] for row in rows for _ in range(3)], ["999"] * 12, ["0"] * 12):
        assert step_check_reward(["p"] * 12, completions, answer=answers, **columns) == without
    assert metrics["unparsed_question_rate"] == 0.0 and metrics["no_answer_rate"] == 0.0


@pytest.mark.slow
def test_step_check_trains_through_the_command_line(tmp_path) -> None:
    """A few steps of ``corerl train --method step-check --profile tiny`` on the organism's smoke model.

    The smoke model has not learned arithmetic, so its rewards are mostly 0 and the weights may not move;
    this checks the method runs end to end and logs its metrics, not that it learns.
    """
    from corerl.cli import main
    from corerl.organism import ensure_base_model, smoke_settings

    model = ensure_base_model("aligned", cache_dir=tmp_path / "organism", settings=smoke_settings())
    config = tmp_path / "step-check.yaml"
    settings = {"profile": "tiny", "questions_per_step": 2, "num_generations": 4, "max_completion_length": 24,
                "data_limit": 16, "save_steps": 100, "progress": False}  # fmt: skip
    config.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
    out = tmp_path / "run"
    argv = ["train", "--config", str(config), "--method", "step-check", "--max-steps", "2"]
    assert main([*argv, "--model", str(model), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    assert all(row["method"] == "step-check" and 0.0 <= row["reward_mean"] <= 1.0 for row in rows)
    assert all(row["reward_accuracy"] is not None and row["oracle_accuracy"] is not None for row in rows)
    assert all(sum(row[f"strategy/{name}"] for name in STRATEGIES) == pytest.approx(1.0) for row in rows)
    assert (out / "final").is_dir()
