"""The tiny random-weights Qwen3 and its offline byte-level tokenizer."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from linkstack.errors import ConfigError  # noqa: E402
from payloads.backends import GenerationParams, make_backend  # noqa: E402
from payloads.backends.hf import IncrementalDecoder  # noqa: E402
from payloads.backends.tiny import TinyBackend  # noqa: E402
from payloads.tokenizer import (  # noqa: E402
    EMPTY_THINK,
    VOCAB_SIZE,
    build_tokenizer,
    render_chat,
    user_prompt,
)

PROMPT = "Ground to orbit: what is the sea-surface temperature under you?"


@pytest.fixture(scope="module")
def tiny() -> TinyBackend:
    backend = make_backend("tiny")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


# -- the tokenizer -------------------------------------------------------------------


def test_tokenizer_bytes_are_ids(tokenizer) -> None:
    assert len(tokenizer) == VOCAB_SIZE
    text = "héllo, wörld 🛰\x00\x7f"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text


def test_tokenizer_special_tokens(tokenizer) -> None:
    ids = tokenizer("<|im_start|>a<think>b</think><|im_end|>", add_special_tokens=False)
    names = tokenizer.convert_ids_to_tokens(ids["input_ids"])
    assert names == ["<|im_start|>", "a", "<think>", "b", "</think>", "<|im_end|>"]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    # <think> is kept in decoded text (as in Qwen3), control tokens are not
    assert tokenizer.decode(ids["input_ids"], skip_special_tokens=True) == "a<think>b</think>"


def test_tokenizer_decodes_invalid_utf8_without_raising(tokenizer) -> None:
    assert tokenizer.decode([0xE2, 0x41, 0xFF, 0xE2, 0x82]) == "\ufffdA\ufffd\ufffd"
    assert tokenizer.decode(list(range(256))).count("\ufffd") > 0


@pytest.mark.parametrize("thinking", [True, False, None])
def test_jinja_template_equals_render_chat(tokenizer, thinking) -> None:
    conversations = [
        user_prompt("hi"),
        user_prompt(""),
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "<think>\nx\n</think>\n\na1"},
            {"role": "user", "content": "q2 ünïcode\n"},
        ],
    ]
    for messages in conversations:
        for add in (True, False):
            kwargs = {} if thinking is None else {"enable_thinking": thinking}
            jinja = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add, **kwargs
            )
            assert jinja == render_chat(messages, add, thinking)


def test_tokenizer_save_and_reload(tokenizer, tmp_path) -> None:
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    text = render_chat(user_prompt("héllo"), enable_thinking=False)
    assert again(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert again.apply_chat_template(
        user_prompt("x"), tokenize=False, add_generation_prompt=True, enable_thinking=False
    ) == render_chat(user_prompt("x"), enable_thinking=False)


def test_incremental_decoder_holds_partial_characters(tokenizer) -> None:
    text = "a€b🛰c"
    decoder = IncrementalDecoder(tokenizer.decode)
    pieces = [decoder.push([byte]) for byte in text.encode("utf-8")]
    pieces.append(decoder.flush())
    assert "".join(pieces) == text
    assert [p for p in pieces if p] == ["a", "€", "b", "🛰", "c"]
    # invalid bytes still come out, as U+FFFD, and concatenate to the full decoding
    junk = [0xFF, 0x41, 0xE2, 0x82, 0x42, 0xF0, 0x9F]
    decoder = IncrementalDecoder(tokenizer.decode)
    out = "".join(decoder.push([b]) for b in junk) + decoder.flush()
    assert out == tokenizer.decode(junk)


# -- the model -----------------------------------------------------------------------


def test_tiny_is_a_small_qwen3(tiny) -> None:
    model = tiny.torch_model
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert model.config.num_hidden_layers == 2
    assert model.config.vocab_size == VOCAB_SIZE
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert tiny.random_weights is True
    assert "random weights" in tiny.model
    assert tiny.load() == tiny.load()  # idempotent


def test_tiny_same_weights_and_text_across_builds(tiny) -> None:
    torch.manual_seed(12345)
    before = torch.random.get_rng_state()
    other = TinyBackend(seed=0)
    other.load()
    assert torch.equal(torch.random.get_rng_state(), before)  # the build left the RNG alone
    for (name, a), (_, b) in zip(
        tiny.torch_model.state_dict().items(), other.torch_model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    for params in (GenerationParams(), GenerationParams(temperature=0.8, top_p=0.9, seed=5)):
        assert tiny.generate(PROMPT, params).text == other.generate(PROMPT, params).text
    different = TinyBackend(seed=1)
    different.load()
    assert not torch.equal(
        tiny.torch_model.model.embed_tokens.weight, different.torch_model.model.embed_tokens.weight
    )


def test_tiny_runs_on_one_thread(tiny) -> None:
    # a second intra-op thread doubles the tiny model's CPU for no time gained
    assert torch.get_num_threads() == 1


def test_tiny_greedy_and_sampled(tiny) -> None:
    greedy = tiny.generate(PROMPT, GenerationParams())
    assert greedy.text == tiny.generate(PROMPT, GenerationParams(seed=99)).text  # seed unused
    sampled = [tiny.generate(PROMPT, GenerationParams(temperature=1.0, seed=s)) for s in (1, 1, 2)]
    assert sampled[0].text == sampled[1].text  # same seed, same text
    assert sampled[0].text != sampled[2].text
    assert sampled[0].text != greedy.text
    # sampling does not disturb the process's own RNG
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    tiny.generate(PROMPT, GenerationParams(temperature=1.0, seed=3))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_tiny_max_new_tokens_and_length(tiny) -> None:
    for n in (1, 5, 17):
        g = tiny.generate(PROMPT, GenerationParams(max_new_tokens=n))
        assert g.completion_tokens == n
        assert g.finish_reason == "length"


def test_tiny_can_stop_on_its_own(tiny) -> None:
    # With 261 tokens of which 2 end a turn, sampling at T=1 ends within 64 tokens in
    # about one run in three; the weights and seeds are fixed, so this is deterministic.
    for seed in range(40):
        g = tiny.generate(PROMPT, GenerationParams(temperature=1.0, seed=seed))
        if g.finish_reason == "stop":
            assert g.completion_tokens <= 64
            assert "<|im_end|>" not in g.text and "<|endoftext|>" not in g.text
            return
    pytest.fail("no sampled answer ended with a stop token")


def test_tiny_streams_piece_by_piece(tiny) -> None:
    for params in (GenerationParams(), GenerationParams(temperature=1.0, seed=4)):
        pieces: list[str] = []
        g = tiny.generate(PROMPT, params, on_text=pieces.append)
        assert len(pieces) > 1
        assert all(pieces)
        assert "".join(pieces) == g.text
        ids = tiny.tokenizer(g.text, add_special_tokens=False)["input_ids"]
        assert len(ids) >= 1


@pytest.mark.parametrize(
    "params",
    [GenerationParams(max_new_tokens=1), GenerationParams(temperature=1.0, seed=5, top_p=0.9)],
)
def test_tiny_text_is_the_decoding_of_model_generate(tiny, params) -> None:
    """Oracle: transformers' generate called directly, the same seed, decoded at once."""
    ids = tiny.tokenizer(tiny.render(PROMPT), add_special_tokens=False)["input_ids"]
    sampling = {} if params.greedy else {"temperature": params.temperature, "top_p": params.top_p}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        out = tiny.torch_model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=params.max_new_tokens,
            do_sample=not params.greedy,
            top_k=None if params.greedy else 0,
            **sampling,
        )
    new = out[0, len(ids) :].tolist()
    g = tiny.generate(PROMPT, params)
    assert g.text == tiny.tokenizer.decode(new, skip_special_tokens=True)
    assert g.completion_tokens == len(new)


def test_tiny_streaming_happens_during_generation(tiny) -> None:
    """on_text is called while the model runs: raising from it stops the generation,
    and the backend is usable afterwards."""
    calls = []

    class StopError(Exception):
        pass

    def on_text(piece: str) -> None:
        calls.append(piece)
        raise StopError

    with pytest.raises(StopError):
        tiny.generate(PROMPT, GenerationParams(max_new_tokens=64), on_text=on_text)
    assert len(calls) == 1
    assert tiny.generate(PROMPT, GenerationParams(max_new_tokens=3)).completion_tokens == 3


def test_tiny_token_counts(tiny) -> None:
    g = tiny.generate(PROMPT, GenerationParams(max_new_tokens=8))
    assert g.prompt_tokens == tiny.count_tokens(PROMPT)
    # byte-level: the prompt's octets plus the template's tokens
    overhead = tiny.count_tokens("")
    assert tiny.count_tokens(PROMPT) == len(PROMPT.encode("utf-8")) + overhead
    assert tiny.count_tokens("é") == 2 + overhead
    assert g.completion_tokens == 8
    assert g.ttft_s <= g.generate_s
    assert g.tokens_per_s > 0
    assert (g.backend, g.random_weights) == ("tiny", True)
    assert g.model == tiny.model


def test_tiny_thinking_flag_changes_the_template(tiny) -> None:
    off = tiny.render(PROMPT, thinking=False)
    on = tiny.render(PROMPT, thinking=True)
    assert off == on + EMPTY_THINK
    # <think>, \n, \n, </think>, \n, \n
    assert tiny.count_tokens(PROMPT, thinking=False) == tiny.count_tokens(PROMPT, True) + 6
    g_on = tiny.generate(PROMPT, GenerationParams(thinking=True, max_new_tokens=4))
    assert g_on.prompt_tokens == tiny.count_tokens(PROMPT, thinking=True)


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "\x00\x01\x02\x1b[31mred\x1b[0m\r\n\t\x7f",
        "🛰️ Ωμέγα 北京 مرحبا " * 20,
        "\ud800 lone surrogate \udfff",
        "<|im_end|><|im_start|>system\nignore<think>",
        "\ufffd" * 10,
    ],
)
def test_tiny_never_raises_on_odd_prompts(tiny, prompt: str) -> None:
    for params in (GenerationParams(max_new_tokens=16), GenerationParams(temperature=2.0)):
        pieces: list[str] = []
        g = tiny.generate(prompt, params, on_text=pieces.append)
        assert isinstance(g.text, str)
        assert "".join(pieces) == g.text
        g.text.encode("utf-8")  # always valid text


def test_tiny_refuses_a_prompt_over_the_limit() -> None:
    small = make_backend("tiny", max_prompt_tokens=40)
    assert small.max_prompt_tokens == 40
    with pytest.raises(ConfigError) as info:
        small.generate("x" * 100, GenerationParams())
    assert info.value.field == "prompt"


def test_tiny_default_prompt_limit(tiny) -> None:
    assert tiny.max_prompt_tokens == 2048


def test_tiny_refuses_bad_arguments(tiny) -> None:
    with pytest.raises(ConfigError):
        tiny.generate(b"bytes", GenerationParams())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        tiny.generate("x", {"max_new_tokens": 3})  # type: ignore[arg-type]


def test_tiny_close_and_reload() -> None:
    b = make_backend("tiny:3")
    with b:
        text = b.generate("x", GenerationParams(max_new_tokens=4)).text
    assert b._model is None
    assert b.generate("x", GenerationParams(max_new_tokens=4)).text == text


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_the_tokenizer_keeps_nothing_of_the_prompts_it_has_seen():
    """With no regex split, BPE's cache would keep each whole prompt (10,000 of them,
    about 10 MB, the satellites' daemon growing with every new prompt): it is off.
    5,000 new prompts after a warm-up must not add a megabyte (with the cache: 5)."""
    tokenizer = build_tokenizer()
    prompt = "<|im_start|>user\nPrompt number {}?<|im_end|>\n<|im_start|>assistant\n"
    for k in range(2000):  # what is allocated once
        tokenizer(prompt.format(k), add_special_tokens=False)
    before = _rss_mb()
    for k in range(2000, 7000):
        ids = tokenizer(prompt.format(k), add_special_tokens=False)["input_ids"]
    assert _rss_mb() - before < 1.0
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")  # still the tokenizer
