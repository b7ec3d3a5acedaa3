"""Any OpenAI-compatible server (vLLM, llama.cpp's llama-server, Ollama), streamed.

``generate`` POSTs ``{base}/chat/completions`` with ``stream=true`` and reads the
Server-Sent Events as they arrive (``data: {...}`` lines, ``data: [DONE]`` at the end),
calling ``on_text`` on the calling thread for every piece of text in a chunk's delta.
The request asks for the usage in a final chunk (``stream_options.include_usage``);
token counts come from it when the server sends it. llama.cpp adds ``timings``
(``prompt_ms``, ``predicted_ms``, ``predicted_per_second``): when present they give
the compute times, measured by the server itself; otherwise a perf_counter stopwatch
around the request gives them (so they include the HTTP exchange on the way).

Thinking: the request carries ``chat_template_kwargs: {"enable_thinking": ...}``,
which vLLM and llama-server pass to Qwen3's template (turn it off with
``template_kwargs=False`` for a server that refuses unknown fields). A server that
splits reasoning into ``reasoning_content`` (or ``reasoning``) gets it back into the
text as Qwen3 writes it, ``<think>\\n...\\n</think>\\n\\n`` before the answer.

``count_tokens`` cannot see the server's tokenizer: it returns the UTF-8 length of
the prompt in Qwen3's chat format, an upper bound for byte-level BPE tokenizers
(Qwen, Llama 3), so the service never lets through a prompt that is too long.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from linkstack.errors import ConfigError
from payloads.backends import (
    Backend,
    Generation,
    GenerationParams,
    ModelUnavailableError,
    check_params,
    check_prompt,
    decode_rate,
)
from payloads.tokenizer import render_chat, user_prompt

DEFAULT_MAX_PROMPT_TOKENS = 8192
CONNECT_TIMEOUT_S = 3.0


class OpenAIBackend(Backend):
    """``openai:http://host:port/v1`` (+ ``#model`` or ``model=``)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        template_kwargs: bool = True,
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model):
            raise ConfigError("openai", "model", f"must be a non-empty string, got {model!r}")
        if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
            raise ConfigError(
                "openai", "timeout_s", f"must be a positive number, got {timeout_s!r}"
            )
        if (
            not isinstance(max_prompt_tokens, int)
            or isinstance(max_prompt_tokens, bool)
            or max_prompt_tokens < 1
        ):
            raise ConfigError(
                "openai",
                "max_prompt_tokens",
                f"must be a positive integer, got {max_prompt_tokens!r}",
            )
        self.base_url = base_url.rstrip("/")
        self.model = model or ""
        self.random_weights = False
        self._model_option = model
        self._api_key = api_key
        self._timeout_s = float(timeout_s)
        self._max_prompt_tokens = max_prompt_tokens
        self._template_kwargs = bool(template_kwargs)
        self._client: httpx.Client | None = None
        self._load_s = 0.0
        self._lock = threading.Lock()

    # -- connection -----------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def load(self) -> float:
        """Check that the server answers and learn the model it serves (the first one
        ``GET {base}/models`` lists, unless a model was named)."""
        with self._lock:
            if self._client is not None:
                return self._load_s
            t0 = time.perf_counter()
            client = httpx.Client(
                timeout=httpx.Timeout(self._timeout_s, connect=CONNECT_TIMEOUT_S),
                headers=self._headers(),
            )
            try:
                reply = client.get(f"{self.base_url}/models")
            except httpx.HTTPError as exc:
                client.close()
                raise ConfigError(
                    "openai",
                    "server",
                    f"cannot reach {self.base_url} ({type(exc).__name__}: {exc}): start the "
                    "server (vLLM, llama.cpp's llama-server, Ollama) or fix the URL",
                ) from None
            served: list[str] = []
            if reply.status_code == 200:
                try:
                    served = [str(m["id"]) for m in reply.json().get("data", []) if "id" in m]
                except (ValueError, TypeError, KeyError, AttributeError):
                    served = []
            elif reply.status_code in (401, 403):
                client.close()
                raise ConfigError(
                    "openai", "api_key", f"{self.base_url} refuses us (HTTP {reply.status_code})"
                )
            if not self._model_option:
                if not served:
                    client.close()
                    raise ConfigError(
                        "openai",
                        "model",
                        f"{self.base_url}/models names no model (HTTP {reply.status_code}): "
                        "name it, openai:URL#model or model=...",
                    )
                self.model = served[0]
            self._client = client
            self._load_s = time.perf_counter() - t0
            return self._load_s

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- tokens ---------------------------------------------------------------------

    @property
    def max_prompt_tokens(self) -> int:
        return self._max_prompt_tokens

    def count_tokens(self, prompt: str, thinking: bool = False) -> int:
        """An upper bound: the octets of the prompt in Qwen3's chat format (a byte-level
        BPE never makes more tokens than octets)."""
        text = render_chat(
            user_prompt(check_prompt(self.name, prompt)),
            add_generation_prompt=True,
            enable_thinking=bool(thinking),
        )
        return len(text.encode("utf-8"))

    # -- generation -----------------------------------------------------------------

    def _body(self, prompt: str, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": user_prompt(prompt),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if self.model:
            body["model"] = self.model
        if self._template_kwargs:
            body["chat_template_kwargs"] = {"enable_thinking": params.thinking}
        return body

    def generate(
        self,
        prompt: str,
        params: GenerationParams,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        prompt = check_prompt(self.name, prompt)
        check_params(self.name, params)
        self.load()
        client = self._client
        if client is None:
            raise ModelUnavailableError("openai", "server", "the backend was closed")
        stream = _StreamState(on_text)
        url = f"{self.base_url}/chat/completions"
        # Compute time: a perf_counter stopwatch, not the emulator's clock; replaced by
        # the server's own timings when it sends them.
        t0 = time.perf_counter()
        try:
            with client.stream("POST", url, json=self._body(prompt, params)) as reply:
                if reply.status_code != 200:
                    detail = reply.read().decode("utf-8", "replace")[:500]
                    if 400 <= reply.status_code < 500:
                        raise ConfigError(
                            "openai",
                            "request",
                            f"{url} refused the request (HTTP {reply.status_code}): {detail}",
                        )
                    raise ModelUnavailableError(
                        "openai", "server", f"{url} failed (HTTP {reply.status_code}): {detail}"
                    )
                for line in reply.iter_lines():
                    if stream.feed_line(line):
                        break
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(
                "openai", "server", f"{url}: {type(exc).__name__}: {exc}"
            ) from None
        stream.finish()
        t_end = time.perf_counter()

        if not stream.saw_done and stream.finish_reason is None:
            raise ModelUnavailableError(
                "openai", "stream", f"{url}: the stream ended without an end"
            )
        completion = stream.usage.get("completion_tokens")
        if not isinstance(completion, int):
            completion = stream.deltas  # servers send about one token per chunk
        prompt_tokens = stream.usage.get("prompt_tokens")
        if not isinstance(prompt_tokens, int):
            prompt_tokens = self.count_tokens(prompt, params.thinking)  # an upper bound
        ttft_s = (stream.first_text_at or t_end) - t0
        generate_s = t_end - t0
        rate = decode_rate(completion, ttft_s, generate_s)
        timings = stream.timings
        if _number(timings.get("prompt_ms")) and _number(timings.get("predicted_ms")):
            # llama.cpp's own measurement of its compute, without the HTTP exchange.
            ttft_s = timings["prompt_ms"] / 1000.0
            generate_s = (timings["prompt_ms"] + timings["predicted_ms"]) / 1000.0
            if _number(timings.get("predicted_per_second")):
                rate = float(timings["predicted_per_second"])
        return Generation(
            text=stream.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            finish_reason=stream.finish_reason or "stop",
            ttft_s=ttft_s,
            generate_s=generate_s,
            tokens_per_s=rate,
            backend=self.name,
            model=stream.model or self.model,
            random_weights=False,
        )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _StreamState:
    """The chunks of one streamed chat completion, folded as they arrive."""

    def __init__(self, on_text: Callable[[str], None] | None) -> None:
        self.on_text = on_text
        self.pieces: list[str] = []
        self.first_text_at: float | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.model = ""
        self.deltas = 0
        self.saw_done = False
        self.in_reasoning = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def emit(self, piece: str) -> None:
        if not piece:
            return
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        self.pieces.append(piece)
        if self.on_text is not None:
            self.on_text(piece)

    def feed_line(self, line: str) -> bool:
        """Take one line of the event stream; True at ``data: [DONE]``."""
        if not line.startswith("data:"):
            return False  # blank separators, comments (": ping"), event: / id: fields
        data = line[5:].strip()
        if data == "[DONE]":
            self.saw_done = True
            return True
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ModelUnavailableError("openai", "stream", f"not JSON: {data[:200]!r}") from None
        if not isinstance(chunk, dict):
            return False
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelUnavailableError("openai", "stream", f"the server reports: {message}")
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        if isinstance(chunk.get("timings"), dict):
            self.timings = chunk["timings"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            content = delta.get("content")
            if isinstance(reasoning, str) and reasoning:
                self.deltas += 1
                if not self.in_reasoning:
                    self.in_reasoning = True
                    self.emit("<think>\n")
                self.emit(reasoning)
            if isinstance(content, str) and content:
                self.deltas += 1
                self.close_reasoning()
                self.emit(content)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finish_reason = "length" if reason == "length" else "stop"
        return False

    def close_reasoning(self) -> None:
        if self.in_reasoning:
            self.in_reasoning = False
            self.emit("\n</think>\n\n")

    def finish(self) -> None:
        self.close_reasoning()
