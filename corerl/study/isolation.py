"""Run a study's GPU work in a fresh child process, so that it does not depend on what the kernel
loaded before and gives all of its GPU memory back when it ends.

Why (read in the pinned wheels, unsloth 2026.10.9): the first ``FastLanguageModel.from_pretrained`` of
a Qwen3 model patches ``Qwen3Attention.forward``, ``Qwen3ForCausalLM.forward``,
``PeftModelForCausalLM.forward`` and ``Qwen3RotaryEmbedding`` at class level for the whole process
(``unsloth/models/qwen3.py:373-387``). A plain transformers model loaded afterwards in the same process
(the evaluation's, ``corerl.generation.load_model``) then decodes through Unsloth's
``Qwen3Attention_fast_forward_inference``, which reads ``self.rotary_emb`` (``qwen3.py:235``), an
attribute only Unsloth's own loader attaches (``llama.py:4516-4520``): an AttributeError at the first
decode step, and without it, a base model and a trained one evaluated through different code depending
on the kernel's history. A training run also leaves Unsloth's decode buffers and compile caches in the
process, which ``gc.collect()`` and ``torch.cuda.empty_cache()`` do not return.

So on a GPU profile (``Study(isolate=None)``: every profile but ``tiny``) each training run, each
evaluation and each sampling runs in its own spawned process (never forked: the kernel may hold a CUDA
context), one at a time; on the tiny profile they stay in the kernel, where nothing patches classes and
a process start (several seconds of imports) would cost more than most of the work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Result = TypeVar("Result")


def in_child_process(function: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Result:
    """``function(*args, **kwargs)`` in a fresh spawned process; its result or its exception comes back.

    ``function`` must be importable by name (a module-level function) and its arguments and result
    picklable. The child inherits the environment (``HF_HOME``, ``CUDA_VISIBLE_DEVICES``, ...), logs at
    this process's level and writes to the same stdout and stderr (progress bars); when it ends, the GPU
    memory it held is the driver's again.
    """
    import logging
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    level = logging.getLogger().getEffectiveLevel()
    with ProcessPoolExecutor(
        max_workers=1, mp_context=get_context("spawn"), initializer=_log_at, initargs=(level,)
    ) as pool:
        return pool.submit(function, *args, **kwargs).result()


def _log_at(level: int) -> None:
    """The child's logging: this level, to stderr (a spawned process starts with none configured)."""
    import logging

    logging.basicConfig(level=level, format="%(levelname)s:%(name)s: %(message)s")


def call(isolate: bool, function: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Result:
    """``function(*args, **kwargs)``: in a child process when ``isolate``, else in this one."""
    if isolate:
        return in_child_process(function, *args, **kwargs)
    return function(*args, **kwargs)


def isolates(profile: str, isolate: bool | None = None) -> bool:
    """Whether a study of ``profile`` runs its GPU work in child processes (``isolate`` None: every
    profile but ``tiny``)."""
    return profile != "tiny" if isolate is None else isolate
