"""A lean sampler for the tiny CPU profile's Qwen3 models: the same samples as HF ``generate``, cheaper.

On the organism (a 0.5M-parameter Qwen3, 3 layers of width 96) a decoding step of HF ``generate``
is almost all Python: the logits-processor and stopping-criteria lists, ``prepare_inputs_for_generation``,
the causal-mask builder, ``DynamicCache``'s concatenations and the module wrappers of every layer.
:func:`sample` runs the same computation as a plain loop over the model's own weights: a prefill
of the left-padded prompts, then one token a step with a preallocated key/value cache, the same
attention kernel (``scaled_dot_product_attention``), the same RMSNorm, rotary and MLP arithmetic as
``transformers``' Qwen3 modules, the same position ids (``cumsum(attention_mask) - 1``) and the
same draw (``torch.multinomial`` on ``softmax(logits / temperature)`` of the whole batch, one per
step on the global torch generator). It computes less than ``generate`` where that changes no bit:

- each distinct prompt (the 8 rollouts of a question share one) is prefilled once and its cache
  copied to its rows (a row's result does not depend on the other rows of the batch);
- a row that has drawn a stop token leaves the batch (``generate`` keeps computing it and writes
  padding); the draw still consumes the generator for the whole batch: ``multinomial`` draws one
  sample as the argmax of ``probs / q`` over an ``exponential_`` tensor ``q`` of the batch's shape
  (:func:`_draw`);
- one decoding step (:func:`_decode`) is :func:`_forward` for one token with fewer tensor
  operations: fused q/k/v and gate/up products (the same columns), rotary as ``roll`` times a
  signed sin (:func:`_rotate`), the additive mask SDPA makes of the boolean one, made once.

With the same seed it returns the tokens ``generate`` returns, up to floating-point ties
(``tests/test_decoding.py`` checks the logits against the HF forward pass, the decoding step
against :func:`_forward` bit for bit, the draw against ``torch.multinomial`` and the tokens against
``generate``; the organism's rollouts are those of f6afaa3's ``generate`` path, step for step, in
``benchmarks/train_steps.py --against f6afaa3``).

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


def _rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """transformers' Qwen3RMSNorm: ``weight * (x * rsqrt(mean(x^2) + eps))`` in float32.

    ``F.rms_norm`` runs exactly these operations in this order (checked bit for bit in the tests) in one
    call; a ``weight`` of None leaves the scaling to the caller (the per-head q/k norms, scaled jointly).
    """
    dtype = x.dtype
    normed = F.rms_norm(x.to(torch.float32), (x.shape[-1],), None, eps).to(dtype)
    return normed if weight is None else weight * normed


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """transformers' ``x * cos + rotate_half(x) * sin``, bit for bit: ``rotate_half(x)`` is
    ``cat(-x2, x1)``, ``roll(x, half)`` is ``cat(x2, x1)``, and ``(-a) * b == a * (-b)`` exactly, so
    the sign moves into ``signed_sin = cat(-sin1, sin2)`` (:meth:`_Weights.rotary`). One operation
    instead of four, and no slice gradients on the loss path."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


class _Weights:
    """The model's parameters as plain tensors, read once per :func:`sample` call.

    The q/k/v and the gate/up projections are concatenated into one matrix each: one product instead
    of three (two), whose output columns are those of the separate products bit for bit (a column of
    ``x @ W.T`` depends only on ``x`` and its row of ``W``; checked in the tests).
    """

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
        self.q_width = self.heads * self.head_dim
        self.kv_width = self.kv_heads * self.head_dim
        self.intermediate = config.intermediate_size
        self.layers = [
            (
                layer.input_layernorm.weight,
                torch.cat(
                    (
                        layer.self_attn.q_proj.weight,
                        layer.self_attn.k_proj.weight,
                        layer.self_attn.v_proj.weight,
                    )
                ),
                # the per-head q and k norm weights, one row per head: q and k are normalised in one call
                torch.cat(
                    (
                        layer.self_attn.q_norm.weight.expand(self.heads, -1),
                        layer.self_attn.k_norm.weight.expand(self.kv_heads, -1),
                    )
                ),
                layer.self_attn.o_proj.weight,
                layer.post_attention_layernorm.weight,
                torch.cat((layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight)),
                layer.mlp.down_proj.weight,
            )
            for layer in core.layers[: config.num_hidden_layers]
        ]

    def rotary(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and :func:`_rotate`'s signed sin, (*positions.shape, head_dim), from the cos and sin
        Qwen3RotaryEmbedding computes."""
        freqs = positions[..., None].float() * self.inv_freq.float()
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.rope_scaling).to(dtype)
        sin = (emb.sin() * self.rope_scaling).to(dtype)
        half = sin.shape[-1] // 2
        return cos, torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)

    def attention_inputs(
        self,
        normed: torch.Tensor,
        qkv_weight: torch.Tensor,
        qk_norm: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query (..., heads, head_dim), key and value (..., kv_heads, head_dim) of ``normed`` (...,
        hidden): Qwen3Attention's projections, per-head RMSNorm of q and k, then the rotary embedding
        (``cos`` and ``sin`` are (..., head_dim))."""
        # split, not sliced: a split's gradient is one concatenation, a slice's a zero-filled copy
        qk, value = F.linear(normed, qkv_weight).split((self.q_width + self.kv_width, self.kv_width), dim=-1)
        qk = qk.unflatten(-1, (self.heads + self.kv_heads, self.head_dim))
        qk = _rotate(qk_norm * _rms_norm(qk, None, self.eps), cos.unsqueeze(-2), sin.unsqueeze(-2))
        query, key = qk.split((self.heads, self.kv_heads), dim=-2)
        return query, key, value.unflatten(-1, (self.kv_heads, self.head_dim))

    def mlp_block(
        self, hidden: torch.Tensor, norm_post: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor
    ):
        """``hidden`` plus Qwen3MLP of its post-attention RMSNorm."""
        gate, up = F.linear(_rms_norm(hidden, norm_post, self.eps), gate_up).split(self.intermediate, dim=-1)
        return hidden + F.linear(F.silu(gate) * up, down)


def _forward(
    weights: _Weights,
    ids: torch.Tensor,
    rotary: tuple[torch.Tensor, torch.Tensor],
    mask: torch.Tensor,
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    start: int,
) -> torch.Tensor:
    """Last-position logits of ``ids`` (batch, tokens) written at cache slots ``start:start+tokens``.

    ``rotary`` is the tokens' cos and sin, (batch, tokens, head_dim) (:meth:`_Weights.rotary`);
    ``mask`` is SDPA's boolean mask, (batch, 1, tokens, start + tokens): True where a query sees a key.
    """
    batch, tokens = ids.shape
    end = start + tokens
    hidden = F.embedding(ids, weights.embed)
    cos, sin = rotary
    groups = weights.heads // weights.kv_heads
    for index, (norm_in, qkv, qk_norm, wo, norm_post, gate_up, down) in enumerate(weights.layers):
        normed = _rms_norm(hidden, norm_in, weights.eps)
        query, key, value = (
            part.transpose(1, 2) for part in weights.attention_inputs(normed, qkv, qk_norm, cos, sin)
        )
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
        hidden = weights.mlp_block(hidden, norm_post, gate_up, down)
    last = _rms_norm(hidden[:, -1], weights.norm, weights.eps)
    return F.linear(last, weights.lm_head)


def _decode(
    weights: _Weights,
    tokens: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask: torch.Tensor,
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    position: int,
) -> torch.Tensor:
    """:func:`_forward` for one new token a row, bit for bit, with fewer tensor operations and less
    Python (a decoding step of the organism is mostly per-operation overhead): ``tokens`` (rows,),
    ``cos``/``sin`` (rows, 1, head_dim), ``mask`` SDPA's additive float mask (rows, 1, 1, position + 1)
    (what SDPA makes of the boolean one), the new key and value written at cache slot ``position``."""
    rows = tokens.shape[0]
    eps, heads, head_dim, dtype = weights.eps, weights.heads, weights.head_dim, weights.embed.dtype
    qk_width, end = weights.q_width + weights.kv_width, position + 1
    hidden = F.embedding(tokens, weights.embed)
    width = (hidden.shape[-1],)
    for index, (norm_in, qkv_weight, qk_norm, wo, norm_post, gate_up, down) in enumerate(weights.layers):
        normed = norm_in * torch.rms_norm(hidden.float(), width, None, eps).to(dtype)
        qkv = F.linear(normed, qkv_weight)
        qk = qkv[:, :qk_width].view(rows, -1, head_dim)
        qk = qk_norm * torch.rms_norm(qk.float(), (head_dim,), None, eps).to(dtype)
        qk = _rotate(qk, cos, sin)
        keys[index][:, :, position] = qk[:, heads:]
        values[index][:, :, position] = qkv[:, qk_width:].view(rows, -1, head_dim)
        past_keys, past_values = keys[index][:, :, :end], values[index][:, :, :end]
        if weights.kv_heads != heads:
            past_keys = past_keys.repeat_interleave(heads // weights.kv_heads, dim=1)
            past_values = past_values.repeat_interleave(heads // weights.kv_heads, dim=1)
        attended = F.scaled_dot_product_attention(
            qk[:, :heads, None], past_keys, past_values, attn_mask=mask, scale=weights.scaling
        )
        hidden = hidden + F.linear(attended.view(rows, -1), wo)
        normed = norm_post * torch.rms_norm(hidden.float(), width, None, eps).to(dtype)
        gate, up = F.linear(normed, gate_up).split(weights.intermediate, dim=-1)
        hidden = hidden + F.linear(F.silu(gate) * up, down)
    normed = weights.norm * torch.rms_norm(hidden.float(), width, None, eps).to(dtype)
    return F.linear(normed, weights.lm_head)


def _draw(logits: torch.Tensor, temperature: float, batch: int, rows: torch.Tensor | None) -> torch.Tensor:
    """One token per live row (``rows`` of the batch; None: all of them): the draws of
    ``torch.multinomial(softmax(logits / temperature), 1)`` on the full batch.

    ``torch.multinomial`` draws one sample as ``argmax(probs / q)`` with ``q`` an ``exponential_(1)``
    tensor of the probabilities' shape (the exponential race); drawing ``q`` for every row of the
    batch, finished ones included, consumes the global generator exactly as ``generate``'s call on the
    whole batch does, and the live rows' ``argmax`` are its draws bit for bit (checked in the tests).
    """
    logits = logits.float()
    if temperature != 1.0:  # generate adds TemperatureLogitsWarper only for a temperature other than 1
        logits = logits / temperature
    probs = F.softmax(logits, dim=-1)
    if not bool(torch.isfinite(probs).all()):  # torch.multinomial's own check and message, which
        # corerl.engine.run.train_reporting_divergence turns into one line naming the step
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    race = torch.empty((batch, probs.shape[-1]), dtype=probs.dtype).exponential_(1)
    return (probs / (race if rows is None else race[rows])).argmax(dim=-1)


@torch.inference_mode()
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

    The prompts are left-padded into one batch, as TRL and ``corerl.generation`` pad them. Equal prompts
    (the rollouts of one question) are prefilled once and their cache copied; a row that has drawn a
    stop token leaves the batch (``generate`` keeps computing it and writes padding).
    """
    if not prompt_ids or max_new_tokens < 1:
        return [[] for _ in prompt_ids]
    weights = _Weights(model)
    batch, width = len(prompt_ids), max(len(ids) for ids in prompt_ids)
    total = width + max_new_tokens
    distinct: dict[tuple[int, ...], int] = {}  # each distinct prompt and its prefill row
    source = torch.tensor([distinct.setdefault(tuple(ids), len(distinct)) for ids in prompt_ids])
    first = torch.tensor([source.tolist().index(row) for row in range(len(distinct))])
    ids = torch.full((len(distinct), width), pad_id, dtype=torch.long)
    real = torch.zeros((batch, total), dtype=torch.bool)  # keys that hold a token (not left padding)
    for row, prompt in enumerate(distinct):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
    for row, prompt in enumerate(prompt_ids):
        real[row, width - len(prompt) :] = True
    # generate's position ids: cumsum(attention_mask) - 1, padding at 0, then +1 per new token
    positions = (real[first, :width].long().cumsum(-1) - 1).clamp(min=0)
    # Prefill mask: causal and not padding; a padding query sees itself (its row is never read, and a
    # row with no key at all would make SDPA's output NaN, which the cache would carry to other rows).
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    prefill_mask = causal[None] & (real[first, None, :width] | torch.eye(width, dtype=torch.bool)[None])
    dtype = weights.embed.dtype
    shape = (len(distinct), weights.kv_heads, width, weights.head_dim)
    prompt_keys = [torch.empty(shape, dtype=dtype) for _ in weights.layers]
    prompt_values = [torch.empty(shape, dtype=dtype) for _ in weights.layers]
    rotary = weights.rotary(positions, dtype)
    logits = _forward(weights, ids, rotary, prefill_mask[:, None], prompt_keys, prompt_values, 0)[source]
    # each row's cache: its prompt's, then room for the new tokens
    keys, values = [], []
    for prompt_cache, caches in ((prompt_keys, keys), (prompt_values, values)):
        for layer_cache in prompt_cache:
            cache = torch.empty((batch, weights.kv_heads, total, weights.head_dim), dtype=dtype)
            cache[:, :, :width] = layer_cache[source]
            caches.append(cache)
    # each row's key mask, and the cos and sin of the positions its new tokens take
    key_mask = torch.zeros((batch, 1, 1, total), dtype=dtype).masked_fill(~real[:, None, None], float("-inf"))
    next_positions = positions[source, -1:] + 1 + torch.arange(max_new_tokens)
    cos_steps, sin_steps = weights.rotary(next_positions, dtype)  # (batch, max_new_tokens, head_dim)
    stops = torch.tensor(list(stop_ids), dtype=torch.long)
    drawn = torch.full((batch, max_new_tokens), pad_id, dtype=torch.long)
    rows = None  # the batch rows still generating (None: all); the caches hold only these
    for step in range(max_new_tokens):
        tokens = _draw(logits, temperature, batch, rows)
        drawn[:, step].index_put_((torch.arange(batch) if rows is None else rows,), tokens)
        stopped = torch.isin(tokens, stops)
        if step == max_new_tokens - 1:
            break
        if bool(stopped.any()):
            live = (~stopped).nonzero().squeeze(1)
            if not len(live):
                break
            rows = live if rows is None else rows[live]
            tokens, key_mask, cos_steps, sin_steps = (
                part.index_select(0, live) for part in (tokens, key_mask, cos_steps, sin_steps)
            )
            keys = [cache.index_select(0, live) for cache in keys]
            values = [cache.index_select(0, live) for cache in values]
        position = width + step
        logits = _decode(
            weights,
            tokens,
            cos_steps[:, step : step + 1],
            sin_steps[:, step : step + 1],
            key_mask[..., : position + 1],
            keys,
            values,
            position,
        )
    stop_set = set(int(token) for token in stop_ids)
    completions = []
    for row in drawn.tolist():
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
