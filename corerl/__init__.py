"""corerl: label-free RL for LLM reasoning, from a laptop CPU to a free T4.

The light core (``answers``, ``voting``, ``rewards``, ``data``) imports in well under a second.
``corerl.train`` and ``corerl.evaluate_model`` are resolved lazily, so importing the package (and
``corerl --help``) never loads torch, transformers or trl.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": ("corerl.engine", "train"),
    "evaluate_model": ("corerl.evaluate", "evaluate_model"),
    "load_config": ("corerl.config", "load_config"),
    "TrainConfig": ("corerl.config", "TrainConfig"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'corerl' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    return getattr(importlib.import_module(module_name), attribute)


__all__ = ["__version__", *_LAZY]
