"""The prepared GPU check (``benchmarks/gpu_step.py``): its ``--dry`` mode runs the same code path on a
CPU (a small Qwen3, no Unsloth), so a break in it shows here before a GPU session is spent on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_check_dry_mode_trains_then_evaluates_and_writes_json(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_step.py"), "--dry", "--out", str(tmp_path)]
    command += ["--methods", "ground-truth", "co-rewarding-1", "--max-completion-length", "4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry"] and report["offline"]["HF_HUB_OFFLINE"] == "1"
    assert [result["method"] for result in report["results"]] == ["ground-truth", "co-rewarding-1"]
    for result in report["results"]:
        assert result["steps"] == 1 and result["s_per_step"] > 0 and result["rollout_tokens_per_s"] > 0
    assert report["results"][1]["rollouts_per_step"] == 2 * report["results"][0]["rollouts_per_step"]
    evaluation = report["evaluation"]
    assert evaluation["method"] == "ground-truth" and 0 <= evaluation["avg@k"] <= 1


def test_the_pack_trims_what_the_check_never_loads_and_keeps_what_it_imports() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gpu_pack", Path(__file__).parent.parent / "benchmarks" / "gpu_pack.py"
    )
    assert spec is not None and spec.loader is not None
    gpu_pack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_pack)
    trimmed = [
        "test/test_ops.py",
        "multiprocess/tests/__init__.py",
        "trl/__init__.pyi",
        "trl-1.14.2.dist-info/RECORD",
        "bitsandbytes/libbitsandbytes_cuda121.so",
        "studio/app.py",
        "unsloth_zoo/mlx/x.py",
    ]
    kept = [
        "unsloth/models/llama.py",
        "trl-1.14.2.dist-info/METADATA",
        "bitsandbytes/libbitsandbytes_cuda130.so",
        "testing_utils/x.py",
        "torchao/quantization/quant_api.py",
    ]
    assert [path for path in trimmed if not gpu_pack.TRIM.match(path)] == []
    assert [path for path in kept if gpu_pack.TRIM.match(path)] == []
