"""``python -m corerl.notebooks [--check] [DIR]``: the command that rewrites the notebooks' shared cells.

A thin re-export of :mod:`corerl.tools.notebooks` (where the shared cells live), kept at this path
because the command and its fix messages name it.
"""

from __future__ import annotations

import sys

from corerl.tools.notebooks import check, main, sync_notebook

__all__ = ["check", "main", "sync_notebook"]

if __name__ == "__main__":
    sys.exit(main())
