"""GPU check of the ``t4`` profile: Unsloth vs plain TRL + PEFT, fp16, under a 15 GiB memory cap.

    python benchmarks/gpu_step.py                      # both backends, 5 steps each, majority-vote
    python benchmarks/gpu_step.py --backends plain --method co-rewarding-2 --no-vllm

Builds a model of the real architecture and size (Qwen3-1.7B: 28 layers, hidden 2048, vocabulary
151,936) with random weights from a config, so nothing is downloaded, plus a tokenizer trained
locally; then trains it through ``corerl.train`` on the t4 profile (4-bit QLoRA, fp16, 8 rollouts,
vLLM when importable) for a few steps on a slice of the shipped MATH training set. Each backend runs
in its own process (``import unsloth`` patches TRL for the whole process) and reports peak GPU memory,
seconds per step and rollout tokens per second (completion tokens of a step / step time). Random
weights rarely stop early, so completions run to the length cap: a worst case for speed and memory.
Needs a CUDA GPU; without one it stops with a message.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
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
    """Qwen3-1.7B-shaped model with random fp16 weights and a locally trained tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from corerl.data import load_dataset
    from corerl.tiny import build_tokenizer

    texts = [row["question"] for row in load_dataset("math-train", limit=2000)]
    tokenizer = build_tokenizer(texts, vocab_size=4096)
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
    return out_dir


def run_backend(args: argparse.Namespace) -> dict:
    """Train ``args.steps`` steps with one backend in this process; returns its figures."""
    if args.child == "unsloth":
        import unsloth  # noqa: F401  (before trl/transformers)
    import torch

    from corerl.config import make_config
    from corerl.engine import train

    total = torch.cuda.get_device_properties(0).total_memory
    cap = min(args.cap_gib * GIB, total)
    torch.cuda.set_per_process_memory_fraction(cap / total)
    overrides = {
        "method": args.method,
        "model": args.model_dir,
        "data": "math-train",
        "data_limit": 256,
        "max_steps": args.steps,
        "output_dir": str(Path(args.out) / args.child),
        "save_steps": 10**6,
        "progress": False,
        "use_unsloth": args.child == "unsloth",
        "use_vllm": not args.no_vllm,
    }
    base = make_config("t4")
    # vLLM's share is a fraction of the whole card: scale it so that it fits inside the cap.
    overrides["vllm_gpu_memory_utilization"] = base.vllm_gpu_memory_utilization * cap / total
    config = make_config("t4", **overrides)
    rows = [json.loads(line) for line in (train(config) / "metrics.jsonl").read_text().splitlines()]
    step_times = [later["time"] - earlier["time"] for earlier, later in zip(rows, rows[1:], strict=False)]
    seconds = sum(step_times) / len(step_times) if step_times else rows[0]["time"]
    rollouts = (
        config.questions_per_step * config.num_generations * (2 if args.method == "co-rewarding-1" else 1)
    )
    tokens = sum(row["completion_length"] for row in rows[1:] or rows) / len(rows[1:] or rows) * rollouts
    free, device_total = torch.cuda.mem_get_info()
    return {
        "backend": args.child,
        "vllm": config.use_vllm,
        "steps": len(rows),
        "seconds_per_step": round(seconds, 2),
        "rollout_tokens_per_second": round(tokens / seconds, 1),
        "peak_torch_gib": round(torch.cuda.max_memory_reserved() / GIB, 2),
        "device_used_gib_at_end": round((device_total - free) / GIB, 2),
        "cap_gib": round(cap / GIB, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="t4-profile GPU check: Unsloth vs TRL+PEFT")
    parser.add_argument("--backends", nargs="+", default=["unsloth", "plain"], choices=["unsloth", "plain"])
    parser.add_argument("--method", default="majority-vote")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--cap-gib", type=float, default=15.0)
    parser.add_argument("--no-vllm", action="store_true")
    parser.add_argument("--child", choices=["unsloth", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_step: no CUDA GPU on this machine; run it on a T4/A100 box (Colab, Kaggle).", file=sys.stderr
        )
        return 2
    if args.child:
        print(json.dumps(run_backend(args)))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = build_random_model(Path(scratch) / "qwen3-1.7b-random")
        results = []
        for backend in args.backends:
            command = [sys.executable, __file__, "--child", backend, "--model-dir", str(model_dir)]
            command += [
                "--out",
                str(Path(scratch) / "runs"),
                "--method",
                args.method,
                "--steps",
                str(args.steps),
            ]
            command += ["--cap-gib", str(args.cap_gib)] + (["--no-vllm"] if args.no_vllm else [])
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                results.append({"backend": backend, "error": done.stderr.strip().splitlines()[-1:]})
                continue
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"GPU: {torch.cuda.get_device_name(0)}, method {args.method}, {args.steps} steps, fp16, t4 profile")
    for result in results:
        print(json.dumps(result))
    return 0 if all("error" not in result for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
