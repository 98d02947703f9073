"""``corerl collapse-step``: the Model Collapse Step as a protocol (arXiv 2603.08660), not only a threshold.

The protocol, as secondary summaries of the study report it (its code, the ``urlvr-dev`` branch of
PRIME-RL/TTRL, has no Model Collapse Step script; see ``../shared/notes/methods.md``): majority-vote
training of the base model with 64 questions x 8 rollouts per step and no KL, reward accuracy per step
(the share of rollouts whose self-assigned reward equals the ground-truth reward), and the Model
Collapse Step = the first step at which reward accuracy falls below 1%. Training stops at that step.

Everything else is the profile's (learning rate and schedule, completion length, prompt; ``tiny``: the
organism). Departures: the study trains on DAPO-style data; this command uses the profile's data
unless ``--data`` names another (``dapo-14k`` is shipped). The threshold is a parameter.
Writes ``<out>/collapse_curve.jsonl`` (one line per step) and ``<out>/collapse_curve.png``/``.svg``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from corerl.config import PROFILES, TrainConfig, make_config
from corerl.organism.build import PRIORS

PROTOCOL: dict[str, Any] = {  # arXiv 2603.08660 as secondary summaries report it
    "method": "majority-vote",
    "questions_per_step": 64,
    "num_generations": 8,
    "beta": 0.0,  # no KL
}
THRESHOLD = 0.01
INTERRUPTED = 3  # exit status of a run its time budget stopped (as corerl train)
CURVE_FILE = "collapse_curve.jsonl"
CURVE_COLUMNS = ("step", "reward_accuracy", "oracle_accuracy", "reward_mean", "majority_share")
ORGANISM_PRIORS = tuple(PRIORS)  # the organism priors, each a model name on tiny


def protocol_config(
    model: str, profile: str = "tiny", *, max_steps: int | None = None, out: str | None = None, **extra: Any
) -> TrainConfig:
    """The protocol's run of ``model`` on ``profile``; on ``tiny`` an organism prior name is a model.

    >>> config = protocol_config("misaligned", max_steps=5)
    >>> config.organism_prior, config.questions_per_step, config.num_generations, config.beta
    ('misaligned', 64, 8, 0.0)
    """
    values: dict[str, Any] = {**PROTOCOL, **extra, "max_steps": max_steps}
    if profile == "tiny" and model in ORGANISM_PRIORS:
        values["organism_prior"] = model
        name = f"organism-{model}"
    else:
        values["model"] = model
        name = Path(model).name or "model"
    values["output_dir"] = out or f"runs/collapse-step/{profile}-{name}"
    return make_config(profile, **values)


def stop_below_threshold(metrics_path: Path, threshold: float) -> Any:
    """A TrainerCallback that stops training at the first step whose reward accuracy is below ``threshold``.

    Added after ``RunLogCallback``, so the step's line is already in ``metrics.jsonl`` when it runs.
    """
    from transformers import TrainerCallback

    class StopBelowThreshold(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            lines = metrics_path.read_text().splitlines() if metrics_path.is_file() else []
            last = json.loads(lines[-1]) if lines else {}
            value = last.get("reward_accuracy")
            if last.get("step") == state.global_step and value is not None and value < threshold:
                control.should_training_stop = True  # the Model Collapse Step is found

    return StopBelowThreshold()


def run_protocol(
    config: TrainConfig, *, threshold: float = THRESHOLD, resume: bool = False
) -> tuple[Path, int | None]:
    """Train ``config`` until reward accuracy falls below ``threshold`` or ``max_steps``, holding the
    run's lock as ``corerl train`` does; returns the run dir and the step at which the time budget
    interrupted the run (None when it was not interrupted)."""
    from corerl.engine.run import cpu_threads, prepare_run, train_reporting_divergence
    from corerl.machine import rundir

    if not resume:
        rundir.refuse_occupied(config.run_dir)
    with cpu_threads(config), rundir.run_lock(config.run_dir) as lock:
        run = prepare_run(config, resume=resume, lock=lock)
        run.trainer.add_callback(stop_below_threshold(run.run_dir / "metrics.jsonl", threshold))
        train_reporting_divergence(run, config)
    return run.run_dir, None if run.budget is None else run.budget.stopped_at


def write_curve(run_dir: Path, threshold: float = THRESHOLD) -> tuple[int | None, int]:
    """Write the reward-accuracy curve (jsonl, png, svg); returns (Model Collapse Step or None, steps)."""
    from corerl.collapse import model_collapse_step, read_metrics
    from corerl.plots import plot_reward_accuracy

    metrics = read_metrics(run_dir)
    columns = [column for column in CURVE_COLUMNS if column in metrics.columns]
    rows = metrics[columns].astype(object).where(metrics[columns].notna(), None).to_dict("records")
    (run_dir / CURVE_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    plot_reward_accuracy({run_dir.name: metrics}, run_dir, threshold=threshold, name="collapse_curve")
    steps = int(metrics["step"].max()) if len(metrics) else 0
    return model_collapse_step(metrics, threshold), steps


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "collapse-step",
        help="the Model Collapse Step of a base model (arXiv 2603.08660 protocol)",
        description="Majority-vote training of the base model, 64 questions x 8 rollouts per step, no KL; "
        "prints the first step whose reward accuracy is below the threshold (protocol as secondary "
        "summaries of arXiv 2603.08660 report it) and writes the curve.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model path or hub id; on --profile tiny also 'aligned' or 'misaligned'",
    )
    parser.add_argument("--profile", choices=tuple(PROFILES), default="tiny")
    parser.add_argument("--max-steps", type=int, help="steps at most (default: the profile's max_steps)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="reward accuracy threshold (1%%)")
    parser.add_argument(
        "--data", help="training data (default: the profile's; the study used DAPO-style data)"
    )
    parser.add_argument("--out", help="run directory (default: runs/collapse-step/<profile>-<model>)")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1), got {args.threshold}")
    config = protocol_config(
        args.model, args.profile, max_steps=args.max_steps, out=args.out, data=args.data, seed=args.seed
    )
    run_dir, interrupted_at = run_protocol(config, threshold=args.threshold, resume=args.resume)
    step, steps = write_curve(run_dir, args.threshold)
    if step is None and interrupted_at is not None:
        print(
            f"Model Collapse Step: not reached by step {interrupted_at}, where the time budget "
            f"(time_budget_minutes) interrupted the run; run it again with --resume to continue",
            file=sys.stderr,
        )
        print(f"curve so far written to {run_dir / CURVE_FILE}")
        return INTERRUPTED
    if step is None:
        print(
            f"Model Collapse Step: not reached in {steps} steps (reward accuracy never below {args.threshold:g})"
        )
    else:
        print(f"Model Collapse Step: {step} (first step with reward accuracy below {args.threshold:g})")
    print(f"curve written to {run_dir / CURVE_FILE} and {run_dir / 'collapse_curve.png'}")
    return 0
