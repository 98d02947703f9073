"""Load the policy model and tokenizer for a profile: plain HF on a CPU, Unsloth or PEFT on CUDA.

Unsloth and vLLM are imported only when CUDA is present and the config asks for them; ``import
unsloth`` must come before transformers/trl/peft are imported and rebinds ``trl.GRPOTrainer``, so
the trainer class is composed after this module has run (``corerl.engine.trainer``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from corerl.config import TrainConfig

logger = logging.getLogger(__name__)

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class Backend:
    """What the run will use, decided once from the config and the machine."""

    cuda: bool
    unsloth: bool
    vllm: bool


def choose_backend(config: TrainConfig) -> Backend:
    """Unsloth/vLLM only with CUDA present, asked for, and importable; a CPU never asks for them.

    A GPU profile on a machine whose GPU torch cannot use stops with the versions and the fix
    (``corerl.machine.hardware.check_gpu``), never trains on the CPU.
    """
    from corerl.machine.hardware import cuda_usable, import_error

    cuda = not config.use_cpu and cuda_usable()
    if not cuda and not config.use_cpu:
        raise ValueError(
            f"profile {config.profile!r} needs a CUDA GPU and none is available; use --profile tiny on a CPU"
        )
    unsloth_error = import_error("unsloth") if cuda and config.use_unsloth else "not asked for"
    vllm_error = import_error("vllm") if cuda and config.use_vllm else "not asked for"
    if cuda and config.use_unsloth and unsloth_error:
        logger.warning(
            "unsloth cannot be imported (%s): training with plain TRL + PEFT, which computes log-probabilities "
            "in micro-batches of micro_batch_rollouts rollouts",
            unsloth_error,
        )
    if cuda and config.use_vllm and vllm_error:
        logger.warning("vllm cannot be imported (%s): generating with transformers", vllm_error)
    return Backend(cuda=cuda, unsloth=unsloth_error is None, vllm=vllm_error is None)


def resolve_model_path(config: TrainConfig) -> str:
    """The model to load: ``config.model`` or, on the tiny profile, the organism's base model."""
    if config.model is not None:
        return config.model
    if config.profile != "tiny":
        raise ValueError(f"profile {config.profile!r} needs a model (set model: in the config)")
    from corerl.organism import ensure_base_model

    return str(ensure_base_model(prior=config.organism_prior))


def load_model(config: TrainConfig, backend: Backend) -> tuple[Any, Any, Any]:
    """(model, tokenizer, peft_config or None). With Unsloth the LoRA adapter is already attached."""
    import torch

    from corerl.engine.lengths import unsloth_max_seq_length

    path = resolve_model_path(config)
    dtype = getattr(torch, DTYPES[config.precision])
    if backend.unsloth:
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=path,
            max_seq_length=unsloth_max_seq_length(config),  # the limit corerl.engine.lengths checks
            load_in_4bit=config.load_in_4bit,
            dtype=dtype,
            fast_inference=backend.vllm,
            max_lora_rank=config.lora_rank,
            gpu_memory_utilization=config.vllm_gpu_memory_utilization,
        )
        model = FastLanguageModel.get_peft_model(
            model,
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            target_modules=LORA_TARGETS,
            use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
            random_state=config.seed,
        )
        require_chat_template(config, tokenizer, path)
        if config.chat:
            stop_at_end_of_turn(model, tokenizer)
        return model, tokenizer, None

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.exists(path) and not backend.cuda:
        raise FileNotFoundError(f"model {path!r} is not a local directory (the CPU profile never downloads)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    require_chat_template(config, tokenizer, path)  # before the weights load
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    if backend.cuda:
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if config.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.chat:
        stop_at_end_of_turn(model, tokenizer)
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    return model, tokenizer, peft_config


def require_chat_template(config: TrainConfig, tokenizer: Any, path: str) -> None:
    """ValueError when the config chats (``chat: true``) and the tokenizer has no chat template, which
    TRL would only meet at the first step, deep in ``apply_chat_template``. Checked before the weights
    load on the plain path; after Unsloth's loader, whose tokenizer is the one that counts, there."""
    if config.chat and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"chat: true but the tokenizer of {path} has no chat template (no chat_template in its "
            "tokenizer_config.json); set chat: false to train on plain-text prompts, or use a model with one"
        )


def stop_at_end_of_turn(model: Any, tokenizer: Any) -> list[int]:
    """Let generation stop at the chat template's end of turn as well as at EOS; returns the stop ids.

    TRL 1.14.2 stops rollouts at ``model.generation_config.eos_token_id`` (plus the tokenizer's EOS);
    the teacher's rollouts and the truncation flag of ``metrics.jsonl`` use the same list. A Qwen base
    checkpoint lists only ``<|endoftext|>`` there, so a chat-templated rollout would run past its own
    ``<|im_end|>`` to the length cap; this adds it (``corerl.generation.end_of_turn_ids``).
    """
    from corerl.generation import end_of_turn_ids

    configured = model.generation_config.eos_token_id
    configured = (
        [] if configured is None else [configured] if isinstance(configured, int) else list(configured)
    )
    ids = list(dict.fromkeys([*configured, *end_of_turn_ids(tokenizer)]))
    model.generation_config.eos_token_id = ids
    return ids
