"""The notebooks' study harness: name, train (or load), evaluate and tabulate the runs of one profile.

The numbered notebooks hold the narrative and the plots; the few lines each of them would otherwise
repeat live here:

- :func:`resolve_profile`: ``"auto"`` is ``t4`` on a CUDA GPU and ``tiny`` otherwise;
- :func:`storage_root`: Google Drive (``/content/drive/MyDrive/corerl``) or ``/kaggle/working/corerl``
  when present, so a disconnected Colab/Kaggle session finds its checkpoints again; else ``./runs``;
- :class:`Study`: the runs of a profile under ``<root>/<profile>/<name>``. :meth:`Study.run` loads a
  finished run, resumes an interrupted one and trains a missing one; :meth:`Study.evaluate` caches each
  model's evaluation as CSV; :meth:`Study.results_table` gathers them (methods x benchmarks);
- :meth:`Study.run_seeds` trains one run per seed of ``SEEDS`` (on the tiny profile two at a time, in
  separate processes with one torch thread each); :meth:`Study.seed_curves` gives the seeds' mean
  curves with a ``<column>_sd`` band, which ``corerl.plots`` draws; the results table averages a
  run's seeds (``name``, ``name-seed1``, ...) and the Markdown table writes mean ± sd;
- ``smoke=True`` shrinks everything (a few steps, questions and tokens, the organism's seconds-long
  smoke build) so that CI can execute every notebook; smoke runs live under ``<profile>-smoke`` and
  are never mistaken for real ones. Their numbers mean nothing.

Departures: evaluation subsamples the benchmarks (``eval_questions``) to fit a T4 session; the paper
evaluates on the full sets. The ``t4`` profile's second prior (``misaligned``) is a different model
family (Llama-3.2-3B-Instruct, the paper's second model), not a model with a known systematic error as
on the organism.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.config import PROFILES, TrainConfig, from_yaml, make_config, run_differences
from corerl.engine.rundir import is_finished

if TYPE_CHECKING:
    import datasets
    import pandas as pd

logger = logging.getLogger(__name__)

DRIVE_ROOT = Path("/content/drive/MyDrive")
KAGGLE_ROOT = Path("/kaggle/working")
# Base models of the GPU profiles: the paper's Qwen3-1.7B-Base (Table 7) and its Llama family model.
GPU_MODELS: dict[str, str] = {
    "aligned": "unsloth/Qwen3-1.7B-Base",
    "misaligned": "unsloth/Llama-3.2-3B-Instruct",
}
# Evaluation per profile: benchmarks, questions per benchmark, samples per question, token cap.
EVALUATION: dict[str, dict[str, Any]] = {
    "tiny": {"benchmarks": ("organism",), "questions": 200, "k": 4, "max_new_tokens": 64, "batch_size": 64},
    # t4: 50 questions a benchmark, sized with corerl plan to fit the free tier (the paper: full sets)
    "t4": {
        "benchmarks": ("math500", "gsm8k", "amc"),
        "questions": 50,
        "k": 4,
        "max_new_tokens": 512,
        "batch_size": 64,
    },
    "a100": {
        "benchmarks": ("math500", "gsm8k", "amc"),
        "questions": 500,
        "k": 8,
        "max_new_tokens": 2048,
        "batch_size": 64,
    },
}
SMOKE_EVALUATION: dict[str, Any] = {"questions": 6, "k": 2, "max_new_tokens": 48}
# Smoke runs: enough to go through every code path, not to learn anything.
SMOKE_STEPS = 2
SMOKE_OVERRIDES: dict[str, Any] = {
    "data_limit": 16,
    "questions_per_step": 2,
    "save_steps": 1,
    "sample_every": 1,
    "curriculum_samples": 2,
    "offline_label_samples": 2,
    "early_stopping_eval_steps": 1,
}
TINY_THREADS = 1  # torch threads in a tiny-profile kernel (see Study.__post_init__)
# Seeds of the headline runs (issue 11: mean ± sd over at least 3 seeds); smoke runs use the first two.
SEEDS: tuple[int, ...] = (0, 1, 2)
SEED_JOBS = 2  # tiny-profile seed runs at a time (2 cores: one process per core, one thread each)
_SEED_SUFFIX = re.compile(r"-seed\d+$")


def resolve_profile(profile: str = "auto") -> str:
    """The profile to run: ``auto`` picks ``t4`` when CUDA is available, else ``tiny``.

    Never silently ``tiny`` on a GPU machine: where an NVIDIA GPU is present but torch cannot use it,
    ``auto`` raises ``corerl.hardware.GpuUnusableError`` naming the versions and the fix.
    """
    if profile == "auto":
        from corerl.hardware import cuda_usable

        return "t4" if cuda_usable() else "tiny"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (choose from auto, {', '.join(PROFILES)})")
    return profile


def storage_root(default: str | os.PathLike[str] = "runs") -> Path:
    """Where runs live: Google Drive (when mounted) or Kaggle's working folder when present, else ``default``."""
    for root in (DRIVE_ROOT, KAGGLE_ROOT):
        if root.is_dir():
            return root / "corerl"
    return Path(default)


def describe_hardware() -> str:
    """One line naming the machine the numbers were measured on (GPU name or CPU cores)."""
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU ({os.cpu_count()} cores visible, torch threads: {torch.get_num_threads()})"
    return f"{device}, {platform.system()}, Python {platform.python_version()}, torch {torch.__version__}"


@dataclass
class Study:
    """The runs of one profile. ``profile`` may be ``auto``; ``model`` replaces the aligned base model.

    Creating a Study sets torch's thread count of this process (``threads`` when given, else
    ``TINY_THREADS`` on the tiny profile) or, on a GPU profile with CUDA and Unsloth installed, imports
    Unsloth, which must come before transformers.
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

    def __post_init__(self) -> None:
        self.profile = resolve_profile(self.profile)
        if self.threads or self.profile == "tiny":
            import torch

            # The organism's matrices are too small to gain from intra-op threads, and on a shared CPU
            # extra threads cost a lot: evaluating 200 questions x 4 samples took 3 s on 1 thread and
            # 108 s on 2 while other jobs ran (measured on a 2-core machine).
            torch.set_num_threads(self.threads or TINY_THREADS)
        else:
            from corerl.engine.model import import_error

            # Unsloth must be imported before transformers/trl/peft, which the notebook's first
            # sampling or evaluation cell would import (../shared/notes/stack.md); import_error tries it
            # (only on CUDA) and says why it could not.
            import_error("unsloth")
        self.root = Path(self.root) if self.root is not None else storage_root()
        self.figures = Path(self.figures)
        self.runs_dir = self.root / (f"{self.profile}-smoke" if self.smoke else self.profile)

    # ------------------------------------------------------------------------------- models, data
    def base_model(self, prior: str = "aligned") -> str:
        """The base model of a prior: the organism's (built and cached on first use) or a hub id."""
        if prior == "aligned" and self.model is not None:
            return self.model
        if self.profile != "tiny":
            return GPU_MODELS[prior]
        from corerl.organism import ensure_base_model, smoke_settings

        settings = smoke_settings(prior, self.seed) if self.smoke else None
        return str(ensure_base_model(prior, settings=settings))

    @property
    def test_data(self) -> str:
        """The held-out set used for test-time training: the organism's test split or MATH-500."""
        return "organism-test" if self.profile == "tiny" else "math500"

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
        name = name or (method if prior == "aligned" else f"{method}-{prior}")
        if "beta" in overrides:  # Co-rewarding App. C.2: every method under the same setup
            raise ValueError(
                f"run {name!r}: beta is one setting per profile for every method; set it for the whole "
                "study (Study(overrides={'beta': ...})), not per run"
            )
        values: dict[str, Any] = {"seed": self.seed, "model": self.base_model(prior), "organism_prior": prior}
        values.update(self.overrides)
        values.update(overrides)
        if self.steps is not None:
            values["max_steps"] = self.steps
        if self.smoke:
            limit = min(
                values.get("data_limit") or SMOKE_OVERRIDES["data_limit"], SMOKE_OVERRIDES["data_limit"]
            )
            values.update(SMOKE_OVERRIDES, data_limit=limit, max_steps=SMOKE_STEPS)
        return make_config(self.profile, method=method, output_dir=str(self.runs_dir / name), **values)

    def prompt(self, question: str) -> str | list[dict[str, str]]:
        """The training prompt of a question: the profile's template, as a chat turn where it chats."""
        config = make_config(self.profile)
        text = config.format_prompt(question)
        return [{"role": "user", "content": text}] if config.chat else text

    def sample(
        self, questions: list[str], *, n: int = 8, temperature: float = 1.0, prior: str = "aligned"
    ) -> list[list[str]]:
        """``n`` completions per question from the base model of ``prior``, with the training prompt."""
        from corerl.generation import generate, load_model

        model, tokenizer = load_model(self.base_model(prior), backend="hf")
        completions = generate(
            model,
            tokenizer,
            [self.prompt(question) for question in questions],
            n=n,
            temperature=temperature,
            max_new_tokens=make_config(self.profile).max_completion_length,
            seed=self.seed,
            progress=False,
        )
        del model
        _free_memory()
        return completions

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
        from corerl.engine import train

        config = self.config(method, name, prior=prior, **overrides)
        run_dir = config.run_dir
        saved = run_dir / "config.yaml"
        if self.retrain and run_dir.exists():
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

    def seed_name(self, name: str, seed: int) -> str:
        """The run name of ``name`` for ``seed``: ``name`` itself for the study's seed, else ``name-seedN``."""
        return name if seed == self.seed else f"{name}-seed{seed}"

    def seed_list(self, seeds: Sequence[int] | None = None) -> tuple[int, ...]:
        """``seeds`` (default: ``SEEDS`` on the tiny profile, the study's own seed on GPU profiles, so
        that a notebook fits a free T4 quota: ``corerl plan`` plans one seed), the first two only in
        smoke mode."""
        default = SEEDS if self.profile == "tiny" else (self.seed,)
        chosen = tuple(default if seeds is None else seeds)
        return chosen[:2] if self.smoke else chosen

    def run_seeds(
        self,
        method: str,
        name: str | None = None,
        *,
        seeds: Sequence[int] | None = None,
        prior: str = "aligned",
        **overrides: Any,
    ) -> list[Path]:
        """:meth:`run` once per seed (runs ``name``, ``name-seed1``, ...); returns the run folders.

        On the tiny profile the seeds train ``SEED_JOBS`` at a time in fresh processes (one torch
        thread each); elsewhere one after the other in this process.
        """
        name = name or (method if prior == "aligned" else f"{method}-{prior}")
        chosen = self.seed_list(seeds)
        self.base_model(prior)  # build the organism once, before the workers look for it
        jobs = [(method, self.seed_name(name, seed), seed) for seed in chosen]
        if self.profile != "tiny" or len(jobs) == 1:
            return [self.run(m, n, prior=prior, seed=seed, **overrides) for m, n, seed in jobs]
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        with ProcessPoolExecutor(max_workers=SEED_JOBS, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(_run_in_process, settings, m, n, prior, {**overrides, "seed": seed})
                for m, n, seed in jobs
            ]
            return [future.result() for future in futures]

    def trained_seeds(self, name: str, seeds: Sequence[int] | None = None) -> tuple[int, ...]:
        """The seeds of ``seed_list(seeds)`` for which run ``name`` has logged metrics (a run trained
        with :meth:`run` only has the study's seed); FileNotFoundError when none has."""
        found = tuple(
            seed
            for seed in self.seed_list(seeds)
            if (self.runs_dir / self.seed_name(name, seed) / "metrics.jsonl").is_file()
        )
        if not found:
            raise FileNotFoundError(f"no run {name!r} under {self.runs_dir}: train it first")
        return found

    def seed_metrics(self, name: str, *, seeds: Sequence[int] | None = None) -> list[pd.DataFrame]:
        """The ``metrics.jsonl`` frames of run ``name``'s trained seeds (for ``plots.plot_strategy_shares``)."""
        return [self.metrics(self.seed_name(name, seed)) for seed in self.trained_seeds(name, seeds)]

    def seed_curves(self, name: str, *, seeds: Sequence[int] | None = None, window: int = 10) -> pd.DataFrame:
        """The curves of run ``name`` over its trained seeds: each seed smoothed (:func:`smooth`), then
        per step the mean over seeds and the standard deviation as ``<column>_sd`` (NaN for one seed)."""
        import pandas as pd

        from corerl.collapse import CURVE_COLUMNS

        frames = [
            smooth(self.metrics(self.seed_name(name, seed)), window)
            for seed in self.trained_seeds(name, seeds)
        ]
        stacked = pd.concat(frames, ignore_index=True)
        columns = [c for c in stacked.columns if c in CURVE_COLUMNS or c.endswith("_mul")]
        stacked[columns] = stacked[columns].astype(float)
        grouped = stacked.groupby("step")[columns]
        return pd.concat([grouped.mean(), grouped.std().add_suffix("_sd")], axis=1).reset_index()

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
        settings = {key: value for key, value in EVALUATION[self.profile].items() if key != "benchmarks"}
        if self.smoke:
            settings.update(SMOKE_EVALUATION)
        if self.eval_questions is not None:
            settings["questions"] = self.eval_questions
        return settings

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
        ``corerl.mitigations.evaluation_model`` (``final/``, or early stopping's best checkpoint);
        ``benchmarks`` are names (default: the profile's) or a mapping name -> dataset.
        Prompts are the training ones (the config's template and chat setting).

        One path for every model, base or trained: transformers (``backend="hf"``) at the profile's
        16-bit precision (float32 on a CPU). A run's LoRA adapter is applied to the 16-bit base model
        its ``config.yaml`` names and merged there, never into the 4-bit model it trained on, so the
        difference to the base row is the adapter's, not requantization's.
        """
        import pandas as pd

        from corerl.evaluate import evaluate_model, save_results
        from corerl.mitigations.early_stopping import evaluation_model

        cache = self.runs_dir / "eval" / f"{name}.csv"
        # SRT early stopping: an early-stopped run is evaluated at its best checkpoint, not final/
        path = Path(model) if model is not None else evaluation_model(self.runs_dir / name)
        # A cached evaluation is stale when the model was written after it (a run trained again).
        fresh = cache.is_file() and (not path.exists() or cache.stat().st_mtime >= path.stat().st_mtime)
        if fresh and not self.retrain:
            return pd.read_csv(cache)
        if model is None and not path.is_dir():
            raise FileNotFoundError(f"no trained model at {path}: run the training cell for {name!r} first")
        settings = self.eval_settings()
        template = make_config(self.profile)
        evaluation = evaluate_model(
            str(path),
            benchmarks if isinstance(benchmarks, Mapping) else list(benchmarks or self.benchmarks),
            model_name=name,
            backend="hf",
            base_model=_run_base_model(path),
            k=settings["k"],
            batch_size=settings["batch_size"],
            max_new_tokens=settings["max_new_tokens"],
            limit=questions or settings["questions"],
            prompt=template.prompt_template,
            chat=template.chat,
            seed=self.seed,
        )
        save_results(evaluation.table, cache.parent, name=name)
        _free_memory()
        return evaluation.table

    def test_time_results(self, name: str = "test-time") -> pd.DataFrame:
        """The before/after evaluation a test-time-training run wrote, added to the results table.

        ``corerl.engine`` evaluates the base model and the trained one on the questions the run
        trained on (``<run>/test_time_eval.csv``); here they become rows ``base-<name>`` and ``<name>``
        of a benchmark named after the set, cached like every evaluation.
        """
        import pandas as pd

        from corerl.evaluate import save_results

        source = self.runs_dir / name / "test_time_eval.csv"
        if not source.is_file():
            raise FileNotFoundError(f"{source}: run {name!r} with test_time_training=True first")
        table = pd.read_csv(source)
        table["model"] = table["model"].map({"base": f"base-{name}", "trained": name})
        table["benchmark"] = [f"test-time set ({n})" for n in table["n"]]
        for model, rows in table.groupby("model"):
            save_results(rows, self.runs_dir / "eval", name=str(model))
        return table

    def evaluate_base(self, prior: str = "aligned", **options: Any) -> pd.DataFrame:
        """:meth:`evaluate` of the base model of a prior, as row ``base`` (``base-misaligned``)."""
        name = "base" if prior == "aligned" else f"base-{prior}"
        return self.evaluate(name, model=self.base_model(prior), **options)

    def results(self, *, merge_seeds: bool = False) -> pd.DataFrame:
        """Every cached evaluation of this profile, in one tidy frame (``merge_seeds``: the rows of
        ``name-seedN`` are labelled ``name``)."""
        import pandas as pd

        from corerl.evaluate import RESULT_COLUMNS

        files = sorted((self.runs_dir / "eval").glob("*.csv"))
        if not files:
            return pd.DataFrame(columns=list(RESULT_COLUMNS))
        results = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
        if merge_seeds:
            results["model"] = results["model"].str.replace(_SEED_SUFFIX, "", regex=True)
        return results

    def results_table(self, metric: str = "avg@k", order: tuple[str, ...] = ()) -> pd.DataFrame:
        """Models x benchmarks of ``metric`` in percent (the papers' layout); ``order`` rows first."""
        results = self.results()
        chosen = results[results["metric"] == metric]
        if chosen.empty:
            raise ValueError(f"no evaluation with metric {metric!r} under {self.runs_dir / 'eval'}")
        chosen = chosen.assign(model=chosen["model"].str.replace(_SEED_SUFFIX, "", regex=True))
        table = chosen.pivot_table(index="model", columns="benchmark", values="value", aggfunc="mean") * 100
        rows = [name for name in order if name in table.index]
        rows += sorted(name for name in table.index if name not in rows)
        return table.loc[rows].round(1)

    def results_markdown(self, metric: str = "avg@k", order: tuple[str, ...] = ()) -> str:
        """The results table as Markdown with a header saying what, where and how it was measured."""
        results = self.results()
        table = self.results_table(metric, order)
        chosen = results[results["metric"] == metric]
        runs = chosen.assign(model=chosen["model"].str.replace(_SEED_SUFFIX, "", regex=True))
        sd = runs.pivot_table(index="model", columns="benchmark", values="value", aggfunc="std") * 100
        count = runs.pivot_table(index="model", columns="benchmark", values="value", aggfunc="count")

        def cell(model: str, benchmark: str, value: float) -> str:
            if value != value:
                return ""
            seeds = int(count.at[model, benchmark]) if benchmark in count.columns else 1
            if seeds < 2:
                return f"{value:.1f}"
            return f"{value:.1f} ± {sd.at[model, benchmark]:.1f} ({seeds})"

        sizes = ", ".join(
            f"{bench}: {int(n)} questions" for bench, n in chosen.groupby("benchmark")["n"].max().items()
        )
        settings = chosen.iloc[0]
        header = "| model | " + " | ".join(table.columns) + " |\n|---|" + "---|" * len(table.columns) + "\n"
        rows = "".join(
            f"| {model} | "
            + " | ".join(cell(model, bench, value) for bench, value in zip(table.columns, row, strict=True))
            + " |\n"
            for model, row in zip(table.index, table.to_numpy(), strict=True)
        )
        return (
            f"# Results measured by corerl ({self.profile} profile{', SMOKE: meaningless' if self.smoke else ''})\n\n"
            f"{metric} in percent (mean ± sd over seeds (n) where a run has several), "
            f"k = {int(settings['k'])} samples at temperature {settings['temperature']:g}; "
            f"{sizes}.\nMeasured on: {describe_hardware()}.\n\n{header}{rows}"
        )


def smooth(metrics: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """The curves of ``corerl.collapse.CURVE_COLUMNS`` as trailing rolling means over ``window`` steps.

    For figures only: a tiny-profile step sees 16 rollouts, so raw per-step values are noisy.
    Collapse detection smooths on its own (``corerl.collapse.detect_collapse``): give it raw metrics.

    >>> import pandas as pd
    >>> smooth(pd.DataFrame({"step": [1, 2, 3], "reward_mean": [0.0, 1.0, 0.5]}), window=2)["reward_mean"].tolist()
    [0.0, 0.5, 0.75]
    """
    from corerl.collapse import CURVE_COLUMNS

    smoothed = metrics.sort_values("step").copy()
    for column in CURVE_COLUMNS:
        if column in smoothed.columns:
            smoothed[column] = smoothed[column].astype(float).rolling(window, min_periods=1).mean()
    return smoothed


class RunInterrupted(RuntimeError):
    """A run stopped at its time budget: checkpointed; running the same cell again resumes it."""


def _finished(run_dir: Path) -> Path:
    from corerl.engine.run import is_finished

    if not is_finished(run_dir):
        raise RunInterrupted(
            f"{run_dir} stopped at its time budget (time_budget_minutes) and saved a checkpoint: run this "
            "notebook again, in a new session if this one is ending, and the run resumes where it stopped"
        )
    return run_dir


def _run_base_model(path: Path) -> str | None:
    """The model a run's folder (``final/``, ``checkpoint-N``) was trained from, per its ``config.yaml``."""
    saved = path.parent / "config.yaml"
    return from_yaml(saved.read_text()).model if saved.is_file() else None


def _run_in_process(
    settings: dict[str, Any], method: str, name: str, prior: str, overrides: dict[str, Any]
) -> Path:
    """:meth:`Study.run` in a worker process (``Study.run_seeds``): a fresh Study with the same fields."""
    return Study(**settings).run(method, name, prior=prior, **overrides)


def _free_memory() -> None:
    """Release a model's GPU memory before the next one loads (a T4 holds one 1.7B model at a time)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
