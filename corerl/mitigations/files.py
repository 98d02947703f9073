"""Atomic writes of the mitigations' files: a killed run never leaves half a JSON file behind."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` and a newline to ``path`` through a temporary file, then rename it into place."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, path)
