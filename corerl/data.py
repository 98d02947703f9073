"""Datasets in one schema: ``id``, ``question``, ``answer`` and, for the training sets, ``rephrased``.

``load_dataset("math500")`` reads the copy shipped in ``data/`` (offline, the default);
``load_dataset("math500", from_hub=True)`` fetches the public original and maps it to the same schema
(the real code path for full-size runs; it needs the network, so the tests do not exercise it).
Any JSONL / JSON / Parquet / CSV file with a ``question`` (or ``problem``) column loads too.
Every problem with a file (missing, empty, unreadable, a column missing, a blank question, a
duplicated id) raises ``DataError`` naming the file and what is wrong; no row is dropped silently.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


def _data_dir() -> Path:
    """The shipped data: ``corerl/_data`` in an installed wheel (pyproject maps ``data/`` there), else the
    checkout's top-level ``data/`` (a source checkout or an editable install)."""
    package = Path(__file__).resolve().parent
    installed = package / "_data"
    return installed if installed.is_dir() else package.parent / "data"


DATA_DIR = _data_dir()
SCHEMA = ("id", "question", "answer", "rephrased")
QUESTION_ALIASES = ("question", "problem")
ANSWER_ALIASES = ("answer", "final_answer", "solution")
REPHRASED_ALIASES = ("rephrased", "rephrased_question", "rephrased_problem")


class DataError(ValueError):
    """A dataset file that cannot be used as it is; the message names the file and the problem."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named dataset lives: the shipped file and the public hub original."""

    filename: str
    hub_id: str | None  # None: derived here (no hub original of its own)
    hub_split: str = "train"
    hub_config: str | None = None
    description: str = ""


DATASETS: dict[str, DatasetSpec] = {
    "math-train": DatasetSpec(
        "math_train_rephrased.parquet",
        "TMLR-Group-HF/Co-rewarding-RephrasedMATH",
        description="MATH train (7,500) with Qwen3-32B rewrites: Co-rewarding-I's training set",
    ),
    "dapo-14k": DatasetSpec(
        "dapo14k_train_rephrased.parquet",
        "TMLR-Group-HF/Co-rewarding-RephrasedDAPO-14k",
        description="DAPO-Math 14k with Qwen3-32B rewrites",
    ),
    "math-train-clean": DatasetSpec(
        "math_train_rephrased_cleaned.parquet",
        None,
        description="math-train minus 56 broken rewrites (data/rephrase_report.md)",
    ),
    "dapo-14k-clean": DatasetSpec(
        "dapo14k_train_rephrased_cleaned.parquet",
        None,
        description="dapo-14k minus 72 broken rewrites (data/rephrase_report.md)",
    ),
    "math-test": DatasetSpec(
        "math_test.parquet",
        "DigitalLearningGmbH/MATH-lighteval",
        hub_split="test",
        description="MATH test (5,000)",
    ),
    "math500": DatasetSpec(
        "math500.jsonl", "HuggingFaceH4/MATH-500", hub_split="test", description="MATH-500"
    ),
    "gsm8k": DatasetSpec(
        "gsm8k_test.jsonl",
        "openai/gsm8k",
        hub_split="test",
        hub_config="main",
        description="GSM8K test (1,319)",
    ),
    "amc": DatasetSpec("amc.jsonl", "AI-MO/aimo-validation-amc", description="AMC 2022-2023 (83)"),
    "aime24": DatasetSpec("aime24.jsonl", "HuggingFaceH4/aime_2024", description="AIME 2024 (30)"),
}


def load_dataset(
    name_or_path: str | Path, *, split: str | None = None, from_hub: bool = False, limit: int | None = None
) -> datasets.Dataset:
    """A dataset by name (see ``DATASETS``) or by file path, in the package schema.

    ``split`` chooses the hub split (hub only); ``limit`` keeps the first rows.

    >>> math500 = load_dataset("math500", limit=3)
    >>> math500.column_names, math500[0]["answer"]
    (['id', 'question', 'answer'], '\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)')
    """
    name = str(name_or_path)
    if name in DATASETS:
        spec = DATASETS[name]
        if from_hub:
            if spec.hub_id is None:
                raise DataError(
                    f"{name!r} is derived in this repository and has no hub copy; load it offline"
                )
            records = _hub_records(spec, split or spec.hub_split)
            source = f"hub dataset {spec.hub_id}"
        else:
            path = DATA_DIR / spec.filename
            records = _read_records(path)
            source = str(path)
    elif from_hub:
        raise DataError(f"{name!r} is not a known dataset name; known names: {', '.join(DATASETS)}")
    else:
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"no dataset file {path}, and {name!r} is not a known dataset name ({', '.join(DATASETS)})"
            )
        records = _read_records(path)
        source = str(path)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1 (leave it out for every row), got {limit!r}")
        records = records[:limit]
    return to_schema(records, source=source, id_prefix=Path(name).stem)


def to_schema(records: list[dict[str, Any]], *, source: str, id_prefix: str = "row") -> datasets.Dataset:
    """Map raw records to the schema, checking every row; ``source`` names the data in errors."""
    import datasets

    if not records:
        raise DataError(f"{source}: no rows")
    columns = set().union(*(record.keys() for record in records))
    question_key = _first_present(QUESTION_ALIASES, columns)
    if question_key is None:
        raise DataError(
            f"{source}: missing column 'question' (looked for {', '.join(QUESTION_ALIASES)}; "
            f"found {', '.join(sorted(map(str, columns)))})"
        )
    answer_key = _first_present(ANSWER_ALIASES, columns)
    rephrased_key = _first_present(REPHRASED_ALIASES, columns)
    rows: dict[str, list[Any]] = {"id": [], "question": []}
    if answer_key:
        rows["answer"] = []
    if rephrased_key:
        rows["rephrased"] = []
    seen_ids: set[str] = set()
    for index, record in enumerate(records):
        question = record.get(question_key)
        row_id = str(record["id"]) if record.get("id") is not None else f"{id_prefix}-{index}"
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{source}: row {index} (id {row_id}) has a blank or missing {question_key!r}")
        if row_id in seen_ids:
            raise DataError(f"{source}: duplicated id {row_id!r} at row {index}; ids must be unique")
        seen_ids.add(row_id)
        rows["id"].append(row_id)
        rows["question"].append(_repair_escapes(question))
        if answer_key:
            rows["answer"].append(_final_answer(record.get(answer_key), answer_key))
        if rephrased_key:
            rephrased = record.get(rephrased_key)
            rows["rephrased"].append(
                _repair_escapes(rephrased) if isinstance(rephrased, str) and rephrased.strip() else None
            )
    return datasets.Dataset.from_dict(rows)


def require_columns(dataset: datasets.Dataset, columns: tuple[str, ...], *, purpose: str) -> None:
    """Raise ``DataError`` naming ``purpose`` and the first of ``columns`` the dataset lacks (or has all empty).

    Rows where a required column is empty are counted in a warning, not dropped.

    >>> import datasets
    >>> require_columns(datasets.Dataset.from_dict({"question": ["q"]}), ("answer",), purpose="ground-truth")
    Traceback (most recent call last):
    ...
    corerl.data.DataError: ground-truth needs a column 'answer', which the dataset lacks (columns: question)
    """
    for column in columns:
        if column not in dataset.column_names:
            raise DataError(
                f"{purpose} needs a column {column!r}, which the dataset lacks "
                f"(columns: {', '.join(dataset.column_names)})"
            )
        missing = sum(value is None for value in dataset[column])
        if missing == len(dataset):
            raise DataError(f"{purpose} needs a column {column!r}, which is empty in every row")
        if missing:  # e.g. 2 of MATH train's 7,500 answers are blank: say so, do not stop
            logger.warning("%s: column %r is empty in %d of %d rows", purpose, column, missing, len(dataset))


def _repair_escapes(text: str) -> str:
    """Undo an upstream escaping accident: ``\\frac`` read as a form feed + ``rac`` (602 DAPO questions).

    >>> _repair_escapes("\\x0crac{m}{n}") == "\\\\frac{m}{n}"
    True
    """
    return text.replace("\x0crac{", "\\frac{")


def _first_present(candidates: tuple[str, ...], columns: set[str]) -> str | None:
    return next((candidate for candidate in candidates if candidate in columns), None)


_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def _final_answer(value: Any, column: str) -> str | None:
    """The final answer as a string; full solutions (GSM8K ``####``, MATH ``\\boxed``) are reduced."""
    from corerl.answers import extract_answer

    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    text = str(value).strip()
    if column == "solution" or "####" in text:
        gsm8k = _GSM8K_FINAL.search(text)
        if gsm8k:
            return gsm8k.group(1).replace(",", "")
        return extract_answer(text)
    return text or None


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            return _read_jsonl(path)
        if suffix == ".json":
            content = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(content, dict) and isinstance(content.get("data"), list):
                content = content["data"]
            if not isinstance(content, list) or not all(isinstance(row, dict) for row in content):
                raise DataError(f"{path}: expected a JSON list of objects")
            return content
        if suffix in (".parquet", ".csv"):
            import pandas

            frame = (
                pandas.read_parquet(path)
                if suffix == ".parquet"
                else pandas.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            )
            return frame.astype(object).where(frame.notna(), None).to_dict("records")
    except DataError:
        raise
    except Exception as error:  # pyarrow/pandas/json raise many types; name the file instead
        raise DataError(f"{path}: cannot read it as {suffix.lstrip('.')}: {error}") from error
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .parquet or .csv)")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line_number} is not valid JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {line_number} is not a JSON object")
            records.append(record)
    return records


def _hub_records(spec: DatasetSpec, split: str) -> list[dict[str, Any]]:
    """The hub original of a named dataset (needs the network; not exercised by the tests)."""
    import datasets

    assert spec.hub_id is not None
    hub = datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    return [dict(row) for row in hub]
