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

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class TimeBudgetCallback(TrainerCallback):
    """Save and stop at the first step end after ``minutes`` of training in this call."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        self.started: float | None = None
        self.stopped_at: int | None = None  # the step at which the budget stopped the run

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is None or state.global_step >= state.max_steps:
            return control
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
