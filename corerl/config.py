"""One training run = one small config: the ``TrainConfig`` dataclass, its profiles and its YAML form.

Profiles are presets of the same dataclass (open-r1 style): ``tiny`` trains on a CPU with a small
model built locally, ``t4`` is Unsloth 4-bit QLoRA in fp16 with HF generation for a 15 GB T4, ``a100`` the
same for a larger card. ``load_config`` takes a profile name or a YAML file (which may name a
``profile`` to start from) plus keyword overrides; unknown keys and bad values fail with a message
naming them. Light module: no torch import.

The fields are declared in groups (``CONFIG_GROUPS``: run, dataset, sampling, optimisation, teacher,
mitigations, evaluation, machine, outputs), each named in its field's metadata; code reads them flat
(``config.learning_rate``). ``to_yaml`` writes them nested by group; ``load_config`` and ``from_yaml``
read nested, flat (``configs/``, runs written before the groups) or mixed mappings.

>>> config = load_config("tiny", method="entropy", max_steps=3)
>>> config.method, config.profile, config.max_steps, config.use_cpu
('entropy', 'tiny', 3, True)
>>> load_config("t4").precision
'fp16'
>>> from_yaml(to_yaml(config)) == config
True

The SRT mitigations are options of the same config (``corerl.mitigations`` applies them);
``offline_labels`` turns a majority-vote run into an ``offline-labels`` run:

>>> load_config("tiny", offline_labels=True).method
'offline-labels'
>>> load_config("tiny", early_stopping=True, curriculum_fraction=1 / 3).curriculum_samples
32
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corerl.config_checks import short_repr
from corerl.rewards import REWARDS, VIEW_METHODS

# Every method is a reward of corerl.rewards.REWARDS; "offline-labels" (SRT's offline labels, a
# mitigation) needs an ``offline_label`` column, which ``--offline-labels`` makes.
METHODS: tuple[str, ...] = tuple(REWARDS)
# The methods that train on a dataset as it is (all but offline-labels).
STUDY_METHODS: tuple[str, ...] = tuple(method for method in METHODS if method != "offline-labels")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")
# The loss types whose normaliser is a token count, so that splitting by view gives a sum of token-means
# (Co-rewarding-I's two views, corerl.engine.pairs).
VIEW_LOSS_TYPES = ("dapo", "bnpo")
# The organism's data names (corerl.engine.dataset.ORGANISM_DATA: the generated train and test splits).
ORGANISM_DATA_NAMES: tuple[str, ...] = ("organism", "organism-test")
TEST_TIME_MAX_QUESTIONS = 128  # arXiv 2603.08660: training sets of <= 128 questions do not collapse
TUPLE_FIELDS: tuple[str, ...] = ("callbacks", "dataset_transforms", "eval_sets")

# The GPU profiles' KL coefficient for every method: the Co-rewarding paper trains all baselines under one
# setup with a low-variance KL loss to a reference (App. C.2); 0.005 is its Co-rewarding-I scripts' value
# (TRL's k3 estimator is verl's low_var_kl). Its Co-rewarding-II script uses 0.001: a departure for II.
GPU_BETA = 0.005
# The Co-rewarding paper's instruction (App. C.2; verl's data_preprocess/math_dataset.py), the default
# of the GPU profiles and of evaluation. Placement: appended to the question in the user turn, as in
# Co-rewarding-II's data (Co-rewarding-I's data puts the same sentence in a system prompt instead).
CO_REWARDING_PROMPT = "{question} Let's think step by step and output the final answer within \\boxed{}."
# Qwen2.5-Math's instruction, kept as the named option "qwen-math" (not the Co-rewarding paper's).
QWEN_MATH_PROMPT = "{question}\nPlease reason step by step, and put your final answer within \\boxed{}."
MATH_PROMPT = CO_REWARDING_PROMPT
# The organism's input format (corerl.arithmetic.task.format_prompt): plain text, no chat template.
ORGANISM_PROMPT = "Problem: {question}\nSolution:\n"
# Named prompt templates: ``prompt_template: qwen-math`` in a config (or ``corerl eval --prompt-template``).
PROMPT_TEMPLATES: dict[str, str] = {
    "co-rewarding": CO_REWARDING_PROMPT,
    "qwen-math": QWEN_MATH_PROMPT,
    "organism": ORGANISM_PROMPT,
}


def resolve_prompt(template: str) -> str:
    """A template's text: a name of ``PROMPT_TEMPLATES`` is replaced by its text, any other string kept.

    >>> resolve_prompt("qwen-math").startswith("{question}\\nPlease reason step by step")
    True
    >>> resolve_prompt("Q: {question}")
    'Q: {question}'
    """
    return PROMPT_TEMPLATES.get(template, template)


# The groups of TrainConfig's fields, in the order of the YAML form: each field names its group in its
# metadata (``group(...)``), and ``config.yaml`` is written nested by group. Code reads the fields flat
# (``config.learning_rate``); files and keyword overrides may give them flat too.
CONFIG_GROUPS: tuple[str, ...] = (
    "run",
    "dataset",
    "sampling",
    "optimisation",
    "teacher",
    "mitigations",
    "evaluation",
    "machine",
    "outputs",
)


def group(name: str, default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING) -> Any:
    """A ``TrainConfig`` field of group ``name`` (its section of the YAML form)."""
    if name not in CONFIG_GROUPS:
        raise ValueError(f"unknown config group {name!r} (choose from {', '.join(CONFIG_GROUPS)})")
    return field(default=default, default_factory=factory, metadata={"group": name})


@dataclass(frozen=True)
class TrainConfig:
    """Everything one run needs. ``model``/``data`` = None means "the profile's default".

    The fields are declared in groups (``CONFIG_GROUPS``), each named in its field's metadata.
    """

    # --- run: what is trained, from which model, with which seed, written where ---
    method: str = group("run", "majority-vote")
    profile: str = group("run", "tiny")
    model: str | None = group(
        "run", None
    )  # hub id or local path; None: tiny -> the organism's aligned base model
    organism_prior: str = group(
        "run", "aligned"
    )  # which organism base model the tiny profile uses by default
    seed: int = group("run", 0)
    output_dir: str | None = group("run", None)  # None: runs/<method>-<profile>-seed<seed>

    # --- dataset: the training questions and their prompt ---
    data: str = group("dataset", "organism")  # corerl.data name, a file path, or "organism"
    data_limit: int | None = group(
        "dataset", None
    )  # keep only the first N training questions (organism: make N)
    # Organism data only: the training problems' number of operations, "low-high" or one number
    # (e.g. "3-4", SRT's hard-set condition); None: the default 1-3 mix.
    organism_difficulty: str | None = group("dataset", None)
    # Longest prompt trained on (verl's data.max_prompt_length); longer ones are dropped and counted
    # (corerl.engine.lengths). None: whatever the sequence limit leaves after max_completion_length.
    max_prompt_length: int | None = group("dataset", None)
    # "{question}" is replaced by the question text; a name of PROMPT_TEMPLATES gives that template
    prompt_template: str = group("dataset", ORGANISM_PROMPT)
    chat: bool = group(
        "dataset", False
    )  # wrap the prompt as a user message and apply the tokenizer's chat template
    # Dataset transforms, as "module:function" paths; function(dataset, config) -> dataset, applied
    # first, before the mitigations below and the column checks.
    dataset_transforms: tuple[str, ...] = group("dataset", factory=tuple)

    # --- sampling: the rollouts of a step ---
    questions_per_step: int = group(
        "sampling", 4
    )  # distinct questions per optimizer step (Co-rewarding-I: 2 views each)
    num_generations: int = group("sampling", 8)  # rollouts per prompt (G), as in the papers
    max_completion_length: int = group("sampling", 48)  # organism solutions: median 27, at most ~40 tokens
    temperature: float = group("sampling", 1.0)

    # --- optimisation: the GRPO update ---
    max_steps: int = group("optimisation", 100)
    learning_rate: float = group("optimisation", 1e-4)
    lr_scheduler_type: str = group("optimisation", "constant")
    warmup_steps: int = group("optimisation", 0)
    weight_decay: float = group("optimisation", 0.0)
    max_grad_norm: float = group("optimisation", 1.0)
    # KL coefficient, one per profile for every method (a difference in results is a difference in
    # reward); Co-rewarding-II uses its EMA teacher as the reference, the others the frozen base model.
    beta: float = group("optimisation", 0.0)
    loss_type: str = group(
        "optimisation", "dapo"
    )  # TRL's token-level mean (as verl's token-mean in the Co-rewarding code)
    scale_rewards: str = group("optimisation", "group")  # GRPO: divide advantages by the group's std
    gradient_accumulation_steps: int = group("optimisation", 1)
    # Rollouts per forward/backward pass: a step's rollouts (generated in one batch) are trained in
    # micro-batches of this many (gradient accumulation; DAPO's token-mean loss is unchanged by it), so
    # the log-probabilities of 32-64 rollouts x 151,936-word logits never sit in memory at once.
    # None: all of a step's rollouts in one pass (gradient_accumulation_steps applies).
    micro_batch_rollouts: int | None = group("optimisation", None)
    # TRL's multiple updates per rollout batch, so that GRPO's ratio moves off 1 and its clip can bind
    # (the Spurious Rewards mechanism, arXiv 2506.10947: 8 minibatch updates per rollout batch).
    # steps_per_generation: optimizer steps per generation batch, each on its own slice of it (None:
    # one generation per step); num_iterations: passes over each slice.
    # With more than one step per generation, metrics.jsonl repeats that generation's rollout figures
    # on each of its steps, and Co-rewarding-II's EMA moves once per generation batch; checkpoints and
    # time-budget stops fall on generation boundaries only (exact resume: corerl.engine.budget).
    steps_per_generation: int | None = group("optimisation", None)
    num_iterations: int = group("optimisation", 1)

    # --- teacher: the method's own settings (Co-rewarding-II and -III) ---
    # Co-rewarding-II teacher: alpha_k = end + 0.5 (start - end)(1 + cos(pi k / T))
    teacher_alpha_start: float = group("teacher", 0.01)
    teacher_alpha_end: float = group("teacher", 1e-5)

    # --- mitigations: SRT's (arXiv 2505.21444 Sec. 5) and test-time training (corerl.mitigations) ---
    # Early stopping: a labelled slice (validation_fraction of the data, at least one question) is
    # removed from the training set and scored greedily every early_stopping_eval_steps steps (a
    # shorter run: once, at its last step); each new best is checkpointed; training stops after
    # early_stopping_patience evaluations without one. The only place a label-free run reads labels;
    # the dataset needs an answer column. History and best checkpoint: <run>/early_stopping.json.
    early_stopping: bool = group("mitigations", False)
    validation_fraction: float = group("mitigations", 0.01)
    early_stopping_eval_steps: int = group("mitigations", 10)
    early_stopping_patience: int = group("mitigations", 3)
    # Offline labels: the frozen base model votes once over offline_label_samples samples per question
    # (temperature 1.0), cached in <run>/offline_labels.json, and training rewards agreement with
    # that fixed label. Switches method majority-vote to offline-labels (the only methods allowed).
    offline_labels: bool = group("mitigations", False)
    offline_label_samples: int = group("mitigations", 8)
    # Curriculum: keep the easiest curriculum_fraction of the training set, ranked by the base model's
    # majority-answer share over curriculum_samples samples at temperature 1.0 (label-free; SRT: a
    # third, 32 samples), cached in <run>/curriculum_votes.json. None: no curriculum.
    curriculum_fraction: float | None = group("mitigations", None)
    curriculum_samples: int = group("mitigations", 32)
    # Vote only where the run can use it (the GPU profiles: 7,500 MATH questions x 32 samples would take
    # days on a T4): offline labels for the max_steps x questions_per_step questions the run sees, the
    # curriculum over that many divided by curriculum_fraction; a seeded sample, label-free.
    votes_for_seen_questions: bool = group("mitigations", False)
    # Test-time training (TTRL): train a label-free method on at most test_time_questions (<= 128)
    # questions of `data` (a test set, e.g. math500 or organism-test), then evaluate on the same
    # questions before/after training (<run>/test_time_eval.csv, when the set has answers).
    # Departure: TTRL votes over 64 samples and trains on 32 of them; here the vote and the training
    # use the same num_generations rollouts (no separate vote count).
    test_time_training: bool = group("mitigations", False)
    test_time_questions: int = group("mitigations", 128)

    # --- evaluation: held-out evaluation during training (corerl.engine.heldout) ---
    # The policy's avg@k on eval_size held-out problems x eval_samples samples (the study's evaluation:
    # the organism's held-out split, else MATH-500), logged at step 0 and every eval_every steps (and the
    # last) as heldout/... columns of metrics.jsonl; 0 = off. eval_sets names additional sets
    # (heldout_NAME/... columns).
    eval_every: int = group("evaluation", 0)
    eval_size: int = group("evaluation", 200)
    eval_samples: int = group("evaluation", 4)
    eval_sets: tuple[str, ...] = group("evaluation", factory=tuple)

    # --- machine: hardware, model loading and the session's wall clock ---
    use_cpu: bool = group("machine", True)
    # torch CPU threads for a CPU run (None: torch's default). Tiny models run fastest on one thread:
    # measured here, 2 threads on a busy 2-core machine made a LoRA step 20x slower.
    cpu_threads: int | None = group("machine", 1)
    precision: str = group("machine", "fp32")
    lora: bool = group("machine", False)
    lora_rank: int = group("machine", 16)
    lora_alpha: int = group("machine", 32)
    load_in_4bit: bool = group("machine", False)
    use_unsloth: bool = group("machine", False)  # used only when CUDA is present
    use_vllm: bool = group("machine", False)  # used only when CUDA is present and vllm is importable
    vllm_gpu_memory_utilization: float = group("machine", 0.3)
    gradient_checkpointing: bool = group("machine", False)
    # Wall-clock budget of one call in minutes (None: none). When reached, the run saves a checkpoint
    # and ends as an interrupted run (no final/); the next call with resume continues it, with a fresh
    # budget. A free Colab session lasts at most 12 hours.
    time_budget_minutes: float | None = group("machine", None)

    # --- outputs: checkpoints, samples, progress and extra callbacks ---
    save_steps: int = group("outputs", 10)
    save_total_limit: int | None = group("outputs", 2)
    sample_every: int = group("outputs", 10)  # write samples.jsonl rows every K steps
    samples_per_step: int = group("outputs", 4)
    progress: bool = group("outputs", True)
    # Extra TrainerCallbacks, as "module:factory" import paths; factory(config) -> TrainerCallback.
    callbacks: tuple[str, ...] = group("outputs", factory=tuple)

    def __post_init__(self) -> None:
        from corerl.config_checks import check_fields

        typed = check_fields(self)  # every field against its annotation and range (corerl.config_checks)
        if typed:
            raise ValueError("invalid training config: " + "; ".join(typed))
        object.__setattr__(self, "prompt_template", resolve_prompt(self.prompt_template))
        if self.offline_labels and self.method == "majority-vote":
            object.__setattr__(self, "method", "offline-labels")  # SRT: vote once, then fixed labels
        problems = []
        if self.method not in METHODS:
            problems.append(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.profile not in PROFILES:
            problems.append(f"unknown profile {self.profile!r} (choose from {', '.join(PROFILES)})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.num_generations < 2:
            problems.append("num_generations must be >= 2 (GRPO normalises within a group)")
        for name in (
            "max_steps",
            "questions_per_step",
            "max_completion_length",
            "save_steps",
            "sample_every",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_prompt_length is not None and self.max_prompt_length < 1:
            problems.append(f"max_prompt_length must be >= 1 or None, got {self.max_prompt_length}")
        if self.micro_batch_rollouts is not None and self.micro_batch_rollouts < 1:
            problems.append(f"micro_batch_rollouts must be >= 1 or None, got {self.micro_batch_rollouts}")
        if self.time_budget_minutes is not None and not self.time_budget_minutes > 0:
            problems.append(f"time_budget_minutes must be > 0 or None, got {self.time_budget_minutes}")
        if self.num_iterations < 1:
            problems.append(f"num_iterations must be >= 1, got {self.num_iterations}")
        if self.steps_per_generation is not None and self.steps_per_generation < 1:
            problems.append(f"steps_per_generation must be >= 1 or None, got {self.steps_per_generation}")
        if self.eval_sets and self.eval_every == 0:
            problems.append("eval_sets needs eval_every > 0 (held-out evaluation is off at 0)")
        if self.load_in_4bit and self.use_cpu:
            problems.append(
                "load_in_4bit needs a CUDA GPU (bitsandbytes); with use_cpu: true set load_in_4bit: false"
            )
        if "{question}" not in self.prompt_template:
            problems.append("prompt_template must contain {question}")
        if self.method in VIEW_METHODS and self.loss_type not in VIEW_LOSS_TYPES:
            problems.append(  # Co-rewarding-I sums one token-mean per view (corerl.engine.pairs)
                f"{self.method} needs a token-mean loss_type ({', '.join(VIEW_LOSS_TYPES)}), got {self.loss_type!r}"
            )
        if not 0.0 <= self.teacher_alpha_end <= self.teacher_alpha_start <= 1.0:
            problems.append("need 0 <= teacher_alpha_end <= teacher_alpha_start <= 1")
        problems += self._mitigation_problems()
        if self.organism_difficulty is not None:
            problems += _organism_difficulty_problems(self.organism_difficulty, self.data)
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))
        for name in TUPLE_FIELDS:
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def _mitigation_problems(self) -> list[str]:
        problems = []
        for name in (
            "early_stopping_eval_steps",
            "early_stopping_patience",
            "offline_label_samples",
            "curriculum_samples",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.validation_fraction < 1.0:
            problems.append(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.curriculum_fraction is not None and not 0.0 < self.curriculum_fraction <= 1.0:
            problems.append(f"curriculum_fraction must be in (0, 1] or None, got {self.curriculum_fraction}")
        if not 1 <= self.test_time_questions <= TEST_TIME_MAX_QUESTIONS:
            problems.append(
                f"test_time_questions must be in [1, {TEST_TIME_MAX_QUESTIONS}] (larger sets collapse, "
                f"arXiv 2603.08660), got {self.test_time_questions}"
            )
        if self.offline_labels and self.method != "offline-labels":
            problems.append(
                f"offline_labels replaces the majority-vote reward; it cannot be used with method {self.method!r}"
            )
        if self.test_time_training and self.method == "ground-truth":
            problems.append(
                "test_time_training trains a label-free method; ground-truth would read test labels"
            )
        period = (self.steps_per_generation or 1) * self.num_iterations
        if self.early_stopping and self.early_stopping_eval_steps % period:
            problems.append(  # its best checkpoints must fall where no rollout is buffered (exact resume)
                f"early_stopping_eval_steps ({self.early_stopping_eval_steps}) must be a multiple of the "
                f"optimizer steps per generation batch (steps_per_generation x num_iterations = {period})"
            )
        if self.test_time_training and self.early_stopping:
            problems.append("test_time_training cannot use early_stopping: it would score on test labels")
        return problems

    @property
    def organism_operations(self) -> tuple[int, int] | None:
        """``organism_difficulty`` as an inclusive (low, high) range of operations (None: the default).

        >>> TrainConfig(organism_difficulty="3-4").organism_operations, TrainConfig().organism_operations
        ((3, 4), None)
        """
        return None if self.organism_difficulty is None else _parse_operations(self.organism_difficulty)

    @property
    def run_dir(self) -> Path:
        """Where the run writes: ``output_dir`` or ``runs/<method>-<profile>-seed<seed>``."""
        return Path(self.output_dir or f"runs/{self.method}-{self.profile}-seed{self.seed}")

    def format_prompt(self, question: str) -> str:
        """The prompt text for a question (before any chat template).

        >>> TrainConfig().format_prompt("1 + 1?")
        'Problem: 1 + 1?\\nSolution:\\n'
        """
        return self.prompt_template.replace("{question}", question)


def _parse_operations(text: str) -> tuple[int, int]:
    """``"3-4"`` -> (3, 4), ``"2"`` -> (2, 2); ValueError when not 1..4 with low <= high."""
    from corerl.arithmetic.task import parse_difficulty

    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise ValueError(f"organism_difficulty must be 'low-high' or one number, got {text!r}") from None
    return parse_difficulty(bounds)


def _organism_difficulty_problems(text: str, data: str) -> list[str]:
    if data not in ORGANISM_DATA_NAMES:
        return [f"organism_difficulty applies to the organism data only, not data {data!r}"]
    try:
        _parse_operations(text)
    except ValueError as error:
        return [f"organism_difficulty: {error}"]
    return []


PROFILES: dict[str, dict[str, Any]] = {
    # CPU, fp32, the organism's tiny base model and data; seconds per step. RL settings calibrated on
    # the ground-truth and random rewards only (issue 11; reasons in corerl.organism's docstring).
    "tiny": {
        "learning_rate": 1e-5,
        "warmup_steps": 5,
        "max_steps": 50,
        "questions_per_step": 4,
        "beta": 0.0,
        # Held-out curve on the study's evaluation set (200 held-out problems x 4 samples at T = 0.8):
        # 5.1-6.0 s of CPU an evaluation on one thread (18-26 s wall on this project's loaded 2-core
        # machine; python benchmarks/heldout.py), 6 in a 50-step run: a default majority-vote run took
        # 60 s of CPU with them and 33 s without (178 s and 92 s wall, same weights), 2026-12-06.
        "eval_every": 10,
    },
    # Free Colab/Kaggle T4 (15 GB, no bf16): Unsloth 4-bit QLoRA in fp16, HF generation. Sized so that
    # every notebook fits 3 T4-hours and all of them 30 (corerl plan --profile t4, corerl/tools/plan.py).
    # Qwen3-1.7B-Base is the paper's Table 7 model; a smaller Qwen3 saves little here, since HF decoding
    # time is set by the 28 layers both sizes have, not by their width.
    "t4": {
        "model": "unsloth/Qwen3-1.7B-Base",
        "data": "math-train",
        "questions_per_step": 4,  # 32 rollouts a step (Co-rewarding-I: 64, both views)
        "num_generations": 8,
        "max_completion_length": 512,  # cuts the longest MATH solutions: a free-tier compromise
        # Bounds a step's KV cache: Co-rewarding-I decodes 64 rollouts at once (4 questions x 2 views x
        # G = 8), so 64 x (512 + 512) tokens x 114,688 B (Qwen3-1.7B's fp16 KV per token, 28 layers x 8 KV
        # heads x 128 x 2 x 2 B) = 7.5 GB at most, beside the 4-bit model on a 15 GB T4; with the 1,024
        # tokens Unsloth's max_seq_length leaves, one long question made it ~11 GB
        # (tests/test_plan.py::test_t4_rollouts_kv_cache_fits_its_budget). Longer prompts are dropped:
        # 104 of math-train's 7,500 questions (1.4%; median 97 tokens) and 21 rephrasings, counted with
        # the chat template and SmolLM2-135M's tokenizer (a stand-in: Qwen3's is not available offline).
        "max_prompt_length": 512,
        "learning_rate": 5e-6,
        "beta": GPU_BETA,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 3,
        "max_steps": 30,
        "micro_batch_rollouts": 8,  # log-probs of 8 rollouts at a time: 64 rollouts fit 15 GB
        # ~1.6x the longest planned training (Co-rewarding-III, ~74 min estimated by corerl plan: both views
        # and the teacher's slower decode; Co-rewarding-II ~60): checkpoint, stop, resume
        "time_budget_minutes": 120.0,
        "prompt_template": MATH_PROMPT,
        "chat": True,
        "use_cpu": False,
        "cpu_threads": None,
        "precision": "fp16",
        "lora": True,
        "lora_rank": 16,  # ~210 MB per checkpoint with Adam state (rank 32: ~420 MB), see save_steps
        "lora_alpha": 32,
        "load_in_4bit": True,
        "use_unsloth": True,
        "use_vllm": False,  # not installed by the install cell (docs/t4.md: why); True uses it when importable
        "vllm_gpu_memory_utilization": 0.35,
        "gradient_checkpointing": True,
        # One checkpoint kept, written every 15 steps and at a time-budget stop: files deleted through
        # Colab's Drive mount stay in Drive's trash and count against the 15 GB free quota.
        "save_steps": 15,
        "save_total_limit": 1,
        "sample_every": 5,
        "curriculum_samples": 8,  # SRT: 32; 8 keeps notebook 05 inside 3 T4-hours
        "votes_for_seen_questions": True,
        # Held-out curve off by default: 32 MATH-500 questions x 1 sample, one batch of 32 at 512 tokens,
        # is about 34 s an evaluation (an ESTIMATE from corerl.tools.plan's cost model, not measured), so
        # eval_every 10 adds 4 evaluations, ~2.3 min, to a 30-step run: notebook 01 (5 runs, 2.9
        # planned T4-hours) would pass its 3-hour budget. Set eval_every to draw the curve.
        "eval_every": 0,
        "eval_size": 32,
        "eval_samples": 1,
    },
    # A100/H100: bf16, larger batches and completions, same recipe.
    "a100": {
        "model": "unsloth/Qwen3-1.7B-Base",
        "data": "math-train",
        "questions_per_step": 16,
        "num_generations": 8,
        "max_completion_length": 2048,
        "learning_rate": 3e-6,
        "beta": GPU_BETA,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 10,
        "max_steps": 500,
        "prompt_template": MATH_PROMPT,
        "chat": True,
        "use_cpu": False,
        "cpu_threads": None,
        "precision": "bf16",
        "lora": True,
        "lora_rank": 64,
        "lora_alpha": 128,
        "load_in_4bit": False,
        "use_unsloth": True,
        "use_vllm": True,
        "vllm_gpu_memory_utilization": 0.5,
        "gradient_checkpointing": True,
        "save_steps": 50,
        "sample_every": 10,
        "votes_for_seen_questions": True,
    },
}

FIELD_NAMES: frozenset[str] = frozenset(f.name for f in dataclasses.fields(TrainConfig))
FIELD_GROUPS: dict[str, str] = {f.name: f.metadata["group"] for f in dataclasses.fields(TrainConfig)}
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(field_name for field_name, group_name in FIELD_GROUPS.items() if group_name == name)
    for name in CONFIG_GROUPS
}


def flatten(values: dict[Any, Any], source: str) -> dict[Any, Any]:
    """The fields of a config mapping, flat: each group's mapping (the nested form ``config.yaml`` is
    written in) is opened into its fields; flat keys (configs written before the groups, ``configs/``,
    keyword overrides) are kept as they are. ValueError naming ``source`` and the key for a key a group
    does not hold, a group that is not a mapping, or a field given twice.

    >>> flatten({"profile": "tiny", "optimisation": {"learning_rate": 1e-5}}, "run.yaml")
    {'profile': 'tiny', 'learning_rate': 1e-05}
    >>> flatten({"optimisation": {"lr": 1e-5}}, "run.yaml")
    Traceback (most recent call last):
    ValueError: run.yaml: unknown key 'lr' in group optimisation (its keys: max_steps, learning_rate, ...)
    """
    flat: dict[Any, Any] = {}

    def put(name: Any, value: Any) -> None:
        if name in flat:
            raise ValueError(f"{source}: {short_repr(name)} is given twice (flat and in its group)")
        flat[name] = value

    for key, value in values.items():
        if key not in GROUP_FIELDS:  # group names are not field names (tests/test_config.py)
            put(key, value)
            continue
        if not isinstance(value, dict):
            raise ValueError(
                f"{source}: group {key} must be a mapping of its fields, got {short_repr(value)}"
            )
        for name, inner in value.items():
            if FIELD_GROUPS.get(name) != key:
                home = f"; {name} belongs to group {FIELD_GROUPS[name]}" if name in FIELD_GROUPS else ""
                keys = ", ".join(GROUP_FIELDS[key][:2]) + (", ..." if len(GROUP_FIELDS[key]) > 2 else "")
                raise ValueError(
                    f"{source}: unknown key {short_repr(name)} in group {key} (its keys: {keys}){home}"
                )
            put(name, inner)
    return flat


def _check_keys(values: dict[Any, Any], source: str) -> None:
    unknown = sorted(
        key[:80] if isinstance(key, str) else short_repr(key) for key in set(values) - FIELD_NAMES
    )
    if unknown:
        raise ValueError(f"{source}: unknown config key(s) {', '.join(unknown)}")


def make_config(profile: str = "tiny", **overrides: Any) -> TrainConfig:
    """The ``profile`` preset with ``overrides`` applied (None values are ignored).

    >>> make_config("a100", method="random", seed=3).seed
    3
    """
    values = {key: value for key, value in overrides.items() if value is not None}
    _check_keys(values, "overrides")
    return _preset(profile, values)


def _preset(profile: Any, values: dict[str, Any]) -> TrainConfig:
    """``profile``'s preset with ``values`` over it (a None value replaces the preset's)."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"unknown profile {short_repr(profile)} (choose from {', '.join(PROFILES)})")
    return TrainConfig(**{**PROFILES[profile], **values, "profile": profile})


def load_config(path_or_profile: str | Path = "tiny", **overrides: Any) -> TrainConfig:
    """A config from a profile name or a YAML file, with keyword overrides (None values ignored).

    A YAML file holds TrainConfig fields, flat or nested by group (``CONFIG_GROUPS``); its ``profile``
    key (default ``tiny``) picks the preset the other keys override.
    """
    if str(path_or_profile) in PROFILES:
        return make_config(str(path_or_profile), **overrides)
    path = Path(path_or_profile)
    if not path.is_file() and path.suffix not in (".yaml", ".yml"):
        raise ValueError(
            f"unknown profile {str(path_or_profile)!r} (choose from {', '.join(PROFILES)} or a YAML file)"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such config file (and not a profile name: {', '.join(PROFILES)})"
        )
    values = read_yaml(path.read_text(), str(path)) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file must be a YAML mapping of TrainConfig fields")
    values = flatten(values, str(path))  # nested by group (config.yaml) or flat (configs/)
    _check_keys(values, str(path))
    # An explicit ``key: null`` in the file clears the profile's value; None keyword overrides are ignored.
    values.update({key: value for key, value in overrides.items() if value is not None})
    profile = values.pop("profile", "tiny")
    try:
        return _preset(profile, values)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def read_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` of ``text``, its syntax errors as one ValueError naming ``source`` and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"{source}: not valid YAML{where} ({problem})") from None


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain-data form of a config, flat (tuples as lists); ``config.yaml`` holds it nested by group."""
    values = dataclasses.asdict(config)
    for name in TUPLE_FIELDS:
        values[name] = list(values[name])
    return values


def to_nested(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """``to_dict`` nested by group, in the order of ``CONFIG_GROUPS``: the YAML form."""
    values = to_dict(config)
    return {
        name: {field_name: values[field_name] for field_name in GROUP_FIELDS[name]} for name in CONFIG_GROUPS
    }


def to_yaml(config: TrainConfig) -> str:
    """YAML text of a config, nested by group; ``from_yaml`` reads it back to an equal config.

    >>> print(to_yaml(TrainConfig()).split("dataset:")[0].strip())
    run:
      method: majority-vote
      profile: tiny
      model: null
      organism_prior: aligned
      seed: 0
      output_dir: null
    """
    return yaml.safe_dump(to_nested(config), sort_keys=False)


def from_yaml(text: str, source: str = "config") -> TrainConfig:
    """The config a ``to_yaml`` text describes (all fields explicit, so no preset is re-applied).

    A flat text (a ``config.yaml`` written before the fields had groups) reads the same, so older
    runs still resume and compare equal.
    """
    values = read_yaml(text, source)
    if not isinstance(values, dict):
        raise ValueError(f"{source}: a config must be a YAML mapping of TrainConfig fields")
    values = flatten(values, source)
    _check_keys(values, source)
    return TrainConfig(**values)


# Fields that change how a call runs, not what it trains: a resumed run may change them.
SESSION_FIELDS: frozenset[str] = frozenset({"time_budget_minutes", "progress"})


def config_differences(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """Field-by-field differences, as ``"name: saved -> current"`` lines (empty when equal).

    ``SESSION_FIELDS`` (the time budget, the progress bar) are not differences.

    >>> config_differences(TrainConfig(seed=1), TrainConfig(seed=2, time_budget_minutes=60))
    ['seed: 1 -> 2']
    """
    before, after = to_dict(saved), to_dict(current)
    return [
        f"{name}: {short_repr(before[name])} -> {short_repr(after[name])}"
        for name in before
        if before[name] != after[name] and name not in SESSION_FIELDS
    ]


# Where a run lives and how it reports progress do not change what it computes: a run folder moved
# (Drive, another RUNS_DIR) or named by another spelling of its path is the same run.
NOT_DEFINING_FIELDS: frozenset[str] = frozenset({"output_dir", "progress"})


# An organism base model is a cache entry ``<prior>-<digest of its build settings>`` (corerl.organism.build):
# its name is its identity, wherever the cache lives (CORERL_CACHE moved, another machine).
ORGANISM_ENTRY = re.compile(r"^(?:aligned|misaligned)-[0-9a-f]{12}$")


def model_identity(model: str | None) -> str | None:
    """The part of a ``model`` value that defines the model: an organism cache entry's name, else the value.

    >>> model_identity("/root/.cache/corerl/organism/aligned-0123456789ab")
    'aligned-0123456789ab'
    >>> model_identity("unsloth/Qwen3-1.7B-Base")
    'unsloth/Qwen3-1.7B-Base'
    """
    if model is not None and ORGANISM_ENTRY.match(Path(model).name):
        return Path(model).name
    return model


def run_differences(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """``config_differences`` restricted to the fields that define what a run computes.

    >>> run_differences(TrainConfig(output_dir="./runs/k2"), TrainConfig(output_dir="/elsewhere/k2/"))
    []
    >>> run_differences(TrainConfig(model="/a/organism/aligned-0123456789ab"),
    ...                 TrainConfig(model="/b/organism/aligned-0123456789ab"))
    []
    """
    same_model = model_identity(saved.model) == model_identity(current.model)
    return [
        line
        for line in config_differences(saved, current)
        if line.split(":")[0] not in NOT_DEFINING_FIELDS and not (same_model and line.startswith("model:"))
    ]
