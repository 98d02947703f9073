"""SRT's mitigations of reward hacking (arXiv 2505.21444 Sec. 5) and small-set test-time training.

Standalone pieces; ``corerl train`` applies them through ``TrainConfig`` fields (``early_stopping``,
``offline_labels``, ``curriculum_fraction``, ``test_time_training``; see ``corerl.engine.mitigations``):
- :class:`EarlyStopping`: a ``TrainerCallback`` that scores the policy on a small labelled slice
  (default 1% of the training set, :func:`split_validation`) every ``eval_steps`` steps, has the
  Trainer checkpoint each new best, and stops after ``patience`` evaluations without improvement.
  The only place in a label-free run where labels are read. :func:`evaluation_model` gives the
  model an early-stopped run is evaluated with: its best checkpoint, never ``final/``.
- :func:`offline_labels`: k samples per training question from the frozen base model, voted once
  with ``corerl.voting.majority_vote``; labels and shares are saved to a file and reused (a resumed
  run never recomputes them). The labels go to ``corerl.rewards.offline_label_reward`` through the
  ``offline_label`` column.
- :func:`curriculum`: rank training questions by the base model's majority-answer share (k = 32
  samples at temperature 1.0, label-free) and keep the easiest fraction (default one third).
- :func:`select_test_time_set`: at most 128 questions of a test set to train on, label-free, and
  evaluate on (TTRL; arXiv 2603.08660 finds sets of <= 128 questions do not collapse).

Departures: SRT samples offline labels with its training rollout settings; here k, temperature and
length are parameters (defaults k = 8, temperature 1.0). Votes are saved in chunks so a killed
labelling pass resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from corerl.answers import extract_answer
from corerl.evaluate import MATH_PROMPT, Formatter, make_formatter
from corerl.voting import majority_vote

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

TTRL_MAX_QUESTIONS = 128
OFFLINE_LABEL_COLUMN = "offline_label"  # the column corerl.rewards.offline_label_reward reads
OFFLINE_SHARE_COLUMN = "offline_label_share"


# ---------------------------------------------------------------- early stopping (SRT Sec. 5.1)


def split_validation(
    dataset: datasets.Dataset, fraction: float = 0.01, *, seed: int = 0, min_questions: int = 1
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """``(train, validation)``: a seeded random ``fraction`` of the rows (at least ``min_questions``)
    held out as the labelled validation slice; both keep the original row order.
    """
    size = len(dataset)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    held_out = max(min_questions, math.floor(fraction * size + 0.5))
    if held_out >= size:
        raise ValueError(f"a validation slice of {held_out} questions leaves no training data ({size} rows)")
    chosen = set(random.Random(seed).sample(range(size), held_out))
    train = [i for i in range(size) if i not in chosen]
    return dataset.select(train), dataset.select(sorted(chosen))


def accuracy_evaluator(
    validation: datasets.Dataset,
    tokenizer: Any,
    *,
    prompt: str | Formatter = MATH_PROMPT,
    chat: bool | None = None,
    k: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
) -> Callable[[Any], float]:
    """A function model -> avg@k on the labelled ``validation`` slice (greedy by default)."""
    from corerl.evaluate import evaluate

    def score(model: Any) -> float:
        table = evaluate(
            model,
            tokenizer,
            {"validation": validation},
            k=k,
            temperature=temperature,
            prompt=prompt,
            chat=chat,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=seed,
            progress=False,
        ).table
        return float(table.loc[table["metric"] == "avg@k", "value"].iloc[0])

    return score


class EarlyStopping(TrainerCallback):
    """Score the policy every ``eval_steps`` steps, checkpoint each new best, stop after ``patience``.

    ``score(model) -> float`` (higher is better; e.g. :func:`accuracy_evaluator`) runs after the
    optimizer step. A score above the best by more than ``min_delta`` becomes the best: the
    callback asks the Trainer to save ``checkpoint-<step>`` now and records the step as the
    Trainer's ``best_global_step`` so checkpoint rotation keeps it. ``patience`` evaluations in a
    row without a new best stop training. The history is written to
    ``<output_dir>/early_stopping.json`` after every evaluation and read back on resume (entries
    after the resumed step are dropped, they are evaluated again).
    """

    state_filename = "early_stopping.json"

    def __init__(
        self,
        score: Callable[[Any], float],
        *,
        eval_steps: int = 10,
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        if eval_steps < 1 or patience < 1:
            raise ValueError(f"eval_steps and patience must be >= 1, got {eval_steps} and {patience}")
        self.score = score
        self.eval_steps = eval_steps
        self.patience = patience
        self.min_delta = min_delta
        self.history: list[dict[str, float]] = []
        self.best_step: int | None = None
        self.best_score: float | None = None
        self.evaluations_without_improvement = 0
        self.output_dir: Path | None = None
        self.stopped_at: int | None = None

    @property
    def best_checkpoint(self) -> Path | None:
        """``<output_dir>/checkpoint-<best step>``, the checkpoint of the best score so far."""
        if self.best_step is None or self.output_dir is None:
            return None
        return self.output_dir / f"checkpoint-{self.best_step}"

    def _replay(self, history: list[dict[str, float]]) -> None:
        self.history, self.best_step, self.best_score = [], None, None
        self.evaluations_without_improvement = 0
        for entry in history:
            self._record(int(entry["step"]), float(entry["score"]))

    def _record(self, step: int, score: float) -> bool:
        self.history.append({"step": step, "score": score})
        if self.best_score is None or score > self.best_score + self.min_delta:
            self.best_step, self.best_score = step, score
            self.evaluations_without_improvement = 0
            return True
        self.evaluations_without_improvement += 1
        return False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.output_dir = Path(args.output_dir)
        saved = self.output_dir / self.state_filename
        if state.global_step > 0 and saved.is_file():  # resuming: continue the saved history
            history = json.loads(saved.read_text(encoding="utf-8"))["history"]
            self._replay([entry for entry in history if entry["step"] <= state.global_step])
            if self.best_step is not None:
                state.best_global_step, state.best_metric = self.best_step, self.best_score
        else:
            self._replay([])

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        step = state.global_step
        if step % self.eval_steps:
            return
        model = kwargs.get("model")
        if model is None:
            raise ValueError("EarlyStopping needs the model in the callback arguments")
        score = float(self.score(model))
        improved = self._record(step, score)
        logger.info(
            "early stopping: step %d score %.4f (best %.4f at step %s)",
            step,
            score,
            self.best_score,
            self.best_step,
        )
        if improved:
            state.best_global_step, state.best_metric = step, score
            control.should_save = True
        elif self.evaluations_without_improvement >= self.patience:
            self.stopped_at = step
            control.should_training_stop = True
        if state.is_world_process_zero:
            self._save()

    def _save(self) -> None:
        if self.output_dir is None:  # on_train_begin was not called: nowhere to write
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "history": self.history,
            "best_step": self.best_step,
            "best_score": self.best_score,
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "stopped_at": self.stopped_at,
        }
        _write_atomically(self.output_dir / self.state_filename, json.dumps(payload, indent=1))


def evaluation_model(run_dir: str | os.PathLike[str]) -> Path:
    """The model a run's results come from: early stopping's best checkpoint when the run used early
    stopping (its ``early_stopping.json``), else ``final/``.

    The checkpoint is found by the recorded best step inside ``run_dir``, so a run directory that
    moved (Drive, Kaggle) still resolves. Raises FileNotFoundError when the best checkpoint is gone,
    ValueError when early stopping never evaluated.
    """
    run_dir = Path(run_dir)
    history = run_dir / EarlyStopping.state_filename
    if not history.is_file():
        return run_dir / "final"
    try:
        best_step = json.loads(history.read_text(encoding="utf-8"))["best_step"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{history}: not an early-stopping history ({error})") from None
    if best_step is None:
        raise ValueError(f"{history}: early stopping never evaluated, so the run has no best checkpoint")
    best = run_dir / f"checkpoint-{int(best_step)}"
    if not best.is_dir():
        raise FileNotFoundError(f"{best}: the best checkpoint named by {history} is missing")
    return best


# ------------------------------------------------------- base-model votes: offline labels, curriculum


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, path)


def base_model_votes(
    model: Any,
    tokenizer: Any,
    dataset: datasets.Dataset,
    path: str | os.PathLike[str],
    *,
    k: int = 8,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 1024,
    prompt: str | Formatter = MATH_PROMPT,
    chat: bool | None = None,
    seed: int = 0,
    batch_size: int = 16,
    chunk_size: int = 256,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The frozen model's majority vote per question, computed once and cached in ``path`` (JSON).

    Returns one record per dataset row, in row order: id, label (None when no sample answered),
    share (label count / samples with an answer, SRT's majority share, ``Vote.share``), valid (samples
    with an answer). Reads only ``id`` and ``question``
    (never ``answer``). The file records k, temperature, top_p, max_new_tokens and seed; a file
    made with other settings or for other questions is an error, not silently reused. Votes are
    saved every ``chunk_size`` questions, so an interrupted pass resumes where it stopped; when the
    file is complete, ``model`` is not used at all.
    """
    from corerl.generation import generate

    missing = {"id", "question"} - set(dataset.column_names)
    if missing:
        raise KeyError(
            f"base-model votes need the column(s) {sorted(missing)}; the dataset has {dataset.column_names}"
        )
    ids = [str(qid) for qid in dataset["id"]]
    if len(set(ids)) != len(ids):
        raise ValueError("base-model votes need unique ids; the dataset repeats some")
    path = Path(path)
    settings = {
        "k": k,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "share": "count/parseable",  # SRT's majority share (files made before it used count/k)
    }
    votes: dict[str, dict[str, Any]] = {}
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            saved_settings, saved_votes = saved["settings"], saved["votes"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a base-model votes file ({error})") from None
        if saved_settings != settings:
            raise ValueError(
                f"{path} was made with {saved_settings}, not {settings}; delete it or pass its settings"
            )
        votes = {vote["id"]: vote for vote in saved_votes}
        unknown = set(votes) - set(ids)
        if unknown:
            raise ValueError(
                f"{path} holds votes for {len(unknown)} question(s) not in this dataset "
                f"(e.g. {sorted(unknown)[0]!r}); it was made for another dataset"
            )
    todo = [i for i, qid in enumerate(ids) if qid not in votes]
    if todo:
        if model is None:
            raise ValueError(f"{path} lacks votes for {len(todo)} question(s) and no model was given")
        if chat is None:
            chat = bool(getattr(tokenizer, "chat_template", None))
        formatter = make_formatter(prompt, chat=chat) if isinstance(prompt, str) else prompt
        questions = dataset["question"]
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("sampling %d base-model answers for each of %d questions into %s", k, len(todo), path)
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            # Seeded per chunk position so a resumed pass samples the chunks it did not finish alike.
            completions = generate(
                model,
                tokenizer,
                [formatter(questions[i]) for i in chunk],
                n=k,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=seed + chunk[0],
                batch_size=batch_size,
                progress=progress,
            )
            for i, group in zip(chunk, completions, strict=True):
                vote = majority_vote([extract_answer(text) for text in group])
                votes[ids[i]] = {"id": ids[i], "label": vote.label, "share": vote.share, "valid": vote.valid}
            _write_atomically(path, json.dumps({"settings": settings, "votes": list(votes.values())}))
    return [votes[qid] for qid in ids]


def offline_labels(
    model: Any,
    tokenizer: Any,
    dataset: datasets.Dataset,
    path: str | os.PathLike[str],
    *,
    drop_unlabelled: bool = True,
    **options: Any,
) -> datasets.Dataset:
    """``dataset`` with SRT's offline labels: columns ``offline_label`` and ``offline_label_share``.

    Votes come from :func:`base_model_votes` (``options``: k, temperature, max_new_tokens,
    prompt, ...), computed once and then read from ``path``. Questions where no sample gave an
    answer have no label and earn no reward; ``drop_unlabelled`` removes them (and logs how many).
    """
    votes = base_model_votes(model, tokenizer, dataset, path, **options)
    labelled = _set_column(dataset, OFFLINE_LABEL_COLUMN, [vote["label"] for vote in votes])
    labelled = _set_column(labelled, OFFLINE_SHARE_COLUMN, [float(vote["share"]) for vote in votes])
    if drop_unlabelled:
        keep = [i for i, vote in enumerate(votes) if vote["label"] is not None]
        if len(keep) < len(votes):
            logger.warning(
                "offline labels: dropping %d of %d questions with no base-model answer",
                len(votes) - len(keep),
                len(votes),
            )
            labelled = labelled.select(keep)
    return labelled


def select_easiest(
    dataset: datasets.Dataset, shares: Sequence[float], fraction: float = 1 / 3
) -> datasets.Dataset:
    """The ``round(fraction * len(dataset))`` rows with the highest shares (at least one row).

    Ties go to the earlier row; the kept rows stay in their original order.
    """
    if len(shares) != len(dataset):
        raise ValueError(f"{len(shares)} shares for {len(dataset)} rows")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if len(dataset) == 0:
        return dataset
    keep = max(1, math.floor(fraction * len(dataset) + 0.5))
    ranked = sorted(range(len(dataset)), key=lambda i: (-shares[i], i))
    return dataset.select(sorted(ranked[:keep]))


def curriculum(
    model: Any,
    tokenizer: Any,
    dataset: datasets.Dataset,
    path: str | os.PathLike[str],
    *,
    fraction: float = 1 / 3,
    k: int = 32,
    temperature: float = 1.0,
    **options: Any,
) -> datasets.Dataset:
    """SRT's curriculum: the easiest ``fraction`` of ``dataset`` by base-model majority share.

    Shares come from :func:`base_model_votes` with ``k`` samples at ``temperature`` (SRT: 32 at
    1.0), cached in ``path``. Adds the ``offline_label_share`` column used for the ranking.
    """
    votes = base_model_votes(model, tokenizer, dataset, path, k=k, temperature=temperature, **options)
    shares = [float(vote["share"]) for vote in votes]
    return select_easiest(_set_column(dataset, OFFLINE_SHARE_COLUMN, shares), shares, fraction)


def _set_column(dataset: datasets.Dataset, name: str, values: list[Any]) -> datasets.Dataset:
    """``dataset`` with column ``name`` set to ``values`` (an earlier column of that name is replaced:
    the curriculum's shares, then the offline labels' own)."""
    if name in dataset.column_names:
        dataset = dataset.remove_columns(name)
    return dataset.add_column(name, values)


# ------------------------------------------------------------------------ test-time training (TTRL)


def select_test_time_set(
    dataset: datasets.Dataset, *, max_questions: int = TTRL_MAX_QUESTIONS, seed: int = 0
) -> datasets.Dataset:
    """At most ``max_questions`` rows of a test set (a seeded sample, original order) to train on.

    Train a label-free method on the result and evaluate on the same rows, as TTRL does. The
    ``answer`` column stays for evaluation and oracle monitoring; label-free rewards never read it.
    """
    if max_questions < 1:
        raise ValueError(f"max_questions must be >= 1, got {max_questions}")
    if max_questions > TTRL_MAX_QUESTIONS:
        logger.warning(
            "test-time training on %d questions: sets above %d tend to collapse (arXiv 2603.08660)",
            max_questions,
            TTRL_MAX_QUESTIONS,
        )
    if len(dataset) <= max_questions:
        return dataset
    return dataset.select(sorted(random.Random(seed).sample(range(len(dataset)), max_questions)))
