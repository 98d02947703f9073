"""Loading the shipped datasets and user files, and the errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas
import pytest

from corerl.data import DATASETS, DataError, load_dataset, require_columns, to_schema

EXPECTED_ROWS = {
    "math-train": 7500,
    "dapo-14k": 14109,
    "math-train-clean": 7444,
    "dapo-14k-clean": 14037,
    "math-test": 5000,
    "math500": 500,
    "gsm8k": 1319,
    "amc": 83,
    "aime24": 30,
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_named_dataset_loads_offline_in_the_schema(name: str) -> None:
    dataset = load_dataset(name)
    assert len(dataset) == EXPECTED_ROWS[name]
    expected_columns = ["id", "question", "answer"] + (
        ["rephrased"] if name.startswith(("math-train", "dapo")) else []
    )
    assert dataset.column_names == expected_columns
    assert len(set(dataset["id"])) == len(dataset)
    assert all(question.strip() for question in dataset["question"])


def test_training_sets_have_a_rephrasing_for_every_question() -> None:
    for name in ("math-train", "dapo-14k", "math-train-clean", "dapo-14k-clean"):
        dataset = load_dataset(name)
        assert all(rephrased for rephrased in dataset["rephrased"])
    placeholders = sum(
        text.strip() == "<rewritten question>" for text in load_dataset("math-train")["rephrased"]
    )
    assert placeholders == 19
    assert "<rewritten question>" not in load_dataset("math-train-clean")["rephrased"]


def test_gsm8k_answers_are_bare_numbers() -> None:
    gsm8k = load_dataset("gsm8k", limit=50)
    assert all(answer.lstrip("-").replace(".", "").isdigit() for answer in gsm8k["answer"])


def test_limit() -> None:
    assert len(load_dataset("amc", limit=5)) == 5


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_user_jsonl_with_problem_and_solution_columns(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"problem": "What is 2+2?", "solution": "2+2 = \\boxed{4}"},
            {"problem": "What is 6*7?", "solution": "She has 42 left.\n#### 42"},
        ],
    )
    dataset = load_dataset(path)
    assert dataset["id"] == ["mine-0", "mine-1"]
    assert dataset["answer"] == ["4", "42"]


def test_csv_and_parquet_without_answers(tmp_path: Path) -> None:
    frame = pandas.DataFrame({"id": ["a", "b"], "question": ["q1", "q2"]})
    frame.to_csv(tmp_path / "q.csv", index=False)
    frame.to_parquet(tmp_path / "q.parquet")
    for path in (tmp_path / "q.csv", tmp_path / "q.parquet"):
        dataset = load_dataset(path)
        assert dataset.column_names == ["id", "question"]
        assert dataset["id"] == ["a", "b"]


def test_missing_file_names_the_file_and_the_known_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl.*math500"):
        load_dataset(tmp_path / "nope.jsonl")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl: the file is empty"):
        load_dataset(tmp_path / "empty.jsonl")


def test_blank_lines_only_is_no_rows(tmp_path: Path) -> None:
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match=r"blank\.jsonl: no rows"):
        load_dataset(tmp_path / "blank.jsonl")


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"question": "ok"}\n{"question": broken\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2 is not valid JSON"):
        load_dataset(tmp_path / "bad.jsonl")


def test_unreadable_parquet(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(DataError, match=r"bad\.parquet: cannot read it as parquet"):
        load_dataset(tmp_path / "bad.parquet")


def test_unsupported_suffix(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("question")
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        load_dataset(tmp_path / "data.txt")


def test_missing_question_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "noq.jsonl", [{"prompt_text": "x", "answer": "1"}])
    with pytest.raises(DataError, match=r"noq\.jsonl: missing column 'question'.*found answer, prompt_text"):
        load_dataset(path)


def test_blank_question_and_duplicate_ids_are_errors_not_silent_drops(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1 \(id b\) has a blank"):
        load_dataset(
            write_jsonl(
                tmp_path / "blank_q.jsonl", [{"id": "a", "question": "q"}, {"id": "b", "question": " "}]
            )
        )
    with pytest.raises(DataError, match=r"duplicated id 'a' at row 1"):
        load_dataset(
            write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "question": "q"}, {"id": "a", "question": "r"}])
        )


def test_to_schema_keeps_rephrasings_and_blanks_become_none() -> None:
    dataset = to_schema(
        [
            {"question": "q1", "rephrased": "r1", "answer": 3},
            {"question": "q2", "rephrased": "", "answer": None},
        ],
        source="inline",
    )
    assert dataset["rephrased"] == ["r1", None]
    assert dataset["answer"] == ["3", None]


def test_require_columns(caplog: pytest.LogCaptureFixture) -> None:
    dataset = datasets.Dataset.from_dict({"id": ["1", "2"], "question": ["a", "b"], "answer": ["1", None]})
    with pytest.raises(DataError, match="co-rewarding-1 needs a column 'rephrased'"):
        require_columns(dataset, ("rephrased",), purpose="co-rewarding-1")
    require_columns(dataset, ("answer",), purpose="ground-truth")
    assert "empty in 1 of 2 rows" in caplog.text
    empty = datasets.Dataset.from_dict({"question": ["a"], "answer": [None]})
    with pytest.raises(DataError, match="empty in every row"):
        require_columns(empty, ("answer",), purpose="ground-truth")


def test_hub_loading_of_an_unknown_or_derived_name_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="not a known dataset name"):
        load_dataset("my/own-dataset", from_hub=True)
    with pytest.raises(DataError, match="has no hub copy"):
        load_dataset("math-train-clean", from_hub=True)


def test_the_dapo_frac_escape_accident_is_repaired() -> None:
    dapo = load_dataset("dapo-14k")
    assert not any("\x0crac" in text for text in list(dapo["question"]) + list(dapo["rephrased"]))
    assert sum("\\frac{m}{n}" in question for question in dapo["question"]) > 600


def test_csv_answers_none_and_na_are_answers_not_missing(tmp_path: Path) -> None:
    """Issue 13.11: pandas' default NA strings turned the answers "None" and "NA" into missing ones."""
    path = tmp_path / "q.csv"
    path.write_text('question,answer\n"Which option?",None\n"Which?",NA\n"Blank?",\n')
    rows = load_dataset(str(path))
    assert rows["answer"] == ["None", "NA", None]
