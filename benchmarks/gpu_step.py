"""GPU check of the ``t4`` profile: every study method, one Unsloth step each, then evaluation, offline.

    python benchmarks/gpu_step.py --out "$OUT"          # on a CUDA GPU (docs/t4.md, "GPU check")
    python benchmarks/gpu_step.py --dry --out DIR       # the same code path on a CPU: tiny model, no Unsloth

Runs fully offline (it sets ``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``, ``UNSLOTH_DISABLE_STATISTICS=1``),
so it can run on the borrowed GPU machine with the packages ``benchmarks/gpu_pack.py`` assembles on
``PYTHONPATH``. In order:

1. ``import unsloth`` (before transformers, as ``corerl.engine`` does); its failure is reported, not hidden;
2. a model of the real architecture and size (Qwen3-1.7B: 28 layers, hidden 2048, 151,936-word vocabulary)
   with random fp16 weights, and a tokenizer trained here on the shipped MATH questions, padded with
   placeholder tokens to the same vocabulary (ChatML template): nothing is downloaded;
3. one method of each family (``FAMILIES``: Co-rewarding-III too once ``corerl.config.METHODS`` has it) trained for
   ``--steps`` steps through ``corerl.engine.train`` on the t4 profile (4-bit QLoRA, fp16, Unsloth,
   micro-batches, the profile's rollouts; completions capped at ``--max-completion-length``, since random
   weights run to the cap) with the held-out evaluation during training when the config has it
   (``eval_every``/``eval_size``/``eval_samples``);
4. after all training, in the same process, the first method's trained model evaluated through the
   product's path (``corerl.study.evaluation.evaluate_cached``, what ``Study.evaluate`` runs);
5. per method: seconds of the first step and of the later ones, rollout tokens per second, peak GPU memory
   (allocated and reserved) under a ``--cap-gib`` cap (a T4's usable 15 GiB), host RAM; written as
   ``gpu_check.json`` in ``--out``, exit 1 when a stage failed or a peak went over the cap.

The defaults fit in about 5 minutes on one H100 (an estimate: not run yet, no GPU was lent to this
project); ``--max-minutes`` stops starting new methods past that and says which were skipped. ``--dry`` runs
steps 2-5 on a CPU with a small Qwen3 (same tokenizer recipe, vocabulary 4,096), fp32, no Unsloth, no
4-bit: CI runs it (``tests/test_gpu_step.py``). Without ``--dry`` and without a CUDA GPU it stops at once
with a message (exit 2).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "UNSLOTH_DISABLE_STATISTICS": "1"}
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
# --dry: the same architecture, small enough for a CPU test.
QWEN3_DRY = {
    **QWEN3_1_7B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 4096,
}
# One method per family of the study (the papers' methods and the baselines); random, the self-verify
# variants and the organism-only step-check reuse these code paths. Co-rewarding-III once it exists.
FAMILIES = (
    "ground-truth", "majority-vote", "entropy", "self-certainty", "co-rewarding-1", "co-rewarding-2", "co-rewarding-3",
)  # fmt: skip
HELDOUT = {"eval_every": 1, "eval_size": 4, "eval_samples": 2}  # issue 20's fields, when present


def build_random_model(out_dir: Path, shape: dict[str, Any], *, device: str) -> Path:
    """A Qwen3 model of ``shape`` with random fp16 weights and a local tokenizer of the same vocabulary."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from corerl.data import load_dataset
    from corerl.organism.tiny import build_tokenizer

    texts = [row["question"] for row in load_dataset("math-train", limit=2000)]
    tokenizer = build_tokenizer(texts, vocab_size=min(4096, shape["vocab_size"]))
    # Placeholders up to the model's vocabulary, so every id the random model samples decodes.
    tokenizer.add_tokens([f"<x{index}>" for index in range(shape["vocab_size"] - len(tokenizer))])
    torch.manual_seed(0)
    config = Qwen3Config(
        **shape,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    with torch.device(device):
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


def run_config(method: str, args: argparse.Namespace, model_dir: Path, runs: Path):
    """The t4 profile for ``method`` with the check's overrides (``--dry``: CPU, fp32, no Unsloth/4-bit)."""
    from corerl.config import FIELD_NAMES, make_config

    overrides: dict[str, Any] = {
        "method": method,
        "model": str(model_dir),
        "data": "math-train",
        "max_steps": args.steps,
        "output_dir": str(runs / method),
        "save_steps": 10**6,  # no checkpoint: final/ only
        "sample_every": 10**6,
        "progress": False,
        "max_completion_length": args.max_completion_length,
        "time_budget_minutes": None,
    }
    overrides.update({key: value for key, value in HELDOUT.items() if key in FIELD_NAMES})
    if args.dry:
        overrides.update(
            use_cpu=True, cpu_threads=2, precision="fp32", use_unsloth=False, load_in_4bit=False,
            gradient_checkpointing=False, questions_per_step=2, num_generations=4, micro_batch_rollouts=4,
        )  # fmt: skip
    config = make_config("t4", **overrides)
    return make_config("t4", **overrides, data_limit=max(16, 2 * args.steps * config.questions_per_step))


def train_one(method: str, args: argparse.Namespace, model_dir: Path, runs: Path, cap: float) -> dict:
    """Train ``method`` for ``args.steps`` steps; its figures (an ``error`` key when it failed)."""
    import torch

    from corerl.engine import train
    from corerl.rewards import VIEW_METHODS

    config = run_config(method, args, model_dir, runs)
    cuda = torch.cuda.is_available() and not args.dry
    gc.collect()
    if cuda:
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
    steps = [
        row for row in rows if "completion_length" in row
    ]  # training rows (a held-out step-0 row has none)
    times = [steps[0]["time"]] + [
        later["time"] - earlier["time"] for earlier, later in zip(steps, steps[1:], strict=False)
    ]
    steady = times[1:] or times
    prompts = config.questions_per_step * (2 if method in VIEW_METHODS else 1)
    rollouts = prompts * config.num_generations
    tokens = [row["completion_length"] * rollouts for row in steps]
    now, peak = host_ram_gib()
    result = {
        "method": method,
        "rollouts_per_step": rollouts,
        "completion_cap": config.max_completion_length,
        "steps": len(steps),
        "first_step_s": round(times[0], 2),
        "s_per_step": round(sum(steady) / len(steady), 2),
        "rollout_tokens_per_s": round(sum(tokens[-len(steady) :]) / sum(steady), 1),
        "heldout_rows": sum(any(key.startswith("heldout") for key in row) for row in rows),
        "host_ram_gib": round(now, 2),
        "host_ram_peak_gib": round(peak, 2),
        "wall_s_with_load": round(wall, 1),
    }
    if cuda:
        result["peak_gpu_allocated_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
        result["peak_gpu_reserved_gib"] = round(torch.cuda.max_memory_reserved() / GIB, 2)
        result["within_cap"] = torch.cuda.max_memory_reserved() <= cap
    return result


def evaluate_after_training(method: str, args: argparse.Namespace, runs: Path) -> dict:
    """``method``'s trained model through ``Study.evaluate``'s path, in this process after every Unsloth load."""
    from corerl.study.evaluation import evaluate_cached

    settings = {"k": 2, "questions": 4, "max_new_tokens": args.max_completion_length, "batch_size": 64}
    started = time.perf_counter()
    try:
        table = evaluate_cached(
            runs, method, profile="t4", model=None, benchmarks=["math500"], settings=settings, seed=0
        )
    except Exception as error:
        traceback.print_exc()
        return {"method": method, "error": f"{type(error).__name__}: {error}"[:300]}
    accuracy = table.loc[table["metric"] == "avg@k", "value"]
    return {
        "method": method,
        "benchmark": "math500",
        "questions": settings["questions"],
        "avg@k": float(accuracy.iloc[0]) if len(accuracy) else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    from corerl.config import METHODS

    methods = [method for method in FAMILIES if method in METHODS]
    parser = argparse.ArgumentParser(description="t4-profile GPU check of every method, offline, under a cap")
    parser.add_argument("--methods", nargs="+", default=methods, choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=1, help="steps per method (the first includes warm-up)")
    parser.add_argument("--cap-gib", type=float, default=15.0, help="GPU memory this process may use")
    parser.add_argument("--max-completion-length", type=int, default=128, help="the profile's is 512")
    parser.add_argument("--max-minutes", type=float, default=4.0, help="start no method past this")
    parser.add_argument(
        "--dry", action="store_true", help="CPU, a small model, no Unsloth: the code path only"
    )
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="gpu_check.json goes here")
    args = parser.parse_args(argv)

    import torch

    if not args.dry and not torch.cuda.is_available():
        from corerl.machine.hardware import GpuUnusableError, cuda_usable

        try:
            cuda_usable()
        except GpuUnusableError as error:
            print(f"gpu_step: {error}", file=sys.stderr)
            return 2
        print("gpu_step: no CUDA GPU on this machine (--dry runs the code path on a CPU).", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report: dict[str, Any] = {"dry": args.dry, "offline": OFFLINE, "steps": args.steps}
    if not args.dry:
        from corerl.machine.hardware import import_error

        report["unsloth_import_error"] = import_error("unsloth")  # before transformers, as corerl.engine
        total = torch.cuda.get_device_properties(0).total_memory
        cap = min(args.cap_gib * GIB, total)
        torch.cuda.set_per_process_memory_fraction(cap / total)
        report.update(gpu=torch.cuda.get_device_name(0), cap_gib=round(cap / GIB, 1))
    else:
        cap = float("inf")
    print(f"gpu_step: {json.dumps(report)}", flush=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        shape = QWEN3_DRY if args.dry else QWEN3_1_7B
        device = "cpu" if args.dry else "cuda"
        model_dir = build_random_model(Path(scratch) / "qwen3-random", shape, device=device)
        report["model_build_s"] = round(time.perf_counter() - started, 1)
        runs = Path(scratch) / "runs"
        for method in args.methods:
            elapsed = (time.perf_counter() - started) / 60
            if elapsed >= args.max_minutes:
                results.append(
                    {"method": method, "error": f"skipped: {elapsed:.1f} min used of --max-minutes"}
                )
                continue
            results.append(train_one(method, args, model_dir, runs, cap))
            print(json.dumps(results[-1]), flush=True)
        trained = [result["method"] for result in results if "error" not in result]
        report["evaluation"] = (
            evaluate_after_training(trained[0], args, runs) if trained else {"error": "no method trained"}
        )
    report["results"] = results
    report["total_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["evaluation"]))
    print(
        f"gpu_step: {len(trained)} of {len(results)} methods trained in {report['total_s']} s; {out / 'gpu_check.json'}"
    )
    failed = [result for result in results if "error" in result or result.get("within_cap") is False]
    return 1 if failed or "error" in report["evaluation"] or report.get("unsloth_import_error") else 0


if __name__ == "__main__":
    sys.exit(main())
