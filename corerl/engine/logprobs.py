"""The loss's per-token log-probabilities on the tiny CPU profile: each prompt once, no padding.

TRL's ``_get_per_token_logps_and_entropies`` runs the model over every row of ``prompt + completion``
(prompts left-padded and completions right-padded to the batch's longest). On the organism (4
questions x 8 rollouts a step, prompts of 29-43 tokens, completions of 6-33, ~17 on average) that is
about 32 x 76 = 2,400 positions a step, where 4 x 43 + 32 x 17 = ~720 carry all the information:
the rest is padding and the same prompt computed 8 times. :func:`per_token_logps` computes the same
function of the same parameters on those positions only:

- each distinct prompt row (ids and mask) once: a prompt's hidden states, keys and values depend on
  the prompt alone (causal attention), so the 8 rollouts of a question share them (their gradients
  add up, as the 8 copies' do);
- the completions' real tokens only (``completion_mask`` is 1 up to and including EOS, then 0),
  packed into one row for the projections and the MLP, and laid out (row, position) for attention,
  where each one sees its prompt's real tokens and its own earlier tokens, as under TRL's mask;
- the log-probability of completion token ``j`` from the hidden state before it (the prompt's last
  position for ``j = 0``), through TRL's own ``selective_log_softmax_and_entropy`` with the
  trainer's temperature; masked positions get 0, as TRL's ``row_mask`` gives them.

Positions are TRL's: ``arange`` over the padded row, as the model numbers them when TRL passes no
position ids (generation numbers each row from its first real token instead; rotary attention
depends on position differences only, so the two are the same function). The result equals TRL's to
floating-point rounding (different matrix shapes sum in a different order), and so do the gradients:
``tests/test_logprobs.py`` compares both with TRL's own hook on a tiny Qwen3. Nothing in the GRPO
objective changes; the hook only computes it with less arithmetic.

:class:`LeanLogProbsMixin` takes this path on a CPU run of a model :func:`corerl.engine.decoding.supports`
accepts (dense Qwen3, fp32, no adapters, no autocast) without Liger, images or the MoE auxiliary loss,
when the completion masks are prefixes and the prompts end in a real token; every other call,
and every GPU run, goes through TRL's own code unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from corerl.engine.decoding import _rms_norm, _Weights, supports

# TRL's keyword arguments for multimodal inputs: the lean path takes none of them
_MULTIMODAL = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


def lean_applies(model: Any, attention_mask: torch.Tensor, logits_to_keep: int) -> bool:
    """True when :func:`per_token_logps` computes what TRL's forward pass computes for these inputs."""
    if not supports(model) or next(model.parameters()).dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu") or logits_to_keep < 1 or attention_mask.shape[1] <= logits_to_keep:
        return False
    completion_mask = attention_mask[:, -logits_to_keep:]
    prompt_mask = attention_mask[:, :-logits_to_keep]
    prefix = bool((completion_mask.cumprod(dim=1) == completion_mask).all())
    return prefix and bool(prompt_mask[:, -1].all())


def per_token_logps(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    *,
    temperature: float,
    compute_entropy: bool,
    entropy_requires_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities (and entropies) of the last ``logits_to_keep`` tokens of each row, (rows,
    logits_to_keep), 0 where ``attention_mask`` is 0: TRL's ``_full_logits_logps`` (see the module
    docstring; :func:`lean_applies` must hold)."""
    from trl.trainer.utils import selective_log_softmax, selective_log_softmax_and_entropy

    weights = _Weights(model)
    rows, width = input_ids.shape
    prompt_width = width - logits_to_keep
    prompt_part = torch.cat((input_ids[:, :prompt_width], attention_mask[:, :prompt_width]), dim=1)
    distinct, source = torch.unique(prompt_part, dim=0, return_inverse=True)
    prompt_ids, prompt_mask = distinct[:, :prompt_width], distinct[:, prompt_width:].bool()
    completion_mask = attention_mask[:, prompt_width:].bool()
    row_index, column = completion_mask.nonzero(as_tuple=True)  # the real completion tokens, row-major
    positions = torch.arange(width)
    prompt_rotary = weights.rotary(positions[:prompt_width], weights.embed.dtype)
    token_rotary = weights.rotary(prompt_width + column, weights.embed.dtype)
    # Masks (True: the query sees the key). A padding query of a prompt sees itself: its output is
    # never read, and a query with no key would make SDPA's output NaN.
    causal = torch.ones((prompt_width, prompt_width), dtype=torch.bool).tril()
    prompt_attention = causal & (prompt_mask[:, None, :] | torch.eye(prompt_width, dtype=torch.bool))
    completion_causal = torch.ones((logits_to_keep, logits_to_keep), dtype=torch.bool).tril()
    token_attention = torch.cat(
        (
            prompt_mask[source, None, :].expand(rows, logits_to_keep, prompt_width),
            completion_causal & completion_mask[:, None, :],
        ),
        dim=2,
    )
    prompt_hidden = F.embedding(prompt_ids, weights.embed)
    hidden = F.embedding(input_ids[:, prompt_width:][row_index, column], weights.embed)
    for norm_in, qkv, qk_norm, wo, norm_post, gate_up, down in weights.layers:
        # the distinct prompts, padded as TRL pads them
        query, key, value = (
            part.transpose(1, 2)
            for part in weights.attention_inputs(
                _rms_norm(prompt_hidden, norm_in, weights.eps), qkv, qk_norm, *prompt_rotary
            )
        )
        prompt_keys, prompt_values = _repeat_kv(weights, key), _repeat_kv(weights, value)
        attended = F.scaled_dot_product_attention(
            query, prompt_keys, prompt_values, attn_mask=prompt_attention[:, None], scale=weights.scaling
        )
        prompt_hidden = prompt_hidden + F.linear(attended.transpose(1, 2).flatten(2), wo)
        prompt_hidden = weights.mlp_block(prompt_hidden, norm_post, gate_up, down)
        # the completions' real tokens: projections packed, attention laid out (row, position)
        query, key, value = weights.attention_inputs(
            _rms_norm(hidden, norm_in, weights.eps), qkv, qk_norm, *token_rotary
        )
        query, key, value = (
            _unpack(part, row_index, column, rows, logits_to_keep).transpose(1, 2)
            for part in (query, _repeat_kv(weights, key), _repeat_kv(weights, value))
        )
        keys = torch.cat((prompt_keys[source], key), dim=2)
        values = torch.cat((prompt_values[source], value), dim=2)
        attended = F.scaled_dot_product_attention(
            query, keys, values, attn_mask=token_attention[:, None], scale=weights.scaling
        )
        attended = attended.transpose(1, 2)[row_index, column].flatten(1)
        hidden = weights.mlp_block(hidden + F.linear(attended, wo), norm_post, gate_up, down)
    # completion token j is predicted at the position before it: the prompt's last for j = 0
    before = torch.cat((prompt_hidden[:, -1], hidden))
    previous = torch.where(column == 0, source[row_index], len(distinct) + torch.arange(len(column)) - 1)
    logits = F.linear(_rms_norm(before[previous], weights.norm, weights.eps), weights.lm_head)
    labels = input_ids[:, prompt_width:][row_index, column]
    if compute_entropy:
        logps, entropies = selective_log_softmax_and_entropy(
            logits[None], labels[None], entropy_requires_grad=entropy_requires_grad, temperature=temperature
        )
        return _scatter(logps[0], completion_mask), _scatter(entropies[0], completion_mask)
    logps = selective_log_softmax(logits[None], labels[None], temperature=temperature)
    return _scatter(logps[0], completion_mask), None


def _repeat_kv(weights: _Weights, states: torch.Tensor) -> torch.Tensor:
    """Keys or values, heads on dimension 1, repeated for grouped-query attention (a no-op when
    heads == kv_heads)."""
    groups = weights.heads // weights.kv_heads
    return states if groups == 1 else states.repeat_interleave(groups, dim=1)


def _unpack(packed: torch.Tensor, row_index: torch.Tensor, column: torch.Tensor, rows: int, width: int):
    """(tokens, ...) laid out as (rows, width, ...), zeros where no token is."""
    laid_out = packed.new_zeros((rows, width, *packed.shape[1:]))
    return laid_out.index_put((row_index, column), packed)


def _scatter(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token ``values`` (row-major over ``mask``'s True entries) as a (rows, width) tensor, 0 elsewhere."""
    return values.new_zeros(mask.shape).masked_scatter(mask, values)


class LeanLogProbsMixin:
    """TRL's ``_get_per_token_logps_and_entropies`` through :func:`per_token_logps` where it applies
    (see the module docstring); TRL's own code everywhere else."""

    def _get_per_token_logps_and_entropies(
        self, model, *args, batch_size=None, compute_aux_loss=False, **kwargs
    ):
        names = ("input_ids", "attention_mask", "logits_to_keep", "compute_entropy")
        arguments = {**dict(zip(names[: len(args)], args, strict=True)), **kwargs}
        unwrapped = self.accelerator.unwrap_model(model)
        if (
            len(args) > len(names)
            or compute_aux_loss
            or self.use_liger_kernel
            or unwrapped is not model
            or any(arguments.get(name) is not None for name in _MULTIMODAL)
            or set(arguments)
            - {"input_ids", "attention_mask", "logits_to_keep", "compute_entropy", *_MULTIMODAL}
            or not lean_applies(model, arguments["attention_mask"], arguments["logits_to_keep"])
        ):
            return super()._get_per_token_logps_and_entropies(
                model, *args, batch_size=batch_size, compute_aux_loss=compute_aux_loss, **kwargs
            )
        logps, entropies = per_token_logps(
            model,
            arguments["input_ids"],
            arguments["attention_mask"],
            arguments["logits_to_keep"],
            temperature=self.temperature,
            compute_entropy=bool(arguments.get("compute_entropy", False)),
            entropy_requires_grad=self._entropy_bonus_enabled,
        )
        return logps, entropies, None
