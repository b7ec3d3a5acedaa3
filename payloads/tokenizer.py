"""An offline tokenizer shaped like Qwen3's, for the tiny random-weights model.

Qwen3 uses a byte-level BPE with about 151,000 tokens; downloading it is not possible
everywhere the emulator runs, and a model with random weights gains nothing from
merges. This tokenizer keeps the shape and drops the merges: 256 byte tokens (ids
0..255 are the byte values, spelled with the usual byte-to-printable-character map of
byte-level BPE), then Qwen3's special tokens, and Qwen3's chat format:

    <|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n...<|im_end|>\\n
    <|im_start|>assistant\\n

with ``enable_thinking=False`` adding the empty ``<think>\\n\\n</think>\\n\\n`` block
after the generation prompt, as Qwen3's own template does. ``<think>`` and
``</think>`` are ordinary added tokens (kept when decoding), the other three are
special (dropped by ``skip_special_tokens``). Decoding replaces invalid UTF-8 with
U+FFFD instead of raising, which matters for random weights.

``render_chat`` is the same template in plain Python, for backends that have no
tokenizer object of their own (a GGUF model, a remote server).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK = "<think>"
END_THINK = "</think>"

SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)  # control tokens, skipped on decode
ADDED_TOKENS = (THINK, END_THINK)  # ordinary tokens kept in the text, never split
VOCAB_SIZE = 256 + len(SPECIAL_TOKENS) + len(ADDED_TOKENS)  # 261
EMPTY_THINK = "<think>\n\n</think>\n\n"
MODEL_MAX_LENGTH = 4096

# Qwen3's chat format, written for this project as a Jinja template (the language of
# transformers' chat templates). A previous assistant turn loses its reasoning (the
# part up to </think>), as in Qwen3; tool calls are not modelled.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set content = message['content'] if message['content'] is string else '' -%}"
    "{%- if message['role'] == 'assistant' and '</think>' in content -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
)


def render_chat(
    messages: Iterable[Mapping[str, Any]],
    add_generation_prompt: bool = True,
    enable_thinking: bool | None = None,
) -> str:
    """The chat template in Python: the same string ``CHAT_TEMPLATE`` renders.
    ``enable_thinking=None`` behaves like the flag left undefined (thinking on)."""
    parts = []
    for message in messages:
        content = message.get("content")
        content = content if isinstance(content, str) else ""
        if message.get("role") == "assistant" and END_THINK in content:
            content = content.split(END_THINK)[-1].lstrip("\n")
        parts.append(f"{IM_START}{message.get('role')}\n{content}{IM_END}\n")
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
        if enable_thinking is False:
            parts.append(EMPTY_THINK)
    return "".join(parts)


def user_prompt(prompt: str) -> list[dict[str, str]]:
    """The one-turn conversation every backend sends: the query as the user's turn."""
    return [{"role": "user", "content": prompt}]


def byte_alphabet() -> list[str]:
    """The printable character that byte-level BPE uses for each byte value 0..255:
    printable Latin-1 bytes stand for themselves, the others (controls, space, a few
    Latin-1 gaps) move to U+0100 onwards in byte order."""
    printable = {*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)}
    chars, moved = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(0x100 + moved))
            moved += 1
    return chars


def build_tokenizer(model_max_length: int = MODEL_MAX_LENGTH) -> PreTrainedTokenizerFast:
    """The byte-level tokenizer as a transformers ``PreTrainedTokenizerFast``
    (``save_pretrained`` / ``AutoTokenizer.from_pretrained`` round-trip it)."""
    # Imported here: render_chat must work where transformers is not installed.
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    vocab = {char: byte for byte, char in enumerate(byte_alphabet())}
    core = Tokenizer(_model(vocab))
    # No regex split: with no merges, every byte is a token whatever the split.
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()  # lossy: invalid UTF-8 becomes U+FFFD
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    assert core.get_vocab_size() == VOCAB_SIZE
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,  # the end of an assistant turn, as in Qwen3's instruct models
        pad_token=ENDOFTEXT,
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    # transformers keeps a copy of ``core``, made without its cache setting: set again
    tokenizer.backend_tokenizer.model = _model(vocab)
    return tokenizer


def _model(vocab: dict[str, int]) -> Any:
    """The byte-level BPE, without a cache: BPE caches each pre-tokenized word, and
    with no regex split a word is a whole rendered prompt, so a daemon kept the last
    10,000 prompts (10 MB, filling with each new prompt for hours: the soaks' growth
    in the satellites' process), for no gain (with no merges, a byte is a token)."""
    from tokenizers import models  # noqa: PLC0415

    return models.BPE(vocab=vocab, merges=[], cache_capacity=0)
