"""Co-rewarding-II on the model side: a slowly updated EMA teacher that labels the policy's rollouts.

Each optimizer step (Co-rewarding-II, Sec. 3.2):
1. the policy generates G rollouts per question (TRL's own generation);
2. teacher <- (1 - a_k) teacher + a_k policy, BEFORE the teacher samples, with the cosine schedule
   a_k = a_end + 0.5 (a_start - a_end)(1 + cos(pi k / T)), k = steps done, T = max_steps;
3. the teacher generates its own G rollouts for the same prompts (one per policy rollout row);
4. those reach ``teacher_vote_reward`` as the ``teacher_completions`` column (for each rollout, the
   teacher's completions for that rollout's prompt).
The teacher is also the KL reference when beta > 0.

Co-rewarding-III (``co-rewarding-3``, official ``Co-rewarding-III/`` @d5f4d6a5) adds this teacher to
Co-rewarding-I's paired views (``corerl.engine.pairs``): the generation batch holds both views, so the
teacher samples G rollouts on each view (as the official ``ray_trainer_coreward.py`` calls
``generate_ref_sequences`` on both, one EMA update per step), and ``cross_view_teacher_reward``
scores each view by the teacher's vote on the other.

Departures: with LoRA the teacher is a second adapter on the same base (named ``ref``, the name TRL's
reference forward looks up, so it serves as KL reference with no further override) and the EMA runs
on the adapter's A and B matrices, not on the merged weights; with full fine-tuning it is a frozen
deep copy. Teacher rollouts use HF ``generate`` even when the policy generates with vLLM, always with
the policy's sampling parameters (``policy_sampling``: the same temperature, top_p, top_k, min_p,
repetition penalty and length cap on every backend).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

TEACHER_ADAPTER = "ref"
TEACHER_STATE_FILE = "teacher.pt"


def cosine_alpha(step: int, total_steps: int, start: float = 0.01, end: float = 1e-5) -> float:
    """EMA rate at ``step`` of ``total_steps`` (Co-rewarding-II code: 0.01 -> 1e-5, cosine).

    >>> cosine_alpha(0, 100), cosine_alpha(100, 100)
    (0.01, 1e-05)
    >>> round(cosine_alpha(50, 100), 6)
    0.005005
    """
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def ema_update(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], alpha: float) -> None:
    """teacher <- (1 - alpha) teacher + alpha policy, in place, for each (teacher, policy) tensor pair.

    >>> import torch
    >>> teacher, policy = torch.zeros(2), torch.ones(2)
    >>> ema_update([(teacher, policy)], 0.25)
    >>> teacher.tolist()
    [0.25, 0.25]
    """
    import torch

    with torch.no_grad():
        for teacher, policy in pairs:
            teacher.mul_(1.0 - alpha).add_(policy.detach().to(teacher.dtype), alpha=alpha)


class TeacherMixin:
    """EMA teacher for GRPOTrainer (trl 1.14.2): call ``setup_teacher`` once after construction.

    Overrides ``_generate(self, prompts)`` (adds ``teacher_completions`` to the ``extra_fields`` it
    returns), ``_save_checkpoint(self, model, trial)`` and ``_load_optimizer_and_scheduler(self,
    checkpoint)`` (the teacher's weights travel with each checkpoint, as TRL does for its own state),
    and ``_save(self, output_dir, state_dict)`` (a checkpoint's and ``final/``'s adapter is the
    policy's alone).
    """

    teacher_alpha: float | None = None

    def setup_teacher(self, alpha_start: float, alpha_end: float) -> None:
        import copy

        self._teacher_alphas = (alpha_start, alpha_end)
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "peft_config"):
            if TEACHER_ADAPTER not in model.peft_config:
                model.add_adapter(TEACHER_ADAPTER, model.peft_config["default"])
            self._teacher_model = None
            for teacher, policy in self.teacher_pairs():
                teacher.data.copy_(policy.data)
                teacher.requires_grad_(False)
        else:
            self._teacher_model = copy.deepcopy(model).eval()
            self._teacher_model.requires_grad_(False)
            if self.beta != 0.0:
                self.ref_model = self._teacher_model  # the teacher is the KL reference

    def teacher_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(teacher tensor, policy tensor) pairs the EMA runs over."""
        model = self.accelerator.unwrap_model(self.model)
        if self._teacher_model is not None:
            policy = dict(model.named_parameters())
            return [(tensor, policy[name]) for name, tensor in self._teacher_model.named_parameters()]
        marker, teacher_marker = ".default.", f".{TEACHER_ADAPTER}."
        named = dict(model.named_parameters())
        return [
            (named[name.replace(marker, teacher_marker)], tensor)
            for name, tensor in named.items()
            if marker in name and name.replace(marker, teacher_marker) in named
        ]

    def _teacher_named(self) -> dict[str, torch.Tensor]:
        model = (
            self._teacher_model
            if self._teacher_model is not None
            else self.accelerator.unwrap_model(self.model)
        )
        teacher_ids = {id(teacher) for teacher, _ in self.teacher_pairs()}
        return {name: p for name, p in model.named_parameters() if id(p) in teacher_ids}

    def teacher_state(self) -> dict[str, torch.Tensor]:
        """The teacher's weights (CPU copies), as saved in each checkpoint."""
        return {name: p.detach().cpu().clone() for name, p in self._teacher_named().items()}

    def load_teacher_state(self, state: dict[str, torch.Tensor]) -> None:
        import torch

        named = self._teacher_named()
        if set(state) != set(named):
            raise ValueError("teacher checkpoint does not match the model's teacher parameters")
        with torch.no_grad():
            for name, tensor in state.items():
                named[name].copy_(tensor.to(named[name].device, named[name].dtype))

    def _generate(self, prompts: list):
        result = super()._generate(prompts)
        if self.model.training:
            alpha = cosine_alpha(self.state.global_step, self.args.max_steps, *self._teacher_alphas)
            ema_update(self.teacher_pairs(), alpha)  # Co-rewarding-II, step 2: EMA before teacher sampling
            self.teacher_alpha = alpha
        texts = self._teacher_generate(result[0])  # step 3: one teacher rollout per policy rollout row
        keys = [json.dumps(prompt, sort_keys=True) for prompt in prompts]
        groups: dict[str, list[str]] = {}
        for key, text in _gather_pairs(self.accelerator, list(zip(keys, texts, strict=True))):
            groups.setdefault(key, []).append(text)
        result[5]["teacher_completions"] = [groups[key] for key in keys]
        return result

    def _teacher_generate(self, prompt_ids: list[list[int]]) -> list[str]:
        import torch
        from transformers import GenerationConfig
        from trl.trainer.utils import use_adapter

        device = self.accelerator.device
        pad_id = self._tokenizer.pad_token_id
        width = max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(prompt_ids):  # left padding for generation
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        config = GenerationConfig(**policy_sampling(self), disable_compile=True)
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        with torch.no_grad():
            if self._teacher_model is not None:
                output = self._teacher_model.generate(**inputs, generation_config=config)
            else:
                model = self.accelerator.unwrap_model(self.model)
                with use_adapter(model, TEACHER_ADAPTER):
                    output = model.generate(**inputs, generation_config=config)
                # set_adapter switched the teacher's grads on: it stays frozen to the optimizer
                for teacher, _ in self.teacher_pairs():
                    teacher.requires_grad_(False)
        return self.processing_class.batch_decode(output[:, width:], skip_special_tokens=True)

    def _save_checkpoint(self, model, trial):
        import torch
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            torch.save(self.teacher_state(), os.path.join(folder, TEACHER_STATE_FILE))

    def _save(self, output_dir=None, state_dict=None):
        """Save the policy's adapter only: PEFT saves every adapter by default, so the LoRA teacher
        (``ref``) would go into each checkpoint and ``final/`` as a ``ref/`` subfolder (an adapter's
        size again), and transformers 5.17 would then resume from that subfolder alone
        (``Trainer._load_from_checkpoint`` loads only adapter subfolders when there are some, never
        the policy's at the top). The teacher travels in ``teacher.pt`` instead."""
        import functools

        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if self._teacher_model is not None or not hasattr(model, "peft_config"):
            return super()._save(output_dir, state_dict)
        shadowed = "save_pretrained" in vars(model)  # Unsloth may bind its own save_pretrained
        original = model.save_pretrained
        model.save_pretrained = functools.partial(original, selected_adapters=["default"])
        try:
            return super()._save(output_dir, state_dict)
        finally:
            if shadowed:
                model.save_pretrained = original
            else:
                del model.save_pretrained

    def _load_optimizer_and_scheduler(self, checkpoint):
        import torch

        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            path = os.path.join(checkpoint, TEACHER_STATE_FILE)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: checkpoint has no teacher weights (co-rewarding-2)")
            self.load_teacher_state(torch.load(path, map_location="cpu", weights_only=True))


def policy_sampling(trainer) -> dict:
    """The policy's sampling parameters in ``GenerationConfig`` form, for the teacher on every backend.

    The same keys and values as trl 1.14.2 gives the policy's transformers generation (``GRPOTrainer.__init__``):
    temperature, top_p, top_k, min_p, repetition_penalty, the length cap, the special tokens and
    ``generation_kwargs``; with vLLM the policy samples with the same values. Built explicitly so that
    the teacher never falls back to transformers' defaults (``top_k=50``) where TRL has no
    ``generation_config`` (the vLLM path).
    """
    kwargs = {
        "max_new_tokens": trainer.max_completion_length,
        "do_sample": True,
        "pad_token_id": trainer._tokenizer.pad_token_id,
        "bos_token_id": trainer._tokenizer.bos_token_id,
        "eos_token_id": trainer.eos_token_ids,
        "temperature": trainer.temperature,
        "top_p": trainer.top_p,
        "top_k": trainer.top_k,
        "min_p": trainer.min_p,
        "repetition_penalty": trainer.repetition_penalty,
        "cache_implementation": trainer.args.cache_implementation,
    }
    if trainer.args.generation_kwargs is not None:
        kwargs.update(trainer.args.generation_kwargs)
    return kwargs


def _gather_pairs(accelerator, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """All processes' (prompt key, teacher text) pairs: a prompt's group may be split across ranks."""
    if accelerator.num_processes == 1:
        return pairs
    from accelerate.utils import gather_object

    return gather_object(pairs)
