"""The gguf backend: refused when llama-cpp-python is absent; its generation loop run
against a stand-in ``llama_cpp`` module shaped like llama-cpp-python's ``Llama``
(tokenize, detokenize, token_eos, set_seed, generate), since the real package is not
installed here."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

import pytest

from linkstack.errors import ConfigError
from payloads.backends import GenerationParams, make_backend
from payloads.tokenizer import render_chat, user_prompt

SPECIAL = {"<|endoftext|>": 1000, "<|im_start|>": 1001, "<|im_end|>": 1002}


class FakeLlama:
    """Bytes are tokens 0..255, Qwen3's control tokens 1000..1002; ``generate`` yields
    the octets of ``script`` then, if ``stop``, <|im_end|>."""

    last: FakeLlama | None = None
    script = "héllo wörld 🛰".encode()
    stop = True

    def __init__(self, model_path: str, **kwargs) -> None:
        self.model_path = model_path
        self.kwargs = kwargs
        self.seed: int | None = None
        self.sampling: dict = {}
        self.closed = False
        FakeLlama.last = self

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        ids: list[int] = []
        i = 0
        while i < len(text):
            for name, token in SPECIAL.items():
                if special and text.startswith(name.encode(), i):
                    ids.append(token)
                    i += len(name)
                    break
            else:
                ids.append(text[i])
                i += 1
        return ids

    def detokenize(self, tokens, prev_tokens=None, special: bool = False) -> bytes:
        return bytes(t for t in tokens if t < 256)

    def token_eos(self) -> int:
        return SPECIAL["<|im_end|>"]

    def set_seed(self, seed: int) -> None:
        self.seed = seed

    def generate(self, tokens, **sampling):
        self.prompt = list(tokens)
        self.sampling = sampling
        yield from self.script
        if self.stop:
            yield SPECIAL["<|im_end|>"]
        yield from b"never reached"

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_llama_cpp(monkeypatch):
    module = types.ModuleType("llama_cpp")
    module.__spec__ = importlib.machinery.ModuleSpec("llama_cpp", None)
    module.Llama = FakeLlama
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    monkeypatch.setattr(FakeLlama, "stop", True)
    return module


@pytest.fixture
def gguf_file(tmp_path):
    path = tmp_path / "qwen3-0.6b-q8_0.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_refused_when_llama_cpp_is_not_installed(monkeypatch, gguf_file) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # absent, whatever is installed
    with pytest.raises(ConfigError) as info:
        make_backend(f"gguf:{gguf_file}")
    assert info.value.field == "llama_cpp"
    assert "not installed" in info.value.rule


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is not None, reason="llama-cpp-python is installed"
)
def test_refused_here(gguf_file) -> None:
    """This environment has no llama-cpp-python: the real refusal, nothing patched."""
    with pytest.raises(ConfigError) as info:
        make_backend(f"gguf:{gguf_file}")
    assert info.value.field == "llama_cpp"


def test_missing_file(fake_llama_cpp, tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(f"gguf:{tmp_path / 'none.gguf'}")
    assert info.value.field == "path"


def test_generates_streaming(fake_llama_cpp, gguf_file) -> None:
    backend = make_backend(f"gguf:{gguf_file}", n_ctx=4096, n_threads=2)
    backend.load()
    llm = FakeLlama.last
    assert llm.kwargs == {"n_ctx": 4096, "n_gpu_layers": 0, "verbose": False, "n_threads": 2}
    pieces: list[str] = []
    g = backend.generate("hi", GenerationParams(seed=9), on_text=pieces.append)
    assert g.text == "héllo wörld 🛰"
    assert pieces == list("héllo wörld 🛰")  # a character comes out once all its bytes are in
    assert g.finish_reason == "stop"
    assert g.completion_tokens == len(FakeLlama.script) + 1  # the stop token counts
    expected = render_chat(user_prompt("hi"), enable_thinking=False).encode()
    assert llm.prompt == llm.tokenize(expected, special=True)
    assert g.prompt_tokens == len(llm.prompt) == backend.count_tokens("hi")
    assert llm.seed == 9
    assert llm.sampling["temp"] == 0.0 and llm.sampling["top_k"] == 0
    assert (g.backend, g.model, g.random_weights) == ("gguf", str(gguf_file), False)
    backend.close()
    assert llm.closed


def test_sampling_parameters_and_thinking(fake_llama_cpp, gguf_file) -> None:
    backend = make_backend(f"gguf:{gguf_file}")
    backend.generate("hi", GenerationParams(temperature=0.7, top_p=0.8, thinking=True))
    llm = FakeLlama.last
    assert (llm.sampling["temp"], llm.sampling["top_p"], llm.sampling["min_p"]) == (0.7, 0.8, 0.0)
    assert llm.prompt == llm.tokenize(
        render_chat(user_prompt("hi"), enable_thinking=True).encode(), special=True
    )


def test_max_new_tokens(fake_llama_cpp, gguf_file) -> None:
    FakeLlama.stop = False
    g = make_backend(f"gguf:{gguf_file}").generate("hi", GenerationParams(max_new_tokens=4))
    assert g.completion_tokens == 4 and g.finish_reason == "length"
    assert g.text == "hél"  # h, é (2 octets), l


def test_invalid_utf8_is_replaced(fake_llama_cpp, gguf_file, monkeypatch) -> None:
    monkeypatch.setattr(FakeLlama, "script", b"a\xff\xe2\x82b\xf0")
    g = make_backend(f"gguf:{gguf_file}").generate("hi", GenerationParams())
    assert g.text == "a\ufffd\ufffdb\ufffd"


def test_prompt_limit(fake_llama_cpp, gguf_file) -> None:
    backend = make_backend(f"gguf:{gguf_file}", n_ctx=64)
    assert backend.max_prompt_tokens == 32
    with pytest.raises(ConfigError) as info:
        backend.generate("x" * 40, GenerationParams())
    assert info.value.field == "prompt"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_ctx": 0}, "n_ctx"),
        ({"n_threads": -1}, "n_threads"),
        ({"n_gpu_layers": -2}, "n_gpu_layers"),
        ({"n_ctx": 100, "max_prompt_tokens": 100}, "max_prompt_tokens"),
        ({"dtype": "bf16"}, "dtype"),
    ],
)
def test_bad_options(fake_llama_cpp, gguf_file, options, field) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(f"gguf:{gguf_file}", **options)
    assert info.value.field == field
