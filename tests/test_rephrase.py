"""corerl.rephrase: marker parsing, validation rules, resume, consistency, end-to-end with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corerl import rephrase
from corerl.cli import main as cli_main
from corerl.rephrase import (
    Candidate,
    OrganismRephraser,
    failed_rules,
    lost_numbers,
    numbers_in,
    parse_rephrase,
    read_jsonl_rows,
    rephrase_rows,
    rephrasers,
)

QUESTION = "Tom has 3 apples and buys 12 more. How many apples does he have?"
REWRITE = "A baker bakes 3 loaves in the morning and 12 more at noon. How many loaves are there in all?"


def block(rewrite: str, original: str = QUESTION) -> str:
    return f"### RESULT_START\nORIGINAL:\n{original}\nREWRITE:\n{rewrite}\n### RESULT_END"


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (block(REWRITE), REWRITE),
        (f"Sure, here is the rewrite.\n\n{block(REWRITE)}\n\nLet me know if you need more.", REWRITE),
        # A thinking model drafts a block inside <think>; the final block wins.
        (f"<think>Draft:\n{block('draft with 3 and 12')}\nBetter:</think>\n{block(REWRITE)}", REWRITE),
        # Labels skipped: the whole block is the rewrite.
        (f"### RESULT_START\n{REWRITE}\n### RESULT_END", REWRITE),
        # The rewrite itself mentions ORIGINAL: only the first REWRITE: label splits.
        (
            block("REWRITE: keep this ORIGINAL: text with 3 and 12"),
            "REWRITE: keep this ORIGINAL: text with 3 and 12",
        ),
        # The model repeats itself and the token limit cuts the second block: the complete one counts.
        (f"{block(REWRITE)}\n{block('A farm')[:40]}", REWRITE),
        # A stray start marker inside the block: the nearest one before the end marker opens it.
        (f"### RESULT_START\nnotes\n{block(REWRITE)}", REWRITE),
        # Markdown around the block and Windows line ends.
        (f"```\n{block(REWRITE)}\n```".replace("\n", "\r\n"), REWRITE),
    ],
)
def test_parse_real_looking_outputs(output: str, expected: str) -> None:
    candidate = parse_rephrase(output)
    assert candidate.parse_error is None
    assert candidate.rephrased == expected
    assert candidate.raw == output


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("A baker bakes 3 loaves and 12 more. How many?", "markers_missing"),
        ("", "markers_missing"),
        (block(REWRITE)[: -len("### RESULT_END") - 5], "markers_malformed"),  # truncated by max tokens
        (f"{REWRITE}\n### RESULT_END", "markers_malformed"),  # end marker only
        ("### RESULT_END\nfoo\n### RESULT_START\nbar", "markers_malformed"),  # out of order
        (f"### RESULT_START\nORIGINAL:\n{QUESTION}\n### RESULT_END", "markers_malformed"),  # no REWRITE
        (
            "<think>I will write ### RESULT_START ... ### RESULT_END</think> Here it is: A baker...",
            "markers_missing",
        ),
        (
            f"<think>Let me draft.\n{block(REWRITE)}\nHmm, the numbers",
            "markers_malformed",
        ),  # cut off thinking
    ],
)
def test_parse_broken_outputs(output: str, reason: str) -> None:
    candidate = parse_rephrase(output)
    assert candidate.rephrased is None
    assert candidate.parse_error == reason


def test_prompt_restates_the_paper_instruction() -> None:
    [message] = rephrase.build_rephrase_prompt(QUESTION)
    assert rephrase.without_thinking(None, [message]) == [message]  # no template: generate renders it
    content = message["content"]
    assert content.endswith(QUESTION)
    for required in (
        "### RESULT_START",
        "ORIGINAL:",
        "REWRITE:",
        "### RESULT_END",
        "final answer",
        "setting",
    ):
        assert required in content


# --------------------------------------------------------------------------- validation rules


def test_numbers_are_canonical() -> None:
    assert numbers_in(r"1,000 and 1{,}000 and 1,\!000") == {"1000": 3}
    assert numbers_in(r"\frac12 + \dfrac{1}{2}") == {"1": 2, "2": 2}
    assert numbers_in("2.50, 2.5, .5, 0.50 and 3.0") == {"2.5": 2, "0.5": 2, "3": 1}
    assert numbers_in("twenty-five, Twelve, the third, twice, a dozen") == {"25": 1, "12": 2, "3": 1, "2": 1}
    assert numbers_in("$a_{20} + a_1 + x^2$") == {"2": 1}  # subscripts are indices, exponents count
    assert numbers_in("[asy]draw((0,0)--(5,7));[/asy] side 4") == {"4": 1}  # figure code ignored


def test_lost_numbers_rule() -> None:
    assert lost_numbers(QUESTION, REWRITE) == []
    assert lost_numbers(QUESTION, REWRITE.replace("12", "twelve")) == []
    assert lost_numbers(QUESTION, REWRITE.replace("12", "21")) == ["12"]
    assert lost_numbers("Two years ago there were 20 homes.", "A decade ago there were 20 homes.") == ["2"]
    # 0 and 1 are stated implicitly all the time ("positive", "a unit square"): never required.
    assert (
        lost_numbers(
            "Find $x > 0$ with $x^2 = 1$ in a unit square of side 1.", "Find positive x, x squared one."
        )
        == []
    )
    # Set, not multiset: saying a repeated number once is fine.
    assert lost_numbers("Add 5 to 5.", "Double 5.") == []


@pytest.mark.parametrize(
    ("rewrite", "reasons"),
    [
        (REWRITE, []),
        ("   ", ["empty"]),
        ("<rewritten question>", ["placeholder", "numbers_lost"]),
        (QUESTION.upper(), ["identical"]),
        (QUESTION.replace("have?", "own?"), ["near_identical"]),
        (REWRITE.replace("12", "21"), ["numbers_lost"]),
        ("3 and 12?", ["too_short"]),
        (REWRITE + " It is a sunny day." * 40, ["too_long"]),
    ],
)
def test_each_rule(rewrite: str, reasons: list[str]) -> None:
    assert failed_rules(QUESTION, rewrite) == reasons


def test_figure_rule_needs_a_dangling_reference() -> None:
    original = "[asy]draw((0,0)--(3,4));[/asy] Find the length of the segment shown."
    assert failed_rules(original, "What is the length of the rope in the diagram below?") == [
        "figure_missing"
    ]
    assert "figure_missing" not in failed_rules(original, "A rope goes from (0,0) to (3,4). How long is it?")
    kept = "The segment below is drawn. [asy]draw((0,0)--(3,4));[/asy] How long is it, as shown?"
    assert "figure_missing" not in failed_rules(original, kept)


def test_unknown_rule_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown"):
        failed_rules(QUESTION, REWRITE, ["no_such_rule"])
    with pytest.raises(ValueError, match="--reject"):
        rephrase_rows(
            [{"id": "a", "question": QUESTION}],
            rephrase.existing_rephraser,
            tmp_path / "o.jsonl",
            reject=["nope"],
        )


# --------------------------------------------------------------------------- pipeline and resume


def make_rows(count: int) -> list[dict]:
    return [
        {
            "id": f"q{index}",
            "question": f"Tom has {index + 3} apples and buys 12 more. How many now?",
            "answer": str(index + 15),
        }
        for index in range(count)
    ]


class ScriptedRephraser:
    """Good rewrites for even rows, no markers for odd rows; can fail after some calls (a kill)."""

    def __init__(self, fail_after_calls: int | None = None) -> None:
        self.calls = 0
        self.seen: list[str] = []
        self.fail_after_calls = fail_after_calls

    def __call__(self, rows):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        candidates = []
        for row in rows:
            self.seen.append(row["id"])
            number = int(row["id"][1:])
            text = f"A farm holds {number + 3} hens and gets 12 more hens. How many hens are on the farm now?"
            candidates.append(parse_rephrase(block(text) if number % 2 == 0 else text))
        return candidates


def test_rows_split_into_kept_and_rejected(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    summary = rephrase_rows(make_rows(6), ScriptedRephraser(), out, batch_size=4, progress=False)
    kept = read_jsonl_rows(out)
    rejected = read_jsonl_rows(tmp_path / "out.rejected.jsonl")
    assert [row["id"] for row in kept] == ["q0", "q2", "q4"]
    assert all(row["rephrased"].startswith("A farm holds") and row["rephrase_flags"] == [] for row in kept)
    assert kept[0]["answer"] == "15"  # carried through untouched
    assert [row["reasons"] for row in rejected] == [["markers_missing"]] * 3
    assert rejected[0]["raw_output"].startswith("A farm holds") and rejected[0]["rephrased"] is None
    assert (summary.kept, summary.rejected, summary.reasons["markers_missing"]) == (3, 3, 3)
    with pytest.raises(ValueError, match="--resume"):
        rephrase_rows(make_rows(6), ScriptedRephraser(), out, progress=False)


def test_resume_after_kill_writes_every_row_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    rows = make_rows(10)
    with pytest.raises(KeyboardInterrupt):
        rephrase_rows(rows, ScriptedRephraser(fail_after_calls=2), out, batch_size=3, progress=False)
    written = read_jsonl_rows(out) + read_jsonl_rows(tmp_path / "out.rejected.jsonl")
    assert sorted(row["id"] for row in written) == [f"q{index}" for index in range(6)]
    # A kill in the middle of a write leaves a torn last line: resume cuts it and redoes that row.
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "q6", "question": "tor')
    second = ScriptedRephraser()
    summary = rephrase_rows(rows, second, out, batch_size=3, resume=True, progress=False)
    assert second.seen == [f"q{index}" for index in range(6, 10)]
    written = read_jsonl_rows(out) + read_jsonl_rows(tmp_path / "out.rejected.jsonl")
    assert sorted(row["id"] for row in written) == sorted(row["id"] for row in rows)
    assert summary.total == 10
    # Resuming a finished run does nothing.
    third = ScriptedRephraser()
    assert rephrase_rows(rows, third, out, resume=True, progress=False).total == 10
    assert third.seen == []


def test_parquet_output_and_flags(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    rows = [
        {"id": "a", "question": QUESTION, "rephrased": REWRITE.replace("12", "21")},
        {"id": "b", "question": QUESTION, "rephrased": "<rewritten question>"},
    ]
    out = tmp_path / "clean.parquet"
    summary = rephrase_rows(rows, rephrase.existing_rephraser, out, progress=False)
    table = pq.read_table(out).to_pylist()
    assert [row["id"] for row in table] == ["a"] and table[0]["rephrase_flags"] == ["numbers_lost"]
    assert not (tmp_path / "clean.partial.jsonl").exists()
    assert summary.flags["numbers_lost"] == 1 and summary.reasons["placeholder"] == 1
    assert rephrase_rows(rows, rephrase.existing_rephraser, out, resume=True, progress=False).total == 2
    # Rejecting on a flag rule is a choice.
    strict = rephrase_rows(
        rows,
        rephrase.existing_rephraser,
        tmp_path / "strict.jsonl",
        reject=[*rephrase.REJECT_RULES, "numbers_lost"],
        progress=False,
    )
    assert strict.kept == 0 and strict.reasons["numbers_lost"] == 2


# --------------------------------------------------------------------------- answer consistency


def test_consistency_filter_is_label_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = {
        "A": [r"\boxed{15}", r"\boxed{15}", r"\boxed{7}"],
        "B": [r"so \boxed{15.0}", "no idea", r"\boxed{15}"],
        "C": [r"\boxed{4}"] * 3,
        "D": [r"\boxed{5}", r"\boxed{5}", r"\boxed{4}"],
    }

    def fake_sample(model, tokenizer, prompts, *, n, **kwargs):
        assert n == 3
        return [scripted[prompt[0]["content"][0]] for prompt in prompts]

    monkeypatch.setattr(rephrasers, "sample_completions", fake_sample)
    check = rephrase.ConsistencyCheck(model=None, tokenizer=None, k=3)
    rows = [
        {"id": "agree", "question": "A: 3 + 12?", "rephrased": "B: 12 + 3, in hens?", "answer": "999"},
        {"id": "differ", "question": "C: 2 + 2?", "rephrased": "D: two plus two, in ducks?", "answer": "4"},
    ]
    summary = rephrase_rows(
        rows,
        rephrase.existing_rephraser,
        tmp_path / "o.jsonl",
        consistency=check,
        reject=["empty"],
        progress=False,
    )
    [kept] = read_jsonl_rows(tmp_path / "o.jsonl")
    [rejected] = read_jsonl_rows(tmp_path / "o.rejected.jsonl")
    # The kept pair agrees although its answer column (999) is wrong: the filter never reads it.
    assert kept["id"] == "agree" and kept["consistency"] == {
        "original": "15",
        "rephrased": "15",
        "agree": True,
    }
    assert rejected["id"] == "differ" and rejected["reasons"] == ["answers_disagree"]
    assert summary.agreement_rate == 0.5
    assert "1/2 pairs agree (50.0%)" in summary.format()


# --------------------------------------------------------------------------- organism templates


def test_organism_rephraser_through_the_cli(tmp_path: Path) -> None:
    from corerl.arithmetic.dataset import export_jsonl

    source = export_jsonl(tmp_path / "organism.jsonl", 8, seed=1)
    out = tmp_path / "organism_rephrased.jsonl"
    assert cli_main(["rephrase", "--input", str(source), "--out", str(out), "--model", "organism"]) == 0
    kept = read_jsonl_rows(out)
    rejected = read_jsonl_rows(tmp_path / "organism_rephrased.rejected.jsonl")
    # Templates are exact: nothing is rejected, the short equation form included (length rules skipped).
    assert len(kept) == 8 and rejected == []
    assert any(row["rephrased"].startswith("Compute ") for row in kept)
    for row in kept:
        assert row["rephrased"] in row["forms"] and row["rephrased"] != row["question"]
    # Deterministic in (seed, id), independent of batching.
    again = OrganismRephraser(seed=0)(list(reversed(kept)))
    assert [candidate.rephrased for candidate in reversed(again)] == [row["rephrased"] for row in kept]
    with pytest.raises(KeyError, match="forms"):
        OrganismRephraser()([{"id": "x", "question": "q"}])


# --------------------------------------------------------------------------- CLI with a tiny model


def write_input(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_cli_end_to_end_with_scripted_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_input(tmp_path / "in.jsonl", make_rows(4))
    calls = []

    def scripted(model, tokenizer, prompts, *, n, temperature, top_p, max_new_tokens, seed, batch_size):
        calls.append((type(model).__name__, n, temperature, top_p))
        outputs = []
        for prompt in prompts:
            question = prompt[0]["content"].rsplit("\n", 1)[-1]
            count = question.split(" ")[2]
            good = f"A farm holds {count} hens and gets 12 more hens. How many hens are on the farm now?"
            outputs.append([block(good) if count in {"3", "5"} else block("<rewritten question>")])
        return outputs

    monkeypatch.setattr(rephrasers, "sample_completions", scripted)
    out = tmp_path / "out.jsonl"
    code = cli_main(
        [
            "rephrase",
            "--input",
            str(source),
            "--out",
            str(out),
            "--model",
            str(tiny_model_dir),
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    assert calls == [("Qwen3ForCausalLM", 1, 0.7, 0.8)] * 2
    assert [row["id"] for row in read_jsonl_rows(out)] == ["q0", "q2"]
    assert [row["reasons"] for row in read_jsonl_rows(tmp_path / "out.rejected.jsonl")] == [
        ["placeholder"]
    ] * 2
    printed = capsys.readouterr().out
    assert "kept: 2  rejected: 2" in printed and "rejected by placeholder: 2" in printed


def test_cli_real_generation_with_tiny_model_records_rejections(tmp_path: Path, tiny_model_dir: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", make_rows(2))
    out = tmp_path / "out.jsonl"
    code = cli_main(
        [
            "rephrase",
            "--input",
            str(source),
            "--out",
            str(out),
            "--model",
            str(tiny_model_dir),
            "--max-new-tokens",
            "6",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    rejected = read_jsonl_rows(tmp_path / "out.rejected.jsonl")
    # A random tiny model writes junk: both rows are rejected, with the junk kept for inspection.
    assert read_jsonl_rows(out) == []
    assert [row["id"] for row in rejected] == ["q0", "q1"]
    assert all(
        row["reasons"] == ["markers_missing"] and isinstance(row["raw_output"], str) for row in rejected
    )


def test_cli_check_existing_on_shipped_math(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "math.jsonl"
    assert (
        cli_main(
            ["rephrase", "--input", "math-train", "--limit", "200", "--out", str(out), "--check-existing"]
        )
        == 0
    )
    summary = rephrase.summarize(read_jsonl_rows(out), read_jsonl_rows(tmp_path / "math.rejected.jsonl"))
    assert summary.total == 200
    assert summary.reasons["placeholder"] >= 1  # the shipped set has echoed '<rewritten question>' rows
    assert "rejected by placeholder" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_input(tmp_path / "in.jsonl", [{"id": "a", "question": "Q"}])
    assert (
        cli_main(["rephrase", "--input", str(source), "--out", str(tmp_path / "o.jsonl"), "--check-existing"])
        == 2
    )
    assert "'rephrased' column" in capsys.readouterr().err
    assert (
        cli_main(["rephrase", "--input", str(source), "--out", str(tmp_path / "o.csv"), "--check-existing"])
        == 2
    )
    assert (
        cli_main(
            [
                "rephrase",
                "--input",
                str(tmp_path / "missing.jsonl"),
                "--out",
                str(tmp_path / "o.jsonl"),
                "--check-existing",
            ]
        )
        == 2
    )


def test_candidate_is_plain_data() -> None:
    assert Candidate("x", "x") == Candidate("x", "x", None)


def test_cli_reads_the_jsonl_that_load_dataset_reads(tmp_path: Path) -> None:
    """Issue 13.10: no final newline and a blank line are valid JSONL for load_dataset, so here too."""
    source = tmp_path / "in.jsonl"
    rows = [
        {"id": "a", "question": "Q1", "rephrased": "R1"},
        {"id": "b", "question": "Q2", "rephrased": "R2"},
    ]
    source.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]))
    out = tmp_path / "out.jsonl"
    assert cli_main(["rephrase", "--input", str(source), "--out", str(out), "--check-existing"]) == 0
    written = read_jsonl_rows(out) + read_jsonl_rows(tmp_path / "out.rejected.jsonl")
    assert sorted(row["id"] for row in written) == ["a", "b"]


def test_cli_refuses_out_equal_to_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_input(tmp_path / "in.jsonl", [{"id": "a", "question": "Q", "rephrased": "R"}])
    before = source.read_bytes()
    for spelling in (str(source), f"{tmp_path}/./in.jsonl"):
        command = ["rephrase", "--input", str(source), "--out", spelling, "--check-existing", "--resume"]
        assert cli_main(command) == 2
        assert "is the --input file" in capsys.readouterr().err
    assert source.read_bytes() == before
