"""Issue 25: nothing a user does loses a file, a run or a result; bad input gets one line.

Fast, structural checks (no training): the run lock, ``--out`` folders, argument and config bounds,
hand-edited logs. The checks that train a model are in ``tests/test_reliability_runs.py``.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corerl.config import TrainConfig
from corerl.engine import rundir
from corerl.engine.rundir import LOCK_FILE, STALE_AFTER_S, RunLockedError, run_lock


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_lock(folder: Path, age: float = 0.0, **holder) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    path.write_text(json.dumps({"started": "then", **holder}))
    then = time.time() - age
    os.utime(path, (then, then))
    return path


# -- 1. a new run never writes into a folder that holds anything ---------------------------------


@pytest.mark.parametrize("resident", ["README.md", "config.yaml"])
def test_a_new_run_refuses_a_folder_that_is_not_empty(tmp_path, resident) -> None:
    from corerl.engine import train

    (tmp_path / resident).write_text("the user's own file\n")
    config = TrainConfig(model="/nonexistent/model", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match=f"{tmp_path} (is not empty|already holds a run) \\({resident}\\)"):
        train(config)
    assert (tmp_path / resident).read_text() == "the user's own file\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [resident]  # nothing written, no lock left


# -- 2. a live holder is never taken over; a holder that lost its lock stops -----------------------


def test_a_live_holder_on_this_host_is_kept_however_old_its_heartbeat(tmp_path) -> None:
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:  # a process stopped for longer than STALE_AFTER_S (Ctrl-Z, a laptop asleep) is still alive
        write_lock(tmp_path, age=STALE_AFTER_S * 10, pid=stopped.pid, host=socket.gethostname())
        with pytest.raises(RunLockedError, match=f"pid {stopped.pid}"), run_lock(tmp_path):
            pass
    finally:
        stopped.kill()
        stopped.wait()


def test_a_holder_whose_lock_was_taken_over_stops_before_its_next_step_is_written(tmp_path) -> None:
    with run_lock(tmp_path) as lock:
        lock.check()  # still ours
        guard = rundir.lock_guard(lock)
        # another host took the lock over while this process was stopped past STALE_AFTER_S
        write_lock(tmp_path, pid=4242, host="colab-vm-2", token="theirs")
        with pytest.raises(RunLockedError, match="taken over by pid 4242 on host colab-vm-2"):
            lock.check()
        with pytest.raises(RunLockedError, match="this process stops"):
            guard.on_step_end(None, None, None)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == "theirs"  # not removed on exit


# -- 3. a stale lock is taken over atomically ------------------------------------------------------


def test_a_stale_lock_another_contender_already_claimed_is_refused(tmp_path) -> None:
    import fcntl

    path = write_lock(tmp_path, pid=dead_pid(), host=socket.gethostname())
    contender = os.open(path, os.O_RDWR)
    fcntl.flock(contender, fcntl.LOCK_EX | fcntl.LOCK_NB)  # took it over, not yet written its name
    try:
        with pytest.raises(RunLockedError, match="being written by"), run_lock(tmp_path):
            pass
    finally:
        os.close(contender)
    with run_lock(tmp_path) as lock:  # the contender gone, the lock is free (its holder is dead)
        lock.check()


def _contend(folder: str, barrier, results) -> None:
    barrier.wait()
    try:
        with run_lock(Path(folder)):
            results.put("took it")
            time.sleep(1.0)
    except RunLockedError:
        results.put("refused")


def test_contenders_for_one_stale_lock_get_it_once(tmp_path) -> None:
    context = multiprocessing.get_context("fork")
    for trial in range(3):
        folder = tmp_path / str(trial)
        write_lock(folder, pid=dead_pid(), host=socket.gethostname())
        barrier, results = context.Barrier(6), context.Queue()
        workers = [context.Process(target=_contend, args=(str(folder), barrier, results)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        outcomes = sorted(results.get() for _ in workers)
        assert outcomes.count("took it") == 1, outcomes


# -- the lock file itself: a huge pid, a folder, a FIFO, a read-only runs folder --------------------


def test_a_lock_naming_an_impossible_pid_is_stale(tmp_path, caplog) -> None:
    write_lock(tmp_path, pid=10**30, host=socket.gethostname())
    with run_lock(tmp_path):
        pass
    assert "stale lock of pid 1000000000000000000000000000000" in caplog.text


def test_a_lock_that_is_a_folder_is_named(tmp_path) -> None:
    (tmp_path / LOCK_FILE).mkdir()
    with (
        pytest.raises(RunLockedError, match=f"{tmp_path / LOCK_FILE} is a folder, not a run lock"),
        run_lock(tmp_path),
    ):
        pass


def test_a_lock_that_is_a_fifo_is_named_without_reading_it(tmp_path) -> None:
    os.mkfifo(tmp_path / LOCK_FILE)
    code = (  # in a subprocess so that a lock reader that blocks on the FIFO fails instead of hanging
        "import sys; from pathlib import Path; from corerl.engine.rundir import run_lock\n"
        "try:\n    run_lock(Path(sys.argv[1])).__enter__()\nexcept ValueError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert "is not a regular file (a FIFO, socket or device)" in result.stdout


def test_a_read_only_runs_folder_is_one_line(tmp_path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(rundir.os, "open", refuse)  # as a read-only mount answers (root ignores chmod)
    message = "cannot create the run lock \\(Read-only file system\\)"
    with pytest.raises(RunLockedError, match=message), run_lock(tmp_path / "run"):
        pass


# -- 4. collapse-step holds the run lock -----------------------------------------------------------


def test_collapse_step_refuses_a_run_another_process_writes(tmp_path) -> None:
    from corerl.collapse_step import protocol_config, run_protocol

    config = protocol_config("/nonexistent/model", out=str(tmp_path / "run"), max_steps=2)
    with run_lock(config.run_dir), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        run_protocol(config)


# -- 5. eval refuses to replace earlier results ----------------------------------------------------


def test_eval_refuses_an_out_folder_with_results(tmp_path, capsys) -> None:
    from corerl.cli import main

    (tmp_path / "results.csv").write_text("model,benchmark\nbefore,math500\n")
    assert main(["eval", "--model", str(tmp_path / "model"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "already holds results (results.csv)" in error and "--overwrite" in error
    assert (tmp_path / "results.csv").read_text() == "model,benchmark\nbefore,math500\n"
