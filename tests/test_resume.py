"""Exact resume at any step in any epoch (issue 13, items 1, 2, 7, 8 and 12).

One uninterrupted reference run (4 questions, 2 per step: 2 steps per epoch, a checkpoint every step)
is trained once; a kill at step ``j`` is simulated by a copy of its run directory as a SIGKILL after
step ``j`` leaves it: the checkpoints up to ``j``, the metric and sample rows up to ``j`` (plus a torn
line), no ``final/``. The resumed copy must then log the same rows and end with the same weights. The copy lives in
another folder than the one its ``config.yaml`` names, as a run folder moved on Drive does (13.7).
A real SIGKILL is exercised by ``tests/test_engine.py::test_kill_and_resume_counts_every_step_once``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corerl.config import make_config
from corerl.engine import train
from corerl.machine.rundir import CHECKPOINT

pytestmark = pytest.mark.slow

MAX_STEPS = 7  # 4 epochs of 2 steps (the last one cut short)
METHODS = ("majority-vote", "co-rewarding-1")


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


def config_for(base_model: Path, out: Path, method: str, **overrides):
    settings = {
        "model": str(base_model),
        "output_dir": str(out),
        "max_steps": MAX_STEPS,
        "questions_per_step": 2,
        "num_generations": 2,
        "max_completion_length": 16,
        "learning_rate": 1e-3,
        "save_steps": 1,
        "save_total_limit": MAX_STEPS,  # keep every checkpoint (None would mean "the profile's")
        "sample_every": 1,
        "samples_per_step": 8,
        "progress": False,
        **overrides,
    }
    return make_config("tiny", method=method, **settings)


@pytest.fixture(scope="module")
def reference(base_model, dataset, tmp_path_factory) -> dict[str, Path]:
    """The uninterrupted run of each method."""
    root = tmp_path_factory.mktemp("reference")
    return {
        method: train(config_for(base_model, root / method, method), dataset=dataset) for method in METHODS
    }


def rows_of(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{key: value for key, value in row.items() if key != "time"} for row in rows]


def killed_copy(reference: Path, target: Path, killed_after: int, logged: int | None = None) -> None:
    """``target`` as ``reference`` was when a SIGKILL hit it after step ``killed_after``
    (``metrics.jsonl`` cut back to step ``logged`` when given: a torn log)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != reference:
            return []
        dropped = [name for name in names if name == "final"]
        return dropped + [
            name for name in names if (m := CHECKPOINT.match(name)) and int(m.group(1)) > killed_after
        ]

    shutil.copytree(reference, target, ignore=ignore)
    assert (target / f"checkpoint-{killed_after}" / "trainer_state.json").is_file()
    for name in ("metrics.jsonl", "samples.jsonl"):
        lines = (reference / name).read_text().splitlines(keepends=True)
        last = logged if logged is not None and name == "metrics.jsonl" else killed_after
        kept = [line for line in lines if json.loads(line)["step"] <= last]
        (target / name).write_text("".join(kept) + '{"step": ')  # torn mid-write


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "final" / "model.safetensors")


def assert_same_run(resumed: Path, reference: Path) -> None:
    assert rows_of(resumed / "metrics.jsonl") == rows_of(reference / "metrics.jsonl")
    assert rows_of(resumed / "samples.jsonl") == rows_of(reference / "samples.jsonl")
    expected, got = weights(reference), weights(resumed)
    assert set(got) == set(expected) and all((got[name] == expected[name]).all() for name in expected)


def resume(base_model, dataset, reference: Path, target: Path, method: str, killed_after: int) -> Path:
    killed_copy(reference, target, killed_after)
    return train(config_for(base_model, target, method), dataset=dataset, resume=True)


@pytest.mark.parametrize("method", METHODS)
def test_resume_in_a_later_epoch_keeps_the_data_order(method, base_model, dataset, reference, tmp_path):
    # Killed after step 5: mid-way through the third epoch (steps 5-6).
    resumed = resume(base_model, dataset, reference[method], tmp_path / "run", method, killed_after=5)
    assert_same_run(resumed, reference[method])


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(killed_after=st.integers(min_value=1, max_value=MAX_STEPS - 1))
def test_a_run_killed_at_any_step_resumes_to_the_same_metrics_and_weights(
    killed_after, base_model, dataset, reference, tmp_path_factory
):
    target = tmp_path_factory.mktemp("killed") / "run"
    resumed = resume(base_model, dataset, reference["majority-vote"], target, "majority-vote", killed_after)
    assert_same_run(resumed, reference["majority-vote"])


def test_resume_of_a_finished_run_is_a_no_op_that_says_so(base_model, dataset, reference, tmp_path, caplog):
    """13.2: it used to train past max_steps and overwrite final/."""
    from corerl.machine.provenance import git_commit, recorded_commit

    # Every run records the commit it ran from (a comment line the resume check reads past).
    assert recorded_commit((reference["majority-vote"] / "config.yaml").read_text()) == git_commit()
    target = tmp_path / "run"
    shutil.copytree(reference["majority-vote"], target)
    before = {path: path.stat().st_mtime_ns for path in target.rglob("*")}
    train(config_for(base_model, target, "majority-vote"), dataset=dataset, resume=True)
    assert "is finished" in caplog.text and "nothing to do" in caplog.text
    assert {path: path.stat().st_mtime_ns for path in target.rglob("*")} == before


DAMAGES = {
    "truncated weights": ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:-100])),
    "garbage optimizer": ("optimizer.pt", lambda p: p.write_bytes(b"\x00garbage" * 100)),
    "corrupt trainer state": ("trainer_state.json", lambda p: p.write_text(p.read_text()[:20])),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_broken_newest_checkpoint_falls_back_to_the_previous_one(
    damage, base_model, dataset, reference, tmp_path, caplog
):
    """13.8: a broken checkpoint is named and skipped; the resume stays exact."""
    target = tmp_path / "run"
    killed_copy(reference["majority-vote"], target, killed_after=5)
    name, corrupt = DAMAGES[damage]
    corrupt(target / "checkpoint-5" / name)
    train(config_for(base_model, target, "majority-vote"), dataset=dataset, resume=True)
    assert f"checkpoint-5/{name} is" in caplog.text
    assert_same_run(target, reference["majority-vote"])


@pytest.mark.parametrize("logged", [3, 0])
def test_a_torn_or_deleted_log_is_trained_again_not_left_with_a_gap(
    logged, base_model, dataset, reference, tmp_path, caplog
):
    """13.8: the log ends before the newest checkpoint (torn; 0: deleted): resume where the log ends."""
    target = tmp_path / "run"
    killed_copy(reference["majority-vote"], target, killed_after=5, logged=logged)
    if logged == 0:
        (target / "metrics.jsonl").unlink()
    train(config_for(base_model, target, "majority-vote"), dataset=dataset, resume=True)
    assert f"logs steps 1-{logged} only" in caplog.text
    assert_same_run(target, reference["majority-vote"])


def test_a_lora_teacher_stays_out_of_the_saved_adapters_and_resume_is_exact(base_model, dataset, tmp_path):
    """Co-rewarding-II with LoRA: checkpoints and final/ hold the policy's adapter alone (the teacher
    travels in teacher.pt), so transformers resumes the policy's adapter, not the teacher's subfolder."""
    from safetensors.torch import load_file

    from corerl.engine.teacher import TEACHER_ADAPTER, TEACHER_STATE_FILE

    lora = {"lora": True, "lora_rank": 4, "lora_alpha": 8, "beta": 0.05, "max_steps": 4}
    reference = train(
        config_for(base_model, tmp_path / "reference", "co-rewarding-2", **lora), dataset=dataset
    )
    for folder in (reference / "final", reference / "checkpoint-2"):
        assert (folder / "adapter_model.safetensors").is_file(), folder
        assert not (folder / TEACHER_ADAPTER).exists(), f"{folder} holds the teacher adapter"
        saved = load_file(folder / "adapter_model.safetensors")
        assert saved and not [name for name in saved if f".{TEACHER_ADAPTER}." in name]
    assert (reference / "checkpoint-2" / TEACHER_STATE_FILE).is_file()
    target = tmp_path / "resumed"
    killed_copy(reference, target, 2)
    resumed = train(config_for(base_model, target, "co-rewarding-2", **lora), dataset=dataset, resume=True)
    assert rows_of(resumed / "metrics.jsonl") == rows_of(reference / "metrics.jsonl")
    expected = load_file(reference / "final" / "adapter_model.safetensors")
    got = load_file(resumed / "final" / "adapter_model.safetensors")
    assert set(got) == set(expected) and all(torch_equal(got[name], expected[name]) for name in expected)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
