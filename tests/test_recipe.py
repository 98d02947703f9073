"""The recipe around the rewards (issue 12): one setup for every method, comparable to the papers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from corerl.config import GPU_BETA, PROFILES, STUDY_METHODS, load_config, make_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_method_gets_the_profiles_kl_setting(profile: str) -> None:
    betas = {method: make_config(profile, method=method).beta for method in STUDY_METHODS}
    assert len(set(betas.values())) == 1, betas


def test_gpu_profiles_use_the_papers_kl() -> None:
    assert GPU_BETA == 0.005  # Co-rewarding App. C.2 / Co-rewarding-I scripts: low-variance KL 0.005
    assert make_config("t4").beta == make_config("a100").beta == GPU_BETA


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_configs_keep_the_profiles_kl_setting(path: Path) -> None:
    values = yaml.safe_load(path.read_text())
    assert "beta" not in values, f"{path.name} sets beta per method"
    config = load_config(path)
    assert config.beta == make_config(config.profile).beta


def test_notebooks_never_set_beta() -> None:
    tree = ast.parse((ROOT / "notebooks" / "make_notebooks.py").read_text())
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert not [text for text in strings if "beta=" in text.replace(" ", "") or '"beta"' in text]


def test_study_refuses_a_per_run_beta(tmp_path: Path) -> None:
    from corerl.study import Study

    study = Study(profile="tiny", root=tmp_path, model=str(tmp_path / "model"))
    with pytest.raises(ValueError, match="beta is one setting per profile"):
        study.config("co-rewarding-2", beta=0.001)
    shared = Study(profile="tiny", root=tmp_path, model=str(tmp_path / "model"), overrides={"beta": 0.01})
    assert {shared.config(method).beta for method in STUDY_METHODS} == {0.01}


def test_gpu_profiles_prompt_with_the_co_rewarding_papers_wording() -> None:
    from corerl.evaluate import make_formatter

    paper = "Let's think step by step and output the final answer within \\boxed{}."
    for profile in ("t4", "a100"):
        config = make_config(profile)
        assert config.chat and config.format_prompt("What is 1+1?") == f"What is 1+1? {paper}"
    assert make_formatter(chat=True)("Q")[0]["content"] == f"Q {paper}"  # evaluation's default too


def test_qwen_math_wording_is_a_named_option() -> None:
    from corerl.config import QWEN_MATH_PROMPT, from_yaml, to_yaml
    from corerl.evaluate import make_formatter

    config = make_config("t4", prompt_template="qwen-math")
    assert config.prompt_template == QWEN_MATH_PROMPT
    assert config.format_prompt("Q").endswith(
        "Please reason step by step, and put your final answer within \\boxed{}."
    )
    assert from_yaml(to_yaml(config)) == config
    assert make_formatter("qwen-math", chat=False)("Q") == config.format_prompt("Q")
