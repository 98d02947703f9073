"""The organism's task: arithmetic word problems with a known answer and several surface forms.

A problem is a start value followed by 1 to 4 operations (``+``, ``-``, ``*``) applied left to right,
for example ``((7 + 5) - 3) * 2``. Every intermediate value stays in 1..99 so numbers have at most two
digits. Each problem is rendered in four surface forms (``FORMS``) with the same answer:

- ``story``: a short story (a name, an object, one sentence per fact, then the question);
- ``story-backwards``: the same facts narrated backwards ("Last, Ben sold 3 pens. Before that, ...
  At first, Ben had 7 pens."), so its numbers come in the reverse order: the last operand first,
  the start value last;
- ``question-first``: the question is asked first, then the facts follow in order;
- ``equation``: the bare expression, fully parenthesised.

A row's ``question`` is the ``story`` form and its ``rephrased`` twin (Co-rewarding-I's second view)
is the ``story-backwards`` form, so the first and the last number stated swap between the two views.

Strategies a completion can follow (the SFT targets of ``corerl.organism.build``; the formats are the
contract with ``corerl.arithmetic.strategies``):

- ``worked_solution``: one line per operation, ``7 + 5 = 12``, then ``\\boxed{answer}``. A
  *systematic error* can be injected for one operation: the misaligned prior's worked solutions
  compute every multiplication as an addition (``12 * 2 = 14``);
- ``shortcut_solution(question, "first" | "last")``: just ``\\boxed{n}`` with n the first (last)
  integer stated in that surface form: an answer copied from the question, self-consistent within
  one phrasing and different across phrasings that order the numbers differently;
- ``TEMPLATE_SOLUTION``: the degenerate ``\\boxed{0}``, the same for every question (never correct:
  values stay in 1..99).

Train and held-out splits never share a problem: each expression is assigned to one split by a hash of
its equation string, and generation rejects expressions of the other split. Everything is generated
from ``random.Random`` seeded by (seed, split, index), so a dataset is identical on every machine.

Departures from the study: this is a synthetic stand-in for MATH, not a reasoning benchmark; the
rephrasings are templated rather than written by an LLM.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

OPERATIONS: tuple[str, ...] = ("+", "-", "*")
# Multiplication is rarer, so the misaligned prior's error covers part of the task, not most of it.
OPERATION_WEIGHTS: dict[str, int] = {"+": 2, "-": 2, "*": 1}
SPLITS: tuple[str, ...] = ("train", "test")
# Share of all expressions that belong to the held-out split (hash bucket).
HELD_OUT_BUCKETS = 5
MAX_VALUE = 99
DEFAULT_DIFFICULTY: tuple[int, int] = (1, 3)
# The hard problems: 3-4 operations (SRT's hard-set condition): the hard regime's training data
# (corerl.study.regimes) and the held-out hard slice (corerl.engine.heldout.EVAL_SETS["hard"]).
HARD_OPERATIONS = "3-4"

NAMES: tuple[str, ...] = (
    "Ann",
    "Ben",
    "Cara",
    "Dan",
    "Eve",
    "Finn",
    "Gus",
    "Hana",
    "Ivy",
    "Jon",
    "Kim",
    "Leo",
)
OBJECTS: tuple[str, ...] = ("apples", "coins", "books", "stamps", "shells", "pens", "cards", "eggs")

_START = ("{name} has {n} {obj}.", "{name} starts with {n} {obj}.", "At first, {name} owns {n} {obj}.")
_STEP = {
    "+": ("{name} buys {n} more.", "{name} finds {n} more {obj}.", "A friend gives {name} {n} {obj}."),
    "-": ("{name} gives away {n}.", "{name} loses {n} {obj}.", "{name} sells {n} of the {obj}."),
    "*": (
        "Then {name} has {n} times as many.",
        "The number of {obj} is multiplied by {n}.",
        "{name} ends up with {n} times as many {obj}.",
    ),
}
_QUESTION = ("How many {obj} does {name} have now?", "How many {obj} are there at the end?")
_QUESTION_FIRST = "How many {obj} does {name} have at the end?"
# The backwards narration: the last operation first, each earlier one "Before that", the start last.
_BACK_START = ("At first, {name} had {n} {obj}.", "{name} started with {n} {obj}.")
_BACK_STEP = {
    "+": ("{name} bought {n} more {obj}.", "{name} found {n} more {obj}."),
    "-": ("{name} gave away {n} {obj}.", "{name} lost {n} {obj}."),
    "*": ("{name} multiplied the number of {obj} by {n}.", "the {obj} became {n} times as many."),
}
FORMS: tuple[str, ...] = ("story", "story-backwards", "question-first", "equation")
REPHRASED_FORM = FORMS.index("story-backwards")  # the twin of every question (forms[0], a story)
TEMPLATE_SOLUTION = "\\boxed{0}"
SHORTCUTS: tuple[str, ...] = ("first", "last")
_INTEGER = re.compile(r"\d+")


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: ``start`` followed by ``steps`` of (operation, operand)."""

    start: int
    steps: tuple[tuple[str, int], ...]

    @property
    def expression(self) -> str:
        """Fully parenthesised infix expression, e.g. ``(7 + 5) * 2``.

        >>> Problem(7, (("+", 5), ("*", 2))).expression
        '(7 + 5) * 2'
        """
        text = str(self.start)
        for position, (operation, operand) in enumerate(self.steps):
            if position > 0:
                text = f"({text})"
            text = f"{text} {operation} {operand}"
        return text

    @property
    def answer(self) -> int:
        """Value of the expression, applied left to right.

        >>> Problem(7, (("+", 5), ("-", 3), ("*", 2))).answer
        18
        """
        value = self.start
        for operation, operand in self.steps:
            value = apply(operation, value, operand)
        return value

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(operation for operation, _ in self.steps)


def apply(operation: str, left: int, right: int) -> int:
    if operation == "+":
        return left + right
    if operation == "-":
        return left - right
    if operation == "*":
        return left * right
    raise ValueError(f"unknown operation {operation!r}; expected one of {OPERATIONS}")


def split_of(problem: Problem) -> str:
    """The split an expression belongs to, fixed by a hash of its text (independent of any seed)."""
    digest = hashlib.sha256(problem.expression.encode()).digest()
    return "test" if digest[0] % HELD_OUT_BUCKETS == 0 else "train"


def parse_difficulty(difficulty: int | Sequence[int]) -> tuple[int, int]:
    """Difficulty = number of operations: an int, or an inclusive (low, high) range within 1..4.

    >>> parse_difficulty(2), parse_difficulty((1, 4))
    ((2, 2), (1, 4))
    """
    if isinstance(difficulty, int):
        low = high = difficulty
    else:
        bounds = tuple(difficulty)
        if len(bounds) != 2:
            raise ValueError(f"difficulty must be an int or a (low, high) pair, got {difficulty!r}")
        low, high = int(bounds[0]), int(bounds[1])
    if not 1 <= low <= high <= 4:
        raise ValueError(f"difficulty must be 1..4 operations with low <= high, got {difficulty!r}")
    return low, high


def _random_problem(rng: random.Random, num_ops: int) -> Problem:
    value = rng.randint(2, 20)
    start = value
    steps: list[tuple[str, int]] = []
    for _ in range(num_ops):
        allowed = [op for op in OPERATIONS if _operand_range(op, value) is not None]
        operation = rng.choices(allowed, weights=[OPERATION_WEIGHTS[op] for op in allowed])[0]
        low, high = _operand_range(operation, value)  # type: ignore[misc]
        operand = rng.randint(low, high)
        steps.append((operation, operand))
        value = apply(operation, value, operand)
    return Problem(start, tuple(steps))


def _operand_range(operation: str, value: int) -> tuple[int, int] | None:
    """Operands that keep the running value in 1..MAX_VALUE (None when no operand does)."""
    if operation == "+":
        high = min(20, MAX_VALUE - value)
        return (1, high) if high >= 1 else None
    if operation == "-":
        high = min(20, value - 1)
        return (1, high) if high >= 1 else None
    high = min(5, MAX_VALUE // value)
    return (2, high) if high >= 2 else None


def generate_problem(seed: int, split: str, index: int, difficulty: int | Sequence[int]) -> Problem:
    """The ``index``-th problem of ``split`` for ``seed``: deterministic, and always in that split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    low, high = parse_difficulty(difficulty)
    rng = random.Random(f"organism/{seed}/{split}/{index}")
    while True:
        problem = _random_problem(rng, rng.randint(low, high))
        if split_of(problem) == split:
            return problem


def surface_forms(problem: Problem, rng: random.Random) -> list[str]:
    """The four wordings of ``FORMS``, in that order: story, backwards story, question-first, equation.

    >>> forms = surface_forms(Problem(7, (("+", 5), ("*", 2))), random.Random(0))
    >>> [stated_numbers(form) for form in forms]
    [[7, 5, 2], [2, 5, 7], [7, 5, 2], [7, 5, 2]]
    """
    names = rng.sample(NAMES, 3)
    objects = rng.sample(OBJECTS, 3)
    forms = [
        _story(problem, names[0], objects[0], rng),
        _backwards_story(problem, names[1], objects[1], rng),
    ]
    facts = _facts(problem, names[2], objects[2], rng)
    forms.append(" ".join([_QUESTION_FIRST.format(name=names[2], obj=objects[2]), *facts]))
    forms.append(f"Compute {problem.expression}.")
    return forms


def _backwards_story(problem: Problem, name: str, obj: str, rng: random.Random) -> str:
    sentences = []
    for position, (operation, operand) in enumerate(reversed(problem.steps)):
        fact = rng.choice(_BACK_STEP[operation]).format(name=name, n=operand, obj=obj)
        sentences.append(("Last, " if position == 0 else "Before that, ") + fact)
    sentences.append(rng.choice(_BACK_START).format(name=name, n=problem.start, obj=obj))
    sentences.append(_QUESTION_FIRST.format(name=name, obj=obj))
    return " ".join(sentences)


def _facts(problem: Problem, name: str, obj: str, rng: random.Random) -> list[str]:
    facts = [rng.choice(_START).format(name=name, n=problem.start, obj=obj)]
    for operation, operand in problem.steps:
        facts.append(rng.choice(_STEP[operation]).format(name=name, n=operand, obj=obj))
    return facts


def _story(problem: Problem, name: str, obj: str, rng: random.Random) -> str:
    return " ".join([*_facts(problem, name, obj, rng), rng.choice(_QUESTION).format(name=name, obj=obj)])


def worked_solution(problem: Problem, *, wrong_operation: str | None = None) -> str:
    """The SFT target: one line per step, then ``\\boxed{answer}``.

    With ``wrong_operation`` set, every step with that operation is computed as an addition instead
    (the misaligned prior's systematic error); later steps continue from the wrong value.

    >>> print(worked_solution(Problem(7, (("+", 5), ("*", 2)))))
    7 + 5 = 12
    12 * 2 = 24
    \\boxed{24}
    >>> print(worked_solution(Problem(7, (("+", 5), ("*", 2))), wrong_operation="*"))
    7 + 5 = 12
    12 * 2 = 14
    \\boxed{14}
    """
    if wrong_operation is not None and wrong_operation not in OPERATIONS:
        raise ValueError(f"unknown operation {wrong_operation!r}; expected one of {OPERATIONS}")
    lines = []
    value = problem.start
    for operation, operand in problem.steps:
        computed_as = "+" if operation == wrong_operation else operation
        result = apply(computed_as, value, operand)
        lines.append(f"{value} {operation} {operand} = {result}")
        value = result
    lines.append(f"\\boxed{{{value}}}")
    return "\n".join(lines)


def stated_numbers(question: str) -> list[int]:
    """The integers of a question's text, in the order they are stated.

    >>> stated_numbers("Last, Ann lost 3 eggs. At first, Ann had 12 eggs.")
    [3, 12]
    """
    return [int(match) for match in _INTEGER.findall(question)]


def shortcut_solution(question: str, which: str) -> str:
    """A shortcut completion: ``\\boxed{n}`` with n the first or last integer stated in ``question``.

    >>> shortcut_solution("Ann has 7 eggs. Ann buys 5 more.", "first")
    '\\\\boxed{7}'
    >>> shortcut_solution("Ann has 7 eggs. Ann buys 5 more.", "last")
    '\\\\boxed{5}'
    """
    if which not in SHORTCUTS:
        raise ValueError(f"unknown shortcut {which!r}; expected one of {SHORTCUTS}")
    numbers = stated_numbers(question)
    if not numbers:
        raise ValueError(f"question states no number: {question!r}")
    return f"\\boxed{{{numbers[0] if which == 'first' else numbers[-1]}}}"


def format_prompt(question: str) -> str:
    """The organism's model input for a question: plain text, no chat template.

    The completion that follows is the worked solution, ending with ``\\boxed{answer}`` and EOS.

    >>> format_prompt("Compute 2 + 3.")
    'Problem: Compute 2 + 3.\\nSolution:\\n'
    """
    return f"Problem: {question}\nSolution:\n"
