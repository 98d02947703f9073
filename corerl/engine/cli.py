"""``corerl train``: one training run from a profile or a YAML config, with a few overrides.

Examples::

    corerl train --method co-rewarding-1 --profile tiny --max-steps 30 --out runs/cr1
    corerl train --method majority-vote --profile tiny --eval-every 5 --out runs/mv
    corerl train --config configs/t4-majority-vote.yaml --resume
    corerl train --early-stopping --curriculum 0.33 --out runs/mv-mitigated
    corerl train --offline-labels --out runs/offline
    corerl train --method entropy --test-time-training --data organism-test --out runs/ttt
"""

from __future__ import annotations

import argparse
import sys

from corerl.config import METHODS, PROFILES

INTERRUPTED = 3  # exit status of a run stopped by its time budget (0: finished, 2: bad input)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model with one method (GRPO via TRL)",
        description="Train with one method on a profile (tiny = CPU, t4, a100) or a YAML config. Exit "
        "status: 0 finished (final/ written), 3 interrupted by its time budget (run again with --resume), "
        "2 bad input.",
    )
    parser.add_argument("--method", choices=METHODS, help="reward method (default: the config's)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--profile", choices=tuple(PROFILES), help="preset (default: tiny)")
    source.add_argument("--config", help="YAML file of TrainConfig fields (may name a profile)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps")
    parser.add_argument("--out", help="run directory (default: runs/<method>-<profile>-seed<seed>)")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--model", help="model path or hub id (default: the profile's)")
    parser.add_argument("--data", help="dataset name or file (default: the profile's)")
    parser.add_argument(
        "--eval-every",
        type=int,
        help="held-out evaluation at step 0 and every N steps, 0 = off (default: the profile's; tiny: 10)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    mitigations = parser.add_argument_group(
        "mitigations (SRT, arXiv 2505.21444; TTRL)",
        "TrainConfig fields early_stopping, validation_fraction, offline_labels, curriculum_fraction, "
        "test_time_training, test_time_questions (YAML keys of the same names)",
    )
    mitigations.add_argument(
        "--early-stopping",
        action="store_true",
        default=None,
        help="hold out a labelled slice (validation_fraction, default 1%%), score it every "
        "early_stopping_eval_steps steps, keep the best checkpoint, stop after early_stopping_patience",
    )
    mitigations.add_argument(
        "--validation-fraction", type=float, help="share of the data held out for early stopping"
    )
    mitigations.add_argument(
        "--offline-labels",
        action="store_true",
        default=None,
        help="majority-vote with labels voted once by the frozen base model (method offline-labels)",
    )
    mitigations.add_argument(
        "--curriculum",
        type=float,
        metavar="FRACTION",
        dest="curriculum_fraction",
        help="keep the easiest FRACTION of the data by base-model majority share (SRT: 0.33)",
    )
    mitigations.add_argument(
        "--test-time-training",
        action="store_true",
        default=None,
        help="train on at most --test-time-questions questions of --data (a test set) and evaluate on them",
    )
    mitigations.add_argument(
        "--test-time-questions", type=int, help="questions for test-time training (<= 128, default 128)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from corerl.config import load_config
    from corerl.engine import train
    from corerl.engine.run import is_finished

    config = load_config(
        args.config or args.profile or "tiny",
        method=args.method,
        max_steps=args.max_steps,
        output_dir=args.out,
        seed=args.seed,
        model=args.model,
        data=args.data,
        eval_every=args.eval_every,
        early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
        offline_labels=args.offline_labels,
        curriculum_fraction=args.curriculum_fraction,
        test_time_training=args.test_time_training,
        test_time_questions=args.test_time_questions,
    )
    run_dir = train(config, resume=args.resume)
    if not is_finished(run_dir):  # its time budget stopped it: a checkpoint, no final/
        print(
            f"corerl train: run interrupted by its time budget (time_budget_minutes): checkpoint saved in "
            f"{run_dir}; run the same command with --resume to continue",
            file=sys.stderr,
        )
        return INTERRUPTED
    print(f"run written to {run_dir}")
    return 0
