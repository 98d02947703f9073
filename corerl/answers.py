"""Final answers: extract them from completions, normalise them for voting, compare them for grading.

Every method in the study starts from ``ans(y)``, the content of the last ``\\boxed{}`` of a
completion (methods.md). Two comparisons serve two purposes:

- ``normalize_answer`` is a fast, pure string canonicalisation used to *vote* (thousands of answers
  per step). Two answers vote together when their normal forms are equal. This is TTRL's approach
  (normalised strings, with our own normaliser: ``corerl.voting`` lists how it differs from TTRL's);
  SRT votes on raw strings and the scaling study on sympy-simplified forms.
- ``answers_match`` is mathematical equivalence through math-verify, used to *grade* against ground
  truth (and, optionally, to merge equivalent vote candidates). It is bounded in time, cached, and
  never raises. math-verify runs in a child process (``corerl.verify_worker``, killed when late):
  the caller's SIGALRM/``setitimer`` watchdogs are left alone and its ``__main__`` is never re-run,
  on any thread. A hedged answer (``4\\text{ or 5}``, ``100 or more``, ``2\\mathrm{i}`` against 2) never
  matches a single number: math-verify drops text, and a policy graded that way learns to hedge.

Extraction departs from the official Hendrycks ``last_boxed_only_string``/``remove_boxed`` (used
by Co-rewarding @6c60ea45 and SRT @212e57e0) where theirs is wrong: ``\\boxed{ 3 }`` gives ``3``
here (theirs keeps the spaces), ``\\fbox{7}`` gives ``7`` (their ``remove_boxed`` fails on it and
the answer is lost), and ``\\boxed {3}`` gives ``3`` (theirs reads ``{3}``)."""

from __future__ import annotations

import functools
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# math-verify's comparison can hang on adversarial expressions (towers of powers); this bounds its
# CPU time in the worker. WORKER_WALL_SECONDS is the last resort for a hang in C code, where no
# signal is handled: then the worker is killed.
MATCH_TIMEOUT_SECONDS = 2
WORKER_WALL_SECONDS = 60
WORKER_START_SECONDS = 120  # importing sympy in a fresh process, on a loaded machine


def _find_last_box(text: str) -> tuple[int, str] | None:
    """Position just after the last box command and its name, or None."""
    best: tuple[int, str] | None = None
    for command in _BOX_COMMANDS:
        position = text.rfind(command)
        # Skip look-alikes such as ``\boxedtext``: the command must end at a non-letter.
        while position != -1:
            end = position + len(command)
            if end >= len(text) or not text[end].isalpha():
                break
            position = text.rfind(command, 0, position)
        if position != -1 and (best is None or position > best[0] - len(best[1])):
            best = (position + len(command), command)
    return best


def extract_answer(text: str | None) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    Nested braces are matched; ``None`` when there is no box, or when the last box is unbalanced
    (a completion cut off by the length limit). ``\\boxed 5`` (no braces) yields ``"5"``.

    >>> extract_answer(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> extract_answer(r"\\boxed{1} then \\boxed{ {2} + 3 }")
    '{2} + 3'
    >>> extract_answer(r"\\fbox{A}")
    'A'
    >>> extract_answer(r"\\boxed 7.") is None, extract_answer(r"\\boxed 7")
    (False, '7')
    >>> extract_answer("no box here") is None, extract_answer(r"\\boxed{unclosed") is None
    (True, True)
    """
    if not isinstance(text, str):
        return None
    found = _find_last_box(text)
    if found is None:
        return None
    start, _ = found
    rest = text[start:]
    stripped = rest.lstrip()
    if not stripped.startswith("{"):
        # ``\boxed 5``: the answer is the next run of non-space characters, minus sentence punctuation.
        if not rest[:1].isspace():
            return None
        token = stripped.split(maxsplit=1)[0] if stripped else ""
        token = token.split("$", 1)[0].rstrip(".,;")
        return token or None
    depth = 0
    opening = len(rest) - len(stripped)
    for index in range(opening, len(rest)):
        char = rest[index]
        if char == "\\":
            continue
        if char == "{" and (index == 0 or rest[index - 1] != "\\"):
            depth += 1
        elif char == "}" and (index == 0 or rest[index - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return rest[opening + 1 : index].strip()
    return None


_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_UNIT_SUFFIX = re.compile(
    r"^(.*?\d)\s*\\(?:text|mbox|mathrm)\s*\{(\s*[A-Za-z][A-Za-z .^0-9]*)\}(\^\{?\d\}?)?$"
)
# Words that turn a number into a hedge or a range, never a unit: "4 or 5", "100 or more" (a policy
# graded by a unit-stripping grader learns to write them, issue 13.5). Also i, j, e: after a number
# they are the imaginary unit or Euler's number, so "2\mathrm{i}" is 2i, not "2 (unit i)".
_HEDGE_WORDS = frozenset(
    [
        "or",
        "and",
        "nor",
        "to",
        "than",
        "more",
        "less",
        "fewer",
        "least",
        "most",
        "at",
        "about",
        "approx",
        "approximately",
        "around",
        "nearly",
        "roughly",
        "almost",
        "over",
        "under",
        "above",
        "below",
        "between",
        "either",
        "neither",
        "not",
        "no",
        "none",
        "maybe",
        "possibly",
        "perhaps",
        "up",
        "plus",
        "minus",
        "greater",
        "smaller",
        "larger",
        "higher",
        "lower",
        "within",
    ]
)
_MATH_CONSTANTS = frozenset({"i", "j", "e"})
_SPACING = re.compile(r"(?<!\\)\\[!,;:> ]|\\q?quad|~")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?")
_FRAC_SHORTHAND = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_ONE_BRACE = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SQRT_SHORTHAND = re.compile(r"\\sqrt(\d+|[a-zA-Z])")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_TRAILING_ZEROS = re.compile(r"^(-?\d+)\.0+$")
_DECIMAL_ZEROS = re.compile(r"^(-?\d*\.\d*?)0+$")
_INTEGER = re.compile(r"-?\d+")
_SIMPLE_LHS = re.compile(r"^[a-zA-Z](_\{?\w+\}?)?$")
_THOUSANDS_SPACING = re.compile(r"(?<=\d),\s*\\!\s*(?=\d{3})")  # ",\!" marks a thousands group
_INTEGER_SLASH = re.compile(r"^(-?)(\d+)/(\d+)$")


def _drop_thousands_separators(text: str) -> str:
    """``1,000`` -> ``1000`` when the whole answer (or the right side of ``x = ``) is one number
    written with thousands separators; a list such as ``81, 256`` or ``10,100, 5`` is left alone.

    >>> _drop_thousands_separators("1,000"), _drop_thousands_separators("x = 12,345.5")
    ('1000', 'x = 12345.5')
    >>> _drop_thousands_separators("81, 256"), _drop_thousands_separators("10, 100")
    ('81, 256', '10, 100')
    """
    lhs, equals, rhs = text.rpartition("=")
    number = rhs.strip().rstrip(".")
    if _THOUSANDS.match(number) and (not equals or _SIMPLE_LHS.match(lhs.strip())):
        return text.replace(number, number.replace(",", ""))
    return text


def _is_unit(text: str) -> bool:
    """Whether the content of a ``\\text{}`` after a number reads as a unit ("cm", "square feet").

    >>> _is_unit(" cm"), _is_unit("m^2"), _is_unit(" or 5"), _is_unit(" or more"), _is_unit("i")
    (True, True, False, False, False)
    """
    words = re.findall(r"[A-Za-z]+", text)
    digits = re.sub(r"\^\{?\d+\}?", "", text)
    return (
        bool(words)
        and not any(char.isdigit() for char in digits)
        and text.strip() not in _MATH_CONSTANTS
        and not any(word.lower() in _HEDGE_WORDS for word in words)
    )


def is_hedged(answer: str) -> bool:
    """True when ``answer`` holds a hedge word (bare or in a ``\\text{}``-style group), or a text group
    after a number holds a second number or a math constant: math-verify drops such text, so it
    would grade ``4\\text{ or 5}`` and ``100 or more`` as 4 and 100.

    >>> is_hedged(r"4\\text{ or 5}"), is_hedged(r"100\\text{ or more}"), is_hedged(r"2\\mathrm{i}")
    (True, True, True)
    >>> is_hedged("100 or more"), is_hedged(r"12\\text{ cm}"), is_hedged(r"\\text{(A)}"), is_hedged(r"\\mathrm{e}^2")
    (True, False, False, False)
    """
    bare = re.findall(r"(?<![\\A-Za-z])[A-Za-z]+", answer)
    if any(word.lower() in _HEDGE_WORDS for word in bare):
        return True
    for match in _TEXT_WRAPPERS.finditer(answer):
        content = match.group(1)
        after_number = bool(re.search(r"\d\s*$", answer[: match.start()]))
        words = {word.lower() for word in re.findall(r"[A-Za-z]+", content)}
        if words & _HEDGE_WORDS or (after_number and content.strip() in _MATH_CONSTANTS):
            return True
        if after_number and any(char.isdigit() for char in re.sub(r"\^\{?\d+\}?", "", content)):
            return True
    return False


def normalize_answer(answer: str | None) -> str:
    """A canonical string for voting: equal strings mean the same answer in the common cases.

    Handles whitespace, ``$``, ``\\left``/``\\right``, ``\\dfrac``/``\\tfrac``, ``\\!`` and other
    spacing, ``\\text{}`` wrappers and trailing units, degrees, ``\\%``, thousands separators (only
    in one number: the list ``81, 256`` stays a list), trailing ``.0`` on integers, ``x = 5`` -> ``5``,
    ``\\frac12`` -> ``\\frac{1}{2}``, integer ``13/4`` -> ``\\frac{13}{4}``. Pure, fast and total: any
    input, ``None`` included, gives a string.

    >>> normalize_answer(r" $\\dfrac{1}{2}$ ")
    '\\\\frac{1}{2}'
    >>> normalize_answer("142.0"), normalize_answer("1,000"), normalize_answer("x = 5")
    ('142', '1000', '5')
    >>> normalize_answer("81, 256"), normalize_answer("-13/4")
    ('81,256', '-\\\\frac{13}{4}')
    >>> normalize_answer(r"\\left( 3, \\frac{\\pi}{2} \\right)")
    '(3,\\\\frac{\\\\pi}{2})'
    >>> normalize_answer(r"12\\text{ cm}"), normalize_answer(r"90^\\circ"), normalize_answer(r"50\\%")
    ('12', '90', '50')
    >>> normalize_answer(None)
    ''
    """
    if not isinstance(answer, str):
        return ""
    text = answer.strip()
    text = text.replace("\\$", "").replace("$", "").replace("\\left", "").replace("\\right", "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _THOUSANDS_SPACING.sub(",", text)  # MATH writes 111,111,111 as "111, \\! 111, \\! 111"
    text = _SPACING.sub("", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\%", "").replace("%", "")
    unit = _UNIT_SUFFIX.match(text)
    if unit and _is_unit(unit.group(2)):
        text = unit.group(1)
    # Unwrap \text{...} and friends (innermost first, a few passes for nesting).
    for _ in range(3):
        unwrapped = _TEXT_WRAPPERS.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    text = _FRAC_SHORTHAND.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_ONE_BRACE.sub(r"\\frac{\1}{\2}", text)
    text = _SQRT_SHORTHAND.sub(r"\\sqrt{\1}", text)
    text = _drop_thousands_separators(text)  # before spaces go: "81, 256" is a list, not 81256
    text = "".join(text.split())
    text = text.rstrip(".")
    if "=" in text:
        lhs, _, rhs = text.partition("=")
        if _SIMPLE_LHS.match(lhs) and rhs and "=" not in rhs:
            text = rhs
    fraction = _INTEGER_SLASH.match(text)
    if fraction:  # "13/4" votes with "\frac{13}{4}" (as hendrycks_normalize folds integer a/b)
        sign, numerator, denominator = fraction.groups()
        text = f"{sign}\\frac{{{numerator}}}{{{denominator}}}"
    if text.startswith("."):
        text = "0" + text
    elif text.startswith("-."):
        text = "-0" + text[1:]
    integer = _TRAILING_ZEROS.match(text)
    if integer:
        text = integer.group(1)
    elif "." in text and _DECIMAL_ZEROS.match(text):
        text = _DECIMAL_ZEROS.match(text).group(1).rstrip(".")
    if text == "-0":
        text = "0"
    return text


class _CpuTimeUp(BaseException):  # a BaseException: math-verify's broad ``except Exception`` lets it through
    pass


@contextmanager
def _cpu_time_limit(seconds: float) -> Iterator[None]:
    """Raise ``_CpuTimeUp`` once this process has used ``seconds`` of CPU time (main thread only).

    CPU time, not wall time: on a loaded machine a comparison that needs 50 ms of CPU may take seconds
    of wall time, and a wall-clock bound would then grade equal answers as different.
    """

    def expire(signum: int, frame: Any) -> None:
        raise _CpuTimeUp

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def _math_verify_equal(gold: str, prediction: str, *, in_main_thread: bool) -> bool:
    """math-verify's verdict; in the main thread bounded by ``MATCH_TIMEOUT_SECONDS`` of CPU time
    (run by ``corerl.verify_worker``, whose process and signals are its own)."""
    from math_verify import parse, verify

    def compare() -> bool:
        parsed_gold = parse(f"${gold}$", parsing_timeout=None)
        parsed_prediction = parse(f"${prediction}$", parsing_timeout=None)
        if not parsed_gold or not parsed_prediction:
            return False
        return bool(verify(parsed_gold, parsed_prediction, timeout_seconds=None))

    if not in_main_thread:
        return compare()
    try:
        with _cpu_time_limit(MATCH_TIMEOUT_SECONDS):
            return compare()
    except _CpuTimeUp:
        return False


class VerifyWorker:
    """One ``corerl.verify_worker`` child process, started on first use (again after a kill or a fork).

    :meth:`equal` sends one comparison and waits at most ``timeout`` seconds for the answer; a late
    answer kills the child (sympy can hang in C code, beyond any signal) and counts as not equal.
    Thread-safe: calls are serialised.
    """

    def __init__(self, command: list[str] | None = None, timeout: float = WORKER_WALL_SECONDS) -> None:
        self.command = command or [sys.executable, "-m", "corerl.verify_worker"]
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.owner = 0  # the pid that started the child: a forked caller starts its own
        self.lock = threading.Lock()

    def _readline(self, timeout: float) -> str | None:
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return None
        return self.process.stdout.readline().strip()

    def _start(self) -> bool:
        package_parent = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": path},
        )
        self.owner = os.getpid()
        if self._readline(WORKER_START_SECONDS) != "ready":
            self.kill()
            return False
        return True

    def kill(self) -> None:
        if self.process is not None and self.owner == os.getpid():
            self.process.kill()
            self.process.wait()
        self.process = None

    def equal(self, gold: str, prediction: str) -> bool:
        with self.lock:
            if self.process is None or self.owner != os.getpid() or self.process.poll() is not None:
                self.process = None
                if not self._start():
                    return False
            assert self.process is not None and self.process.stdin is not None
            try:
                self.process.stdin.write(json.dumps([gold, prediction]) + "\n")
                self.process.stdin.flush()
            except OSError:
                self.kill()
                return False
            answer = self._readline(self.timeout)
            if answer is None:
                self.kill()
                return False
            return answer == "1"


_worker = VerifyWorker()


@functools.lru_cache(maxsize=1 << 16)
def _answers_match_cached(a: str, b: str) -> bool:
    left, right = normalize_answer(a), normalize_answer(b)
    if left == right:
        return True
    if is_hedged(a) or is_hedged(b):  # math-verify would drop the hedge's text and grade the number
        return False
    if _INTEGER.fullmatch(left) and _INTEGER.fullmatch(right):
        # Two integers: math-verify's verdict is their equality; asking the worker costs a process
        # round trip per new pair (most of an organism step's reward time).
        return int(left) == int(right)
    return _worker.equal(a, b)


def answers_match(a: str | None, b: str | None) -> bool:
    """Whether two final answers are mathematically equivalent (``a`` is treated as the reference).

    Equal normal forms match at once; otherwise math-verify decides within
    ``MATCH_TIMEOUT_SECONDS``. ``False`` when either side is ``None`` or blank, on a timeout, or on a
    parse failure; never raises. Results are cached.

    >>> answers_match("0.5", r"\\frac{1}{2}"), answers_match("142.0", "142"), answers_match("3", "4")
    (True, True, False)
    >>> answers_match(None, "1"), answers_match("  ", "")
    (False, False)
    """
    if not isinstance(a, str) or not isinstance(b, str) or not a.strip() or not b.strip():
        return False
    return _answers_match_cached(a.strip(), b.strip())
