"""Compose the run's trainer on ``trl.GRPOTrainer`` at run time, and build its ``GRPOConfig``.

The class is built after the optional ``import unsloth`` (which rebinds ``trl.GRPOTrainer``), from
small mixins that each override one private hook of trl 1.14.2 (pinned; the signatures are pinned by
``tests/test_engine_hooks.py``):

- ``RolloutSignalsMixin._generate``: per-completion token entropy and self-certainty (only for the
  methods whose reward reads them: an extra forward pass with 151,936-word logits on Qwen);
- ``TeacherMixin._generate`` (+ checkpoint hooks): Co-rewarding-II's EMA teacher and its rollouts;
- ``SelfVerifyMixin._generate``: the policy's judgement of each of its completions, one no-grad
  forward pass of a verification prompt per completion (self-verification methods only);
- ``PairSamplerMixin._get_train_sampler``: Co-rewarding-I's pair-preserving shuffle;
- ``ViewLossMixin._generate_and_score_completions`` + ``compute_loss``: Co-rewarding-I's loss, one
  token-mean per view, summed.
- ``ResumableSamplerMixin._get_train_sampler``: the shuffle of epoch e replayed on resume.
- ``LeanGenerationMixin._generate_single_turn``: on a CPU run of a small Qwen3 with plain temperature
  sampling, the rollouts of HF ``generate`` (same tokens for the same seed) without its per-token
  Python overhead (``corerl.engine.decoding``); every other run generates through TRL unchanged.
- ``LeanLogProbsMixin._get_per_token_logps_and_entropies``: on the same CPU runs, the loss's per-token
  log-probabilities with each prompt computed once and no padding (``corerl.engine.logprobs``: the
  same values and gradients to rounding); every other run computes them through TRL unchanged.

By default one generation batch per optimizer step (``steps_per_generation =
gradient_accumulation_steps``, ``num_iterations = 1``): strictly on-policy, the ratio is 1 and GRPO's
clip never binds, and each line of ``metrics.jsonl`` describes the rollouts of its own step. The
config's ``steps_per_generation`` / ``num_iterations`` give TRL's several updates per rollout batch
(``questions_per_step`` stays per optimizer step, so a generation batch holds
``questions_per_step x steps_per_generation / gradient_accumulation_steps`` questions).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from corerl.config import TrainConfig
from corerl.engine.decoding import LeanGenerationMixin
from corerl.engine.logprobs import LeanLogProbsMixin
from corerl.engine.model import Backend
from corerl.engine.pairs import PairSamplerMixin, ViewLossMixin
from corerl.engine.sampling import ResumableSamplerMixin
from corerl.engine.signals import RolloutSignalsMixin
from corerl.engine.teacher import TeacherMixin
from corerl.engine.verifier import SelfVerifyMixin
from corerl.rewards import TEACHER_METHODS, VIEW_METHODS

# The rewards that read token_entropy / self_certainty (corerl.rewards); other methods skip the pass.
SIGNAL_METHODS: tuple[str, ...] = ("entropy", "self-certainty")
# The rewards that read self_verification (corerl.engine.verifier).
SELF_VERIFY_METHODS: tuple[str, ...] = ("self-verify", "self-verify-vote")


def accumulation_steps(config: TrainConfig, rollouts: int) -> int:
    """Gradient-accumulation steps: ``rollouts / micro_batch_rollouts`` when set, else the config's.

    >>> from corerl.config import TrainConfig
    >>> accumulation_steps(TrainConfig(micro_batch_rollouts=8), 64), accumulation_steps(TrainConfig(), 64)
    (8, 1)
    >>> accumulation_steps(TrainConfig(micro_batch_rollouts=8), 4)  # fewer rollouts than one micro-batch
    1
    """
    if config.micro_batch_rollouts is None:
        return config.gradient_accumulation_steps
    micro_batch = min(config.micro_batch_rollouts, rollouts)  # fewer rollouts than a micro-batch: one pass
    if rollouts % micro_batch:
        raise ValueError(f"{rollouts} rollouts per step do not split into micro-batches of {micro_batch}")
    return rollouts // micro_batch


def trainer_class(method: str) -> type:
    """``trl.GRPOTrainer`` (as it is bound now, Unsloth's when imported) with the method's mixins."""
    import trl

    mixins: list[type] = [ResumableSamplerMixin, LeanGenerationMixin, LeanLogProbsMixin]
    if method in SIGNAL_METHODS:
        mixins.append(RolloutSignalsMixin)
    if method in SELF_VERIFY_METHODS:
        mixins.append(SelfVerifyMixin)
    if method in TEACHER_METHODS:
        mixins.append(TeacherMixin)
    if method in VIEW_METHODS:
        mixins += [PairSamplerMixin, ViewLossMixin]
    return type("CoreRLTrainer", (*mixins, trl.GRPOTrainer), {})


def grpo_args(
    config: TrainConfig, backend: Backend, output_dir: Path, stop_token_ids: int | Sequence[int] | None = None
) -> Any:
    """The ``GRPOConfig`` for a run: batch geometry, precision, logging every step, checkpoints.

    ``stop_token_ids`` (EOS and the chat template's end of turn) reach vLLM's sampler; HF generation
    reads them from ``model.generation_config`` (``corerl.engine.model.stop_at_end_of_turn``).
    """
    from trl import GRPOConfig

    prompts_per_step = config.questions_per_step * (2 if config.method in VIEW_METHODS else 1)
    rollouts = prompts_per_step * config.num_generations  # per optimizer step, over all processes
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
    accumulation = accumulation_steps(config, max(1, rollouts // processes))
    shares = accumulation * processes
    if rollouts % shares:
        raise ValueError(
            f"{rollouts} rollouts per step do not split into {accumulation} accumulation "
            f"steps x {processes} processes"
        )
    extra: dict[str, Any] = {}
    if backend.vllm:
        extra = {
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization,
        }
        if stop_token_ids is not None:
            stops = [stop_token_ids] if isinstance(stop_token_ids, int) else list(stop_token_ids)
            extra["generation_kwargs"] = {"stop_token_ids": stops}
    return GRPOConfig(
        output_dir=str(output_dir),
        seed=config.seed,
        data_seed=config.seed,
        max_steps=config.max_steps,
        per_device_train_batch_size=rollouts // shares,
        gradient_accumulation_steps=accumulation,
        # TrainConfig.steps_per_generation counts optimizer steps; TRL's counts micro-batches.
        steps_per_generation=None
        if config.steps_per_generation is None
        else config.steps_per_generation * accumulation,
        num_iterations=config.num_iterations,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        beta=config.beta,
        loss_type=config.loss_type,
        scale_rewards=config.scale_rewards,
        use_cpu=not backend.cuda,
        bf16=config.precision == "bf16",
        fp16=config.precision == "fp16",
        gradient_checkpointing=config.gradient_checkpointing and not backend.unsloth,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
        **extra,
    )


def build_callbacks(config: TrainConfig) -> list[Any]:
    """The TrainerCallbacks named in ``config.callbacks`` ("module:factory", factory(config))."""
    callbacks = []
    for spec in config.callbacks:
        module_name, _, attribute = spec.partition(":")
        if not attribute:
            raise ValueError(f"callback {spec!r} must be 'module:factory'")
        callbacks.append(getattr(importlib.import_module(module_name), attribute)(config))
    return callbacks
