"""SRT's early stopping (arXiv 2505.21444 Sec. 5.1): the one place a label-free run reads labels.

- :func:`split_validation`: a small labelled slice (default 1% of the training set) held out.
- :func:`accuracy_evaluator`: model -> avg@k on that slice (greedy by default).
- :class:`EarlyStopping`: a ``TrainerCallback`` that scores the policy every ``eval_steps`` steps,
  has the Trainer checkpoint each new best, and stops after ``patience`` evaluations without
  improvement; its history goes to ``<output_dir>/early_stopping.json``.
- ``evaluation_model`` (re-exported from ``corerl.machine.rundir``, where evaluation finds it too): the
  model an early-stopped run is evaluated with: its best checkpoint, never ``final/``.

``corerl train --early-stopping`` applies them through ``corerl.mitigations.hooks``. Imports
transformers (``EarlyStopping`` is a ``TrainerCallback``).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from corerl.evaluate import MATH_PROMPT, Formatter
from corerl.machine.rundir import EARLY_STOPPING_FILE
from corerl.machine.rundir import evaluation_model as evaluation_model  # its home; notebooks import it here
from corerl.mitigations.files import write_atomically

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


def split_validation(
    dataset: datasets.Dataset, fraction: float = 0.01, *, seed: int = 0, min_questions: int = 1
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """``(train, validation)``: a seeded random ``fraction`` of the rows (at least ``min_questions``)
    held out as the labelled validation slice; both keep the original row order.
    """
    size = len(dataset)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    held_out = max(min_questions, math.floor(fraction * size + 0.5))
    if held_out >= size:
        raise ValueError(f"a validation slice of {held_out} questions leaves no training data ({size} rows)")
    chosen = set(random.Random(seed).sample(range(size), held_out))
    train = [i for i in range(size) if i not in chosen]
    return dataset.select(train), dataset.select(sorted(chosen))


def accuracy_evaluator(
    validation: datasets.Dataset,
    tokenizer: Any,
    *,
    prompt: str | Formatter = MATH_PROMPT,
    chat: bool | None = None,
    k: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
) -> Callable[[Any], float]:
    """A function model -> avg@k on the labelled ``validation`` slice (greedy by default)."""
    from corerl.evaluate import evaluate

    def score(model: Any) -> float:
        table = evaluate(
            model,
            tokenizer,
            {"validation": validation},
            k=k,
            temperature=temperature,
            prompt=prompt,
            chat=chat,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=seed,
            progress=False,
        ).table
        return float(table.loc[table["metric"] == "avg@k", "value"].iloc[0])

    return score


class EarlyStopping(TrainerCallback):
    """Score the policy every ``eval_steps`` steps, checkpoint each new best, stop after ``patience``.

    ``score(model) -> float`` (higher is better; e.g. :func:`accuracy_evaluator`) runs after the
    optimizer step. A score above the best by more than ``min_delta`` becomes the best: the
    callback asks the Trainer to save ``checkpoint-<step>`` now and records the step as the
    Trainer's ``best_global_step`` so checkpoint rotation keeps it. ``patience`` evaluations in a
    row without a new best stop training. The history is written to
    ``<output_dir>/early_stopping.json`` after every evaluation and read back on resume (entries
    after the resumed step are dropped, they are evaluated again).
    """

    state_filename = EARLY_STOPPING_FILE

    def __init__(
        self,
        score: Callable[[Any], float],
        *,
        eval_steps: int = 10,
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        if eval_steps < 1 or patience < 1:
            raise ValueError(f"eval_steps and patience must be >= 1, got {eval_steps} and {patience}")
        self.score = score
        self.eval_steps = eval_steps
        self.patience = patience
        self.min_delta = min_delta
        self.history: list[dict[str, float]] = []
        self.best_step: int | None = None
        self.best_score: float | None = None
        self.evaluations_without_improvement = 0
        self.output_dir: Path | None = None
        self.stopped_at: int | None = None

    @property
    def best_checkpoint(self) -> Path | None:
        """``<output_dir>/checkpoint-<best step>``, the checkpoint of the best score so far."""
        if self.best_step is None or self.output_dir is None:
            return None
        return self.output_dir / f"checkpoint-{self.best_step}"

    def _replay(self, history: list[dict[str, float]]) -> None:
        self.history, self.best_step, self.best_score = [], None, None
        self.evaluations_without_improvement = 0
        for entry in history:
            self._record(int(entry["step"]), float(entry["score"]))

    def _record(self, step: int, score: float) -> bool:
        self.history.append({"step": step, "score": score})
        if self.best_score is None or score > self.best_score + self.min_delta:
            self.best_step, self.best_score = step, score
            self.evaluations_without_improvement = 0
            return True
        self.evaluations_without_improvement += 1
        return False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.output_dir = Path(args.output_dir)
        saved = self.output_dir / self.state_filename
        if state.global_step > 0 and saved.is_file():  # resuming: continue the saved history
            history = json.loads(saved.read_text(encoding="utf-8"))["history"]
            self._replay([entry for entry in history if entry["step"] <= state.global_step])
            if self.best_step is not None:
                state.best_global_step, state.best_metric = self.best_step, self.best_score
        else:
            self._replay([])

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        step = state.global_step
        if step % self.eval_steps:
            return
        model = kwargs.get("model")
        if model is None:
            raise ValueError("EarlyStopping needs the model in the callback arguments")
        score = float(self.score(model))
        improved = self._record(step, score)
        logger.info(
            "early stopping: step %d score %.4f (best %.4f at step %s)",
            step,
            score,
            self.best_score,
            self.best_step,
        )
        if improved:
            state.best_global_step, state.best_metric = step, score
            control.should_save = True
        elif self.evaluations_without_improvement >= self.patience:
            self.stopped_at = step
            control.should_training_stop = True
        if state.is_world_process_zero:
            self._save()

    def _save(self) -> None:
        if self.output_dir is None:  # on_train_begin was not called: nowhere to write
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "history": self.history,
            "best_step": self.best_step,
            "best_score": self.best_score,
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "stopped_at": self.stopped_at,
        }
        write_atomically(self.output_dir / self.state_filename, json.dumps(payload, indent=1))
