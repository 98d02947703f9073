"""How a ``TrainConfig`` applies the mitigations on the one training path: the engine's entry points.

The one module that reads the mitigation fields of the config (``corerl train --early-stopping``,
``--offline-labels``, ``--curriculum 0.33``, ``--test-time-training``); ``corerl.engine`` calls
:func:`select_rows` (in ``corerl.engine.dataset``) and :func:`prepare` (in ``corerl.engine.run``),
which hand the work to the modules of ``corerl.mitigations``:

1. :func:`select_rows`, before any model loads: test-time training keeps at most
   ``test_time_questions`` questions (a seeded sample that never reads ``answer``); early stopping
   removes the labelled validation slice from the training set (seeded), and fails here when the
   data has no answers.
2. :func:`prepare`, once the policy is loaded and before its first step, returns a
   :class:`RunMitigations` (the rows to train on, the callbacks the trainer installs):

   - :func:`add_base_model_votes`: the frozen base model (the loaded policy before its first step)
     votes once per question, reading only ``id`` and ``question``. The curriculum keeps the easiest
     fraction by majority share; offline labels add the ``offline_label`` column the
     ``offline-labels`` reward reads. Votes are cached in the run directory (``curriculum_votes.json``,
     ``offline_labels.json``): a resumed run reads them and never samples again.
   - :func:`early_stopping_callback`: ``corerl.mitigations.early_stopping.EarlyStopping`` scoring
     greedy accuracy on the validation slice (written to ``early_stopping_validation.jsonl``), the
     only place a label-free run reads labels; its history goes to ``early_stopping.json``.
3. :meth:`RunMitigations.evaluate_base` / :meth:`RunMitigations.evaluate_trained`
   (:func:`evaluate_test_time`): avg@k / maj@k on the test-time set, before and after training
   (``test_time_eval.csv``/``.json``).

Departures: base-model votes sample at temperature 1.0 for both offline labels and the curriculum
(SRT samples offline labels with its rollout settings) with the run's prompt, completion length and
seed. Early stopping keeps the best checkpoint (named in ``early_stopping.json``); ``final/`` is the
model at the last step, as in every run. Test-time training departs from TTRL's recipe: TTRL votes over
``n_votes = 64`` samples and trains on ``n_samples = 32`` of them; here the label is voted over the same
``num_generations`` rollouts that are trained on (no separate vote count), with the profile's other
settings (TTRL: 8 prompts per step, lr 5e-7, KL 0.001, 80 epochs over the set).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.config import TrainConfig
from corerl.data import DataError
from corerl.mitigations import ttrl, votes

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

VOTE_TEMPERATURE = 1.0  # SRT's curriculum: 32 samples at temperature 1.0
OFFLINE_LABELS_FILE = "offline_labels.json"
CURRICULUM_VOTES_FILE = "curriculum_votes.json"
VALIDATION_FILE = "early_stopping_validation.jsonl"
TEST_TIME_EVAL_NAME = "test_time_eval"
TEST_TIME_EVAL_SAMPLES = 4  # avg@4 / maj@4
TEST_TIME_EVAL_TEMPERATURE = 0.8  # the papers' evaluation temperature


def generation_batch_size(config: TrainConfig) -> int:
    """Sequences per HF ``generate`` call: one training step's rollouts, which the run already fits."""
    return config.questions_per_step * config.num_generations


def select_rows(dataset: Dataset, config: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """``(training rows, labelled validation slice or None)`` after test-time selection and early stopping.

    Raises ``DataError`` (a ValueError) when early stopping meets data without answers.
    """
    from corerl.mitigations.early_stopping import split_validation

    if config.test_time_training:  # TTRL: a small unlabelled test set; label-free selection
        before = len(dataset)
        dataset = ttrl.select_test_time_set(
            dataset, max_questions=config.test_time_questions, seed=config.seed
        )
        logger.info("test-time training on %d of %d questions of %s", len(dataset), before, config.data)
    if not config.early_stopping:
        return dataset, None
    if "answer" not in dataset.column_names:
        raise DataError(
            f"early stopping scores a labelled validation slice, but the dataset {config.data!r} has no "
            f"'answer' column (columns: {', '.join(dataset.column_names)}); turn early_stopping off"
        )
    train, validation = split_validation(dataset, config.validation_fraction, seed=config.seed)
    unanswered = sum(answer is None or not str(answer).strip() for answer in validation["answer"])
    if unanswered:
        raise DataError(
            f"early stopping: {unanswered} question(s) of the validation slice of {config.data!r} have an "
            "empty 'answer'; give every question an answer or turn early_stopping off"
        )
    logger.info(
        "early stopping: %d labelled validation questions held out of %d", len(validation), len(dataset)
    )
    return train, validation


def vote_pool_size(config: TrainConfig) -> int:
    """Questions worth voting on: those the run sees (``max_steps x questions_per_step``), divided by
    ``curriculum_fraction`` for the curriculum (which keeps that fraction of what it votes on).

    >>> from corerl.config import TrainConfig
    >>> vote_pool_size(TrainConfig(max_steps=30, questions_per_step=4, curriculum_fraction=1 / 3))
    360
    """
    seen = config.max_steps * config.questions_per_step
    return math.ceil(seen / config.curriculum_fraction) if config.curriculum_fraction else seen


def add_base_model_votes(
    dataset: Dataset, config: TrainConfig, model: Any, tokenizer: Any, run_dir: Path
) -> Dataset:
    """The curriculum's easiest fraction and/or the offline labels, voted once by the frozen ``model``.

    Reads only ``id`` and ``question``; cached in ``run_dir`` (a complete cache means ``model`` is
    not used at all, so a resumed run never samples again).
    """
    if config.votes_for_seen_questions and len(dataset) > vote_pool_size(config):
        before = len(dataset)  # a seeded sample of the questions; reads no answer
        dataset = dataset.shuffle(seed=config.seed).select(range(vote_pool_size(config)))
        logger.info("voting on %d of %d questions: the ones this run can see", len(dataset), before)
    options: dict[str, Any] = {
        "temperature": VOTE_TEMPERATURE,
        "max_new_tokens": config.max_completion_length,
        "prompt": config.prompt_template,
        "chat": config.chat,
        "seed": config.seed,
        "batch_size": generation_batch_size(config),
        "progress": config.progress,
    }
    if config.curriculum_fraction is not None:  # SRT Sec. 5.3: easiest fraction by base-model share
        before = len(dataset)
        dataset = votes.curriculum(
            model,
            tokenizer,
            dataset,
            run_dir / CURRICULUM_VOTES_FILE,
            fraction=config.curriculum_fraction,
            k=config.curriculum_samples,
            **options,
        )
        logger.info("curriculum: kept the easiest %d of %d questions", len(dataset), before)
    if config.offline_labels:  # SRT Sec. 5.2: labels voted once by the frozen model, then fixed
        dataset = votes.offline_labels(
            model,
            tokenizer,
            dataset,
            run_dir / OFFLINE_LABELS_FILE,
            k=config.offline_label_samples,
            **options,
        )
    return dataset


def save_validation(validation: Dataset, run_dir: Path) -> None:
    """Write the labelled slice early stopping scores (``id``, ``question``, ``answer``), one JSON per line."""
    with (run_dir / VALIDATION_FILE).open("w", encoding="utf-8") as handle:
        for row in validation:
            handle.write(json.dumps({key: row.get(key) for key in ("id", "question", "answer")}) + "\n")


def early_stopping_callback(config: TrainConfig, validation: Dataset, tokenizer: Any) -> TrainerCallback:
    """``EarlyStopping`` on greedy accuracy (avg@1) over ``validation``, with the run's prompt and length."""
    from corerl.mitigations.early_stopping import EarlyStopping, accuracy_evaluator

    score = accuracy_evaluator(
        validation,
        tokenizer,
        prompt=config.prompt_template,
        chat=config.chat,
        max_new_tokens=config.max_completion_length,
        batch_size=generation_batch_size(config),
        seed=config.seed,
    )
    # A run shorter than eval_steps is still scored once, at its last step.
    eval_steps = min(config.early_stopping_eval_steps, config.max_steps)
    return EarlyStopping(score, eval_steps=eval_steps, patience=config.early_stopping_patience)


def evaluate_test_time(
    model: Any, tokenizer: Any, dataset: Dataset, config: TrainConfig, run_dir: Path, name: str
) -> None:
    """Add ``name``'s avg@k / maj@k on the test-time set to ``run_dir/test_time_eval.csv`` (and ``.json``).

    A set without answers is trained on but not evaluated (logged).
    """
    import pandas as pd

    from corerl.evaluate import evaluate, save_results

    if "answer" not in dataset.column_names or any(
        answer is None or not str(answer).strip() for answer in dataset["answer"]
    ):
        logger.warning("test-time set %r has questions without an answer: not evaluated", config.data)
        return
    table = evaluate(
        model,
        tokenizer,
        {config.data: dataset},
        model_name=name,
        k=TEST_TIME_EVAL_SAMPLES,
        temperature=TEST_TIME_EVAL_TEMPERATURE,
        max_new_tokens=config.max_completion_length,
        prompt=config.prompt_template,
        chat=config.chat,
        seed=config.seed,
        batch_size=generation_batch_size(config),
        progress=config.progress,
    ).table
    saved = run_dir / f"{TEST_TIME_EVAL_NAME}.json"
    if saved.exists():
        earlier = pd.DataFrame(json.loads(saved.read_text(encoding="utf-8")))
        table = pd.concat([earlier[earlier["model"] != name], table], ignore_index=True)
    save_results(table, run_dir, name=TEST_TIME_EVAL_NAME)


@dataclass
class RunMitigations:
    """A run's mitigations once the base model has voted: the rows to train on, the callbacks the
    trainer installs (early stopping) and the test-time evaluations around training."""

    config: TrainConfig
    run_dir: Path
    rows: Dataset
    callbacks: list[TrainerCallback]
    main_process: bool
    from_checkpoint: bool

    def evaluate_base(self, model: Any, tokenizer: Any) -> None:
        """Test-time training: the base model's score on the test-time set (main process; a run that
        starts from a checkpoint scored it before)."""
        if self.config.test_time_training and self.main_process and not self.from_checkpoint:
            evaluate_test_time(model, tokenizer, self.rows, self.config, self.run_dir, "base")

    def evaluate_trained(self, model: Any, tokenizer: Any) -> None:
        """Test-time training: the trained model's score on the questions it trained on (TTRL)."""
        if self.config.test_time_training and self.main_process:
            evaluate_test_time(model, tokenizer, self.rows, self.config, self.run_dir, "trained")


def prepare(
    config: TrainConfig,
    rows: Dataset,
    validation: Dataset | None,
    model: Any,
    tokenizer: Any,
    run_dir: Path,
    *,
    cpu: bool,
    main_process: bool,
    from_checkpoint: bool,
) -> RunMitigations:
    """The mitigations' part of a run whose policy is loaded and has not trained yet.

    ``rows`` and ``validation`` come from :func:`select_rows`; ``cpu`` says whether the run has no
    CUDA, ``main_process`` whether this process writes the run's files, ``from_checkpoint`` whether
    training resumes from a checkpoint.
    """
    if config.curriculum_fraction is not None or config.offline_labels:
        from accelerate import PartialState

        # The policy has not trained yet: it is the frozen base model that votes, once, cached in
        # run_dir; the main process votes first and the others read its file (same labels everywhere).
        with PartialState(cpu=cpu).main_process_first():
            rows = add_base_model_votes(rows, config, model, tokenizer, run_dir)
    callbacks: list[TrainerCallback] = []
    if validation is not None:
        if main_process:
            save_validation(validation, run_dir)
        callbacks.append(early_stopping_callback(config, validation, tokenizer))
    return RunMitigations(config, run_dir, rows, callbacks, main_process, from_checkpoint)
