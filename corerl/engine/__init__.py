"""The training engine: every method trains through one TRL ``GRPOTrainer`` path (issue 3).

``train(config)`` runs one config (``corerl.config.TrainConfig``, a profile name or a YAML path) and
returns its run directory; ``corerl train`` is the command (``corerl.engine.cli``). Modules:
``run`` (train, resume), ``trainer`` (class composition, GRPOConfig), ``signals`` (entropy and
self-certainty), ``pairs`` (Co-rewarding-I), ``teacher`` (Co-rewarding-II), ``monitor`` (metrics
without leaking labels), ``dataset``, ``model``. Importing this package imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corerl.config import TrainConfig


def train(config: TrainConfig | str | Path, *, resume: bool = False, dataset: Any = None) -> Path:
    """Train one run; see ``corerl.engine.run.train``."""
    from corerl.engine.run import train as run_train

    return run_train(config, resume=resume, dataset=dataset)


__all__ = ["train"]
