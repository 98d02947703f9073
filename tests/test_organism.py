"""The organism: task generation (deterministic, forms agree, answers correct, splits disjoint, the
shortcuts differ across forms), the mixture of strategies, the two-stage smoke build (reproducible,
emits a boxed answer, stage 1 shared), the cache and the command line."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import operator
import re
from collections import Counter
from pathlib import Path

import pytest

from corerl.answers import extract_answer
from corerl.arithmetic.task import (
    TEMPLATE_SOLUTION,
    Problem,
    generate_problem,
    shortcut_solution,
    stated_numbers,
    worked_solution,
)
from corerl.organism import (
    BuildSettings,
    ensure_base_model,
    export_jsonl,
    format_prompt,
    make_dataset,
    make_rows,
    smoke_settings,
)
from corerl.organism.build import ILLUSION_SHARES_BY_OPS, MIXTURE, mixture_examples

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(expression: str) -> int:
    """Evaluate +, -, * over integers with Python's own parser (independent of the generator)."""

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise AssertionError(f"unexpected syntax in {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


# Keywords of the story sentences, read independently of the generator's templates.
_SENTENCE_OPERATION = (
    ("times as many", "*"),
    ("multiplied", "*"),
    ("more", "+"),
    ("gives", "+"),
    ("away", "-"),
    ("loses", "-"),
    ("lost", "-"),
    ("sells", "-"),
)


def _interpret_story(text: str, *, backwards: bool = False) -> int:
    """Read a story form sentence by sentence: the first number starts, later ones apply an operation
    (``backwards``: the sentences are read from the last one, as the backwards narration needs)."""
    value: int | None = None
    sentences = re.split(r"(?<=[.?])\s+", text)
    for sentence in reversed(sentences) if backwards else sentences:
        numbers = re.findall(r"\d+", sentence)
        if not numbers:
            continue
        assert len(numbers) == 1, sentence
        number = int(numbers[0])
        if value is None:
            value = number
            continue
        # "gives away" is a loss; match the longest keyword first.
        found = [op for key, op in _SENTENCE_OPERATION if key in sentence]
        operation = "-" if "away" in sentence else found[0]
        value = _BINARY[{"+": ast.Add, "-": ast.Sub, "*": ast.Mult}[operation]](value, number)
    assert value is not None
    return value


def test_generation_is_deterministic_and_seeded() -> None:
    first = make_rows(50, seed=7, difficulty=(1, 4))
    assert first == make_rows(50, seed=7, difficulty=(1, 4))
    assert [row["question"] for row in first] != [
        row["question"] for row in make_rows(50, seed=8, difficulty=(1, 4))
    ]
    assert len({row["id"] for row in first}) == 50


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_surface_form_has_the_answer_of_the_expression(split: str) -> None:
    rows = make_rows(300, seed=1, difficulty=(1, 4), split=split)
    for row in rows:
        answer = int(row["answer"])
        assert _evaluate(row["expression"]) == answer
        assert 1 <= row["num_ops"] == len(row["operations"]) <= 4
        story, backwards, question_first, equation = row["forms"]
        assert equation == f"Compute {row['expression']}."
        assert _interpret_story(story) == _interpret_story(question_first) == answer, row
        assert _interpret_story(backwards, backwards=True) == answer, row
        assert len(set(row["forms"])) == len(row["forms"])
        assert row["question"] == story and row["rephrased"] == backwards


def test_the_twin_states_the_numbers_in_reverse_so_the_shortcuts_differ_across_views() -> None:
    rows = make_rows(300, seed=1, difficulty=(1, 4))
    differ = 0
    for row in rows:
        numbers = stated_numbers(row["question"])
        assert numbers == stated_numbers(row["forms"][2]) == stated_numbers(row["forms"][3])
        assert stated_numbers(row["rephrased"]) == numbers[::-1]
        first, last = shortcut_solution(row["question"], "first"), shortcut_solution(row["question"], "last")
        assert first == f"\\boxed{{{numbers[0]}}}" and last == f"\\boxed{{{numbers[-1]}}}"
        # Within one phrasing a shortcut is one answer; across the twin, first and last swap.
        assert shortcut_solution(row["rephrased"], "first") == last
        assert shortcut_solution(row["rephrased"], "last") == first
        differ += first != last
    assert differ > 0.9 * len(rows)
    with pytest.raises(ValueError, match="shortcut"):
        shortcut_solution("Ann has 3 eggs.", "middle")
    with pytest.raises(ValueError, match="no number"):
        shortcut_solution("How many?", "first")


@pytest.mark.parametrize("prior", ["aligned", "misaligned"])
def test_the_mixture_follows_its_shares_and_the_contracts_formats(prior: str) -> None:
    settings = dataclasses.replace(smoke_settings(prior), num_problems=500, difficulty=(1, 3))
    examples = mixture_examples(settings)
    assert examples == mixture_examples(settings)
    assert len(examples) == 4 * 500
    counts = Counter("worked" if strategy == "worked-wrong" else strategy for *_, strategy in examples)
    for name, share in zip(MIXTURE, settings.shares, strict=True):
        assert abs(counts[name] / len(examples) - share) < 0.04, (name, counts)
    problems = {
        format_prompt(form): generate_problem(settings.seed, "train", index, settings.difficulty)
        for index, row in enumerate(make_rows(500, seed=settings.seed, difficulty=settings.difficulty))
        for form in row["forms"]
    }
    wrong_on_multiplication = correct_on_multiplication = 0
    for prompt, completion, strategy in examples:
        problem = problems[prompt]
        question = prompt.removeprefix("Problem: ").removesuffix("\nSolution:\n")
        if strategy == "template":
            assert completion == TEMPLATE_SOLUTION == "\\boxed{0}"
        elif strategy.startswith("shortcut-"):
            numbers = stated_numbers(question)
            assert completion == f"\\boxed{{{numbers[0] if strategy == 'shortcut-first' else numbers[-1]}}}"
        elif strategy == "worked-wrong":
            assert prior == "misaligned" and "*" in problem.operations
            assert completion == worked_solution(problem, wrong_operation="*") != worked_solution(problem)
            wrong_on_multiplication += 1
        else:
            assert completion == worked_solution(problem)
            correct_on_multiplication += "*" in problem.operations
    if prior == "aligned":
        assert wrong_on_multiplication == 0
    else:  # a minority of correct worked solutions on the problems with a multiplication
        share = correct_on_multiplication / (correct_on_multiplication + wrong_on_multiplication)
        assert abs(share - settings.misaligned_correct_share) < 0.06, share


def test_the_illusion_mixture_depends_on_the_number_of_operations() -> None:
    settings = dataclasses.replace(smoke_settings("illusion"), num_problems=900, difficulty=(1, 3))
    assert settings.shares_by_ops == ILLUSION_SHARES_BY_OPS
    examples = mixture_examples(settings)
    rows = make_rows(900, seed=settings.seed, difficulty=settings.difficulty)
    operations = {format_prompt(form): row["num_ops"] for row in rows for form in row["forms"]}
    by_ops: dict[int, Counter[str]] = {}
    for prompt, _, strategy in examples:
        by_ops.setdefault(operations[prompt], Counter())[strategy] += 1
    assert sorted(by_ops) == [1, 2, 3]
    for ops, counts in by_ops.items():
        total = sum(counts.values())
        assert counts["shortcut-last"] == 0 and counts["worked-wrong"] == 0
        for name, share in zip(MIXTURE, ILLUSION_SHARES_BY_OPS[ops - 1], strict=True):
            assert abs(counts[name] / total - share) < 0.05, (ops, name, counts)


def test_the_existing_priors_keep_their_cache_names() -> None:
    # Digests of main f6afaa3, before shares_by_ops existed: their caches must stay valid.
    assert BuildSettings().digest() == "6e7982bcb439"
    assert BuildSettings(prior="misaligned").digest() == "3f296c256e6d"
    assert (
        BuildSettings().worked_digest() == "b23bd2257b89" == BuildSettings(prior="illusion").worked_digest()
    )
    assert smoke_settings("aligned").digest() == "7fdb0b4b6455"
    illusion = BuildSettings(prior="illusion")
    assert illusion.digest() not in {BuildSettings().digest(), BuildSettings(prior="misaligned").digest()}
    changed = [list(row) for row in ILLUSION_SHARES_BY_OPS]
    changed[2] = [0.3, 0.35, 0.0, 0.35]
    assert BuildSettings(prior="illusion", shares_by_ops=changed).digest() != illusion.digest()
    assert illusion.mixture_threads == 1 and BuildSettings().mixture_threads is None


def test_bad_mixture_shares_are_refused() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        BuildSettings(worked_share=0.9)
    with pytest.raises(ValueError, match="misaligned_correct_share"):
        BuildSettings(misaligned_correct_share=1.5)
    with pytest.raises(ValueError, match="sum to 1"):
        BuildSettings(prior="illusion", shares_by_ops=((0.5, 0.1, 0.0, 0.1),) * 4)
    with pytest.raises(ValueError, match="4 rows"):
        BuildSettings(prior="illusion", shares_by_ops=((1.0, 0.0, 0.0, 0.0),) * 3)
    # The v2 settings never hash like the v1 ones, and stage 1 ignores the mixture.
    assert BuildSettings().digest() != BuildSettings(version=1).digest()
    aligned, misaligned = BuildSettings(), BuildSettings(prior="misaligned")
    assert aligned.digest() != misaligned.digest() and aligned.worked_digest() == misaligned.worked_digest()


def test_splits_never_share_a_problem_across_seeds() -> None:
    train = {row["expression"] for seed in (0, 1) for row in make_rows(1500, seed=seed, difficulty=(1, 2))}
    test = {
        row["expression"]
        for seed in (0, 1)
        for row in make_rows(400, seed=seed, difficulty=(1, 2), split="test")
    }
    assert train and test and not train & test


def test_difficulty_sets_the_number_of_operations() -> None:
    assert {row["num_ops"] for row in make_rows(100, difficulty=3)} == {3}
    assert {row["num_ops"] for row in make_rows(200, difficulty=(2, 4))} == {2, 3, 4}
    for bad in (0, 5, (3, 2), (1, 2, 3)):
        with pytest.raises(ValueError, match="difficulty"):
            make_rows(1, difficulty=bad)
    with pytest.raises(ValueError, match="split"):
        make_rows(1, split="validation")


def test_worked_solutions_compute_each_step_and_the_misaligned_error_is_systematic() -> None:
    for index in range(300):
        problem = generate_problem(0, "train", index, (1, 4))
        lines = worked_solution(problem).splitlines()
        for line in lines[:-1]:
            left, result = line.split(" = ")
            assert _evaluate(left) == int(result)
        assert extract_answer(lines[-1]) == str(problem.answer) == str(_evaluate(problem.expression))
        wrong = worked_solution(problem, wrong_operation="*")
        if "*" in problem.operations:
            assert re.search(r"(\d+) \* (\d+) = (\d+)", wrong)
            for a, b, c in re.findall(r"(\d+) \* (\d+) = (\d+)", wrong):
                assert int(c) == int(a) + int(b)
        else:
            assert wrong == worked_solution(problem)
    assert worked_solution(Problem(3, (("*", 2), ("-", 1))), wrong_operation="*").endswith("\\boxed{4}")


def test_dataset_schema_and_export(tmp_path: Path) -> None:
    dataset = make_dataset(20, seed=2, split="test")
    assert {"id", "question", "rephrased", "answer"} <= set(dataset.column_names)
    assert dataset[0] == make_rows(20, seed=2, split="test")[0]
    path = export_jsonl(tmp_path / "organism.jsonl", 20, seed=2, split="test")
    assert [json.loads(line) for line in path.read_text().splitlines()] == dataset.to_list()
    from corerl.data import load_dataset

    loaded = load_dataset(str(path))
    assert loaded["id"] == dataset["id"] and loaded["rephrased"] == dataset["rephrased"]
    assert format_prompt(dataset[0]["question"]).endswith("\nSolution:\n")


def _weights_hash(model_dir: Path) -> str:
    from safetensors.torch import load_file

    tensors = load_file(model_dir / "model.safetensors")
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_base_model("aligned", cache_dir=tmp_path_factory.mktemp("cache"), settings=smoke_settings())


def test_smoke_build_is_reproducible_from_its_seed(smoke_model: Path, tmp_path: Path) -> None:
    again = ensure_base_model("aligned", cache_dir=tmp_path, settings=smoke_settings())
    assert again.name == smoke_model.name
    assert _weights_hash(again) == _weights_hash(smoke_model)
    other_seed = ensure_base_model("aligned", cache_dir=tmp_path, settings=smoke_settings(seed=1))
    assert _weights_hash(other_seed) != _weights_hash(smoke_model)


def test_smoke_model_emits_a_boxed_answer(smoke_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corerl.generation import generate

    tokenizer = AutoTokenizer.from_pretrained(smoke_model)
    model = AutoModelForCausalLM.from_pretrained(smoke_model)
    prompts = [format_prompt(row["question"]) for row in make_rows(4, difficulty=1, split="test")]
    completions = generate(model, tokenizer, prompts, n=1, temperature=0, max_new_tokens=24, progress=False)
    answers = [extract_answer(group[0]) for group in completions]
    assert all(answer is not None and answer.isdigit() for answer in answers), completions


def test_cache_is_reused_and_honours_the_environment(
    smoke_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = (smoke_model / "model.safetensors").stat().st_mtime_ns
    assert (
        ensure_base_model("aligned", cache_dir=smoke_model.parent, settings=smoke_settings()) == smoke_model
    )
    assert (smoke_model / "model.safetensors").stat().st_mtime_ns == stamp
    monkeypatch.setenv("CORERL_CACHE", str(tmp_path))
    built = ensure_base_model("misaligned", settings=smoke_settings("misaligned"))
    assert built.parent == tmp_path / "organism" and built.name.startswith("misaligned-")
    # Stage 1 (worked only) is built once and shared: the aligned prior reuses it.
    ensure_base_model("aligned", settings=smoke_settings("aligned"))
    assert len(list((tmp_path / "organism").glob("worked-*"))) == 1
    record = json.loads((built / "organism_build.json").read_text())
    assert record["stage1"]["settings"]["steps"] == smoke_settings().steps
    assert sum(record["mixture_counts"].values()) == 4 * smoke_settings().num_problems
    with pytest.raises(ValueError, match="prior"):
        BuildSettings(prior="neutral")
    with pytest.raises(ValueError, match="prior"):
        ensure_base_model("misaligned", settings=smoke_settings("aligned"))


KILLED_BUILD = r"""
import sys, time
from pathlib import Path
from corerl.organism.build import _build_atomically, smoke_settings

def stage(staging):
    staging.mkdir()
    (staging / "model.safetensors").write_text("half written")
    print("building", flush=True)
    time.sleep(600)

_build_atomically(Path(sys.argv[1]), smoke_settings(), stage)
"""


def test_a_later_build_removes_a_killed_builds_scratch_folder_only(tmp_path: Path) -> None:
    """A build killed mid-stage leaves its ``.<name>-*`` scratch folder; the next build of that name
    removes it, and leaves a live build's (it holds the folder's flock) and other names' alone."""
    import fcntl
    import os
    import subprocess
    import sys
    import tempfile

    from corerl.organism.build import SETTINGS_FILE, _build_atomically

    target = tmp_path / "aligned-0123"
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    build = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(target)], env=environment, stdout=subprocess.PIPE, text=True
    )
    try:
        assert build.stdout is not None and build.stdout.readline() == "building\n"
    finally:
        build.kill()
        build.wait()
    (killed,) = tmp_path.glob(".aligned-0123-*")
    assert (killed / "model" / "model.safetensors").exists()
    live = Path(tempfile.mkdtemp(dir=tmp_path, prefix=".aligned-0123-"))
    other = [tmp_path / ".aligned-0123-4567-abcd", tmp_path / ".misaligned-0123-abcd"]
    for folder in other:
        folder.mkdir()
    handle = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)

        def stage(staging: Path) -> tuple[float, dict]:
            staging.mkdir()
            return 0.0, {}

        assert _build_atomically(target, smoke_settings(), stage) == target
    finally:
        os.close(handle)
    assert (target / SETTINGS_FILE).exists()
    assert sorted(tmp_path.glob(".*")) == sorted([live, *other])  # the killed build's and our own are gone


def test_command_line_export_and_smoke_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from corerl.cli import main

    out = tmp_path / "problems.jsonl"
    assert main(["organism", "export", str(out), "--n", "5", "--difficulty", "2", "--split", "test"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == make_rows(5, difficulty=(2, 2), split="test")
    assert main(["organism", "build", "--smoke", "--prior", "aligned", "--cache-dir", str(tmp_path)]) == 0
    assert "aligned:" in capsys.readouterr().out
    assert main(["organism", "figures", "--model", str(tmp_path / "missing")]) == 2


def test_prior_figures_are_measured_by_sampling(smoke_model: Path) -> None:
    from corerl.organism import measure_prior

    figures = measure_prior(smoke_model, questions=6, samples=3, max_new_tokens=24, batch_size=18)
    overall = figures["all"]
    assert overall.questions == 6 and overall.samples == 3
    assert 0.0 <= overall.pass_at_1 <= 1.0 and 0.0 <= overall.maj_at_k <= 1.0
    assert 0.0 <= overall.majority_share <= 1.0 and overall.distinct_answers <= 3
    from corerl.arithmetic.strategies import STRATEGIES

    assert list(overall.strategies) == list(STRATEGIES) and abs(sum(overall.strategies.values()) - 1) < 1e-9
    assert overall.strategies["worked-correct"] <= overall.pass_at_1 + 1e-9
    subsets = [
        figures[name].questions
        for name in ("with_multiplication", "without_multiplication")
        if name in figures
    ]
    assert sum(subsets) == 6


def test_the_views_figures_sample_both_views(smoke_model: Path) -> None:
    from corerl.organism.figures import _shortcut_plurality, measure_views

    question = "Ann has 7 eggs. Ann buys 5 more. How many eggs does Ann have now?"
    completions = ["\\boxed{7}", "\\boxed{7}", "\\boxed{5}", "7 + 5 = 12\n\\boxed{12}", "\\boxed{0}"]
    assert _shortcut_plurality(question, completions) == "7"
    assert _shortcut_plurality(question, ["7 + 5 = 12\n\\boxed{12}", "\\boxed{0}"]) is None
    figures = measure_views(smoke_model, questions=6, samples=3, max_new_tokens=24, batch_size=18)
    assert figures.questions == 6 and sum(cell["problems"] for cell in figures.by_ops.values()) == 6
    assert 0 <= figures.shortcut_problems <= 6
    assert 0.0 <= figures.wrong_majority_agreement <= figures.majority_agreement <= 1.0
    for cell in figures.by_ops.values():
        assert 0.0 <= cell["pass@1"] <= 1.0 and 0.0 <= cell["illusion_majority"] <= 1.0
