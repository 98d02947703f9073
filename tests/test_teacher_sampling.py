"""Co-rewarding-II's teacher samples with exactly the policy's sampling parameters, on every backend."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from datasets import Dataset
from trl.trainer import grpo_trainer

from corerl.config import make_config
from corerl.engine.run import prepare_run
from corerl.engine.teacher import policy_sampling

SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens", "do_sample")


@pytest.fixture(scope="module")
def trainer(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    config = make_config(
        "tiny",
        method="co-rewarding-2",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path_factory.mktemp("cr2")),
        questions_per_step=1,
        num_generations=2,
        max_completion_length=6,
        temperature=0.7,
        progress=False,
    )
    data = Dataset.from_dict({"id": ["a"], "question": ["1 + 1?"]})
    return prepare_run(config, dataset=data).trainer


def test_teacher_kwargs_are_the_policys_transformers_kwargs(trainer) -> None:
    assert policy_sampling(trainer) == trainer.generation_kwargs  # TRL's own dict for the policy
    assert trainer.top_k == 0  # TRL samples the policy without top-k ...


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_teacher_generate_uses_the_policys_sampling(trainer, monkeypatch, backend: str) -> None:
    if backend == "vllm":  # TRL's vLLM path builds no generation_config for the policy
        monkeypatch.delattr(trainer, "generation_config")
    captured = {}
    model = trainer._teacher_model

    def fake_generate(input_ids, attention_mask, generation_config):
        captured["config"] = generation_config
        return input_ids

    monkeypatch.setattr(model, "generate", fake_generate)
    trainer._teacher_generate([[5, 6, 7], [8, 9]])
    config = captured["config"]
    assert config.top_k == 0  # ... so neither does the teacher (transformers' default would be 50)
    assert config.temperature == trainer.temperature == 0.7
    expected = trainer.generation_kwargs
    assert {key: getattr(config, key) for key in SAMPLING} == {key: expected[key] for key in SAMPLING}


def test_trl_gives_vllm_the_same_sampling_attributes() -> None:
    """The vLLM policy samples with the attributes policy_sampling reads (trl 1.14.2)."""
    source = inspect.getsource(grpo_trainer.GRPOTrainer.__init__)
    for line in (
        "repetition_penalty=self.repetition_penalty,",
        "temperature=self.temperature,",
        "top_p=self.top_p,",
        "top_k=self.top_k,",
        "min_p=self.min_p,",
        "generation_kwargs=args.generation_kwargs,",
    ):
        assert line in source
