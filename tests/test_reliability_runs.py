"""Issue 25 checks that train a model (tiny profile, CPU): exact resume with several steps per
generation batch, an interrupted run's exit status, collapse-step under a time budget, a corrupt
cached organism model. The structural checks are in ``tests/test_reliability.py``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from datasets import Dataset

from corerl.config import TrainConfig, make_config, to_yaml
from corerl.engine import train
from corerl.machine.rundir import CHECKPOINT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from corerl.organism import ensure_base_model, smoke_settings

    return ensure_base_model(
        "aligned", cache_dir=tmp_path_factory.mktemp("organism"), settings=smoke_settings()
    )


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    from corerl.organism import make_dataset

    rows = make_dataset(8, seed=0, difficulty=1)
    return Dataset.from_dict({name: rows[name] for name in ("id", "question", "rephrased", "answer")})


def tiny_config(base_model: Path, out: Path, **overrides) -> TrainConfig:
    settings = {
        "model": str(base_model),
        "output_dir": str(out),
        "max_steps": 4,
        "questions_per_step": 2,
        "num_generations": 2,
        "max_completion_length": 16,
        "learning_rate": 1e-3,
        "save_steps": 1,
        "save_total_limit": 8,
        "sample_every": 1,
        "progress": False,
        **overrides,
    }
    return make_config("tiny", method="majority-vote", **settings)


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "final" / "model.safetensors"))


def steps_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# -- 7. exact resume with several optimizer steps per generation batch ------------------------------


def test_a_time_budget_stop_inside_a_generation_batch_resumes_exactly(base_model, dataset, tmp_path) -> None:
    import torch

    reference = train(
        tiny_config(base_model, tmp_path / "reference", steps_per_generation=2), dataset=dataset
    )
    interrupted = tiny_config(
        base_model, tmp_path / "budget", steps_per_generation=2, time_budget_minutes=1e-9
    )
    train(interrupted, dataset=dataset)  # the budget is spent at step 1: it stops at the boundary, 2
    resumed = train(dataclasses.replace(interrupted, time_budget_minutes=None), resume=True, dataset=dataset)
    assert steps_of(resumed) == [1, 2, 3, 4]
    expected, actual = weights(reference), weights(resumed)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)  # bit-identical
    checkpoints = sorted(int(CHECKPOINT.match(p.name).group(1)) for p in reference.glob("checkpoint-*"))
    assert checkpoints == [2, 4]  # save_steps 1, moved to the generation boundaries


# -- 12. an interrupted `corerl train` is not a finished one -----------------------------------------


def test_an_interrupted_train_exits_3_and_says_so(base_model, dataset, tmp_path, capsys) -> None:
    from corerl.cli import main

    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in dataset.to_list()))
    config = tiny_config(base_model, tmp_path / "run", data=str(data), time_budget_minutes=1e-9)
    path = tmp_path / "budget.yaml"
    path.write_text(to_yaml(config))
    assert main(["train", "--config", str(path)]) == 3
    captured = capsys.readouterr()
    assert "run written to" not in captured.out
    assert "run interrupted by its time budget" in captured.err and "--resume" in captured.err


# -- 8. collapse-step under a time budget ----------------------------------------------------------


def test_collapse_step_interrupted_by_its_time_budget_says_so(
    base_model, dataset, tmp_path, capsys, monkeypatch
) -> None:
    from corerl.cli import main
    from corerl.study import collapse_step

    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in dataset.to_list()))
    protocol = collapse_step.protocol_config

    def small(*args, **kwargs):  # the protocol's 64 x 8 rollouts made small enough for a test
        config = protocol(*args, **kwargs)
        return dataclasses.replace(
            config,
            questions_per_step=2,
            num_generations=2,
            max_completion_length=16,
            time_budget_minutes=1e-9,
        )

    monkeypatch.setattr(collapse_step, "protocol_config", small)
    out = tmp_path / "collapse"
    command = [
        "collapse-step",
        "--model",
        str(base_model),
        "--data",
        str(data),
        "--max-steps",
        "3",
        "--out",
        str(out),
    ]
    assert main(command) == 3
    captured = capsys.readouterr()
    assert (
        "not reached by step 1, where the time budget" in captured.err
        and "not reached in" not in captured.out
    )


# -- a corrupt cached organism model is rebuilt, not reported as cached ------------------------------


def test_a_corrupt_cached_organism_model_is_built_again(tmp_path, caplog) -> None:
    from corerl.organism import ensure_base_model, smoke_settings

    built = ensure_base_model("aligned", cache_dir=tmp_path, settings=smoke_settings())
    weights_file = built / "model.safetensors"
    intact = weights_file.read_bytes()
    weights_file.write_bytes(intact[: len(intact) // 2])  # a copy cut short
    again = ensure_base_model("aligned", cache_dir=tmp_path, settings=smoke_settings())
    assert again == built and weights_file.read_bytes() == intact  # rebuilt, byte-identical
    assert f"{weights_file} is truncated" in caplog.text


# -- sampling that breaks (inf/NaN probabilities) is one line naming the step and settings -----------


def test_a_policy_with_nan_probabilities_is_one_line(base_model, dataset, tmp_path) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "nan-model"
    shutil.copytree(base_model, broken)
    tensors = load_file(str(broken / "model.safetensors"))
    name = next(name for name in tensors if "norm" in name)
    tensors[name] = torch.full_like(tensors[name], float("nan"))  # as diverged weights are
    save_file(tensors, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"sampling failed at step 1: .*learning_rate 0.001, temperature 1"):
        train(tiny_config(broken, tmp_path / "run"), dataset=dataset)
