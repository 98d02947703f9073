"""Tiny causal language models built offline, for tests and the CPU model organism.

``build_tiny_model`` trains a byte-level BPE tokenizer on a handful of texts, gives it ChatML special
tokens and chat template, initialises a small Qwen3 (or Llama) model at random and saves both with
``save_pretrained``. Nothing touches the network. Qwen3/Llama configs rather than Qwen2: Qwen2
reloads its tokenizer as ``Qwen2Tokenizer``, which splits digits differently after a round trip
(../shared/notes/stack.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

SPECIAL_TOKENS = ("<|pad|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(texts: Iterable[str], *, vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on ``texts``, digits split one per token.

    >>> tokenizer = build_tokenizer(["1 + 22 = 23", "\\\\boxed{23}"] * 10, vocab_size=300)
    >>> tokenizer.convert_ids_to_tokens(tokenizer("123")["input_ids"])
    ['1', '2', '3']
    >>> tokenizer.eos_token, tokenizer.pad_token
    ('<|im_end|>', '<|pad|>')
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
    arch: Literal["qwen3", "llama"] = "qwen3",
    seed: int = 0,
) -> Path:
    """Train a tokenizer on ``texts``, initialise a random causal LM, save both to ``out_dir``.

    The same arguments give the same tokenizer and the same weights. Returns ``out_dir``, loadable
    with ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    if num_heads <= 0 or hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    config_class = {"qwen3": Qwen3Config, "llama": LlamaConfig}.get(arch)
    if config_class is None:
        raise ValueError(f"unknown arch {arch!r}: expected 'qwen3' or 'llama'")
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
