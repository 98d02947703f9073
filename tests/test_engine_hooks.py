"""Pins the private TRL hooks the engine overrides: they change between trl versions (stack.md)."""

from __future__ import annotations

import inspect

import trl
from trl.trainer import grpo_trainer, utils

from corerl.engine.pairs import PairRepeatSampler
from corerl.engine.trainer import trainer_class


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_trl_is_the_pinned_version() -> None:
    assert trl.__version__ == "1.14.2"


def test_overridden_hook_signatures() -> None:
    trainer = grpo_trainer.GRPOTrainer
    assert _parameters(trainer._generate) == ["self", "prompts"]
    assert _parameters(trainer._generate_single_turn) == [
        "self",
        "prompt_ids",
        "images",
        "multimodal_fields",
        "num_generations",
        "has_tool_images",
    ]
    assert _parameters(trainer._get_train_sampler) == ["self", "dataset"]
    assert _parameters(trainer._save_checkpoint) == ["self", "model", "trial"]
    assert _parameters(trainer._load_optimizer_and_scheduler) == ["self", "checkpoint"]
    assert _parameters(trainer._generate_and_score_completions) == ["self", "inputs"]
    assert _parameters(trainer.compute_loss) == [
        "self",
        "model",
        "inputs",
        "return_outputs",
        "num_items_in_batch",
    ]
    assert _parameters(trainer._get_per_token_logps_and_entropies) == [
        "self",
        "model",
        "args",
        "batch_size",
        "compute_aux_loss",
        "kwargs",
    ]


def test_lean_log_probabilities_mirror_trls_full_logits_path() -> None:
    """corerl.engine.logprobs computes what TRL's non-Liger path computes: the model over prompt +
    completion, the logits before each completion token, TRL's selective log-softmax (and entropy)
    at the trainer's temperature with the completion mask as row mask."""
    hook = inspect.getsource(grpo_trainer.GRPOTrainer._get_per_token_logps_and_entropies)
    assert "if not self.use_liger_kernel or compute_aux_loss:" in hook
    assert "return self._full_logits_logps(" in hook
    full = inspect.getsource(grpo_trainer.GRPOTrainer._full_logits_logps)
    for expression in (
        "logits = logits[:, :-1, :]",
        "logits = logits[:, -logits_to_keep:, :]",
        "completion_mask = attention_mask_batch[:, -logits_to_keep:]",
        "entropy_requires_grad=self._entropy_bonus_enabled,",
        "temperature=self.temperature,",
        "row_mask=completion_mask,",
    ):
        assert expression in full
    assert 'model_inputs["position_ids"]' not in full  # the model's own positions: arange over the padded row


def test_view_loss_relies_on_the_token_count_normalisers() -> None:
    """Co-rewarding-I's split loss passes each view's token count as ``num_items_in_batch``."""
    loss = inspect.getsource(grpo_trainer.GRPOTrainer._compute_loss)
    assert 'normalizer = inputs["num_items_in_batch"].clamp(min=1.0)' in loss  # dapo
    assert "loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)" in loss  # bnpo
    assert "return self._compute_loss(model, inputs)" in inspect.getsource(
        grpo_trainer.GRPOTrainer.compute_loss
    )


def test_generate_returns_extra_fields_sixth_and_they_reach_the_rewards() -> None:
    generate = inspect.getsource(grpo_trainer.GRPOTrainer._generate)
    assert (
        "return prompt_ids, completion_ids, tool_mask, completions, logprobs, extra_fields, images, tool_images"
        in generate
    )
    score = inspect.getsource(grpo_trainer.GRPOTrainer._generate_and_score_completions)
    assert "= self._generate(prompts)" in score
    assert "for key, values in extra_fields.items():" in score  # merged into the reward kwargs


def test_train_sampler_mirrors_repeat_sampler() -> None:
    assert _parameters(utils.RepeatSampler.__init__) == _parameters(PairRepeatSampler.__init__)
    sampler_source = inspect.getsource(grpo_trainer.GRPOTrainer._get_train_sampler)
    for expression in (
        "mini_repeat_count=self.num_generations",
        "batch_size=self.args.generation_batch_size // self.num_generations",
        "repeat_count=self.num_iterations * self.args.steps_per_generation",
    ):
        assert expression in sampler_source


def test_resumed_epochs_reach_the_sampler_through_set_epoch() -> None:
    """corerl.engine.sampling relies on one randperm per epoch and on the Trainer calling set_epoch."""
    import transformers

    iterate = inspect.getsource(utils.RepeatSampler.__iter__)
    assert iterate.count("torch.randperm(self.num_samples, generator=self.generator)") == 1
    run_epoch = inspect.getsource(transformers.Trainer._run_epoch)
    assert "train_dataloader.set_epoch(epoch)" in run_epoch


def test_reference_forward_uses_the_ref_adapter_that_hosts_the_teacher() -> None:
    score = inspect.getsource(grpo_trainer.GRPOTrainer._generate_and_score_completions)
    assert 'use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None)' in score
    assert _parameters(utils.use_adapter) == ["model", "adapter_name"]


def test_trainer_class_composes_on_the_current_grpo_trainer() -> None:
    from corerl.engine.signals import RolloutSignalsMixin

    hooks = {
        "_get_per_token_logps_and_entropies",
        "_generate",
        "_get_train_sampler",
        "_save_checkpoint",
        "_load_optimizer_and_scheduler",
        "_generate_and_score_completions",
        "compute_loss",
    }
    always = {"_get_train_sampler", "_generate_single_turn", "_get_per_token_logps_and_entropies"}
    hooks |= always
    for method, expected in {
        "majority-vote": always,
        "entropy": {"_generate", *always},
        "self-certainty": {"_generate", *always},
        "co-rewarding-1": {"_generate_and_score_completions", "compute_loss", *always},
        "co-rewarding-2": {"_generate", "_save_checkpoint", "_load_optimizer_and_scheduler", *always},
        "co-rewarding-3": {  # Co-rewarding-I's pairs and loss with Co-rewarding-II's teacher
            "_generate",
            "_generate_and_score_completions",
            "compute_loss",
            "_save_checkpoint",
            "_load_optimizer_and_scheduler",
            *always,
        },
    }.items():
        cls = trainer_class(method)
        assert issubclass(cls, trl.GRPOTrainer)
        overridden = {name for name in hooks if getattr(cls, name) is not getattr(trl.GRPOTrainer, name)}
        assert overridden == expected, method
        # Token entropies (a 151,936-word forward pass on Qwen) only where the reward reads them.
        assert issubclass(cls, RolloutSignalsMixin) == (method in ("entropy", "self-certainty")), method


def test_lean_generation_mirrors_trls_hf_path() -> None:
    """corerl.engine.decoding reproduces TRL's HF branch: left padding, generate with the trainer's
    generation_config (eos_token_ids as stops), everything after the first EOS cut, logprobs None."""
    source = inspect.getsource(grpo_trainer.GRPOTrainer._generate_single_turn)
    for expression in (
        'padding_value=self._tokenizer.pad_token_id, padding_side="left"',
        "**generate_inputs, generation_config=self.generation_config",
        "is_eos = torch.isin(completion_ids, torch.tensor(self.eos_token_ids, device=device))",
        "completion_mask = (sequence_indices <= eos_idx.unsqueeze(1)).int()",
        "logprobs = None  # not used in this case",
        "return completion_ids, logprobs",
    ):
        assert expression in source
    init = inspect.getsource(grpo_trainer.GRPOTrainer.__init__)
    assert '"max_new_tokens": self.max_completion_length,' in init
    assert '"eos_token_id": self.eos_token_ids,' in init
