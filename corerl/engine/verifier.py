"""Self-verification: the online policy, prompted as a verifier, judges each of its own completions.

An external label-free reward in the sense of the scaling study (arXiv 2603.08660): the reward comes
from checking a solution, not from the model's confidence in generating it (the generate/verify
asymmetry). The study's own estimator (``self_verify`` in the ``urlvr-dev`` branch of PRIME-RL/TTRL)
could not be read here: that branch is not in the stored copy of the repository (only ``main``), so
the verification prompt and the form of the judgement below are OURS, not the study's.

The judgement (one no-grad forward pass per completion, no sampling):

    v(y) = P("Yes") / (P("Yes") + P("No"))

the next-token probabilities after :data:`VERIFY_PROMPT` (the problem, the completion, "Reply with Yes
or No only"), each summed over the spellings with and without a leading space, renormalised over the
two answers so that probability mass on other tokens (a ``<think>`` tag, a newline) does not count.
Why this and not a greedy yes/no: it costs one forward pass instead of a generation, it is
deterministic, and it is graded, so GRPO sees differences inside a group even when the verifier says
"Yes" to every rollout. ``verifier_mass`` = P("Yes") + P("No") is logged: a value near 0 means the
model is not answering the question it was asked, and the judgement is noise.

The verifier is the policy as it is at that step (LoRA adapter on), under ``torch.no_grad``: no
gradient flows through the judgement, but every update also changes the next step's verifier, so the
policy can learn to write solutions that it says "Yes" to (the reward's hack; see docs/methods.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from corerl.engine.signals import LOGIT_BUDGET

if TYPE_CHECKING:
    import torch

# Ours (the study's prompt could not be read; see the module docstring).
VERIFY_PROMPT = (
    "You are checking a proposed solution to a problem.\n\n"
    "Problem:\n{problem}\n\n"
    "Proposed solution:\n{solution}\n\n"
    "Check the reasoning and the final answer. Is the proposed solution correct? "
    "Reply with Yes or No only."
)
PLAIN_SUFFIX = "\nAnswer (Yes or No):"  # plain-text prompts (no chat template): the answer follows
YES, NO = ("Yes", " Yes", "YES"), ("No", " No", "NO")
TOKENS_PER_CHUNK = LOGIT_BUDGET // 2**13  # rows x positions per forward pass (activations, not logits)


def problem_text(prompt: Any) -> str:
    """The task as the policy saw it: a plain prompt, or the last user message of a chat prompt.

    >>> problem_text("Compute 2 + 2."), problem_text([{"role": "user", "content": "Solve x."}])
    ('Compute 2 + 2.', 'Solve x.')
    """
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def verification_text(problem: str, solution: str, tokenizer: Any, *, chat: bool) -> str:
    """The verifier's input: :data:`VERIFY_PROMPT`, in the chat template when the policy is a chat model."""
    request = VERIFY_PROMPT.format(problem=problem.strip(), solution=solution.strip())
    if chat:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": request}], add_generation_prompt=True, tokenize=False
        )
    return request + PLAIN_SUFFIX


def answer_token_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The first token of each spelling of "Yes" and of "No"; a token both share (a lone space) is dropped."""
    yes, no = (
        {ids[0] for word in words if (ids := tokenizer.encode(word, add_special_tokens=False))}
        for words in (YES, NO)
    )
    shared = yes & no
    yes, no = yes - shared, no - shared
    if not yes or not no:
        raise ValueError(
            f"self-verification: the tokenizer has no distinct first token for {YES} and {NO} "
            f"(yes ids {sorted(yes)}, no ids {sorted(no)})"
        )
    return sorted(yes), sorted(no)


def yes_probabilities(
    model: torch.nn.Module,
    token_ids: Sequence[Sequence[int]],
    yes: Sequence[int],
    no: Sequence[int],
    pad: int,
) -> tuple[list[float], list[float]]:
    """Per sequence: P(yes) / (P(yes) + P(no)) for the next token, and P(yes) + P(no).

    Left-padded with explicit positions, so every row's next token is the last position and only
    that position's logits are computed (``logits_to_keep=1``).
    """
    import torch

    device = next(model.parameters()).device
    widest = max((len(ids) for ids in token_ids), default=1)
    rows_per_chunk = max(1, TOKENS_PER_CHUNK // widest)
    judgements: list[float] = []
    masses: list[float] = []
    with torch.no_grad():
        for start in range(0, len(token_ids), rows_per_chunk):
            chunk = token_ids[start : start + rows_per_chunk]
            width = max(len(ids) for ids in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, ids in enumerate(chunk):
                input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
                attention_mask[row, width - len(ids) :] = 1
            positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
            logits = model(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
                logits_to_keep=1,
            ).logits[:, -1, :]
            probabilities = torch.softmax(logits.float(), dim=-1)
            p_yes = probabilities[:, list(yes)].sum(dim=-1)
            p_no = probabilities[:, list(no)].sum(dim=-1)
            mass = p_yes + p_no
            judgements.extend((p_yes / mass.clamp(min=1e-30)).tolist())  # v(y) = P(Yes) / (P(Yes) + P(No))
            masses.extend(mass.tolist())
    return judgements, masses


def self_verification(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[Any],
    completions: Sequence[str],
    *,
    pad_token_id: int,
) -> tuple[list[float], list[float]]:
    """The verifier's judgement ``v(y)`` of each completion of its prompt, and ``verifier_mass``."""
    yes, no = answer_token_ids(tokenizer)
    texts = [
        verification_text(problem_text(prompt), completion, tokenizer, chat=not isinstance(prompt, str))
        for prompt, completion in zip(prompts, completions, strict=True)
    ]
    token_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    return yes_probabilities(model, token_ids, yes, no, pad_token_id)


class SelfVerifyMixin:
    """Adds ``self_verification`` and ``verifier_mass`` per completion to the reward columns.

    Overrides ``GRPOTrainer._generate(self, prompts)`` (trl 1.14.2) like ``RolloutSignalsMixin``: its
    sixth return value, ``extra_fields``, reaches the reward functions as keyword columns.
    """

    def _generate(self, prompts: list):
        result = super()._generate(prompts)
        completion_ids, extra_fields = result[1], result[5]
        texts = self._tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        judgements, masses = self_verification(
            self.accelerator.unwrap_model(self.model),
            self._tokenizer,
            prompts,
            texts,
            pad_token_id=self._tokenizer.pad_token_id,
        )
        extra_fields["self_verification"] = judgements
        extra_fields["verifier_mass"] = masses
        return result
