"""A backend's generation with the compute time of a modelled accelerator.

The text of an answer comes from the configured backend (tiny, hf, openai, gguf);
with a timing model (:mod:`payloads.timing`) its time to first token, generation
time and decode rate are the accelerator's for the same prompt and completion, not
the stopwatch of the host that computed the text. The prompt is counted in Qwen3's
own tokens where the tokenizer is installed (:mod:`payloads.qwen_tokenizer`: the
tiny model's byte-level tokens are three to four times as many as Qwen3's on
English), else as the backend counts it; the completion is the tokens the backend
really decoded.
"""

from __future__ import annotations

from dataclasses import replace

from payloads.backends import Backend, Generation, decode_rate
from payloads.qwen_tokenizer import count_chat_tokens
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
