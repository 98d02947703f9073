"""Prompt and completion lengths against the sequence limit in force, checked after the model loads
and before anything is generated.

The limit: with Unsloth, the ``max_seq_length`` the model was loaded with (``max_completion_length +
max_prompt_length``, or ``+ UNSLOTH_PROMPT_ROOM`` without one, ``corerl.engine.model.load_model``; capped
by the model's positions); without it, the model's ``max_position_embeddings`` (no check where the
config states neither). A prompt also has at most ``max_prompt_length`` tokens when the config sets it. Unsloth cuts a
longer input with a one-time warning (``unsloth/models/llama.py:1353-1371``, "We shall truncate it
ourselves"), and TRL left-pads a step's prompts to its longest, so one long question would truncate
every row of its step and misalign the completions' log-probabilities.

A ``max_completion_length`` beyond the limit is refused (ValueError naming the figures). A prompt that
leaves no room for ``max_completion_length`` tokens is dropped from the training rows, counted in a
warning that names the first ones; a run where every prompt is too long is refused. This is what
verl, the papers' training framework, does with ``data.filter_overlong_prompts=True`` (prompts over
``data.max_prompt_length`` are filtered out of the data, not truncated); here the prompt room is
whatever the completion cap leaves within the limit.

Prompts are counted as the trainer tokenizes them (trl 1.14.2 ``GRPOTrainer._tokenize_prompts``):
a chat prompt through ``apply_chat_template(..., tokenize=True, return_dict=True)`` and its
``input_ids`` (in transformers 5.17 ``apply_chat_template(tokenize=True)`` returns a ``BatchEncoding``,
whose ``len`` is its number of keys), a plain prompt through the tokenizer with its special tokens.
"""

from __future__ import annotations

import logging
from typing import Any

from corerl.rewards import VIEW_METHODS

logger = logging.getLogger(__name__)

# Prompt tokens Unsloth's max_seq_length leaves on top of max_completion_length without max_prompt_length.
UNSLOTH_PROMPT_ROOM = 1024


def model_context(model: Any) -> int | None:
    """The model's number of positions, or None when its config does not say."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def unsloth_max_seq_length(config: Any) -> int:
    """The ``max_seq_length`` a run loads its model with through Unsloth."""
    return int(config.max_completion_length) + int(config.max_prompt_length or UNSLOTH_PROMPT_ROOM)


def sequence_limit(config: Any, model: Any, *, unsloth: bool) -> tuple[int | None, str]:
    """The longest prompt + completion the run can take, and what sets it (for messages)."""
    context = model_context(model)
    if unsloth:
        limit = unsloth_max_seq_length(config)
        if context is None or limit <= context:
            return limit, "Unsloth's max_seq_length = max_completion_length + max_prompt_length"
    return context, f"max_position_embeddings of {config.model or 'the profile model'}"


def prompt_token_counts(tokenizer: Any, texts: list[str], chat: bool) -> list[int]:
    """Tokens of each prompt as the trainer will see it (``texts`` before any chat template)."""
    if not texts:
        return []
    if chat:
        encoded = tokenizer.apply_chat_template(
            [[{"role": "user", "content": text}] for text in texts],
            tokenize=True,
            add_generation_prompt=True,
            return_dict=True,
        )["input_ids"]
    else:
        encoded = tokenizer(texts)["input_ids"]
    return [len(ids) for ids in encoded]


def check_lengths(
    config: Any,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    *,
    unsloth: bool = False,
    columns: list[str] | None = None,
    minimum: int | None = None,
    purpose: str = "training",
) -> Any:
    """``dataset`` (rows with ``id`` and the prompt ``columns``: default ``question``, and ``rephrased``
    for Co-rewarding-I) without the rows whose prompt leaves no room for ``max_completion_length``
    tokens within the limit in force (:func:`sequence_limit`), or exceeds ``max_prompt_length``;
    ValueError when ``max_completion_length`` itself does not fit, or fewer than ``minimum`` rows
    (default ``questions_per_step``) are left. ``purpose`` names the rows in the messages."""
    limit, source = sequence_limit(config, model, unsloth=unsloth)
    if limit is None:
        return dataset
    if config.max_completion_length >= limit:
        raise ValueError(
            f"max_completion_length={config.max_completion_length} does not fit the limit of {limit} "
            f"positions ({source}); lower max_completion_length"
        )
    room = limit - config.max_completion_length
    if config.max_prompt_length is not None and config.max_prompt_length < room:
        room, source = config.max_prompt_length, f"max_prompt_length={config.max_prompt_length}"
    if columns is None:  # Co-rewarding-I and -III: both views are prompts
        columns = ["question"] + (["rephrased"] if config.method in VIEW_METHODS else [])
    longest = [0] * len(dataset)
    for column in columns:
        texts = [config.format_prompt(str(text)) for text in dataset[column]]
        counts = prompt_token_counts(tokenizer, texts, config.chat)
        longest = [max(a, b) for a, b in zip(longest, counts, strict=True)]
    too_long = [index for index, count in enumerate(longest) if count > room]
    if not too_long:
        return dataset
    identifiers = [str(dataset["id"][index]) for index in too_long]
    described = (
        f"{purpose}: {len(too_long)} of {len(dataset)} question(s) are longer than {room} tokens as "
        f"prompts ({source}; max_completion_length={config.max_completion_length} within {limit} "
        f"positions); the longest is {max(longest)} tokens"
    )
    kept = len(dataset) - len(too_long)
    needed = config.questions_per_step if minimum is None else minimum
    if kept < needed:
        raise ValueError(
            f"{described}: {kept} left, fewer than {needed} (questions_per_step); shorten the questions, "
            "raise max_prompt_length or lower max_completion_length"
        )
    logger.warning(
        "%s: dropped (ids %s%s)",
        described,
        ", ".join(identifiers[:5]),
        ", ..." if len(identifiers) > 5 else "",
    )
    dropped = set(too_long)
    return dataset.select([index for index in range(len(dataset)) if index not in dropped])
