"""What a profile sets for the study: its base models, run configs, prompt and evaluation settings.

- :func:`resolve_profile`: ``"auto"`` is ``t4`` on a CUDA GPU and ``tiny`` otherwise;
- :func:`prepare_process`: the torch thread count (tiny) or the Unsloth import (GPU) a study needs first;
- :func:`base_model`, :func:`held_out_data`, :func:`prompt`: the model, held-out set and prompt of a profile;
- :func:`run_config`: a run's ``TrainConfig``, with the study's precedence of settings;
- :data:`EVALUATION` (``corerl.evaluate``'s, re-exported) and :func:`eval_settings`: the benchmarks and
  sampling of held-out evaluation.

``smoke=True`` shrinks everything (a few steps, questions and tokens, the organism's seconds-long
smoke build) so that CI can execute every notebook. Their numbers mean nothing.

Departures: evaluation subsamples the benchmarks (``eval_questions``) to fit a T4 session; the paper
evaluates on the full sets. The ``t4`` profile's second prior (``misaligned``) is a different model
family (Llama-3.2-3B-Instruct, the paper's second model), not a model with a known systematic error as
on the organism.
"""

from __future__ import annotations

from typing import Any

from corerl.config import PROFILES, TrainConfig, make_config
from corerl.evaluate import EVALUATION  # evaluation's settings per profile; the study re-exports them

# Base models of the GPU profiles: the paper's Qwen3-1.7B-Base (Table 7) and its Llama family model.
GPU_MODELS: dict[str, str] = {
    "aligned": "unsloth/Qwen3-1.7B-Base",
    "misaligned": "unsloth/Llama-3.2-3B-Instruct",
}
SMOKE_EVALUATION: dict[str, Any] = {"questions": 6, "k": 2, "max_new_tokens": 48}
# Smoke runs: enough to go through every code path, not to learn anything.
SMOKE_STEPS = 2
SMOKE_OVERRIDES: dict[str, Any] = {
    "eval_size": SMOKE_EVALUATION["questions"],  # the held-out curve (where on) on a smoke-sized set
    "eval_samples": SMOKE_EVALUATION["k"],
    "data_limit": 16,
    "questions_per_step": 2,
    "save_steps": 1,
    "sample_every": 1,
    "curriculum_samples": 2,
    "offline_label_samples": 2,
    "early_stopping_eval_steps": 1,
}
TINY_THREADS = 1  # torch threads in a tiny-profile kernel (see prepare_process)


def resolve_profile(profile: str = "auto") -> str:
    """The profile to run: ``auto`` picks ``t4`` when CUDA is available, else ``tiny``.

    Never silently ``tiny`` on a GPU machine: where an NVIDIA GPU is present but torch cannot use it,
    ``auto`` raises ``corerl.machine.hardware.GpuUnusableError`` naming the versions and the fix.
    """
    if profile == "auto":
        from corerl.machine.hardware import cuda_usable

        return "t4" if cuda_usable() else "tiny"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (choose from auto, {', '.join(PROFILES)})")
    return profile


def prepare_process(profile: str, threads: int | None = None) -> None:
    """Set torch's thread count of this process (``threads`` when given, else ``TINY_THREADS`` on the tiny
    profile) or, on a GPU profile with CUDA, import Unsloth, which must come before transformers, and
    print why when it cannot be imported."""
    if threads or profile == "tiny":
        import torch

        # The organism's matrices are too small to gain from intra-op threads, and on a shared CPU
        # extra threads cost a lot: evaluating 200 questions x 4 samples took 3 s on 1 thread and
        # 108 s on 2 while other jobs ran (measured on a 2-core machine).
        torch.set_num_threads(threads or TINY_THREADS)
    else:
        from corerl.machine.hardware import import_error

        # Unsloth must be imported before transformers/trl/peft (../shared/notes/stack.md); the runs
        # train in child processes (corerl.study.isolation) that import it first themselves, so this
        # is the up-front check that it imports at all, with the reason when it does not.
        reason = import_error("unsloth")
        if reason is not None and reason != "no CUDA GPU":
            print(
                f"Unsloth cannot be imported ({reason}): the runs will train with plain TRL + PEFT, "
                "slower and with more memory"
            )


def base_model(profile: str, prior: str = "aligned", *, smoke: bool = False, seed: int = 0) -> str:
    """The base model of a prior: the organism's (built and cached on first use) or a hub id."""
    if profile != "tiny":
        return GPU_MODELS[prior]
    from corerl.organism import ensure_base_model, smoke_settings

    settings = smoke_settings(prior, seed) if smoke else None
    return str(ensure_base_model(prior, settings=settings))


def held_out_data(profile: str) -> str:
    """The held-out set used for test-time training: the organism's test split or MATH-500."""
    return "organism-test" if profile == "tiny" else "math500"


def prompt(profile: str, question: str) -> str | list[dict[str, str]]:
    """The training prompt of a question: the profile's template, as a chat turn where it chats."""
    config = make_config(profile)
    text = config.format_prompt(question)
    return [{"role": "user", "content": text}] if config.chat else text


def run_config(
    profile: str,
    method: str,
    output_dir: str,
    values: dict[str, Any],
    *,
    steps: int | None = None,
    smoke: bool = False,
) -> TrainConfig:
    """The config of a run: the profile, then ``values`` (the study's and the run's settings), then
    ``steps``, then smoke mode (which caps steps and data whatever was asked)."""
    values = dict(values)
    if steps is not None:
        values["max_steps"] = steps
    if smoke:
        limit = min(values.get("data_limit") or SMOKE_OVERRIDES["data_limit"], SMOKE_OVERRIDES["data_limit"])
        values.update(SMOKE_OVERRIDES, data_limit=limit, max_steps=SMOKE_STEPS)
    return make_config(profile, method=method, output_dir=output_dir, **values)


def eval_settings(profile: str, *, smoke: bool = False, questions: int | None = None) -> dict[str, Any]:
    """The profile's evaluation settings but its benchmarks (smoke-sized, ``questions`` per benchmark)."""
    settings = {key: value for key, value in EVALUATION[profile].items() if key != "benchmarks"}
    if smoke:
        settings.update(SMOKE_EVALUATION)
    if questions is not None:
        settings["questions"] = questions
    return settings
