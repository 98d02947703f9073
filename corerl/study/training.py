"""Train or load a study's runs: load a finished run, resume an interrupted one, train a missing one.

- :func:`train_or_load`: one run by its config; a finished run (``final/`` with weights) is loaded as
  it is, unless ``retrain``; its saved config must equal the one asked for, else ValueError;
- :class:`RunJob` and :func:`train_in_processes`: several runs (a run's seeds, or several runs' seeds)
  ``SEED_JOBS`` at a time in fresh processes with one torch thread each, as the tiny profile trains them;
- :class:`RunInterrupted`: a run stopped at its time budget, checkpointed, resumed by running again.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.config import TrainConfig, from_yaml, run_differences
from corerl.machine.rundir import is_finished

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

SEED_JOBS = 2  # tiny-profile seed runs at a time (2 cores: one process per core, one thread each)


@dataclass(frozen=True)
class RunJob:
    """One run for :func:`train_in_processes`: ``Study.run(method, name, prior=prior, dataset=dataset,
    **overrides)``. ``dataset`` (a replacement training set) travels to the worker pickled."""

    method: str
    name: str
    prior: str = "aligned"
    overrides: dict[str, Any] = field(default_factory=dict)
    dataset: datasets.Dataset | None = None


class RunInterrupted(RuntimeError):
    """A run stopped at its time budget: checkpointed; running the same cell again resumes it."""


def train_or_load(
    config: TrainConfig, *, retrain: bool = False, dataset: datasets.Dataset | None = None
) -> Path:
    """Train the run of ``config`` unless it is already finished; resume it when it was interrupted.

    ``retrain`` removes the run's folder first. A saved config that differs from ``config`` is refused
    (ValueError naming the differences); a run stopped at its time budget raises :class:`RunInterrupted`.
    """
    from corerl.engine import train

    run_dir = config.run_dir
    saved = run_dir / "config.yaml"
    if retrain and run_dir.exists():
        logger.info("retraining: removing %s", run_dir)
        shutil.rmtree(run_dir)
    if saved.exists():
        differences = run_differences(from_yaml(saved.read_text()), config)
        if differences:
            raise ValueError(
                f"{run_dir} was trained with another config ({'; '.join(differences)}); "
                "set RETRAIN = True or choose another RUNS_DIR"
            )
        if is_finished(run_dir):
            logger.info("loading the finished run %s", run_dir)
            return run_dir
        logger.info("resuming the interrupted run %s", run_dir)
        return _finished(train(config, resume=True, dataset=dataset))
    return _finished(train(config, dataset=dataset))


def train_in_processes(run_job: Callable[[RunJob], Path], jobs: Sequence[RunJob]) -> list[Path]:
    """``run_job(job)`` for each job (``corerl.study``'s ``Study.run`` of the job, a picklable function),
    ``SEED_JOBS`` at a time in fresh (spawned) processes; returns the run folders in the order of ``jobs``. A pool of ``SEED_JOBS`` workers takes the next
    job as soon as one finishes, so that several runs' seeds keep both cores busy (three seeds alone
    would leave one core idle for a third of the time)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=SEED_JOBS, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        return [future.result() for future in futures]


def _finished(run_dir: Path) -> Path:
    if not is_finished(run_dir):
        raise RunInterrupted(
            f"{run_dir} stopped at its time budget (time_budget_minutes) and saved a checkpoint: run this "
            "notebook again, in a new session if this one is ending, and the run resumes where it stopped"
        )
    return run_dir
