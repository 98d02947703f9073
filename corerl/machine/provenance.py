"""Which code a run ran from: the git commit of the corerl checkout, recorded with the run.

``config.yaml`` starts with a comment line ``# corerl commit: <sha>`` (`` (uncommitted changes)``
appended when tracked files differ from that commit; ``unknown`` outside a git checkout, e.g. an
installed wheel). A comment, so that every reader of ``config.yaml`` loads it unchanged; it lets a
reader check that a design was committed before the runs made on it (issue 21).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # corerl/
HEADER_PREFIX = "# corerl commit: "


def git_commit(directory: str | Path = PACKAGE_DIR) -> str:
    """``<sha>``, ``<sha> (uncommitted changes)``, or ``unknown`` when ``directory`` is not in a git checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    dirty = status.returncode == 0 and bool(status.stdout.strip())
    return sha.stdout.strip() + (" (uncommitted changes)" if dirty else "")


def commit_header(commit: str | None = None) -> str:
    """The comment line that opens a run's ``config.yaml``.

    >>> commit_header("abc123")
    '# corerl commit: abc123\\n'
    """
    return f"{HEADER_PREFIX}{git_commit() if commit is None else commit}\n"


def recorded_commit(config_text: str) -> str | None:
    """The commit a ``config.yaml`` text records (None when it has no header: an older run).

    >>> recorded_commit(commit_header("abc123") + "seed: 0\\n"), recorded_commit("seed: 0\\n")
    ('abc123', None)
    """
    first = config_text.split("\n", 1)[0]
    return first.removeprefix(HEADER_PREFIX) if first.startswith(HEADER_PREFIX) else None
