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
