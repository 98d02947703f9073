"""The training dataset of a run: load, check the method's columns, format prompts, expand views.

Two stages around the model load: :func:`select_rows` (data, transforms, the mitigations' row
selection and the column checks) runs first, :func:`trainer_dataset` (prompts, views) after the
base-model votes of the curriculum and offline labels. Fails before any model is loaded when the
method lacks a column it needs (``rephrased`` for Co-rewarding-I, ``answer`` for the ground-truth
baseline and early stopping, ``offline_label`` for offline labels unless the base model votes them),
with a message naming the method and the column. Co-rewarding-I drops the questions whose
``rephrased`` is empty (counted in a warning), before the model loads. Label-free methods keep ``answer`` (when present) for the
monitoring figures only: ``MonitoredReward`` removes it before their reward function is called.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from corerl.config import ORGANISM_DATA_NAMES, TrainConfig
from corerl.data import DataError, load_dataset, require_columns
from corerl.engine.pairs import expand_views
from corerl.mitigations.votes import OFFLINE_LABEL_COLUMN
from corerl.rewards import REQUIRED_COLUMNS, VIEW_METHODS

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

ORGANISM_DATA = dict(zip(ORGANISM_DATA_NAMES, ("train", "test"), strict=True))
ORGANISM_DEFAULT_SIZE = 512
# The evaluation benchmarks: ground-truth training on one of them trains on its test labels.
BENCHMARK_DATA = frozenset({"math-test", "math500", "gsm8k", "amc", "aime24", "organism-test"})
# Columns the trainer passes on to the reward functions; the others are dropped.
# "operations" (organism only) splits the monitoring figures by subset (corerl.engine.monitor).
KEPT_COLUMNS = ("id", "question", "answer", "view", "operations", OFFLINE_LABEL_COLUMN)


def load_training_data(config: TrainConfig) -> Dataset:
    """The raw dataset the config names (organism split, a ``corerl.data`` name, or a file)."""
    if config.data in ORGANISM_DATA:
        from corerl.organism import DEFAULT_DIFFICULTY, make_dataset

        size = config.data_limit or ORGANISM_DEFAULT_SIZE
        operations = config.organism_operations or DEFAULT_DIFFICULTY
        return make_dataset(size, seed=0, split=ORGANISM_DATA[config.data], difficulty=operations)
    return load_dataset(config.data, limit=config.data_limit)


def apply_transforms(dataset: Dataset, config: TrainConfig) -> Dataset:
    """Apply ``config.dataset_transforms`` ("module:function", function(dataset, config) -> dataset)."""
    for spec in config.dataset_transforms:
        module_name, _, attribute = spec.partition(":")
        transform = getattr(importlib.import_module(module_name), attribute)
        dataset = transform(dataset, config)
    return dataset


def select_rows(config: TrainConfig, dataset: Dataset | None = None) -> tuple[Dataset, Dataset | None]:
    """The training rows and the early-stopping validation slice (None without early stopping).

    Loads the config's data (``dataset`` overrides it, same schema), applies ``dataset_transforms``
    and the mitigations' row selection (``corerl.mitigations.select_rows``), and makes every
    column check that can be made before a model loads. Raises ``DataError`` (a ValueError) naming
    the method and the missing column.
    """
    from corerl import mitigations

    if config.method == "ground-truth" and config.data in BENCHMARK_DATA and dataset is None:
        logger.warning(
            "ground-truth trains on the labels of %r, an evaluation benchmark: its scores on %r "
            "after this run measure memorisation, not reasoning",
            config.data,
            config.data,
        )
    dataset = load_training_data(config) if dataset is None else dataset
    dataset = apply_transforms(dataset, config)
    if len(dataset) == 0:
        raise DataError(f"{config.method}: the training dataset {config.data!r} has no rows")
    needed = REQUIRED_COLUMNS[config.method]
    if config.offline_labels:  # the frozen base model votes them (corerl.mitigations)
        needed = tuple(column for column in needed if column != OFFLINE_LABEL_COLUMN)
    elif config.method == "offline-labels" and OFFLINE_LABEL_COLUMN not in dataset.column_names:
        raise DataError(
            f"offline-labels needs a column {OFFLINE_LABEL_COLUMN!r}, which the dataset lacks; set "
            "offline_labels: true (corerl train --offline-labels) to have the frozen base model vote them"
        )
    require_columns(dataset, ("question", *needed), purpose=config.method)
    if "id" not in dataset.column_names:
        dataset = dataset.add_column("id", [f"row-{index}" for index in range(len(dataset))])
    if config.method in VIEW_METHODS:
        dataset = _drop_unrephrased(dataset, config.method)
    dataset, validation = mitigations.select_rows(dataset, config)
    _check_size(dataset, config)
    return dataset, validation


def _drop_unrephrased(dataset: Dataset, method: str) -> Dataset:
    """Co-rewarding-I without a second view: a question whose ``rephrased`` is empty has no cross-view
    label, so it is dropped, and the drop is counted in a warning that names the first ids."""
    empty = [
        index
        for index, text in enumerate(dataset["rephrased"])
        if not isinstance(text, str) or not text.strip()
    ]
    if not empty:
        return dataset
    shown = ", ".join(str(dataset["id"][index]) for index in empty[:5]) + (" ..." if len(empty) > 5 else "")
    logger.warning(
        "%s: dropped %d of %d questions whose 'rephrased' is empty (ids %s)",
        method,
        len(empty),
        len(dataset),
        shown,
    )
    dropped = set(empty)
    return dataset.select([index for index in range(len(dataset)) if index not in dropped])


def _check_size(dataset: Dataset, config: TrainConfig) -> None:
    if len(dataset) < config.questions_per_step:
        raise DataError(
            f"{config.method}: the training dataset has {len(dataset)} questions, fewer than "
            f"questions_per_step={config.questions_per_step}"
        )


def trainer_dataset(config: TrainConfig, dataset: Dataset) -> Dataset:
    """The trainer's dataset from the selected rows: a ``prompt`` column plus ``id``, ``question``,
    ``answer``, ``view``, ``offline_label`` where present (Co-rewarding-I: both views)."""
    require_columns(dataset, ("question", *REQUIRED_COLUMNS[config.method]), purpose=config.method)
    _check_size(dataset, config)
    if config.method in VIEW_METHODS:
        dataset = expand_views(dataset)  # Co-rewarding-I: rows 2i / 2i+1 = original / rephrased
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in KEPT_COLUMNS])

    def add_prompt(row: dict) -> dict:
        text = config.format_prompt(row["question"])
        return {"prompt": [{"role": "user", "content": text}] if config.chat else text}

    return dataset.map(add_prompt)
