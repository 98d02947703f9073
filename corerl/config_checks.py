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
# Upper bounds: sizes that allocate (rollouts per step, LoRA matrices, threads) are refused above a
# value no T4 or A100 run comes near, before anything is built (1e9 rollouts would fill any memory).
MAX_ROLLOUTS = 1024
MAX_SIZE = 4096
RANGES: dict[str, Bounds] = {
    "seed": Bounds(0),
    "warmup_steps": Bounds(0),
    "eval_every": Bounds(0),  # 0: no held-out evaluation
    "eval_size": Bounds(1, MAX_SIZE),
    "eval_samples": Bounds(1, MAX_ROLLOUTS),
    "num_generations": Bounds(2, MAX_ROLLOUTS),  # GRPO normalises within a group
    "questions_per_step": Bounds(1, MAX_SIZE),
    "max_completion_length": Bounds(1, 131072),
    "steps_per_generation": Bounds(1, MAX_ROLLOUTS),
    "num_iterations": Bounds(1, MAX_ROLLOUTS),
    "gradient_accumulation_steps": Bounds(1, MAX_ROLLOUTS),
    "offline_label_samples": Bounds(1, MAX_ROLLOUTS),
    "curriculum_samples": Bounds(1, MAX_ROLLOUTS),
    "lora_rank": Bounds(1, MAX_SIZE),
    "lora_alpha": Bounds(1, 1 << 20),
    "cpu_threads": Bounds(1, 1024),
    # Sampling divides the logits by the temperature: below 0.01 they overflow to inf (NaN probabilities)
    "temperature": Bounds(0.01, 100.0),
    # Above 1 every optimizer step of these models diverges to NaN weights, which sampling then refuses
    "learning_rate": Bounds(0.0, 1.0, open_low=True),
    "max_grad_norm": Bounds(0.0, open_low=True),
    "teacher_alpha_start": Bounds(0.0, 1.0),
    "teacher_alpha_end": Bounds(0.0, 1.0),
    "vllm_gpu_memory_utilization": Bounds(0.0, 1.0, open_low=True),
    "validation_fraction": Bounds(0.0, 1.0, open_low=True, open_high=True),
    "curriculum_fraction": Bounds(0.0, 1.0, open_low=True),
    "time_budget_minutes": Bounds(0.0, open_low=True),
}


def short_repr(value: Any, budget: int = 120) -> str:
    """``repr(value)`` cut to about ``budget`` characters without expanding it first: a YAML alias
    bomb (a few hundred bytes naming a list of 2**40 items) is described in constant time.

    >>> bomb = ["x"]
    >>> for _ in range(60):
    ...     bomb = [bomb, bomb]
    >>> len(short_repr(bomb)) < 200
    True
    >>> short_repr({"a": [1, 2]}), short_repr("text")
    ("{'a': [1, 2]}", "'text'")
    """
    parts: list[str] = []
    remaining = [budget]

    def emit(text: str) -> bool:
        parts.append(text[: max(remaining[0], 0)])
        remaining[0] -= len(text)
        return remaining[0] > 0

    def walk(item: Any, depth: int) -> bool:
        if isinstance(item, list | tuple | set | frozenset | dict):
            opening, closing = {list: "[]", tuple: "()", dict: "{}"}.get(type(item), "{}")  # type: ignore[call-overload]
            if depth > 6:
                return emit(opening[0] + "..." + closing)
            if not emit(opening):
                return False
            entries = item.items() if isinstance(item, dict) else ((None, entry) for entry in item)
            for index, (key, entry) in enumerate(entries):
                if index and not emit(", "):
                    return False
                if isinstance(item, dict) and not (walk(key, depth + 1) and emit(": ")):
                    return False
                if not walk(entry, depth + 1):
                    return False
            return emit(closing)
        if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 256:
            text = f"<an integer of {item.bit_length()} bits>"  # repr refuses past 4300 digits
        elif isinstance(item, str | int | float | bool | type(None)):
            text = repr(item[: budget + 1]) if isinstance(item, str) else repr(item)
        else:
            text = type(item).__name__
        return emit(text if len(text) <= budget else text[:budget])

    if not walk(value, 0):
        return "".join(parts) + "..."
    return "".join(parts)


def _describe_value(value: Any) -> str:
    return f"{short_repr(value)} ({type(value).__name__})"


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
            return value, f"{name} must be a list of strings, got {short_repr(value)}"
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
        try:
            value = float(value)
        except OverflowError:
            return value, f"{name} must be a finite number, got {_describe_value(value)}"
        if not math.isfinite(value):
            return value, f"{name} must be a finite number, got {value}"
        return value, _range_problem(name, value, RANGES.get(name, NUMBER_DEFAULT))
    if annotation is str and not isinstance(value, str):
        return value, f"{name} must be a string, got {_describe_value(value)}"
    return value, None


def _range_problem(name: str, value: float, bounds: Bounds) -> str | None:
    return None if bounds.contains(value) else f"{name} must be {bounds.describe()}, got {short_repr(value)}"


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
