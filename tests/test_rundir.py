"""The run directory's integrity (issue 13, items 3, 7, 8): the writer's lock, complete checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from corerl.config import TrainConfig, run_differences
from corerl.engine.run import last_complete_checkpoint
from corerl.machine.rundir import LOCK_FILE, STALE_AFTER_S, RunLockedError, checkpoint_problem, run_lock


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_writer_is_refused_with_the_holders_name(tmp_path) -> None:
    with run_lock(tmp_path / "run"):
        holder = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with (
            pytest.raises(
                RunLockedError, match=rf"being written by pid {os.getpid()} on host {socket.gethostname()}"
            ),
            run_lock(tmp_path / "run"),
        ):
            pass
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # released
    with run_lock(tmp_path / "run"):  # and free again
        pass


def test_a_stale_lock_is_taken_over(tmp_path, caplog) -> None:
    lock = tmp_path / LOCK_FILE
    lock.write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "started": "then"}))
    with run_lock(tmp_path):  # the holder is dead on this host
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text
    # Another host: its pid means nothing here; stale once its heartbeat stops.
    lock.write_text(json.dumps({"pid": os.getpid(), "host": "colab-vm-1", "started": "then"}))
    with pytest.raises(RunLockedError, match="pid .* on host colab-vm-1"), run_lock(tmp_path):
        pass
    old = time.time() - STALE_AFTER_S - 1
    os.utime(lock, (old, old))
    with run_lock(tmp_path):
        pass


def test_train_refuses_a_locked_run_before_loading_a_model(tmp_path) -> None:
    from corerl.engine import train

    config = TrainConfig(model="/nonexistent/model", output_dir=str(tmp_path / "run"))
    with run_lock(config.run_dir), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        train(config)


def test_the_run_is_what_defines_it_not_where_it_lives() -> None:
    """Resume compares the run's settings, not the spelling of its folder (13.7)."""
    spellings = ["./runs/k2", "runs/k2/", str(Path("runs/k2").resolve()), "/content/drive/MyDrive/corerl/k2"]
    configs = [TrainConfig(output_dir=spelling) for spelling in spellings]
    assert all(run_differences(configs[0], other) == [] for other in configs)
    assert run_differences(TrainConfig(seed=1), TrainConfig(seed=2)) == ["seed: 1 -> 2"]


def complete_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    save_file({"w": torch.zeros(64)}, folder / "model.safetensors")
    torch.save({"state": {}}, folder / "optimizer.pt")
    torch.save({"teacher": torch.ones(2)}, folder / "teacher.pt")
    return folder


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-40]),
            "model.safetensors is truncated",
        ),
        (
            lambda f: (f / "optimizer.pt").write_bytes(b"garbage" * 10),
            "optimizer.pt is not a complete torch archive",
        ),
        (
            lambda f: (f / "trainer_state.json").write_text('{"global_step": 1'),
            "trainer_state.json is not valid JSON",
        ),
        (lambda f: (f / "model.safetensors").unlink(), "holds no model weights"),
    ],
)
def test_a_broken_checkpoint_is_named_and_skipped(tmp_path, caplog, damage, message) -> None:
    complete_checkpoint(tmp_path / "checkpoint-2")
    newest = complete_checkpoint(tmp_path / "checkpoint-4")
    assert checkpoint_problem(newest, ("trainer_state.json",)) is None
    damage(newest)
    assert message in checkpoint_problem(newest, ("trainer_state.json",))
    assert last_complete_checkpoint(tmp_path, "majority-vote") == (tmp_path / "checkpoint-2", 2)
    assert message in caplog.text and "checkpoint-4" in caplog.text


def test_last_complete_checkpoint_needs_the_methods_files(tmp_path) -> None:
    complete_checkpoint(tmp_path / "checkpoint-2")
    (complete_checkpoint(tmp_path / "checkpoint-4") / "teacher.pt").unlink()
    (complete_checkpoint(tmp_path / "checkpoint-6") / "trainer_state.json").unlink()
    assert last_complete_checkpoint(tmp_path, "majority-vote") == (tmp_path / "checkpoint-4", 4)
    assert last_complete_checkpoint(tmp_path, "co-rewarding-2") == (tmp_path / "checkpoint-2", 2)
    assert last_complete_checkpoint(tmp_path, "majority-vote", at_most=3) == (tmp_path / "checkpoint-2", 2)
    assert last_complete_checkpoint(tmp_path / "none", "random") == (None, 0)
