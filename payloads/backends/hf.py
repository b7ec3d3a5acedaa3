"""A Qwen3 checkpoint through transformers, and the generation code it shares with tiny.

``TransformersBackend`` holds a causal LM and its tokenizer in this process and
generates with ``model.generate``: the prompt goes through the tokenizer's chat
template (``enable_thinking=params.thinking``), a streamer receives each new token id
inside ``generate`` on the calling thread, decodes it incrementally and hands the new
text to ``on_text`` at once. Sampling is seeded per call under a forked torch RNG, so
the same seed and parameters give the same text and the process's global RNG is left
as it was. Only the request's parameters steer sampling: the checkpoint's own
suggested sampling defaults (Qwen3 ships top_k=20, temperature 0.6, ...) are dropped at
load, top-k is off, and only the stop tokens are kept.

``HfBackend`` finds the weights: a local directory as given, a hub id in the local
Hugging Face cache, or (when the hub is reachable) a download. Without network it
fails at once with a ConfigError that says how to pass a local directory.
"""

# Heavy packages (torch, transformers, llama_cpp) are imported when a backend is
# made or loaded, never when payloads.backends is imported.

from __future__ import annotations

import gc
import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

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
from payloads.tokenizer import ENDOFTEXT, IM_END, user_prompt

DTYPES = ("bf16", "fp32")
DEVICES = ("cpu", "cuda", "auto")
MAX_PROMPT_CAP = 32768
_TRUE = ("1", "on", "yes", "true")


class IncrementalDecoder:
    """Token ids in, text pieces out, as they come; the pieces concatenate to the
    decoding of all the ids.

    A character that spans several tokens (every non-ASCII character with a byte-level
    tokenizer) decodes to U+FFFD until its last byte arrives, so a window whose text
    ends in U+FFFD is held back until the next token completes (or breaks) it;
    ``flush`` hands over whatever is left. Each step decodes only the short window
    since the last emitted piece, with the piece before it as context.
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # ids[prefix:read] are already emitted (kept as context)
        self._read = 0

    def push(self, ids: list[int]) -> str:
        self._ids.extend(ids)
        done = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        if len(text) > len(done) and not text.endswith("\ufffd") and text.startswith(done):
            self._prefix, self._read = self._read, len(self._ids)
            return text[len(done) :]
        return ""

    def flush(self) -> str:
        done = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return text[len(done) :] if text.startswith(done) else text

    @property
    def ids(self) -> list[int]:
        return self._ids


class _Streamer(Protocol):
    """What :meth:`TransformersBackend.generate` reads of its streamer."""

    first_token_at: float | None


def _streamer_class() -> Callable[[IncrementalDecoder, Callable[[str], None]], _Streamer]:
    from transformers.generation.streamers import BaseStreamer

    class TokenStreamer(BaseStreamer):
        """Receives ids inside ``model.generate``: first the prompt, then each new token."""

        def __init__(self, decoder: IncrementalDecoder, emit: Callable[[str], None]) -> None:
            self.decoder = decoder
            self.emit = emit
            self.prompt_seen = False
            self.first_token_at: float | None = None

        def put(self, value: Any) -> None:
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            piece = self.decoder.push([int(i) for i in value.reshape(-1).tolist()])
            if piece:
                self.emit(piece)

        def end(self) -> None:
            pass

    return TokenStreamer


class TransformersBackend(Backend):
    """A causal LM and its tokenizer in this process (the hf and tiny backends)."""

    def __init__(self, *, max_prompt_tokens: int | None = None) -> None:
        if max_prompt_tokens is not None and (
            not isinstance(max_prompt_tokens, int)
            or isinstance(max_prompt_tokens, bool)
            or max_prompt_tokens < 1
        ):
            raise ConfigError(
                self.name,
                "max_prompt_tokens",
                f"must be a positive integer, got {max_prompt_tokens!r}",
            )
        self._max_prompt_option = max_prompt_tokens
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._stop_ids: list[int] = []
        self._pad_id: int | None = None
        self._context_tokens = 0
        self._load_s = 0.0
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()  # one generation at a time per model

    @abstractmethod
    def _build(self) -> tuple[Any, Any]:
        """Return (model, tokenizer), the model on its device, in eval mode."""

    # -- loading --------------------------------------------------------------------

    def load(self) -> float:
        with self._load_lock:
            if self._model is not None:
                return self._load_s
            # Compute time on a perf_counter stopwatch, not the emulator's clock.
            t0 = time.perf_counter()
            model, tokenizer = self._build()
            self._configure(model, tokenizer)
            self._model, self._tokenizer = model, tokenizer
            self._load_s = time.perf_counter() - t0
            return self._load_s

    def _configure(self, model: Any, tokenizer: Any) -> None:
        from transformers import GenerationConfig

        stop: list[int] = []
        eos = model.generation_config.eos_token_id
        for token_id in eos if isinstance(eos, list) else [eos]:
            if token_id is not None and token_id not in stop:
                stop.append(int(token_id))
        for token in (tokenizer.eos_token, IM_END, ENDOFTEXT):
            token_id = tokenizer.convert_tokens_to_ids(token) if token else None
            unknown = token_id == tokenizer.unk_token_id
            if isinstance(token_id, int) and not unknown and token_id not in stop:
                stop.append(token_id)
        if not stop:
            raise ConfigError(self.name, "tokenizer", "the model has no end-of-turn token")
        pad = tokenizer.pad_token_id
        self._stop_ids = stop
        self._pad_id = pad if pad is not None else stop[0]
        # Keep the stop tokens, drop the checkpoint's suggested sampling defaults:
        # GenerationParams alone decides how to sample.
        model.generation_config = GenerationConfig(
            eos_token_id=stop, pad_token_id=self._pad_id, bos_token_id=None
        )
        self._device = model.device
        self._context_tokens = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        if getattr(model.config, "linkstack_random_weights", False):
            self.random_weights = True

    def close(self) -> None:
        # Same lock order as generate (which loads while holding the generate lock).
        with self._generate_lock, self._load_lock:
            self._model = self._tokenizer = None
            gc.collect()

    # -- tokens ---------------------------------------------------------------------

    @property
    def max_prompt_tokens(self) -> int:
        if self._max_prompt_option is not None:
            return self._max_prompt_option
        self.load()
        if self._context_tokens <= 0:
            return MAX_PROMPT_CAP
        return min(self._context_tokens // 2, MAX_PROMPT_CAP)

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def torch_model(self) -> Any:
        self.load()
        return self._model

    def render(self, prompt: str, thinking: bool = False) -> str:
        """The prompt through the model's chat template, generation prompt added."""
        self.load()
        return self._tokenizer.apply_chat_template(
            user_prompt(check_prompt(self.name, prompt)),
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=bool(thinking),
        )

    def _prompt_ids(self, prompt: str, thinking: bool) -> list[int]:
        text = self.render(prompt, thinking)
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, prompt: str, thinking: bool = False) -> int:
        return len(self._prompt_ids(check_prompt(self.name, prompt), thinking))

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    # -- generation -----------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        params: GenerationParams,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        import torch

        prompt = check_prompt(self.name, prompt)
        check_params(self.name, params)
        self.load()
        with self._generate_lock:
            model = self._model
            if model is None:
                raise ConfigError(self.name, "model", "closed while a generation was waiting")
            # Compute time: a perf_counter stopwatch of the work done here, deliberately
            # not the emulator's clock (which may run in virtual time); the service puts
            # these durations on the emulated timeline.
            t0 = time.perf_counter()
            ids = self._prompt_ids(prompt, params.thinking)
            if len(ids) > self.max_prompt_tokens:
                raise ConfigError(
                    self.name,
                    "prompt",
                    f"{len(ids)} tokens after the chat template, more than the "
                    f"{self.max_prompt_tokens} this backend accepts",
                )
            pieces: list[str] = []

            def emit(piece: str) -> None:
                pieces.append(piece)
                if on_text is not None:
                    on_text(piece)

            decoder = IncrementalDecoder(self._decode)
            streamer = _streamer_class()(decoder, emit)
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "do_sample": not params.greedy,
                "eos_token_id": self._stop_ids,
                "pad_token_id": self._pad_id,
            }
            if not params.greedy:
                kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
            input_ids = torch.tensor([ids], dtype=torch.long, device=self._device)
            cuda = [self._device.index or 0] if self._device.type == "cuda" else []
            try:
                with torch.random.fork_rng(devices=cuda), torch.inference_mode():
                    torch.manual_seed(params.seed)
                    out = model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        streamer=streamer,
                        **kwargs,
                    )
            except torch.cuda.OutOfMemoryError as exc:  # torch.OutOfMemoryError since 2.5
                raise ModelUnavailableError(self.name, "memory", str(exc)) from None
            new_ids = [int(i) for i in out[0, len(ids) :].tolist()]
            tail = decoder.flush()
            if tail:
                emit(tail)
            t_end = time.perf_counter()

        generate_s = t_end - t0
        ttft_s = (streamer.first_token_at or t_end) - t0
        stopped = bool(new_ids) and new_ids[-1] in self._stop_ids
        return Generation(
            text="".join(pieces),
            prompt_tokens=len(ids),
            completion_tokens=len(new_ids),
            finish_reason="stop" if stopped else "length",
            ttft_s=ttft_s,
            generate_s=generate_s,
            tokens_per_s=decode_rate(len(new_ids), ttft_s, generate_s),
            backend=self.name,
            model=self.model,
            random_weights=self.random_weights,
        )


def _dtype_keyword() -> str:
    """``dtype`` since transformers 4.56, ``torch_dtype`` before (still read, deprecated)."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _offline() -> bool:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    return False


class HfBackend(TransformersBackend):
    """A real checkpoint: ``hf:Qwen/Qwen3-0.6B`` (hub id) or ``hf:/local/dir``."""

    name = "hf"

    def __init__(
        self,
        ref: str,
        *,
        local: bool,
        dtype: str | None = None,
        device: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        max_prompt_tokens: int | None = None,
    ) -> None:
        super().__init__(max_prompt_tokens=max_prompt_tokens)
        if dtype is not None and dtype not in DTYPES:
            raise ConfigError("hf", "dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if device not in DEVICES:
            raise ConfigError(
                "hf", "device", f"must be one of {', '.join(DEVICES)}, got {device!r}"
            )
        self.model = ref
        self.random_weights = False
        self._ref = ref
        self._local = local
        self._dtype_option = dtype
        self._device_option = device
        self._cache_dir = os.fspath(cache_dir) if cache_dir is not None else None

    # -- where the weights are -------------------------------------------------------

    def _unavailable(self, reason: str) -> ConfigError:
        return ConfigError(
            "hf",
            "model",
            f"the weights of {self._ref} are not available here: {reason}. Download them "
            f"where there is network (`hf download {self._ref} --local-dir DIR`) and pass "
            "the directory: hf:/path/to/DIR",
        )

    def _hub_endpoint(self) -> str:
        from huggingface_hub import constants

        return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")

    def _probe_hub(self) -> None:
        """Fail in seconds, not after download retries, when the hub cannot be reached."""
        import httpx

        url = f"{self._hub_endpoint()}/api/models/{self._ref}"
        try:
            reply = httpx.get(url, timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=True)
        except httpx.HTTPError as exc:
            raise self._unavailable(
                f"not in the local Hugging Face cache and the hub ({self._hub_endpoint()}) "
                f"cannot be reached ({type(exc).__name__}: {exc})"
            ) from None
        if reply.status_code in (401, 403, 404):
            raise self._unavailable(
                f"the hub answers {reply.status_code} for {self._ref} (no such model, or it "
                "is gated or private: check the id, or log in with `hf auth login`)"
            )
        if reply.status_code >= 400:
            raise self._unavailable(f"the hub answers HTTP {reply.status_code}")

    def _source(self) -> str:
        """A local directory holding the checkpoint."""
        if self._local:
            return self._ref
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        cache = self._cache_dir or constants.HF_HUB_CACHE
        try:
            return snapshot_download(self._ref, cache_dir=self._cache_dir, local_files_only=True)
        except LocalEntryNotFoundError:
            pass
        except Exception as exc:  # a malformed id, an unreadable cache
            raise self._unavailable(f"{type(exc).__name__}: {exc}") from None
        if _offline() or constants.HF_HUB_OFFLINE:
            raise self._unavailable(
                f"not in the local Hugging Face cache ({cache}) and the hub is switched off "
                "(HF_HUB_OFFLINE)"
            )
        self._probe_hub()
        try:
            return snapshot_download(
                self._ref,
                cache_dir=self._cache_dir,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model"],
            )
        except Exception as exc:
            raise self._unavailable(f"the download failed ({type(exc).__name__}: {exc})") from None

    def _resolve_device(self) -> Any:
        import torch

        want = self._device_option
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "hf", "device", "cuda asked for but torch sees no GPU here (use device='cpu')"
            )
        return torch.device(want)

    def _build(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self._resolve_device()
        dtype = self._dtype_option or ("bf16" if device.type == "cuda" else "fp32")
        torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        source = self._source()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                source, **{_dtype_keyword(): torch_dtype}, local_files_only=True
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                "hf",
                "model",
                f"cannot load a causal language model and tokenizer from {source}: {exc}",
            ) from None
        if tokenizer.chat_template is None:
            raise ConfigError("hf", "tokenizer", f"the tokenizer in {source} has no chat template")
        model.to(device)
        model.eval()
        return model, tokenizer
