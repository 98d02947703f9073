"""The lean sampler reproduces HF ``generate`` and the HF forward pass (corerl.engine.decoding)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from corerl.engine.decoding import _decode, _draw, _forward, _Weights, plain_sampling, sample, supports
from corerl.tiny import build_tiny_model

TEXTS = [
    f"Problem: {a} + {b} = ?\nSolution:\n{a} + {b} = {a + b}\n\\boxed{{{a + b}}}"
    for a in range(12)
    for b in range(5)
]


def _load(path: Path):
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _prompts(tokenizer) -> list[list[int]]:
    texts = ["1 + 2 =", "Problem: 12 + 30 = ?\nSolution:\n", "7", "boxed 3 + 4 + 5 + 6 + 7 ="]
    return [tokenizer(text)["input_ids"] for text in texts for _ in range(3)]


def _hf_generate(model, tokenizer, prompts, *, max_new_tokens, temperature, stops) -> list[list[int]]:
    """TRL 1.14.2's HF branch of ``_generate_single_turn``: left padding, generate, cut after the first stop."""
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        mask[row, width - len(ids) :] = 1
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        top_p=1.0,
        top_k=0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stops,
        disable_compile=True,
    )
    with torch.no_grad():
        output = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
    completions = []
    for row in output[:, width:].tolist():
        end = next((i for i, token in enumerate(row) if token in stops), len(row) - 1)
        completions.append(row[: end + 1])
    return completions


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sample_draws_the_tokens_generate_draws(tiny_model_dir: Path, temperature: float) -> None:
    model, tokenizer = _load(tiny_model_dir)
    assert supports(model)
    prompts = _prompts(tokenizer)
    # a frequent token as a second stop, so that some rows stop early and are padded afterwards
    stops = [tokenizer.eos_token_id, tokenizer("+")["input_ids"][0]]
    for seed in range(3):
        torch.manual_seed(seed)
        expected = _hf_generate(
            model, tokenizer, prompts, max_new_tokens=12, temperature=temperature, stops=stops
        )
        torch.manual_seed(seed)
        drawn = sample(
            model,
            prompts,
            max_new_tokens=12,
            temperature=temperature,
            stop_ids=stops,
            pad_id=tokenizer.pad_token_id,
        )
        assert drawn == expected
    assert any(len(ids) < 12 for ids in drawn) and any(len(ids) == 12 for ids in drawn)


def test_forward_matches_the_hf_forward_pass(tmp_path: Path) -> None:
    """Three layers, left-padded prompts of several lengths: the last-position logits."""
    path = build_tiny_model(
        tmp_path / "gqa", TEXTS, vocab_size=320, hidden_size=48, num_layers=3, num_heads=4
    )
    model, tokenizer = _load(path)
    prompts = _prompts(tokenizer)
    width = max(len(ids) for ids in prompts)
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        weights = _Weights(model)
        shape = (len(prompts), weights.kv_heads, width, weights.head_dim)
        keys = [torch.empty(shape) for _ in weights.layers]
        values = [torch.empty(shape) for _ in weights.layers]
        real = mask.bool()
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        prefill = causal[None] & (real[:, None, :] | torch.eye(width, dtype=torch.bool)[None])
        logits = _forward(
            weights, ids, weights.rotary(positions, torch.float32), prefill[:, None], keys, values, 0
        )
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_decoding_step_is_the_forward_pass_bit_for_bit(tmp_path: Path) -> None:
    """_decode (one token a row, the sampler's inner loop) computes _forward's logits and cache exactly."""
    path = build_tiny_model(
        tmp_path / "decode", TEXTS, vocab_size=320, hidden_size=48, num_layers=3, num_heads=4
    )
    model, _ = _load(path)
    weights = _Weights(model)
    generator = torch.Generator().manual_seed(0)
    rows, total, position = 7, 40, 29
    shape = (rows, weights.kv_heads, total, weights.head_dim)
    keys = [torch.randn(shape, generator=generator) for _ in weights.layers]
    values = [torch.randn(shape, generator=generator) for _ in weights.layers]
    decoded_keys, decoded_values = [k.clone() for k in keys], [v.clone() for v in values]
    real = torch.rand((rows, total), generator=generator) > 0.3
    real[:, position] = True
    tokens = torch.randint(3, weights.embed.shape[0], (rows,), generator=generator)
    cos, sin = weights.rotary(torch.randint(0, 30, (rows, 1), generator=generator), torch.float32)
    additive = torch.zeros((rows, 1, 1, total)).masked_fill(~real[:, None, None], float("-inf"))
    with torch.no_grad():
        expected = _forward(
            weights, tokens[:, None], (cos, sin), real[:, None, None, : position + 1], keys, values, position
        )
        logits = _decode(
            weights, tokens, cos, sin, additive[..., : position + 1], decoded_keys, decoded_values, position
        )
    assert torch.equal(logits, expected)
    assert all(torch.equal(a, b) for a, b in zip(keys + values, decoded_keys + decoded_values, strict=True))


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_draw_is_torch_multinomial_on_the_whole_batch(temperature: float) -> None:
    """The live rows' draws are multinomial's for those rows, and the generator ends where it ends."""
    logits = 3 * torch.randn((16, 50), generator=torch.Generator().manual_seed(1))
    rows = torch.tensor([0, 3, 4, 9, 15])
    for seed in range(5):
        torch.manual_seed(seed)
        expected = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).squeeze(1)
        after = torch.rand(3)
        torch.manual_seed(seed)
        assert torch.equal(_draw(logits, temperature, 16, None), expected)
        assert torch.equal(torch.rand(3), after)
        torch.manual_seed(seed)
        assert torch.equal(_draw(logits[rows], temperature, 16, rows), expected[rows])
        assert torch.equal(torch.rand(3), after)


def test_supports_only_what_it_reproduces(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, _ = _load(tiny_model_dir)
    assert supports(model)
    llama, _ = _load(
        build_tiny_model(tmp_path / "llama", TEXTS, vocab_size=320, hidden_size=32, arch="llama")
    )
    assert not supports(llama)
    from peft import LoraConfig

    model.add_adapter(LoraConfig(r=2, target_modules=["q_proj"]), adapter_name="teacher")
    assert not supports(model)  # LoRA layers would be skipped by the plain weights
    assert plain_sampling(1.0, 1.0, 0, None, 1.0)
    assert not plain_sampling(1.0, 1.0, 20, None, 1.0)
    assert not plain_sampling(0.0, 1.0, 0, None, 1.0)


def test_evaluation_samples_are_those_of_generate(tiny_model_dir: Path, monkeypatch) -> None:
    """corerl.generation.generate takes the lean path on the tiny model and returns generate's texts."""
    from corerl import generation
    from corerl.engine import decoding

    model, tokenizer = _load(tiny_model_dir)
    prompts = ["1 + 2 =", "Problem: 12 + 30 = ?\nSolution:\n", "7"]
    calls = []
    monkeypatch.setattr(decoding, "sample", lambda *a, **k: calls.append(1) or sample(*a, **k))
    lean = generation.generate(
        model, tokenizer, prompts, n=4, temperature=0.8, max_new_tokens=10, batch_size=5
    )
    assert calls
    monkeypatch.setattr(decoding, "supports", lambda model: False)
    assert (
        generation.generate(model, tokenizer, prompts, n=4, temperature=0.8, max_new_tokens=10, batch_size=5)
        == lean
    )
