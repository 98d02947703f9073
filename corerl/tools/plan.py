"""``corerl plan --profile t4``: each notebook's runs, steps and T4-hours, from a per-step cost model.

The model charges every run, evaluation and vote pass of the numbered notebooks to the first notebook
that needs it (later notebooks load finished runs and cached evaluations from ``RUNS_DIR``), with the
profile's settings (``corerl.config.PROFILES``, ``corerl.study.EVALUATION``). Its constants are
ESTIMATED FROM PUBLIC FIGURES, not measured by corerl: ``benchmarks/gpu_step.py`` measures seconds per
step, tokens per second and memory on a GPU; put its figures into ``T4`` below and set
``T4_SOURCE = "measured on <GPU>"`` once it has run.

Generation is HF ``generate`` (the install cell installs no vLLM): a batch of B sequences takes one
decode step per new token up to the length cap (rollouts that run to the cap set the batch's time), and
a decode step costs a fixed per-layer overhead (kernel launches, bitsandbytes dequantisation) plus the
weights and the KV cache read from memory. Training counts its passes over prompt and completion
tokens in FLOPs per parameter and token (each figure where it comes from):
- forward + backward: 6 (2 forward, 4 backward: the standard count, Kaplan et al. 2020, Sec. 2.1);
- gradient checkpointing's recompute: one more forward, 2, i.e. +1/3 of forward + backward (the FLOP
  count of recomputing every checkpointed segment once; Chen et al. 2016 report about 30% more time);
- the KL reference when ``beta > 0``: one no-grad forward, 2 (trl 1.14.2 ``grpo_trainer.py:2771-2799``
  runs it each step, with the adapter disabled or on the ``ref`` adapter);
- entropy and self-certainty's signals: one no-grad forward, 2 (``corerl.engine.signals``);
- self-verification: one forward (2) over question + completion + verification prompt per rollout.
Co-rewarding-II's teacher decodes its own rollouts with HF ``generate`` through PEFT's unmerged adapter
(``corerl.engine.teacher``), outside Unsloth's fast-inference path that TRL's rollouts take under
Unsloth; it is charged ``teacher_decode_factor`` times the policy's decode (an estimate, see
``GpuCosts``). The held-out evaluation during training (``eval_every``, ``eval_size``,
``eval_samples``) is charged as generation at the length cap, at step 0 and every ``eval_every`` steps.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from typing import Any

from corerl.rewards import TEACHER_METHODS, VIEW_METHODS

T4_SOURCE = "estimated"  # "measured on <GPU>" once benchmarks/gpu_step.py figures replace the estimates
T4_SOURCES = (
    "[1] 24.4 tokens/s (41 ms a decode step) for Qwen2.5-0.5B-Instruct (24 layers) in fp16 with HF generate "
    "on a Colab T4, batch 1 (public benchmark kd.iw.mk/dohu012/llm-quantization-benchmark): 1.54 ms a "
    "layer after the weight read; x1.3 for bitsandbytes 4-bit dequantisation (an estimate). "
    "[2] NVIDIA T4 datasheet: 320 GB/s memory bandwidth (75% assumed reachable), 65 TFLOP/s fp16 tensor "
    "peak (23% assumed reached on the FLOPs counted: 6 per parameter and token for forward + backward, 2 "
    "for each extra forward: recompute, KL reference, signals). "
    "[3] Model configs (exact): Qwen3-1.7B and Llama-3.2-3B have 28 layers and 8 KV heads of 128, so "
    "114,688 bytes of fp16 KV cache per token. "
    "[4] An estimate from the kernels of a decode step: the teacher runs HF generate (no compile) through "
    "PEFT's unmerged LoRA, whose 7 adapted projections a layer add about 3 kernels each (A, B, add) to a "
    "launch-bound step of roughly 20 a layer: about 2x the per-layer overhead [1]; the policy is charged "
    "at [1] itself, without any Unsloth speed-up, so the plan errs long. The GPU check measures the ratio."
)


@dataclass(frozen=True)
class GpuCosts:
    """Per-step cost constants of one GPU kind (see ``T4_SOURCES``)."""

    decode_seconds_per_layer: float = 0.00154 * 1.3  # [1] (estimate)
    bandwidth_bytes_per_second: float = 320e9 * 0.75  # [2] (estimate: 75% of the datasheet)
    train_flops_per_second: float = 65e12 * 0.23  # [2] (estimate: 23% of the datasheet)
    kv_bytes_per_token: int = 114_688  # [3] (exact)
    teacher_decode_factor: float = 2.0  # [4] (estimate)
    prompt_tokens: int = 150  # a MATH question + instruction + chat template (estimate)
    mean_completion_share: float = 0.6  # mean completion length / cap (estimate)
    step_overhead_seconds: float = 3.0  # rewards, math-verify, logging, optimizer (estimate)
    load_seconds: float = 90.0  # loading a 4-bit model (cached download) and the first step (estimate)
    verify_prompt_tokens: int = 70  # corerl.engine.verifier.VERIFY_PROMPT + chat template (estimate)


T4 = GpuCosts()
# Parameters and layers of the profiles' base models (their configs); 4-bit weights read per decode step.
MODELS: dict[str, tuple[float, int]] = {
    "unsloth/Qwen3-1.7B-Base": (1.72e9, 28),
    "unsloth/Llama-3.2-3B-Instruct": (3.21e9, 28),
}


def decode_step_seconds(model: str, batch: int, context: float, costs: GpuCosts = T4) -> float:
    """One decode step of ``batch`` sequences with ``context`` tokens of KV cache each (4-bit weights)."""
    parameters, layers = MODELS[model]
    weights = parameters * 0.5 / costs.bandwidth_bytes_per_second
    cache = batch * context * costs.kv_bytes_per_token / costs.bandwidth_bytes_per_second
    return layers * costs.decode_seconds_per_layer + weights + cache


def generation_seconds(model: str, sequences: int, batch: int, cap: int, costs: GpuCosts = T4) -> float:
    """HF generate of ``sequences`` in batches of ``batch``, each batch running to the length cap."""
    if sequences <= 0:
        return 0.0
    batches = math.ceil(sequences / batch)
    size = min(batch, sequences)
    return batches * cap * decode_step_seconds(model, size, costs.prompt_tokens + cap / 2, costs)


def train_seconds(model: str, rollouts: int, cap: int, passes: float = 1.0, costs: GpuCosts = T4) -> float:
    """``passes`` forward + backward equivalents (6 FLOPs per parameter and token each) over a step's
    rollouts; recompute, reference and signal forwards come in as thirds (see :func:`train_passes`)."""
    parameters, _ = MODELS[model]
    tokens = rollouts * (costs.prompt_tokens + costs.mean_completion_share * cap)
    return 6 * parameters * tokens * passes / costs.train_flops_per_second


def train_passes(config: Any) -> float:
    """Forward + backward (1) plus each extra forward a step runs (1/3 each: 2 of 6 FLOPs per parameter
    and token): gradient checkpointing's recompute, the KL reference (beta > 0), the signals' pass."""
    extra_forwards = (
        int(bool(config.gradient_checkpointing))
        + int(config.beta > 0)
        + int(config.method in ("entropy", "self-certainty"))
    )
    return 1 + extra_forwards / 3


def verification_seconds(model: str, rollouts: int, cap: int, costs: GpuCosts = T4) -> float:
    """Self-verification: one no-grad forward pass per rollout over question, completion and prompt."""
    parameters, _ = MODELS[model]
    tokens = rollouts * (costs.prompt_tokens + costs.verify_prompt_tokens + costs.mean_completion_share * cap)
    return 2 * parameters * tokens / costs.train_flops_per_second


def step_seconds(config: Any, costs: GpuCosts = T4) -> float:
    """Estimated seconds of one RL step of ``config`` (a ``TrainConfig``)."""
    model = config.model
    prompts = config.questions_per_step * (2 if config.method in VIEW_METHODS else 1)  # both views
    rollouts = prompts * config.num_generations
    cap = config.max_completion_length
    seconds = generation_seconds(model, rollouts, rollouts, cap, costs)
    if config.method in TEACHER_METHODS:  # the EMA teacher samples one rollout per policy rollout
        seconds += costs.teacher_decode_factor * generation_seconds(model, rollouts, rollouts, cap, costs)
    if config.method in ("self-verify", "self-verify-vote"):
        seconds += verification_seconds(model, rollouts, cap, costs)
    return (
        seconds
        + train_seconds(model, rollouts, cap, train_passes(config), costs)
        + costs.step_overhead_seconds
    )


def heldout_seconds(config: Any, costs: GpuCosts = T4) -> float:
    """The held-out evaluation during training: ``eval_size`` problems x ``eval_samples`` samples at
    the length cap, at step 0 and every ``eval_every`` steps (0: off). The fields come with the
    held-out evaluation (issue 20); read with defaults so a config without them plans no evaluation."""
    every = getattr(config, "eval_every", 0) or 0
    if every <= 0:
        return 0.0
    from corerl.mitigations.hooks import generation_batch_size

    sequences = getattr(config, "eval_size", 0) * getattr(config, "eval_samples", 1)
    evaluations = 1 + config.max_steps // every
    return evaluations * generation_seconds(
        config.model, sequences, generation_batch_size(config), config.max_completion_length, costs
    )


@dataclass(frozen=True)
class PlannedRun:
    """One ``study.run(...)`` of a notebook: its name and the overrides it passes."""

    name: str
    method: str
    prior: str = "aligned"
    options: dict[str, Any] = field(default_factory=dict)


# The notebooks' study.run calls and evaluations, in order (tests/test_plan.py checks them against the
# notebooks). t4 overrides of the notebooks themselves: 00 trains 10 steps, 05 holds out 1%.
NOTEBOOK_WORK: dict[str, dict[str, Any]] = {
    "00_quickstart": {
        "runs": [PlannedRun("quickstart", "majority-vote", options={"max_steps": 10})],
        "samples": 4 * 8,
        "evaluations": [],
    },
    "01_baselines": {
        "runs": [
            PlannedRun(method, method)
            for method in ("ground-truth", "majority-vote", "entropy", "self-certainty", "random")
        ],
        "evaluations": ["base", "ground-truth", "majority-vote", "entropy", "self-certainty", "random"],
    },
    "02_co_rewarding_1": {
        "runs": [
            PlannedRun("co-rewarding-1", "co-rewarding-1"),
            PlannedRun("majority-vote", "majority-vote"),
            PlannedRun("majority-vote-rephrased", "majority-vote"),
        ],
        "evaluations": ["base", "co-rewarding-1", "majority-vote", "majority-vote-rephrased"],
    },
    "03_co_rewarding_2": {
        "runs": [
            PlannedRun("co-rewarding-2", "co-rewarding-2"),
            PlannedRun("co-rewarding-2-no-ema", "co-rewarding-2"),
            PlannedRun("co-rewarding-3", "co-rewarding-3"),  # both views and the teacher: 4G generations
            PlannedRun("majority-vote", "majority-vote"),
        ],
        "evaluations": ["base", "co-rewarding-2", "co-rewarding-2-no-ema", "co-rewarding-3", "majority-vote"],
    },
    "04_collapse_analysis": {
        "runs": [
            PlannedRun("majority-vote", "majority-vote"),
            PlannedRun("majority-vote-misaligned", "majority-vote", prior="misaligned"),
            PlannedRun("entropy", "entropy"),
            PlannedRun("self-certainty", "self-certainty"),
            PlannedRun("test-time", "majority-vote", options={"test_time_training": True}),
            PlannedRun("self-verify", "self-verify"),  # t4/a100 only (the organism's model cannot verify)
        ],
        "evaluations": [],
    },
    "05_mitigations": {
        "runs": [
            PlannedRun("early-stopping", "majority-vote", options={"early_stopping": True}),
            PlannedRun("offline-labels", "majority-vote", options={"offline_labels": True}),
            PlannedRun("curriculum", "majority-vote", options={"curriculum_fraction": 1 / 3}),
            PlannedRun("majority-vote", "majority-vote"),
        ],
        "evaluations": ["base", "majority-vote", "early-stopping", "offline-labels", "curriculum"],
    },
    "06_results": {"runs": [], "evaluations": []},
}


def run_seconds(config: Any, costs: GpuCosts = T4) -> float:
    """A whole run: load, steps, and the vote passes and evaluations its options add."""
    from corerl.mitigations.hooks import TEST_TIME_EVAL_SAMPLES, generation_batch_size, vote_pool_size

    seconds = (
        costs.load_seconds + config.max_steps * step_seconds(config, costs) + heldout_seconds(config, costs)
    )
    batch, cap, model = generation_batch_size(config), config.max_completion_length, config.model
    pool = vote_pool_size(config) if config.votes_for_seen_questions else 7500
    if config.offline_labels:
        seconds += generation_seconds(model, pool * config.offline_label_samples, batch, cap, costs)
    if config.curriculum_fraction is not None:
        seconds += generation_seconds(model, pool * config.curriculum_samples, batch, cap, costs)
    if config.early_stopping:  # greedy on the labelled slice (1% of MATH train) every few steps
        scorings = max(1, config.max_steps // config.early_stopping_eval_steps)
        slice_size = math.ceil(7500 * config.validation_fraction)
        seconds += scorings * generation_seconds(model, slice_size, batch, cap, costs)
    if config.test_time_training:  # before/after on the questions it trains on
        sequences = config.test_time_questions * TEST_TIME_EVAL_SAMPLES
        seconds += 2 * generation_seconds(model, sequences, batch, cap, costs)
    return seconds


def evaluation_seconds(profile: str, model: str, costs: GpuCosts = T4) -> float:
    """One model's evaluation on the profile's benchmarks (``corerl.study.EVALUATION``)."""
    from corerl.study import EVALUATION

    settings = EVALUATION[profile]
    sequences = len(settings["benchmarks"]) * settings["questions"] * settings["k"]
    generate = generation_seconds(model, sequences, settings["batch_size"], settings["max_new_tokens"], costs)
    return costs.load_seconds + generate


def plan(profile: str = "t4", costs: GpuCosts = T4) -> dict[str, Any]:
    """Per notebook: the runs it trains (first use), their steps, and estimated hours; plus the total."""
    from corerl.config import make_config
    from corerl.study import GPU_MODELS

    if profile == "tiny":
        raise ValueError("the planner estimates GPU hours; the tiny profile runs on a CPU in minutes")
    trained: set[str] = set()
    evaluated: set[str] = set()
    notebooks: dict[str, dict[str, Any]] = {}
    for notebook, work in NOTEBOOK_WORK.items():
        seconds, rows = 0.0, []
        for run in work["runs"]:
            if run.name in trained:
                continue
            trained.add(run.name)
            config = make_config(profile, method=run.method, model=GPU_MODELS[run.prior], **run.options)
            run_time = run_seconds(config, costs)
            seconds += run_time
            rows.append(
                {"run": run.name, "steps": config.max_steps, "step_seconds": step_seconds(config, costs)}
            )
        for name in work["evaluations"]:
            if name not in evaluated:
                evaluated.add(name)
                seconds += evaluation_seconds(profile, GPU_MODELS["aligned"], costs)
        if work.get("samples"):
            seconds += costs.load_seconds + generation_seconds(
                GPU_MODELS["aligned"],
                work["samples"],
                work["samples"],
                make_config(profile).max_completion_length,
            )
        notebooks[notebook] = {"runs": rows, "hours": seconds / 3600}
    return {
        "profile": profile,
        "notebooks": notebooks,
        "total_hours": sum(entry["hours"] for entry in notebooks.values()),
        "constants": T4_SOURCE,
    }


def format_plan(result: dict[str, Any]) -> str:
    """The plan as a Markdown table (docs/t4.md shows it)."""
    lines = [
        f"| notebook | runs trained (steps, est. s/step) | est. {result['profile'].upper()}-hours |",
        "|---|---|---|",
    ]
    for notebook, entry in result["notebooks"].items():
        runs = (
            ", ".join(f"{row['run']} ({row['steps']}, {row['step_seconds']:.0f})" for row in entry["runs"])
            or "-"
        )
        lines.append(f"| {notebook} | {runs} | {entry['hours']:.2f} |")
    lines.append(f"| **total** | | **{result['total_hours']:.1f}** |")
    source = (
        "estimated from public figures (corerl/tools/plan.py cites them)"
        if result["constants"] == "estimated"
        else result["constants"]
    )
    return "\n".join(lines) + f"\n\nConstants: {source}; not measured by corerl."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="each notebook's runs, steps and estimated GPU-hours (per-step cost model)",
        description="Estimate the GPU time of every notebook on a profile, from corerl/tools/plan.py's cost model.",
    )
    parser.add_argument("--profile", choices=("t4",), default="t4", help="the GPU profile (default: t4)")
    parser.add_argument("--json", action="store_true", help="print JSON: notebooks, total_hours, constants")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = plan(args.profile)
    if args.json:
        print(
            json.dumps(
                {
                    "notebooks": {
                        name: round(entry["hours"], 3) for name, entry in result["notebooks"].items()
                    },
                    "total_hours": round(result["total_hours"], 3),
                    "constants": result["constants"],
                }
            )
        )
    else:
        print(format_plan(result))
    return 0
