"""The onboard inference endpoint, on its own: a fake backend, a fake downlink, emulated time."""

import itertools
import time

import cbor2
import pytest

from linkstack.runtime import clock as clk
from payloads.backends import Backend, Generation, GenerationParams, ModelUnavailableError
from payloads.messages import (
    Ack,
    Answer,
    AnswerChunk,
    ErrorMessage,
    MessageKey,
    Params,
    Query,
    answer_key,
    decode,
    encode,
)
from payloads.service import InferenceService, ServiceConfig

TTFT_S = 0.5
GENERATE_S = 2.0


class FakeBackend(Backend):
    """Echoes numbered words; takes TTFT_S and GENERATE_S by its "stopwatch"."""

    name = "fake"
    model = "echo"
    random_weights = False

    def __init__(self, piece_pause_s: float = 0.0) -> None:
        self.piece_pause_s = piece_pause_s
        self.calls: list[str] = []

    def load(self) -> float:
        return 0.0

    def count_tokens(self, prompt: str, thinking: bool = False) -> int:
        return len(prompt.split())

    @property
    def max_prompt_tokens(self) -> int:
        return 20

    def generate(self, prompt, params, on_text=None) -> Generation:
        self.calls.append(prompt)
        if prompt == "server down":
            raise ModelUnavailableError("fake", "server", "connection refused")
        if prompt == "crash":
            raise RuntimeError("something broke")
        pieces = [f"w{i} " for i in range(params.max_new_tokens)]
        for piece in pieces:
            if self.piece_pause_s:
                time.sleep(self.piece_pause_s)
            if on_text is not None:
                on_text(piece)
        n = len(pieces)
        return Generation(
            "".join(pieces), len(prompt.split()), n, "length", TTFT_S, GENERATE_S, n / 2, *self.id3
        )

    id3 = ("fake", "echo", False)

    def close(self) -> None:
        pass


def query(qid: str, prompt: str = "hello there", stream: bool = False, **params) -> bytes:
    return encode(Query(qid, prompt, Params(**({"max_new_tokens": 4} | params)), stream, 0.0))


def run(backend, script, config=None):
    """Run ``script(service, clock, sent)`` in emulated time; return what the service sent."""

    async def main():
        clock = clk.make_clock(True)
        sent = []

        def send(data: bytes, key: MessageKey | None) -> float:
            msg = decode(data)
            # the service hands each message's key along: nobody downstream decodes it
            assert key == (answer_key(msg.id) if isinstance(msg, Answer | ErrorMessage) else None)
            sent.append((clock.now(), msg))
            return clock.now()

        service = InferenceService(backend, clock, send, satellite="CS-01", config=config)
        service.start()
        try:
            await script(service, clock, sent)
        finally:
            await service.close()
        return sent, service

    return clk.run(main)


def of(sent, kind):
    return [m for _, m in sent if isinstance(m, kind)]


def test_a_query_gets_one_answer_with_its_onboard_times_in_order():
    async def script(svc, clock, sent):
        await clock.sleep_until(100.0)
        svc.on_message(query("q1"), 100.0)
        await clock.sleep_until(110.0)
        svc.on_message(encode(Ack(("q1",))))
        await clock.sleep_until(500.0)

    sent, svc = run(FakeBackend(), script)
    answers = of(sent, Answer)
    assert len(answers) == 1  # acknowledged before any repetition
    a = answers[0]
    assert a.text == "w0 w1 w2 w3 " and a.satellite == "CS-01" and a.completion_tokens == 4
    t = a.times
    assert t.query_complete_t_s == 100.0 and t.inference_start_t_s == pytest.approx(100.0, abs=1e-3)
    assert t.first_token_t_s == pytest.approx(t.inference_start_t_s + TTFT_S)
    assert t.inference_end_t_s == pytest.approx(t.inference_start_t_s + GENERATE_S)
    assert t.inference_end_t_s <= t.answer_queued_t_s < t.inference_end_t_s + 0.1
    assert sent[0][0] == pytest.approx(t.answer_queued_t_s)  # it left when the model finished
    assert svc.stats["answers_acknowledged"] == 1 and svc.unacknowledged == ()


def test_inline_runs_the_model_in_the_loop_thread_and_answers_the_same():
    import threading

    threads = []

    class Recording(FakeBackend):
        def generate(self, prompt, params, on_text=None):
            threads.append(threading.current_thread())
            return super().generate(prompt, params, on_text)

    async def script(svc, clock, sent):
        await clock.sleep_until(100.0)
        svc.on_message(query("q1", stream=True), 100.0)
        await clock.sleep_until(500.0)

    pooled, _ = run(Recording(), script)
    inline, _ = run(Recording(), script, ServiceConfig(inline=True))
    assert threads[0] is not threading.main_thread() and threads[1] is threading.main_thread()
    assert [type(m) for _, m in inline] == [type(m) for _, m in pooled]
    assert of(inline, Answer)[0].text == of(pooled, Answer)[0].text == "w0 w1 w2 w3 "


def test_an_unacknowledged_answer_is_repeated_with_backoff_until_acknowledged():
    config = ServiceConfig(repeat_s=10.0, repeat_backoff=2.0, max_repeat_s=40.0)

    async def script(svc, clock, sent):
        svc.on_message(query("q1"))
        await clock.sleep_until(100.0)
        svc.on_message(encode(Ack(("q1", "unknown"))))
        await clock.sleep_until(1000.0)

    sent, svc = run(FakeBackend(), script, config)
    times = [t for t, m in sent if isinstance(m, Answer)]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:3] == [10.0, 20.0, 40.0] and all(g == 40.0 for g in gaps[3:])
    assert times[-1] <= 100.0
    assert svc.stats["answer_repeats"] == len(times) - 1


def test_the_first_repeat_waits_for_the_pass_the_downlink_announced():
    async def main():
        clock = clk.make_clock(True)
        sent = []

        def send(data, key):
            sent.append(clock.now())
            return 600.0  # the relay's next pass begins at 600 s

        svc = InferenceService(FakeBackend(), clock, send, config=ServiceConfig(repeat_s=20.0))
        svc.start()
        svc.on_message(query("q1"))
        await clock.sleep_until(700.0)
        await svc.close()
        return sent

    sent = clk.run(main)
    assert sent[0] < 3.0 and sent[1] == pytest.approx(620.0)


def test_a_repeated_query_is_not_run_again():
    backend = FakeBackend()

    async def script(svc, clock, sent):
        svc.on_message(query("q1"))
        svc.on_message(query("q1"))  # queued: ignored
        await clock.sleep_until(50.0)
        svc.on_message(query("q1"))  # answered, not acknowledged: sent again at once
        await clock.sleep_until(51.0)
        svc.on_message(encode(Ack(("q1",))))
        svc.on_message(query("q1"))  # acknowledged: ignored
        await clock.sleep_until(200.0)

    sent, svc = run(backend, script, ServiceConfig(repeat_s=100.0))
    assert backend.calls == ["hello there"]
    assert [t for t, m in sent if isinstance(m, Answer)][1] == pytest.approx(50.0)
    assert len(of(sent, Answer)) == 2 and svc.stats["duplicate_queries"] == 3


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [
        (b"\xff\x00not cbor at all", "malformed", "cbor"),
        (cbor2.dumps({"v": 0, "t": "q", "id": "q7"}), "malformed", "version 0"),
        (cbor2.dumps({"v": 1, "t": "z", "id": "q7"}), "malformed", "unknown message type"),
        (cbor2.dumps([1, 2, 3]), "malformed", "expected a map"),
        (query("q7", "one two three " * 10), "prompt_too_long", "30 tokens"),
        (query("q7", temperature=5.0), "rejected", "temperature"),
        (query("q7", "server down"), "model_unavailable", "connection refused"),
        (query("q7", "crash"), "model_unavailable", "something broke"),
        (encode(ErrorMessage("q7", "busy")), "rejected", "not for the satellite"),
    ],
    ids=[
        "not cbor",
        "unknown version",
        "unknown type",
        "not a map",
        "prompt too long",
        "bad parameters",
        "model unavailable",
        "backend crash",
        "wrong direction",
    ],
)
def test_a_bad_query_gets_an_error_and_the_next_query_is_answered(raw, code, detail):
    async def script(svc, clock, sent):
        svc.on_message(raw)
        await clock.sleep_until(5.0)
        svc.on_message(query("next"))
        await clock.sleep_until(10.0)

    sent, _ = run(FakeBackend(), script)
    errors = of(sent, ErrorMessage)
    assert len({e.id for e in errors}) == 1  # repeated until acknowledged, like answers
    err = errors[0]
    assert err.code == code and detail in err.detail and err.satellite == "CS-01"
    if raw[:1] != b"\xff" and b"q7" in raw:
        assert err.id == "q7"  # the id is kept when it can be read
    assert {a.id for a in of(sent, Answer)} == {"next"}


def test_a_malformed_message_without_an_id_gets_a_fresh_one():
    async def script(svc, clock, sent):
        svc.on_message(b"\x00")
        svc.on_message(b"\x01")
        await clock.sleep_until(1.0)

    sent, _ = run(FakeBackend(), script)
    ids = [e.id for e in of(sent, ErrorMessage)]
    assert len(set(ids)) == 2 and all(i.startswith("malformed-CS-01") for i in ids)


def test_one_inference_at_a_time_and_a_full_queue_says_busy():
    config = ServiceConfig(concurrency=1, max_queued=1)

    async def script(svc, clock, sent):
        for i in range(3):
            svc.on_message(query(f"q{i}"))
        await clock.sleep_until(100.0)

    sent, _ = run(FakeBackend(), script, config)
    answers = {a.id: a for a in of(sent, Answer)}
    assert set(answers) == {"q0", "q1"}
    assert {(e.id, e.code) for e in of(sent, ErrorMessage)} == {("q2", "busy")}
    assert answers["q1"].times.inference_start_t_s >= answers["q0"].times.inference_end_t_s


def test_busy_is_not_the_answer_of_its_id_the_same_id_is_run_when_it_comes_again():
    """A busy refusal is repeated until acknowledged like any error, but it is not
    remembered as the id's answer: the ground retries the same id later and gets the
    real answer, acknowledged busy or not."""
    backend = FakeBackend()
    config = ServiceConfig(concurrency=1, max_queued=0, repeat_s=100.0)

    async def script(svc, clock, sent):
        svc.on_message(query("q0"))
        svc.on_message(query("q1"))  # busy, not acknowledged
        svc.on_message(query("q2"))  # busy, acknowledged below
        await clock.sleep_until(1.0)
        svc.on_message(encode(Ack(("q2",))))
        await clock.sleep_until(10.0)  # q0 done: room again
        svc.on_message(query("q1"))
        await clock.sleep_until(20.0)
        svc.on_message(query("q2"))
        await clock.sleep_until(30.0)
        svc.on_message(encode(Ack(("q0", "q1", "q2"))))
        await clock.sleep_until(500.0)

    sent, svc = run(backend, script, config)
    busy = [(t, e.id) for t, e in sent if isinstance(e, ErrorMessage)]
    assert busy == [(0.0, "q1"), (0.0, "q2")]  # the pending busy of q1 was dropped, not repeated
    assert sorted(a.id for a in of(sent, Answer)) == ["q0", "q1", "q2"]
    assert len(backend.calls) == 3
    assert svc.stats["queries_again_after_busy"] == 1 and svc.stats["refusals_acknowledged"] == 1
    assert svc.stats["answers_acknowledged"] == 3 and svc.unacknowledged == ()


def test_streaming_sends_chunks_before_the_answer_and_they_add_up_to_it():
    config = ServiceConfig(chunk_interval_s=0.02)

    async def script(svc, clock, sent):
        svc.on_message(query("q1", stream=True, max_new_tokens=8))
        await clock.sleep_until(10.0)

    sent, _ = run(FakeBackend(piece_pause_s=0.01), script, config)
    kinds = [type(m).__name__ for _, m in sent]
    chunks = of(sent, AnswerChunk)
    answer = of(sent, Answer)[0]
    assert len(chunks) >= 2 and kinds.index("Answer") == len(chunks)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert "".join(c.text for c in chunks) == answer.text
    assert all(c.t_s <= answer.times.answer_queued_t_s for c in chunks)


def test_the_tiny_model_answers_as_it_does_when_called_directly():
    from payloads.backends import make_backend

    backend = make_backend("tiny")
    params = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.9, seed=11)
    direct = backend.generate("Report the cloud cover.", params).text

    async def script(svc, clock, sent):
        svc.on_message(query("q1", "Report the cloud cover.", max_new_tokens=12, **_p(params)))
        await clock.sleep_until(30.0)

    sent, _ = run(backend, script)
    answer = of(sent, Answer)[0]
    assert answer.text == direct and answer.random_weights and answer.backend == "tiny"
    assert answer.times.ttft_s > 0 and answer.times.generate_s >= answer.times.ttft_s


def _p(params: GenerationParams) -> dict:
    return {"temperature": params.temperature, "top_p": params.top_p, "seed": params.seed}
