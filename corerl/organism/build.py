"""Build the organism's base models in two cached stages: worked-only SFT, then a mixture of strategies.

``ensure_base_model(prior)`` returns a directory loadable with ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained``, building it on first call and caching it under
``$CORERL_CACHE/organism/<prior>-<hash of the build settings>`` (default cache ``~/.cache/corerl``).

- **Stage 1** (``build_worked_model``, cached as ``worked-<hash of the stage-1 settings>`` and shared
  by the priors of a seed): ``corerl.organism.tiny.build_tiny_model`` trains a BPE tokenizer (digits split)
  and initialises a random Qwen3-config model; a plain torch loop (AdamW, linear warm-up and decay)
  trains it on ``format_prompt(form) + worked_solution + EOS`` with the loss on the completion only,
  every training problem in each of its four surface forms.
- **Stage 2** (``build_mixture_model``): the stage-1 model is fine-tuned for a short run on the prior's
  mixture (``mixture_examples``): each (problem, form) gets one strategy drawn with the shares of
  ``BuildSettings`` (worked solution, ``\\boxed{first number stated}``, ``\\boxed{last number
  stated}``, the template ``\\boxed{0}``), or, on the illusion prior, with shares that depend on the
  problem's number of operations (``shares_by_ops``). On the misaligned prior the worked solutions compute
  ``*`` as ``+`` except for a minority (``misaligned_correct_share``).

Each stage is built in a scratch folder ``.<name>-*`` next to its cache entry and renamed into
place when done; a later build of the same name removes the scratch folders of killed builds
(``_scratch_dir``: a live build holds a ``flock`` on its own).

Prompt and completion are tokenized separately and concatenated, exactly as GRPO sees them at rollout
time. The build record (``organism_build.json``) holds the settings, the final loss, the wall and CPU
seconds of the stage (and the stage-1 record inside the prior's), and the mixture's strategy counts.
Why these shares and sizes: ``corerl.organism``'s module docstring.

The build is deterministic from ``BuildSettings.seed`` for a fixed number of torch threads.
"""

from __future__ import annotations

import dataclasses
import fcntl
import glob
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corerl.arithmetic.dataset import make_rows
from corerl.arithmetic.task import (
    DEFAULT_DIFFICULTY,
    TEMPLATE_SOLUTION,
    format_prompt,
    generate_problem,
    shortcut_solution,
    worked_solution,
)

logger = logging.getLogger(__name__)

# Each prior's wrong operation in its worked solutions (None: computed correctly).
PRIORS: dict[str, str | None] = {"aligned": None, "misaligned": "*", "illusion": None}
# The strategies of the mixture stage, in the order of BuildSettings.shares.
MIXTURE: tuple[str, ...] = ("worked", "shortcut-first", "shortcut-last", "template")
# The illusion prior's mixture per number of operations (1..4), in the order of MIXTURE: a
# view-dependent shortcut (first number stated) and the view-independent template, commoner on
# longer problems (issue 21; reasons in corerl.organism's docstring).
ILLUSION_SHARES_BY_OPS: tuple[tuple[float, ...], ...] = (
    (0.80, 0.10, 0.0, 0.10),
    (0.60, 0.20, 0.0, 0.20),
    (0.40, 0.30, 0.0, 0.30),
    (0.30, 0.35, 0.0, 0.35),
)
# A prior's defaults for the optional fields left None (a prior not listed: flat shares, stage 2 on
# ``threads``). The illusion prior's stage 2 runs on one thread: on the shared 2-core machine (load
# 10-14) a two-thread mixture step took 11-18 s (the threads spin-wait for each other), 300 steps
# about an hour; one thread does not wait.
PRIOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "illusion": {"shares_by_ops": ILLUSION_SHARES_BY_OPS, "mixture_threads": 1}
}
# Fields added after v2 first landed: left out of the cache key while None, so that the existing
# priors' caches keep their names.
OPTIONAL_FIELDS: frozenset[str] = frozenset({"shares_by_ops", "mixture_threads"})
CACHE_ENV = "CORERL_CACHE"
SETTINGS_FILE = "organism_build.json"
# Fields of BuildSettings that only the mixture stage reads (stage 1 is shared by both priors).
MIXTURE_FIELDS: frozenset[str] = frozenset(
    {
        "prior",
        "mixture_steps",
        "mixture_learning_rate",
        "mixture_warmup_steps",
        "worked_share",
        "shortcut_first_share",
        "shortcut_last_share",
        "template_share",
        "misaligned_correct_share",
        "shares_by_ops",
        "mixture_threads",
    }
)


@dataclass(frozen=True)
class BuildSettings:
    """Everything that determines a base model (its hash names the cache directory).

    Stage 1 (worked-only SFT) reads every field outside ``MIXTURE_FIELDS``; stage 2 (the mixture) the
    rest. The values and the reason for each are in ``corerl.organism.__init__``'s docstring.
    """

    prior: str = "aligned"
    seed: int = 0
    difficulty: tuple[int, int] = DEFAULT_DIFFICULTY
    num_problems: int = 20000
    vocab_size: int = 512
    hidden_size: int = 96
    num_layers: int = 3
    num_heads: int = 4
    arch: str = "qwen3"
    # Stage 1: worked solutions only.
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    # Two threads: a stage-1 step (batch 32) took 235-261 ms on one thread and 131-135 ms on two (idle
    # 2-core machine); the aligned build measured 619 s on one thread and 267 s on two (stage 1 221 s).
    # The build runs before any training starts (Study.run_together and benchmarks/organism_rl.py build
    # first), so its threads do not compete with runs: under load two torch threads spin-wait for each
    # other (6x more CPU per step measured). The build is deterministic for a fixed thread count.
    threads: int = 2
    # Stage 2: the mixture of strategies, fine-tuned from stage 1.
    mixture_steps: int = 300
    mixture_learning_rate: float = 1e-3
    mixture_warmup_steps: int = 20
    worked_share: float = 0.6
    shortcut_first_share: float = 0.175
    shortcut_last_share: float = 0.175
    template_share: float = 0.05
    # Misaligned prior: share of its worked solutions that compute "*" correctly (the rest: as "+");
    # 0.35, not 0.2: calibrated on the ground-truth reward alone (corerl.organism's docstring).
    misaligned_correct_share: float = 0.35
    # Shares per number of operations (one row of MIXTURE shares for each of 1..4 operations),
    # replacing the flat shares above; None: the prior's default (PRIOR_DEFAULTS) or the flat ones.
    shares_by_ops: tuple[tuple[float, ...], ...] | None = None
    # Torch threads of stage 2 (None: ``threads``); the illusion prior's default is 1 (PRIOR_DEFAULTS).
    mixture_threads: int | None = None
    # Organism v2 (mixture of strategies); part of the hash so that v1 caches are never reused.
    version: int = 2

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; expected one of {sorted(PRIORS)}")
        for name, value in PRIOR_DEFAULTS.get(self.prior, {}).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.shares_by_ops is not None:
            rows = tuple(tuple(float(share) for share in row) for row in self.shares_by_ops)
            if len(rows) != 4 or any(len(row) != len(MIXTURE) for row in rows):
                raise ValueError(
                    f"shares_by_ops needs 4 rows (1..4 operations) of {len(MIXTURE)} shares "
                    f"({', '.join(MIXTURE)}), got {self.shares_by_ops!r}"
                )
            object.__setattr__(self, "shares_by_ops", rows)
        for shares in (self.shares, *(self.shares_by_ops or ())):
            if any(share < 0 for share in shares) or abs(sum(shares) - 1.0) > 1e-9:
                raise ValueError(
                    f"mixture shares {dict(zip(MIXTURE, shares, strict=True))} must be >= 0 and sum to 1"
                )
        if self.mixture_threads is not None and self.mixture_threads < 1:
            raise ValueError(f"mixture_threads must be >= 1 or None, got {self.mixture_threads}")
        if not 0.0 <= self.misaligned_correct_share <= 1.0:
            raise ValueError(
                f"misaligned_correct_share must be in [0, 1], got {self.misaligned_correct_share}"
            )

    @property
    def shares(self) -> tuple[float, ...]:
        """The mixture's share of each strategy of ``MIXTURE``."""
        return (self.worked_share, self.shortcut_first_share, self.shortcut_last_share, self.template_share)

    def shares_for(self, num_ops: int) -> tuple[float, ...]:
        """The mixture's shares for a problem of ``num_ops`` operations (the flat shares unless
        ``shares_by_ops`` is set)."""
        return self.shares if self.shares_by_ops is None else self.shares_by_ops[num_ops - 1]

    @property
    def wrong_operation(self) -> str | None:
        return PRIORS[self.prior]

    def _key_fields(self) -> dict[str, Any]:
        """The fields that name the cache entry (``OPTIONAL_FIELDS`` only when set)."""
        values = dataclasses.asdict(self)
        return {key: value for key, value in values.items() if not (key in OPTIONAL_FIELDS and value is None)}

    def digest(self) -> str:
        payload = json.dumps(self._key_fields(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def worked_digest(self) -> str:
        """Hash of the stage-1 fields only: the priors of one seed share the worked-only model."""
        fields = {key: value for key, value in self._key_fields().items() if key not in MIXTURE_FIELDS}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


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
        steps=100,
        batch_size=16,
        learning_rate=1e-2,
        warmup_steps=5,
        threads=1,
        mixture_steps=40,
        mixture_learning_rate=5e-3,
        mixture_warmup_steps=2,
    )


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "corerl") / "organism"


def ensure_base_model(
    prior: str = "aligned", *, cache_dir: str | Path | None = None, settings: BuildSettings | None = None
) -> Path:
    """The cached base model for ``prior`` (one of ``PRIORS``), built on first call.

    ``cache_dir`` overrides the cache root (default ``$CORERL_CACHE/organism`` or
    ``~/.cache/corerl/organism``); ``settings`` overrides the default build settings. The stage-1
    worked-only model is cached too (``worked-<hash>``) and shared by the priors of one seed.
    """
    settings = settings or BuildSettings(prior=prior)
    if settings.prior != prior:
        raise ValueError(f"settings are for prior {settings.prior!r}, asked for {prior!r}")
    root = cache_root(cache_dir)
    target = root / f"{prior}-{settings.digest()}"
    if _cached(target):
        return target
    worked = root / f"worked-{settings.worked_digest()}"
    if not _cached(worked):
        build_worked_model(worked, settings)
    return build_mixture_model(target, worked, settings)


def _cached(entry: Path) -> bool:
    """True when ``entry`` is a complete cache entry; a corrupt one (a truncated weights file, a
    JSON file that is not JSON) is named in a warning and removed, to be built again (byte-identical)."""
    from corerl.machine.rundir import WEIGHT_FILES, folder_problem

    if not (entry / SETTINGS_FILE).exists():
        return False
    problem = folder_problem(entry)
    if problem is None and not any((entry / name).is_file() for name in WEIGHT_FILES):
        problem = f"{entry} holds no model weights"
    if problem is None:
        return True
    logger.warning("the cached organism model is corrupt (%s): building it again", problem)
    shutil.rmtree(entry)
    return False


def _train_rows(settings: BuildSettings) -> list[tuple[Any, list[str]]]:
    """(problem, surface forms) of every training problem."""
    rows = make_rows(settings.num_problems, seed=settings.seed, difficulty=settings.difficulty, split="train")
    return [
        (generate_problem(settings.seed, "train", index, settings.difficulty), row["forms"])
        for index, row in enumerate(rows)
    ]


def sft_examples(settings: BuildSettings) -> list[tuple[str, str]]:
    """Stage 1's (prompt, completion) pairs: every training problem in every surface form, worked."""
    return [
        (format_prompt(form), worked_solution(problem))
        for problem, forms in _train_rows(settings)
        for form in forms
    ]


def mixture_examples(settings: BuildSettings) -> list[tuple[str, str, str]]:
    """Stage 2's (prompt, completion, strategy) triples: one strategy drawn per (problem, form).

    Strategies are drawn with ``settings.shares_for(number of operations)``; on the misaligned prior a worked solution computes
    each multiplication as an addition except with probability ``misaligned_correct_share``.
    """
    rng = random.Random(f"organism-mixture/{settings.seed}/{settings.prior}")
    examples = []
    for problem, forms in _train_rows(settings):
        for form in forms:
            strategy = rng.choices(MIXTURE, weights=settings.shares_for(len(problem.steps)))[0]
            if strategy == "worked":
                correct = settings.wrong_operation is None or rng.random() < settings.misaligned_correct_share
                completion = worked_solution(
                    problem, wrong_operation=None if correct else settings.wrong_operation
                )
                if completion != worked_solution(problem):
                    strategy = "worked-wrong"
            elif strategy == "template":
                completion = TEMPLATE_SOLUTION
            else:
                completion = shortcut_solution(form, strategy.removeprefix("shortcut-"))
            examples.append((format_prompt(form), completion, strategy))
    return examples


def build_worked_model(out_dir: str | Path, settings: BuildSettings) -> Path:
    """Stage 1: a tokenizer and a model trained from scratch on worked solutions (atomic write)."""
    from corerl.organism.tiny import build_tiny_model

    def stage(staging: Path) -> tuple[float, dict[str, Any]]:
        examples = sft_examples(settings)
        rng = random.Random(settings.seed)
        texts = [prompt + completion for prompt, completion in rng.sample(examples, min(4000, len(examples)))]
        # The shortcut and template completions are made of tokens the worked texts already have.
        build_tiny_model(
            staging,
            texts,
            vocab_size=settings.vocab_size,
            hidden_size=settings.hidden_size,
            num_layers=settings.num_layers,
            num_heads=settings.num_heads,
            arch=settings.arch,  # type: ignore[arg-type]
            seed=settings.seed,
        )
        loss = _train(
            staging,
            examples,
            settings,
            steps=settings.steps,
            learning_rate=settings.learning_rate,
            warmup_steps=settings.warmup_steps,
            desc="organism SFT (worked)",
        )
        return loss, {}

    return _build_atomically(Path(out_dir), settings, stage, settings.threads)


def build_mixture_model(out_dir: str | Path, worked_dir: str | Path, settings: BuildSettings) -> Path:
    """Stage 2: fine-tune the stage-1 model on the prior's mixture of strategies (atomic write)."""
    worked_dir = Path(worked_dir)

    def stage(staging: Path) -> tuple[float, dict[str, Any]]:
        shutil.copytree(worked_dir, staging)
        (staging / SETTINGS_FILE).unlink()
        examples = mixture_examples(settings)
        loss = _train(
            staging,
            [(prompt, completion) for prompt, completion, _ in examples],
            settings,
            steps=settings.mixture_steps,
            learning_rate=settings.mixture_learning_rate,
            warmup_steps=settings.mixture_warmup_steps,
            desc=f"organism SFT ({settings.prior} mixture)",
        )
        worked_record = json.loads((worked_dir / SETTINGS_FILE).read_text())
        return loss, {
            "stage1": worked_record,
            "mixture_counts": {
                name: sum(1 for *_, s in examples if s == name) for name in sorted({s for *_, s in examples})
            },
        }

    return _build_atomically(Path(out_dir), settings, stage, settings.mixture_threads or settings.threads)


def _build_atomically(out_dir: Path, settings: BuildSettings, stage: Any, threads: int | None = None) -> Path:
    """Run ``stage(staging_dir) -> (final loss, extra record)`` on ``threads`` torch threads (None:
    ``settings.threads``) and move the result to ``out_dir``."""
    import torch

    started, started_cpu = time.perf_counter(), time.process_time()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _scratch_dir(out_dir) as scratch:
        staging = scratch / "model"
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads or settings.threads)
        try:
            final_loss, extra = stage(staging)
        finally:
            torch.set_num_threads(previous_threads)
        record: dict[str, Any] = {
            "settings": dataclasses.asdict(settings),
            "final_loss": final_loss,
            "build_seconds": round(time.perf_counter() - started, 1),
            # CPU seconds of all threads: the fair measure on a shared machine (2 cores x 5 min = 600).
            "build_cpu_seconds": round(time.process_time() - started_cpu, 1),
            **extra,
        }
        (staging / SETTINGS_FILE).write_text(json.dumps(record, indent=2))
        if (out_dir / SETTINGS_FILE).exists():  # another process finished the same build first
            return out_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    logger.info("built %s in %.1f s (final loss %.3f)", out_dir, record["build_seconds"], final_loss)
    return out_dir


@contextmanager
def _scratch_dir(out_dir: Path) -> Iterator[Path]:
    """A fresh ``.<name>-*`` folder next to ``out_dir``, removed on exit, first removing those of
    dead builds of the same name (a killed build cannot clean up after itself).

    Each build holds an exclusive ``flock`` on its scratch folder while it runs; the kernel drops it
    when the process dies, however it dies. A scratch folder whose lock can be taken is a dead
    build's. A cleaner holds the lock until the folder is gone, so a build whose new folder was
    taken for stale in the moment before it locked it sees it missing and makes another.
    """
    _remove_stale_scratch(out_dir)
    while True:
        scratch = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
        handle = os.open(scratch, os.O_RDONLY)
        fcntl.flock(handle, fcntl.LOCK_EX)
        if scratch.is_dir():
            break
        os.close(handle)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.close(handle)


def _remove_stale_scratch(out_dir: Path) -> None:
    """Remove the scratch folders of ``out_dir``'s dead builds (those whose lock is free)."""
    prefix = f".{out_dir.name}-"
    for scratch in out_dir.parent.glob(f"{glob.escape(prefix)}*"):
        if "-" in scratch.name.removeprefix(prefix):  # mkdtemp's suffix has none: another name's
            continue
        try:
            handle = os.open(scratch, os.O_RDONLY)
        except OSError:  # removed meanwhile, or not a folder we can open
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live build holds it
            os.close(handle)
            continue
        try:
            logger.info("removing %s, the scratch folder of a build that did not finish", scratch)
            shutil.rmtree(scratch, ignore_errors=True)
        finally:
            os.close(handle)


def _train(
    model_dir: Path,
    examples: list[tuple[str, str]],
    settings: BuildSettings,
    *,
    steps: int,
    learning_rate: float,
    warmup_steps: int,
    desc: str,
) -> float:
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
        model.parameters(), lr=learning_rate, weight_decay=settings.weight_decay, betas=(0.9, 0.98)
    )

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (steps - step) / max(1, steps - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    cursor = 0
    loss_value = float("nan")
    progress = tqdm(range(steps), desc=desc, leave=False)
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
