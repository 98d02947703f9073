"""The run directory's integrity: one writer at a time, complete checkpoints, a finished run.

- :func:`run_lock`: ``<run>/.lock`` names its holder (pid, host, start time, a random token); the
  holder keeps an exclusive ``flock`` on it for the whole run and refreshes its time every
  ``HEARTBEAT_S`` seconds while the file still names it. A second writer is refused with the holder's
  name. The lock is taken over (with a warning) only when its ``flock`` is free and its holder is a
  dead process on this host, or, for another host's holder (a Drive folder: ``flock`` does not cross
  machines), when its heartbeat is older than ``STALE_AFTER_S``. A live process on this host is
  never taken over, however long it was stopped. Takeover is atomic (the ``flock`` serialises the
  contenders); a holder whose lock was taken over stops at its next step (:meth:`RunLock.check`).
- :func:`checkpoint_problem`: why a ``checkpoint-N`` folder cannot be resumed from (a file missing,
  a truncated ``.safetensors``, a ``.pt`` that is not a complete torch archive, a ``trainer_state.json``
  that is not JSON), naming the file; :func:`last_complete_checkpoint` skips such folders.
- :func:`is_finished`: ``final/`` holds model weights (not merely exists).
- :func:`evaluation_model`: the model a run's results come from: early stopping's best checkpoint when
  the run used early stopping, else ``final/``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import stat
import struct
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
LOCK_FILE = ".lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # ten missed heartbeats
# Early stopping's history (corerl.mitigations.early_stopping): names the best checkpoint to evaluate.
EARLY_STOPPING_FILE = "early_stopping.json"
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json")


class RunLockedError(ValueError):
    """Another process holds the run directory's lock (a ValueError: the CLI reports it in one line)."""


MAX_PID = 1 << 22  # Linux's pid_max ceiling: a larger number is no process


def _alive(pid: int) -> bool:
    if not 0 < pid < MAX_PID:  # 0 and negatives name process groups; a huge pid overflows os.kill
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _parse_holder(text: str) -> dict:
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _holder(path: Path) -> dict:
    """The holder a lock file names ({} when unreadable); never blocks (a FIFO or a folder is no lock)."""
    try:
        if not path.is_file():
            return {}
        return _parse_holder(path.read_text(errors="replace"))
    except OSError:
        return {}


def lock_is_stale(holder: dict, age: float) -> bool:
    """True when a lock whose ``flock`` is free may be taken over.

    On this host a live holder would hold the ``flock``; a named pid that is still alive (a process
    without the lock: an older corerl, or the pid reused) is still never taken over, whatever the
    lock's age: a stopped process (Ctrl-Z, a laptop asleep) stays the holder. Another host's holder
    (a Drive folder shared between sessions, where ``flock`` does not reach) is stale once its
    heartbeat is older than ``STALE_AFTER_S``.
    """
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not isinstance(pid, bool):
        return not _alive(pid)
    return age > STALE_AFTER_S


def _describe(holder: dict) -> str:
    if not holder:
        return "an unknown process (unreadable lock file)"
    return f"pid {holder.get('pid')} on host {holder.get('host')} (since {holder.get('started')})"


class RunLock:
    """A held run lock. :meth:`check` raises when another process took it over (another host's
    process, after this one's heartbeat stopped for ``STALE_AFTER_S``: the machine slept)."""

    def __init__(self, run_dir: Path, token: str) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self.token = token

    def owned(self) -> bool:
        return _holder(self.path).get("token") == self.token

    def check(self) -> None:
        """Raise :class:`RunLockedError` unless this process still holds the lock."""
        if not self.owned():
            raise RunLockedError(
                f"{self.run_dir}: the run lock was taken over by {_describe(_holder(self.path))} while this "
                "process was stopped; this process stops without writing more"
            )


def _open_lock(run_dir: Path, path: Path) -> int:
    """A descriptor of the lock file (created if absent), refusing what is not a regular file."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
    except IsADirectoryError:
        raise RunLockedError(f"{path} is a folder, not a run lock: remove it") from None
    except OSError as error:
        raise RunLockedError(
            f"{path}: cannot create the run lock ({error.strerror or error}): is {run_dir} writable?"
        ) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise RunLockedError(
            f"{path} is not a regular file (a FIFO, socket or device), not a run lock: remove it"
        )
    return descriptor


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(descriptor)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _acquire(run_dir: Path, path: Path, holder: dict) -> int:
    """Take the lock: an exclusive ``flock`` on ``.lock``, kept while the run lasts, then our holder
    record written into it. Two processes taking over one stale lock serialise on the ``flock``: the
    second sees the first's record and is refused. The file is never replaced, only rewritten, so
    both lock the same file (a holder's release unlinks it while still locked: a descriptor of the
    unlinked file is noticed by :func:`_same_file` and the lock is opened again)."""
    while True:
        descriptor = _open_lock(run_dir, path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process on this host holds it
            os.close(descriptor)
            raise RunLockedError(
                f"{run_dir} is being written by {_describe(_holder(path))}: wait for that run to end "
                f"or choose another --out"
            ) from None
        except OSError as error:  # a filesystem without flock: the holder record alone decides
            logger.warning("%s: no flock on this filesystem (%s): the run lock is advisory", path, error)
            break
        if _same_file(descriptor, path):
            break
        os.close(descriptor)  # released and unlinked between our open and our flock: open it again
    text = os.pread(descriptor, 1 << 16, 0).decode(errors="replace")
    if text.strip():
        previous = _parse_holder(text)
        if not lock_is_stale(previous, time.time() - os.fstat(descriptor).st_mtime):
            os.close(descriptor)
            raise RunLockedError(
                f"{run_dir} is being written by {_describe(previous)}: wait for that run to end or choose "
                f"another --out (if that process is gone, delete {path})"
            )
        logger.warning("%s: taking over the stale lock of %s", run_dir, _describe(previous))
    record = json.dumps(holder).encode()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, record, 0)
    os.fsync(descriptor)
    return descriptor


@contextmanager
def run_lock(run_dir: Path) -> Iterator[RunLock]:
    """Hold ``run_dir``'s lock while the block runs; raise :class:`RunLockedError` naming the holder.

    The heartbeat thread refreshes the lock's time only while the lock still names this process;
    the block calls :meth:`RunLock.check` (training does, at every step) to stop once it does not.
    """
    path = run_dir / LOCK_FILE
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "token": uuid.uuid4().hex,
    }
    descriptor = _acquire(run_dir, path, holder)
    lock = RunLock(run_dir, holder["token"])
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            if not lock.owned():
                logger.error("%s: the run lock was taken over by another process", run_dir)
                return
            try:
                os.utime(path)
            except OSError:
                return

    thread = threading.Thread(target=heartbeat, name="corerl-run-lock", daemon=True)
    thread.start()
    try:
        yield lock
    finally:
        stop.set()
        thread.join()
        if lock.owned():
            path.unlink(missing_ok=True)  # still under our flock: a waiting opener sees it gone
        os.close(descriptor)


def _safetensors_problem(path: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header and the tensor bytes it indexes."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) < 8:
            return "truncated (no header)"
        (length,) = struct.unpack("<Q", raw)
        if length > size - 8:
            return "truncated (header cut short)"
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return "corrupt (header is not JSON)"
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        return f"truncated ({size} bytes, the header indexes {8 + length + max(ends)})"
    return None


def _file_problem(path: Path) -> str | None:
    if path.suffix == ".safetensors":
        return _safetensors_problem(path)
    if path.suffix in (".pt", ".pth", ".bin"):  # torch.save archives are zip files with CRCs
        if not zipfile.is_zipfile(path):
            return "not a complete torch archive"
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                return "corrupt torch archive (CRC mismatch)"
    if path.suffix == ".json":
        try:
            json.loads(path.read_text())
        except ValueError as error:
            return f"not valid JSON ({error})"
    return None


def checkpoint_problem(folder: Path, needed: tuple[str, ...]) -> str | None:
    """Why ``folder`` cannot be resumed from, naming the file; None when it is complete.

    ``needed`` are the files that must exist besides model weights.
    """
    for name in needed:
        if not (folder / name).is_file():
            return f"{folder / name} is missing"
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        return f"{folder} holds no model weights ({' or '.join(WEIGHT_FILES)})"
    return folder_problem(folder)


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The ``checkpoint-N`` folders of a run, newest first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("checkpoint-*") if (m := CHECKPOINT.match(p.name))]
    return sorted(found, reverse=True)


def last_complete_checkpoint(
    run_dir: Path, needed: tuple[str, ...], *, at_most: int | None = None
) -> tuple[Path | None, int]:
    """The newest complete ``checkpoint-N`` with ``N <= at_most``, and N (``None, 0`` when none is).

    Each broken checkpoint on the way is reported with a warning naming its broken file.
    """
    for step, folder in checkpoints(run_dir):
        if at_most is not None and step > at_most:
            continue
        problem = checkpoint_problem(folder, needed)
        if problem is None:
            return folder, step
        logger.warning("cannot resume from %s: %s; trying the previous checkpoint", folder.name, problem)
    return None, 0


def is_finished(run_dir: Path) -> bool:
    """True when ``run_dir/final`` holds model weights (a folder alone is not a finished run)."""
    final = run_dir / "final"
    return any((final / name).is_file() for name in WEIGHT_FILES)


def logged_through(steps: list[int]) -> int:
    """The last step S such that steps 1..S are all logged (0 when step 1 is not).

    >>> logged_through([1, 2, 3, 5]), logged_through([2, 3]), logged_through([])
    (3, 0, 0)
    """
    seen, last = set(steps), 0
    while last + 1 in seen:
        last += 1
    return last


DATA_FINGERPRINT_FILE = "data_fingerprint.json"
# What a run writes before its model loads: a folder holding exactly these never trained a step (its
# model failed to load, say) and a new run may start over in it (a user's own config.yaml alone may not).
START_FILES = frozenset({"config.yaml", DATA_FINGERPRINT_FILE})


def refuse_occupied(run_dir: Path) -> None:
    """Raise ValueError unless ``run_dir`` is new, empty, or holds only a start that never trained
    (:data:`START_FILES`): a new run writes ``config.yaml``, ``README.md`` (TRL's model card) and
    more there, over whatever it holds."""
    try:
        entries = sorted(path.name for path in run_dir.iterdir() if path.name != LOCK_FILE)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise ValueError(f"--out {run_dir} is an existing file; give a new or empty folder") from None
    if not entries or set(entries) == START_FILES:
        return
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    if (run_dir / "config.yaml").is_file():
        raise ValueError(
            f"{run_dir} already holds a run ({shown}): pass --resume to continue it, or choose another --out"
        )
    raise ValueError(
        f"{run_dir} is not empty ({shown}): a new run needs a new or empty folder (it would write "
        "config.yaml and README.md there); choose another --out"
    )


def lock_guard(lock: RunLock) -> Any:
    """A TrainerCallback that stops training with :class:`RunLockedError` at the first step end after
    another process took the run lock over, before that step is logged or checkpointed."""
    from transformers import TrainerCallback

    class LockGuard(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            lock.check()
            return control

    return LockGuard()


def folder_problem(folder: Path) -> str | None:
    """The first truncated or corrupt file of a model folder (weights, JSON), named; None when all read."""
    for path in sorted(folder.iterdir()):
        if path.is_file():
            try:
                problem = _file_problem(path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                problem = f"unreadable ({error})"
            if problem:
                return f"{path} is {problem}"
    return None


def evaluation_model(run_dir: str | os.PathLike[str]) -> Path:
    """The model a run's results come from: early stopping's best checkpoint when the run used early
    stopping (its ``early_stopping.json``), else ``final/``.

    The checkpoint is found by the recorded best step inside ``run_dir``, so a run directory that
    moved (Drive, Kaggle) still resolves. Raises FileNotFoundError when the best checkpoint is gone,
    ValueError when early stopping never evaluated.
    """
    run_dir = Path(run_dir)
    history = run_dir / EARLY_STOPPING_FILE
    if not history.is_file():
        return run_dir / "final"
    try:
        best_step = json.loads(history.read_text(encoding="utf-8"))["best_step"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{history}: not an early-stopping history ({error})") from None
    if best_step is None:
        raise ValueError(f"{history}: early stopping never evaluated, so the run has no best checkpoint")
    best = run_dir / f"checkpoint-{int(best_step)}"
    if not best.is_dir():
        raise FileNotFoundError(f"{best}: the best checkpoint named by {history} is missing")
    return best
