"""Type and range checks of a ``TrainConfig``, driven by its dataclass annotations (no torch import).

Every field is checked against its annotation when the config is made, before any model loads, so
a field added to ``TrainConfig`` is covered without more code: ``int`` takes an integer (not a bool,
not ``2.5``), ``float`` a finite number (a numeric string such as YAML 1.1's ``1e-4``, which YAML
reads as text, is converted), ``bool`` only true/false (``'no'`` is refused, not truthy), ``str`` a
string, ``X | None`` also None, ``tuple[str, ...]`` a list of strings (a bare string is refused,
not split into characters). Ranges: :data:`RANGES` where a field needs its own, else an integer
must be >= 1 and a number >= 0.

>>> from corerl.config import TrainConfig
>>> TrainConfig(learning_rate="1e-4").learning_rate
0.0001
>>> TrainConfig(lora="no")
Traceback (most recent call last):
ValueError: invalid training config: lora must be true or false, got 'no' (str)
>>> TrainConfig(data_limit=0)
Traceback (most recent call last):
ValueError: invalid training config: data_limit must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, NamedTuple


class Bounds(NamedTuple):
    """An interval; ``low``/``high`` None = unbounded; ``open_low``/``open_high``: strict."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)


INT_DEFAULT = Bounds(1)  # counts, steps, sizes
NUMBER_DEFAULT = Bounds(0.0)
RANGES: dict[str, Bounds] = {
    "seed": Bounds(0),
    "warmup_steps": Bounds(0),
    "eval_every": Bounds(0),  # 0: no held-out evaluation
    "num_generations": Bounds(2),  # GRPO normalises within a group
    "learning_rate": Bounds(0.0, open_low=True),
    "temperature": Bounds(0.0, open_low=True),
    "max_grad_norm": Bounds(0.0, open_low=True),
    "teacher_alpha_start": Bounds(0.0, 1.0),
    "teacher_alpha_end": Bounds(0.0, 1.0),
    "vllm_gpu_memory_utilization": Bounds(0.0, 1.0, open_low=True),
    "validation_fraction": Bounds(0.0, 1.0, open_low=True, open_high=True),
    "curriculum_fraction": Bounds(0.0, 1.0, open_low=True),
    "time_budget_minutes": Bounds(0.0, open_low=True),
}


def _describe_value(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check(name: str, value: Any, annotation: Any) -> tuple[Any, str | None]:
    """``(value, None)`` (converted where allowed) or ``(value, problem)``."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None, None
        results = [_check(name, value, inner) for inner in arguments if inner is not type(None)]
        return next((result for result in results if result[1] is None), results[0])
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            return value, f"{name} must be a list of strings, got {_describe_value(value)}"
        if not all(isinstance(item, str) for item in value):
            return value, f"{name} must be a list of strings, got {value!r}"
        return tuple(value), None
    if annotation is bool:
        if not isinstance(value, bool):
            return value, f"{name} must be true or false, got {_describe_value(value)}"
        return value, None
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"{name} must be an integer, got {_describe_value(value)}"
        return value, _range_problem(name, value, RANGES.get(name, INT_DEFAULT))
    if annotation is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return value, f"{name} must be a number, got {_describe_value(value)}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, f"{name} must be a number, got {_describe_value(value)}"
        value = float(value)
        if not math.isfinite(value):
            return value, f"{name} must be a finite number, got {value}"
        return value, _range_problem(name, value, RANGES.get(name, NUMBER_DEFAULT))
    if annotation is str and not isinstance(value, str):
        return value, f"{name} must be a string, got {_describe_value(value)}"
    return value, None


def _range_problem(name: str, value: float, bounds: Bounds) -> str | None:
    return None if bounds.contains(value) else f"{name} must be {bounds.describe()}, got {value}"


def check_fields(config: Any) -> list[str]:
    """Check (and convert, see the module docstring) every field of the dataclass ``config`` in place;
    returns the problems, one per bad field, each naming the key."""
    hints = typing.get_type_hints(type(config))
    problems = []
    for field in dataclasses.fields(config):
        value, problem = _check(field.name, getattr(config, field.name), hints[field.name])
        if problem:
            problems.append(problem)
        else:
            object.__setattr__(config, field.name, value)
    return problems
