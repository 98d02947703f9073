"""Make and check the second view of Co-rewarding-I: a rewrite of every question.

The ``corerl rephrase`` command: ``register`` adds it to ``corerl.cli``, ``run_command`` runs it.
Model loading (torch, transformers) happens inside ``run_command`` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from corerl.rephrase.pipeline import load_rows, output_paths, rephrase_rows
from corerl.rephrase.prompt import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from corerl.rephrase.rephrasers import (
    ConsistencyCheck,
    ModelRephraser,
    OrganismRephraser,
    Rephraser,
    existing_rephraser,
)
from corerl.rephrase.rules import REJECT_RULES, RULES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rephrase`` command to ``corerl``'s subparsers."""
    parser = subparsers.add_parser(
        "rephrase",
        help="write and validate a rephrased view of every question (Co-rewarding-I's second view)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--input", required=True, help="dataset name or JSONL/Parquet/CSV file with a question column"
    )
    parser.add_argument(
        "--out", required=True, help="output .jsonl (or .parquet); rejected rows go to *.rejected.jsonl"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model", help="instruction model name or path, or 'organism' for the organism's templates"
    )
    source.add_argument(
        "--check-existing", action="store_true", help="validate the input's own 'rephrased' column"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="rows per batch (written after each batch)"
    )
    parser.add_argument("--resume", action="store_true", help="continue a run: skip ids already written")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument(
        "--reject",
        default=",".join(REJECT_RULES),
        help=f"comma-separated rules that reject (others only flag); rules: {','.join(RULES)}",
    )
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    parser.add_argument("--top-p", type=float, default=DEFAULT_TOP_P)
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--consistency-model",
        default=None,
        help="solver model: keep a pair only when its majority answers on both views agree",
    )
    parser.add_argument(
        "--consistency-k", type=int, default=4, help="answers per view for the consistency check"
    )
    parser.add_argument("--consistency-max-new-tokens", type=int, default=1024)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Run ``corerl rephrase``: rewrite or check the input, print the summary; returns the exit code."""
    reject = [name.strip() for name in args.reject.split(",") if name.strip()]
    if Path(args.input).resolve() == Path(args.out).resolve():
        raise ValueError(
            f"--out {args.out} is the --input file: choose another output (it would overwrite the "
            "input, and with --resume every row would count as already done)"
        )
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1 (leave it out for every row), got {args.limit}")
    rows = load_rows(args.input, limit=args.limit)
    rephraser: Rephraser
    if args.check_existing:
        rephraser = existing_rephraser
    elif args.model == "organism":
        rephraser = OrganismRephraser(seed=args.seed)
    else:
        from corerl.generation import load_model

        model, tokenizer = load_model(args.model)
        rephraser = ModelRephraser(
            model,
            tokenizer,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            batch_size=args.batch_size,
        )
    consistency = None
    if args.consistency_model:
        from corerl.generation import load_model

        solver, solver_tokenizer = load_model(args.consistency_model)
        consistency = ConsistencyCheck(
            solver,
            solver_tokenizer,
            k=args.consistency_k,
            max_new_tokens=args.consistency_max_new_tokens,
            seed=args.seed,
            batch_size=args.batch_size,
        )
    summary = rephrase_rows(
        rows,
        rephraser,
        args.out,
        reject=reject,
        consistency=consistency,
        batch_size=args.batch_size,
        resume=args.resume,
    )
    _, rejected_path = output_paths(args.out)
    print(summary.format())
    print(f"kept rows: {args.out}\nrejected rows: {rejected_path}")
    return 0
