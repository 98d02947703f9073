"""A study's results: its cached evaluations in one frame, the results table and its Markdown form.

- :func:`read_results`: every ``<runs>/eval/*.csv`` in one tidy frame;
- :func:`results_table`: models x benchmarks in percent (the papers' layout), a run's seeds
  (``name``, ``name-seed1``, ...) averaged;
- :func:`results_markdown`: the same table with mean ± sd over seeds, headed by what was measured,
  where (:func:`describe_hardware`) and how (what ``results.md`` holds).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from corerl.study.runs import eval_folder, unseeded

if TYPE_CHECKING:
    import pandas as pd


def describe_hardware() -> str:
    """One line naming the machine the numbers were measured on (GPU name or CPU cores)."""
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU ({os.cpu_count()} cores visible, torch threads: {torch.get_num_threads()})"
    return f"{device}, {platform.system()}, Python {platform.python_version()}, torch {torch.__version__}"


def read_results(runs_dir: Path, *, merge_seeds: bool = False) -> pd.DataFrame:
    """Every cached evaluation under ``runs_dir``, in one tidy frame (``merge_seeds``: the rows of
    ``name-seedN`` are labelled ``name``)."""
    import pandas as pd

    from corerl.evaluate import RESULT_COLUMNS

    files = sorted(eval_folder(runs_dir).glob("*.csv"))
    if not files:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    results = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    if merge_seeds:
        results["model"] = unseeded(results["model"])
    return results


def results_table(
    results: pd.DataFrame, metric: str = "avg@k", order: tuple[str, ...] = (), *, runs_dir: Path | None = None
) -> pd.DataFrame:
    """Models x benchmarks of ``metric`` in percent (the papers' layout); ``order`` rows first.

    ``runs_dir`` (where ``results`` were read from) is named when ``metric`` has no evaluation.
    """
    chosen = results[results["metric"] == metric]
    if chosen.empty:
        where = f" under {eval_folder(runs_dir)}" if runs_dir is not None else ""
        raise ValueError(f"no evaluation with metric {metric!r}{where}")
    chosen = chosen.assign(model=unseeded(chosen["model"]))
    table = chosen.pivot_table(index="model", columns="benchmark", values="value", aggfunc="mean") * 100
    rows = [name for name in order if name in table.index]
    rows += sorted(name for name in table.index if name not in rows)
    return table.loc[rows].round(1)


def results_markdown(
    results: pd.DataFrame,
    metric: str = "avg@k",
    order: tuple[str, ...] = (),
    *,
    profile: str,
    smoke: bool = False,
    runs_dir: Path | None = None,
) -> str:
    """The results table as Markdown with a header saying what, where and how it was measured."""
    table = results_table(results, metric, order, runs_dir=runs_dir)
    chosen = results[results["metric"] == metric]
    runs = chosen.assign(model=unseeded(chosen["model"]))
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
        f"# Results measured by corerl ({profile} profile{', SMOKE: meaningless' if smoke else ''})\n\n"
        f"{metric} in percent (mean ± sd over seeds (n) where a run has several), "
        f"k = {int(settings['k'])} samples at temperature {settings['temperature']:g}; "
        f"{sizes}.\nMeasured on: {describe_hardware()}.\n\n{header}{rows}"
    )
