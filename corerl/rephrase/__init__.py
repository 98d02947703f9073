"""Make and check the second view of Co-rewarding-I: a rewrite of every question.

``corerl rephrase --input FILE --out FILE.jsonl --model NAME`` asks an instruction-following model to
rewrite each question (new wording and scenario, same mathematics and answer, output between fixed
markers), parses the markers, validates the rewrite and appends each row to ``--out`` (the package
schema plus ``rephrased``) or, when a check fails, to the side file ``*.rejected.jsonl`` with its
reason codes. Rows are written one batch at a time and flushed, so ``--resume`` continues a killed run
without writing any id twice. ``--check-existing`` validates a dataset that already has a
``rephrased`` column (the shipped MATH and DAPO rewrites) instead of generating.

The instruction restates the one of the Co-rewarding code (``rewrite_questions.py``): rewrite with
different wording and a different real-world scenario, keep the mathematics and the final answer
exactly, avoid the original's phrases, stay natural and solvable, and answer only in the block
``### RESULT_START / ORIGINAL: / REWRITE: / ### RESULT_END``. Sampling defaults follow that script
(temperature 0.7, top-p 0.8, thinking off: ``enable_thinking=False`` for chat templates that know it).

Departures from the paper, which only dropped outputs whose markers did not parse:
- every rewrite is validated (rules in ``RULES``, each a small pure function with a reason code) and
  rejected rows are kept in a side file, never dropped silently. ``REJECT_RULES`` reject; the
  others (``numbers_lost``, ``near_identical``) only flag by default, because on the shipped rewrites
  most rows they catch are sound (measured in data/rephrase_report.md);
- an optional label-free answer-consistency filter (``--consistency-model``): k answers per view from
  a solver model; the pair is kept only when the two majority answers agree. It never reads the
  ``answer`` column;
- ``--model organism`` rephrases the model organism's problems with its templates (another of the
  row's ``forms``), through the same interface as a model.

Modules: ``prompt`` (instruction, markers, ``parse_rephrase``), ``rules`` (validation rules),
``rephrasers`` (model, organism and column rephrasers; the consistency check), ``pipeline``
(``rephrase_rows``, resume, summary) and ``cli`` (``register`` for ``corerl.cli``). Every public name
is re-exported here. To script the model in tests, patch ``corerl.rephrase.rephrasers.sample_completions``
(patching the re-export here has no effect). Importing this package imports no torch.
"""

from __future__ import annotations

from corerl.rephrase.cli import register, run_command
from corerl.rephrase.pipeline import (
    RephraseSummary,
    load_rows,
    output_paths,
    read_jsonl_rows,
    rephrase_rows,
    summarize,
)
from corerl.rephrase.prompt import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    END_MARKER,
    MARKERS_MALFORMED,
    MARKERS_MISSING,
    ORIGINAL_LABEL,
    REPHRASE_INSTRUCTION,
    REWRITE_LABEL,
    SOLVE_SUFFIX,
    START_MARKER,
    Candidate,
    build_rephrase_prompt,
    parse_rephrase,
    solve_prompt,
    without_thinking,
)
from corerl.rephrase.rephrasers import (
    ANSWERS_DISAGREE,
    ConsistencyCheck,
    ModelRephraser,
    OrganismRephraser,
    Rephraser,
    existing_rephraser,
    sample_completions,
    views_agree,
)
from corerl.rephrase.rules import (
    FLAG_RULES,
    IMPLICIT_NUMBERS,
    LENGTH_SLACK_CHARS,
    MAX_LENGTH_RATIO,
    MIN_LENGTH_RATIO,
    NEAR_IDENTICAL_SIMILARITY,
    NUMBER_WORDS,
    REJECT_RULES,
    RULES,
    Rule,
    failed_rules,
    has_figure,
    is_nonempty,
    is_not_identical,
    is_not_near_identical,
    is_not_placeholder,
    is_not_too_long,
    is_not_too_short,
    keeps_figure,
    keeps_numbers,
    lost_numbers,
    numbers_in,
    without_figures,
    word_similarity,
)

__all__ = [
    "ANSWERS_DISAGREE",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP_P",
    "END_MARKER",
    "FLAG_RULES",
    "IMPLICIT_NUMBERS",
    "LENGTH_SLACK_CHARS",
    "MARKERS_MALFORMED",
    "MARKERS_MISSING",
    "MAX_LENGTH_RATIO",
    "MIN_LENGTH_RATIO",
    "NEAR_IDENTICAL_SIMILARITY",
    "NUMBER_WORDS",
    "ORIGINAL_LABEL",
    "REJECT_RULES",
    "REPHRASE_INSTRUCTION",
    "REWRITE_LABEL",
    "RULES",
    "SOLVE_SUFFIX",
    "START_MARKER",
    "Candidate",
    "ConsistencyCheck",
    "ModelRephraser",
    "OrganismRephraser",
    "RephraseSummary",
    "Rephraser",
    "Rule",
    "build_rephrase_prompt",
    "existing_rephraser",
    "failed_rules",
    "has_figure",
    "is_nonempty",
    "is_not_identical",
    "is_not_near_identical",
    "is_not_placeholder",
    "is_not_too_long",
    "is_not_too_short",
    "keeps_figure",
    "keeps_numbers",
    "load_rows",
    "lost_numbers",
    "numbers_in",
    "output_paths",
    "parse_rephrase",
    "read_jsonl_rows",
    "register",
    "rephrase_rows",
    "run_command",
    "sample_completions",
    "solve_prompt",
    "summarize",
    "views_agree",
    "without_figures",
    "without_thinking",
    "word_similarity",
]
