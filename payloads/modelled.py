"""A backend's generation with the compute time of a modelled accelerator.

The text of an answer comes from the configured backend (tiny, hf, openai, gguf);
with a timing model (:mod:`payloads.timing`) its time to first token, generation
time and decode rate are the accelerator's for the same prompt and completion, not
the stopwatch of the host that computed the text. The prompt is counted in Qwen3's
own tokens where the tokenizer is installed (:mod:`payloads.qwen_tokenizer`: the
tiny model's byte-level tokens are three to four times as many as Qwen3's on
English), else as the backend counts it; the completion is the tokens the backend
really decoded.

**Answer sizes.** A backend with random weights (the tiny model) writes noise in
byte-level tokens: an answer of N tokens is about N octets, where Qwen3's N tokens of
English are about five times that. Under a timing profile the downlink must carry
what the modelled model would send, so :class:`Qwen3SizedText` writes each streamed
piece (one decoded token, the endpoint's convention) as one Qwen3 token, chosen by
the piece from the tokens of an English sample (:data:`SAMPLE`, ~5.0 octets a token),
and tops the text up to the tokens decoded (the stop token excluded): the answer's
text is then N Qwen3 tokens of noise, sized as Qwen3's answer would be. A backend
with real weights keeps its text; without Qwen3's tokenizer the byte-level text stays
(the offline fallback). The Gemma profile is sized with Qwen3's tokens too (Gemma's
own vocabulary is not shipped).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import replace

from payloads.backends import Backend, Generation, decode_rate
from payloads.qwen_tokenizer import count_chat_tokens, qwen3_tokenizer
from payloads.timing import InferenceTiming


def timing_prompt_tokens(backend: Backend, prompt: str, thinking: bool) -> int:
    """The prompt's length for the timing model: Qwen3 tokens of the chat the
    backend is sent, or the backend's own count where Qwen3's tokenizer is absent."""
    counted = count_chat_tokens(prompt, thinking)
    return counted if counted is not None else backend.count_tokens(prompt, thinking)


def modelled_generation(gen: Generation, timing: InferenceTiming, prompt_tokens: int) -> Generation:
    """``gen`` with the timing model's compute times for ``prompt_tokens`` and the
    tokens ``gen`` decoded."""
    ttft_s, generate_s = timing.generation_s(prompt_tokens, gen.completion_tokens)
    return replace(
        gen,
        ttft_s=ttft_s,
        generate_s=generate_s,
        tokens_per_s=decode_rate(gen.completion_tokens, ttft_s, generate_s),
    )


# English, ASCII only (each of its Qwen3 tokens decodes alone to whole characters)
SAMPLE = (
    "The satellite passed over the ground station at dawn, and the operators uplinked "
    "a batch of questions about crop health, flood extent and ship positions. Each answer "
    "was computed on board by the language model, queued for the downlink, and sent when "
    "the next pass began. Engineers compared the measured round trip with the planned one, "
    "looked at the battery's state of charge after the eclipse, and decided whether to run "
    "larger models during the sunlit part of the orbit. In short, the constellation worked "
    "as a small data centre in space: slow links, limited power, and a schedule set by "
    "geometry."
)


@functools.lru_cache(maxsize=1)
def sample_tokens() -> tuple[str, ...] | None:
    """The text of each Qwen3 token of :data:`SAMPLE`, in order, or None where Qwen3's
    tokenizer is not installed."""
    tok = qwen3_tokenizer()
    if tok is None:
        return None
    ids = tok.encode(SAMPLE, add_special_tokens=False).ids
    return tuple(tok.decode([i]) for i in ids)


class Qwen3SizedText:
    """The text of a noise answer re-written as Qwen3 tokens (see the module
    docstring): :meth:`piece` for each streamed piece, :meth:`top_up` at the end."""

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens
        self.count = 0  # Qwen3 tokens written
        self.parts: list[str] = []

    @classmethod
    def for_backend(cls, backend: Backend) -> Qwen3SizedText | None:
        """A writer for a backend of random weights where Qwen3's tokenizer is
        installed; None otherwise (the backend's text stays)."""
        if not getattr(backend, "random_weights", False):
            return None
        tokens = sample_tokens()
        return None if tokens is None else cls(tokens)

    def piece(self, piece: str) -> str:
        """One decoded token's text, as one Qwen3 token chosen by it and its place."""
        seed = zlib.crc32(piece.encode("utf-8", "surrogatepass")) + 7919 * self.count
        out = self.tokens[seed % len(self.tokens)]
        self.count += 1
        self.parts.append(out)
        return out

    def top_up(self, gen: Generation) -> str:
        """The Qwen3 tokens still owed to reach the tokens ``gen`` decoded (its stop
        token writes no text), as one piece ("" if none)."""
        owed = gen.completion_tokens - (1 if gen.finish_reason == "stop" else 0) - self.count
        return "".join(self.piece(f"+{k}") for k in range(max(owed, 0)))

    @property
    def text(self) -> str:
        return "".join(self.parts)
