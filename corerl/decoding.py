"""A lean sampler for the tiny CPU profile's Qwen3 models: the same samples as HF ``generate``, cheaper.

On the organism (a 0.5M-parameter Qwen3, 3 layers of width 96) a decoding step of HF ``generate``
is almost all Python: the logits-processor and stopping-criteria lists, ``prepare_inputs_for_generation``,
the causal-mask builder, ``DynamicCache``'s concatenations and the module wrappers of every layer.
:func:`sample` runs the same computation as a plain loop over the model's own weights: one prefill
of the left-padded prompts, then one token a step with a preallocated key/value cache, the same
attention kernel (``scaled_dot_product_attention``), the same RMSNorm, rotary and MLP arithmetic as
``transformers``' Qwen3 modules, the same position ids (``cumsum(attention_mask) - 1``) and the
same draw (``torch.multinomial`` on ``softmax(logits / temperature)``, one call per step on the
global torch generator). With the same seed it returns the tokens ``generate`` returns, up to
floating-point ties (``tests/test_decoding.py`` checks the logits against the HF forward pass and
the tokens against ``generate``).

It serves only what it reproduces exactly: :func:`supports` accepts a dense fp32/fp16/bf16
``Qwen3ForCausalLM`` (no PEFT wrapper, default rotary embedding, no sliding window, no attention
bias, no dropout) with plain temperature sampling (no top-k, top-p, min-p or repetition penalty);
anything else takes the HF path unchanged. ``LeanGenerationMixin`` plugs it into TRL's
``_generate_single_turn`` (signature pinned in ``tests/test_engine_hooks.py``) on a CPU run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def supports(model: Any) -> bool:
    """True when :func:`sample` computes exactly what ``model.forward`` computes (see the docstring)."""
    config = getattr(model, "config", None)
    if type(model).__name__ != "Qwen3ForCausalLM" or config is None:
        return False
    rope = getattr(config, "rope_parameters", None) or {}
    return (
        rope.get("rope_type", "default") == "default"
        and not getattr(config, "use_sliding_window", False)
        and not getattr(config, "attention_bias", False)
        and float(getattr(config, "attention_dropout", 0.0)) == 0.0
        and getattr(config, "hidden_act", None) == "silu"
        and config._attn_implementation in ("sdpa", "eager")
        and not getattr(model, "_hf_peft_config_loaded", False)  # adapters (an EMA teacher) change the layers
        and next(model.parameters()).device.type == "cpu"
        and all(
            type(module) is torch.nn.Linear
            for layer in model.model.layers
            for module in (*layer.self_attn.children(), *layer.mlp.children())
            if isinstance(module, torch.nn.Linear)
        )
    )


def plain_sampling(
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    min_p: float | None,
    repetition_penalty: float | None,
) -> bool:
    """True for temperature sampling of the full distribution (what :func:`sample` draws from).

    >>> plain_sampling(1.0, 1.0, 0, None, 1.0), plain_sampling(1.0, 0.9, 0, None, 1.0)
    (True, False)
    """
    return (
        temperature > 0
        and (top_p is None or top_p >= 1.0)
        and not top_k
        and not min_p
        and (repetition_penalty is None or repetition_penalty == 1.0)
    )


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # transformers' Qwen3RMSNorm, step by step
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _Weights:
    """The model's parameters as plain tensors, read once per :func:`sample` call."""

    def __init__(self, model: Any) -> None:
        config = model.config
        core = model.model
        self.eps = config.rms_norm_eps
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scaling = core.layers[0].self_attn.scaling
        self.embed = core.embed_tokens.weight
        self.norm = core.norm.weight
        self.lm_head = model.lm_head.weight
        self.inv_freq = core.rotary_emb.inv_freq
        self.rope_scaling = float(getattr(core.rotary_emb, "attention_scaling", 1.0))
        self.layers = [
            (
                layer.input_layernorm.weight,
                layer.self_attn.q_proj.weight,
                layer.self_attn.k_proj.weight,
                layer.self_attn.v_proj.weight,
                layer.self_attn.q_norm.weight,
                layer.self_attn.k_norm.weight,
                layer.self_attn.o_proj.weight,
                layer.post_attention_layernorm.weight,
                layer.mlp.gate_proj.weight,
                layer.mlp.up_proj.weight,
                layer.mlp.down_proj.weight,
            )
            for layer in core.layers[: config.num_hidden_layers]
        ]

    def rotary(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin, (batch, 1, tokens, head_dim), as Qwen3RotaryEmbedding computes them."""
        freqs = positions[:, :, None].float() * self.inv_freq.float()[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.rope_scaling).to(dtype)
        sin = (emb.sin() * self.rope_scaling).to(dtype)
        return cos[:, None], sin[:, None]


def _forward(
    weights: _Weights,
    ids: torch.Tensor,
    positions: torch.Tensor,
    mask: torch.Tensor,
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    start: int,
) -> torch.Tensor:
    """Last-position logits of ``ids`` (batch, tokens) written at cache slots ``start:start+tokens``."""
    batch, tokens = ids.shape
    end = start + tokens
    hidden = F.embedding(ids, weights.embed)
    cos, sin = weights.rotary(positions, hidden.dtype)
    groups = weights.heads // weights.kv_heads
    for index, (norm_in, wq, wk, wv, q_norm, k_norm, wo, norm_post, gate, up, down) in enumerate(
        weights.layers
    ):
        normed = _rms_norm(hidden, norm_in, weights.eps)
        query = _rms_norm(F.linear(normed, wq).view(batch, tokens, -1, weights.head_dim), q_norm, weights.eps)
        key = _rms_norm(F.linear(normed, wk).view(batch, tokens, -1, weights.head_dim), k_norm, weights.eps)
        value = F.linear(normed, wv).view(batch, tokens, -1, weights.head_dim).transpose(1, 2)
        query, key = query.transpose(1, 2), key.transpose(1, 2)
        query = query * cos + _rotate_half(query) * sin
        key = key * cos + _rotate_half(key) * sin
        keys[index][:, :, start:end] = key
        values[index][:, :, start:end] = value
        past_keys, past_values = keys[index][:, :, :end], values[index][:, :, :end]
        if groups > 1:
            past_keys = past_keys.repeat_interleave(groups, dim=1)
            past_values = past_values.repeat_interleave(groups, dim=1)
        attended = F.scaled_dot_product_attention(
            query, past_keys, past_values, attn_mask=mask, scale=weights.scaling
        )
        hidden = hidden + F.linear(attended.transpose(1, 2).reshape(batch, tokens, -1), wo)
        normed = _rms_norm(hidden, norm_post, weights.eps)
        hidden = hidden + F.linear(F.silu(F.linear(normed, gate)) * F.linear(normed, up), down)
    last = _rms_norm(hidden[:, -1], weights.norm, weights.eps)
    return F.linear(last, weights.lm_head)


@torch.no_grad()
def sample(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float,
    stop_ids: Sequence[int],
    pad_id: int,
) -> list[list[int]]:
    """One completion per prompt: token ids up to and including the first stop token (or
    ``max_new_tokens`` of them), drawn from ``softmax(logits / temperature)`` on the global generator.

    The prompts are left-padded into one batch, as TRL and ``corerl.generation`` pad them.
    """
    if not prompt_ids or max_new_tokens < 1:
        return [[] for _ in prompt_ids]
    weights = _Weights(model)
    batch, width = len(prompt_ids), max(len(ids) for ids in prompt_ids)
    total = width + max_new_tokens
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    real = torch.zeros((batch, total), dtype=torch.bool)  # keys that hold a token (not left padding)
    for row, prompt in enumerate(prompt_ids):
        ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        real[row, width - len(prompt) :] = True
    # generate's position ids: cumsum(attention_mask) - 1, padding at 0, then +1 per new token
    positions = (real[:, :width].long().cumsum(-1) - 1).clamp(min=0)
    next_position = positions[:, -1:] + 1
    # Prefill mask: causal and not padding; a padding query sees itself (its row is never read, and a
    # row with no key at all would make SDPA's output NaN, which the cache would carry to other rows).
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    prefill_mask = causal[None] & (real[:, None, :width] | torch.eye(width, dtype=torch.bool)[None])
    dtype = weights.embed.dtype
    cache_shape = (batch, weights.kv_heads, total, weights.head_dim)
    keys = [torch.empty(cache_shape, dtype=dtype) for _ in weights.layers]
    values = [torch.empty(cache_shape, dtype=dtype) for _ in weights.layers]
    logits = _forward(weights, ids, positions, prefill_mask[:, None], keys, values, 0)
    stops = torch.tensor(list(stop_ids), dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    tokens: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        probs = F.softmax(logits.float() / temperature, dim=-1)  # TemperatureLogitsWarper, then softmax
        drawn = torch.multinomial(probs, num_samples=1).squeeze(1)
        drawn = drawn.masked_fill(finished, pad_id)  # finished rows: padding, as generate writes
        tokens.append(drawn)
        finished |= torch.isin(drawn, stops)
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        position = width + step
        logits = _forward(
            weights,
            drawn[:, None],
            next_position,
            real[:, None, None, : position + 1],
            keys,
            values,
            position,
        )
        next_position = next_position + 1
    drawn_ids = torch.stack(tokens, dim=1).tolist()
    stop_set = set(int(token) for token in stop_ids)
    completions = []
    for row in drawn_ids:
        end = next((i for i, token in enumerate(row) if token in stop_set), len(row) - 1)
        completions.append(row[: end + 1])
    return completions


class LeanGenerationMixin:
    """TRL's ``_generate_single_turn`` through :func:`sample` when the run allows it (a CPU run of a
    supported model with plain temperature sampling, no vLLM, no images, no tools); else TRL's."""

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        model = self.accelerator.unwrap_model(self.model)
        if (
            self.use_vllm
            or self.use_transformers_continuous_batching
            or images is not None
            or multimodal_fields
            or has_tool_images
            or self.accelerator.num_processes != 1
            or not supports(model)
            or not plain_sampling(
                self.temperature, self.top_p, self.top_k, self.min_p, self.repetition_penalty
            )
            or (self.args.generation_kwargs or {})
        ):
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images=has_tool_images
            )
        completions = sample(
            model,
            prompt_ids,
            max_new_tokens=self.max_completion_length,
            temperature=self.temperature,
            stop_ids=self.eos_token_ids,
            pad_id=self._tokenizer.pad_token_id,
        )
        return completions, None
