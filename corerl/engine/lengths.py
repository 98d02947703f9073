"""Prompt and completion lengths against the model's context, checked after the model loads and
before anything is generated.

A ``max_completion_length`` beyond the model's positions (100,000 on a 1,024-position model) makes
generation crawl or fail deep in the model; a 2 MB question makes the trainer try to allocate
terabytes. :func:`check_lengths` refuses both with a message naming the key, the row and the
figures. The context is ``model.config.max_position_embeddings`` where the model states it (no
check where it does not). Chat prompts are counted as the formatted text plus the chat template's
fixed overhead (the template of an empty message), which is exact for templates that only wrap the
message.
"""

from __future__ import annotations

from typing import Any

from corerl.rewards import VIEW_METHODS


def model_context(model: Any) -> int | None:
    """The model's number of positions, or None when its config does not say."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def prompt_token_counts(tokenizer: Any, texts: list[str], chat: bool) -> list[int]:
    """Tokens of each prompt as the trainer will see it (``texts`` before any chat template)."""
    overhead = 0
    if chat and getattr(tokenizer, "chat_template", None):
        overhead = len(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": ""}], tokenize=True, add_generation_prompt=True
            )
        )
    encoded = tokenizer(texts, add_special_tokens=not chat)["input_ids"]
    return [len(ids) + overhead for ids in encoded]


def check_lengths(config: Any, model: Any, tokenizer: Any, dataset: Any) -> None:
    """Raise ValueError when ``max_completion_length`` or a prompt of ``dataset`` (the selected rows,
    with ``id`` and ``question``, and ``rephrased`` for Co-rewarding-I) does not fit the context."""
    context = model_context(model)
    if context is None:
        return
    if config.max_completion_length >= context:
        raise ValueError(
            f"max_completion_length={config.max_completion_length} does not fit the model's context of "
            f"{context} positions (max_position_embeddings of {config.model or 'the profile model'}); "
            f"lower max_completion_length"
        )
    columns = ["question"] + (["rephrased"] if config.method in VIEW_METHODS else [])
    texts, names = [], []
    for column in columns:  # Co-rewarding-I: both views are prompts
        texts += [config.format_prompt(str(text)) for text in dataset[column]]
        names += [f"{identifier} ({column})" for identifier in dataset["id"]]
    counts = prompt_token_counts(tokenizer, texts, config.chat)
    room = context - config.max_completion_length
    longest = max(range(len(counts)), key=counts.__getitem__)
    if counts[longest] > room:
        identifier = names[longest]
        too_long = sum(count > room for count in counts)
        raise ValueError(
            f"question {identifier} is {counts[longest]} tokens long as a prompt: with "
            f"max_completion_length={config.max_completion_length} it does not fit the model's context of "
            f"{context} positions ({too_long} prompt(s) longer than {room} tokens); shorten or drop them"
        )
