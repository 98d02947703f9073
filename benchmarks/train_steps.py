"""Seconds per optimizer step of every method on the tiny profile (CPU).

    python benchmarks/train_steps.py                 # organism smoke model (built in seconds)
    python benchmarks/train_steps.py --organism      # the tiny profile's real default (aligned prior)
    python benchmarks/train_steps.py --steps 20 --methods majority-vote co-rewarding-1

Prints, per method, the mean seconds per step after the first (which includes warm-up), the mean
completion length and the rollouts per step, from the run's own metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from corerl.config import STUDY_METHODS, make_config
from corerl.engine import train
from corerl.rewards import VIEW_METHODS

BENCHMARKED = list(STUDY_METHODS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=BENCHMARKED, choices=BENCHMARKED)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--organism", action="store_true", help="use the organism's default aligned model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    from corerl.organism import ensure_base_model, smoke_settings

    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        if args.organism:
            model = ensure_base_model("aligned")
        else:
            model = ensure_base_model(
                "aligned", cache_dir=scratch_dir / "organism", settings=smoke_settings()
            )
        print(f"model: {model}")
        print(f"{'method':<16}{'s/step':>8}{'rollouts':>10}{'length':>8}")
        for method in args.methods:
            config = make_config(
                "tiny",
                method=method,
                model=str(model),
                max_steps=args.steps,
                output_dir=str(scratch_dir / method),
                save_steps=10**6,
                cpu_threads=args.threads,
                progress=False,
            )
            rows = [json.loads(line) for line in (train(config) / "metrics.jsonl").read_text().splitlines()]
            per_step = (rows[-1]["time"] - rows[0]["time"]) / max(len(rows) - 1, 1)
            rollouts = (
                config.questions_per_step * config.num_generations * (2 if method in VIEW_METHODS else 1)
            )
            length = sum(row["completion_length"] for row in rows) / len(rows)
            print(f"{method:<16}{per_step:>8.3f}{rollouts:>10}{length:>8.1f}")


if __name__ == "__main__":
    main()
