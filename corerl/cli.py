"""The ``corerl`` command line.

Each subcommand lives in the module that implements it: the module exposes
``register(subparsers)`` which adds its parser and sets ``func`` to a callable taking the parsed
arguments. Modules import their heavy dependencies (torch, transformers, trl) inside that callable,
so ``corerl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that contribute subcommands, in the order ``corerl --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "corerl.demo",
    "corerl.evaluate",
    "corerl.engine.cli",
    "corerl.rephrase",
    "corerl.organism.cli",
    "corerl.tools.reproduce",
    "corerl.study.collapse_step",
    "corerl.tools.plan",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corerl",
        description="Label-free RL for LLM reasoning: rewards, training, evaluation and collapse analysis.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    from corerl.machine.hardware import GpuUnusableError  # light: no torch import

    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, GpuUnusableError) as error:
        # Bad input (a missing file, a missing column, an unknown method) and a GPU torch cannot use
        # are reported in one line; anything else is a bug and keeps its traceback.
        print(f"corerl {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
