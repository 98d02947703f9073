"""Per-completion token entropy and self-certainty from the current policy's logits.

Reward functions in TRL never see logits, so the trainer computes these two signals itself, in its own
no-grad forward pass over prompt + completion (right-padded, so positions are exact), and hands them to
the reward functions as the ``token_entropy`` and ``self_certainty`` columns. This works the same under
Unsloth, whose trainer returns no entropies.

- token entropy (RENT, arXiv 2505.22660): mean over completion tokens of H(p_t);
- self-certainty (Intuitor, arXiv 2505.19590): mean over completion tokens of KL(U || p_t)
  = logsumexp(z_t) - mean_j z_tj - log|V|.

Logits are divided by the sampling temperature first, as TRL does for its own entropies, so the
signals describe the distribution the completions were sampled from (identical at temperature 1.0).
Every completion token counts, the final EOS included, as in TRL's loss mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Upper bound on logits materialised at once (rows x positions x vocabulary), about 1 GiB in fp32.
LOGIT_BUDGET = 2**28


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy H(softmax(z)) of each row of ``logits`` (last dimension = vocabulary), in nats.

    >>> import torch
    >>> round(token_entropy(torch.zeros(1, 4)).item(), 6) == round(math.log(4), 6)
    True
    """
    import torch

    logits = logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def self_certainty(logits: torch.Tensor) -> torch.Tensor:
    """KL(U || softmax(z)) of each row = logsumexp(z) - mean(z) - log|V| (Intuitor, Eq. 2).

    Zero for a uniform distribution, large for a peaked one.

    >>> import torch
    >>> self_certainty(torch.zeros(2, 8)).abs().max().item() < 1e-6
    True
    """
    import torch

    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - logits.mean(dim=-1) - math.log(logits.shape[-1])


def completion_signals(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
    temperature: float = 1.0,
) -> tuple[list[float], list[float]]:
    """Mean token entropy and mean self-certainty of each completion under ``model``.

    One no-grad forward pass per chunk of rows, prompt + completion right-padded (so positions are
    exact without position ids). An empty completion gets 0.0 for both.
    """
    import torch

    vocab = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() is not None else 1
    device = next(model.parameters()).device
    lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    rows_per_chunk = max(1, LOGIT_BUDGET // max(1, max(lengths, default=1) * vocab))
    entropies: list[float] = []
    certainties: list[float] = []
    with torch.no_grad():
        for start in range(0, len(lengths), rows_per_chunk):
            stop = min(start + rows_per_chunk, len(lengths))
            width = max(lengths[start:stop])
            input_ids = torch.full((stop - start, width), pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((stop - start, width), dtype=torch.long)
            for row, index in enumerate(range(start, stop)):
                sequence = list(prompt_ids[index]) + list(completion_ids[index])
                input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
                attention_mask[row, : len(sequence)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
            for row, index in enumerate(range(start, stop)):
                first, count = len(prompt_ids[index]), len(completion_ids[index])
                if count == 0:
                    entropies.append(0.0)
                    certainties.append(0.0)
                    continue
                # Position t - 1 predicts completion token t.
                step_logits = logits[row, first - 1 : first - 1 + count] / temperature
                entropies.append(token_entropy(step_logits).mean().item())
                certainties.append(self_certainty(step_logits).mean().item())
    return entropies, certainties


class RolloutSignalsMixin:
    """Adds ``token_entropy`` and ``self_certainty`` per completion to the reward columns.

    Overrides ``GRPOTrainer._generate(self, prompts)`` (trl 1.14.2), whose sixth return value is the
    ``extra_fields`` dict that ``_generate_and_score_completions`` merges into the reward kwargs.
    """

    def _generate(self, prompts: list):
        result = super()._generate(prompts)
        prompt_ids, completion_ids, extra_fields = result[0], result[1], result[5]
        model = self.accelerator.unwrap_model(self.model)
        entropies, certainties = completion_signals(
            model,
            prompt_ids,
            completion_ids,
            pad_token_id=self._tokenizer.pad_token_id,
            temperature=self.temperature,
        )
        extra_fields["token_entropy"] = entropies
        extra_fields["self_certainty"] = certainties
        return result
