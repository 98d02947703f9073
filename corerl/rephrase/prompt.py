"""The prompts of the rephrase pipeline and the parser of the rewriting model's output.

The instruction restates the one of the Co-rewarding code (``rewrite_questions.py``) and asks for the
block ``### RESULT_START / ORIGINAL: / REWRITE: / ### RESULT_END``; ``parse_rephrase`` reads it back
into a ``Candidate``. ``solve_prompt`` is the solver turn of the answer-consistency filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

START_MARKER = "### RESULT_START"
END_MARKER = "### RESULT_END"
ORIGINAL_LABEL = "ORIGINAL:"
REWRITE_LABEL = "REWRITE:"

# The paper's rewriting instruction, in our own words; same content, same output block.
REPHRASE_INSTRUCTION = f"""Below is a math problem. Write a new version of it that tells a different \
story in different words, while the mathematics and the final answer stay exactly as they are.

Rules:
1. Keep every quantity, condition and relation, so the math and the final answer do not change.
2. Place the problem in a new real-world setting and phrase it in your own words.
3. Do not reuse the original's sentences or turns of phrase.
4. The new problem must read naturally, be clear, and be solvable on its own.
5. Reply with nothing but the block below, in exactly this layout, with no comments:

{START_MARKER}
{ORIGINAL_LABEL}
<original question>
{REWRITE_LABEL}
<rewritten question>
{END_MARKER}
"""

# Sampling of the paper's rewriting script (Qwen3-32B through vLLM, thinking disabled).
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.8
DEFAULT_MAX_NEW_TOKENS = 4096  # the script allowed 20480; an echoed question plus its rewrite fits

SOLVE_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."


def build_rephrase_prompt(question: str) -> list[dict[str, str]]:
    """The chat turn that asks for a rewrite of ``question`` (instruction, blank line, question).

    >>> prompt = build_rephrase_prompt("  What is $1+1$? ")
    >>> prompt[0]["role"], prompt[0]["content"].endswith("### RESULT_END\\n\\nWhat is $1+1$?")
    ('user', True)
    """
    return [{"role": "user", "content": f"{REPHRASE_INSTRUCTION}\n{question.strip()}"}]


def solve_prompt(question: str) -> list[dict[str, str]]:
    """The chat turn that asks the solver model for a boxed answer."""
    return [{"role": "user", "content": f"{question.strip()}\n{SOLVE_SUFFIX}"}]


def without_thinking(tokenizer: Any, messages: list[dict[str, str]]) -> str | list[dict[str, str]]:
    """The chat prompt with a thinking model's reasoning switched off, as in the paper's script.

    Tokenizers whose chat template knows ``enable_thinking`` (Qwen3) get the prompt rendered here
    with ``enable_thinking=False``; any other tokenizer gets the messages, rendered by ``generate``.

    >>> class Qwen3Like:
    ...     chat_template = "{% if enable_thinking is false %}no-think {% endif %}{{ messages[0].content }}"
    ...     def apply_chat_template(self, messages, **kwargs):
    ...         return ("no-think " if kwargs.get("enable_thinking") is False else "") + messages[0]["content"]
    >>> without_thinking(Qwen3Like(), [{"role": "user", "content": "Q"}])
    'no-think Q'
    """
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and "enable_thinking" in template:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
    return messages


# Reason codes of an output whose block does not parse.
MARKERS_MISSING = "markers_missing"
MARKERS_MALFORMED = "markers_malformed"


@dataclass(frozen=True)
class Candidate:
    """One rewrite proposal: the parsed text (None when parsing failed, with ``parse_error``)."""

    rephrased: str | None
    raw: str
    parse_error: str | None = None


def parse_rephrase(output: str) -> Candidate:
    """Read the rewrite out of a model output.

    A reasoning part (up to the last ``</think>``) is skipped. The block is the last complete one:
    the last ``END_MARKER`` and the nearest ``START_MARKER`` before it (so a repeated block cut off by
    the token limit does not hide a complete one); inside it the rewrite is what follows the first
    ``REWRITE:`` label, or the whole block when neither label is there. Failures carry a reason:
    ``markers_missing`` (no marker at all) or ``markers_malformed`` (one marker only, markers out of
    order, an ``ORIGINAL:`` section with no ``REWRITE:``, or an unclosed ``<think>``).

    >>> parse_rephrase("### RESULT_START\\nORIGINAL:\\nQ\\nREWRITE:\\nA shop sells 3 pens.\\n### RESULT_END")
    Candidate(rephrased='A shop sells 3 pens.', raw='### RESULT_START\\nORIGINAL:\\nQ\\nREWRITE:\\nA shop sells 3 pens.\\n### RESULT_END', parse_error=None)
    >>> parse_rephrase("Sure! A shop sells 3 pens.").parse_error
    'markers_missing'
    >>> parse_rephrase("### RESULT_START\\nORIGINAL:\\nQ\\nREWRITE:\\nA shop sel").parse_error
    'markers_malformed'
    """
    if "<think>" in output and "</think>" not in output:  # cut off while reasoning: drafts only
        return Candidate(None, output, MARKERS_MALFORMED)
    text = output.rsplit("</think>", 1)[-1]
    end = text.rfind(END_MARKER)
    start = text.rfind(START_MARKER, 0, end) if end != -1 else -1
    if start == -1:
        reason = MARKERS_MALFORMED if START_MARKER in text or END_MARKER in text else MARKERS_MISSING
        return Candidate(None, output, reason)
    body_start = start + len(START_MARKER)
    block = text[body_start:end]
    if REWRITE_LABEL in block:
        rewrite = block.split(REWRITE_LABEL, 1)[1]
    elif ORIGINAL_LABEL in block:
        return Candidate(None, output, MARKERS_MALFORMED)
    else:
        rewrite = block
    return Candidate(rewrite.strip(), output, None)
