"""Seconds per optimizer step on the tiny profile (CPU), and an A/B step-cost comparison with another revision.

    python benchmarks/train_steps.py                 # every method, organism smoke model (built in seconds)
    python benchmarks/train_steps.py --organism      # the tiny profile's real default (aligned prior)
    python benchmarks/train_steps.py --steps 20 --methods majority-vote co-rewarding-1
    python benchmarks/train_steps.py --organism --against f6afaa3 --rounds 3 --steps 30 --methods majority-vote

The table mode prints, per method, the mean seconds per step after the first (which includes
warm-up), the mean completion length and the rollouts per step, from the run's own metrics.jsonl.

``--against REV`` (a git revision, checked out in a temporary worktree, or a directory holding a
``corerl`` package, e.g. an installed copy) runs the same training alternately with that code (A)
and with this checkout (B), ``--rounds`` times each, A first in odd rounds and B first in even ones,
so that the load of a shared machine falls on both alike. Each run is a fresh process (one torch
thread) that times every step after the first: CPU seconds of the process and its children (the
math-verify worker) and wall seconds. It prints each run, then the medians per rollout and per
generated token and the ratio A/B. Both sides sample the same tokens for the same seed (the lean
sampler draws what ``generate`` draws), so their completion lengths must agree; the printout says so.
CPU time is the figure to read on a loaded machine: wall time there mostly measures the other jobs.

``--parts`` prints one method's CPU milliseconds per step by part of the step (generation, the
loss's log-probability forward pass, backward, rewards, optimizer, the rest), this checkout or, with
``PYTHONPATH=<tree>``, another revision's. 15 ground-truth steps of the organism's aligned model, one
torch thread, load average ~10 on 2 shared cores (2026-12-06, the two revisions run one after the other):

    python benchmarks/train_steps.py --parts --organism --steps 15 --methods ground-truth

                        f6afaa3   this revision
      generation          392.1   119.0   corerl.engine.decoding.sample: each distinct prompt prefilled
                                          once, finished rows dropped, a one-token step of fewer ops
      backward            159.9    60.4   } corerl.engine.logprobs: each prompt once, completions'
      log-prob forward    100.7    47.4   } real tokens only (about a quarter of TRL's padded tokens)
      rewards               6.9     2.7   (f6afaa3's math-verify worker process not counted)
      optimizer             2.0     2.3
      rest                 18.7    17.1   tokenizing, advantages, metrics, logging, callbacks
      step                680.2   248.9

Measured and left: a plain-matmul attention for one-token steps (10-20% below SDPA's time in a
micro-benchmark, but not SDPA's bits). Not tried: folding the RMSNorm weights into the next
projection (not bit for bit either), torch.compile (the sampler's shapes change every step: rows
leave, the cache grows). The sampling noise of finished rows stays: ``generate`` draws it for the
whole batch (0.3-0.4 ms a step). Dataloader workers are 0, gradient checkpointing off and torch
threads 1 already.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _methods() -> list[str]:
    from corerl.config import STUDY_METHODS

    return list(STUDY_METHODS)


def _model_path(organism: bool, scratch: Path) -> Path:
    from corerl.organism import ensure_base_model, smoke_settings

    if organism:
        return ensure_base_model("aligned")
    return ensure_base_model("aligned", cache_dir=scratch / "organism", settings=smoke_settings())


def _process_cpu_seconds() -> float:
    """CPU seconds of this process and its live children (the math-verify worker)."""
    import psutil

    process = psutil.Process()
    total = sum(process.cpu_times()[:2])
    for child in process.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


class StepTimer:
    """A TrainerCallback (built lazily: transformers is imported in the child only) stamping each step."""

    stamps: list[tuple[float, float]] = []

    def __new__(cls, config: Any):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                StepTimer.stamps.append((time.perf_counter(), _process_cpu_seconds()))

            def on_step_end(self, args, state, control, **kwargs):
                StepTimer.stamps.append((time.perf_counter(), _process_cpu_seconds()))

        return _Timer()


def child(method: str, steps: int, model: str, seed: int) -> None:
    """One timed run; prints one JSON line (the last line of stdout)."""
    import dataclasses

    import corerl
    from corerl.config import TrainConfig, make_config
    from corerl.engine import train

    # Step cost only: no held-out evaluation in the timed steps (a revision older than eval_every has none)
    no_heldout = (
        {"eval_every": 0} if "eval_every" in {f.name for f in dataclasses.fields(TrainConfig)} else {}
    )
    with tempfile.TemporaryDirectory() as scratch:
        config = make_config(
            "tiny",
            method=method,
            model=model,
            seed=seed,
            max_steps=steps,
            output_dir=str(Path(scratch) / method),
            save_steps=10**6,
            cpu_threads=1,
            progress=False,
            callbacks=("__main__:StepTimer",),
            **no_heldout,
        )
        rows = [json.loads(line) for line in (train(config) / "metrics.jsonl").read_text().splitlines()]
    stamps = StepTimer.stamps[2:]  # from the end of step 1: the first step carries the warm-up
    timed = len(stamps) - 1
    from corerl import rewards

    views = getattr(rewards, "VIEW_METHODS", ("co-rewarding-1",))  # a revision older than co-rewarding-3
    rollouts = config.questions_per_step * config.num_generations * (2 if method in views else 1)
    lengths = [row["completion_length"] for row in rows if row.get("step", 0) >= 2]
    result = {
        "corerl": str(Path(corerl.__file__).resolve().parent),
        "steps": timed,
        "wall_per_step": (stamps[-1][0] - stamps[0][0]) / timed,
        "cpu_per_step": (stamps[-1][1] - stamps[0][1]) / timed,
        "rollouts": rollouts,
        "tokens_per_step": rollouts * statistics.fmean(lengths),
        "lengths": lengths,
    }
    print(json.dumps(result))


def _run_child(tree: Path, method: str, steps: int, model: Path, seed: int) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--steps", str(steps)]
    command += ["--model", str(model), "--seed", str(seed)]
    done = subprocess.run(command, env=environment, cwd=tree, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"run with {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["corerl"]) != (tree / "corerl").resolve():
        raise RuntimeError(f"the run imported corerl from {result['corerl']}, not from {tree}")
    return result


def _baseline_tree(against: str, scratch: Path) -> Path:
    """A directory holding the baseline's ``corerl``: the given directory, or a worktree of a revision."""
    if (Path(against) / "corerl" / "__init__.py").exists():
        return Path(against).resolve()
    tree = scratch / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--quiet", "--detach", str(tree), against], check=True
    )
    return tree


def compare(against: str, methods: list[str], steps: int, rounds: int, organism: bool, seed: int) -> None:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model = _model_path(organism, scratch)
        baseline = _baseline_tree(against, scratch)
        try:
            print(f"model: {model}\nA: {against} ({baseline})\nB: this checkout ({REPO})")
            print(f"load average at start: {os.getloadavg()}")
            for method in methods:
                _compare_method(method, baseline, model, steps, rounds, seed)
            print(f"load average at end: {os.getloadavg()}")
        finally:
            if baseline.parent == scratch:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)], check=False
                )


def _compare_method(method: str, baseline: Path, model: Path, steps: int, rounds: int, seed: int) -> None:
    results: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    print(f"\n{method}: {steps} steps a run (the first untimed), seed {seed}, one torch thread")
    print(
        f"{'round':>5} {'side':>4} {'cpu s/step':>11} {'wall s/step':>12} {'ms/rollout':>11} {'ms/token':>9} {'tokens':>7}"
    )
    for round_index in range(rounds):
        order = ("A", "B") if round_index % 2 == 0 else ("B", "A")
        for side in order:
            tree = baseline if side == "A" else REPO
            result = _run_child(tree, method, steps, model, seed)
            results[side].append(result)
            print(
                f"{round_index + 1:>5} {side:>4} {result['cpu_per_step']:>11.3f} {result['wall_per_step']:>12.3f} "
                f"{1000 * result['cpu_per_step'] / result['rollouts']:>11.2f} "
                f"{1000 * result['cpu_per_step'] / result['tokens_per_step']:>9.3f} {result['tokens_per_step']:>7.0f}"
            )

    def median(side: str, key: str, per: str | None = None) -> float:
        return statistics.median(r[key] / (r[per] if per else 1) for r in results[side])

    same = all(a["lengths"] == b["lengths"] for a in results["A"] for b in results["B"])
    print(f"same rollouts on both sides (per-step completion lengths equal): {'yes' if same else 'NO'}")
    for label, key, per in (
        ("CPU per rollout", "cpu_per_step", "rollouts"),
        ("CPU per token", "cpu_per_step", "tokens_per_step"),
        ("wall per rollout", "wall_per_step", "rollouts"),
        ("wall per token", "wall_per_step", "tokens_per_step"),
    ):
        a, b = median("A", key, per), median("B", key, per)
        # each round's A and B ran back to back, under about the same load: its ratio is the paired figure
        paired = [
            (ra[key] / ra[per]) / (rb[key] / rb[per])
            for ra, rb in zip(results["A"], results["B"], strict=True)
        ]
        print(
            f"{label:<17} A {1000 * a:8.3f} ms  B {1000 * b:8.3f} ms (medians)  ratio A/B per round "
            f"{' '.join(f'{r:.2f}' for r in paired)}, median {statistics.median(paired):.2f}x"
        )


def parts(method: str, steps: int, organism: bool) -> None:
    """CPU milliseconds per step (after the first) by part of the step, this checkout, one torch thread.

    The parts are the trainer hooks every revision has: TRL's ``_generate_single_turn`` (generation,
    corerl's lean sampler where it applies), ``_get_per_token_logps_and_entropies`` (the loss's
    forward pass), the backward pass, ``_calculate_rewards`` (reward functions and corerl's monitor)
    and the optimizer step; "rest" is the remainder of the step (tokenizing, advantages, metrics,
    logging, callbacks). CPU time of the process (``time.process_time``, all its threads, not its
    children: the math-verify worker of a revision that uses one is left out), so the figures hold
    on a loaded machine. ``PYTHONPATH=<tree>`` runs another revision's corerl.
    """
    import collections
    import contextlib
    import dataclasses

    import accelerate
    import torch

    from corerl.config import TrainConfig, make_config
    from corerl.engine import train
    from corerl.engine import trainer as trainer_module

    spent: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def timed(part: str):
        start = time.process_time()
        try:
            yield
        finally:
            spent[part] += time.process_time() - start

    def timing(part: str, function):
        def wrapper(*args, **kwargs):
            with timed(part):
                return function(*args, **kwargs)

        return wrapper

    composed = trainer_module.trainer_class

    def timed_class(name: str) -> type:
        base = composed(name)
        hooks = {
            "_generate_single_turn": "generation",
            "_get_per_token_logps_and_entropies": "log-prob forward",
            "_calculate_rewards": "rewards",
        }
        return type(
            base.__name__, (base,), {hook: timing(part, getattr(base, hook)) for hook, part in hooks.items()}
        )

    trainer_module.trainer_class = timed_class
    accelerate.Accelerator.backward = timing("backward", accelerate.Accelerator.backward)
    torch.optim.AdamW.step = timing("optimizer", torch.optim.AdamW.step)
    torch.set_num_threads(1)
    # a revision older than eval_every has no held-out evaluation (PYTHONPATH=<its tree> runs it)
    no_heldout = (
        {"eval_every": 0} if "eval_every" in {f.name for f in dataclasses.fields(TrainConfig)} else {}
    )
    snapshots: list[collections.Counter[str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        config = make_config(
            "tiny",
            method=method,
            model=str(_model_path(organism, Path(scratch))),
            max_steps=steps,
            output_dir=str(Path(scratch) / method),
            save_steps=10**6,
            cpu_threads=1,
            progress=False,
            callbacks=("__main__:PartsTimer",),
            **no_heldout,
        )
        PartsTimer.snapshots = snapshots
        PartsTimer.spent = spent
        train(config)
    # snapshots: train begin, then each step's end; timed from the end of step 1 (warm-up)
    (start, first), (end, last) = snapshots[1], snapshots[-1]
    timed_steps = len(snapshots) - 2
    total = (end - start) / timed_steps
    per_step = {part: (last[part] - first[part]) / timed_steps for part in last}
    print(f"{method}: {timed_steps} steps after the first, one torch thread, CPU ms per step")
    for part, seconds in sorted(per_step.items(), key=lambda item: -item[1]):
        print(f"  {part:<18}{1000 * seconds:8.1f}")
    print(f"  {'rest':<18}{1000 * (total - sum(per_step.values())):8.1f}")
    print(f"  {'step':<18}{1000 * total:8.1f}")


class PartsTimer:
    """A TrainerCallback taking (CPU seconds, copy of the part counters) at train begin and at each
    step's end (for ``--parts``)."""

    snapshots: list[Any] = []
    spent: Any = None

    def __new__(cls, config: Any):
        from transformers import TrainerCallback

        def stamp() -> None:
            PartsTimer.snapshots.append((time.process_time(), PartsTimer.spent.copy()))

        class _Timer(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                stamp()

            def on_step_end(self, args, state, control, **kwargs):
                stamp()

        return _Timer()


def table(methods: list[str], steps: int, organism: bool, threads: int) -> None:
    from corerl.config import make_config
    from corerl.engine import train
    from corerl.rewards import VIEW_METHODS

    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        model = _model_path(organism, scratch_dir)
        print(f"model: {model}")
        print(f"{'method':<16}{'s/step':>8}{'rollouts':>10}{'length':>8}")
        for method in methods:
            config = make_config(
                "tiny",
                method=method,
                model=str(model),
                max_steps=steps,
                output_dir=str(scratch_dir / method),
                save_steps=10**6,
                cpu_threads=threads,
                eval_every=0,  # step cost only: no held-out evaluation in the timed steps
                progress=False,
            )
            rows = [json.loads(line) for line in (train(config) / "metrics.jsonl").read_text().splitlines()]
            per_step = (rows[-1]["time"] - rows[0]["time"]) / max(len(rows) - 1, 1)
            rollouts = (
                config.questions_per_step * config.num_generations * (2 if method in VIEW_METHODS else 1)
            )
            length = sum(row["completion_length"] for row in rows) / len(rows)
            print(f"{method:<16}{per_step:>8.3f}{rollouts:>10}{length:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None, help="study methods (default: all)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--organism", action="store_true", help="use the organism's default aligned model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (table mode)")
    parser.add_argument(
        "--against", help="A/B mode: a git revision or a directory holding corerl (the A side)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="A/B mode: runs per side, alternating")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parts", action="store_true", help="CPU time per step by part (generation, log-probs, ...)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(1)
        child(args.child, args.steps, args.model, args.seed)
        return
    methods = args.methods or _methods()
    unknown = sorted(set(methods) - set(_methods()))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {_methods()}")
    if args.parts:
        for method in methods:
            parts(method, args.steps, args.organism)
    elif args.against:
        compare(args.against, methods, args.steps, args.rounds, args.organism, args.seed)
    else:
        table(methods, args.steps, args.organism, args.threads)


if __name__ == "__main__":
    main()
