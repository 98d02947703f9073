"""The cost of one held-out evaluation during training (``corerl.engine.heldout``) on the organism.

    python benchmarks/heldout.py --repeats 3
    python benchmarks/heldout.py --prior misaligned --threads 1

Loads the organism's base model as a tiny-profile run does (``corerl.engine.model.load_model``), then
times ``evaluate_policy`` on the tiny profile's held-out set (``eval_size`` problems x ``eval_samples``
samples, the study's token cap and batch) ``--repeats`` times on ``--threads`` torch threads, and
prints the wall and CPU seconds of each (the CPU seconds are what an idle core would take; on a shared
machine the wall time is longer) and the accuracy (the same every time: the evaluation seeds itself).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prior", choices=["aligned", "misaligned"], default="aligned")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the tiny profile's: 1)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    import torch

    from corerl.config import make_config
    from corerl.engine.heldout import evaluate_policy, heldout_sets, sampling_settings
    from corerl.engine.model import choose_backend, load_model
    from corerl.organism import ensure_base_model

    torch.set_num_threads(args.threads)
    config = make_config("tiny", organism_prior=args.prior, model=str(ensure_base_model(args.prior)))
    model, tokenizer, _ = load_model(config, choose_backend(config))
    sets = heldout_sets(config)
    seconds, processor, accuracies = [], [], []
    for _ in range(args.repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        figures = evaluate_policy(model, tokenizer, sets, config)
        seconds.append(time.perf_counter() - started)
        processor.append(time.process_time() - started_cpu)
        accuracies.append(figures["heldout/accuracy"])
    print(
        f"held-out evaluation, {args.prior} base, {config.eval_size} problems x {config.eval_samples} samples "
        f"({sampling_settings(config)}), {args.threads} thread(s): wall "
        + ", ".join(f"{value:.2f}" for value in seconds)
        + f" s (median {statistics.median(seconds):.2f}); CPU "
        + ", ".join(f"{value:.2f}" for value in processor)
        + f" s (median {statistics.median(processor):.2f}); accuracy {accuracies[0]:.4f}"
        + ("" if len(set(accuracies)) == 1 else f" NOT REPEATED: {accuracies}")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
