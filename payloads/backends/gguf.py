"""A GGUF file (e.g. a quantized Qwen3) through llama-cpp-python, when it is installed.

``make_backend("gguf:...")`` refuses with a ConfigError when the ``llama_cpp`` package
is missing. The prompt is rendered in Qwen3's chat format by
``payloads.tokenizer.render_chat`` (so ``enable_thinking`` works as in Qwen3's own
template, whatever template the file carries), tokenized by the model's vocabulary,
and generated token by token with ``Llama.generate`` on the calling thread: each token
is turned into bytes, the bytes into text by an incremental UTF-8 decoder (invalid
bytes become U+FFFD), and the text goes to ``on_text`` at once. Sampling: greedy at
temperature 0, else temperature and top-p with top-k and min-p off, from a sampler
seeded per call.
"""

# Heavy packages (torch, transformers, llama_cpp) are imported when a backend is
# made or loaded, never when payloads.backends is imported.

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable
from typing import Any

from linkstack.errors import ConfigError
from payloads.backends import (
    Backend,
    Generation,
    GenerationParams,
    check_params,
    check_prompt,
    decode_rate,
)
from payloads.tokenizer import ENDOFTEXT, IM_END, render_chat, user_prompt

DEFAULT_N_CTX = 8192  # Qwen3-0.6B's KV cache at 8192 tokens is under 1 GB in f16


def _positive_int(name: str, value: object, allow_zero: bool = False) -> int | None:
    if value is None:
        return None
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError("gguf", name, f"must be an integer >= {low}, got {value!r}")
    return value


def _required_positive_int(name: str, value: object) -> int:
    checked = _positive_int(name, value)
    if checked is None:
        raise ConfigError("gguf", name, "must be an integer >= 1, got None")
    return checked


class GgufBackend(Backend):
    """``gguf:/path/model.gguf``."""

    name = "gguf"

    def __init__(
        self,
        path: str,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        max_prompt_tokens: int | None = None,
    ) -> None:
        self.path = path
        self.model = path
        self.random_weights = False
        self._n_ctx = _required_positive_int("n_ctx", n_ctx)
        self._n_threads = _positive_int("n_threads", n_threads)
        if not isinstance(n_gpu_layers, int) or isinstance(n_gpu_layers, bool) or n_gpu_layers < -1:
            raise ConfigError(
                "gguf", "n_gpu_layers", f"must be -1 (all) or >= 0, got {n_gpu_layers!r}"
            )
        self._n_gpu_layers = n_gpu_layers
        limit = _positive_int("max_prompt_tokens", max_prompt_tokens)
        if limit is not None and limit >= self._n_ctx:
            raise ConfigError(
                "gguf", "max_prompt_tokens", f"must leave room for an answer in n_ctx={n_ctx}"
            )
        self._max_prompt_tokens = limit or self._n_ctx // 2
        self._llm: Any = None
        self._stop_ids: set[int] = set()
        self._load_s = 0.0
        self._lock = threading.Lock()
        self._generate_lock = threading.Lock()

    def load(self) -> float:
        with self._lock:
            if self._llm is not None:
                return self._load_s
            import llama_cpp

            t0 = time.perf_counter()  # a compute stopwatch, not the emulator's clock
            kwargs: dict[str, Any] = {
                "model_path": self.path,
                "n_ctx": self._n_ctx,
                "n_gpu_layers": self._n_gpu_layers,
                "verbose": False,
            }
            if self._n_threads is not None:
                kwargs["n_threads"] = self._n_threads
            try:
                llm = llama_cpp.Llama(**kwargs)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ConfigError("gguf", "path", f"cannot load {self.path}: {exc}") from None
            stop = {int(llm.token_eos())}
            for token in (IM_END, ENDOFTEXT):
                ids = llm.tokenize(token.encode(), add_bos=False, special=True)
                if len(ids) == 1:
                    stop.add(int(ids[0]))
            self._stop_ids = stop
            self._llm = llm
            self._load_s = time.perf_counter() - t0
            return self._load_s

    def close(self) -> None:
        with self._generate_lock, self._lock:
            if self._llm is not None:
                closer = getattr(self._llm, "close", None)
                if callable(closer):
                    closer()
                self._llm = None

    @property
    def max_prompt_tokens(self) -> int:
        return self._max_prompt_tokens

    def _prompt_ids(self, prompt: str, thinking: bool) -> list[int]:
        text = render_chat(
            user_prompt(prompt), add_generation_prompt=True, enable_thinking=thinking
        )
        # add_bos=True adds a BOS token only if the model's vocabulary asks for one.
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def count_tokens(self, prompt: str, thinking: bool = False) -> int:
        prompt = check_prompt(self.name, prompt)
        self.load()
        return len(self._prompt_ids(prompt, bool(thinking)))

    def generate(
        self,
        prompt: str,
        params: GenerationParams,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        prompt = check_prompt(self.name, prompt)
        check_params(self.name, params)
        self.load()
        with self._generate_lock:
            llm = self._llm
            if llm is None:
                raise ConfigError("gguf", "model", "closed while a generation was waiting")
            t0 = time.perf_counter()  # compute time, not the emulator's clock
            ids = self._prompt_ids(prompt, params.thinking)
            if len(ids) > self._max_prompt_tokens:
                raise ConfigError(
                    "gguf",
                    "prompt",
                    f"{len(ids)} tokens after the chat template, more than the "
                    f"{self._max_prompt_tokens} this backend accepts",
                )
            budget = min(params.max_new_tokens, self._n_ctx - len(ids))
            pieces: list[str] = []
            utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

            def emit(piece: str) -> None:
                if piece:
                    pieces.append(piece)
                    if on_text is not None:
                        on_text(piece)

            llm.set_seed(params.seed)
            generated = 0
            first_at: float | None = None
            stopped = False
            for token in llm.generate(
                ids,
                temp=params.temperature,
                top_p=params.top_p,
                top_k=0,  # off: the request's parameters alone decide
                min_p=0.0,
                typical_p=1.0,
                repeat_penalty=1.0,
            ):
                generated += 1
                if first_at is None:
                    first_at = time.perf_counter()
                if int(token) in self._stop_ids:
                    stopped = True
                    break
                emit(utf8.decode(bytes(llm.detokenize([int(token)]))))
                if generated >= budget:
                    break
            emit(utf8.decode(b"", final=True))
            t_end = time.perf_counter()

        ttft_s = (first_at or t_end) - t0
        generate_s = t_end - t0
        return Generation(
            text="".join(pieces),
            prompt_tokens=len(ids),
            completion_tokens=generated,
            finish_reason="stop" if stopped else "length",
            ttft_s=ttft_s,
            generate_s=generate_s,
            tokens_per_s=decode_rate(generated, ttft_s, generate_s),
            backend=self.name,
            model=self.model,
            random_weights=False,
        )
