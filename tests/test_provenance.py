"""The git commit a run ran from: recorded in the first line of its config.yaml, read back."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from corerl.config import from_yaml, load_config, to_yaml
from corerl.machine.provenance import PACKAGE_DIR, commit_header, git_commit, recorded_commit


def test_the_commit_is_this_checkouts_and_unknown_outside_git(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "-C", str(PACKAGE_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    commit = git_commit()
    if head.returncode == 0:
        assert re.fullmatch(r"[0-9a-f]{40}( \(uncommitted changes\))?", commit)
        assert commit.split()[0] == head.stdout.strip()
    assert git_commit(tmp_path) == "unknown"


def test_a_config_with_the_commit_header_loads_unchanged(tmp_path: Path) -> None:
    config = load_config("tiny", method="random", seed=3)
    text = commit_header() + to_yaml(config)
    assert from_yaml(text) == config
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert load_config(path) == config
    assert recorded_commit(text) == git_commit()
    assert recorded_commit(to_yaml(config)) is None
