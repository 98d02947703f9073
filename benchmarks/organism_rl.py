"""The organism's RL figures: every study method on the tiny profile, several seeds, held-out avg@4.

    python benchmarks/organism_rl.py --seeds 3 --out organism_rl.json
    python benchmarks/organism_rl.py --seeds 3 --out gt.json --methods ground-truth,random
    python benchmarks/organism_rl.py --seeds 3 --out mis.json --prior misaligned --methods ground-truth,majority-vote
    python benchmarks/organism_rl.py --seeds 3 --out long.json --prior illusion --regime long
    python benchmarks/organism_rl.py --seeds 3 --out no-ema.json --prior illusion --regime long --methods co-rewarding-2 \
        --set teacher_alpha_start=0 --set teacher_alpha_end=0 --label co-rewarding-2-no-ema

Each (method, seed) run is ``corerl.engine.train`` with the tiny profile's defaults (only the seed,
the prior's base model and the output folder are set; ``--steps`` overrides the profile's steps).
Held-out accuracy is the curve each run logs as it trains (``corerl.engine.heldout``, the study's
evaluation: avg@4 at temperature 0.8 on the organism's 200 held-out problems, sampling seed = the
run's seed), read from its ``metrics.jsonl``: step 0 (the base model), every ``--eval-every`` steps
(default: the tiny profile's) and the last step. Writes JSON ``{method: {"base", "final_mean",
"final_sd", "peak_mean", ...}}`` (percent; ``base`` is step 0 averaged over the seeds' sampling,
``peak_mean`` the mean over seeds of the best evaluated step after step 0, the last included; sd is
the sample standard deviation over seeds) and prints it as a table; each method's entry also names
the prior, the regime (``corerl.study.regimes``), its overrides and the git commit the benchmark ran
from (each run's ``config.yaml`` records its own).
The verdict (``verdicts``, one per held-out set: ``heldout``, and ``heldout_hard`` where the regime
evaluates the hard slice) is the study's one collapse rule, ``corerl.collapse.heldout_verdict``, on the
seeds' curves: base, peak (seed mean) and its step, final, drop from the peak, spread, rose, fell,
collapsed (rose and fell), n seeds (percent). It is printed as a Markdown table, which ``--markdown FILE`` also writes under a
header line with the command line and the git commit. The JSON and the table are rewritten after each
method completes, so a partial grid is kept. ``--tabulate A.json B.json ... --markdown FILE`` writes
the table of saved JSON files (their curves) without running anything.
Under early stopping (``--set early_stopping=true``, SRT Sec. 5.1) a run ends where it stopped: its
curve and ``final`` end there, ``stopped_at`` and ``kept_steps`` name each seed's last step and the best
checkpoint it hands over, ``kept_mean`` / ``kept_sd`` that checkpoint's held-out avg@4 (without early
stopping, the last step's), and the figures below are that checkpoint's.
Extra keys: per-seed finals; ``mul_pass1`` and ``mul_maj8`` (``_base``, ``_final_mean``,
``_final_sd``): pass@1 and maj@8 (8 samples at T = 1) on the held-out problems with a multiplication,
where the misaligned prior's error lives; and from ``metrics.jsonl`` the training-rollout figures on problems with
a multiplication (``oracle_accuracy_mul``, ``pseudo_label_accuracy_mul``: first and last 10 steps,
and the highest 10-step rolling mean). ``--jobs 2`` runs two runs at a time, one torch thread each.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from corerl.collapse import VERDICT_COLUMNS, heldout_verdict
from corerl.config import STUDY_METHODS, TrainConfig, load_config
from corerl.machine.provenance import git_commit
from corerl.organism.build import PRIORS
from corerl.study.curves import regime_markdown
from corerl.study.regimes import REGIMES, regime_overrides

ROLLING = 10  # steps of the rolling mean of the training-rollout figures (4 questions per step)
FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(TrainConfig)}
MUL_METRICS = ("oracle_accuracy_mul", "pseudo_label_accuracy_mul")


def heldout_curve(metrics: list[dict[str, Any]], prefix: str = "heldout") -> dict[int, float]:
    """The held-out avg@4 the run logged on set ``prefix``, in percent, by step (0: the base model)."""
    column = f"{prefix}/accuracy"
    return {int(row["step"]): 100.0 * row[column] for row in metrics if row.get(column) is not None}


def curve_sets(metrics: list[dict[str, Any]]) -> list[str]:
    """The held-out sets a run logged: ``heldout`` first, then ``heldout_NAME`` (``eval_sets``)."""
    names = {key.removesuffix("/accuracy") for row in metrics for key in row if key.endswith("/accuracy")}
    return sorted(name for name in names if name.startswith("heldout"))


def kept_figures(curve: dict[int, float], stopping: dict[str, Any] | None, max_steps: int) -> dict[str, Any]:
    """Where a run ended and the held-out avg@4 of the model it hands over: the last step's, or under
    early stopping (SRT Sec. 5.1; ``stopping`` is its ``early_stopping.json``) the best checkpoint's.

    >>> kept_figures({0: 40.0, 25: 50.0, 50: 45.0}, {"best_step": 25, "stopped_at": 50}, 400)
    {'stopped_at': 50, 'kept_step': 25, 'kept': 50.0}
    """
    end = max_steps if stopping is None else stopping.get("stopped_at") or max_steps
    kept_step = end if stopping is None else stopping.get("best_step")
    missing = [step for step in (0, end, kept_step) if step not in curve]
    if missing:
        raise ValueError(
            f"the held-out curve has no row at step(s) {missing} (steps 0, the last ({end}) and the kept "
            f"model's ({kept_step})): under early stopping, --eval-every must divide early_stopping_eval_steps"
        )
    return {"stopped_at": end, "kept_step": kept_step, "kept": curve[kept_step]}


def verdict(curves: list[dict[Any, float]]) -> dict[str, Any]:
    """``corerl.collapse.heldout_verdict`` on the seeds' curves (percent, by step; JSON keys are
    strings): base, peak, peak_step, final, drop, spread (percent), rose, fell, collapsed, n_seeds."""
    rows = [
        (seed, int(step), value / 100.0) for seed, curve in enumerate(curves) for step, value in curve.items()
    ]
    found = heldout_verdict(pd.DataFrame(rows, columns=["seed", "step", "accuracy"]))
    figures = {name: getattr(found, name) for name in VERDICT_COLUMNS}
    for name in ("base", "peak", "final", "drop", "spread"):
        figures[name] = round(100.0 * figures[name], 2)
    return figures


def verdict_table(results: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of every method's verdicts, one row per (method, held-out set), as notebook 06
    and ``figures/regimes.md`` print it (``corerl.study.curves.regime_markdown``)."""
    rows = [
        {
            "prior": row["prior"],
            "regime": row["regime"],
            "method": key.rsplit("/", 1)[-1],  # tabulate's keys are prior/regime/method
            "heldout_set": name,
            **found,
            "commit": str(row.get("commit", "?"))[:7],
        }
        for key, row in results.items()
        for name, found in row["verdicts"].items()
    ]
    return regime_markdown(pd.DataFrame(rows))


def write_table(path: Path, results: dict[str, dict[str, Any]], command: str, commit: str) -> None:
    """``verdict_table`` under a header line naming the command and the git commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rule = "corerl.collapse.heldout_verdict; held-out avg@4 in percent, seed means"
    path.write_text(f"`{command}` (commit {commit}; {rule})\n\n{verdict_table(results)}")


def tabulate(files: list[Path]) -> dict[str, dict[str, Any]]:
    """The entries of saved benchmark JSON files, keyed ``method`` (``prior/regime/method`` when the
    files span several), each with ``verdicts`` computed from its curves."""
    entries = []
    for path in files:
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a benchmark JSON ({error})") from None
        for method, row in saved.items():
            if "curves" not in row:
                raise ValueError(f"{path}: entry {method!r} has no 'curves' (not an organism_rl.py JSON)")
            curves = {"heldout": row["curves"]} | {
                key.removeprefix("curves_"): value for key, value in row.items() if key.startswith("curves_")
            }
            verdicts = {name: verdict(value) for name, value in curves.items()}
            entries.append((method, {**row, "verdicts": verdicts}))
    several = len({(row["prior"], row["regime"]) for _, row in entries}) > 1
    return {
        (f"{row['prior']}/{row['regime']}/{method}" if several else method): row for method, row in entries
    }


def multiplication_figures(model_dir: str | Path, seed: int) -> dict[str, float]:
    """pass@1 and maj@8 in percent on the held-out problems with a multiplication (8 samples at T = 1,
    ``corerl.organism.measure_prior``): where the misaligned prior's systematic error lives; and from
    the same samples the strategy shares on all of them (``share/<strategy>``, percent)."""
    from corerl.organism import measure_prior
    from corerl.study import EVALUATION

    measured = measure_prior(model_dir, questions=EVALUATION["tiny"]["questions"], seed=seed)
    figures = measured["with_multiplication"]
    shares = {f"share/{name}": 100.0 * share for name, share in measured["all"].strategies.items()}
    return {"mul_pass1": 100.0 * figures.pass_at_1, "mul_maj8": 100.0 * figures.maj_at_k, **shares}


def _metric_summary(metrics: list[dict[str, Any]]) -> dict[str, float | None]:
    summary: dict[str, float | None] = {}
    for key in MUL_METRICS:
        values = [row[key] for row in metrics if row.get(key) is not None]
        if not values:
            continue
        rolling = [
            statistics.fmean(values[max(0, end - ROLLING) : end]) for end in range(ROLLING, len(values) + 1)
        ] or [statistics.fmean(values)]
        summary[f"{key}_first"] = 100.0 * statistics.fmean(values[:ROLLING])
        summary[f"{key}_last"] = 100.0 * statistics.fmean(values[-ROLLING:])
        summary[f"{key}_max_rolling"] = 100.0 * max(rolling)
    return summary


def run_one(
    method: str,
    seed: int,
    prior: str,
    steps: int | None,
    eval_every: int | None,
    root: str,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Train one run, read its held-out curve, evaluate its final model; returns its figures (a worker)."""
    import torch

    from corerl.engine import train
    from corerl.machine.rundir import EARLY_STOPPING_FILE, evaluation_model
    from corerl.organism import ensure_base_model

    torch.set_num_threads(1)
    out = Path(root) / f"{prior}-{method}-seed{seed}"
    config = load_config(
        "tiny",
        method=method,
        seed=seed,
        max_steps=steps,
        organism_prior=prior,
        model=str(ensure_base_model(prior)),
        output_dir=str(out),
        eval_every=eval_every,
        progress=False,
        **overrides,
    )
    started = time.perf_counter()
    run_dir = train(config)
    seconds = time.perf_counter() - started
    multiplication = multiplication_figures(evaluation_model(run_dir), seed)  # the model the run hands over
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curves = {name: heldout_curve(metrics, name) for name in curve_sets(metrics)}
    curve = curves.get("heldout", {})
    history = run_dir / EARLY_STOPPING_FILE
    try:
        kept = kept_figures(
            curve, json.loads(history.read_text()) if history.is_file() else None, config.max_steps
        )
    except ValueError as error:
        raise ValueError(f"{run_dir}/metrics.jsonl: {error}") from None
    shutil.rmtree(out, ignore_errors=True)
    return {
        "method": method,
        "seed": seed,
        "base": curve[0],
        "final": curve[kept["stopped_at"]],
        **kept,
        "peak": max(value for step, value in curve.items() if step > 0),
        "curve": curve,
        "extra_curves": {name: value for name, value in curves.items() if name != "heldout"},
        "train_seconds": seconds,
        **multiplication,
        **_metric_summary(metrics),
    }


def base_one(prior: str, seed: int) -> dict[str, float]:
    """The base model's figures on the problems with a multiplication (its held-out avg@4 is step 0)."""
    import torch

    from corerl.organism import ensure_base_model

    torch.set_num_threads(1)
    return multiplication_figures(ensure_base_model(prior), seed)


def summarize(runs: list[dict[str, Any]], base: dict[str, float]) -> dict[str, Any]:
    finals = [run["final"] for run in runs]
    summary: dict[str, Any] = {
        "base": round(statistics.fmean(run["base"] for run in runs), 2),
        "final_mean": round(statistics.fmean(finals), 2),
        "final_sd": round(statistics.stdev(finals), 2) if len(finals) > 1 else 0.0,
        "peak_mean": round(statistics.fmean(run["peak"] for run in runs), 2),
        "finals": [round(value, 2) for value in finals],
        "curves": [run["curve"] for run in runs],
        "train_seconds_mean": round(statistics.fmean(run["train_seconds"] for run in runs), 1),
        "stopped_at": [run["stopped_at"] for run in runs],
        "kept_steps": [run["kept_step"] for run in runs],
        "kept_mean": round(statistics.fmean(run["kept"] for run in runs), 2),
        "kept_sd": round(statistics.stdev(run["kept"] for run in runs), 2) if len(runs) > 1 else 0.0,
    }
    for name in runs[0]["extra_curves"]:
        summary[f"curves_{name}"] = [run["extra_curves"][name] for run in runs]
    summary["verdicts"] = {"heldout": verdict(summary["curves"])} | {
        name: verdict(summary[f"curves_{name}"]) for name in runs[0]["extra_curves"]
    }
    for key in ("mul_pass1", "mul_maj8"):
        summary[f"{key}_base"] = round(base[key], 2)
        summary[f"{key}_final_mean"] = round(statistics.fmean(run[key] for run in runs), 2)
        summary[f"{key}_final_sd"] = (
            round(statistics.stdev(run[key] for run in runs), 2) if len(runs) > 1 else 0.0
        )
    for key in sorted({key for run in runs for key in run if key.startswith("share/")}):
        summary[f"{key}_base"] = round(base[key], 2)
        summary[f"{key}_final_mean"] = round(statistics.fmean(run[key] for run in runs), 2)
    for key in sorted({key for run in runs for key in run if key.startswith(MUL_METRICS)}):
        values = [run[key] for run in runs if run.get(key) is not None]
        summary[f"{key}_mean"] = round(statistics.fmean(values), 2)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--out", type=Path, help="JSON file to write (rewritten after each method)")
    parser.add_argument("--markdown", type=Path, help="also write the verdict table (Markdown) to this file")
    parser.add_argument(
        "--tabulate", type=Path, nargs="+", metavar="JSON", help="only tabulate saved JSON files (no runs)"
    )
    parser.add_argument("--methods", default=",".join(STUDY_METHODS), help="comma-separated study methods")
    parser.add_argument("--prior", choices=list(PRIORS), default="aligned")
    parser.add_argument(
        "--regime",
        choices=list(REGIMES),
        default="default",
        help="a study regime (corerl.study.regimes): its overrides, then --steps and --set on top",
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the tiny profile's)")
    parser.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="held-out evaluation every N steps (default: the profile's)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument(
        "--label",
        help="the name of the (single) method's entry in the JSON and the table, for a variant made with --set, "
        "e.g. --methods co-rewarding-2 --set teacher_alpha_start=0 --set teacher_alpha_end=0 "
        "--label co-rewarding-2-no-ema",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field (YAML value), e.g. --set learning_rate=3e-5; for calibration",
    )
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(part) for part in sys.argv)
    commit = git_commit()  # each run's config.yaml records it too (corerl.machine.provenance)
    if args.tabulate:
        try:
            tabulated = tabulate(args.tabulate)
        except ValueError as error:
            parser.error(str(error))
        print(verdict_table(tabulated), end="")
        if args.markdown:
            write_table(args.markdown, tabulated, command, commit)
        return 0
    if args.out is None:
        parser.error("--out is required (unless --tabulate)")
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in STUDY_METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(STUDY_METHODS)}")
    if args.label is not None and len(methods) != 1:
        parser.error(f"--label names one method's entry; got {len(methods)} methods")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_every is not None and args.eval_every < 1:
        parser.error(f"--eval-every must be >= 1 (the figures are the held-out curve), got {args.eval_every}")

    overrides = regime_overrides(args.regime)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set needs KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value)
        if "float" in str(FIELD_TYPES.get(key.strip())) and isinstance(parsed, (str, int)):
            parsed = float(parsed)  # YAML reads 3e-5 as a string
        overrides[key.strip()] = parsed
    load_config("tiny", **overrides)  # a bad key or value fails here, before any run starts
    regime_steps = overrides.pop("max_steps", None)
    steps = args.steps or regime_steps

    from corerl.organism import ensure_base_model

    ensure_base_model(args.prior)  # build once, before the workers look for it
    started = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    with (
        tempfile.TemporaryDirectory(prefix="organism-rl-") as root,
        ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool,
    ):
        bases = [pool.submit(base_one, args.prior, seed) for seed in seeds]
        futures = {
            (method, seed): pool.submit(
                run_one, method, seed, args.prior, steps, args.eval_every, root, overrides
            )
            for method in methods
            for seed in seeds
        }
        base_figures = [future.result() for future in bases]
        base = {key: statistics.fmean(figures[key] for figures in base_figures) for key in base_figures[0]}
        results: dict[str, dict[str, Any]] = {}
        for method in methods:  # written as each method completes: a partial grid is kept
            results[args.label or method] = {
                **summarize([futures[method, seed].result() for seed in seeds], base),
                "prior": args.prior,
                "regime": args.regime,
                "overrides": overrides,
                "commit": commit,
                "command": command,
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2))
            if args.markdown:
                write_table(args.markdown, results, command, commit)
    print(
        f"prior {args.prior}, regime {args.regime}, seeds {seeds}, overrides {overrides}, commit {commit}, "
        f"held-out avg@4 (%), {time.perf_counter() - started:.0f} s"
    )
    print(f"{'method':16s} {'base':>6s} {'final':>13s} {'peak':>6s}  finals")
    for method, row in results.items():
        finals = " ".join(f"{value:.1f}" for value in row["finals"])
        print(
            f"{method:16s} {row['base']:6.1f} {row['final_mean']:6.1f} ± {row['final_sd']:4.1f} "
            f"{row['peak_mean']:6.1f}  {finals}"
        )
        if row["kept_steps"] != row["stopped_at"]:  # early stopping handed over a best checkpoint
            print(
                f"    early stopping: stopped at steps {row['stopped_at']}, kept checkpoints {row['kept_steps']}, "
                f"their held-out avg@4 {row['kept_mean']:.1f} ± {row['kept_sd']:.1f}"
            )
        print(
            f"    held-out problems with a multiplication: pass@1 {row['mul_pass1_base']:.1f} -> "
            f"{row['mul_pass1_final_mean']:.1f} ± {row['mul_pass1_final_sd']:.1f}, maj@8 {row['mul_maj8_base']:.1f} -> "
            f"{row['mul_maj8_final_mean']:.1f} ± {row['mul_maj8_final_sd']:.1f}"
        )
        shares = [
            key.removesuffix("_final_mean") for key in row if key.endswith("_final_mean") and "/" in key
        ]
        print(
            "    strategy shares (%, 8 samples at T = 1), base -> final: "
            + ", ".join(
                f"{key.removeprefix('share/')} {row[key + '_base']:.1f} -> {row[key + '_final_mean']:.1f}"
                for key in shares
            )
        )
        mul = [
            key
            for key in row
            if key.startswith("pseudo_label_accuracy_mul") or key.startswith("oracle_accuracy_mul")
        ]
        if mul:
            print("    " + ", ".join(f"{key.removesuffix('_mean')} {row[key]:.1f}" for key in mul))
    print(verdict_table(results), end="")
    print(f"wrote {args.out}" + (f" and {args.markdown}" if args.markdown else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
