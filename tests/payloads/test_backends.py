"""The backend interface: GenerationParams, make_backend's specs, the chat format.

Nothing here loads a model; the backends themselves are tested in
test_backends_{tiny,hf,openai,gguf}.py.
"""

from __future__ import annotations

import math
import sys

import pytest

from linkstack.errors import ConfigError
from payloads.backends import (
    DEFAULT_HF_MODEL,
    Backend,
    Generation,
    GenerationParams,
    ModelUnavailableError,
    decode_rate,
    make_backend,
)
from payloads.tokenizer import EMPTY_THINK, render_chat, user_prompt

# -- GenerationParams ---------------------------------------------------------------


def test_params_defaults() -> None:
    p = GenerationParams()
    assert (p.max_new_tokens, p.temperature, p.top_p, p.thinking, p.seed) == (
        64,
        0.0,
        1.0,
        False,
        0,
    )
    assert p.greedy


def test_params_coerce_numbers_to_float() -> None:
    p = GenerationParams(temperature=1, top_p=1)
    assert isinstance(p.temperature, float) and isinstance(p.top_p, float)
    assert not p.greedy


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_new_tokens", 0),
        ("max_new_tokens", -5),
        ("max_new_tokens", 10**6),
        ("max_new_tokens", 3.0),
        ("max_new_tokens", True),
        ("temperature", -0.1),
        ("temperature", 2.5),
        ("temperature", math.nan),
        ("temperature", math.inf),
        ("temperature", "0.7"),
        ("top_p", 0.0),
        ("top_p", 1.01),
        ("top_p", None),
        ("thinking", "yes"),
        ("thinking", 1),
        ("seed", -1),
        ("seed", 2**32),
        ("seed", 1.5),
        ("seed", False),
    ],
)
def test_params_refuse_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        GenerationParams(**{field: value})
    assert info.value.where == "GenerationParams"
    assert info.value.field == field


def test_params_frozen() -> None:
    p = GenerationParams()
    with pytest.raises(AttributeError):
        p.seed = 3  # type: ignore[misc]


def test_decode_rate() -> None:
    assert decode_rate(11, 1.0, 2.0) == pytest.approx(10.0)
    assert decode_rate(1, 0.5, 0.5) == pytest.approx(2.0)
    assert decode_rate(0, 0.0, 0.0) == 0.0


def test_generation_is_a_frozen_record() -> None:
    g = Generation("x", 3, 1, "stop", 0.1, 0.1, 10.0, "tiny", "m", True)
    with pytest.raises(AttributeError):
        g.text = "y"  # type: ignore[misc]


def test_model_unavailable_error() -> None:
    err = ModelUnavailableError("openai", "server", "down")
    assert isinstance(err, RuntimeError)
    assert str(err) == "openai: server: down"


# -- make_backend ---------------------------------------------------------------------


def test_spec_tiny() -> None:
    b = make_backend("tiny")
    assert isinstance(b, Backend)
    assert (b.name, b.seed, b.random_weights) == ("tiny", 0, True)
    assert "random weights" in b.model
    b7 = make_backend("tiny:7")
    assert b7.seed == 7 and "seed 7" in b7.model
    assert make_backend(" TINY ").name == "tiny"


@pytest.mark.parametrize("spec", ["tiny:x", "tiny:-1", "tiny:", "tiny:1.5", f"tiny:{2**32}"])
def test_spec_tiny_bad_seed(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(spec)
    assert info.value.field == "seed"


def test_spec_hf_forms(tmp_path) -> None:
    assert make_backend("hf").model == DEFAULT_HF_MODEL
    hub = make_backend("hf:Qwen/Qwen3-0.6B", dtype="bf16", device="cpu")
    assert (hub.name, hub.model, hub.random_weights) == ("hf", "Qwen/Qwen3-0.6B", False)
    local = make_backend(f"hf:{tmp_path}", dtype="fp32")
    assert local.model == str(tmp_path)


def test_spec_hf_missing_directory(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(f"hf:{tmp_path / 'nowhere'}")
    assert info.value.field == "model"
    assert "no directory" in info.value.rule


@pytest.mark.parametrize(("option", "value"), [("dtype", "fp16"), ("device", "tpu")])
def test_spec_hf_bad_options(option: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend("hf:Qwen/Qwen3-0.6B", **{option: value})
    assert info.value.field == option


def test_spec_openai_forms() -> None:
    a = make_backend("openai:http://127.0.0.1:8000/v1", model="qwen3")
    assert (a.name, a.model, a.base_url) == ("openai", "qwen3", "http://127.0.0.1:8000/v1")
    b = make_backend("openai:http://127.0.0.1:8000/v1/#Qwen/Qwen3-0.6B")
    assert (b.model, b.base_url) == ("Qwen/Qwen3-0.6B", "http://127.0.0.1:8000/v1")
    c = make_backend("openai:https://example.org/v1")
    assert c.model == ""  # learnt from GET /models at load


@pytest.mark.parametrize(
    ("spec", "options", "field"),
    [
        ("openai:localhost:8000/v1", {}, "url"),
        ("openai:", {}, "url"),
        ("openai:http://h/v1#a", {"model": "b"}, "model"),
        ("openai:http://h/v1", {"timeout_s": 0}, "timeout_s"),
        ("openai:http://h/v1", {"max_prompt_tokens": 0}, "max_prompt_tokens"),
    ],
)
def test_spec_openai_bad(spec: str, options: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(spec, **options)
    assert info.value.field == field


def test_spec_gguf_without_llama_cpp(monkeypatch, tmp_path) -> None:
    # A None entry in sys.modules is what find_spec reports for a package that is absent.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(ConfigError) as info:
        make_backend(f"gguf:{path}")
    assert (info.value.where, info.value.field) == ("gguf", "llama_cpp")
    assert "not installed" in info.value.rule
    assert "pip install llama-cpp-python" in info.value.rule


@pytest.mark.parametrize(
    ("spec", "field"),
    [("", "spec"), ("   ", "spec"), ("nope:x", "kind"), ("vllm", "kind"), ("hf-tiny", "kind")],
)
def test_spec_bad_kind(spec: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(spec)
    assert info.value.field == field


def test_spec_not_a_string() -> None:
    with pytest.raises(ConfigError):
        make_backend(None)  # type: ignore[arg-type]


def test_spec_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        make_backend("tiny", dtype="bf16")
    assert info.value.field == "dtype"
    assert "max_prompt_tokens" in info.value.rule
    with pytest.raises(ConfigError) as info:
        make_backend("openai:http://h/v1", temperature=1.0)
    assert info.value.field == "temperature"


def test_spec_bad_max_prompt_tokens() -> None:
    with pytest.raises(ConfigError) as info:
        make_backend("tiny", max_prompt_tokens=0)
    assert info.value.field == "max_prompt_tokens"


def test_interface_imports_nothing_heavy() -> None:
    """The service can import the interface and make backends without paying for
    torch: the heavy packages come with load()."""
    import subprocess

    code = (
        "import sys, payloads.backends as b; b.make_backend('tiny'); b.make_backend('hf');"
        "print(sorted(m for m in ('torch', 'transformers', 'httpx', 'tokenizers')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the chat format ------------------------------------------------------------------


def test_render_chat_qwen3_format() -> None:
    off = render_chat(user_prompt("hi"), enable_thinking=False)
    assert off == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" + EMPTY_THINK
    on = render_chat(user_prompt("hi"), enable_thinking=True)
    assert on == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert render_chat(user_prompt("hi")) == on  # undefined flag: thinking on, as Qwen3
    assert render_chat(user_prompt("hi"), add_generation_prompt=False) == (
        "<|im_start|>user\nhi<|im_end|>\n"
    )


def test_render_chat_drops_previous_reasoning() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\na1"},
        {"role": "user", "content": "q2"},
    ]
    assert render_chat(messages, enable_thinking=False) == (
        "<|im_start|>system\nbe brief<|im_end|>\n"
        "<|im_start|>user\nq1<|im_end|>\n"
        "<|im_start|>assistant\na1<|im_end|>\n"
        "<|im_start|>user\nq2<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
