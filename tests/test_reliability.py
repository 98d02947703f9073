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
from corerl.machine import rundir
from corerl.machine.rundir import LOCK_FILE, STALE_AFTER_S, RunLockedError, run_lock


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


def test_a_start_whose_model_failed_to_load_can_start_over(tmp_path) -> None:
    from corerl.engine import train

    config = TrainConfig(model="/nonexistent/model", output_dir=str(tmp_path))
    for _ in range(2):  # the second start is not refused: the first trained nothing
        with pytest.raises(FileNotFoundError, match="/nonexistent/model"):
            train(config)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.yaml", "data_fingerprint.json"]


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


def _contend(folder: str, start, done, results) -> None:
    start.wait()
    try:
        with run_lock(Path(folder)):
            results.put("took it")
            done.wait()  # held until every contender has tried
    except RunLockedError:
        results.put("refused")
        done.wait()


def test_contenders_for_one_stale_lock_get_it_once(tmp_path) -> None:
    context = multiprocessing.get_context("fork")
    for trial in range(3):
        folder = tmp_path / str(trial)
        write_lock(folder, pid=dead_pid(), host=socket.gethostname())
        start, done, results = context.Barrier(6), context.Barrier(6), context.Queue()
        workers = [
            context.Process(target=_contend, args=(str(folder), start, done, results)) for _ in range(6)
        ]
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
        "import sys; from pathlib import Path; from corerl.machine.rundir import run_lock\n"
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


def test_a_filesystem_without_flock_still_refuses_a_live_holder(tmp_path, monkeypatch) -> None:
    def no_flock(*args):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(rundir.fcntl, "flock", no_flock)  # as some network mounts answer
    with run_lock(tmp_path) as lock:
        lock.check()
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"), run_lock(tmp_path):
            pass
    assert not (tmp_path / LOCK_FILE).exists()


# -- 4. collapse-step holds the run lock -----------------------------------------------------------


def test_collapse_step_refuses_a_run_another_process_writes(tmp_path) -> None:
    from corerl.study.collapse_step import protocol_config, run_protocol

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


# -- 9. resume refuses changed training data -------------------------------------------------------


def test_resume_refuses_a_training_file_whose_contents_changed(tmp_path) -> None:
    from corerl.engine import train

    data = tmp_path / "questions.jsonl"
    rows = [{"id": f"q{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(4)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = TrainConfig(model="/nonexistent/model", data=str(data), output_dir=str(tmp_path / "run"))
    with pytest.raises(FileNotFoundError, match="/nonexistent/model"):  # fails at the model, after the data
        train(config)
    rows[2]["question"] = "What is 200 + 1?"  # same path, other contents
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match="--resume refuses changed training data: .*questions.jsonl"):
        train(config, resume=True)


# -- 10. null in a YAML config clears the profile's value ------------------------------------------


def test_null_in_a_yaml_config_clears_the_profiles_value(tmp_path) -> None:
    from corerl.config import load_config

    path = tmp_path / "t4.yaml"
    path.write_text("profile: t4\ntime_budget_minutes: null\nsave_total_limit: null\n")
    config = load_config(path)
    assert config.time_budget_minutes is None and config.save_total_limit is None
    assert load_config(path, seed=3).time_budget_minutes is None  # keyword overrides of None still ignored
    path.write_text("profile: t4\ntemperature: null\n")  # a field that needs a value is named
    with pytest.raises(
        ValueError, match="t4.yaml: invalid training config: temperature must be a number, got None"
    ):
        load_config(path)


# -- 13. a hand-edited or doubly written log ---------------------------------------------------------


def complete_checkpoint(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    save_file({"w": torch.zeros(4)}, folder / "model.safetensors")
    return folder


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_resume_cuts_a_duplicated_step_back_to_before_it_and_keeps_step_zero(tmp_path, caplog) -> None:
    from corerl.engine.monitor import truncate_to_step
    from corerl.engine.run import _resume_point

    heldout = {"step": 0, "heldout/accuracy": 0.4}  # the held-out evaluation's own row at step 0
    steps = [heldout, heldout] + [{"step": s, "time": float(s)} for s in (1, 2, 3, 3, 4)]  # 3 by two writers
    write_rows(tmp_path / "metrics.jsonl", steps)
    for step in (2, 4):
        complete_checkpoint(tmp_path / f"checkpoint-{step}")
    checkpoint, step = _resume_point(TrainConfig(), tmp_path)
    assert (checkpoint, step) == (tmp_path / "checkpoint-2", 2)
    assert not (tmp_path / "checkpoint-4").exists() and "logs step 3 more than once" in caplog.text
    kept = truncate_to_step(tmp_path / "metrics.jsonl", step, once=True)
    assert [row["step"] for row in kept] == [0, 1, 2]  # step 0's row once
    from corerl.collapse import read_metrics

    assert list(read_metrics(tmp_path)["step"]) == [0, 1, 2]  # the readers accept the repaired log


def test_resume_drops_rows_whose_step_or_time_is_not_a_number(tmp_path, caplog) -> None:
    from corerl.engine.monitor import logged_time, truncate_to_step
    from corerl.engine.run import _resume_point

    rows = [
        {"step": 1, "time": 1.0},
        {"step": None},
        {"step": "2"},
        {"step": 2.0, "time": None},
        {"step": 3, "time": 3.0},
    ]
    write_rows(tmp_path / "metrics.jsonl", rows)
    complete_checkpoint(tmp_path / "checkpoint-2")
    assert _resume_point(TrainConfig(), tmp_path) == (tmp_path / "checkpoint-2", 2)
    kept = truncate_to_step(tmp_path / "metrics.jsonl", 2)
    assert [row["step"] for row in kept] == [1, 2.0] and logged_time(kept) == 1.0
    assert (
        "row 2, whose step None is not an integer" in caplog.text and "row 3, whose step '2'" in caplog.text
    )


# -- 14. a finished tiny run survives a moved organism cache ---------------------------------------


def test_a_moved_organism_cache_is_the_same_model() -> None:
    from corerl.config import run_differences

    before = TrainConfig(model="/root/.cache/corerl/organism/aligned-0123456789ab")
    after = TrainConfig(model="/content/drive/corerl-cache/organism/aligned-0123456789ab")
    assert run_differences(before, after) == []
    rebuilt = TrainConfig(model="/content/drive/corerl-cache/organism/aligned-ba9876543210")
    assert run_differences(before, rebuilt) == [
        "model: '/root/.cache/corerl/organism/aligned-0123456789ab' -> "
        "'/content/drive/corerl-cache/organism/aligned-ba9876543210'"
    ]


# -- 15. rephrase --resume keeps one row per input row ---------------------------------------------


def test_rephrase_resume_removes_duplicated_and_foreign_rows(tmp_path) -> None:
    from corerl import rephrase
    from corerl.rephrase.pipeline import read_jsonl_rows, rephrase_rows

    rows = [{"id": f"q{i}", "question": f"Add {i} and 7.", "rephrased": f"Sum {i} with 7."} for i in range(4)]
    out = tmp_path / "out.jsonl"
    kept = [{**rows[0], "rephrase_flags": []}, {**rows[0], "rephrase_flags": []}]  # q0 twice
    kept.append({"id": "zz", "question": "Not ours.", "rephrased": "x", "rephrase_flags": []})  # foreign id
    kept.append({**rows[1], "question": "Add 1 and 8.", "rephrase_flags": []})  # q1 with another question
    write_rows(out, kept)
    summary = rephrase_rows(rows, rephrase.existing_rephraser, out, resume=True, progress=False)
    written = read_jsonl_rows(out) + read_jsonl_rows(tmp_path / "out.rejected.jsonl")
    assert sorted(row["id"] for row in written) == ["q0", "q1", "q2", "q3"] and summary.total == 4
    assert next(row for row in written if row["id"] == "q1")["question"] == "Add 1 and 7."


# -- 16. eval and rephrase arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--temperature", "nan"], "--temperature must be a finite number >= 0 (0 = greedy), got nan"),
        (["--temperature", "-1"], "--temperature must be a finite number >= 0"),
        (["--limit", "0"], "--limit must be >= 1 (leave it out for every question), got 0"),
        (["--k", "0"], "--k must be >= 1, got 0"),
        (["--top-p", "0"], "--top-p must be in (0, 1], got 0.0"),
    ],
)
def test_eval_refuses_sampling_arguments_no_run_can_use(tmp_path, capsys, arguments, message) -> None:
    from corerl.cli import main

    assert main(["eval", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "out"), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_rephrase_refuses_a_negative_limit(tmp_path, capsys) -> None:
    from corerl.cli import main

    data = tmp_path / "in.jsonl"
    write_rows(
        data,
        [{"id": f"q{i}", "question": f"Add {i} and 7.", "rephrased": f"Sum {i} with 7."} for i in range(4)],
    )
    command = ["rephrase", "--input", str(data), "--out", str(tmp_path / "out.jsonl"), "--check-existing"]
    assert main([*command, "--limit", "-2"]) == 2
    assert "--limit must be >= 1 (leave it out for every row), got -2" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


# -- 17. a YAML alias bomb is refused without expanding it -----------------------------------------


def test_an_alias_bomb_under_a_known_key_is_named_in_a_short_message(tmp_path) -> None:
    from corerl.config import load_config

    path = tmp_path / "bomb.yaml"  # 22 anchors, each a list of two of the previous: 2**22 leaves
    lines = ["callbacks:", "  - &a0 [x, x]"] + [f"  - &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 22)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as error:  # the full repr would be tens of megabytes
        load_config(path)
    assert "callbacks must be a list of strings" in str(error.value) and len(str(error.value)) < 400


def test_resume_differences_do_not_expand_a_value() -> None:
    from corerl.config import config_differences
    from corerl.config_checks import short_repr

    bomb: list = ["x"]
    for _ in range(22):
        bomb = [bomb, bomb]
    assert len(short_repr(bomb)) < 200
    lines = config_differences(TrainConfig(), TrainConfig(callbacks=("a" * 10**6,)))
    assert len(lines) == 1 and len(lines[0]) < 400


# -- 18. sizes that allocate have upper bounds -----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_generations", 10**9, r"num_generations must be in \[2, 1024\], got 1000000000"),
        ("lora_rank", 10**9, r"lora_rank must be in \[1, 4096\], got 1000000000"),
        ("cpu_threads", 10**6, r"cpu_threads must be in \[1, 1024\], got 1000000"),
        ("questions_per_step", 10**7, r"questions_per_step must be in \[1, 4096\]"),
        ("max_completion_length", 10**9, r"max_completion_length must be in \[1, 131072\]"),
        ("num_generations", 10**400, "num_generations must be in .*got <an integer of 1329 bits>"),
        ("learning_rate", 10**400, "learning_rate must be a finite number"),
    ],
)
def test_sizes_that_allocate_are_refused_when_the_config_is_made(key, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{key: value})


# -- 19. the rephrase similarity rule is bounded ---------------------------------------------------


def test_the_similarity_rule_compares_a_bounded_number_of_words(monkeypatch) -> None:
    from corerl.rephrase import rules

    compared = []

    class Recording(rules.SequenceMatcher):
        def __init__(self, isjunk, a, b, autojunk):
            compared.append((len(a), len(b)))
            super().__init__(isjunk, a[:5], b[:5], autojunk=autojunk)

    monkeypatch.setattr(rules, "SequenceMatcher", Recording)
    huge = "Add 3 and 4 apples. " * 200_000  # a 4 MB question: 1.2 million words
    assert rules.failed_rules(huge, huge + " Now.", ["near_identical"]) == ["near_identical"]
    assert compared and max(max(pair) for pair in compared) <= rules.SIMILARITY_WORDS


# -- tracebacks that belong in one line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("method: [random\n", r"bad.yaml: not valid YAML at line 2, column 1"),
        ("method: random\n  seed: 1\n", r"bad.yaml: not valid YAML at line 2"),
        ("1: 2\nmethod: random\n", r"bad.yaml: unknown config key\(s\) 1"),
        ("profile: [t4]\n", r"bad.yaml: unknown profile \['t4'\]"),
        ("load_in_4bit: true\n", "load_in_4bit needs a CUDA GPU"),
        ("temperature: 1e-30\n", r"temperature must be in \[0.01, 100\], got 1e-30"),
        ("learning_rate: 1e6\n", r"learning_rate must be in \(0, 1\], got 1000000.0"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_it(tmp_path, capsys, text, message) -> None:
    from corerl.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    command = [
        "train",
        "--config",
        str(path),
        "--out",
        str(tmp_path / "run"),
        "--model",
        "/nonexistent/model",
    ]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and __import__("re").search(message, error), error


def test_eval_of_a_corrupt_model_folder_names_the_file(tmp_path, capsys) -> None:
    from corerl.cli import main

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen3"')  # cut short
    (model / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    assert main(["eval", "--model", str(model), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"{model / 'config.json'} is not valid JSON" in error and len(error.strip().splitlines()) == 1
