"""The notebooks' study harness: name, train (or load), evaluate and tabulate the runs of one profile.

The numbered notebooks hold the narrative and the plots; the few lines each of them would otherwise
repeat live here. :class:`Study` is the notebooks' one object: the runs of a profile under
``<root>/<profile>/<name>``, composed of one module per responsibility:

- ``corerl.study.profiles``: what a profile sets (:func:`resolve_profile`: ``"auto"`` is ``t4`` on a
  CUDA GPU and ``tiny`` otherwise; base models, run configs, prompt, :data:`EVALUATION`);
- ``corerl.study.runs``: where runs live (:func:`storage_root`: Google Drive or Kaggle's working
  folder when present, else ``./runs``) and what they are called (a run's seeds ``name``,
  ``name-seed1``, ...; :data:`SEEDS`);
- ``corerl.study.training``: :meth:`Study.run` loads a finished run, resumes an interrupted one and
  trains a missing one; :meth:`Study.run_together` trains several (:meth:`Study.seed_jobs`: one run
  per seed of ``SEEDS``), on the tiny profile two at a time, in separate processes with one torch
  thread each;
- ``corerl.study.evaluation``: :meth:`Study.evaluate` caches each model's evaluation as CSV;
- ``corerl.study.isolation``: on a GPU profile (``isolate``) each training run, evaluation and sampling
  runs in a fresh child process: Unsloth's class-level patches and caches never reach the next one;
- ``corerl.study.curves``: :func:`smooth`, rolling means of a run's curves; :meth:`Study.seed_metrics`
  gives a run's seeds' frames, which ``corerl.plots`` draws as a seed mean with an sd band;
- ``corerl.study.narrative``: what a run showed, as sentences computed from its numbers (notebooks);
- ``corerl.study.curves``: :meth:`Study.heldout_curves` gives the held-out accuracy logged during
  training, per method, seed and step (long form);
- ``corerl.study.tables``: :meth:`Study.results_table` gathers the evaluations (methods x
  benchmarks), averaging a run's seeds; the Markdown table writes mean ± sd.

``smoke=True`` shrinks everything (a few steps, questions and tokens, the organism's seconds-long
smoke build) so that CI can execute every notebook; smoke runs live under ``<profile>-smoke`` and
are never mistaken for real ones. Their numbers mean nothing.

Departures: evaluation subsamples the benchmarks (``eval_questions``) to fit a T4 session; the paper
evaluates on the full sets. The ``t4`` profile's second prior (``misaligned``) is a different model
family (Llama-3.2-3B-Instruct, the paper's second model), not a model with a known systematic error as
on the organism.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.config import TrainConfig, make_config
from corerl.study import curves, evaluation, isolation, profiles, runs, tables, training
from corerl.study.curves import smooth
from corerl.study.profiles import (
    EVALUATION,
    GPU_MODELS,
    SMOKE_EVALUATION,
    SMOKE_OVERRIDES,
    SMOKE_STEPS,
    TINY_THREADS,
    resolve_profile,
)
from corerl.study.runs import DRIVE_ROOT, KAGGLE_ROOT, SEEDS, storage_root
from corerl.study.tables import describe_hardware
from corerl.study.training import SEED_JOBS, RunInterrupted, RunJob

if TYPE_CHECKING:
    import datasets
    import pandas as pd

__all__ = [
    "DRIVE_ROOT",
    "EVALUATION",
    "GPU_MODELS",
    "KAGGLE_ROOT",
    "SEEDS",
    "SEED_JOBS",
    "SMOKE_EVALUATION",
    "SMOKE_OVERRIDES",
    "SMOKE_STEPS",
    "TINY_THREADS",
    "RunInterrupted",
    "RunJob",
    "Study",
    "describe_hardware",
    "resolve_profile",
    "smooth",
    "storage_root",
]


@dataclass
class Study:
    """The runs of one profile. ``profile`` may be ``auto``; ``model`` replaces the aligned base model.

    Creating a Study sets torch's thread count of this process (``threads`` when given, else
    ``TINY_THREADS`` on the tiny profile) or, on a GPU profile with CUDA and Unsloth installed, imports
    Unsloth, which must come before transformers (and prints why when it cannot).

    ``isolate``: run each training run, evaluation and sampling in a child process
    (``corerl.study.isolation``); None = on every profile but ``tiny``.
    """

    profile: str = "auto"
    steps: int | None = None
    model: str | None = None
    smoke: bool = False
    retrain: bool = False
    root: str | os.PathLike[str] | None = None
    figures: str | os.PathLike[str] = "figures"
    seed: int = 0
    eval_questions: int | None = None
    threads: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    isolate: bool | None = None
    # Runs trained or loaded by this Study, by name: with ``retrain`` each is retrained once only.
    _trained: dict[str, Path] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.profile = resolve_profile(self.profile)
        profiles.prepare_process(self.profile, self.threads)
        self.root = Path(self.root) if self.root is not None else storage_root()
        self.figures = Path(self.figures)
        self.runs_dir = runs.runs_folder(self.root, self.profile, smoke=self.smoke)
        self.isolate = isolation.isolates(self.profile, self.isolate)

    # ------------------------------------------------------------------------------- models, data
    def base_model(self, prior: str = "aligned") -> str:
        """The base model of a prior: the organism's (built and cached on first use) or a hub id."""
        if prior == "aligned" and self.model is not None:
            return self.model
        return profiles.base_model(self.profile, prior, smoke=self.smoke, seed=self.seed)

    @property
    def test_data(self) -> str:
        """The held-out set used for test-time training: the organism's test split or MATH-500."""
        return profiles.held_out_data(self.profile)

    @property
    def benchmarks(self) -> tuple[str, ...]:
        return EVALUATION[self.profile]["benchmarks"]

    def config(
        self, method: str, name: str | None = None, *, prior: str = "aligned", **overrides: Any
    ) -> TrainConfig:
        """The config of run ``name`` (default: the method, suffixed by a non-default prior).

        Precedence: the profile, then ``overrides`` (the notebook's choices for this run), then the
        study's ``steps``, then smoke mode (which caps steps and data whatever was asked). ``beta``
        (the KL coefficient) cannot be set per run: one value per profile for every method.
        """
        name = name or runs.run_name(method, prior)
        if "beta" in overrides:  # Co-rewarding App. C.2: every method under the same setup
            raise ValueError(
                f"run {name!r}: beta is one setting per profile for every method; set it for the whole "
                "study (Study(overrides={'beta': ...})), not per run"
            )
        values = {"seed": self.seed, "model": self.base_model(prior), "organism_prior": prior}
        values.update(self.overrides)
        values.update(overrides)
        output_dir = str(self.runs_dir / name)
        return profiles.run_config(
            self.profile, method, output_dir, values, steps=self.steps, smoke=self.smoke
        )

    def prompt(self, question: str) -> str | list[dict[str, str]]:
        """The training prompt of a question: the profile's template, as a chat turn where it chats."""
        return profiles.prompt(self.profile, question)

    def sample(
        self, questions: list[str], *, n: int = 8, temperature: float = 1.0, prior: str = "aligned"
    ) -> list[list[str]]:
        """``n`` completions per question from the base model of ``prior``, with the training prompt."""
        return evaluation.sample(
            self.base_model(prior),
            [self.prompt(question) for question in questions],
            n=n,
            temperature=temperature,
            max_new_tokens=make_config(self.profile).max_completion_length,
            seed=self.seed,
            isolate=self.isolate,
        )

    def training_data(self, config: TrainConfig) -> datasets.Dataset:
        """The raw training set a config names (before its transforms)."""
        from corerl.engine.dataset import load_training_data

        return load_training_data(config)

    # --------------------------------------------------------------------------------- training
    def run(
        self,
        method: str,
        name: str | None = None,
        *,
        prior: str = "aligned",
        dataset: datasets.Dataset | None = None,
        **overrides: Any,
    ) -> Path:
        """Train run ``name`` unless it is already finished; resume it when it was interrupted.

        A finished run (``final/`` written) is loaded as it is, unless ``retrain``; its saved config
        must equal the one asked for, else ValueError (change the parameters back, or retrain).
        """
        config = self.config(method, name, prior=prior, **overrides)
        retrain = self.retrain and config.run_dir.name not in self._trained
        run_dir = isolation.call(
            self.isolate, training.train_or_load, config, retrain=retrain, dataset=dataset
        )
        self._trained[config.run_dir.name] = run_dir
        return run_dir

    def seed_name(self, name: str, seed: int) -> str:
        """The run name of ``name`` for ``seed``: ``name`` itself for the study's seed, else ``name-seedN``."""
        return runs.seed_name(name, seed, self.seed)

    def seed_list(self, seeds: Sequence[int] | None = None) -> tuple[int, ...]:
        """``seeds`` (default: ``SEEDS`` on the tiny profile, the study's own seed on GPU profiles, so
        that a notebook fits a free T4 quota: ``corerl plan`` plans one seed), the first two only in
        smoke mode."""
        return runs.seed_list(self.profile, self.seed, seeds, smoke=self.smoke)

    def job(
        self,
        method: str,
        name: str | None = None,
        *,
        prior: str = "aligned",
        dataset: datasets.Dataset | None = None,
        **overrides: Any,
    ) -> RunJob:
        """Run ``name`` as :meth:`run` would train it, for :meth:`run_together`."""
        return RunJob(method, name or runs.run_name(method, prior), prior, dict(overrides), dataset)

    def seed_jobs(
        self,
        method: str,
        name: str | None = None,
        *,
        seeds: Sequence[int] | None = None,
        prior: str = "aligned",
        **overrides: Any,
    ) -> list[RunJob]:
        """One job per seed of ``seed_list(seeds)`` (runs ``name``, ``name-seed1``, ...), for :meth:`run_together`."""
        name = name or runs.run_name(method, prior)
        return [
            self.job(method, self.seed_name(name, seed), prior=prior, seed=seed, **overrides)
            for seed in self.seed_list(seeds)
        ]

    def run_together(self, jobs: Sequence[RunJob]) -> list[Path]:
        """:meth:`run` each job (from :meth:`job` and :meth:`seed_jobs`); returns the run folders.

        On the tiny profile the jobs train ``SEED_JOBS`` at a time in fresh processes (one torch thread
        each, so a run's numbers do not depend on how it was started), the next job starting as soon as
        a process is free; elsewhere one after the other in this process. Runs this Study has already
        trained are loaded, not retrained, even with ``retrain`` (a notebook may train a run up front
        and load it in a later cell).
        """
        names = [job.name for job in jobs]
        if len(set(names)) < len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"run_together: each run may appear once; repeated: {', '.join(repeated)}")
        for prior in dict.fromkeys(job.prior for job in jobs):
            self.base_model(prior)  # build the organism once, before the workers look for it
        pending = [job for job in jobs if job.name not in self._trained]
        if self.profile != "tiny" or len(pending) <= 1:
            return [
                self.run(job.method, job.name, prior=job.prior, dataset=job.dataset, **job.overrides)
                for job in jobs
            ]
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        trained = dict(
            zip(
                (job.name for job in pending),
                training.train_in_processes(functools.partial(_run_job, settings), pending),
                strict=True,
            )
        )
        self._trained.update(trained)
        return [
            trained.get(job.name)
            or self.run(job.method, job.name, prior=job.prior, dataset=job.dataset, **job.overrides)
            for job in jobs
        ]

    def trained_seeds(self, name: str, seeds: Sequence[int] | None = None) -> tuple[int, ...]:
        """The seeds of ``seed_list(seeds)`` for which run ``name`` has logged metrics (a run trained
        with :meth:`run` only has the study's seed); FileNotFoundError when none has."""
        return runs.trained_seeds(self.runs_dir, name, self.seed_list(seeds), self.seed)

    def seed_metrics(self, name: str, *, seeds: Sequence[int] | None = None) -> list[pd.DataFrame]:
        """The ``metrics.jsonl`` frames of run ``name``'s trained seeds (what ``corerl.plots`` draws as seed bands)."""
        return [self.metrics(self.seed_name(name, seed)) for seed in self.trained_seeds(name, seeds)]

    def heldout_curves(
        self, names: str | Sequence[str], *, seeds: Sequence[int] | None = None, eval_set: str | None = None
    ) -> pd.DataFrame:
        """The held-out curves logged during training (``eval_every``) of runs ``names`` over their trained
        seeds, in long form (:func:`corerl.study.curves.heldout_curves`): one row per (method, seed,
        evaluated step) with columns ``method`` (the run name), ``seed``, ``step`` (0 = the base model),
        ``accuracy`` (held-out avg@k in [0, 1]) and, on the organism, ``share/<strategy>``.
        ``eval_set`` NAME reads an additional set's ``heldout_NAME/...`` columns instead."""
        runs_of = {
            name: {seed: self.metrics(self.seed_name(name, seed)) for seed in self.trained_seeds(name, seeds)}
            for name in ([names] if isinstance(names, str) else names)
        }
        return curves.heldout_curves(runs_of, eval_set)

    def evaluate_seeds(
        self, name: str, *, seeds: Sequence[int] | None = None, **options: Any
    ) -> pd.DataFrame:
        """:meth:`evaluate` of the final model of each trained seed of run ``name``, rows labelled
        ``name`` (with a ``seed`` column), so that pivots average the seeds."""
        import pandas as pd

        return pd.concat(
            [
                self.evaluate(self.seed_name(name, seed), **options).assign(model=name, seed=seed)
                for seed in self.trained_seeds(name, seeds)
            ],
            ignore_index=True,
        )

    def metrics(self, name: str) -> pd.DataFrame:
        """A run's ``metrics.jsonl`` as a frame (``corerl.collapse.read_metrics``)."""
        from corerl.collapse import read_metrics

        return read_metrics(self.runs_dir / name)

    def samples(self, name: str) -> pd.DataFrame:
        from corerl.collapse import read_samples

        return read_samples(self.runs_dir / name)

    # ------------------------------------------------------------------------------- evaluation
    def eval_settings(self) -> dict[str, Any]:
        return profiles.eval_settings(self.profile, smoke=self.smoke, questions=self.eval_questions)

    def evaluate(
        self,
        name: str,
        *,
        model: str | os.PathLike[str] | None = None,
        benchmarks: Sequence[str] | Mapping[str, datasets.Dataset] | None = None,
        questions: int | None = None,
    ) -> pd.DataFrame:
        """Evaluate a run's final model (or ``model``), cached in ``<runs>/eval/<name>.csv``.

        ``name`` is the row label of the results table; ``model`` defaults to the run's
        ``corerl.mitigations.early_stopping.evaluation_model`` (``final/``, or early stopping's best checkpoint);
        ``benchmarks`` are names (default: the profile's) or a mapping name -> dataset.
        Prompts are the training ones (the config's template and chat setting).

        One path for every model, base or trained: transformers (``backend="hf"``) at the profile's
        16-bit precision (float32 on a CPU). A run's LoRA adapter is applied to the 16-bit base model
        its ``config.yaml`` names and merged there, never into the 4-bit model it trained on, so the
        difference to the base row is the adapter's, not requantization's.
        """
        settings = self.eval_settings()
        if questions:
            settings["questions"] = questions
        return evaluation.evaluate_cached(
            self.runs_dir,
            name,
            profile=self.profile,
            model=model,
            benchmarks=benchmarks if isinstance(benchmarks, Mapping) else (benchmarks or self.benchmarks),
            settings=settings,
            seed=self.seed,
            retrain=self.retrain,
            isolate=self.isolate,
        )

    def test_time_results(self, name: str = "test-time") -> pd.DataFrame:
        """The before/after evaluation a test-time-training run wrote, added to the results table.

        ``corerl.engine`` evaluates the base model and the trained one on the questions the run
        trained on (``<run>/test_time_eval.csv``); here they become rows ``base-<name>`` and ``<name>``
        of a benchmark named after the set, cached like every evaluation.
        """
        return evaluation.load_test_time_results(self.runs_dir, name)

    def evaluate_base(self, prior: str = "aligned", **options: Any) -> pd.DataFrame:
        """:meth:`evaluate` of the base model of a prior, as row ``base`` (``base-misaligned``)."""
        name = "base" if prior == "aligned" else f"base-{prior}"
        return self.evaluate(name, model=self.base_model(prior), **options)

    # ----------------------------------------------------------------------------------- tables
    def results(self, *, merge_seeds: bool = False) -> pd.DataFrame:
        """Every cached evaluation of this profile, in one tidy frame (``merge_seeds``: the rows of
        ``name-seedN`` are labelled ``name``)."""
        return tables.read_results(self.runs_dir, merge_seeds=merge_seeds)

    def results_table(self, metric: str = "avg@k", order: tuple[str, ...] = ()) -> pd.DataFrame:
        """Models x benchmarks of ``metric`` in percent (the papers' layout); ``order`` rows first."""
        return tables.results_table(self.results(), metric, order, runs_dir=self.runs_dir)

    def results_markdown(self, metric: str = "avg@k", order: tuple[str, ...] = ()) -> str:
        """The results table as Markdown with a header saying what, where and how it was measured."""
        return tables.results_markdown(
            self.results(), metric, order, profile=self.profile, smoke=self.smoke, runs_dir=self.runs_dir
        )


def _run_job(settings: dict[str, Any], job: RunJob) -> Path:
    """``Study.run`` of one job in a worker process (``training.train_in_processes``): a fresh Study with
    the same fields."""
    return Study(**settings).run(job.method, job.name, prior=job.prior, dataset=job.dataset, **job.overrides)
