"""The onboard model: one interface, four backends.

A satellite answers an inference query with a small Qwen3 model. Which model, and
how it runs, is a backend chosen by a spec string:

- ``tiny`` / ``tiny:SEED``: a two-layer Qwen3-architecture model with random weights
  built from a fixed seed and a byte-level tokenizer; needs no download, so the demo
  and the tests run offline. Its answers are noise, and every ``Generation`` says so
  (``random_weights=True``).
- ``hf:Qwen/Qwen3-0.6B`` (the default id) or ``hf:/local/dir``: a real checkpoint
  through transformers, on CPU or GPU, in bf16 or fp32.
- ``openai:http://host:port/v1`` (``#model`` or ``model=`` names the served model):
  any OpenAI-compatible server (vLLM, llama.cpp's llama-server, Ollama), streamed.
- ``gguf:/path/model.gguf``: a GGUF file through llama-cpp-python, when installed.

Every backend streams: ``generate`` calls ``on_text(piece)`` as text is produced and
the pieces concatenate to ``Generation.text``. Times in a ``Generation`` are compute
times from a ``time.perf_counter`` stopwatch (or the server's own timings), never the
emulator's clock: the service places them on the emulated timeline itself.

This module imports nothing heavy: torch, transformers, httpx and llama_cpp are
imported by the backend that needs them, when it is made.
"""

# Heavy packages (torch, transformers, llama_cpp) are imported when a backend is
# made or loaded, never when payloads.backends is imported.

from __future__ import annotations

import importlib.util
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from linkstack.errors import ConfigError, FieldError

__all__ = [
    "DEFAULT_HF_MODEL",
    "KINDS",
    "Backend",
    "ConfigError",
    "Generation",
    "GenerationParams",
    "ModelUnavailableError",
    "make_backend",
]

KINDS = ("tiny", "hf", "openai", "gguf")
DEFAULT_HF_MODEL = "Qwen/Qwen3-0.6B"
MAX_NEW_TOKENS = 32768  # Qwen3's longest recommended output
MAX_SEED = 2**32 - 1  # llama.cpp takes a 32-bit seed; torch and OpenAI servers take more
MAX_TEMPERATURE = 2.0  # the OpenAI API's range, so that every backend accepts the same


class ModelUnavailableError(FieldError, RuntimeError):
    """The model cannot answer now: its server is down, the connection broke, the
    server failed. Raised by ``generate``; the service turns it (and a ``ConfigError``
    from ``load``) into "model unavailable". Names the backend, what failed and why."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class GenerationParams:
    """What to generate. Same seed and parameters give the same text (per backend)."""

    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    thinking: bool = False  # Qwen3's chat-template enable_thinking flag; off unless asked
    seed: int = 0  # sampling is reproducible: same seed + params -> same text

    def __post_init__(self) -> None:
        where = "GenerationParams"
        if not _is_int(self.max_new_tokens) or not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise ConfigError(
                where,
                "max_new_tokens",
                f"must be an integer in 1..{MAX_NEW_TOKENS}, got {self.max_new_tokens!r}",
            )
        if not _is_real(self.temperature) or not 0.0 <= self.temperature <= MAX_TEMPERATURE:
            raise ConfigError(
                where,
                "temperature",
                f"must be a number in 0..{MAX_TEMPERATURE:g} (0 = greedy), "
                f"got {self.temperature!r}",
            )
        if not _is_real(self.top_p) or not 0.0 < self.top_p <= 1.0:
            raise ConfigError(where, "top_p", f"must be a number in (0, 1], got {self.top_p!r}")
        if not isinstance(self.thinking, bool):
            raise ConfigError(where, "thinking", f"must be True or False, got {self.thinking!r}")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(
                where, "seed", f"must be an integer in 0..{MAX_SEED}, got {self.seed!r}"
            )
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_p", float(self.top_p))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Generation:
    """One answer and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int  # generated tokens, the stop token included when there is one
    finish_reason: str  # "stop" (end of turn) | "length" (max_new_tokens reached)
    ttft_s: float  # time to first token (compute time, a monotonic stopwatch)
    generate_s: float  # whole generation, prompt processing included
    tokens_per_s: float  # decode rate: tokens after the first over the time after the first
    backend: str  # "tiny", "hf", "openai", "gguf"
    model: str  # model id or path or server model name
    random_weights: bool  # True for the tiny model: every output must be able to say so


def decode_rate(completion_tokens: int, ttft_s: float, generate_s: float) -> float:
    """Tokens per second after the first token (the decode phase), the figure that
    llama.cpp reports as predicted_per_second; with one token, that token's rate."""
    if completion_tokens > 1 and generate_s > ttft_s:
        return (completion_tokens - 1) / (generate_s - ttft_s)
    if completion_tokens >= 1 and generate_s > 0:
        return completion_tokens / generate_s
    return 0.0


class Backend(ABC):
    """A model that answers one prompt at a time, streaming its text.

    ``load()`` is idempotent and returns the seconds the load took; ``generate`` loads
    on first use. ``max_prompt_tokens`` is the longest prompt (counted by
    ``count_tokens``, chat template included) the service should accept.
    """

    name: str
    model: str
    random_weights: bool = False

    @abstractmethod
    def load(self) -> float: ...

    @abstractmethod
    def count_tokens(self, prompt: str, thinking: bool = False) -> int: ...

    @property
    @abstractmethod
    def max_prompt_tokens(self) -> int: ...

    @abstractmethod
    def generate(
        self,
        prompt: str,
        params: GenerationParams,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.model!r}>"


def check_params(where: str, params: object) -> GenerationParams:
    if not isinstance(params, GenerationParams):
        raise ConfigError(where, "params", f"must be a GenerationParams, got {params!r}")
    return params


def check_prompt(where: str, prompt: object) -> str:
    """The prompt as text every tokenizer and JSON encoder takes: lone surrogates
    (which Python strings can hold and UTF-8 cannot) become U+FFFD."""
    if not isinstance(prompt, str):
        raise ConfigError(where, "prompt", f"must be a str, got {type(prompt).__name__}")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        prompt = prompt.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return prompt


# -- making a backend from a spec -------------------------------------------------

_OPTIONS = {
    "tiny": {"max_prompt_tokens"},
    "hf": {"dtype", "device", "cache_dir", "max_prompt_tokens"},
    "openai": {"model", "api_key", "timeout_s", "max_prompt_tokens", "template_kwargs"},
    "gguf": {"n_ctx", "n_threads", "n_gpu_layers", "max_prompt_tokens"},
}

_QWEN_EXTRA = "install the qwen extra: pip install -e '.[qwen]' (make install does)"


def _require(kind: str, *modules: str, hint: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ConfigError(kind, module, f"the {module} package is not installed: {hint}")


def _check_options(kind: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[kind])) or "none"
        raise ConfigError(
            kind, unknown[0], f"unknown option for a {kind} backend (options: {allowed})"
        )


def _looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~", "\\")) or (len(ref) > 1 and ref[1] == ":")


def make_backend(spec: str, **options: Any) -> Backend:
    """Make (but do not load) the backend a spec names.

    ``tiny`` or ``tiny:SEED``; ``hf`` (= ``hf:Qwen/Qwen3-0.6B``), ``hf:ORG/NAME`` or
    ``hf:/local/dir`` with options ``dtype`` ("bf16" | "fp32"), ``device`` ("cpu" |
    "cuda" | "auto") and ``cache_dir``; ``openai:http://host:port/v1`` with option
    ``model="name"`` or ``openai:http://host:port/v1#name``; ``gguf:/path/model.gguf``.
    Every kind takes ``max_prompt_tokens``. A spec that cannot work here (unknown
    kind, missing directory or file, package not installed) raises ``ConfigError``
    saying what to do; whether hub weights or a server are reachable is checked by
    ``load()``, which raises ``ConfigError`` too.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("backend", "spec", f"must be a non-empty string, got {spec!r}")
    kind, sep, ref = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ConfigError(
            "backend",
            "kind",
            f"unknown backend {kind!r} in {spec!r}: use tiny, tiny:SEED, hf:MODEL_ID, "
            "hf:/local/dir, openai:http://host:port/v1 or gguf:/path/model.gguf",
        )
    _check_options(kind, options)

    if kind == "tiny":
        seed = 0
        if sep:
            if not ref.isdigit() or int(ref) > MAX_SEED:
                raise ConfigError(
                    "tiny", "seed", f"tiny:SEED takes an integer 0..{MAX_SEED}, got {ref!r}"
                )
            seed = int(ref)
        _require("tiny", "torch", "transformers", "tokenizers", hint=_QWEN_EXTRA)
        from payloads.backends.tiny import TinyBackend

        return TinyBackend(seed=seed, **options)

    if kind == "hf":
        ref = ref.strip() if sep else DEFAULT_HF_MODEL
        if not ref:
            raise ConfigError(
                "hf", "model", "hf: needs a model id (hf:Qwen/Qwen3-0.6B) or a directory"
            )
        _require("hf", "torch", "transformers", "huggingface_hub", hint=_QWEN_EXTRA)
        from payloads.backends.hf import HfBackend

        if _looks_like_path(ref) or os.path.isdir(os.path.expanduser(ref)):
            path = os.path.abspath(os.path.expanduser(ref))
            if not os.path.isdir(path):
                raise ConfigError(
                    "hf",
                    "model",
                    f"no directory {path}: pass a directory holding config.json, the "
                    "weights (*.safetensors) and the tokenizer files (what save_pretrained "
                    "or `hf download Qwen/Qwen3-0.6B --local-dir DIR` writes)",
                )
            return HfBackend(path, local=True, **options)
        return HfBackend(ref, local=False, **options)

    if kind == "openai":
        base, _, fragment = ref.partition("#")
        base = base.strip().rstrip("/")
        if not base.startswith(("http://", "https://")) or len(base) <= len("https://"):
            raise ConfigError(
                "openai",
                "url",
                f"openai: needs the server's base URL, e.g. openai:http://127.0.0.1:8000/v1, "
                f"got {ref!r}",
            )
        if fragment and options.get("model") not in (None, fragment):
            raise ConfigError(
                "openai", "model", f"two model names: #{fragment} and model={options['model']!r}"
            )
        if fragment:
            options["model"] = fragment
        _require("openai", "httpx", hint="pip install httpx (a linkstack dependency)")
        from payloads.backends.openai import OpenAIBackend

        return OpenAIBackend(base, **options)

    # gguf
    _require(
        "gguf",
        "llama_cpp",
        hint="pip install llama-cpp-python (it builds llama.cpp), or serve the GGUF file "
        "with llama.cpp's llama-server and use openai:http://127.0.0.1:8080/v1",
    )
    path = os.path.abspath(os.path.expanduser(ref.strip())) if ref.strip() else ""
    if not path or not os.path.isfile(path):
        raise ConfigError("gguf", "path", f"no GGUF file at {ref!r}: give gguf:/path/model.gguf")
    from payloads.backends.gguf import GgufBackend

    return GgufBackend(path, **options)
