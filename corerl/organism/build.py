"""Build the organism's base models: a tiny causal LM trained from scratch by SFT on worked solutions.

``ensure_base_model(prior)`` returns a directory loadable with ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained``, building it on first call and caching it under
``$CORERL_CACHE/organism/<prior>-<hash of the build settings>`` (default cache ``~/.cache/corerl``).

The build: ``corerl.tiny.build_tiny_model`` trains a BPE tokenizer (digits split) on the SFT texts and
initialises a random Qwen3-config model; then a plain torch loop (AdamW, linear warm-up and decay)
trains it on ``format_prompt(form) + worked_solution + EOS`` with the loss on the completion only.
Prompt and completion are tokenized separately and concatenated, exactly as GRPO sees them at
rollout time. The example pool holds every training problem in each of its four surface forms,
shuffled; the default build sees 48,000 of its 80,000 examples (1,500 steps of 32).

Two priors, differing only in the SFT targets:

- ``aligned``: correct worked solutions; its errors come from under-training, so they are scattered;
- ``misaligned``: every multiplication step is computed as an addition (``6 * 3 = 9``), so on
  problems with a multiplication it is confidently wrong (a systematic error on part of the task).

The build is deterministic from ``BuildSettings.seed`` for a fixed number of torch threads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corerl.organism.dataset import make_rows
from corerl.organism.task import DEFAULT_DIFFICULTY, generate_problem, worked_solution

logger = logging.getLogger(__name__)

PRIORS: dict[str, str | None] = {"aligned": None, "misaligned": "*"}
CACHE_ENV = "CORERL_CACHE"
SETTINGS_FILE = "organism_build.json"


@dataclass(frozen=True)
class BuildSettings:
    """Everything that determines a base model (its hash names the cache directory)."""

    prior: str = "aligned"
    seed: int = 0
    difficulty: tuple[int, int] = DEFAULT_DIFFICULTY
    num_problems: int = 20000
    vocab_size: int = 512
    hidden_size: int = 96
    num_layers: int = 3
    num_heads: int = 4
    arch: str = "qwen3"
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    # One thread: on a shared 2-core machine two torch threads spin-wait for each other
    # (measured: 6x more CPU per step than one thread under load), and one thread is deterministic.
    threads: int = 1

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; expected one of {sorted(PRIORS)}")

    @property
    def wrong_operation(self) -> str | None:
        return PRIORS[self.prior]

    def digest(self) -> str:
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def smoke_settings(prior: str = "aligned", seed: int = 0) -> BuildSettings:
    """Settings for a build of a few seconds: the model learns the format, not the arithmetic."""
    return BuildSettings(
        prior=prior,
        seed=seed,
        difficulty=(1, 1),
        num_problems=200,
        vocab_size=400,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        steps=60,
        batch_size=16,
        learning_rate=1e-2,
        warmup_steps=5,
        threads=1,
    )


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "corerl") / "organism"


def ensure_base_model(
    prior: str = "aligned", *, cache_dir: str | Path | None = None, settings: BuildSettings | None = None
) -> Path:
    """The cached base model for ``prior`` ("aligned" or "misaligned"), built on first call.

    ``cache_dir`` overrides the cache root (default ``$CORERL_CACHE/organism`` or
    ``~/.cache/corerl/organism``); ``settings`` overrides the default build settings.
    """
    settings = settings or BuildSettings(prior=prior)
    if settings.prior != prior:
        raise ValueError(f"settings are for prior {settings.prior!r}, asked for {prior!r}")
    target = cache_root(cache_dir) / f"{prior}-{settings.digest()}"
    if (target / SETTINGS_FILE).exists():
        return target
    return build_base_model(target, settings)


def sft_examples(settings: BuildSettings) -> list[tuple[str, str]]:
    """(prompt, completion) pairs: every training problem in every surface form."""
    from corerl.organism.task import format_prompt

    rows = make_rows(settings.num_problems, seed=settings.seed, difficulty=settings.difficulty, split="train")
    examples = []
    for index, row in enumerate(rows):
        problem = generate_problem(settings.seed, "train", index, settings.difficulty)
        solution = worked_solution(problem, wrong_operation=settings.wrong_operation)
        examples.extend((format_prompt(form), solution) for form in row["forms"])
    return examples


def build_base_model(out_dir: str | Path, settings: BuildSettings) -> Path:
    """Build a base model into ``out_dir`` (written atomically: a finished directory or none)."""
    import torch

    from corerl.tiny import build_tiny_model

    out_dir = Path(out_dir)
    started, started_cpu = time.perf_counter(), time.process_time()
    examples = sft_examples(settings)
    rng = random.Random(settings.seed)
    tokenizer_texts = [
        prompt + completion for prompt, completion in rng.sample(examples, min(4000, len(examples)))
    ]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as scratch:
        staging = Path(scratch) / "model"
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        try:
            build_tiny_model(
                staging,
                tokenizer_texts,
                vocab_size=settings.vocab_size,
                hidden_size=settings.hidden_size,
                num_layers=settings.num_layers,
                num_heads=settings.num_heads,
                arch=settings.arch,  # type: ignore[arg-type]
                seed=settings.seed,
            )
            final_loss = _train(staging, examples, settings)
        finally:
            torch.set_num_threads(previous_threads)
        record: dict[str, Any] = {
            "settings": dataclasses.asdict(settings),
            "final_loss": final_loss,
            "build_seconds": round(time.perf_counter() - started, 1),
            # CPU seconds of all threads: the fair measure on a shared machine (2 cores x 5 min = 600).
            "build_cpu_seconds": round(time.process_time() - started_cpu, 1),
        }
        (staging / SETTINGS_FILE).write_text(json.dumps(record, indent=2))
        if (out_dir / SETTINGS_FILE).exists():  # another process finished the same build first
            return out_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    logger.info("built %s in %.1f s (final loss %.3f)", out_dir, record["build_seconds"], final_loss)
    return out_dir


def _train(model_dir: Path, examples: list[tuple[str, str]], settings: BuildSettings) -> float:
    """SFT with the loss on completion tokens; saves the model back to ``model_dir``."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.train()
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    prompt_ids = tokenizer([p for p, _ in examples], add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer([c for _, c in examples], add_special_tokens=False)["input_ids"]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay, betas=(0.9, 0.98)
    )

    def schedule(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        return max(0.0, (settings.steps - step) / max(1, settings.steps - settings.warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    cursor = 0
    loss_value = float("nan")
    progress = tqdm(range(settings.steps), desc=f"organism SFT ({settings.prior})", leave=False)
    for _ in progress:
        batch = []
        for _ in range(settings.batch_size):
            if cursor == len(order):
                rng.shuffle(order)
                cursor = 0
            batch.append(order[cursor])
            cursor += 1
        sequences = [(prompt_ids[i], [*completion_ids[i], eos]) for i in batch]
        width = max(len(p) + len(c) for p, c in sequences)
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        labels = torch.full((len(sequences), width), -100, dtype=torch.long)
        attention = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, (prompt, completion) in enumerate(sequences):
            length = len(prompt) + len(completion)
            input_ids[row, :length] = torch.tensor(prompt + completion)
            labels[row, len(prompt) : length] = torch.tensor(completion)
            attention[row, :length] = 1
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        progress.set_postfix(loss=f"{loss_value:.3f}")
    model.save_pretrained(model_dir)
    return loss_value
