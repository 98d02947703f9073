"""A step-checking verifier for the organism: label-free, external, organism-specific (issue 15, item 1).

The scaling study (arXiv 2603.08660) finds that intrinsic rewards (voting, entropy, self-certainty)
only sharpen what the model already prefers, and names *external* label-free rewards, which check an
answer against something outside the model's confidence, as the scalable direction; its Countdown
verifier checks a proposed equation against the given numbers without a label. This is the same idea
for the organism; the definition below is ours (neither the study nor Co-rewarding defines it).

``step_check(question, completion)`` reads the problem from the question TEXT (never from the
``answer`` column): the start value and each operation with its operand, then checks the completion's
worked lines (``corerl.arithmetic.strategies.WORKED_LINE``, the lines before the final box):

- there is a final answer and at least one worked line, and exactly one line per stated operation;
- the first line's left operand is the question's start value, each later line's left operand the
  previous line's result;
- each line's operator and right operand are those the question states, in the question's order;
- each line's arithmetic is right (``a op b == c``);
- the boxed answer equals the last line's result.

It returns ``"consistent"`` or the first check that failed (``CHECKS``); the reward
(``corerl.rewards.step_check_reward``) is 1.0 for a consistent completion, else 0.0.

What it can be hacked by, and how it treats that:

- a shortcut with no steps (``\\boxed{7}``, the question's first number) gets 0 (``no-steps``),
  even when its number happens to be right: the reward pays for checkable work only;
- a worked chain that uses the wrong operation gets 0: the misaligned prior's ``12 * 2 = 14`` fails
  the arithmetic check, and rewriting it as ``12 + 2 = 14`` fails the operation check;
- right steps with another boxed number, a skipped, repeated or extra step: 0;
- text between the steps is ignored (only the worked lines are checked), so padding is not punished;
  the completion-length cap bounds it;
- a question whose wording the parser does not know (a surface form with other cue words) cannot be
  checked: every completion gets 0 (``unparsed-question``), so GRPO sees no advantage there; the
  reward logs the share of such questions as ``unparsed_question_rate``.

On the organism the check is complete (the question determines every step), so a consistent
completion is always correct: on completions that show their work the reward is the ground-truth
reward, and it differs from it by paying nothing for a right answer without (right) work. Real
verifiers are partial; this one is the limit case, and it depends on the organism's templates (the
cue words of ``_CUES``), which is why it is organism-specific.
"""

from __future__ import annotations

import re

from corerl.answers import extract_answer, normalize_answer
from corerl.arithmetic.strategies import worked_lines
from corerl.arithmetic.task import Problem, apply

CHECKS: tuple[str, ...] = (
    "unparsed-question",
    "no-answer",
    "no-steps",
    "step-count",
    "start",
    "chain",
    "operation",
    "arithmetic",
    "answer",
)
"""The checks in the order they are made; ``step_check`` returns the first one that fails."""

_EQUATION = re.compile(r"^\s*Compute\s+([-+*()\d\s]+?)\s*\.?\s*$")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_NUMBER = re.compile(r"\d+")
# Cue words of the organism's templates (corerl.arithmetic.task), tried in this order: "Then Ann has
# 3 times as many" is a multiplication, "gives away" a subtraction, "A friend gives Ann 5" an addition.
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("*", re.compile(r"\b(times|multiplied)\b", re.IGNORECASE)),
    ("-", re.compile(r"\b(away|loses|lost|sells|sold)\b", re.IGNORECASE)),
    ("+", re.compile(r"\b(more|gives|buys|bought|finds|found)\b", re.IGNORECASE)),
    ("start", re.compile(r"\b(has|had|starts with|started with|owns)\b", re.IGNORECASE)),
)
_BACKWARDS = re.compile(r"^(Last|Before that),", re.IGNORECASE)  # a story narrated from the end


def parse_question(question: str) -> Problem | None:
    """The problem a question states (start value, then the operations in order), or None.

    Reads the bare equation (``Compute (7 + 5) * 2.``) and the stories of ``corerl.arithmetic.task``,
    told forwards or backwards ("Last, ... Before that, ... At first, ...").

    >>> parse_question("Compute (7 + 5) * 2.")
    Problem(start=7, steps=(('+', 5), ('*', 2)))
    >>> parse_question("Ann has 7 apples. A friend gives Ann 5 apples. Then Ann has 2 times as many. How many?")
    Problem(start=7, steps=(('+', 5), ('*', 2)))
    >>> parse_question("Last, Ann lost 3 eggs. Before that, Ann found 5 more eggs. At first, Ann had 7 eggs.")
    Problem(start=7, steps=(('+', 5), ('-', 3)))
    >>> parse_question("Ann has 7 apples and wonders."), parse_question("Compute 7 / 2.")
    (None, None)
    """
    if not isinstance(question, str):
        return None
    equation = _EQUATION.match(question)
    if equation:
        return _parse_expression(equation.group(1))
    return _parse_story(question)


def _parse_expression(expression: str) -> Problem | None:
    tokens = re.findall(r"\d+|[-+*]", expression)
    if len(tokens) < 3 or len(tokens) % 2 == 0 or re.sub(r"[-+*()\d\s]", "", expression):
        return None
    numbers, operators = tokens[0::2], tokens[1::2]
    if not all(n.isdigit() for n in numbers) or any(op not in "+-*" for op in operators):
        return None
    return Problem(int(numbers[0]), tuple((op, int(n)) for op, n in zip(operators, numbers[1:], strict=True)))


def _parse_story(question: str) -> Problem | None:
    start: int | None = None
    steps: list[tuple[str, int]] = []
    backwards = False
    for sentence in _SENTENCE_END.split(question.strip()):
        numbers = _NUMBER.findall(sentence)
        if not numbers:
            continue  # the question sentence
        if len(numbers) > 1:
            return None
        kind = next((kind for kind, cue in _CUES if cue.search(sentence)), None)
        if kind is None:
            return None
        backwards = backwards or bool(_BACKWARDS.match(sentence))
        if kind == "start":
            if start is not None:
                return None
            start = int(numbers[0])
        else:
            steps.append((kind, int(numbers[0])))
    if start is None or not steps:
        return None
    return Problem(start, tuple(reversed(steps)) if backwards else tuple(steps))


def step_check(question: str, completion: str) -> str:
    """``"consistent"`` when the completion's worked steps carry out the question's problem, else the
    first failed check of ``CHECKS`` (module docstring). Never reads a label.

    >>> question = "Compute (7 + 5) * 2."
    >>> step_check(question, "7 + 5 = 12\\n12 * 2 = 24\\n\\\\boxed{24}")
    'consistent'
    >>> [step_check(question, text) for text in ("\\\\boxed{24}", "7 + 5 = 12\\n12 * 2 = 14\\n\\\\boxed{14}",
    ...                                          "7 + 5 = 12\\n12 + 2 = 14\\n\\\\boxed{14}", "7 + 5 = 12\\n\\\\boxed{12}")]
    ['no-steps', 'arithmetic', 'operation', 'step-count']
    """
    problem = parse_question(question)
    if problem is None:
        return "unparsed-question"
    if not isinstance(completion, str):
        return "no-answer"
    boxed = extract_answer(completion)
    if boxed is None or not normalize_answer(boxed):
        return "no-answer"
    lines = worked_lines(completion)
    if not lines:
        return "no-steps"
    if len(lines) != len(problem.steps):
        return "step-count"
    value = problem.start
    for position, ((left, operator, right, result), stated) in enumerate(
        zip(lines, problem.steps, strict=True)
    ):
        if left != value:
            return "start" if position == 0 else "chain"
        if (operator, right) != stated:
            return "operation"
        if apply(operator, left, right) != result:
            return "arithmetic"
        value = result
    if normalize_answer(boxed) != str(value):
        return "answer"
    return "consistent"
