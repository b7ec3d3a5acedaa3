"""The onboard endpoint with an accelerator profile: the backend's text, the timing
model's compute time (streamed chunks included)."""

import dataclasses

import pytest

from payloads import qwen_tokenizer
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
