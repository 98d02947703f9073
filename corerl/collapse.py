"""Collapse analysis of a training run, from its ``metrics.jsonl`` and ``samples.jsonl``.

Pure functions on pandas frames; nothing here trains or generates.

- :func:`read_metrics` / :func:`read_samples`: a run's logs as frames (one row per step; a step
  logged twice is refused: two runs wrote into one directory, and merging them would mix them).
- :func:`curves`: the collapse-relevant metrics in long format (step, metric, value).
- :func:`detect_collapse`: the step where reward keeps rising while oracle accuracy falls
  (rule below; every threshold is a parameter).
- :func:`model_collapse_step`: the first step at which reward accuracy falls below a threshold
  (arXiv 2603.08660; the paper reports 1% for majority-vote training). The paper's definition was
  read from secondary summaries, so the threshold stays a parameter.
- :func:`model_collapse_steps`: the Model Collapse Step of several runs and seeds, with the lowest
  reward accuracy each reached (what "not reached" means in a run that never gets there).
- :func:`summarize_run`: one results-table row per run (peak, final, both collapse steps).
- :func:`degenerate_outputs`: per-step diagnostics of collapsed outputs (one answer for every
  question, repeated n-grams, truncation), the failure shapes of arXiv 2603.08660 Sec. 4.
- :func:`heldout_verdict` (:func:`heldout_verdicts`: a table of several methods; :func:`held_until`:
  where a curve leaves its start): the study's one collapse rule, on held-out accuracy curves across seeds
  (what the figures mark and the regime tables report; rule below).

**The held-out collapse rule** (:func:`heldout_verdict`, ours: the papers show validation accuracy
rising and then falling but give no detector). Input: one method's (condition's) held-out accuracy
against step, one curve per seed (``heldout/accuracy`` of ``metrics.jsonl``, logged at step 0 and every
``eval_every`` steps). The seed-mean curve gives ``base`` (its first logged step), ``peak`` (its maximum,
first reached at ``peak_step``) and ``final`` (its last logged step); ``drop = peak - final``. The seeds'
``spread`` is the width of the mean ± sd band the figures draw: twice the seeds' standard deviation,
averaged over the logged steps. The run **collapsed** when, with at least ``min_seeds`` seeds, the curve
rose (``peak_step`` after the first logged step and ``peak - base`` larger than the spread) and then fell
(``peak_step`` before the last logged step and ``drop`` larger than the spread and than ``min_drop``,
a floor for seeds that happen to agree). With one seed there is no spread to judge noise by, so there
is no verdict of collapse: the figures then draw no marker.

This is a different question from the Model Collapse Step (:func:`model_collapse_step`,
``corerl collapse-step``): that is a property of the *training signal* (majority-vote reward accuracy
on training rollouts falls below 1%, arXiv 2603.08660), read without held-out labels and meant to
predict trainability; the held-out rule judges the *outcome*, whether the model got worse on problems
it never trained on. :func:`detect_collapse` stays for the training batch's own curves (4 questions a
step on the organism: too noisy to mark collapse with, so no figure uses it).

The rule of :func:`detect_collapse` is ours (the papers show the rise-then-fall pattern but give no
detector): both curves are smoothed with a trailing rolling mean of ``window`` logged steps; the
run has collapsed at the first step s where, for ``patience`` consecutive logged steps starting at
s, the smoothed oracle accuracy lies at least ``min_drop`` (absolute) below its running maximum
while the smoothed reward lies at least ``min_reward_gain`` above its value at that maximum.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# The curves of the collapse figures, in the order the figures show them.
CURVE_COLUMNS: tuple[str, ...] = (
    "reward_mean",
    "oracle_accuracy",
    "pseudo_label_accuracy",
    "reward_accuracy",
    "point_biserial",
    "majority_share",
    "distinct_answers",
    "no_answer_rate",
    "completion_length",
    "token_entropy",
    "kl",
)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a run log; a torn last line (a kill mid-write) is skipped, any other bad line raises."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            # A run killed mid-write leaves a partial last line: skip it, report any other.
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: malformed JSON line ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
    return records


def _resolve(path: str | os.PathLike[str], filename: str) -> Path:
    path = Path(path)
    return path / filename if path.is_dir() else path


def read_metrics(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's ``metrics.jsonl`` (or its output directory) as a frame sorted by step.

    Null metrics become NaN. Raises FileNotFoundError for a missing file, ValueError for a malformed
    one, one without a ``step`` field, a step that is not an integer, or a step logged twice (a
    resume cuts the log back first, so a duplicate means two runs wrote into one directory).
    """
    path = _resolve(path, "metrics.jsonl")
    frame = pd.DataFrame.from_records(read_jsonl(path))
    if frame.empty:
        return pd.DataFrame({"step": pd.Series(dtype=int)})
    if "step" not in frame.columns:
        raise ValueError(f"{path}: records have no 'step' field")
    steps = pd.to_numeric(frame["step"], errors="coerce")
    if steps.isna().any() or (steps % 1 != 0).any():
        bad = frame["step"][steps.isna() | (steps % 1 != 0)].iloc[0]
        raise ValueError(f"{path}: step {bad!r} is not an integer")
    frame["step"] = steps.astype(int)
    duplicated = sorted(set(frame["step"][frame["step"].duplicated()]))
    if duplicated:
        shown = ", ".join(map(str, duplicated[:5])) + (" ..." if len(duplicated) > 5 else "")
        raise ValueError(
            f"{path}: step(s) {shown} logged more than once: two runs wrote into this directory; "
            "keep one run per directory (or delete the duplicated rows)"
        )
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def read_samples(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's ``samples.jsonl`` (or its output directory) as a frame, in file order."""
    path = _resolve(path, "samples.jsonl")
    frame = pd.DataFrame.from_records(read_jsonl(path))
    missing = {"step", "completion"} - set(frame.columns) if not frame.empty else set()
    if missing:
        raise ValueError(f"{path}: samples lack the column(s) {sorted(missing)}")
    return frame


def curves(metrics: pd.DataFrame, columns: Sequence[str] = CURVE_COLUMNS) -> pd.DataFrame:
    """The given metrics in long format (step, metric, value), nulls and absent columns dropped.

    >>> frame = pd.DataFrame({"step": [1, 2], "reward_mean": [0.1, 0.2], "kl": [None, None]})
    >>> curves(frame).to_dict("records")
    [{'step': 1, 'metric': 'reward_mean', 'value': 0.1}, {'step': 2, 'metric': 'reward_mean', 'value': 0.2}]
    """
    present = [column for column in columns if column in metrics.columns]
    long = metrics.melt(id_vars="step", value_vars=present, var_name="metric", value_name="value")
    long = long.dropna(subset=["value"])
    long["value"] = long["value"].astype(float)
    return long.reset_index(drop=True)


def _series(metrics: pd.DataFrame, column: str) -> pd.Series:
    if column not in metrics.columns:
        raise KeyError(f"metrics have no column {column!r}")
    values = metrics.set_index("step")[column].astype(float).dropna()
    if values.empty:
        raise ValueError(f"metrics column {column!r} has no values (null at every step)")
    return values


@dataclass(frozen=True)
class Collapse:
    """Where a run collapsed: accuracy peaked at ``peak_step`` and had fallen by ``step``."""

    step: int
    peak_step: int
    peak_accuracy: float
    accuracy: float
    peak_reward: float
    reward: float


def detect_collapse(
    metrics: pd.DataFrame,
    *,
    reward: str = "reward_mean",
    accuracy: str = "oracle_accuracy",
    window: int = 5,
    min_drop: float = 0.05,
    min_reward_gain: float = 0.0,
    patience: int = 3,
) -> Collapse | None:
    """The step where reward keeps rising while oracle accuracy falls; None if it never does.

    Rule (see the module docstring): trailing rolling means over ``window`` logged steps; the
    first step s from which, for ``patience`` consecutive logged steps, smoothed accuracy is at
    least ``min_drop`` below its running maximum and smoothed reward is at least
    ``min_reward_gain`` above the smoothed reward at that maximum. Values in the result are
    smoothed. Steps where either column is null are ignored.

    >>> steps = list(range(10))
    >>> frame = pd.DataFrame({"step": steps, "reward_mean": [s / 10 for s in steps],
    ...                       "oracle_accuracy": [0.1, 0.2, 0.3, 0.4, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]})
    >>> detect_collapse(frame, window=1, min_drop=0.15, patience=2).step
    6
    """
    if window < 1 or patience < 1:
        raise ValueError(f"window and patience must be >= 1, got {window} and {patience}")
    both = pd.concat([_series(metrics, reward), _series(metrics, accuracy)], axis=1, join="inner")
    rewards = both.iloc[:, 0].rolling(window, min_periods=1).mean()
    accuracies = both.iloc[:, 1].rolling(window, min_periods=1).mean()
    steps = [int(step) for step in both.index]
    peak_position = run_peak = 0
    run_start: int | None = None
    run_length = 0
    for position in range(len(steps)):
        if accuracies.iloc[position] > accuracies.iloc[peak_position]:
            peak_position = position
        fallen = accuracies.iloc[position] <= accuracies.iloc[peak_position] - min_drop
        rising = rewards.iloc[position] >= rewards.iloc[peak_position] + min_reward_gain
        if fallen and rising:
            if run_start is None:
                run_start, run_peak = position, peak_position
            run_length += 1
            if run_length >= patience:
                return Collapse(
                    step=steps[run_start],
                    peak_step=steps[run_peak],
                    peak_accuracy=float(accuracies.iloc[run_peak]),
                    accuracy=float(accuracies.iloc[run_start]),
                    peak_reward=float(rewards.iloc[run_peak]),
                    reward=float(rewards.iloc[run_start]),
                )
        else:
            run_start, run_length = None, 0
    return None


HELDOUT_COLUMNS: tuple[str, ...] = ("seed", "step", "accuracy")


@dataclass(frozen=True)
class HeldoutVerdict:
    """What :func:`heldout_verdict` read from one method's held-out accuracy curves (seed means)."""

    base: float
    peak: float
    peak_step: int
    final: float
    final_step: int
    drop: float
    spread: float
    n_seeds: int
    rose: bool
    fell: bool
    collapsed: bool


def heldout_verdict(frame: pd.DataFrame, *, min_seeds: int = 2, min_drop: float = 0.02) -> HeldoutVerdict:
    """Rise, peak and fall of one method's held-out accuracy across seeds (rule: module docstring).

    ``frame`` is long-form with columns ``seed``, ``step``, ``accuracy`` (in [0, 1]; null rows are
    dropped) for ONE method or condition. A step logged by only some seeds is averaged over those.

    >>> rows = [(seed, step, acc + 0.01 * seed) for seed in range(3)
    ...         for step, acc in [(0, 0.4), (10, 0.6), (20, 0.7), (30, 0.5), (40, 0.3)]]
    >>> verdict = heldout_verdict(pd.DataFrame(rows, columns=["seed", "step", "accuracy"]))
    >>> verdict.peak_step, round(verdict.drop, 2), round(verdict.spread, 2), verdict.collapsed
    (20, 0.4, 0.02, True)
    """
    missing = [column for column in HELDOUT_COLUMNS if column not in frame.columns]
    if missing:
        raise KeyError(f"held-out frame has no column(s) {missing} (expected seed, step, accuracy)")
    values = frame[list(HELDOUT_COLUMNS)].dropna(subset=["accuracy"])
    if values.empty:
        raise ValueError("held-out frame has no accuracy value (was eval_every 0 in these runs?)")
    if min_seeds < 2:
        raise ValueError(f"min_seeds must be >= 2 (one seed has no spread), got {min_seeds}")
    by_step = values.astype({"accuracy": float}).groupby("step")["accuracy"]
    mean = by_step.mean().sort_index()
    deviation = by_step.std(ddof=1).dropna()  # steps seen by at least two seeds
    n_seeds = int(values["seed"].nunique())
    spread = 2.0 * float(deviation.mean()) if not deviation.empty else float("nan")
    peak_step = int(mean.idxmax())
    base, peak, final = float(mean.iloc[0]), float(mean.max()), float(mean.iloc[-1])
    first_step, final_step = int(mean.index[0]), int(mean.index[-1])
    judged = n_seeds >= min_seeds and not math.isnan(spread)
    rose = judged and peak_step > first_step and peak - base > spread
    fell = judged and peak_step < final_step and peak - final > max(spread, min_drop)
    return HeldoutVerdict(
        base=base,
        peak=peak,
        peak_step=peak_step,
        final=final,
        final_step=final_step,
        drop=peak - final,
        spread=spread,
        n_seeds=n_seeds,
        rose=rose,
        fell=fell,
        collapsed=rose and fell,
    )


def held_until(frame: pd.DataFrame, *, min_drop: float = 0.02) -> int:
    """The last logged step up to which one method's seed-mean held-out accuracy stays within the band
    of its start (every step so far at least ``start - max(spread, min_drop)``, the spread of
    :func:`heldout_verdict`): where a curve that falls without a rise leaves its start.

    >>> rows = [(seed, step, acc) for seed in range(2) for step, acc in [(0, 0.4), (25, 0.39), (50, 0.2), (75, 0.4)]]
    >>> held_until(pd.DataFrame(rows, columns=["seed", "step", "accuracy"]))
    25
    """
    verdict = heldout_verdict(frame)
    band = max(0.0 if math.isnan(verdict.spread) else verdict.spread, min_drop)
    mean = frame.dropna(subset=["accuracy"]).groupby("step")["accuracy"].mean().sort_index()
    below = mean[mean < mean.iloc[0] - band]
    return int(mean.index[-1] if below.empty else mean.index[mean.index < below.index[0]][-1])


# The columns of a verdict table (:func:`heldout_verdicts`, the organism benchmark's JSON), in order.
VERDICT_COLUMNS = (
    "base",
    "peak",
    "peak_step",
    "final",
    "drop",
    "spread",
    "rose",
    "fell",
    "collapsed",
    "n_seeds",
)


def heldout_verdicts(frame: pd.DataFrame, *, min_seeds: int = 2) -> pd.DataFrame:
    """:func:`heldout_verdict` of each method of a long-form frame (method, seed, step, accuracy), as a
    table in percent: method, base, peak, peak_step, final, drop, spread, rose, fell, collapsed, n_seeds.
    A method with fewer than ``min_seeds`` seeds gets its numbers and no verdict (rose, fell and
    collapsed False: one seed has no spread to judge by).

    >>> rows = [(m, seed, step, acc) for m, shift in (("a", 0.0), ("b", 0.1)) for seed in range(2)
    ...         for step, acc in [(0, 0.4 + shift), (10, 0.5 + shift + 0.01 * seed)]]
    >>> heldout_verdicts(pd.DataFrame(rows, columns=["method", "seed", "step", "accuracy"]))[["method", "peak", "rose"]].values.tolist()
    [['a', 50.5, True], ['b', 60.5, True]]
    """
    if "method" not in frame.columns:
        raise KeyError("held-out frame has no column 'method' (expected method, seed, step, accuracy)")
    rows = []
    for method, curves in frame.groupby("method", sort=False):
        verdict = heldout_verdict(curves, min_seeds=max(2, min_seeds))
        row = {"method": method, **{name: getattr(verdict, name) for name in verdict.__dataclass_fields__}}
        for name in ("base", "peak", "final", "drop", "spread"):
            row[name] = round(100.0 * row[name], 1)
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *VERDICT_COLUMNS])


def model_collapse_step(
    metrics: pd.DataFrame, threshold: float = 0.01, *, column: str = "reward_accuracy"
) -> int | None:
    """The first step whose reward accuracy is below ``threshold``; None when it never is.

    Model Collapse Step of arXiv 2603.08660 (defined there on majority-vote training; reward
    accuracy = share of rollouts whose self-assigned reward equals the ground-truth reward).
    Null values (methods with continuous rewards) are skipped; a column with no value at all is
    an error.

    >>> frame = pd.DataFrame({"step": [1, 2, 3, 4], "reward_accuracy": [0.6, 0.2, 0.005, 0.3]})
    >>> model_collapse_step(frame)
    3
    >>> model_collapse_step(frame, threshold=0.001) is None
    True
    """
    values = _series(metrics, column)
    below = values[values < threshold]
    return None if below.empty else int(below.index[0])


def model_collapse_steps(
    runs: Mapping[str, Sequence[pd.DataFrame]], threshold: float = 0.01, *, column: str = "reward_accuracy"
) -> pd.DataFrame:
    """:func:`model_collapse_step` of each seed of each run, from the raw per-step values of ``column``.

    ``runs`` maps a run name to its seeds' metrics frames (``corerl.study.Study.seed_metrics``); runs
    without values of ``column`` (continuous rewards) are left out. One row per (run, seed): ``steps``
    (the last logged step), ``model_collapse_step`` (None when reward accuracy never went below
    ``threshold``: no Model Collapse Step within ``steps`` steps, which says nothing about later steps),
    and ``lowest`` / ``lowest_step``: the lowest value and where it was first reached, so that a run
    without a collapse step shows how close it came.

    >>> seed = pd.DataFrame({"step": [1, 2, 3], "reward_accuracy": [0.6, 0.2, 0.3]})
    >>> model_collapse_steps({"majority-vote": [seed]}).to_dict("records")
    [{'run': 'majority-vote', 'seed': 0, 'steps': 3, 'model_collapse_step': None, 'lowest': 0.2, 'lowest_step': 2}]
    """
    rows = []
    for run, frames in runs.items():
        for seed, metrics in enumerate(frames):
            if column not in metrics.columns or metrics[column].isna().all():
                continue
            values = _series(metrics, column)
            rows.append(
                {
                    "run": run,
                    "seed": seed,
                    "steps": int(metrics["step"].max()),
                    "model_collapse_step": model_collapse_step(metrics, threshold, column=column),
                    "lowest": float(values.min()),
                    "lowest_step": int(values.idxmin()),
                }
            )
    columns = ["run", "seed", "steps", "model_collapse_step", "lowest", "lowest_step"]
    table = pd.DataFrame(rows, columns=columns)
    # None, not NaN, where no step went below the threshold (an integer step or nothing)
    table["model_collapse_step"] = pd.Series([row["model_collapse_step"] for row in rows], dtype=object)
    return table


def summarize_run(
    metrics: pd.DataFrame, *, threshold: float = 0.01, **detect_options: float
) -> dict[str, object]:
    """One row for a results table: peak and final oracle accuracy, collapse and Model Collapse Step.

    ``collapse_step`` comes from :func:`detect_collapse` (``detect_options`` go there),
    ``model_collapse_step`` from :func:`model_collapse_step` (None when the run has no reward
    accuracy, as for continuous rewards).

    >>> frame = pd.DataFrame({"step": [1, 2, 3], "method": "majority-vote", "reward_mean": [0.2, 0.5, 0.9],
    ...                       "oracle_accuracy": [0.3, 0.5, 0.2], "reward_accuracy": [0.7, 0.5, 0.0]})
    >>> summarize_run(frame, window=1, patience=1)["collapse_step"], summarize_run(frame)["model_collapse_step"]
    (3, 3)
    """
    accuracy = _series(metrics, "oracle_accuracy")
    collapse = detect_collapse(metrics, **detect_options)  # type: ignore[arg-type]
    has_reward_accuracy = "reward_accuracy" in metrics.columns and metrics["reward_accuracy"].notna().any()
    methods = metrics["method"].dropna().unique().tolist() if "method" in metrics.columns else []
    return {
        "method": methods[0] if len(methods) == 1 else None,
        "steps": int(metrics["step"].max()),
        "peak_oracle_accuracy": float(accuracy.max()),
        "peak_step": int(accuracy.idxmax()),
        "final_oracle_accuracy": float(accuracy.iloc[-1]),
        "collapse_step": collapse.step if collapse else None,
        "model_collapse_step": model_collapse_step(metrics, threshold) if has_reward_accuracy else None,
    }


_WORD = re.compile(r"\S+")


def repeated_ngram_share(text: str, n: int = 4) -> float:
    """Share of the word n-grams of ``text`` that repeat an earlier n-gram (0 for short texts).

    >>> repeated_ngram_share("a b a b a b", n=2)
    0.6
    >>> repeated_ngram_share("one two three", n=4)
    0.0
    """
    words = _WORD.findall(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def identical_answer_share(answers_by_question: Iterable[str | None]) -> float:
    """Share of questions whose answer is the single most common answer across questions.

    One answer per distinct question; missing answers count in the denominator, never as the
    common answer. 1.0 means every question got the same final answer (a template answer).

    >>> identical_answer_share(["4", "4", "7", None])
    0.5
    """
    answers = list(answers_by_question)
    counts = Counter(answer for answer in answers if answer not in (None, ""))
    if not answers or not counts:
        return 0.0
    return counts.most_common(1)[0][1] / len(answers)


def degenerate_outputs(
    samples: pd.DataFrame, *, ngram: int = 4, truncated_column: str = "truncated"
) -> pd.DataFrame:
    """Per-step diagnostics of degenerate outputs from a run's samples.

    Columns: step, samples, identical_answer_share (share of distinct questions whose most
    common extracted answer equals the answer most common across questions), repeated_ngram_share
    (mean over completions of :func:`repeated_ngram_share`), no_answer_rate (completions without
    an extracted answer), mean_chars, truncation_rate (share of completions cut by the length cap,
    from the ``truncated`` column when the samples have it, else NaN: text alone cannot tell).
    Answers come from ``answer_extracted`` when present, else from the completion.
    """
    from corerl.answers import extract_answer

    if samples.empty:
        return pd.DataFrame(
            columns=[
                "step",
                "samples",
                "identical_answer_share",
                "repeated_ngram_share",
                "no_answer_rate",
                "mean_chars",
                "truncation_rate",
            ]
        )
    frame = samples.copy()
    frame["completion"] = frame["completion"].fillna("").astype(str)
    if "answer_extracted" in frame.columns:
        answers = frame["answer_extracted"]
    else:
        answers = frame["completion"].map(extract_answer)
    frame["_answer"] = answers.where(answers.notna() & (answers.astype(str) != ""), None)
    question_key = "id" if "id" in frame.columns else "question" if "question" in frame.columns else None
    rows = []
    for step, group in frame.groupby("step", sort=True):
        if question_key is None:
            per_question = list(group["_answer"])
        else:
            per_question = [
                _mode(answers) for _, answers in group.groupby(question_key, sort=False)["_answer"]
            ]
        truncation = (
            float(group[truncated_column].astype(float).mean())
            if truncated_column in group.columns
            else float("nan")
        )
        rows.append(
            {
                "step": int(step),
                "samples": len(group),
                "identical_answer_share": identical_answer_share(per_question),
                "repeated_ngram_share": float(
                    group["completion"].map(lambda t: repeated_ngram_share(t, ngram)).mean()
                ),
                "no_answer_rate": float(group["_answer"].isna().mean()),
                "mean_chars": float(group["completion"].str.len().mean()),
                "truncation_rate": truncation,
            }
        )
    return pd.DataFrame(rows)


def _mode(answers: pd.Series) -> str | None:
    counts = Counter(answer for answer in answers if answer is not None)
    return counts.most_common(1)[0][0] if counts else None
