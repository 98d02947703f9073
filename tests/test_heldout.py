"""Held-out accuracy during training (issue 20.1): rows at step 0 and every ``eval_every`` steps, the
base model's evaluation at step 0, weights untouched by the evaluation, the same rows after a resume.

One reference run (5 steps, an evaluation every 2 steps and at the last, a checkpoint every step) on
the organism's seconds-long smoke build is trained once; the other runs are compared with it.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy
import pytest
import torch

from corerl.arithmetic.strategies import STRATEGIES
from corerl.config import make_config
from corerl.engine import train
from corerl.engine.heldout import EVAL_SETS, EvalSet, heldout_sets, own_random_state
from corerl.machine.rundir import CHECKPOINT

pytestmark = pytest.mark.heldout

MAX_STEPS = 5
EVAL = {"eval_every": 2, "eval_size": 6, "eval_samples": 2}
SHARES = {f"heldout/share/{name}" for name in STRATEGIES}


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from corerl.organism import ensure_base_model, smoke_settings

    return ensure_base_model(
        "aligned", cache_dir=tmp_path_factory.mktemp("organism"), settings=smoke_settings()
    )


@pytest.fixture(scope="module")
def dataset():
    from datasets import Dataset

    from corerl.organism import make_dataset

    rows = make_dataset(4, seed=0, difficulty=1)
    return Dataset.from_dict({name: rows[name] for name in ("id", "question", "rephrased", "answer")})


def config_for(base_model: Path, out: Path, **overrides):
    settings = {
        "model": str(base_model),
        "output_dir": str(out),
        "max_steps": MAX_STEPS,
        "questions_per_step": 2,
        "num_generations": 2,
        "max_completion_length": 16,
        "learning_rate": 1e-3,
        "save_steps": 1,
        "save_total_limit": MAX_STEPS,
        "progress": False,
        **EVAL,
        **overrides,
    }
    return make_config("tiny", method="majority-vote", **settings)


def rows_of(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{key: value for key, value in row.items() if key != "time"} for row in rows]


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "final" / "model.safetensors")


@pytest.fixture(scope="module")
def reference(base_model, dataset, tmp_path_factory) -> Path:
    return train(config_for(base_model, tmp_path_factory.mktemp("reference") / "run"), dataset=dataset)


def test_the_tiny_default_is_the_studys_evaluation_every_10_steps() -> None:
    from corerl.study.profiles import EVALUATION

    config = make_config("tiny")
    assert (config.eval_every, config.eval_size, config.eval_samples) == (10, 200, 4)
    assert (config.eval_size, config.eval_samples) == (
        EVALUATION["tiny"]["questions"],
        EVALUATION["tiny"]["k"],
    )
    assert make_config("t4").eval_every == 0  # off on the T4 (cost: corerl/config.py)


def test_bad_evaluation_settings_are_refused_before_a_model_loads(tmp_path) -> None:
    with pytest.raises(ValueError, match="eval_every must be >= 0, got -1"):
        make_config("tiny", eval_every=-1)
    with pytest.raises(ValueError, match=r"eval_samples must be in \[1, 1024\], got 0"):
        make_config("tiny", eval_samples=0)
    with pytest.raises(ValueError, match="eval_sets needs eval_every > 0"):
        make_config("tiny", eval_every=0, eval_sets=["hard"])
    with pytest.raises(ValueError, match="unknown held-out set.*nope"):
        train(config_for(Path("/nonexistent/model"), tmp_path / "run", eval_sets=["nope"]))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_the_train_command_sets_eval_every(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import corerl.engine
    from corerl.cli import main

    seen = []
    monkeypatch.setattr(corerl.engine, "train", lambda config, resume=False: seen.append(config) or tmp_path)
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "model.safetensors").write_bytes(b"")  # a finished run: exit status 0
    assert main(["train", "--eval-every", "5", "--out", str(tmp_path)]) == 0
    assert main(["train", "--eval-every", "0", "--out", str(tmp_path)]) == 0
    assert main(["train", "--out", str(tmp_path)]) == 0
    assert [config.eval_every for config in seen] == [5, 0, 10]


def test_the_evaluation_leaves_every_random_generator_as_it_found_it() -> None:
    random.seed(1), numpy.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), numpy.random.random(), torch.rand(1).item())
    random.seed(1), numpy.random.seed(1), torch.manual_seed(1)
    with own_random_state():
        random.random(), numpy.random.random(), torch.rand(3)
    assert (random.random(), numpy.random.random(), torch.rand(1).item()) == expected


@pytest.mark.slow
def test_heldout_rows_at_step_0_every_eval_every_steps_and_the_last(reference) -> None:
    rows = rows_of(reference)
    assert [row["step"] for row in rows] == [0, 1, 2, 3, 4, 5]  # step 0: a row of its own
    evaluated = [row["step"] for row in rows if "heldout/accuracy" in row]
    assert evaluated == [0, 2, 4, 5]
    for row in rows:
        if row["step"] in evaluated:
            assert 0.0 <= row["heldout/accuracy"] <= 1.0
            assert set(row) >= SHARES and sum(row[key] for key in SHARES) == pytest.approx(1.0)
        else:
            assert not any(key.startswith("heldout") for key in row)
    assert set(rows[0]) == {"step", "method", "heldout/accuracy", *SHARES}
    from corerl.collapse import read_metrics

    assert read_metrics(reference)["step"].tolist() == [0, 1, 2, 3, 4, 5]  # the reader accepts step 0


@pytest.mark.slow
def test_step_0_is_the_studys_evaluation_of_the_base_model(base_model, reference, tmp_path) -> None:
    from corerl.study.evaluation import evaluate_cached
    from corerl.study.profiles import eval_settings

    settings = {**eval_settings("tiny", questions=EVAL["eval_size"]), "k": EVAL["eval_samples"]}
    table = evaluate_cached(
        tmp_path,
        "base",
        profile="tiny",
        model=base_model,
        benchmarks=("organism",),
        settings=settings,
        seed=0,
    )
    values = dict(zip(table["metric"], table["value"], strict=True))
    step_0 = rows_of(reference)[0]
    assert step_0["heldout/accuracy"] == values["avg@k"]
    assert {key: step_0[key] for key in SHARES} == {
        f"heldout/share/{name}": values[f"strategy/{name}"] for name in STRATEGIES
    }


@pytest.mark.slow
def test_the_weights_are_the_same_with_and_without_the_evaluation(
    base_model, dataset, reference, tmp_path
) -> None:
    plain = train(config_for(base_model, tmp_path / "run", eval_every=0), dataset=dataset)
    expected, got = weights(reference), weights(plain)
    assert set(got) == set(expected) and all(torch.equal(got[name], expected[name]) for name in expected)
    training_rows = [
        {key: value for key, value in row.items() if not key.startswith("heldout")}
        for row in rows_of(reference)
        if row["step"] > 0
    ]
    assert rows_of(plain) == training_rows  # the same rollouts, rewards and figures at every step


def killed_copy(reference: Path, target: Path, killed_after: int) -> None:
    """``target`` as a SIGKILL after step ``killed_after`` left ``reference`` (a torn last line)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != reference:
            return []
        return [
            name
            for name in names
            if name == "final" or ((m := CHECKPOINT.match(name)) and int(m.group(1)) > killed_after)
        ]

    shutil.copytree(reference, target, ignore=ignore)
    for name in ("metrics.jsonl", "samples.jsonl"):
        lines = (reference / name).read_text().splitlines(keepends=True)
        kept = [line for line in lines if json.loads(line)["step"] <= killed_after]
        (target / name).write_text("".join(kept) + '{"step": ')


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", [0, 3])
def test_a_resumed_run_logs_the_same_heldout_rows(
    killed_after, base_model, dataset, reference, tmp_path
) -> None:
    """Killed after the step-0 evaluation (no checkpoint yet) or after step 3: step 0 is neither lost
    nor evaluated twice, and the later evaluations equal the uninterrupted run's."""
    target = tmp_path / "run"
    killed_copy(reference, target, killed_after)
    train(config_for(base_model, target), dataset=dataset, resume=True)
    assert rows_of(target) == rows_of(reference)
    expected, got = weights(reference), weights(target)
    assert all(torch.equal(got[name], expected[name]) for name in expected)


@pytest.mark.slow
def test_an_additional_set_writes_its_own_columns(base_model, dataset, tmp_path, monkeypatch) -> None:
    from corerl.organism import make_dataset

    monkeypatch.setitem(
        EVAL_SETS, "small", EvalSet(lambda config: make_dataset(3, split="test"), organism=True)
    )
    config = config_for(base_model, tmp_path / "run", max_steps=2, eval_sets=["small"])
    assert [heldout.prefix for heldout in heldout_sets(config)] == ["heldout", "heldout_small"]
    rows = rows_of(train(config, dataset=dataset))
    assert [row["step"] for row in rows if "heldout_small/accuracy" in row] == [0, 2]
    assert {f"heldout_small/share/{name}" for name in STRATEGIES} <= set(rows[0])


def test_the_hard_slice_is_held_out_problems_of_3_to_4_operations_disjoint_from_training() -> None:
    from corerl.config import load_config
    from corerl.engine.dataset import load_training_data
    from corerl.study.regimes import regime_overrides

    config = load_config("tiny", **regime_overrides("hard"), eval_every=25, eval_size=60)
    assert config.eval_sets == ("hard",)
    sets = {heldout.prefix: heldout for heldout in heldout_sets(config)}
    assert list(sets) == ["heldout", "heldout_hard"]
    hard = sets["heldout_hard"]
    assert hard.organism and len(hard.dataset) == 60
    assert set(hard.dataset["num_ops"]) == {3, 4}
    assert EVAL_SETS["hard"].rows(config)["id"] == hard.dataset["id"]  # a fixed set
    training = set(load_training_data(config)["expression"])
    assert not training & set(hard.dataset["expression"])
