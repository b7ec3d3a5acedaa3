"""The openai backend against a small OpenAI-compatible stub server run by the test."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from linkstack.errors import ConfigError
from payloads.backends import GenerationParams, ModelUnavailableError, make_backend

ANSWER = ["The ", "sea ", "is ", "18.5 °C", " here."]


class Stub:
    """A chat-completions server that streams ``pieces`` as Server-Sent Events.

    After the first piece it waits (up to 5 s) for the client to signal that the piece
    reached ``on_text``: if the client buffered the whole response instead of
    streaming, the signal never comes and ``streamed`` stays False.
    """

    def __init__(self) -> None:
        self.pieces = list(ANSWER)
        self.reasoning: list[str] = []
        self.finish_reason = "stop"
        self.usage: dict | None = {"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22}
        self.timings: dict | None = None
        self.models = ["qwen3-0.6b"]
        self.status = 200
        self.error_in_stream: str | None = None
        self.requests: list[dict] = []
        self.got_first = threading.Event()
        self.streamed: bool | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send_json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    data = [{"id": m, "object": "model"} for m in stub.models]
                    self._send_json(200, {"object": "list", "data": data})
                else:
                    self._send_json(404, {"error": "not found"})

            def _event(self, obj: object) -> None:
                payload = obj if isinstance(obj, str) else json.dumps(obj)
                self.wfile.write(f"data: {payload}\n\n".encode())
                self.wfile.flush()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if stub.status != 200:
                    self._send_json(stub.status, {"error": {"message": "nope"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                base = {"id": "c1", "object": "chat.completion.chunk", "model": body.get("model")}
                self.wfile.write(b": keep-alive comment\n\n")
                deltas = [{"reasoning_content": r} for r in stub.reasoning]
                deltas += [{"content": p} for p in stub.pieces]
                self._event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
                for i, delta in enumerate(deltas):
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    self._event({**base, "choices": [choice]})
                    if i == 0:
                        stub.streamed = stub.got_first.wait(5.0)
                if stub.error_in_stream:
                    self._event({"error": {"message": stub.error_in_stream}})
                    return
                final = {"index": 0, "delta": {}, "finish_reason": stub.finish_reason}
                last = {**base, "choices": [final]}
                if stub.timings is not None:
                    last["timings"] = stub.timings
                self._event(last)
                if stub.usage is not None:
                    self._event({**base, "choices": [], "usage": stub.usage})
                self._event("[DONE]")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.stop()


def _collector(stub: Stub) -> tuple[list[str], callable]:
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        stub.got_first.set()

    return pieces, on_text


def test_streams_the_answer(stub) -> None:
    backend = make_backend(f"openai:{stub.url}")
    assert backend.load() >= 0
    assert backend.model == "qwen3-0.6b"  # learnt from GET /models
    pieces, on_text = _collector(stub)
    g = backend.generate("sea temperature?", GenerationParams(), on_text=on_text)
    assert stub.streamed is True  # the first piece reached on_text before the rest was sent
    assert pieces == ANSWER
    assert g.text == "".join(ANSWER)
    assert (g.prompt_tokens, g.completion_tokens) == (17, 5)  # from the usage chunk
    assert g.finish_reason == "stop"
    assert (g.backend, g.model, g.random_weights) == ("openai", "qwen3-0.6b", False)
    assert 0 <= g.ttft_s <= g.generate_s
    backend.close()


def test_request_body(stub) -> None:
    backend = make_backend(f"openai:{stub.url}#my-model")
    _, on_text = _collector(stub)
    params = GenerationParams(max_new_tokens=33, temperature=0.7, top_p=0.9, seed=5)
    backend.generate("héllo", params, on_text=on_text)
    body = stub.requests[-1]
    assert body["model"] == "my-model"
    assert body["messages"] == [{"role": "user", "content": "héllo"}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (
        33,
        0.7,
        0.9,
        5,
    )
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    backend.generate("x", GenerationParams(thinking=True), on_text=on_text)
    assert stub.requests[-1]["chat_template_kwargs"] == {"enable_thinking": True}
    plain = make_backend(f"openai:{stub.url}", template_kwargs=False)
    plain.generate("x", GenerationParams(), on_text=on_text)
    assert "chat_template_kwargs" not in stub.requests[-1]


def test_llama_cpp_timings(stub) -> None:
    stub.timings = {
        "prompt_n": 17,
        "prompt_ms": 40.0,
        "predicted_n": 5,
        "predicted_ms": 100.0,
        "predicted_per_second": 50.0,
    }
    _, on_text = _collector(stub)
    g = make_backend(f"openai:{stub.url}").generate("x", GenerationParams(), on_text=on_text)
    assert g.ttft_s == pytest.approx(0.040)
    assert g.generate_s == pytest.approx(0.140)
    assert g.tokens_per_s == pytest.approx(50.0)


def test_without_usage_or_timings(stub) -> None:
    stub.usage = None
    stub.finish_reason = "length"
    backend = make_backend(f"openai:{stub.url}")
    _, on_text = _collector(stub)
    g = backend.generate("héllo", GenerationParams(max_new_tokens=5), on_text=on_text)
    assert g.completion_tokens == len(ANSWER)  # one chunk, one token
    assert g.prompt_tokens == backend.count_tokens("héllo")  # the upper bound
    assert g.finish_reason == "length"
    assert g.tokens_per_s > 0


def test_reasoning_is_put_back_as_think_block(stub) -> None:
    stub.reasoning = ["Let me ", "think."]
    pieces, on_text = _collector(stub)
    g = make_backend(f"openai:{stub.url}").generate(
        "x", GenerationParams(thinking=True), on_text=on_text
    )
    assert g.text == "<think>\nLet me think.\n</think>\n\n" + "".join(ANSWER)
    assert "".join(pieces) == g.text


def test_count_tokens_is_an_upper_bound() -> None:
    backend = make_backend("openai:http://127.0.0.1:9/v1", model="m")
    prompt = "ünïcode 🛰"
    assert backend.count_tokens(prompt) >= len(prompt.encode("utf-8"))
    assert backend.count_tokens(prompt, thinking=False) > backend.count_tokens(prompt, True)
    assert backend.max_prompt_tokens == 8192
    assert make_backend("openai:http://h/v1", max_prompt_tokens=100).max_prompt_tokens == 100


def test_server_error_mid_stream(stub) -> None:
    stub.error_in_stream = "out of memory"
    _, on_text = _collector(stub)
    with pytest.raises(ModelUnavailableError) as info:
        make_backend(f"openai:{stub.url}").generate("x", GenerationParams(), on_text=on_text)
    assert "out of memory" in info.value.rule


def test_http_errors(stub) -> None:
    backend = make_backend(f"openai:{stub.url}")
    backend.load()
    stub.status = 500
    with pytest.raises(ModelUnavailableError):
        backend.generate("x", GenerationParams())
    stub.status = 400
    with pytest.raises(ConfigError) as info:
        backend.generate("x", GenerationParams())
    assert "HTTP 400" in info.value.rule


def test_no_model_named_and_none_served(stub) -> None:
    stub.models = []
    with pytest.raises(ConfigError) as info:
        make_backend(f"openai:{stub.url}").load()
    assert info.value.field == "model"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_at_load() -> None:
    backend = make_backend(f"openai:http://127.0.0.1:{_closed_port()}/v1", model="m")
    with pytest.raises(ConfigError) as info:
        backend.load()
    assert info.value.field == "server"
    assert "cannot reach" in info.value.rule
    with pytest.raises(ConfigError):  # generate loads first, and says the same
        backend.generate("x", GenerationParams())


def test_server_gone_after_load() -> None:
    stub = Stub()
    backend = make_backend(f"openai:{stub.url}")
    backend.load()
    stub.stop()
    with pytest.raises(ModelUnavailableError) as info:
        backend.generate("x", GenerationParams())
    assert info.value.where == "openai"
    backend.close()
