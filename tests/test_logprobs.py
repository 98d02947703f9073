"""The lean per-token log-probabilities equal TRL's own, values and gradients (corerl.engine.logprobs)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM
from trl.trainer.grpo_trainer import GRPOTrainer

from corerl.engine.logprobs import lean_applies, per_token_logps

VOCAB = 97


def _model(kv_heads: int) -> Qwen3ForCausalLM:
    """A 3-layer Qwen3 with weights large enough that the distributions are far from uniform."""
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        head_dim=12,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model.train()


def _batch() -> tuple[torch.Tensor, torch.Tensor, int]:
    """TRL's layout: 3 distinct prompts (left-padded, 4 rollouts each, rows shuffled) and right-padded
    completions of several lengths, one of them masked out entirely (a truncated completion)."""
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, VOCAB, (length,), generator=generator) for length in (9, 5, 7)]
    lengths = [6, 1, 4, 6, 3, 0, 2, 5, 6, 1, 3, 4]
    order = [0, 1, 2, 0, 1, 2, 2, 0, 1, 1, 0, 2]
    prompt_width, width = 9, 6
    rows = len(order)
    input_ids = torch.zeros((rows, prompt_width + width), dtype=torch.long)
    mask = torch.zeros((rows, prompt_width + width), dtype=torch.long)
    for row, (prompt, length) in enumerate(zip(order, lengths, strict=True)):
        ids = prompts[prompt]
        input_ids[row, prompt_width - len(ids) : prompt_width] = ids
        mask[row, prompt_width - len(ids) : prompt_width] = 1
        # tokens after the last real one are padding (or the rest of a truncated completion)
        input_ids[row, prompt_width:] = torch.randint(3, VOCAB, (width,), generator=generator)
        mask[row, prompt_width : prompt_width + length] = 1
    return input_ids, mask, width


def _trl(model, input_ids, mask, width, temperature):
    """TRL 1.14.2's own ``_full_logits_logps`` (the hook's path without Liger), on the given model."""
    import inspect

    trainer = SimpleNamespace(
        model_kwarg_keys=inspect.signature(model.forward).parameters.keys(),
        temperature=temperature,
        _entropy_bonus_enabled=False,
    )
    logps, entropies, _ = GRPOTrainer._full_logits_logps(
        trainer, model, input_ids, mask, width, compute_entropy=True
    )
    return logps, entropies


@pytest.mark.parametrize("kv_heads", [4, 2])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_log_probabilities_and_gradients_equal_trls(kv_heads: int, temperature: float) -> None:
    model = _model(kv_heads)
    input_ids, mask, width = _batch()
    assert lean_applies(model, mask, width)
    advantages = torch.randn(input_ids.shape[0], width, generator=torch.Generator().manual_seed(2))
    completion_mask = mask[:, -width:]
    results = []
    for compute in (_trl, None):
        model.zero_grad()
        if compute is None:
            logps, entropies = per_token_logps(
                model,
                input_ids,
                mask,
                width,
                temperature=temperature,
                compute_entropy=True,
                entropy_requires_grad=False,
            )
        else:
            logps, entropies = compute(model, input_ids, mask, width, temperature)
        # a GRPO-like objective: advantage-weighted log-probabilities over the real tokens
        (logps * advantages * completion_mask).sum().backward()
        gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
        results.append((logps.detach(), entropies.detach(), gradients))
    (trl_logps, trl_entropies, trl_gradients), (logps, entropies, gradients) = results
    assert trl_logps.abs().max() > 1.0  # far from uniform: the comparison has something to compare
    torch.testing.assert_close(logps, trl_logps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(entropies, trl_entropies, rtol=1e-5, atol=1e-5)
    assert bool((logps[completion_mask == 0] == 0).all()) and bool(
        (entropies[completion_mask == 0] == 0).all()
    )
    for name, gradient in trl_gradients.items():
        assert gradient.abs().max() > 0, name
        torch.testing.assert_close(gradients[name], gradient, rtol=1e-4, atol=1e-5, msg=name)


def test_lean_path_only_where_it_is_exact() -> None:
    model = _model(4)
    input_ids, mask, width = _batch()
    assert lean_applies(model, mask, width)
    holes = mask.clone()
    holes[0, -width + 1] = 0  # a completion mask that is not a prefix
    assert not lean_applies(model, holes, width)
    right_padded = mask.clone()
    right_padded[1, -width - 1] = 0  # a prompt whose last position is padding
    assert not lean_applies(model, right_padded, width)
    assert not lean_applies(model.to(torch.float64), mask, width)
