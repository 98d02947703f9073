"""``corerl collapse-step``: the Model Collapse Step protocol (arXiv 2603.08660, as secondary summaries report it)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from corerl.study.collapse_step import CURVE_FILE, protocol_config, stop_below_threshold, write_curve


def test_protocol_is_64_questions_by_8_rollouts_without_kl() -> None:
    for profile, model in (("tiny", "aligned"), ("t4", "unsloth/Qwen3-1.7B-Base")):
        config = protocol_config(model, profile, max_steps=7)
        assert (config.method, config.questions_per_step, config.num_generations) == ("majority-vote", 64, 8)
        assert config.beta == 0.0 and config.max_steps == 7
    assert protocol_config("misaligned").organism_prior == "misaligned"
    assert protocol_config("/models/m", "tiny").model == "/models/m"


def _metrics(path: Path, values: list[float]) -> None:
    rows = [
        {"step": i + 1, "reward_accuracy": v, "oracle_accuracy": 0.5, "reward_mean": 0.9}
        for i, v in enumerate(values)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_training_stops_at_the_first_step_below_the_threshold(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    callback = stop_below_threshold(metrics, 0.01)
    for values, step, stops in (([0.5], 1, False), ([0.5, 0.02], 2, False), ([0.5, 0.02, 0.005], 3, True)):
        _metrics(metrics, values)
        control = SimpleNamespace(should_training_stop=False)
        callback.on_log(None, SimpleNamespace(global_step=step), control)
        assert control.should_training_stop is stops


@pytest.mark.parametrize(("values", "expected"), [([0.6, 0.2, 0.004, 0.3], 3), ([0.6, 0.5], None)])
def test_curve_files_and_the_step(tmp_path: Path, values: list[float], expected: int | None) -> None:
    _metrics(tmp_path / "metrics.jsonl", values)
    step, steps = write_curve(tmp_path)
    assert (step, steps) == (expected, len(values))
    curve = [json.loads(line) for line in (tmp_path / CURVE_FILE).read_text().splitlines()]
    assert [row["reward_accuracy"] for row in curve] == values
    assert (tmp_path / "collapse_curve.png").stat().st_size > 0


def test_cli_rejects_a_bad_threshold(capsys) -> None:
    from corerl.cli import main

    assert main(["collapse-step", "--model", "aligned", "--threshold", "2"]) == 2
    assert "--threshold must be in (0, 1)" in capsys.readouterr().err
