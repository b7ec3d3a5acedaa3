"""Query and answer messages: the application layer between the ground and the satellites.

Compact binary: each message is one CBOR map ``{"v": 1, "t": <type>, ...}`` with
short keys, carried in Space Packets (segmented when larger than one packet;
see the APIDs below). Types:

- ``q`` :class:`Query` (ground -> satellite): id, prompt, generation parameters,
  whether to stream, the ground's submit time;
- ``a`` :class:`Answer` (satellite -> ground): id, the whole text, token counts,
  finish reason, the backend and model (and whether its weights are random), and
  the onboard timestamps and timings;
- ``c`` :class:`AnswerChunk` (satellite -> ground): a piece of a streamed answer,
  numbered; the final :class:`Answer` still carries the whole text, so a lost
  chunk costs a preview, never the answer;
- ``e`` :class:`ErrorMessage` (satellite -> ground): a query refused (model
  unavailable, prompt too long, rejected, malformed);
- ``k`` :class:`Ack` (ground -> satellite): the answers the ground has, so that
  the satellite stops repeating them. The TM downlink has no retransmission of
  its own; the satellite repeats an answer until it is acknowledged, and the
  ground keeps the first copy of each (exactly one answer per query).

Times are ``t_s`` of the emulation clock (seconds since the scenario epoch); a
timestamp not (yet) known is None. Decoding refuses anything malformed with a
:class:`linkstack.errors.DecodeError` (layer ``msg``) naming the field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cbor2

from linkstack.errors import DecodeError, EncodeError

VERSION = 1
QUERY_APID = 0x100  # uplink: queries and acks, in TC Space Packets
ANSWER_APID = 0x101  # downlink: answers, chunks and errors, in TM Space Packets
MAX_MESSAGE_LEN = 1 << 20  # octets; refused before decoding
MAX_ID_LEN = 64

ERROR_CODES = ("model_unavailable", "prompt_too_long", "rejected", "malformed", "busy")
FINISH_REASONS = ("stop", "length", "error")

# What a message is about, for whoever follows it without decoding it (the
# emulator's trace): ("q", id) for a query, ("a", id) for an answer or an error to
# it. Whoever makes a message knows its key and hands it along with the octets.
MessageKey = tuple[str, str]


def query_key(msg_id: str) -> MessageKey:
    return ("q", msg_id)


def answer_key(msg_id: str) -> MessageKey:
    return ("a", msg_id)


@dataclass(frozen=True, slots=True)
class Params:
    """Generation parameters as they travel (see payloads.backends.GenerationParams)."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    thinking: bool = False
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    prompt: str
    params: Params = field(default_factory=Params)
    stream: bool = False
    submit_t_s: float | None = None


@dataclass(frozen=True, slots=True)
class OnboardTimes:
    """When things happened on board (``..._t_s``) and how long the model took (``..._s``)."""

    query_complete_t_s: float | None = None  # the last segment of the query arrived
    inference_start_t_s: float | None = None
    first_token_t_s: float | None = None
    inference_end_t_s: float | None = None
    answer_queued_t_s: float | None = None  # handed to the downlink
    ttft_s: float | None = None  # the backend's own stopwatch
    generate_s: float | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    id: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    backend: str
    model: str
    random_weights: bool
    satellite: str = ""
    times: OnboardTimes = field(default_factory=OnboardTimes)


@dataclass(frozen=True, slots=True)
class AnswerChunk:
    id: str
    seq: int
    text: str
    t_s: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    id: str
    code: str
    detail: str = ""
    satellite: str = ""
    t_s: float | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    ids: tuple[str, ...]


Message = Query | Answer | AnswerChunk | ErrorMessage | Ack

# -- encoding -----------------------------------------------------------------------------

_PARAM_KEYS = {
    "max_new_tokens": "n",
    "temperature": "T",
    "top_p": "p",
    "thinking": "th",
    "seed": "s",
}
# the wire keys are short (and fixed: renaming a field does not change the format)
_TIME_KEYS = {
    "query_complete_t_s": "qc",
    "inference_start_t_s": "is",
    "first_token_t_s": "ft",
    "inference_end_t_s": "ie",
    "answer_queued_t_s": "aq",
    "ttft_s": "ttft",
    "generate_s": "gen",
    "tokens_per_s": "tps",
}


def _check_id(msg_id: object) -> str:
    if not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID_LEN:
        raise EncodeError("msg", "id", f"must be a string of 1..{MAX_ID_LEN} characters")
    return msg_id


def encode(msg: Message) -> bytes:
    """CBOR octets of one message."""
    body: dict[str, Any] = {"v": VERSION}
    if isinstance(msg, Query):
        body |= {
            "t": "q",
            "id": _check_id(msg.id),
            "pr": msg.prompt,
            "pa": {short: getattr(msg.params, name) for name, short in _PARAM_KEYS.items()},
            "st": msg.stream,
            "ts": msg.submit_t_s,
        }
    elif isinstance(msg, Answer):
        times = {short: getattr(msg.times, name) for name, short in _TIME_KEYS.items()}
        body |= {
            "t": "a",
            "id": _check_id(msg.id),
            "tx": msg.text,
            "pt": msg.prompt_tokens,
            "ct": msg.completion_tokens,
            "fr": msg.finish_reason,
            "be": msg.backend,
            "mo": msg.model,
            "rw": msg.random_weights,
            "sa": msg.satellite,
            "ti": {k: v for k, v in times.items() if v is not None},
        }
    elif isinstance(msg, AnswerChunk):
        body |= {"t": "c", "id": _check_id(msg.id), "sq": msg.seq, "tx": msg.text, "ts": msg.t_s}
    elif isinstance(msg, ErrorMessage):
        if msg.code not in ERROR_CODES:
            raise EncodeError("msg", "code", f"must be one of {ERROR_CODES}, got {msg.code!r}")
        body |= {
            "t": "e",
            "id": _check_id(msg.id),
            "co": msg.code,
            "de": msg.detail,
            "sa": msg.satellite,
            "ts": msg.t_s,
        }
    elif isinstance(msg, Ack):
        body |= {"t": "k", "ids": [_check_id(i) for i in msg.ids]}
    else:
        raise EncodeError("msg", "type", f"not a message: {type(msg).__name__}")
    raw = cbor2.dumps(body, canonical=True)  # shortest exact floats, sorted keys
    if len(raw) > MAX_MESSAGE_LEN:
        raise EncodeError("msg", "length", f"{len(raw)} octets exceed {MAX_MESSAGE_LEN}")
    return raw


# -- decoding -----------------------------------------------------------------------------


class _Reader:
    """Typed access to a decoded CBOR map, refusing with the field's name."""

    def __init__(self, body: dict, where: str = "") -> None:
        self.body = body
        self.where = where

    def _fail(self, key: str, rule: str) -> DecodeError:
        return DecodeError("msg", f"{self.where}{key}", rule)

    def get(self, key: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
        if key not in self.body:
            if optional:
                return None
            raise self._fail(key, "missing")
        value = self.body[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in kinds:
            raise self._fail(key, f"expected {'/'.join(k.__name__ for k in kinds)}, got bool")
        if not isinstance(value, kinds):
            names = "/".join(k.__name__ for k in kinds)
            raise self._fail(key, f"expected {names}, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self._fail(key, "must be finite")
        return value

    def text(self, key: str, max_len: int | None = None) -> str:
        value = self.get(key, (str,))
        if max_len is not None and not 0 < len(value) <= max_len:
            raise self._fail(key, f"must hold 1..{max_len} characters")
        return value

    def count(self, key: str, lo: int = 0, hi: int = 1 << 31) -> int:
        value = self.get(key, (int,))
        if not lo <= value <= hi:
            raise self._fail(key, f"must be in {lo}..{hi}, got {value}")
        return value

    def number(self, key: str) -> float:
        return float(self.get(key, (int, float)))

    def optional_number(self, key: str) -> float | None:
        value = self.get(key, (int, float), optional=True)
        return None if value is None else float(value)

    def flag(self, key: str) -> bool:
        return self.get(key, (bool,))

    def sub(self, key: str) -> _Reader:
        value = self.get(key, (dict,))
        return _Reader(value, f"{self.where}{key}.")


def decode(raw: bytes | bytearray | memoryview) -> Message:
    """One message from its CBOR octets; malformed input raises DecodeError."""
    if len(raw) > MAX_MESSAGE_LEN:
        raise DecodeError("msg", "length", f"{len(raw)} octets exceed {MAX_MESSAGE_LEN}")
    try:
        body = cbor2.loads(bytes(raw))
    except Exception as exc:  # cbor2 raises several kinds; all mean "not CBOR"
        raise DecodeError("msg", "cbor", f"not a CBOR item: {exc}") from None
    if not isinstance(body, dict):
        raise DecodeError("msg", "cbor", f"expected a map, got {type(body).__name__}")
    r = _Reader(body)
    version = r.get("v", (int,))
    if version != VERSION:
        raise DecodeError("msg", "v", f"version {version} is not supported (this is {VERSION})")
    kind = r.get("t", (str,))
    if kind == "q":
        pa = r.sub("pa")
        params = Params(
            pa.count("n", 1, 1 << 20),
            pa.number("T"),
            pa.number("p"),
            pa.flag("th"),
            pa.count("s", 0, (1 << 63) - 1),
        )
        if not 0.0 <= params.temperature <= 10.0 or not 0.0 < params.top_p <= 1.0:
            raise DecodeError("msg", "pa", "temperature must be in 0..10 and top_p in (0, 1]")
        return Query(
            r.text("id", MAX_ID_LEN), r.text("pr"), params, r.flag("st"), r.optional_number("ts")
        )
    if kind == "a":
        ti = r.sub("ti")
        finish = r.text("fr")
        if finish not in FINISH_REASONS:
            raise DecodeError("msg", "fr", f"must be one of {FINISH_REASONS}, got {finish!r}")
        times = OnboardTimes(
            **{name: ti.optional_number(short) for name, short in _TIME_KEYS.items()}
        )
        return Answer(
            r.text("id", MAX_ID_LEN),
            r.text("tx"),
            r.count("pt"),
            r.count("ct"),
            finish,
            r.text("be"),
            r.text("mo"),
            r.flag("rw"),
            r.text("sa"),
            times,
        )
    if kind == "c":
        return AnswerChunk(
            r.text("id", MAX_ID_LEN), r.count("sq"), r.text("tx"), r.optional_number("ts")
        )
    if kind == "e":
        code = r.text("co")
        if code not in ERROR_CODES:
            raise DecodeError("msg", "co", f"must be one of {ERROR_CODES}, got {code!r}")
        return ErrorMessage(
            r.text("id", MAX_ID_LEN), code, r.text("de"), r.text("sa"), r.optional_number("ts")
        )
    if kind == "k":
        ids = r.get("ids", (list,))
        if len(ids) > 4096 or not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LEN for i in ids):
            raise DecodeError("msg", "ids", "must be a list of at most 4096 ids")
        return Ack(tuple(ids))
    raise DecodeError("msg", "t", f"unknown message type {kind!r}")


def as_dict(msg: Message) -> dict:
    """A plain dict of a message (for JSON reports and logs)."""
    return {"type": type(msg).__name__, **asdict(msg)}
