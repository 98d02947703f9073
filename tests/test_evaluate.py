"""corerl.evaluate: metrics by hand, the results table on scripted completions, a real tiny run, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pandas as pd
import pytest

import corerl.generation
from corerl.cli import main
from corerl.evaluate import MATH_PROMPT, RESULT_COLUMNS, evaluate, grade, make_formatter, summarize


def test_avg_maj_pass_by_hand():
    # Question 1: 2 of 4 right, majority "1" right. Question 2: 1 of 4 right, majority "4" wrong.
    # Question 3: 0.5 == 1/2 by math equivalence, 3 of 4 right, majority right.
    answers = [["1", "1", "2", None], ["3", "4", "4", "4"], ["0.5", "\\frac{1}{2}", "1/2", "7"]]
    truths = ["1", "3", "\\frac12"]
    grades = [grade(group, truth) for group, truth in zip(answers, truths, strict=True)]
    assert [sum(g.correct) for g in grades] == [2, 1, 3]
    assert [g.majority_correct for g in grades] == [True, False, True]
    metrics = summarize(grades, answers)
    assert metrics["avg@k"] == pytest.approx((2 / 4 + 1 / 4 + 3 / 4) / 3)
    assert metrics["maj@k"] == pytest.approx(2 / 3)
    assert metrics["pass@k"] == pytest.approx(1.0)
    assert metrics["no_answer_rate"] == pytest.approx(1 / 12)


def test_no_answer_never_wins_the_majority():
    result = grade([None, None, None, "5"], "5")
    assert result.majority == "5" and result.majority_correct
    assert not grade([None, None], "5").majority_correct


class ScriptedTokenizer:
    chat_template = "chatml"


def scripted_generate(script: dict[str, list[str]], calls: list[dict]):
    def fake_generate(model, tokenizer, prompts, *, n, temperature, **options):
        calls.append({"prompts": list(prompts), "n": n, "temperature": temperature, **options})
        texts = [prompt if isinstance(prompt, str) else prompt[-1]["content"] for prompt in prompts]
        return [next(v for q, v in script.items() if q in text)[:n] for text in texts]

    return fake_generate


def test_results_table_from_scripted_completions(monkeypatch: pytest.MonkeyPatch):
    script = {
        "two plus two": ["so \\boxed{4}", "\\boxed{4}", "\\boxed{5}", "no idea"],
        "half of one": ["\\boxed{0.5}", "\\boxed{2}", "\\boxed{2}", "\\boxed{2}"],
    }
    calls: list[dict] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate(script, calls))
    bench = datasets.Dataset.from_list(
        [
            {"id": "a", "question": "two plus two", "answer": "4"},
            {"id": "b", "question": "half of one", "answer": "\\frac{1}{2}"},
        ]
    )
    result = evaluate(None, ScriptedTokenizer(), {"toy": bench}, model_name="m", k=4, temperature=0.8, seed=5)
    table = result.table
    assert list(table.columns) == list(RESULT_COLUMNS)
    values = dict(zip(table["metric"], table["value"], strict=True))
    assert values["avg@k"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert values["maj@k"] == pytest.approx(0.5)
    assert values["pass@k"] == pytest.approx(1.0)
    assert values["no_answer_rate"] == pytest.approx(1 / 8)
    assert set(table["benchmark"]) == {"toy"} and set(table["model"]) == {"m"}
    assert set(table["k"]) == {4} and set(table["n"]) == {2} and set(table["temperature"]) == {0.8}
    # The default prompt: the math instruction as a chat message (the tokenizer has a template).
    assert calls[0]["prompts"][0] == make_formatter(MATH_PROMPT, chat=True)("two plus two")
    assert calls[0]["n"] == 4 and calls[0]["seed"] == 5
    assert list(result.samples["majority"]) == ["4", "2"]
    assert list(result.samples["correct"].iloc[0]) == [True, True, False, False]


def test_greedy_evaluates_one_sample_and_limit_and_custom_prompt(monkeypatch: pytest.MonkeyPatch):
    calls: list[dict] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate({"q": ["\\boxed{1}"] * 4}, calls))
    bench = datasets.Dataset.from_list([{"question": f"q{i}", "answer": "1"} for i in range(5)])
    table = evaluate(
        None,
        ScriptedTokenizer(),
        {"b": bench},
        k=8,
        temperature=0.0,
        limit=3,
        prompt="Solve: {question}",
        chat=False,
    ).table
    assert calls[0]["n"] == 1 and calls[0]["prompts"] == ["Solve: q0", "Solve: q1", "Solve: q2"]
    assert set(table["k"]) == {1} and set(table["n"]) == {3}
    assert table.set_index("metric").loc["avg@k", "value"] == 1.0


def test_organism_benchmark_uses_its_own_prompt(monkeypatch: pytest.MonkeyPatch):
    from corerl.arithmetic.dataset import make_dataset
    from corerl.arithmetic.task import format_prompt

    calls: list[dict] = []
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate({"": ["\\boxed{1}"] * 2}, calls))
    table = evaluate(None, ScriptedTokenizer(), ["organism"], k=2, limit=4).table
    held_out = make_dataset(4, split="test")
    assert calls[0]["prompts"] == [format_prompt(question) for question in held_out["question"]]
    assert set(table["n"]) == {4} and set(table["benchmark"]) == {"organism"}


def test_bad_benchmarks_are_reported(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(corerl.generation, "generate", scripted_generate({}, []))
    no_answer = datasets.Dataset.from_list([{"question": "q"}])
    with pytest.raises(KeyError, match="answer"):
        evaluate(None, ScriptedTokenizer(), {"x": no_answer})
    blank = datasets.Dataset.from_list([{"question": "q", "answer": "1"}, {"question": "r", "answer": " "}])
    with pytest.raises(ValueError, match="1 question"):
        evaluate(None, ScriptedTokenizer(), {"x": blank})
    with pytest.raises(FileNotFoundError):
        evaluate(None, ScriptedTokenizer(), ["/nonexistent/bench.jsonl"])
    with pytest.raises(ValueError, match="k must be"):
        evaluate(None, ScriptedTokenizer(), {"x": no_answer}, k=0)


def test_real_tiny_model_is_reproducible_and_saves(tiny_model_dir: Path, tmp_path: Path):
    from corerl.evaluate import evaluate_model

    options = dict(k=2, temperature=1.0, max_new_tokens=6, limit=3, seed=1, progress=False)
    first = evaluate_model(tiny_model_dir, ["organism"], device="cpu", backend="hf", **options)
    again = evaluate_model(tiny_model_dir, ["organism"], device="cpu", backend="hf", **options)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert list(first.samples["completions"]) == list(again.samples["completions"])
    from corerl.arithmetic.dataset import make_dataset

    assert list(first.samples["question"]) == make_dataset(3, split="test")["question"]
    assert set(first.table["model"]) == {tiny_model_dir.name} and set(first.table["benchmark"]) == {
        "organism"
    }
    paths = first.save(tmp_path / "out")
    assert [p.name for p in paths] == ["results.csv", "results.json", "samples.jsonl"]
    pd.testing.assert_frame_equal(pd.read_csv(paths[0]), first.table, check_dtype=False)
    assert json.loads(paths[1].read_text()) == first.table.to_dict("records")


def test_cli_eval(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "1", "question": "Compute 3 + 4.", "answer": "7"}) + "\n")
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--benchmarks",
            f"organism,{bench}",
            "--limit",
            "2",
            "--k",
            "2",
            "--max-new-tokens",
            "4",
            "--out",
            str(out),
            "--backend",
            "hf",
        ]
    )
    assert code == 0
    table = pd.read_csv(out / "results.csv")
    assert set(table["benchmark"]) == {"organism", "bench"}
    assert set(table[table["benchmark"] == "bench"]["n"]) == {1}
    assert "avg@k" in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "already holds results" in capsys.readouterr().err  # issue 25.5: never replaced silently
    assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "other")]) == 2
    assert "model path not found" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "missing"), "--benchmarks", "math500,nope"]) == 2
    assert "unknown benchmark(s) ['nope']" in capsys.readouterr().err  # checked before loading the model


def test_results_are_written_as_each_benchmark_finishes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Issue 13.10: a failure in the second benchmark keeps the first one's results on disk."""
    script = {"two plus two": ["\\boxed{4}"] * 2}
    real = scripted_generate(script, [])

    def fail_on_second(model, tokenizer, prompts, **kwargs):
        if "three" in str(prompts[0]):
            raise RuntimeError("out of memory")
        return real(model, tokenizer, prompts, **kwargs)

    monkeypatch.setattr(corerl.generation, "generate", fail_on_second)
    first = datasets.Dataset.from_list([{"id": "a", "question": "two plus two", "answer": "4"}])
    second = datasets.Dataset.from_list([{"id": "b", "question": "three", "answer": "3"}])
    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate(None, ScriptedTokenizer(), {"one": first, "two": second}, k=2, out_dir=tmp_path / "out")
    written = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(written["benchmark"]) == {"one"}


def test_cli_eval_checks_its_output_before_loading_the_model(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "a-file"
    existing.write_text("x")
    # The model does not exist either: the output is checked first.
    assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(existing)]) == 2
    assert f"--out {existing} is an existing file" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(locked / "x")]) == 2
        assert "is not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)
