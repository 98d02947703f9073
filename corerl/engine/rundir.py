"""The run directory's integrity: one writer at a time, complete checkpoints, a finished run.

- :func:`run_lock`: ``<run>/.lock`` names its holder (pid, host, start time) and is refreshed every
  ``HEARTBEAT_S`` seconds by a daemon thread. A second writer is refused with the holder's name. A
  lock is stale, and taken over with a warning, when its process is gone (same host) or its
  heartbeat is older than ``STALE_AFTER_S`` (any host: a Colab session killed with its Drive
  folder mounted leaves a lock whose pid means nothing elsewhere).
- :func:`checkpoint_problem`: why a ``checkpoint-N`` folder cannot be resumed from (a file missing,
  a truncated ``.safetensors``, a ``.pt`` that is not a complete torch archive, a ``trainer_state.json``
  that is not JSON), naming the file; :func:`last_complete_checkpoint` skips such folders.
- :func:`is_finished`: ``final/`` holds model weights (not merely exists).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
LOCK_FILE = ".lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # ten missed heartbeats
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json")


class RunLockedError(ValueError):
    """Another process holds the run directory's lock (a ValueError: the CLI reports it in one line)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def lock_is_stale(path: Path, now: float | None = None) -> bool:
    """True when the lock at ``path`` belongs to a dead process on this host or missed its heartbeats."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return True
    holder = _holder(path)
    if age > STALE_AFTER_S:
        return True
    pid = holder.get("pid")
    return holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid)


def _describe(holder: dict) -> str:
    if not holder:
        return "an unknown process (unreadable lock file)"
    return f"pid {holder.get('pid')} on host {holder.get('host')} (since {holder.get('started')})"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock while the block runs; raise :class:`RunLockedError` naming the holder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not lock_is_stale(path):
                raise RunLockedError(
                    f"{run_dir} is being written by {_describe(_holder(path))}: wait for that run to end "
                    f"or choose another --out (if that process is gone, delete {path})"
                ) from None
            logger.warning("%s: taking over the stale lock of %s", run_dir, _describe(_holder(path)))
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as handle:
            json.dump(holder, handle)
        break
    else:  # another process took the stale lock between our unlink and our create
        raise RunLockedError(f"{run_dir} is being written by {_describe(_holder(path))}")
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(path)
            except OSError:
                return

    thread = threading.Thread(target=heartbeat, name="corerl-run-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if _holder(path).get("pid") == os.getpid():
            path.unlink(missing_ok=True)


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
    for path in sorted(folder.iterdir()):
        if path.is_file():
            try:
                problem = _file_problem(path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                problem = f"unreadable ({error})"
            if problem:
                return f"{path} is {problem}"
    return None


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
