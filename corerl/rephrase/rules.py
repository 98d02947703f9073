"""Validation rules for a rewrite: each a pure function ``(original, rewrite) -> bool`` (True = passes).

``RULES`` maps each reason code to its rule, in the order a summary lists them; ``REJECT_RULES`` reject
a rewrite by default and ``FLAG_RULES`` only flag it (see ``corerl.rephrase`` for why).
``failed_rules`` applies a selection of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from difflib import SequenceMatcher

_FIGURE = re.compile(r"\[asy\].*?(?:\[/asy\]|\Z)|\\begin\{asy\}.*?(?:\\end\{asy\}|\Z)", re.DOTALL)
# A rewrite that points at a picture ("the diagram below", "as shown") needs one.
_FIGURE_REFERENCE = re.compile(
    r"\b(?:(?:the|this|a) (?:figure|diagram|picture|drawing|graph) (?:below|above|shown)"
    r"|shown (?:below|above|here|in the)|(?:in|see|from) the (?:accompanying )?(?:figure|diagram|picture|drawing)"
    r"|pictured|as shown)\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"<[^<>\n]{1,60}>")
_WORD = re.compile(r"\w+|[^\w\s]")

NEAR_IDENTICAL_SIMILARITY = 0.9
MIN_LENGTH_RATIO = 0.3
MAX_LENGTH_RATIO = 5.0
LENGTH_SLACK_CHARS = 200

# fmt: off
_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
    "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
    "twentieth",
)
# Words that state a number: cardinals, ordinals (``third`` = 3, so ``one-third`` = 1 and 3) and the
# multiplicative words rewrites use for 2, 3, 4, 12 (``twice``, ``squared``, ``half``, ``dozen``...).
NUMBER_WORDS: dict[str, int] = (
    {word: value for value, word in enumerate(_UNITS)}
    | _TENS
    | {word: value for value, word in enumerate(_ORDINALS, start=1)}
    | {"hundred": 100, "thousand": 1000, "million": 1_000_000, "dozen": 12, "twice": 2, "double": 2,
       "doubled": 2, "pair": 2, "both": 2, "half": 2, "halves": 2, "square": 2, "squared": 2,
       "thrice": 3, "triple": 3, "tripled": 3, "cube": 3, "cubed": 3, "quarter": 4, "quarters": 4}
)
# fmt: on
# Numbers a rewrite states without writing them (``positive``, ``a unit square``, ``a number``):
# never required to survive.
IMPLICIT_NUMBERS = frozenset({"0", "1"})
_NUMBER_WORD = re.compile(
    r"\b(?:("
    + "|".join(["twenty", *_TENS])
    + r")-("
    + "|".join(_UNITS[1:10])
    + r")|("
    + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
    + r"))\b",
    re.IGNORECASE,
)
# 1,000 / 1,\!000 / 1{,}000 are one number; \frac12 is \frac{1}{2}; 0.5 and .5 are one number.
_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\}|,\\!|,\\,|\\,|\\!)(?=\d{3}(?!\d))")
_SHORT_FRAC = re.compile(r"\\[dt]?frac\s*(\d)\s*(\d)")
# Subscripts are indices and bases (a_{20}, 473_{10}): rewrites rename them freely.
_SUBSCRIPT = re.compile(r"_\s*(?:\{[^{}]*\}|\d+)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")


def without_figures(text: str) -> str:
    """``text`` with Asymptote figure code (``[asy]...[/asy]``, ``\\begin{asy}...\\end{asy}``) removed.

    >>> without_figures("See [asy]draw((0,0)--(1,2));[/asy] the figure.")
    'See  the figure.'
    """
    return _FIGURE.sub("", text)


def _canonical_number(token: str) -> str:
    return format(Decimal(token).normalize(), "f")


def numbers_in(text: str) -> Counter[str]:
    """The multiset of numbers written in ``text``, outside figure code, in a canonical form.

    Digits and the words of ``NUMBER_WORDS`` count alike (``two`` = ``2``, ``twenty-five`` = ``25``,
    ``twice`` = ``2``); subscripts (``a_{20}``, ``473_{10}``) are indices and are skipped; thousands
    separators (``1,000``, ``1{,}000``, ``1,\\!000``) are dropped; ``\\frac12`` reads as 1 and 2;
    decimals are canonical (``2.50`` = ``2.5``, ``.5`` = ``0.5``, ``3.0`` = ``3``). A minus sign is not
    part of a number (rewrites move it: ``-3`` vs ``negative 3``).

    >>> sorted(numbers_in(r"Twenty-five of 1,000 cats; \\frac12 of 2.50 and .5 and two").elements())
    ['0.5', '1', '1000', '2', '2', '2.5', '25']
    """
    text = _SUBSCRIPT.sub(" ", without_figures(text))
    text = _SHORT_FRAC.sub(r"\\frac{\1}{\2}", text)
    text = _THOUSANDS.sub("", text)

    def word_to_digits(match: re.Match[str]) -> str:
        if match.group(1):
            return f" {NUMBER_WORDS[match.group(1).lower()] + NUMBER_WORDS[match.group(2).lower()]} "
        return f" {NUMBER_WORDS[match.group(3).lower()]} "

    text = _NUMBER_WORD.sub(word_to_digits, text)
    return Counter(_canonical_number(token) for token in _NUMBER.findall(text))


def lost_numbers(original: str, rewrite: str) -> list[str]:
    """Numbers of ``original`` that appear nowhere in ``rewrite`` (sorted; empty when none is lost).

    0 and 1 (``IMPLICIT_NUMBERS``) are never required: rewrites state them without writing them
    ("positive", "a unit square"). The comparison is by set, not multiset: a rewrite may state a
    number once where the original repeats it (on the shipped data, multiset counts flag 1.8x as
    many rows, mostly such restatements).

    >>> lost_numbers("Ann has 3 apples and 12 pears.", "Bo owns three plums and 12 figs.")
    []
    >>> lost_numbers("Ann has 3 apples and 12 pears.", "Bo owns 3 plums and 21 figs.")
    ['12']
    """
    kept = numbers_in(rewrite)
    return sorted(
        number for number in numbers_in(original) if number not in kept and number not in IMPLICIT_NUMBERS
    )


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


# difflib's matching is quadratic in the words compared: a 3 MB "question" would take hours. Texts
# are compared on their first SIMILARITY_WORDS words (MATH questions have a few hundred at most).
SIMILARITY_WORDS = 2000


def word_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of the word sequences of ``a`` and ``b`` (difflib ratio, case-folded),
    over the first ``SIMILARITY_WORDS`` words of each.

    >>> word_similarity("Find x if 2x = 4.", "find  x if 2x = 4.")
    1.0
    >>> round(word_similarity("Find x if 2x = 4.", "A baker doubles x loaves and gets 4."), 2)
    0.38
    """
    words_a = _first_words(a, SIMILARITY_WORDS)
    words_b = _first_words(b, SIMILARITY_WORDS)
    return SequenceMatcher(None, words_a, words_b, autojunk=False).ratio()


def _first_words(text: str, count: int) -> list[str]:
    """The first ``count`` words of ``text`` (case-folded), read lazily: a huge text costs no more."""
    return [match.group().casefold() for _, match in zip(range(count), _WORD.finditer(text), strict=False)]


def is_nonempty(original: str, rewrite: str) -> bool:
    """The rewrite has some text.

    >>> is_nonempty("Q", " \\n"), is_nonempty("Q", "A")
    (False, True)
    """
    return bool(rewrite.strip())


def is_not_placeholder(original: str, rewrite: str) -> bool:
    """The rewrite is not the instruction's placeholder echoed back (e.g. ``<rewritten question>``).

    >>> is_not_placeholder("Q", "<rewritten question>"), is_not_placeholder("Q", "Is $x<y>0$?")
    (False, True)
    """
    return _PLACEHOLDER.fullmatch(rewrite.strip()) is None


def is_not_identical(original: str, rewrite: str) -> bool:
    """The rewrite differs from the original beyond case and whitespace.

    >>> is_not_identical("Find $x$.", " find  $x$."), is_not_identical("Find $x$.", "Get $x$.")
    (False, True)
    """
    return _squash(original) != _squash(rewrite)


def is_not_near_identical(original: str, rewrite: str) -> bool:
    """The rewrite changes the wording: word similarity (figure code excluded) below ``NEAR_IDENTICAL_SIMILARITY``.

    Identical texts pass here (they fail ``identical``), so each row fails at most one of the two.

    >>> is_not_near_identical("What is the sum of 3 and 4 here?", "What is the sum of 3 and 4 now?")
    False
    """
    if not is_not_identical(original, rewrite):
        return True
    return word_similarity(without_figures(original), without_figures(rewrite)) < NEAR_IDENTICAL_SIMILARITY


def keeps_numbers(original: str, rewrite: str) -> bool:
    """Every number of the original (outside figure code) appears in the rewrite (``lost_numbers``).

    >>> keeps_numbers("Add 7 and 8.", "A cook mixes seven eggs with 8 more."), keeps_numbers("Add 7 and 8.", "Add 7 and 9.")
    (True, False)
    """
    return not lost_numbers(original, rewrite)


def has_figure(text: str) -> bool:
    """Whether ``text`` carries Asymptote figure code (``[asy]`` or ``\\begin{asy}``).

    >>> has_figure("[asy]draw(A--B);[/asy] Find AB."), has_figure("Find AB.")
    (True, False)
    """
    return _FIGURE.search(text) is not None


def keeps_figure(original: str, rewrite: str) -> bool:
    """A rewrite that refers to a picture ("the diagram below", "as shown") keeps the original's figure.

    Fails only when the original has figure code, the rewrite has none and still points at a
    picture: such a rewrite cannot be solved. Rewrites that drop the figure but state its content
    in words pass.

    >>> keeps_figure("[asy]draw(A--B);[/asy] Find AB.", "In the diagram below, how long is the rope?")
    False
    >>> keeps_figure("[asy]draw(A--B);[/asy] Find AB.", "A rope runs from A to B, 3 m. How long is it?")
    True
    """
    return not (has_figure(original) and not has_figure(rewrite) and _FIGURE_REFERENCE.search(rewrite))


def _length_bounds(original: str) -> tuple[float, float]:
    base = len(without_figures(original).strip())
    return MIN_LENGTH_RATIO * base, MAX_LENGTH_RATIO * base + LENGTH_SLACK_CHARS


def is_not_too_short(original: str, rewrite: str) -> bool:
    """The rewrite has at least ``MIN_LENGTH_RATIO`` of the original's characters (figures excluded).

    >>> is_not_too_short("A train leaves at 3 pm going 60 mph; when does it arrive 120 miles away?", "Speed?")
    False
    """
    return len(without_figures(rewrite).strip()) >= _length_bounds(original)[0]


def is_not_too_long(original: str, rewrite: str) -> bool:
    """The rewrite has at most ``MAX_LENGTH_RATIO`` times the original's characters plus ``LENGTH_SLACK_CHARS``.

    >>> is_not_too_long("Find $x$.", "x" * 300), is_not_too_long("Find $x$.", "Find the value of $x$.")
    (False, True)
    """
    return len(without_figures(rewrite).strip()) <= _length_bounds(original)[1]


Rule = Callable[[str, str], bool]

# Reason code -> rule, in the order a summary lists them.
RULES: dict[str, Rule] = {
    "empty": is_nonempty,
    "placeholder": is_not_placeholder,
    "identical": is_not_identical,
    "near_identical": is_not_near_identical,
    "numbers_lost": keeps_numbers,
    "figure_missing": keeps_figure,
    "too_short": is_not_too_short,
    "too_long": is_not_too_long,
}
# Rules that reject a rewrite by default: on the shipped MATH/DAPO rewrites every rejection we read
# was a broken rewrite (data/rephrase_report.md). The other rules only flag (column
# ``rephrase_flags``): most rewrites they catch are sound (a number restated in words or computed, a
# formula with nothing else to reword), so they reject only when asked (``--reject``).
REJECT_RULES: tuple[str, ...] = (
    "empty",
    "placeholder",
    "identical",
    "figure_missing",
    "too_short",
    "too_long",
)
FLAG_RULES: tuple[str, ...] = tuple(name for name in RULES if name not in REJECT_RULES)


def failed_rules(original: str, rewrite: str | None, rules: Sequence[str] = tuple(RULES)) -> list[str]:
    """Reason codes of the ``rules`` that ``rewrite`` fails (all of them, in ``RULES`` order).

    A missing rewrite fails ``empty`` only.

    >>> failed_rules("Add 7 and 8.", "Add 7 and 8.")
    ['identical']
    >>> failed_rules("Add 7 and 8.", "A cook puts 7 eggs in a bowl, then 9 more; how many eggs?")
    ['numbers_lost']
    >>> failed_rules("Add 7 and 8.", None)
    ['empty']
    """
    unknown = [name for name in rules if name not in RULES]
    if unknown:
        raise ValueError(f"unknown validation rule(s) {unknown}; expected some of {list(RULES)}")
    if rewrite is None or not rewrite.strip():
        return ["empty"] if "empty" in rules else []
    return [name for name in RULES if name in rules and not RULES[name](original, rewrite)]
