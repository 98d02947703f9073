"""``train(config)``: one GRPO run of any method on any profile, resumable after a kill.

A run directory holds ``config.yaml`` (written first; its first line, a comment, names the git commit
the run ran from: ``corerl.machine.provenance``), ``metrics.jsonl`` and ``samples.jsonl``
(appended as the run goes), ``checkpoint-N`` folders (HF Trainer layout, plus ``teacher.pt`` for
Co-rewarding-II) and, at the end, the trained model in ``final/``. ``resume=True`` refuses a config
that differs from the saved one, restarts from the newest complete checkpoint, and first cuts
``metrics.jsonl``/``samples.jsonl`` back to that checkpoint's step so that no step is counted twice.
The mitigations (``corerl.mitigations``) add their files: base-model votes (reused on
resume), the early-stopping slice and history, the test-time evaluation. With ``eval_every``,
``corerl.engine.heldout`` logs held-out accuracy at step 0 (a row of its own, kept on resume) and
every ``eval_every`` steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from corerl.config import TrainConfig, from_yaml, load_config, run_differences, to_yaml
from corerl.machine import rundir
from corerl.machine.provenance import commit_header
from corerl.rewards import TEACHER_METHODS

if TYPE_CHECKING:
    from datasets import Dataset

    from corerl.mitigations import RunMitigations

logger = logging.getLogger(__name__)


def last_complete_checkpoint(
    run_dir: Path, method: str, *, at_most: int | None = None
) -> tuple[Path | None, int]:
    """The newest complete ``checkpoint-N`` (``N <= at_most``), and N (``None, 0`` when there is none).

    Complete: every file written and readable (``corerl.machine.rundir.checkpoint_problem``); a broken
    newest checkpoint is reported by name and the previous one is used.
    """
    from corerl.engine.teacher import TEACHER_STATE_FILE

    needed = ("trainer_state.json",) + ((TEACHER_STATE_FILE,) if method in TEACHER_METHODS else ())
    return rundir.last_complete_checkpoint(run_dir, needed, at_most=at_most)


def _check_resume(config: TrainConfig, run_dir: Path) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        raise FileNotFoundError(f"{saved_path}: nothing to resume (no config.yaml in the run directory)")
    try:
        saved = from_yaml(saved_path.read_text())
    except (ValueError, TypeError, yaml.YAMLError) as error:
        raise ValueError(f"{saved_path}: unreadable saved config ({error})") from None
    differences = run_differences(saved, config)
    if differences:
        raise ValueError(f"--resume refuses a different config than {saved_path}: " + "; ".join(differences))


def _resume_point(config: TrainConfig, run_dir: Path) -> tuple[Path | None, int]:
    """The checkpoint to resume from: the newest complete one whose steps are all in ``metrics.jsonl``
    once each.

    A checkpoint past the logged steps (the log torn or deleted) would leave a permanent gap in the
    log, and one past a step logged twice (two writers) a log the readers refuse, so an earlier one
    is used (the resume is exact: the same steps are trained again) and the checkpoints after it are
    removed, with a warning naming what was lost. Step 0 may have its own row (the held-out
    evaluation's), once.
    """
    from corerl.engine.monitor import first_duplicated_step, logged_step, read_jsonl_steps

    metrics = run_dir / "metrics.jsonl"
    rows = read_jsonl_steps(metrics)
    logged = rundir.logged_through([step for row in rows if (step := logged_step(row)) is not None])
    duplicated = first_duplicated_step(rows)
    if duplicated is not None:  # two writers; step 0 twice is repaired by truncate_to_step(once=True)
        logger.warning(
            "%s logs step %d more than once: its rows from step %d on are dropped",
            metrics,
            duplicated,
            duplicated,
        )
        logged = min(logged, duplicated - 1)
    newest, newest_step = last_complete_checkpoint(run_dir, config.method)
    if newest_step <= logged:
        return newest, newest_step
    checkpoint, step = last_complete_checkpoint(run_dir, config.method, at_most=logged)
    logger.warning(
        "%s logs steps 1-%d only but %s is at step %d: resuming from %s so that no step is missing "
        "from the log (the later checkpoints are removed and their steps trained again)",
        metrics,
        logged,
        newest.name if newest else "a checkpoint",
        newest_step,
        checkpoint.name if checkpoint else "the start",
    )
    for later_step, folder in rundir.checkpoints(run_dir):
        if later_step > step:
            shutil.rmtree(folder)
    return checkpoint, step


def data_fingerprint(rows: Dataset, validation: Dataset | None) -> dict[str, Any]:
    """The training rows' identity: their count and the SHA-256 of their contents (the validation
    slice's too), so that a resume can tell the data it trained on from a changed file of that name."""
    digest = hashlib.sha256()
    for part in (rows, validation):
        for row in [] if part is None else part.to_list():
            digest.update(json.dumps(row, sort_keys=True, default=str).encode() + b"\n")
        digest.update(b"--\n")
    return {"rows": len(rows), "sha256": digest.hexdigest()}


def check_data_fingerprint(run_dir: Path, fingerprint: dict[str, Any], data: str, *, resume: bool) -> None:
    """Write ``data_fingerprint.json`` for a new run; on resume refuse data that differs from it."""
    path = run_dir / rundir.DATA_FINGERPRINT_FILE
    if resume and path.is_file():
        try:
            saved = json.loads(path.read_text())
        except ValueError as error:
            raise ValueError(
                f"{path}: unreadable ({error}); remove it to resume without the data check"
            ) from None
        if saved != fingerprint:
            raise ValueError(
                f"--resume refuses changed training data: {data!r} now gives {fingerprint['rows']} rows "
                f"(sha256 {fingerprint['sha256'][:12]}), the run trained on {saved.get('rows')} rows "
                f"(sha256 {str(saved.get('sha256'))[:12]}, {path}); restore the data or start a new run"
            )
        return
    if int(os.environ.get("RANK", "0")) == 0:
        path.write_text(json.dumps(fingerprint) + "\n")


@dataclass
class PreparedRun:
    """A trainer ready to train, and the checkpoint to start from (None: from scratch)."""

    trainer: Any
    run_dir: Path
    checkpoint: Path | None
    mitigations: RunMitigations  # the test-time evaluation after training reads it
    budget: Any = None  # the TimeBudgetCallback when the config has a time budget


def prepare_run(
    config: TrainConfig,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    lock: rundir.RunLock | None = None,
) -> PreparedRun:
    """Check the inputs, write or check ``config.yaml``, load the model and compose the trainer.

    A new run needs a new or empty folder; ``lock`` (the caller's :func:`rundir.run_lock`) makes
    training stop once another process takes the lock over.
    """
    run_dir = config.run_dir
    if resume:
        _check_resume(config, run_dir)
    else:
        rundir.refuse_occupied(run_dir)

    from corerl.engine.model import choose_backend

    backend = choose_backend(config)
    if backend.unsloth:
        # UNSLOTH_RETURN_LOGITS is left unset: Unsloth reads it only for a forward that is given labels
        # (it then returns a fused loss and no logits, unsloth/models/llama.py:2087-2095); TRL's and the
        # signals' forwards (corerl.engine.signals) pass no labels and get logits without it.
        import unsloth  # noqa: F401  (must precede trl: it patches GRPOTrainer)

    from transformers import trainer as hf_trainer

    from corerl import mitigations
    from corerl.engine.dataset import ORGANISM_DATA, select_rows, trainer_dataset
    from corerl.engine.heldout import HeldoutCallback, heldout_sets
    from corerl.engine.lengths import check_lengths
    from corerl.engine.model import load_model
    from corerl.engine.monitor import (
        MonitoredReward,
        RunLogCallback,
        logged_time,
        stop_token_ids,
        truncate_to_step,
    )
    from corerl.engine.trainer import build_callbacks, grpo_args, trainer_class

    rows, validation = select_rows(config, dataset)  # bad input fails here, before a model loads
    evaluation_sets = heldout_sets(config)  # the held-out sets, fixed for the whole run (none when off)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_data_fingerprint(run_dir, data_fingerprint(rows, validation), config.data, resume=resume)
    checkpoint, checkpoint_step, time_offset = None, 0, 0.0
    main_process = int(os.environ.get("RANK", "0")) == 0  # one writer under torchrun / accelerate launch
    if resume:
        checkpoint, checkpoint_step = _resume_point(config, run_dir)
        if main_process:  # step 0's own row (the held-out evaluation's) is kept, once
            kept = truncate_to_step(run_dir / "metrics.jsonl", checkpoint_step, once=True)
            truncate_to_step(run_dir / "samples.jsonl", checkpoint_step)
            time_offset = logged_time(kept)
        logger.info("resuming %s from step %d", run_dir, checkpoint_step)
    elif main_process:
        (run_dir / "config.yaml").write_text(commit_header() + to_yaml(config))

    model, tokenizer, peft_config = load_model(config, backend)
    # before anything is generated: drops (and counts) the prompts that do not fit the limit in force
    rows = check_lengths(config, model, tokenizer, rows, unsloth=backend.unsloth)
    if validation is not None:  # SRT early stopping's labelled slice: its decodes meet the same limit
        validation = check_lengths(
            config,
            model,
            tokenizer,
            validation,
            unsloth=backend.unsloth,
            columns=["question"],
            minimum=1,
            purpose="the early-stopping slice",
        )
    mitigated = mitigations.prepare(  # base-model votes, early stopping's callback
        config,
        rows,
        validation,
        model,
        tokenizer,
        run_dir,
        cpu=not backend.cuda,
        main_process=main_process,
        from_checkpoint=checkpoint is not None,
    )
    train_dataset = trainer_dataset(config, mitigated.rows)
    mitigated.evaluate_base(model, tokenizer)  # test-time training: the score before training
    monitor = MonitoredReward(
        config.method,
        stop_token_ids=stop_token_ids(model, tokenizer),
        max_completion_length=config.max_completion_length,
        strategies=config.data in ORGANISM_DATA,  # organism strategy shares (monitoring only)
    )
    trainer = trainer_class(config.method)(
        model=model,
        reward_funcs=[monitor],
        args=grpo_args(config, backend, run_dir, stop_token_ids=model.generation_config.eos_token_id),
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    if config.method in TEACHER_METHODS:
        trainer.setup_teacher(config.teacher_alpha_start, config.teacher_alpha_end)
    # One progress bar, RunLogCallback's: transformers adds its own (ProgressCallback in a terminal,
    # NotebookProgressCallback's table in Jupyter: DEFAULT_PROGRESS_CALLBACK, as disable_tqdm=False).
    trainer.remove_callback(hf_trainer.DEFAULT_PROGRESS_CALLBACK)
    if lock is not None:  # before the log and the checkpoint of a step: a lost lock writes neither
        trainer.add_callback(rundir.lock_guard(lock))
    heldout = (
        HeldoutCallback(config, evaluation_sets, run_dir, unsloth=backend.unsloth)
        if evaluation_sets
        else None
    )
    trainer.add_callback(
        RunLogCallback(
            monitor,
            run_dir,
            method=config.method,
            sample_every=config.sample_every,
            samples_per_step=config.samples_per_step,
            teacher_alpha=lambda: getattr(trainer, "teacher_alpha", None),
            time_offset=time_offset,
            progress=config.progress,
            heldout=heldout.take if heldout else None,
        )
    )
    if heldout is not None:
        trainer.add_callback(heldout)
    for callback in (*mitigated.callbacks, *build_callbacks(config)):
        trainer.add_callback(callback)
    from corerl.engine.budget import AlignSavesToGenerations, TimeBudgetCallback, generation_period

    period = generation_period(config)
    budget = None
    if config.time_budget_minutes is not None:
        budget = TimeBudgetCallback(config.time_budget_minutes, period)
        trainer.add_callback(budget)
    if period > 1:  # checkpoints only where no rollout is buffered: exact resume (corerl.engine.budget)
        trainer.add_callback(AlignSavesToGenerations(period))
    return PreparedRun(
        trainer=trainer,
        run_dir=run_dir,
        checkpoint=checkpoint,
        mitigations=mitigated,
        budget=budget,
    )


def train(config: TrainConfig | str | Path, *, resume: bool = False, dataset: Dataset | None = None) -> Path:
    """Train ``config`` (a TrainConfig, a profile name or a YAML path); returns the run directory.

    ``dataset`` replaces the config's data (same schema: ``question``, optional ``id``, ``answer``,
    ``rephrased``). Raises ValueError/FileNotFoundError for bad input before any model is loaded.
    A run stopped by ``time_budget_minutes`` returns without ``final/`` (see :func:`is_finished`).
    """
    if not isinstance(config, TrainConfig):
        config = load_config(config)
    try:
        return _train(config, resume=resume, dataset=dataset)
    finally:
        release_memory()  # a notebook trains several runs in one process


def release_memory() -> None:
    """Free the memory of a finished (or failed) run: the trainer, model and optimizer are garbage
    once ``_train`` returns, but sit in reference cycles (callbacks, accelerator) until collected."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _train(config: TrainConfig, *, resume: bool, dataset: Dataset | None) -> Path:
    if resume and rundir.is_finished(config.run_dir):
        _check_resume(config, config.run_dir)
        logger.warning("%s is finished (final/ holds its model): --resume has nothing to do", config.run_dir)
        return config.run_dir
    main_process = int(os.environ.get("RANK", "0")) == 0  # the lock is the main process's
    if not resume:
        rundir.refuse_occupied(config.run_dir)  # before the lock file is written into it
    with cpu_threads(config), rundir.run_lock(config.run_dir) if main_process else nullcontext() as lock:
        run = prepare_run(config, resume=resume, dataset=dataset, lock=lock)
        train_reporting_divergence(run, config)
        if run.budget is not None and run.budget.stopped_at is not None:
            return run.run_dir  # interrupted by its time budget: checkpointed, resumed by the next call
        final = run.run_dir / "final"
        run.trainer.save_model(str(final))
        if run.trainer.is_world_process_zero():
            run.trainer.processing_class.save_pretrained(str(final))
            # TTRL: evaluate on the questions it trained on
            run.mitigations.evaluate_trained(run.trainer.model, run.trainer.processing_class)
    return run.run_dir


def train_reporting_divergence(run: PreparedRun, config: TrainConfig) -> None:
    """``trainer.train`` from the run's checkpoint; a policy whose probabilities became inf or NaN
    (weights diverged, or a corrupt model) is reported in one line naming the step and settings."""
    try:
        run.trainer.train(resume_from_checkpoint=str(run.checkpoint) if run.checkpoint else None)
    except RuntimeError as error:
        if "probability tensor contains" not in str(error):
            raise
        raise ValueError(
            f"{run.run_dir}: sampling failed at step {run.trainer.state.global_step + 1}: the policy's "
            f"probabilities are inf or NaN (learning_rate {config.learning_rate:g}, temperature "
            f"{config.temperature:g}): the weights diverged or the model is corrupt"
        ) from None


def is_finished(run_dir: str | os.PathLike[str]) -> bool:
    """True when the run wrote its trained model (``final/`` with weights); False for an interrupted run."""
    return rundir.is_finished(Path(run_dir))


@contextmanager
def cpu_threads(config: TrainConfig) -> Iterator[None]:
    """Run with ``config.cpu_threads`` torch threads on a CPU run, restoring the previous count after."""
    import torch

    previous = torch.get_num_threads()
    if config.use_cpu and config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
