"""``corerl organism``: build the base models, export a dataset, measure a prior.

- ``corerl organism build [--prior aligned|misaligned|illusion|both|all] [--cache-dir DIR] [--smoke] [--force]``
  (``both``: aligned and misaligned; ``all``: every prior)
- ``corerl organism export OUT.jsonl [--n N] [--seed S] [--difficulty 1-3] [--split train|test]``
- ``corerl organism figures [--prior P | --model DIR] [--questions N] [--samples K]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from corerl.organism.build import PRIORS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("organism", help="synthetic arithmetic task and tiny base models (CPU)")
    commands = parser.add_subparsers(dest="organism_command", metavar="SUBCOMMAND", required=True)

    build = commands.add_parser("build", help="build (or find in the cache) the organism base models")
    build.add_argument("--prior", choices=[*PRIORS, "both", "all"], default="both")
    build.add_argument(
        "--cache-dir", type=Path, default=None, help="cache root (default $CORERL_CACHE/organism)"
    )
    build.add_argument("--smoke", action="store_true", help="seconds-long build for tests (format only)")
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=_build)

    export = commands.add_parser("export", help="write organism problems to a JSONL file")
    export.add_argument("out", type=Path)
    export.add_argument("--n", type=int, default=1000)
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--difficulty", type=_difficulty, default=None, help="ops per problem: 2 or 1-3")
    export.add_argument("--split", choices=["train", "test"], default="train")
    export.set_defaults(func=_export)

    figures = commands.add_parser("figures", help="pass@1, maj@k, majority share on held-out problems")
    source = figures.add_mutually_exclusive_group()
    source.add_argument("--prior", choices=list(PRIORS), default="aligned")
    source.add_argument("--model", type=Path, default=None, help="a model directory instead of a prior")
    figures.add_argument("--questions", type=int, default=200)
    figures.add_argument("--samples", type=int, default=8)
    figures.add_argument("--temperature", type=float, default=1.0)
    figures.add_argument("--seed", type=int, default=0)
    figures.set_defaults(func=_figures)


def _difficulty(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"difficulty must look like 2 or 1-3, got {text!r}") from error


def _build(args: argparse.Namespace) -> int:
    from corerl.organism.build import BuildSettings, cache_root, ensure_base_model, smoke_settings

    priors = {"both": ["aligned", "misaligned"], "all": list(PRIORS)}.get(args.prior, [args.prior])
    for prior in priors:
        settings = (
            smoke_settings(prior, args.seed) if args.smoke else BuildSettings(prior=prior, seed=args.seed)
        )
        target = cache_root(args.cache_dir) / f"{prior}-{settings.digest()}"
        if args.force and target.exists():
            shutil.rmtree(target)
        started = time.perf_counter()
        path = ensure_base_model(prior, cache_dir=args.cache_dir, settings=settings)
        print(f"{prior}: {path} ({time.perf_counter() - started:.1f} s)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from corerl.arithmetic.dataset import export_jsonl
    from corerl.arithmetic.task import DEFAULT_DIFFICULTY

    path = export_jsonl(
        args.out, args.n, seed=args.seed, difficulty=args.difficulty or DEFAULT_DIFFICULTY, split=args.split
    )
    print(f"wrote {args.n} {args.split} problems to {path}")
    return 0


def _figures(args: argparse.Namespace) -> int:
    from corerl.organism.build import ensure_base_model
    from corerl.organism.figures import measure_prior

    model_dir = args.model or ensure_base_model(args.prior)
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist")
    figures = measure_prior(
        model_dir,
        questions=args.questions,
        samples=args.samples,
        temperature=args.temperature,
        seed=args.seed,
    )
    print(json.dumps({name: value.as_dict() for name, value in figures.items()}, indent=2))
    return 0
