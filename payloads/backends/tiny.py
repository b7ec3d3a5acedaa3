"""The tiny model: Qwen3's architecture at toy size, random weights, no download.

Built with transformers' own Qwen3 classes from a small ``Qwen3Config`` whose weights
come from a fixed seed (``torch.manual_seed`` under a forked RNG just before
construction), so every process on every machine builds the same model; the tokenizer
is the byte-level one of ``payloads.tokenizer``. Its answers are noise (often invalid
UTF-8, decoded with U+FFFD), but the path is the real one: chat template, prefill,
KV-cached decoding, sampling, streaming, stop tokens. It is the default wherever no
weights are available, so the demo and the tests run offline, and every Generation
it returns says ``random_weights=True``.

``TinyBackend.save(directory)`` writes it as a checkpoint that the hf backend loads
(``hf:/that/directory``), which is how the hf path is tested without network.
"""

# Heavy packages (torch, transformers, llama_cpp) are imported when a backend is
# made or loaded, never when payloads.backends is imported.

from __future__ import annotations

import os
from typing import Any

from payloads.backends.hf import TransformersBackend
from payloads.tokenizer import ENDOFTEXT, IM_END, MODEL_MAX_LENGTH, VOCAB_SIZE, build_tokenizer

# The architecture of Qwen3 (grouped-query attention with per-head q/k RMSNorm, SwiGLU,
# RoPE at theta 1e6, tied embeddings like Qwen3-0.6B), shrunk to about 0.43 M
# parameters so that loading and 64 tokens take well under a second on 2 CPU cores.
TINY_CONFIG: dict[str, Any] = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": MODEL_MAX_LENGTH,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "initializer_range": 0.02,
}


def tiny_config(seed: int = 0) -> Any:
    from transformers import Qwen3Config

    tokenizer_ids = {"<|endoftext|>": 256, "<|im_end|>": 258}  # fixed by payloads.tokenizer
    config = Qwen3Config(
        **TINY_CONFIG,
        bos_token_id=None,
        eos_token_id=tokenizer_ids[IM_END],
        pad_token_id=tokenizer_ids[ENDOFTEXT],
    )
    # Saved in config.json, so the hf backend knows a saved tiny model for what it is.
    config.linkstack_random_weights = True
    config.linkstack_seed = seed
    return config


class TinyBackend(TransformersBackend):
    """``tiny`` / ``tiny:SEED``: random weights from SEED (default 0), on the CPU."""

    name = "tiny"

    def __init__(self, seed: int = 0, *, max_prompt_tokens: int | None = None) -> None:
        super().__init__(max_prompt_tokens=max_prompt_tokens)
        self.seed = seed
        self.model = f"tiny-qwen3 (random weights, seed {seed})"
        self.random_weights = True

    def _build(self) -> tuple[Any, Any]:
        import torch
        from transformers import Qwen3ForCausalLM

        tokenizer = build_tokenizer()
        assert tokenizer.convert_tokens_to_ids(IM_END) == 258
        assert tokenizer.convert_tokens_to_ids(ENDOFTEXT) == 256
        config = tiny_config(self.seed)
        # One intra-op thread: at this size a second one gains no time (64 tokens took
        # 0.34 s either way on 2 cores) and doubles the CPU, its threads spinning between
        # the small operations. torch's setting is the whole process's; a process that
        # builds the tiny model runs nothing bigger (the daemons, the demo, the tests).
        torch.set_num_threads(1)
        # A forked RNG: the weights depend on the seed alone, and the caller's global
        # torch RNG state is the same after the build as before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = Qwen3ForCausalLM(config)
        model.eval()
        return model, tokenizer

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Write the model and tokenizer as a checkpoint for ``hf:DIRECTORY``."""
        self.load()
        path = os.fspath(directory)
        self._model.save_pretrained(path)
        self._tokenizer.save_pretrained(path)
        return path
