"""GPU check of the ``t4`` profile, every method, under a 15 GiB memory cap (a T4's usable memory).

    python benchmarks/gpu_step.py                           # every method, 2 steps each, one process
    python benchmarks/gpu_step.py --methods co-rewarding-1 co-rewarding-2 --steps 3 --backend plain

Builds a model of the real architecture and size (Qwen3-1.7B: 28 layers, hidden 2048, 151,936-word
vocabulary) with random fp16 weights from its config, so nothing is downloaded, and a tokenizer trained
locally on MATH questions and padded with placeholder tokens to the same vocabulary (ChatML template).
Then it trains every method through ``corerl.engine.train`` on the t4 profile (4-bit QLoRA, fp16,
micro-batches, the profile's rollouts and completion cap) for ``--steps`` steps on the shipped MATH
training set, one method after the other in this process, and prints per method: seconds of the first
step (warm-up included) and of the later ones, rollout tokens generated per second, peak GPU memory
(allocated and reserved by torch), and host RAM (resident now and the process's peak). Random weights
rarely stop early, so completions run to the length cap: a worst case for speed and memory.

The figures are what ``corerl/plan.py``'s cost model needs (set its constants from them and label them
"measured on <GPU>"). The whole run takes under 8 minutes on a recent datacenter GPU (``--max-minutes``
stops starting new methods past that and says which were skipped). Without a CUDA GPU it stops at once
with a message (exit 2).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

GIB = 2**30
QWEN3_1_7B = {
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}


def build_random_model(out_dir: Path) -> Path:
    """Qwen3-1.7B-shaped model with random fp16 weights and a local tokenizer of the same vocabulary."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from corerl.data import load_dataset
    from corerl.tiny import build_tokenizer

    texts = [row["question"] for row in load_dataset("math-train", limit=2000)]
    tokenizer = build_tokenizer(texts, vocab_size=4096)
    # Placeholders up to Qwen's vocabulary, so every id the random model samples decodes.
    tokenizer.add_tokens([f"<x{index}>" for index in range(QWEN3_1_7B["vocab_size"] - len(tokenizer))])
    torch.manual_seed(0)
    config = Qwen3Config(
        **QWEN3_1_7B,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float16)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del model
    return out_dir


def host_ram_gib() -> tuple[float, float]:
    """(resident now, peak of this process) in GiB, from /proc and getrusage (Linux)."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) * 1024 / GIB
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def measure(method: str, args: argparse.Namespace, model_dir: Path, out: Path) -> dict:
    """Train one method for ``args.steps`` steps; its figures (an ``error`` key when it failed)."""
    import torch

    from corerl.config import make_config
    from corerl.engine import train
    from corerl.rewards import VIEW_METHODS

    overrides = {
        "method": method,
        "model": str(model_dir),
        "data": "math-train",
        "max_steps": args.steps,
        "output_dir": str(out / method),
        "save_steps": 10**6,  # no checkpoint: the benchmark measures steps
        "sample_every": 10**6,
        "progress": False,
        "use_unsloth": args.backend != "plain",
    }
    if args.max_completion_length:
        overrides["max_completion_length"] = args.max_completion_length
    config = make_config("t4", **overrides)
    overrides["data_limit"] = max(16, 2 * args.steps * config.questions_per_step)
    config = make_config("t4", **overrides)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        run_dir = train(config)
    except Exception as error:  # one method failing must not hide the others' figures
        traceback.print_exc()
        return {"method": method, "error": f"{type(error).__name__}: {error}"[:300]}
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    times = [rows[0]["time"]] + [
        later["time"] - earlier["time"] for earlier, later in zip(rows, rows[1:], strict=False)
    ]
    steady = times[1:] or times
    prompts = config.questions_per_step * (2 if method in VIEW_METHODS else 1)
    rollouts = prompts * config.num_generations
    tokens = [row["completion_length"] * rollouts for row in rows]
    now, peak = host_ram_gib()
    return {
        "method": method,
        "rollouts_per_step": rollouts,
        "completion_cap": config.max_completion_length,
        "steps": len(rows),
        "first_step_s": round(times[0], 2),
        "s_per_step": round(sum(steady) / len(steady), 2),
        "rollout_tokens_per_s": round(sum(tokens[-len(steady) :]) / sum(steady), 1),
        "peak_gpu_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 2),
        "peak_gpu_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 2),
        "host_ram_gib": round(now, 2),
        "host_ram_peak_gib": round(peak, 2),
        "wall_s_with_load": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from corerl.config import STUDY_METHODS

    parser = argparse.ArgumentParser(description="t4-profile GPU check of every method under a memory cap")
    parser.add_argument("--methods", nargs="+", default=list(STUDY_METHODS), choices=list(STUDY_METHODS))
    parser.add_argument("--steps", type=int, default=2, help="steps per method (the first includes warm-up)")
    parser.add_argument("--cap-gib", type=float, default=15.0, help="GPU memory this process may use")
    parser.add_argument("--backend", choices=("auto", "unsloth", "plain"), default="auto")
    parser.add_argument("--max-completion-length", type=int, help="override the profile's cap")
    parser.add_argument("--max-minutes", type=float, default=8.0, help="start no method past this")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        from corerl.hardware import GpuUnusableError, cuda_usable

        try:
            cuda_usable()
        except GpuUnusableError as error:
            print(f"gpu_step: {error}", file=sys.stderr)
            return 2
        print(
            "gpu_step: no CUDA GPU on this machine; it measures the t4 profile on a GPU only.",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    if args.backend != "plain":
        from corerl.engine.model import import_error

        reason = import_error("unsloth")  # before transformers: Unsloth patches it on import
        if reason and args.backend == "unsloth":
            print(f"gpu_step: unsloth cannot be imported ({reason})", file=sys.stderr)
            return 2
        args.backend = "plain" if reason else "unsloth"
    total = torch.cuda.get_device_properties(0).total_memory
    cap = min(args.cap_gib * GIB, total)
    torch.cuda.set_per_process_memory_fraction(cap / total)
    name = torch.cuda.get_device_name(0)
    print(f"gpu_step: {name}, cap {cap / GIB:.1f} GiB, backend {args.backend}, {args.steps} steps per method")
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = build_random_model(Path(scratch) / "qwen3-1.7b-random")
        print(f"gpu_step: random Qwen3-1.7B built in {time.perf_counter() - started:.0f} s", flush=True)
        for method in args.methods:
            elapsed = (time.perf_counter() - started) / 60
            if elapsed >= args.max_minutes:
                results.append(
                    {"method": method, "error": f"skipped: {elapsed:.1f} min used of --max-minutes"}
                )
                continue
            result = measure(method, args, model_dir, Path(scratch) / "runs")
            results.append(result)
            print(json.dumps(result), flush=True)
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\n{name}, backend {args.backend}, cap {cap / GIB:.1f} GiB, fp16, t4 profile; total {minutes:.1f} min"
    )
    print(
        "| method | rollouts | s/step (first) | rollout tok/s | peak GPU GiB (reserved) | host RAM GiB (peak) |"
    )
    print("|---|---|---|---|---|---|")
    for result in results:
        if "error" in result:
            print(f"| {result['method']} | error: {result['error']} | | | | |")
            continue
        print(
            f"| {result['method']} | {result['rollouts_per_step']} | {result['s_per_step']} ({result['first_step_s']}) "
            f"| {result['rollout_tokens_per_s']} | {result['peak_gpu_allocated_gib']} ({result['peak_gpu_reserved_gib']}) "
            f"| {result['host_ram_gib']} ({result['host_ram_peak_gib']}) |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"gpu": name, "backend": args.backend, "results": results}, indent=2)
        )
    return 0 if all("error" not in result for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
