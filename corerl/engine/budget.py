"""A wall-clock budget per call: checkpoint and stop cleanly before a free session ends.

``TrainConfig.time_budget_minutes`` adds :class:`TimeBudgetCallback`. After the first optimizer step
that ends past the budget it asks the Trainer to save a checkpoint and stop; ``corerl.engine.train``
then leaves the run interrupted (no ``final/``), and the next call with ``resume=True`` (what
``corerl.study.Study.run`` does) continues from that checkpoint with a fresh budget. The time counted
is this call's, from the start of training (model loading not included).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def generation_period(config: Any) -> int:
    """Optimizer steps per generation batch: TRL samples again every ``steps_per_generation x
    num_iterations`` steps (1: every step)."""
    return (config.steps_per_generation or 1) * config.num_iterations


def at_generation_boundary(step: int, period: int, max_steps: int) -> bool:
    """True when a checkpoint after ``step`` holds everything a resume needs (no buffered rollouts).

    >>> [step for step in range(1, 11) if at_generation_boundary(step, 4, 10)]
    [4, 8, 10]
    """
    return step % period == 0 or step >= max_steps


class AlignSavesToGenerations(TrainerCallback):
    """Move a checkpoint requested inside a generation batch to the batch's last step (added after
    the callbacks that request saves: ``save_steps``'s, at the step they request it)."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.pending = False

    def on_step_end(self, args, state, control, **kwargs):
        if at_generation_boundary(state.global_step, self.period, state.max_steps):
            control.should_save = control.should_save or self.pending
            self.pending = False
        elif control.should_save:
            control.should_save, self.pending = False, True
        return control


class TimeBudgetCallback(TrainerCallback):
    """Save and stop at the first generation boundary after ``minutes`` of training in this call."""

    def __init__(self, minutes: float, period: int = 1) -> None:
        self.period = period
        self.seconds = minutes * 60.0
        self.started: float | None = None
        self.stopped_at: int | None = None  # the step at which the budget stopped the run

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is None or state.global_step >= state.max_steps:
            return control
        if not at_generation_boundary(state.global_step, self.period, state.max_steps):
            return control  # rollouts of this generation batch are still buffered
        if time.monotonic() - self.started >= self.seconds:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
            logger.warning(
                "time budget of %.1f min reached at step %d of %d: checkpoint saved, run interrupted; "
                "run it again (resume) to continue",
                self.seconds / 60.0,
                state.global_step,
                state.max_steps,
            )
        return control
