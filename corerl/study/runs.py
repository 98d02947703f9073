"""Where a study's runs live and what they are called: the storage root, run and seed names, their logs.

- :func:`storage_root`: Google Drive (``/content/drive/MyDrive/corerl``) or ``/kaggle/working/corerl``
  when present, so a disconnected Colab/Kaggle session finds its checkpoints again; else ``./runs``;
- :func:`runs_folder`: the runs of a profile live under ``<root>/<profile>/<name>``; smoke runs under
  ``<profile>-smoke``, so that they are never mistaken for real ones;
- :func:`run_name`, :func:`seed_name`: a run is named by its method (suffixed by a non-default prior),
  and its seeds ``name``, ``name-seed1``, ...; :func:`unseeded` maps them back to ``name``;
- :func:`seed_list`, :func:`trained_seeds`: the seeds a study trains (``SEEDS``) and those of a run
  that have logged metrics.

Evaluations are cached as ``<runs>/eval/<model>.csv`` (:func:`eval_folder`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DRIVE_ROOT = Path("/content/drive/MyDrive")
KAGGLE_ROOT = Path("/kaggle/working")
# Seeds of the headline runs (issue 11: mean ± sd over at least 3 seeds); smoke runs use the first two.
SEEDS: tuple[int, ...] = (0, 1, 2)
_SEED_SUFFIX = re.compile(r"-seed\d+$")


def storage_root(default: str | os.PathLike[str] = "runs") -> Path:
    """Where runs live: Google Drive (when mounted) or Kaggle's working folder when present, else ``default``."""
    for root in (DRIVE_ROOT, KAGGLE_ROOT):
        if root.is_dir():
            return root / "corerl"
    return Path(default)


def runs_folder(root: Path, profile: str, *, smoke: bool = False) -> Path:
    """The folder of a profile's runs under ``root`` (``<profile>-smoke`` for smoke runs)."""
    return root / (f"{profile}-smoke" if smoke else profile)


def eval_folder(runs_dir: Path) -> Path:
    """The folder of the cached evaluations of the runs under ``runs_dir``."""
    return runs_dir / "eval"


def run_name(method: str, prior: str = "aligned") -> str:
    """The default name of a method's run: the method, suffixed by a non-default prior.

    >>> run_name("entropy"), run_name("majority-vote", "misaligned")
    ('entropy', 'majority-vote-misaligned')
    """
    return method if prior == "aligned" else f"{method}-{prior}"


def seed_name(name: str, seed: int, study_seed: int) -> str:
    """The run name of ``name`` for ``seed``: ``name`` itself for the study's seed, else ``name-seedN``."""
    return name if seed == study_seed else f"{name}-seed{seed}"


def unseeded(names: pd.Series) -> pd.Series:
    """Run names with their seed suffix removed (``name-seedN`` -> ``name``), so that pivots average seeds."""
    return names.str.replace(_SEED_SUFFIX, "", regex=True)


def seed_list(
    profile: str, study_seed: int, seeds: Sequence[int] | None = None, *, smoke: bool = False
) -> tuple[int, ...]:
    """``seeds`` (default: ``SEEDS`` on the tiny profile, the study's own seed on GPU profiles, so
    that a notebook fits a free T4 quota: ``corerl plan`` plans one seed), the first two only in
    smoke mode."""
    default = SEEDS if profile == "tiny" else (study_seed,)
    chosen = tuple(default if seeds is None else seeds)
    return chosen[:2] if smoke else chosen


def trained_seeds(runs_dir: Path, name: str, seeds: Sequence[int], study_seed: int) -> tuple[int, ...]:
    """The seeds of ``seeds`` for which run ``name`` under ``runs_dir`` has logged metrics;
    FileNotFoundError when none has."""
    found = tuple(
        seed for seed in seeds if (runs_dir / seed_name(name, seed, study_seed) / "metrics.jsonl").is_file()
    )
    if not found:
        raise FileNotFoundError(f"no run {name!r} under {runs_dir}: train it first")
    return found
