"""Graders for evaluation: math-verify equivalence (corerl's default) or Hendrycks' string match.

The Co-rewarding paper grades MATH with Hendrycks' ``is_equiv`` (MATH, Hendrycks et al. 2021, as
vendored in the official Co-rewarding code, ``verl/utils/reward_score/math.py`` @6c60ea45): both
answers go through a fixed list of string rewrites (``strip_string``) and are compared as strings.
SRT and corerl grade with math-verify (``corerl.answers.answers_match``), which also accepts forms a
string match rejects (``0.25`` vs ``\\frac{1}{4}``), so numbers from the two graders are
not one-to-one comparable.

``hendrycks_equiv`` exists for a like-for-like comparison with the paper's tables (``corerl eval
--grader hendrycks``), so it reproduces the official behaviour ON PURPOSE, leniencies and quirks
included (own code, same results), where corerl's default grader is stricter:
- units are removed only at ``\\text{ `` with a space, and everything after it is dropped: so
  ``10\\text{ cm}^2`` equals 10 and the hedge ``4\\text{ or }5`` equals 4 (math-verify through
  ``answers_match`` keeps refusing hedges); ``10\\text{cm}`` keeps its unit; two ``\\text{ `` make
  the rewrite fail, and then the two raw strings are compared;
- only ``\\$`` and ``\\%`` are removed: ``$5$`` is not 5 and ``50%`` is not 50;
- the ``x =`` rule measures the left side before spaces are removed (at most 2 characters, so
  ``x = 5`` is 5 but ``xy = 5`` and `` x = 5`` are not) and needs exactly one ``=``;
- ``tfrac``/``dfrac`` are replaced anywhere, ``\\right`` is removed even inside ``\\rightarrow``;
- ``\\sqrt3`` and ``\\frac12`` / ``\\frac1b`` / ``\\frac1{72}`` get braces; a lone ``0.5`` is
  ``\\frac{1}{2}``; ``a/b`` of two plain integers (``-3/4`` too, not ``03/4``) is ``\\frac{a}{b}``;
- whenever a rewrite fails on either side (a trailing ``\\sqrt`` or ``\\frac``, two ``\\text{ ``),
  the two original strings are compared as they are;
- two missing answers (None, None) are equivalent; one missing answer never is.
"""

from __future__ import annotations

from collections.abc import Callable

from corerl.answers import answers_match

Grader = Callable[[str | None, str | None], bool]

_UNIT_MARK = "\\text{ "


class _RewriteFailed(Exception):
    """A Hendrycks rewrite met an input it cannot handle (the official code raises there)."""


def _drop_units(text: str) -> str:
    """Everything before ``\\text{ ``; a second ``\\text{ `` fails (official ``remove_right_units``)."""
    if _UNIT_MARK not in text:
        return text
    before, *after = text.split(_UNIT_MARK)
    if len(after) != 1:
        raise _RewriteFailed("more than one \\text{ ")
    return before


def _brace_sqrt(text: str) -> str:
    """``\\sqrt3`` -> ``\\sqrt{3}`` (one character braced); a trailing ``\\sqrt`` fails."""
    head, *parts = text.split("\\sqrt")
    out = [head]
    for part in parts:
        if not part:
            raise _RewriteFailed("\\sqrt without an argument")
        out.append("\\sqrt" + (part if part[0] == "{" else "{" + part[0] + "}" + part[1:]))
    return "".join(out)


def _brace_fracs(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{72}`` -> ``\\frac{1}{72}``; a one-character tail
    leaves the whole string as it was; a trailing ``\\frac`` fails."""
    head, *parts = text.split("\\frac")
    out = [head]
    for part in parts:
        if not part:
            raise _RewriteFailed("\\frac without an argument")
        if part[0] == "{":
            out.append("\\frac" + part)
        elif len(part) < 2:
            return text
        elif part[1] == "{":
            out.append("\\frac{" + part[0] + "}" + part[1:])
        else:
            out.append("\\frac{" + part[0] + "}{" + part[1] + "}" + part[2:])
    return "".join(out)


def _slash_to_frac(text: str) -> str:
    """``a/b`` of two integers written plainly (``str(int(a)) == a``) -> ``\\frac{a}{b}``."""
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        numerator, denominator = int(parts[0]), int(parts[1])
    except ValueError:
        return text
    if f"{numerator}/{denominator}" != text:
        return text
    return "\\frac{" + str(numerator) + "}{" + str(denominator) + "}"


def hendrycks_normalize(answer: str) -> str:
    """The answer after Hendrycks' string rewrites (the official ``strip_string``'s results).

    Raises ``ValueError`` where the official rewrite fails (``hendrycks_equiv`` then compares raw).

    >>> hendrycks_normalize(r"\\dfrac{1}{2}"), hendrycks_normalize(r"10\\text{ cm}^2"), hendrycks_normalize("x = .25")
    ('\\\\frac{1}{2}', '10', '0.25')
    >>> hendrycks_normalize(r"\\frac12"), hendrycks_normalize("3/4"), hendrycks_normalize(r"50\\%"), hendrycks_normalize("50%")
    ('\\\\frac{1}{2}', '\\\\frac{3}{4}', '50', '50%')
    """
    text = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "")  # a bare $ stays
    try:
        text = _drop_units(text)
    except _RewriteFailed as error:
        raise ValueError(str(error)) from None
    text = text.replace("\\%", "")  # a bare % stays
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "x = 5": the left side measured with its spaces
        text = sides[1]
    try:
        text = _brace_sqrt(text)
        text = _brace_fracs(text.replace(" ", ""))
    except _RewriteFailed as error:
        raise ValueError(str(error)) from None
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_to_frac(text)


def hendrycks_equiv(answer: str | None, truth: str | None) -> bool:
    """Hendrycks' ``is_equiv``: equal strings after :func:`hendrycks_normalize`, or equal raw strings
    when a rewrite fails; two missing answers are equivalent, one missing answer is not.

    >>> hendrycks_equiv(r"\\dfrac{3}{4}", "3/4"), hendrycks_equiv("0.75", "3/4"), hendrycks_equiv(None, "1")
    (True, False, False)
    """
    if answer is None or truth is None:
        return answer is None and truth is None
    try:
        return hendrycks_normalize(answer) == hendrycks_normalize(truth)
    except ValueError:
        return answer == truth


GRADERS: dict[str, Grader] = {"math-verify": answers_match, "hendrycks": hendrycks_equiv}
"""Grader name -> function(answer, ground truth) -> bool."""
