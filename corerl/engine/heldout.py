"""Held-out accuracy during training: the policy evaluated on a fixed held-out set as it trains.

With ``eval_every > 0`` (``corerl.config.TrainConfig``) :class:`HeldoutCallback` evaluates the
policy before the first step (step 0, a ``metrics.jsonl`` row of its own) and after every
``eval_every``-th optimizer step and the last one (``max_steps``), and puts the figures on that
step's own row:

- ``heldout/accuracy``: avg@k, the mean correctness over every sample of every question, in [0, 1]
  (``corerl.evaluate.summarize``);
- on organism sets ``heldout/share/<strategy>``: the share of the samples in each strategy class
  (``corerl.arithmetic.strategies``);
- an additional set NAME (``eval_sets``) writes the same columns as ``heldout_NAME/...``.

The set and the sampling are the study's own (``corerl.evaluate.EVALUATION`` of the profile:
token cap, batch size; temperature 0.8, ``corerl.evaluate.evaluate``'s default): on organism data the
first ``eval_size`` problems of the organism's held-out split, elsewhere the first ``eval_size``
questions of MATH-500; ``eval_samples`` samples each, the run's prompt template, sampling seed = the
run's seed. So on the tiny profile with the defaults (200 problems x 4 samples) step 0 of a run equals
the study's evaluation of its base model with the run's seed (``Study.evaluate_base``, the base row of
the results table, for the run of the study's own seed). The evaluation runs
:func:`corerl.evaluate.evaluate` on the trainer's own model (never a second load): on Unsloth between
``FastLanguageModel.for_inference`` and ``for_training``, otherwise in ``model.eval()`` (restored
after). On a GPU profile the batch is at most a training step's rollouts, a batch the run already
holds in memory. The evaluation time counts in the ``time`` column (wall clock of the run); the step-0
row's ``time`` is the evaluation's own.

Departure: the papers evaluate their checkpoints on the full benchmarks after training; here the curve
is a fixed subsample (``eval_size``), evaluated during training, with the study's settings.

Isolation: the evaluation draws from its own random state. The torch (CPU and CUDA), Python and NumPy
generators are saved before it and restored after, and it seeds its sampling from the run's seed, so a
run's weights are bit-identical with and without ``eval_every`` and a resumed run logs the same
held-out rows (the evaluation at step s depends only on the weights after step s). Its figures go to
``metrics.jsonl`` only; no reward reads them. On several processes the main process evaluates.

Additional sets (``TrainConfig.eval_sets``) are named in :data:`EVAL_SETS`: a name maps to an
:class:`EvalSet`, a function ``config -> datasets.Dataset`` (columns ``question`` and ``answer``) and
whether its rows are organism problems (then the strategy shares are logged). ``hard`` is the
organism's held-out problems of 3-4 operations (:func:`hard_slice`; the ``hard`` regime of
``corerl.study.regimes`` turns it on). To add one, add an entry here; a config naming it turns it on.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from corerl.arithmetic.strategies import METRIC_PREFIX
from corerl.config import TrainConfig
from corerl.engine.dataset import ORGANISM_DATA
from corerl.engine.monitor import append_jsonl, read_jsonl_steps

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

PREFIX = "heldout"  # columns of the main set: heldout/accuracy, heldout/share/<strategy>
GPU_HELDOUT_DATA = "math500"  # the main set where the training data is not the organism's


@dataclass(frozen=True)
class EvalSet:
    """An additional held-out set: its rows for a config, and whether they are organism problems."""

    rows: Callable[[TrainConfig], Dataset]
    organism: bool = False


def hard_slice(config: TrainConfig) -> Dataset:
    """The first ``eval_size`` problems of the organism's held-out split with 3-4 operations
    (``corerl.arithmetic.task.HARD_OPERATIONS``): SRT's hard-set condition, evaluated (issue 21)."""
    from corerl.arithmetic.dataset import make_dataset
    from corerl.arithmetic.task import HARD_OPERATIONS
    from corerl.config import _parse_operations

    return make_dataset(config.eval_size, split="test", difficulty=_parse_operations(HARD_OPERATIONS))


# Additional held-out sets by name (TrainConfig.eval_sets); each writes heldout_<name>/... columns.
EVAL_SETS: dict[str, EvalSet] = {"hard": EvalSet(hard_slice, organism=True)}


@dataclass(frozen=True)
class HeldoutSet:
    """One set the callback evaluates: its column prefix, rows and whether they are organism problems."""

    prefix: str
    dataset: Dataset
    organism: bool


def column_prefix(name: str | None = None) -> str:
    """The column prefix of a held-out set: ``heldout`` for the main set, ``heldout_NAME`` for set NAME.

    >>> column_prefix(), column_prefix("hard")
    ('heldout', 'heldout_hard')
    """
    return f"{PREFIX}_{name}" if name else PREFIX


def heldout_sets(config: TrainConfig) -> list[HeldoutSet]:
    """The sets a config evaluates (none when ``eval_every`` is 0): the main set, then ``eval_sets``.

    Raises ValueError naming an unknown ``eval_sets`` entry (before any model loads).
    """
    if config.eval_every == 0:
        return []
    unknown = [name for name in config.eval_sets if name not in EVAL_SETS]
    if unknown:
        known = ", ".join(EVAL_SETS) or "none is defined"
        raise ValueError(
            f"eval_sets: unknown held-out set(s) {', '.join(unknown)} (corerl.engine.heldout.EVAL_SETS: {known})"
        )
    sets = [_main_set(config)]
    for name in config.eval_sets:
        extra = EVAL_SETS[name]
        sets.append(HeldoutSet(column_prefix(name), extra.rows(config), extra.organism))
    return sets


def _main_set(config: TrainConfig) -> HeldoutSet:
    """The organism's held-out split on organism data (``corerl.evaluate.load_benchmark``, the study's
    set), else the first ``eval_size`` questions of MATH-500."""
    from corerl.evaluate import ORGANISM, load_benchmark

    if config.data in ORGANISM_DATA:
        _, dataset, _ = load_benchmark(ORGANISM, limit=config.eval_size)
        return HeldoutSet(PREFIX, dataset, organism=True)
    _, dataset, _ = load_benchmark(GPU_HELDOUT_DATA, limit=config.eval_size)
    return HeldoutSet(PREFIX, dataset, organism=False)


def sampling_settings(config: TrainConfig) -> dict[str, int]:
    """Token cap and batch size of the evaluation: the study's for the profile, the batch at most one
    training step's rollouts on a GPU.

    >>> from corerl.config import make_config
    >>> sampling_settings(make_config("tiny")), sampling_settings(make_config("t4"))
    ({'max_new_tokens': 64, 'batch_size': 64}, {'max_new_tokens': 512, 'batch_size': 32})
    """
    from corerl.evaluate import EVALUATION

    study = EVALUATION[config.profile]
    batch = study["batch_size"]
    if not config.use_cpu:
        batch = min(batch, config.questions_per_step * config.num_generations)
    return {"max_new_tokens": study["max_new_tokens"], "batch_size": batch}


@contextmanager
def own_random_state() -> Iterator[None]:
    """Run the block on its own random state: torch (CPU, and CUDA once initialised), Python's and
    NumPy's generators are restored afterwards, whatever the block drew."""
    import numpy
    import torch

    python_state, numpy_state = random.getstate(), numpy.random.get_state()
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(python_state)
        numpy.random.set_state(numpy_state)


@contextmanager
def inference_mode(model: Any, unsloth: bool) -> Iterator[None]:
    """Unsloth's inference mode around the block (``for_inference``, then ``for_training``); a plain
    model needs nothing here (``corerl.generation.generate`` switches it to eval mode and back)."""
    if not unsloth:
        yield
        return
    from unsloth import FastLanguageModel

    FastLanguageModel.for_inference(model)
    try:
        yield
    finally:
        FastLanguageModel.for_training(model)


def evaluate_policy(
    model: Any, tokenizer: Any, sets: Sequence[HeldoutSet], config: TrainConfig, *, unsloth: bool = False
) -> dict[str, float]:
    """The held-out columns of one evaluation of ``model`` on ``sets`` (see the module docstring)."""
    from corerl.evaluate import ORGANISM, evaluate

    figures: dict[str, float] = {}
    with own_random_state(), inference_mode(model, unsloth):
        for heldout in sets:
            # The organism label makes evaluate() add the strategy shares of the samples.
            label = ORGANISM if heldout.organism else heldout.prefix
            table = evaluate(
                model,
                tokenizer,
                {label: heldout.dataset},
                model_name="policy",
                k=config.eval_samples,
                prompt=config.prompt_template,
                chat=config.chat,
                seed=config.seed,
                progress=False,
                **sampling_settings(config),
            ).table
            values = dict(zip(table["metric"], table["value"], strict=True))
            figures[f"{heldout.prefix}/accuracy"] = float(values["avg@k"])
            for metric, value in values.items():
                if metric.startswith(METRIC_PREFIX):
                    figures[f"{heldout.prefix}/share/{metric.removeprefix(METRIC_PREFIX)}"] = float(value)
    return figures


class HeldoutCallback(TrainerCallback):
    """Evaluates the policy at step 0 and every ``eval_every`` steps (and the last); see the module docstring.

    The step-0 row is written here (unless ``metrics.jsonl`` already has one: a resumed run); the
    figures of a later step wait in :meth:`take` for ``RunLogCallback``, which puts them on that
    step's row.
    """

    def __init__(
        self, config: TrainConfig, sets: Sequence[HeldoutSet], run_dir: Path, *, unsloth: bool = False
    ) -> None:
        self.config = config
        self.sets = list(sets)
        self.metrics_path = run_dir / "metrics.jsonl"
        self.unsloth = unsloth
        self.pending: dict[int, dict[str, float]] = {}

    def take(self, step: int) -> dict[str, float]:
        """The held-out columns of ``step`` (empty when it was not evaluated), handed over once."""
        return self.pending.pop(step, {})

    def _evaluate(self, model: Any, tokenizer: Any, step: int) -> tuple[dict[str, float], float]:
        started = time.monotonic()
        figures = evaluate_policy(model, tokenizer, self.sets, self.config, unsloth=self.unsloth)
        seconds = time.monotonic() - started
        logger.info(
            "held-out accuracy at step %d: %.3f (%.1f s)", step, figures[f"{PREFIX}/accuracy"], seconds
        )
        return figures, seconds

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not state.is_world_process_zero or state.global_step != 0:
            return
        if any(int(row.get("step", -1)) == 0 for row in read_jsonl_steps(self.metrics_path)):
            return  # resumed from the start: step 0 is already logged
        figures, seconds = self._evaluate(model, processing_class, 0)
        append_jsonl(
            self.metrics_path,
            [{"step": 0, "time": round(seconds, 3), "method": self.config.method, **figures}],
        )

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        step = state.global_step
        if not state.is_world_process_zero or (step % self.config.eval_every and step != state.max_steps):
            return
        self.pending[step], _ = self._evaluate(model, processing_class, step)
