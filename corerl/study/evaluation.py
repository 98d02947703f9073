"""Generation from a study's models: samples of a base model, held-out evaluation cached as CSV.

- :func:`sample`: completions of a base model with the training prompt (the notebooks' first look);
- :func:`evaluate_cached`: one model's evaluation on the profile's benchmarks, cached in
  ``<runs>/eval/<name>.csv`` and reused until the model is written again;
- :func:`load_test_time_results`: the before/after evaluation a test-time-training run wrote, cached as rows
  of the results table.

Each model is released before the next one loads (a T4 holds one 1.7B model at a time); with
``isolate`` (a GPU profile, ``corerl.study.isolation``) each sampling and evaluation runs in its own
child process, so that it goes through plain transformers whatever Unsloth patched in the kernel. The
evaluation's departure (subsampled benchmarks, ``eval_questions``) is in ``corerl.study.profiles``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.config import from_yaml, make_config
from corerl.study import isolation
from corerl.study.runs import eval_folder

if TYPE_CHECKING:
    import datasets
    import pandas as pd


def sample(
    model_path: str,
    prompts: list[str | list[dict[str, str]]],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    isolate: bool = False,
) -> list[list[str]]:
    """``n`` completions per prompt from the model at ``model_path`` (transformers), then released
    (with ``isolate``: in a child process)."""
    return isolation.call(
        isolate,
        _sample,
        model_path,
        prompts,
        n=n,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )


def _sample(
    model_path: str,
    prompts: list[str | list[dict[str, str]]],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
) -> list[list[str]]:
    from corerl.generation import generate, load_model

    model, tokenizer = load_model(model_path, backend="hf")
    completions = generate(
        model,
        tokenizer,
        prompts,
        n=n,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        progress=False,
    )
    del model
    _free_memory()
    return completions


def evaluate_cached(
    runs_dir: Path,
    name: str,
    *,
    profile: str,
    model: str | os.PathLike[str] | None,
    benchmarks: Sequence[str] | Mapping[str, datasets.Dataset],
    settings: dict[str, Any],
    seed: int,
    retrain: bool = False,
    isolate: bool = False,
) -> pd.DataFrame:
    """:meth:`corerl.study.Study.evaluate`: run ``name``'s model (or ``model``) on ``benchmarks`` with
    ``settings`` (``corerl.study.profiles.eval_settings``), cached in ``<runs_dir>/eval/<name>.csv``
    until the model is written again; ``retrain`` ignores the cache; ``isolate`` evaluates in a child
    process (``corerl.study.isolation``).

    ``model`` defaults to the run's ``corerl.mitigations.early_stopping.evaluation_model``. Every model goes through
    transformers at the profile's 16-bit precision, a LoRA adapter merged into the 16-bit base model its
    ``config.yaml`` names (:func:`_run_base_model`), with the profile's prompt template and chat setting.
    """
    import pandas as pd

    from corerl.evaluate import evaluate_model, save_results
    from corerl.machine.rundir import evaluation_model

    cache = eval_folder(runs_dir) / f"{name}.csv"
    # SRT early stopping: an early-stopped run is evaluated at its best checkpoint, not final/
    path = Path(model) if model is not None else evaluation_model(runs_dir / name)
    # A cached evaluation is stale when the model was written after it (a run trained again).
    fresh = cache.is_file() and (not path.exists() or cache.stat().st_mtime >= path.stat().st_mtime)
    if fresh and not retrain:
        return pd.read_csv(cache)
    if model is None and not path.is_dir():
        raise FileNotFoundError(f"no trained model at {path}: run the training cell for {name!r} first")
    template = make_config(profile)
    evaluation = isolation.call(
        isolate,
        evaluate_model,
        str(path),
        benchmarks if isinstance(benchmarks, Mapping) else list(benchmarks),
        model_name=name,
        backend="hf",
        base_model=_run_base_model(path),
        k=settings["k"],
        batch_size=settings["batch_size"],
        max_batch_tokens=settings.get("max_batch_tokens"),
        max_new_tokens=settings["max_new_tokens"],
        limit=settings["questions"],
        prompt=template.prompt_template,
        chat=template.chat,
        seed=seed,
    )
    save_results(evaluation.table, cache.parent, name=name)
    _free_memory()
    return evaluation.table


def load_test_time_results(runs_dir: Path, name: str = "test-time") -> pd.DataFrame:
    """:meth:`corerl.study.Study.test_time_results`: ``<runs_dir>/<name>/test_time_eval.csv`` (written by
    ``corerl.engine``) as rows ``base-<name>`` and ``<name>`` of a benchmark ``test-time set (<n>)``,
    cached in ``<runs_dir>/eval/``."""
    import pandas as pd

    from corerl.evaluate import save_results

    source = runs_dir / name / "test_time_eval.csv"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: run {name!r} with test_time_training=True first")
    table = pd.read_csv(source)
    table["model"] = table["model"].map({"base": f"base-{name}", "trained": name})
    table["benchmark"] = [f"test-time set ({n})" for n in table["n"]]
    for model, rows in table.groupby("model"):
        save_results(rows, eval_folder(runs_dir), name=str(model))
    return table


def _run_base_model(path: Path) -> str | None:
    """The model a run's folder (``final/``, ``checkpoint-N``) was trained from, per its ``config.yaml``."""
    saved = path.parent / "config.yaml"
    return from_yaml(saved.read_text()).model if saved.is_file() else None


def _free_memory() -> None:
    """Release a model's GPU memory before the next one loads (a T4 holds one 1.7B model at a time)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
