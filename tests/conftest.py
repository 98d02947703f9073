"""Shared test setup: no network, nothing written to $HOME, one tiny model built per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any test imports transformers/datasets: the hub is unreachable here and in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models run 10-40x faster on one thread than on two when the cores are shared (measured by
# benchmarks/evaluate.py --threads); subprocesses started by tests inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches (HF, Jupyter, IPython, corerl) go to a temporary folder, never to the user's home."""
    home = tmp_path_factory.mktemp("home")
    for variable, folder in {
        "HF_HOME": "hf",
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "matplotlib",
    }.items():
        os.environ[variable] = str(home / folder)
    os.environ.setdefault("CORERL_CACHE", str(home / "corerl-cache"))


@pytest.fixture(scope="session", autouse=True)
def _tiny_eval_every() -> Iterator[int]:
    """Tests train the tiny profile without its held-out evaluation (two or more evaluations of 200
    problems x 4 samples a run): off for the whole session, module-scoped runs included; yields the
    profile's own value for the tests marked ``heldout`` (tests/test_heldout.py covers the evaluation)."""
    from corerl.config import PROFILES

    shipped = PROFILES["tiny"]["eval_every"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROFILES["tiny"], "eval_every", 0)
        yield shipped


@pytest.fixture(autouse=True)
def _heldout_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _tiny_eval_every: int
) -> None:
    """A test marked ``heldout`` sees the tiny profile's held-out evaluation as shipped."""
    if request.node.get_closest_marker("heldout") is not None:
        from corerl.config import PROFILES

        monkeypatch.setitem(PROFILES["tiny"], "eval_every", _tiny_eval_every)


TINY_TEXTS = [
    "Question: Tom has 3 apples and buys 12 more. How many apples? Answer: 3 + 12 = 15. \\boxed{15}",
    "Question: What is 7 times 8? Answer: 7 * 8 = 56, so the answer is \\boxed{56}.",
    "Question: Compute 100 - 37. Answer: 100 - 37 = 63. \\boxed{63}",
] * 20


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Qwen3-config model with a locally trained tokenizer."""
    from corerl.organism.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), TINY_TEXTS, vocab_size=320, hidden_size=32)
