"""Benchmark the model organism: build time, prior figures (with strategy shares), and RL on every method.

    python benchmarks/organism.py                       # build (or reuse) both priors, measure them
    python benchmarks/organism.py --rl-steps 40         # then train every method on each prior
    python benchmarks/organism.py --smoke               # seconds: smoke builds, 20 questions

Also, for each prior, both views of each problem are sampled (``measure_views``): how often the
shortcut's answer and the majority label agree across the views, and, per number of operations,
pass@1, maj@8 and the share of problems whose majority answer is the template or a shortcut.

Build time is read from the build record (wall and CPU seconds of stage 2, and of the shared
stage 1 it started from; on a shared machine the CPU
seconds are the fair measure: 5 minutes on 2 cores = 600 CPU seconds). Figures are measured on
held-out problems by sampling (8 samples at temperature 1.0). With ``--rl-steps``, each method runs
through ``corerl.engine.train`` on the tiny profile; steps per second, the first and last logged
training metrics and the held-out figures of the final model are printed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from corerl.config import STUDY_METHODS
from corerl.organism import PRIORS, BuildSettings, ensure_base_model, measure_prior, smoke_settings
from corerl.organism.figures import measure_views

TRACKED = (
    "oracle_accuracy",
    "pseudo_label_accuracy",
    "reward_accuracy",
    "majority_share",
    "distinct_answers",
    "no_answer_rate",
    "completion_length",
)


def _figures_line(name: str, figures: dict) -> str:
    parts = [f"{key}={value:.3f}" for key, value in figures.items() if isinstance(value, float)]
    shares = " ".join(f"{key}={value:.3f}" for key, value in figures.get("strategies", {}).items())
    return (
        f"  {name:24s} n={figures['questions']:4d} " + " ".join(parts) + f"\n  {'':24s} strategies: {shares}"
    )


def _measure(model_dir: Path, questions: int, seed: int) -> dict:
    started = time.perf_counter()
    figures = {
        name: value.as_dict()
        for name, value in measure_prior(model_dir, questions=questions, seed=seed).items()
    }
    for name, values in figures.items():
        print(_figures_line(name, values))
    print(f"  (sampling took {time.perf_counter() - started:.1f} s)")
    return figures


def _measure_views(model_dir: Path, questions: int, seed: int) -> dict:
    """Both views of each problem: how often wrong answers agree across them (issue 21)."""
    started = time.perf_counter()
    views = measure_views(model_dir, questions=questions, seed=seed).as_dict()
    print(
        f"  views: shortcut answer agrees across views on {views['shortcut_agreement']:.3f} of "
        f"{views['shortcut_problems']} problems with a shortcut in both; majority labels agree on "
        f"{views['majority_agreement']:.3f}, agree and wrong on {views['wrong_majority_agreement']:.3f}"
    )
    for ops, cell in views["by_ops"].items():
        print(
            f"  {ops} operation(s): n={cell['problems']:.0f} pass@1={cell['pass@1']:.3f} "
            f"maj@8={cell['maj@8']:.3f} majority is the template or a shortcut: {cell['illusion_majority']:.3f}"
        )
    print(f"  (both views took {time.perf_counter() - started:.1f} s)")
    return views


def _rl(prior: str, model_dir: Path, args: argparse.Namespace, questions: int, out_root: Path) -> dict:
    from corerl.config import load_config
    from corerl.engine import train

    results = {}
    for method in args.methods:
        config = load_config(
            "tiny",
            method=method,
            max_steps=args.rl_steps,
            output_dir=str(out_root / f"{prior}-{method}"),
            model=str(model_dir),
            data_limit=args.data_limit,
            max_completion_length=args.max_completion_length,
            num_generations=args.num_generations,
            learning_rate=args.learning_rate,
            questions_per_step=args.questions_per_step,
            eval_every=0,  # training figures only (the held-out evaluation is measured below)
            progress=False,
        )
        started = time.perf_counter()
        run_dir = train(config)
        seconds = time.perf_counter() - started
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        first, last = metrics[0], metrics[-1]
        print(
            f"{prior} / {method}: {len(metrics)} steps in {seconds:.1f} s ({len(metrics) / seconds:.2f} steps/s)"
        )
        for key in TRACKED:
            if first.get(key) is not None or last.get(key) is not None:
                print(f"  {key:24s} first={first.get(key)} last={last.get(key)}")
        held_out = _measure(run_dir / "final", questions, seed=0)
        results[method] = {
            "seconds": seconds,
            "steps": len(metrics),
            "first": first,
            "last": last,
            "held_out": held_out,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="smoke builds and 20 questions (seconds)")
    parser.add_argument("--questions", type=int, default=200, help="held-out questions for the figures")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--priors", nargs="+", choices=list(PRIORS), default=list(PRIORS))
    parser.add_argument("--rl-steps", type=int, default=0, help="RL steps per method (0: skip RL)")
    parser.add_argument("--methods", nargs="+", default=list(STUDY_METHODS))
    parser.add_argument("--data-limit", type=int, default=None, help="training questions (e.g. 128 for TTT)")
    # The organism's worked solutions take up to 40 tokens (3 operations, EOS included).
    parser.add_argument("--max-completion-length", type=int, default=48)
    parser.add_argument("--num-generations", type=int, default=8, help="rollouts per question (G)")
    parser.add_argument("--questions-per-step", type=int, default=None, help="default: the profile's")
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="RL learning rate (default: the profile's)"
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=None, help="keep the RL runs here (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all results here")
    args = parser.parse_args()
    questions = 20 if args.smoke else args.questions
    results: dict = {}
    for prior in args.priors:
        settings = smoke_settings(prior) if args.smoke else BuildSettings(prior=prior)
        started = time.perf_counter()
        model_dir = ensure_base_model(prior, cache_dir=args.cache_dir, settings=settings)
        seconds = time.perf_counter() - started
        record = json.loads((model_dir / "organism_build.json").read_text())
        cached = seconds < record["build_seconds"]
        print(f"{prior}: {model_dir}")
        stage1 = record.get("stage1", {})
        print(
            f"  build: stage 1 (worked only, shared) {stage1.get('build_seconds')} s wall, "
            f"{stage1.get('build_cpu_seconds')} s CPU; stage 2 (mixture) {record['build_seconds']} s wall, "
            f"{record.get('build_cpu_seconds')} s CPU; final SFT loss {record['final_loss']:.3f}"
            f"{' (from the cache; recorded at build)' if cached else ''}"
        )
        results[prior] = {
            "build": record,
            "figures": _measure(model_dir, questions, seed=0),
            "views": _measure_views(model_dir, questions, seed=0),
        }
        if args.rl_steps and args.runs_dir:
            results[prior]["rl"] = _rl(prior, model_dir, args, questions, args.runs_dir)
        elif args.rl_steps:
            with tempfile.TemporaryDirectory() as scratch:
                results[prior]["rl"] = _rl(prior, model_dir, args, questions, Path(scratch))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
