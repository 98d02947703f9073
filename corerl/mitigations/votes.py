"""The frozen base model's majority votes, and SRT's two mitigations built on them (arXiv 2505.21444 Sec. 5).

- :func:`base_model_votes`: k samples per training question from the frozen base model, voted with
  ``corerl.voting.majority_vote`` once and cached in a file (a resumed run never recomputes them).
- :func:`offline_labels` (SRT Sec. 5.2): the voted labels go to ``corerl.rewards.offline_label_reward``
  through the ``offline_label`` column.
- :func:`curriculum` (SRT Sec. 5.3): rank training questions by the base model's majority-answer share
  (k = 32 samples at temperature 1.0, label-free) and keep the easiest fraction (default one third,
  :func:`select_easiest`).

``corerl train --offline-labels`` / ``--curriculum F`` apply them through ``corerl.mitigations.hooks``.

Departures: SRT samples offline labels with its training rollout settings; here k, temperature and
length are parameters (defaults k = 8, temperature 1.0). Votes are saved in chunks so a killed
labelling pass resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.answers import extract_answer
from corerl.evaluate import MATH_PROMPT, Formatter, make_formatter
from corerl.mitigations.files import write_atomically
from corerl.voting import majority_vote

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

OFFLINE_LABEL_COLUMN = "offline_label"  # the column corerl.rewards.offline_label_reward reads
OFFLINE_SHARE_COLUMN = "offline_label_share"


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
            write_atomically(path, json.dumps({"settings": settings, "votes": list(votes.values())}))
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
