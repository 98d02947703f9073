"""Graders for evaluation: math-verify equivalence (corerl's default) or a Hendrycks-style string match.

The Co-rewarding paper grades MATH with Hendrycks' ``is_equiv`` (MATH, Hendrycks et al. 2021): both
answers are normalised by a fixed list of string rewrites, then compared as strings. SRT and corerl
grade with math-verify (``corerl.answers.answers_match``), which also accepts forms a string match
rejects (``0.5`` vs ``\\frac{1}{2}``), so numbers from the two graders are not one-to-one comparable.
``hendrycks_equiv`` is this package's own implementation of the same idea, for a like-for-like
comparison with the paper's tables (``corerl eval --grader hendrycks``); it follows the published
rules as described (spaces, ``\\left``/``\\right``, ``dfrac``/``tfrac``, degrees, dollars, units
given as ``\\text{...}``, percent, leading-zero decimals, a lone ``x =``, ``\\frac12`` shorthand,
``a/b`` to ``\\frac{a}{b}``, ``0.5`` is not ``1/2``), not a byte-exact copy of the original script.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from corerl.answers import answers_match

Grader = Callable[[str | None, str | None], bool]

_UNITS = re.compile(r"\\(?:text|mbox)\{\s*[a-zA-Z ]*\}$")
_SHORT_FRACTION = re.compile(r"\\frac(\d)(\d)")
_SHORT_FRACTION_ONE = re.compile(r"\\frac(\d)(?=\{)")
_SHORT_SQRT = re.compile(r"\\sqrt(\w)")
_INTEGER_SLASH = re.compile(r"^(-?\d+)/(\d+)$")


def hendrycks_normalize(answer: str) -> str:
    """The answer after Hendrycks-style string rewrites (MATH's ``strip_string`` rules, own code).

    >>> hendrycks_normalize(r"\\dfrac{1}{2}"), hendrycks_normalize(r" 10\\text{ cm} "), hendrycks_normalize("x = .25")
    ('\\\\frac{1}{2}', '10', '0.25')
    >>> hendrycks_normalize(r"\\frac12"), hendrycks_normalize("3/4"), hendrycks_normalize(r"50\\%")
    ('\\\\frac{1}{2}', '\\\\frac{3}{4}', '50')
    """
    text = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "").replace("$", "")
    text = _UNITS.sub("", text.strip())
    text = text.replace("\\%", "").replace("%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if text.startswith("."):
        text = "0" + text
    if "=" in text and len(text.split("=")[0].strip()) <= 2:  # "x = 5" -> "5"
        text = text.split("=", 1)[1]
    text = _SHORT_SQRT.sub(r"\\sqrt{\1}", text)
    text = text.replace(" ", "")
    text = _SHORT_FRACTION.sub(r"\\frac{\1}{\2}", text)
    text = _SHORT_FRACTION_ONE.sub(r"\\frac{\1}", text)
    if text == "0.5":  # the original rules special-case this one decimal
        text = "\\frac{1}{2}"
    text = _INTEGER_SLASH.sub(r"\\frac{\1}{\2}", text)
    return text


def hendrycks_equiv(answer: str | None, truth: str | None) -> bool:
    """Hendrycks-style equivalence: equal strings after :func:`hendrycks_normalize`; None never matches.

    >>> hendrycks_equiv(r"\\dfrac{3}{4}", "3/4"), hendrycks_equiv("0.75", "3/4"), hendrycks_equiv(None, "1")
    (True, False, False)
    """
    if answer is None or truth is None:
        return False
    return hendrycks_normalize(answer) == hendrycks_normalize(truth)


GRADERS: dict[str, Grader] = {"math-verify": answers_match, "hendrycks": hendrycks_equiv}
"""Grader name -> function(answer, ground truth) -> bool."""
