"""Evaluation on the benchmarks: avg@k, maj@k and pass@k at a temperature, graded by ``answers_match``.

For each question, ``k`` completions are sampled (:func:`corerl.generation.generate`), their final
answers extracted (last ``\\boxed{}``) and graded against the ground truth with ``answers_match``:
- ``avg@k``: the mean over questions of the share of correct completions, i.e. pass@1 averaged
  over k samples (the papers' "pass@1" / "avg@8");
- ``maj@k``: the share of questions whose majority answer (``corerl.voting.majority_vote``, the
  same vote as training) is correct;
- ``pass@k``: the share of questions with at least one correct completion;
- ``no_answer_rate``: the share of completions without a final answer;
- on the ``organism`` benchmark only, ``strategy/<name>``: the share of completions of each organism
  strategy (``corerl.arithmetic.strategies``: worked-correct, worked-wrong, the shortcuts, ...).
Greedy decoding (temperature 0) makes the k samples identical, so it is evaluated with k = 1.

The results are a tidy table (benchmark, model, metric, k, temperature, value, n), values as
fractions in [0, 1], ``n`` the number of questions; :meth:`Evaluation.save` writes it as CSV and
JSON next to the per-question samples. Benchmarks are names of ``corerl.data.load_dataset``, paths
to a dataset file in the package schema, or ``organism`` (the held-out split of the model
organism, in its own plain-text prompt format).

Departure from the papers: their evaluation harnesses grade with their own equivalence checkers
(math-verify or a sympy-based grader); this one uses ``answers_match`` for every benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corerl.answers import extract_answer
from corerl.config import MATH_PROMPT, resolve_prompt
from corerl.generation import Prompt
from corerl.voting import majority_vote

if TYPE_CHECKING:
    import datasets
    import pandas as pd

logger = logging.getLogger(__name__)

ORGANISM = "organism"
ORGANISM_TEST_SIZE = 200  # questions in the organism's held-out benchmark when no limit is given
# Evaluation per profile: benchmarks, questions per benchmark, samples per question, token cap.
EVALUATION: dict[str, dict[str, Any]] = {
    "tiny": {"benchmarks": ("organism",), "questions": 200, "k": 4, "max_new_tokens": 64, "batch_size": 64},
    # t4: 50 questions a benchmark, sized with corerl plan to fit the free tier (the paper: full sets).
    # max_batch_tokens bounds a generate call's fp16 KV cache: 49,152 positions x 114,688 B (28 layers x
    # 8 KV heads x 128 x 2 x 2 B, Qwen3-1.7B and Llama-3.2-3B alike) = 5.6 GB beside the 16-bit model
    # (3.4 GB; Llama-3.2-3B: 6.4 GB) on a 15 GB T4. That is 64 rows up to 256-token prompts; a batch of
    # longer prompts gets fewer rows (64 x (prompt + 512) unbounded: 8 GB at a 600-token prompt).
    "t4": {
        "benchmarks": ("math500", "gsm8k", "amc"),
        "questions": 50,
        "k": 4,
        "max_new_tokens": 512,
        "batch_size": 64,
        "max_batch_tokens": 64 * 768,
    },
    "a100": {
        "benchmarks": ("math500", "gsm8k", "amc"),
        "questions": 500,
        "k": 8,
        "max_new_tokens": 2048,
        "batch_size": 64,
    },
}
RESULT_COLUMNS: tuple[str, ...] = ("benchmark", "model", "metric", "k", "temperature", "value", "n")

Formatter = Callable[[str], Prompt]


def make_formatter(template: str = MATH_PROMPT, *, chat: bool = True) -> Formatter:
    """A question -> prompt function: ``template`` (or a name of ``corerl.config.PROMPT_TEMPLATES``;
    default: the Co-rewarding paper's instruction) with ``{question}`` replaced, as a user message when
    ``chat`` (rendered with the tokenizer's chat template at generation time).

    >>> make_formatter("Q: {question}", chat=False)("1+1?")
    'Q: 1+1?'
    >>> make_formatter("Q: {question}")("1+1?")
    [{'role': 'user', 'content': 'Q: 1+1?'}]
    """
    template = resolve_prompt(template)
    if "{question}" not in template:
        raise ValueError("prompt template must contain {question}")

    def format_question(question: str) -> Prompt:
        text = template.replace("{question}", question)
        return [{"role": "user", "content": text}] if chat else text

    return format_question


@dataclass(frozen=True)
class Grade:
    """One question's grading: which completions are correct and what the majority said."""

    correct: tuple[bool, ...]
    majority: str | None
    majority_correct: bool


def grade(answers: Sequence[str | None], ground_truth: str, grader: str = "math-verify") -> Grade:
    """Grade the k extracted answers of one question against its ground truth.

    ``grader``: a name of ``corerl.graders.GRADERS`` (math-verify, the default; hendrycks, the
    Co-rewarding paper's kind of string match).

    >>> grade(["1", "1", "2", None], "1")
    Grade(correct=(True, True, False, False), majority='1', majority_correct=True)
    """
    from corerl.graders import GRADERS

    if grader not in GRADERS:
        raise ValueError(f"unknown grader {grader!r} (choose from {', '.join(GRADERS)})")
    equivalent = GRADERS[grader]
    vote = majority_vote(answers)
    return Grade(
        correct=tuple(equivalent(answer, ground_truth) for answer in answers),
        majority=vote.label,
        majority_correct=equivalent(vote.label, ground_truth),
    )


def summarize(grades: Sequence[Grade], answers: Sequence[Sequence[str | None]]) -> dict[str, float]:
    """avg@k, maj@k, pass@k and no_answer_rate over questions (see the module docstring).

    >>> answers = [["1", "1", "2", None], ["3", "4", "4", "4"]]
    >>> summarize([grade(a, t) for a, t in zip(answers, ["1", "3"])], answers)
    {'avg@k': 0.375, 'maj@k': 0.5, 'pass@k': 1.0, 'no_answer_rate': 0.125}
    """
    if not grades:
        raise ValueError("nothing to summarize: no graded questions")
    completions = sum(len(group) for group in answers)
    return {
        "avg@k": sum(sum(g.correct) / len(g.correct) for g in grades) / len(grades),
        "maj@k": sum(g.majority_correct for g in grades) / len(grades),
        "pass@k": sum(any(g.correct) for g in grades) / len(grades),
        "no_answer_rate": sum(a is None for group in answers for a in group) / completions,
    }


def _organism_strategies(
    questions: Sequence[str], completions: Sequence[Sequence[str]], truths: Sequence[str]
) -> dict[str, float]:
    """The organism's strategy shares over every completion of every question (``strategy/<name>``)."""
    from corerl.arithmetic.strategies import strategy_metrics

    rows = [
        (q, text, t) for q, group, t in zip(questions, completions, truths, strict=True) for text in group
    ]
    return strategy_metrics(*(list(column) for column in zip(*rows, strict=True)))


def load_benchmark(name: str, *, limit: int | None = None) -> tuple[str, datasets.Dataset, Formatter | None]:
    """``(benchmark name, dataset, default formatter or None)`` for a benchmark name or file path.

    ``organism`` is the organism's held-out split (``limit`` questions, default
    ``ORGANISM_TEST_SIZE``) with its plain-text prompt; anything else goes through
    ``corerl.data.load_dataset`` and gets the default math prompt (formatter None).
    """
    if name == ORGANISM:
        from corerl.arithmetic.dataset import make_dataset
        from corerl.arithmetic.task import format_prompt

        return ORGANISM, make_dataset(limit or ORGANISM_TEST_SIZE, split="test"), format_prompt
    from corerl.data import load_dataset

    dataset = load_dataset(name, limit=limit)
    label = Path(name).stem if Path(name).suffix else name
    return label, dataset, None


@dataclass
class Evaluation:
    """The tidy results table and the per-question samples behind it."""

    table: pd.DataFrame
    samples: pd.DataFrame

    def save(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``results.csv``, ``results.json`` and ``samples.jsonl`` into ``out_dir``."""
        paths = save_results(self.table, out_dir)
        samples_path = Path(out_dir) / "samples.jsonl"
        self.samples.to_json(samples_path, orient="records", lines=True, force_ascii=False)
        return [*paths, samples_path]


def save_results(
    table: pd.DataFrame, out_dir: str | os.PathLike[str], *, name: str = "results"
) -> list[Path]:
    """Write a results table as ``out_dir/name.csv`` and ``out_dir/name.json`` (a list of records)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / f"{name}.csv", out_dir / f"{name}.json"
    table.to_csv(csv_path, index=False)
    json_path.write_text(json.dumps(table.to_dict("records"), indent=1) + "\n", encoding="utf-8")
    return [csv_path, json_path]


def evaluate(
    model: Any,
    tokenizer: Any,
    benchmarks: Sequence[str] | Mapping[str, datasets.Dataset],
    *,
    model_name: str = "model",
    k: int = 4,
    temperature: float = 0.8,
    top_p: float = 1.0,
    max_new_tokens: int = 1024,
    limit: int | None = None,
    prompt: str | Formatter | None = None,
    chat: bool | None = None,
    seed: int = 0,
    batch_size: int = 16,
    max_batch_tokens: int | None = None,
    progress: bool = True,
    grader: str = "math-verify",
    out_dir: str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Evaluate a loaded model on benchmarks (names/paths, or a mapping name -> Dataset).

    ``out_dir``: the results so far are written there after each benchmark (``Evaluation.save``).

    ``prompt``: None = each benchmark's default (the math instruction, or the organism's format);
    a template string with ``{question}``; or a function question -> prompt. ``chat`` (for
    templates): None = use the chat template when the tokenizer has one. ``limit`` keeps the
    first N questions of each benchmark. The same seed gives the same samples on CPU.
    ``batch_size`` and ``max_batch_tokens`` bound each HF generate call (``corerl.generation.generate``).
    """
    import pandas as pd

    from corerl.generation import generate

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature == 0 and k != 1:
        logger.info(
            "greedy decoding: evaluating with k = 1 instead of %d (the samples would be identical)", k
        )
        k = 1
    if chat is None:
        chat = bool(getattr(tokenizer, "chat_template", None))
    explicit = make_formatter(prompt, chat=chat) if isinstance(prompt, str) else prompt
    default = make_formatter(MATH_PROMPT, chat=chat)
    loaded: list[tuple[str, datasets.Dataset, Formatter | None]]
    if isinstance(benchmarks, Mapping):
        loaded = [
            (name, data.select(range(min(limit, len(data)))) if limit else data, None)
            for name, data in benchmarks.items()
        ]
    else:
        loaded = [load_benchmark(name, limit=limit) for name in benchmarks]
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for name, dataset, benchmark_formatter in loaded:
        missing = {"question", "answer"} - set(dataset.column_names)
        if missing:
            raise KeyError(
                f"benchmark {name!r} has no column(s) {sorted(missing)}; evaluation needs question and answer"
            )
        if len(dataset) == 0:
            raise ValueError(f"benchmark {name!r} has no questions")
        unanswered = sum(answer is None or not str(answer).strip() for answer in dataset["answer"])
        if unanswered:
            raise ValueError(f"benchmark {name!r}: {unanswered} question(s) have no ground-truth answer")
        formatter = explicit or benchmark_formatter or default
        questions, truths = list(dataset["question"]), [str(answer) for answer in dataset["answer"]]
        ids = list(dataset["id"]) if "id" in dataset.column_names else list(range(len(questions)))
        logger.info("evaluating %s on %s: %d questions x %d samples", model_name, name, len(questions), k)
        completions = generate(
            model,
            tokenizer,
            [formatter(question) for question in questions],
            n=k,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            progress=progress,
        )
        answers = [[extract_answer(text) for text in group] for group in completions]
        grades = [grade(group, truth, grader) for group, truth in zip(answers, truths, strict=True)]
        figures = summarize(grades, answers)
        if name == ORGANISM:
            figures.update(_organism_strategies(questions, completions, truths))
        for metric, value in figures.items():
            rows.append(
                {
                    "benchmark": name,
                    "model": model_name,
                    "metric": metric,
                    "k": k,
                    "temperature": temperature,
                    "value": value,
                    "n": len(questions),
                }
            )
        for qid, question, truth, group, extracted, graded in zip(
            ids, questions, truths, completions, answers, grades, strict=True
        ):
            samples.append(
                {
                    "benchmark": name,
                    "model": model_name,
                    "id": qid,
                    "question": question,
                    "ground_truth": truth,
                    "completions": group,
                    "answers": extracted,
                    "correct": list(graded.correct),
                    "majority": graded.majority,
                    "majority_correct": graded.majority_correct,
                }
            )
        if out_dir is not None:  # as it goes: a crash later keeps the benchmarks already done
            Evaluation(pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), pd.DataFrame(samples)).save(out_dir)
    return Evaluation(table=pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), samples=pd.DataFrame(samples))


def evaluate_model(
    name_or_path: str | os.PathLike[str],
    benchmarks: Sequence[str] | Mapping[str, datasets.Dataset],
    *,
    model_name: str | None = None,
    backend: str = "auto",
    device: str | None = None,
    base_model: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Evaluation:
    """Load a model (hub id, local path, checkpoint or PEFT adapter) and :func:`evaluate` it.

    One call for a before/after comparison: ``evaluate_model(base)`` then
    ``evaluate_model(run_dir / "checkpoint-N")``. ``model_name`` defaults to the path's last
    component; ``base_model`` is the model a PEFT adapter applies to (``corerl.generation.load_model``);
    ``options`` go to :func:`evaluate`.
    """
    from corerl.data import DATASETS
    from corerl.generation import load_model

    if not isinstance(benchmarks, Mapping):  # fail on a bad name before spending time on the model
        unknown = [
            name
            for name in benchmarks
            if name != ORGANISM and name not in DATASETS and not Path(name).exists()
        ]
        if unknown:
            raise FileNotFoundError(
                f"unknown benchmark(s) {unknown}: neither a dataset file nor one of "
                f"{', '.join([*DATASETS, ORGANISM])}"
            )
    model, tokenizer = load_model(name_or_path, device=device, backend=backend, base_model=base_model)  # type: ignore[arg-type]
    name = model_name or Path(str(name_or_path)).name or str(name_or_path)
    return evaluate(model, tokenizer, benchmarks, model_name=name, **options)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``corerl eval`` to the command line."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on benchmarks (avg@k, maj@k, pass@k)",
        description="Sample k completions per question and grade them; writes results.csv, "
        "results.json and samples.jsonl into --out.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="hub id, local model path, checkpoint, PEFT adapter, or a run directory (its final/; "
        "an early-stopped run: its best checkpoint)",
    )
    parser.add_argument(
        "--benchmarks",
        default="math500",
        help="comma-separated names (math500, gsm8k, amc, aime24, math-test, organism) "
        "or dataset file paths (default: math500)",
    )
    parser.add_argument("--k", type=int, default=4, help="samples per question (default 4)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--limit", type=int, default=None, help="first N questions of each benchmark")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per HF generate call")
    parser.add_argument("--name", default=None, help="model name in the results (default: path's last part)")
    parser.add_argument(
        "--prompt-template",
        default=None,
        help="prompt with {question}, or a name: co-rewarding (default: the Co-rewarding paper's "
        "instruction), qwen-math (Qwen-Math's); organism: its own format",
    )
    parser.add_argument("--no-chat", action="store_true", help="do not apply the tokenizer's chat template")
    parser.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto")
    parser.add_argument(
        "--grader",
        choices=("math-verify", "hendrycks"),
        default="math-verify",
        help="answer equivalence: math-verify (default, as SRT) or hendrycks (string match after "
        "Hendrycks-style normalisation, as the Co-rewarding paper grades MATH)",
    )
    parser.add_argument("--out", default="eval", help="output directory (default: ./eval)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the results already in --out (refused otherwise)"
    )
    parser.set_defaults(func=_run_eval)


RESULT_FILES = ("results.csv", "results.json", "samples.jsonl")


def check_output_dir(out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Create ``out_dir`` and check that it can be written and holds no earlier results (unless
    ``overwrite``), before any model loads (a ValueError naming it otherwise)."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is an existing file; give a directory")
    earlier = [name for name in RESULT_FILES if (path / name).exists()]
    if earlier and not overwrite:
        raise ValueError(
            f"--out {path} already holds results ({', '.join(earlier)}): choose another --out, "
            "or pass --overwrite to replace them"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".corerl-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out {path} is not writable ({error.strerror or error})") from None
    return path


def check_sampling_arguments(args: argparse.Namespace) -> None:
    """Refuse a sampling argument no run can use, naming it (before any model loads)."""
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise ValueError(f"--temperature must be a finite number >= 0 (0 = greedy), got {args.temperature}")
    if not (math.isfinite(args.top_p) and 0 < args.top_p <= 1):
        raise ValueError(f"--top-p must be in (0, 1], got {args.top_p}")
    for flag, value in (
        ("--k", args.k),
        ("--max-new-tokens", args.max_new_tokens),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1 (leave it out for every question), got {args.limit}")


def _run_eval(args: argparse.Namespace) -> int:
    benchmarks = [name.strip() for name in args.benchmarks.split(",") if name.strip()]
    if not benchmarks:
        raise ValueError("--benchmarks is empty")
    check_sampling_arguments(args)
    check_output_dir(args.out, overwrite=args.overwrite)
    from corerl.machine.rundir import evaluation_model

    model, name = Path(args.model), args.name
    is_model = any((model / file).exists() for file in ("config.json", "adapter_config.json"))
    if model.is_dir() and not is_model:  # a run directory: its final/ or, early-stopped, its best checkpoint
        model, name = evaluation_model(model), name or model.name
    if model.is_dir():  # a truncated or corrupt file is named here, not deep in a loader
        from corerl.machine.rundir import folder_problem

        problem = folder_problem(model)
        if problem:
            raise ValueError(f"--model {args.model}: {problem}")
    evaluation = evaluate_model(
        str(model),
        benchmarks,
        model_name=name,
        backend=args.backend,
        k=args.k,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        prompt=args.prompt_template,
        chat=False if args.no_chat else None,
        seed=args.seed,
        batch_size=args.batch_size,
        grader=args.grader,
        out_dir=args.out,
    )
    paths = evaluation.save(args.out)
    print(evaluation.table.to_string(index=False))
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0
