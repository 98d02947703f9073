"""corerl.generation on a tiny offline model: shapes, seeding, greedy decoding, chat prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from corerl.generation import generate, is_vllm_engine, load_model, render_prompt


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    return load_model(tiny_model_dir, device="cpu")


PROMPTS = ["What is 2 + 2?", [{"role": "user", "content": "What is 3 + 4?"}], "x"]


def test_n_completions_per_prompt_and_no_prompt_echo(tiny):
    model, tokenizer = tiny
    out = generate(model, tokenizer, PROMPTS, n=3, max_new_tokens=8, progress=False)
    assert len(out) == len(PROMPTS)
    assert all(len(group) == 3 and all(isinstance(text, str) for text in group) for group in out)
    assert not any(text.startswith("What is 2 + 2?") for text in out[0])
    # max_new_tokens cuts the continuation: a 1-token greedy decode is a prefix of a 12-token one.
    short = generate(model, tokenizer, PROMPTS, temperature=0, max_new_tokens=1, progress=False)
    long = generate(model, tokenizer, PROMPTS, temperature=0, max_new_tokens=12, progress=False)
    for (one,), (twelve,) in zip(short, long, strict=True):
        assert twelve.startswith(one) and len(one) < len(twelve)


def test_same_seed_same_samples_other_seed_other_samples(tiny):
    model, tokenizer = tiny
    first = generate(model, tokenizer, PROMPTS, n=4, max_new_tokens=10, seed=3, progress=False)
    again = generate(model, tokenizer, PROMPTS, n=4, max_new_tokens=10, seed=3, progress=False)
    other = generate(model, tokenizer, PROMPTS, n=4, max_new_tokens=10, seed=4, progress=False)
    assert first == again
    assert first != other
    # A random model sampled at temperature 1 gives different completions within a group.
    assert len(set(first[0])) > 1


def test_greedy_copies_one_decode_and_is_padding_invariant(tiny):
    model, tokenizer = tiny
    batched = generate(model, tokenizer, PROMPTS, n=2, temperature=0, max_new_tokens=10, progress=False)
    assert all(group[0] == group[1] for group in batched)
    # Left padding: a prompt decoded alone gives what it gives inside a batch of longer prompts.
    for prompt, group in zip(PROMPTS, batched, strict=True):
        alone = generate(model, tokenizer, [prompt], temperature=0, max_new_tokens=10, progress=False)
        assert alone == [[group[0]]]


def test_max_batch_tokens_bounds_the_kv_positions_of_each_generate_call(tiny, monkeypatch):
    """issue 23.6: a generate call holds at most max_batch_tokens KV positions, rows x (padded prompt +
    new tokens); greedy results do not depend on the batching."""
    model, tokenizer = tiny
    shapes: list[tuple[int, int]] = []
    original = model.generate

    def recording(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", recording)
    prompts = ["What is 2 + 2? " * 4, "x", "What is 3 + 4?", "y"]
    free = generate(model, tokenizer, prompts, temperature=0, max_new_tokens=6, batch_size=8, progress=False)
    assert len(shapes) == 1
    shapes.clear()
    budget = 3 * (len(tokenizer("What is 3 + 4?")["input_ids"]) + 6)
    bounded = generate(
        model,
        tokenizer,
        prompts,
        temperature=0,
        max_new_tokens=6,
        batch_size=8,
        max_batch_tokens=budget,
        progress=False,
    )
    assert len(shapes) >= 2 and all(rows * (width + 6) <= budget or rows == 1 for rows, width in shapes)
    assert shapes[0][0] == 1  # the longest prompt alone is over the budget with any other row
    assert bounded == free
    with pytest.raises(ValueError, match="max_batch_tokens must be >= 1"):
        generate(model, tokenizer, prompts, max_batch_tokens=0, progress=False)


def test_message_list_is_rendered_with_the_chat_template(tiny):
    model, tokenizer = tiny
    messages = [{"role": "user", "content": "What is 3 + 4?"}]
    rendered = render_prompt(tokenizer, messages)
    assert rendered == "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n"
    from_messages = generate(model, tokenizer, [messages], temperature=0, max_new_tokens=6, progress=False)
    from_text = generate(model, tokenizer, [rendered], temperature=0, max_new_tokens=6, progress=False)
    assert from_messages == from_text


def test_training_mode_and_the_callers_rng_are_restored(tiny):
    import torch

    model, tokenizer = tiny
    model.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(model, tokenizer, ["a"], max_new_tokens=2, seed=7, progress=False)
    assert torch.equal(torch.rand(3), expected)  # an evaluation inside training leaves its RNG alone
    assert model.training
    model.eval()


def test_bad_input_is_reported(tiny, tiny_model_dir: Path):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="n must be"):
        generate(model, tokenizer, ["a"], n=0)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tokenizer, ["a"], temperature=-1)
    with pytest.raises(FileNotFoundError, match="model path not found"):
        load_model(tiny_model_dir / "missing")
    with pytest.raises(FileNotFoundError, match="model path not found"):
        load_model("runs/majority-vote-tiny-seed0/checkpoint-10")
    template, tokenizer.chat_template = tokenizer.chat_template, None
    try:
        with pytest.raises(ValueError, match="chat_template"):
            generate(model, tokenizer, [[{"role": "user", "content": "hi"}]])
    finally:
        tokenizer.chat_template = template
    assert generate(model, tokenizer, []) == []
    with pytest.raises(ValueError, match="tokenize to nothing"):
        generate(model, tokenizer, ["a", ""])
    assert not is_vllm_engine(model)


def test_peft_adapter_directory_loads_merged(tiny_model_dir: Path, tmp_path: Path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    model, tokenizer = load_model(tmp_path / "adapter", device="cpu")
    assert tokenizer.pad_token == "<|pad|>"
    ids = torch.tensor([tokenizer("What is 2 + 2?")["input_ids"]])
    with torch.no_grad():
        expected = peft_model(ids).logits
        merged = model(ids).logits
    assert torch.allclose(expected, merged, atol=1e-4)
