"""Monitoring without leaking labels: the reward wrapper, ``metrics.jsonl``, ``samples.jsonl``, the bar.

``MonitoredReward`` has TRL's reward contract. It calls the method's reward function WITHOUT the
``answer`` column (except for the ground-truth baseline), then, for monitoring only, compares the
rollouts, rewards and pseudo-labels with the ground truth. Nothing it computes is fed back to
training. ``RunLogCallback`` appends one JSON line per optimizer step to ``metrics.jsonl`` (flushed at
once, so a killed run keeps every finished step; with held-out evaluation on, ``corerl.engine.heldout``
adds a step-0 row and held-out columns on the rows of the steps it evaluates), writes a few
``samples.jsonl`` rows every K steps (each with ``truncated``: the completion hit ``max_completion_length`` without a stop token) and shows a progress bar with step, reward and oracle accuracy.
With ``strategies=True`` (the training data is the organism) each step also logs the share of every
organism strategy among all rollouts, ``strategy/<name>`` (``corerl.arithmetic.strategies``): monitoring
only, read against the ground truth like the oracle accuracy.

Groups are prompts: each prompt's G rollouts (for Co-rewarding-I each view is its own group).
On several processes the wrapper gathers the whole generation batch from every rank before scoring
(voting must see a group that ``accelerate`` split across ranks), so rewards and figures cover it all,
the same on any number of processes. ``reward_std`` is the (population) std of the whole batch's
rewards, not a mean of per-group stds, like the ``reward_std`` TRL logs (over its gathered rewards,
with Bessel's correction). ``reward_group_std`` is the per-group figure: the mean over groups of each
group's (population) reward std, the spread GRPO's advantage is normalised by; it too is computed on
the gathered batch, so it is the same on one process and on several.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from corerl.answers import answers_match, extract_answer, normalize_answer
from corerl.arithmetic.strategies import strategy_figures
from corerl.collapse import read_jsonl
from corerl.rewards import LABEL_FREE, PSEUDO_LABELS, REWARDS, completion_text, prompt_key
from corerl.voting import majority_vote

logger = logging.getLogger(__name__)

CONTINUOUS_REWARDS = frozenset({"entropy", "self-certainty", "self-verify", "self-verify-vote"})


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _std(rewards: Sequence[float | None], indices: Sequence[int]) -> float | None:
    """Population std of the scored rewards at ``indices`` (None when none is scored)."""
    scored = [float(rewards[i]) for i in indices if rewards[i] is not None and not math.isnan(rewards[i])]
    mean = _mean(scored)
    return None if mean is None else math.sqrt(sum((r - mean) ** 2 for r in scored) / len(scored))


def rollout_metrics(
    method: str,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    rewards: Sequence[float | None],
    ground_truth: Sequence[str | None] | None,
    pseudo_labels: Sequence[str | None] | None,
) -> dict[str, float | None]:
    """The per-step monitoring figures of one generation batch (the per-step keys of ``metrics.jsonl``).

    >>> figures = rollout_metrics("majority-vote", ["p"] * 3, [r"\\boxed{1}", r"\\boxed{1}", "none"],
    ...                           [1.0, 1.0, 0.0], ["1"] * 3, ["1"] * 3)
    >>> figures["oracle_accuracy"], figures["reward_accuracy"], figures["pseudo_label_accuracy"]
    (0.6666666666666666, 1.0, 1.0)
    >>> figures["majority_share"], figures["distinct_answers"], round(figures["no_answer_rate"], 3)
    (1.0, 1.0, 0.333)
    >>> two_groups = rollout_metrics("random", ["a", "a", "b", "b"], ["x"] * 4, [1.0, 1.0, 0.0, 1.0], None, None)
    >>> two_groups["reward_std"], two_groups["reward_group_std"]  # whole batch vs mean of (0, 0.5)
    (0.4330127018922193, 0.25)
    """
    answers = [extract_answer(completion_text(completion)) for completion in completions]
    groups: dict[Hashable, list[int]] = {}
    for index, prompt in enumerate(prompts):
        groups.setdefault(prompt_key(prompt), []).append(index)
    scored = [float(r) for r in rewards if r is not None and not math.isnan(r)]
    reward_mean = _mean(scored)
    figures: dict[str, float | None] = {
        "reward_mean": reward_mean,
        "reward_std": math.sqrt(sum((r - reward_mean) ** 2 for r in scored) / len(scored))
        if scored
        else None,
        "reward_group_std": _mean([std for g in groups.values() if (std := _std(rewards, g)) is not None]),
        "oracle_accuracy": None,
        "pseudo_label_accuracy": None,
        "reward_accuracy": None,
        "point_biserial": None,
        "majority_share": _mean([majority_vote([answers[i] for i in g]).share for g in groups.values()]),
        "distinct_answers": _mean(
            [
                float(len({normalize_answer(answers[i]) for i in g if answers[i] is not None}))
                for g in groups.values()
            ]
        ),
        "no_answer_rate": _mean([float(answer is None) for answer in answers]),
    }
    if ground_truth is None:
        return figures
    correct = [
        truth is not None and answers_match(str(truth), answer)
        for answer, truth in zip(answers, ground_truth, strict=True)
    ]
    figures["oracle_accuracy"] = _mean([float(c) for c in correct])
    if method not in CONTINUOUS_REWARDS:  # reward accuracy: share of rewards equal to 1[correct]
        figures["reward_accuracy"] = _mean(
            [float(r is not None and float(r) == float(c)) for r, c in zip(rewards, correct, strict=True)]
        )
    # arXiv 2603.08660's code: point-biserial correlation of the label-free reward with the GT reward
    figures["point_biserial"] = point_biserial(rewards, [float(c) for c in correct])
    if pseudo_labels is not None:  # one label per group: the one its first rollout was scored against
        figures["pseudo_label_accuracy"] = _mean(
            [
                float(
                    pseudo_labels[g[0]] is not None
                    and answers_match(str(ground_truth[g[0]]), pseudo_labels[g[0]])
                )
                for g in groups.values()
            ]
        )
    return figures


def point_biserial(rewards: Sequence[float | None], truth: Sequence[float]) -> float | None:
    """Pearson correlation of the rewards with the 0/1 ground-truth reward (the point-biserial r).

    Monitoring only (the 2603.08660 study's certainty diagnostic). Unscored rollouts are skipped;
    None when either side is constant (the correlation is undefined).

    >>> point_biserial([0.9, 0.8, 0.1, 0.2], [1.0, 1.0, 0.0, 0.0]) > 0.9
    True
    >>> point_biserial([1.0, 1.0], [1.0, 0.0]) is None
    True
    """
    pairs = [
        (float(r), t) for r, t in zip(rewards, truth, strict=True) if r is not None and not math.isnan(r)
    ]
    if len(pairs) < 2:
        return None
    mean_r = sum(r for r, _ in pairs) / len(pairs)
    mean_t = sum(t for _, t in pairs) / len(pairs)
    covariance = sum((r - mean_r) * (t - mean_t) for r, t in pairs)
    spread_r = math.sqrt(sum((r - mean_r) ** 2 for r, _ in pairs))
    spread_t = math.sqrt(sum((t - mean_t) ** 2 for _, t in pairs))
    if spread_r < 1e-12 or spread_t < 1e-12:
        return None
    return covariance / (spread_r * spread_t)


class MonitoredReward:
    """The method's reward function, called without ground truth, plus monitoring figures on the side.

    ``latest`` holds the figures of the last generation batch, ``samples`` a few of its rows.
    """

    def __init__(
        self,
        method: str,
        reward_function: Callable[..., list[float | None]] | None = None,
        *,
        stop_token_ids: frozenset[int] = frozenset(),
        max_completion_length: int | None = None,
        strategies: bool = False,
    ) -> None:
        self.method = method
        self.strategies = strategies
        self.reward_function = reward_function or REWARDS[method]
        self.stop_token_ids = stop_token_ids
        self.max_completion_length = max_completion_length
        self.__name__ = method  # TRL names the reward column after the function
        self.latest: dict[str, float | None] = {}
        self.samples: list[dict[str, Any]] = []

    def __call__(self, prompts: list[Any], completions: list[Any], **columns: Any) -> list[float | None]:
        # On several processes a prompt's group (or a question's other view) may sit on another rank:
        # score the whole generation batch on every rank, then keep this rank's slice.
        local_count = len(prompts)
        prompts, completions, columns, offset = gather_batch(prompts, completions, columns)
        rewards = self._score(prompts, completions, columns)
        return rewards[offset : offset + local_count]

    def _score(
        self, prompts: list[Any], completions: list[Any], columns: dict[str, Any]
    ) -> list[float | None]:
        ground_truth = columns.get("answer")
        reward_columns = dict(columns)
        if self.method in LABEL_FREE:
            reward_columns.pop("answer", None)  # label-free methods never see the ground truth
        rewards = self.reward_function(prompts, completions, **reward_columns)
        pseudo_labels = None
        if self.method in PSEUDO_LABELS and ground_truth is not None:
            label_columns = {k: v for k, v in reward_columns.items() if k not in ("log_metric", "log_extra")}
            pseudo_labels = PSEUDO_LABELS[self.method](prompts, completions, **label_columns)
        self.latest = rollout_metrics(self.method, prompts, completions, rewards, ground_truth, pseudo_labels)
        self.latest.update(
            _multiplication_split(self.method, prompts, completions, rewards, columns, pseudo_labels)
        )
        entropies = columns.get("token_entropy")
        self.latest["token_entropy"] = _mean([float(e) for e in entropies]) if entropies else None
        lengths = columns.get("completion_ids")
        self.latest["completion_length"] = _mean([float(len(ids)) for ids in lengths]) if lengths else None
        if self.strategies:  # organism strategy shares of all rollouts (monitoring only)
            texts = [completion_text(completion) for completion in completions]
            self.latest.update(strategy_figures(columns.get("question"), texts, ground_truth))
        ids = columns.get("id") or [None] * len(prompts)
        questions = columns.get("question") or [None] * len(prompts)
        truncated = (
            [is_truncated(row, self.stop_token_ids, self.max_completion_length) for row in lengths]
            if lengths and self.max_completion_length
            else [None] * len(prompts)
        )
        self.samples = [
            {
                "id": ids[i],
                "question": questions[i],
                "completion": completion_text(completions[i]),
                "answer_extracted": extract_answer(completion_text(completions[i])),
                "reward": rewards[i],
                "ground_truth": None if ground_truth is None else ground_truth[i],
                "truncated": truncated[i],
            }
            for i in range(len(prompts))
        ]
        return rewards


def _multiplication_split(
    method: str,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    rewards: Sequence[float | None],
    columns: dict[str, Any],
    pseudo_labels: Sequence[str | None] | None,
) -> dict[str, float | None]:
    """Oracle and pseudo-label accuracy on the organism's problems with a multiplication (the
    misaligned prior's systematic error), as ``*_mul``; empty without an ``operations`` column.

    >>> _multiplication_split("majority-vote", ["p", "q"], [r"\\boxed{9}", r"\\boxed{2}"], [1.0, 1.0],
    ...                       {"answer": ["18", "2"], "operations": [["*"], ["+"]]}, ["9", "2"])
    {'oracle_accuracy_mul': 0.0, 'pseudo_label_accuracy_mul': 0.0}
    """
    operations, ground_truth = columns.get("operations"), columns.get("answer")
    if operations is None or ground_truth is None:
        return {}
    chosen = [i for i, ops in enumerate(operations) if "*" in ops]
    if not chosen:
        return {"oracle_accuracy_mul": None, "pseudo_label_accuracy_mul": None}
    subset = rollout_metrics(
        method,
        [prompts[i] for i in chosen],
        [completions[i] for i in chosen],
        [rewards[i] for i in chosen],
        [ground_truth[i] for i in chosen],
        None if pseudo_labels is None else [pseudo_labels[i] for i in chosen],
    )
    return {
        "oracle_accuracy_mul": subset["oracle_accuracy"],
        "pseudo_label_accuracy_mul": subset["pseudo_label_accuracy"],
    }


def is_truncated(completion_ids: Sequence[int], stop_token_ids: frozenset[int], max_length: int) -> bool:
    """True when a completion hit the length cap without ending on a stop (EOS or pad) token, as TRL counts it.

    >>> is_truncated([5, 6, 7], frozenset({2}), 3), is_truncated([5, 6, 2], frozenset({2}), 3)
    (True, False)
    >>> is_truncated([5, 6], frozenset({2}), 3)  # shorter than the cap: it stopped on its own
    False
    """
    return len(completion_ids) >= max_length and (
        not completion_ids or completion_ids[-1] not in stop_token_ids
    )


def stop_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The tokens that end a completion: the tokenizer's EOS and pad, the generation config's EOS."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    configured = configured if isinstance(configured, list) else [configured]
    candidates = [tokenizer.eos_token_id, tokenizer.pad_token_id, *configured]
    return frozenset(int(token) for token in candidates if token is not None)


def gather_batch(
    prompts: list[Any], completions: list[Any], columns: dict[str, Any]
) -> tuple[list[Any], list[Any], dict[str, Any], int]:
    """All processes' rows in rank order (list columns concatenated, other kwargs kept), and this
    process's offset in them. One process: the inputs unchanged and offset 0."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes == 1:
        return prompts, completions, columns, 0
    from accelerate.utils import gather_object

    lists = {name: value for name, value in columns.items() if isinstance(value, list)}
    parts = gather_object([{"prompts": prompts, "completions": completions, **lists}])
    offset = sum(len(part["prompts"]) for part in parts[: state.process_index])
    merged = {name: [row for part in parts for row in part[name]] for name in parts[0]}
    return merged.pop("prompts"), merged.pop("completions"), {**columns, **merged}, offset


def read_jsonl_steps(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of a metrics/samples file (a torn last line is dropped); [] when absent."""
    return read_jsonl(path) if path.exists() else []


def logged_step(row: dict[str, Any]) -> int | None:
    """A log row's step as an int (an integral float too), None when it is missing, null, negative or
    not an integer (a hand-edited or foreign line).

    >>> logged_step({"step": 3}), logged_step({"step": 3.0}), logged_step({"step": None}), logged_step({"step": "3"})
    (3, 3, None, None)
    """
    step = row.get("step")
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def first_duplicated_step(rows: list[dict[str, Any]]) -> int | None:
    """The smallest training step (>= 1) that more than one ``metrics.jsonl`` row names, None when
    none is (two writers). Step 0's own row (the held-out evaluation's) is no training step: a second
    one is dropped by ``truncate_to_step(..., once=True)``.

    >>> first_duplicated_step([{"step": 0}, {"step": 0}, {"step": 1}, {"step": 2}, {"step": 2}])
    2
    """
    seen: set[int] = set()
    duplicated = [step for row in rows if (step := logged_step(row)) and (step in seen or seen.add(step))]
    return min(duplicated, default=None)


def truncate_to_step(path: Path, last_step: int, *, once: bool = False) -> list[dict[str, Any]]:
    """Keep only the rows with an integer ``step <= last_step`` (resume: no step is counted twice);
    returns them. A row whose step is missing, null or not an integer is dropped with a warning
    naming the file and the value (the readers refuse such a log); ``once`` (``metrics.jsonl``) also
    drops a second row of a step (two step-0 rows of the held-out evaluation: the first is kept)."""
    rows, seen = [], set()
    for number, row in enumerate(read_jsonl_steps(path), start=1):
        step = logged_step(row)
        if step is None:
            logger.warning(
                "%s: dropping row %d, whose step %r is not an integer", path, number, row.get("step")
            )
        elif once and step in seen:
            logger.warning("%s: dropping row %d, a second row of step %d", path, number, step)
        elif step <= last_step:
            seen.add(step)
            rows.append(row)
    if path.exists():
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def append_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``rows`` as JSON lines, flushed at once (a killed run keeps every finished line)."""
    with path.open("a") as handle:
        handle.write("".join(json.dumps(row) + "\n" for row in rows))
        handle.flush()


def logged_time(rows: list[dict[str, Any]]) -> float:
    """The training time the log reached: the last row's numeric ``time`` (0.0 when there is none)."""
    times = [
        row["time"]
        for row in rows
        if isinstance(row.get("time"), int | float) and not isinstance(row["time"], bool)
    ]
    return float(times[-1]) if times and math.isfinite(times[-1]) else 0.0


class RunLogCallback(TrainerCallback):
    """One ``metrics.jsonl`` line per optimizer step, ``samples.jsonl`` every K steps, a progress bar.

    ``heldout(step)`` gives the held-out columns of the step (``corerl.engine.heldout``), if any.
    """

    def __init__(
        self,
        monitor: MonitoredReward,
        run_dir: Path,
        *,
        method: str,
        sample_every: int,
        samples_per_step: int,
        teacher_alpha: Callable[[], float | None],
        time_offset: float = 0.0,
        progress: bool = True,
        heldout: Callable[[int], dict[str, float]] | None = None,
    ) -> None:
        self.monitor = monitor
        self.heldout = heldout
        self.metrics_path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self.method = method
        self.sample_every = sample_every
        self.samples_per_step = samples_per_step
        self.teacher_alpha = teacher_alpha
        self.time_offset = time_offset
        self.progress = progress
        self.last_step = -1
        self.started = time.monotonic()
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.last_step = state.global_step
        if self.progress and state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step")

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        step = state.global_step
        if not state.is_world_process_zero or step <= self.last_step or "train_runtime" in logs:
            return
        self.last_step = step
        record: dict[str, Any] = {
            "step": step,
            "time": round(time.monotonic() - self.started + self.time_offset, 3),
            "method": self.method,
            **self.monitor.latest,
            "kl": logs.get("kl"),
            "learning_rate": logs.get("learning_rate"),
            "teacher_alpha": self.teacher_alpha(),
            "epoch": logs.get("epoch", state.epoch),
            **(self.heldout(step) if self.heldout else {}),
        }
        append_jsonl(self.metrics_path, [record])
        if step == 1 or step % self.sample_every == 0:
            append_jsonl(
                self.samples_path,
                [{"step": step, **row} for row in self.monitor.samples[: self.samples_per_step]],
            )
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(
                reward=_fmt(record["reward_mean"]), oracle=_fmt(record["oracle_accuracy"]), refresh=False
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
