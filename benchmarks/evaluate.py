"""Evaluation throughput on the tiny profile: questions per second through ``corerl.evaluate``.

Builds a tiny random model offline (``corerl.organism.tiny``), then evaluates it on the organism's held-out
questions and on MATH-500 (k samples each, batched HF generate, CPU unless --device says otherwise)
and prints questions/second and completions/second, generation and grading included.

    python benchmarks/evaluate.py [--questions 32] [--k 4] [--max-new-tokens 32] [--batch-size 16] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is often fastest for tiny models)",
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from corerl.arithmetic.dataset import make_rows
    from corerl.data import load_dataset
    from corerl.evaluate import evaluate
    from corerl.generation import load_model
    from corerl.organism.tiny import build_tiny_model

    texts = [row["question"] for row in make_rows(200)] + list(load_dataset("math500", limit=200)["question"])
    with tempfile.TemporaryDirectory() as folder:
        path = build_tiny_model(folder, texts, hidden_size=args.hidden_size)
        model, tokenizer = load_model(path, device=args.device, backend="hf")
        parameters = sum(p.numel() for p in model.parameters())
        print(
            f"tiny model: {parameters:,} parameters, device {args.device}, torch threads {torch.get_num_threads()}"
        )
        for benchmark in ("organism", "math500"):
            start = time.perf_counter()
            evaluation = evaluate(
                model,
                tokenizer,
                [benchmark],
                k=args.k,
                temperature=0.8,
                max_new_tokens=args.max_new_tokens,
                limit=args.questions,
                batch_size=args.batch_size,
                progress=False,
            )
            seconds = time.perf_counter() - start
            questions = int(evaluation.table["n"].iloc[0])
            print(
                f"{benchmark:>9}: {questions} questions x k={args.k}, <= {args.max_new_tokens} new tokens, "
                f"batch {args.batch_size}: {seconds:.2f} s, {questions / seconds:.1f} questions/s, "
                f"{questions * args.k / seconds:.1f} completions/s"
            )


if __name__ == "__main__":
    main()
