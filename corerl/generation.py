"""Sampling completions from a causal LM: batched HF ``generate`` on any device, vLLM on a GPU.

One entry point, :func:`generate`, returns ``n`` decoded completions per prompt. Prompts are plain
strings (fed as they are) or chat message lists (rendered with the tokenizer's chat template and a
generation prompt). The sampling is exactly the one asked for: temperature and top-p, no top-k, no
repetition penalty, whatever the checkpoint's ``generation_config.json`` says (base checkpoints often
ship top-k 20 or a repetition penalty, which would silently change the evaluation); temperature 0 is
greedy decoding.

Stopping: a completion ends at the tokenizer's EOS or at the chat template's end-of-turn token
(:func:`end_of_turn_ids`; ``<|im_end|>`` for ChatML models, whose base checkpoints' EOS is
``<|endoftext|>``), so that the answer graded is the one of the model's own turn, not of a turn it
went on to invent.

Determinism: the HF path seeds torch once per call, so the same model, prompts, seed and batch size
give the same samples on CPU. The vLLM path passes the seed to vLLM's sampler. On a CPU, a small
Qwen3 sampled at top-p 1 (the organism's evaluation) goes through ``corerl.decoding.sample``,
which draws the tokens ``generate`` draws without its per-token overhead.

:func:`load_model` picks the backend: vLLM only when it imports and CUDA is present (it is never
imported otherwise), else transformers. A PEFT adapter directory is applied to its base model loaded
through the same transformers loader, at the same precision, as that base model alone, and merged
there: a QLoRA adapter is never merged into a 4-bit model (which would requantize the merged
weights and mix quantization loss into the measured gain), so base and trained models are compared
through one path. A base that is itself a quantized checkpoint is refused; pass the 16-bit one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

Prompt = str | list[dict[str, str]]
Backend = Literal["auto", "hf", "vllm"]

logger = logging.getLogger(__name__)


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """The text the model sees: a string as it is, a message list through the chat template.

    Raises ValueError when a message list meets a tokenizer without a chat template.
    """
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "prompt is a message list but the tokenizer has no chat_template; pass plain strings "
            "or a tokenizer with a chat template"
        )
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


END_OF_TURN_MARK = "\x00corerl-end-of-turn\x00"


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """The tokens that end the model's turn: the tokenizer's EOS, then the chat template's end of turn.

    The end of turn is the special token the template writes right after an assistant message
    (found by rendering one), so that ChatML, Llama-3 or Gemma templates need no list of names. A
    tokenizer without a chat template gives its EOS alone.
    """
    ids = [] if tokenizer.eos_token_id is None else [int(tokenizer.eos_token_id)]
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": "1"}, {"role": "assistant", "content": END_OF_TURN_MARK}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        after = rendered.rsplit(END_OF_TURN_MARK, 1)[-1] if END_OF_TURN_MARK in rendered else ""
        following = tokenizer(after, add_special_tokens=False)["input_ids"][:1] if after else []
        special = set(tokenizer.all_special_ids) | {
            index for index, token in tokenizer.added_tokens_decoder.items() if token.special
        }
        ids += [int(token) for token in following if token in special and token not in ids]
    return ids


def is_vllm_engine(model: Any) -> bool:
    """True for a ``vllm.LLM`` instance (checked by module name, so vLLM is never imported here)."""
    return type(model).__module__.split(".")[0] == "vllm"


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    n: int = 1,
    temperature: float = 0.8,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    batch_size: int = 16,
    max_batch_tokens: int | None = None,
    progress: bool = True,
) -> list[list[str]]:
    """Sample ``n`` completions for each prompt; returns one list of ``n`` strings per prompt.

    Completions are decoded without special tokens and without the prompt. ``temperature == 0``
    decodes greedily (the ``n`` completions of a prompt are then identical; one is computed and
    copied). ``batch_size`` counts sequences per HF ``generate`` call; ``max_batch_tokens`` (None: no
    bound) also caps a call at that many KV-cache positions, sequences x (padded prompt +
    ``max_new_tokens``), so that a batch of long prompts gets fewer rows; vLLM batches on its own.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_batch_tokens is not None and max_batch_tokens < 1:
        raise ValueError(f"max_batch_tokens must be >= 1 or None, got {max_batch_tokens}")
    if len(prompts) == 0:
        return []
    # Each prompt is tokenized once, here, for either backend: a rendered chat template carries the
    # special tokens it wants (a BOS among them), a raw string gets the tokenizer's usual ones.
    encoded = [
        tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=isinstance(prompt, str))["input_ids"]
        for prompt in prompts
    ]
    empty = [index for index, ids in enumerate(encoded) if not ids]
    if empty:
        raise ValueError(f"prompt(s) {empty[:5]} tokenize to nothing; give each prompt some text")
    samples_per_prompt = 1 if temperature == 0 else n
    stop_ids = end_of_turn_ids(tokenizer)
    if is_vllm_engine(model):
        completions = _generate_vllm(
            model,
            encoded,
            stop_ids=stop_ids,
            n=samples_per_prompt,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            progress=progress,
        )
    else:
        completions = _generate_hf(
            model,
            tokenizer,
            encoded,
            stop_ids=stop_ids,
            n=samples_per_prompt,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            progress=progress,
        )
    if samples_per_prompt != n:
        completions = [group * n for group in completions]
    return completions


def _generate_hf(
    model: Any,
    tokenizer: Any,
    encoded: list[list[int]],
    *,
    stop_ids: list[int],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int,
    max_batch_tokens: int | None,
    progress: bool,
) -> list[list[str]]:
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig

    from corerl.decoding import plain_sampling, sample, supports

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad token nor an eos token; cannot batch prompts")
    sampling = temperature > 0
    # corerl.decoding's sampler: same tokens for the same seed on a small Qwen3 on a CPU
    lean = bool(stop_ids) and supports(model) and plain_sampling(temperature, top_p, 0, None, 1.0)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        temperature=temperature if sampling else None,
        top_p=top_p if sampling else None,
        top_k=0 if sampling else None,  # no top-k: sample the full distribution, as vLLM does
        num_beams=1,
        pad_token_id=pad_id,
        eos_token_id=stop_ids or None,  # EOS and the chat template's end of turn
    )
    # One row per sample, longest prompts first so that each batch carries little padding.
    rows = sorted(
        ((index, copy) for index in range(len(encoded)) for copy in range(n)),
        key=lambda row: (-len(encoded[row[0]]), row[0], row[1]),
    )
    completions: list[list[str]] = [[""] * n for _ in encoded]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # The seed applies to this call only: the caller's RNG state (a training run's) is restored.
    cuda_devices = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        try:
            for batch in tqdm(
                batched(rows, encoded, batch_size, max_batch_tokens, max_new_tokens),
                desc="generate",
                unit="batch",
                disable=not progress,
            ):
                width = max(len(encoded[index]) for index, _ in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
                for position, (index, _) in enumerate(batch):  # left padding
                    ids = encoded[index]
                    input_ids[position, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                    attention_mask[position, width - len(ids) :] = 1
                if lean:  # the same tokens as generate below, without its per-token overhead
                    drawn = sample(
                        model,
                        [encoded[index] for index, _ in batch],
                        max_new_tokens=max_new_tokens,
                        temperature=temperature,
                        stop_ids=stop_ids,
                        pad_id=pad_id,
                    )
                    decoded = tokenizer.batch_decode(drawn, skip_special_tokens=True)
                else:
                    with torch.no_grad():
                        output = model.generate(
                            input_ids=input_ids.to(device),
                            attention_mask=attention_mask.to(device),
                            generation_config=config,
                        )
                    decoded = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
                for (index, copy), text in zip(batch, decoded, strict=True):
                    completions[index][copy] = text
        finally:
            model.train(was_training)
    return completions


def batched(
    rows: list[tuple[int, int]],
    encoded: list[list[int]],
    batch_size: int,
    max_batch_tokens: int | None,
    max_new_tokens: int,
) -> list[list[tuple[int, int]]]:
    """``rows`` (longest prompt first) cut into batches of at most ``batch_size`` rows and, with
    ``max_batch_tokens``, at most that many KV positions (rows x (longest prompt + new tokens)); a row
    alone is never split.

    >>> batched([(0, 0), (0, 1), (1, 0), (1, 1)], [[1] * 6, [1] * 2], 4, 24, 2)
    [[(0, 0), (0, 1), (1, 0)], [(1, 1)]]
    """
    batches, start = [], 0
    while start < len(rows):
        size = batch_size
        if max_batch_tokens is not None:  # the first row of a batch is its longest (sorted)
            size = min(size, max(1, max_batch_tokens // (len(encoded[rows[start][0]]) + max_new_tokens)))
        batches.append(rows[start : start + size])
        start += size
    return batches


def _generate_vllm(
    llm: Any,
    encoded: list[list[int]],
    *,
    stop_ids: list[int],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    progress: bool,
) -> list[list[str]]:
    from vllm import SamplingParams

    # top_k is left at vLLM's default, which disables it (its sentinel changed from -1 to 0 across
    # versions); explicit SamplingParams also keep the checkpoint's generation_config out.
    params = SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_new_tokens,
        seed=seed,
        stop_token_ids=stop_ids,  # vLLM stops at the tokenizer's EOS anyway; this adds the end of turn
        skip_special_tokens=True,
    )
    outputs = llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=progress)
    return [[choice.text for choice in output.outputs] for output in outputs]


def vllm_available() -> bool:
    """True when CUDA is present and vLLM imports (vLLM is never imported without CUDA).

    Any exception of the import counts as unavailable: a preinstalled vLLM built for another torch
    raises more than ImportError.
    """
    from corerl.machine.hardware import import_error

    reason = import_error("vllm")
    if reason and reason != "no CUDA GPU":
        logger.warning("vllm cannot be imported (%s): generating with transformers", reason)
    return reason is None


def default_dtype(device: str, capability: tuple[int, int] | None = None) -> str:
    """bfloat16 on GPUs with native bf16 (compute capability >= 8.0), float16 on older ones (a T4:
    ``torch.cuda.is_bf16_supported()`` says True there, counting slow emulation), float32 on CPU.

    >>> default_dtype("cuda", (7, 5)), default_dtype("cuda", (8, 6)), default_dtype("cpu")
    ('float16', 'bfloat16', 'float32')
    """
    if not device.startswith("cuda"):
        return "float32"
    from corerl.machine.hardware import bf16_supported

    if capability is None:
        import torch

        capability = tuple(torch.cuda.get_device_capability(device))
    return "bfloat16" if bf16_supported(capability) else "float16"


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | None = None,
    backend: Backend = "auto",
    dtype: str | None = None,
    gpu_memory_utilization: float = 0.5,
    base_model: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for :func:`generate`.

    For a PEFT adapter, ``base_model`` is the model it applies to (default: the adapter config's
    ``base_model_name_or_path``); it is loaded exactly as ``load_model(base_model)`` would load it
    with transformers, then the adapter is merged into those 16/32-bit weights.

    ``backend="auto"`` uses vLLM when :func:`vllm_available` and the path is a full model (not a
    PEFT adapter), else transformers. ``device`` defaults to ``cuda`` when present, else ``cpu``;
    ``dtype`` defaults to bfloat16 on GPUs that support it, float16 on other GPUs (a T4), float32
    on CPU. ``gpu_memory_utilization`` is vLLM's share of GPU memory: below its default of 0.9 so
    that a notebook can evaluate and then train in one session.

    Raises FileNotFoundError for a missing local path (anything but ``name`` or ``owner/name``).
    """
    import torch

    source = str(name_or_path)
    path = Path(source).expanduser()
    # A hub id is "name" or "owner/name"; anything else that does not exist is a missing local path.
    looks_local = path.is_absolute() or source.startswith((".", "~")) or source.count("/") >= 2
    if looks_local and not path.exists():
        raise FileNotFoundError(f"model path not found: {source}")
    source = str(path) if path.exists() else source
    is_adapter = (path / "adapter_config.json").is_file()
    if device is None:
        from corerl.machine.hardware import cuda_usable

        device = "cuda" if cuda_usable() else "cpu"
    if dtype is None:
        dtype = default_dtype(device)
    if backend == "vllm" and not vllm_available():
        raise ValueError("backend 'vllm' needs CUDA and an installed vllm; use backend 'hf' or 'auto'")
    use_vllm = backend == "vllm" or (
        backend == "auto" and not is_adapter and device.startswith("cuda") and vllm_available()
    )
    if use_vllm:
        if is_adapter:
            raise ValueError(f"{source} is a PEFT adapter; load it with backend 'hf' (it is merged there)")
        from vllm import LLM

        llm = LLM(model=source, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization)
        return llm, llm.get_tokenizer()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    if is_adapter:
        from peft import PeftModel

        base = adapter_base(path, base_model)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
        model = PeftModel.from_pretrained(model, source).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    tokenizer_source = source
    if is_adapter and not (path / "tokenizer_config.json").is_file():
        tokenizer_source = base
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    logger.info("loaded %s on %s (%s) with transformers", source, device, dtype)
    return model, tokenizer


def adapter_base(adapter: Path, base_model: str | os.PathLike[str] | None = None) -> str:
    """The model a PEFT adapter is applied to for evaluation: ``base_model`` or the adapter's own base.

    Raises ValueError when that base is a quantized checkpoint (a ``quantization_config`` in its
    config, e.g. Unsloth's ``*-bnb-4bit``): merging into it would requantize the trained weights.
    """
    import json

    from transformers import AutoConfig

    if base_model is None:
        base_model = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base_model:
            raise ValueError(
                f"{adapter}/adapter_config.json names no base_model_name_or_path; pass base_model"
            )
    base = str(Path(base_model).expanduser()) if Path(base_model).expanduser().exists() else str(base_model)
    if getattr(AutoConfig.from_pretrained(base), "quantization_config", None) is not None:
        raise ValueError(
            f"the base model {base} of adapter {adapter} is a quantized checkpoint: evaluating the merge "
            "would requantize the trained weights; pass base_model= the 16-bit model the run was configured with"
        )
    return base
