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
  unavailable, prompt too long, rejected, malformed, busy: the one transient code,
  which the ground retries); the ground itself refuses with the same message, as
  the final answer its application gets (satellite ``""``): ``ground_queue_full``
  (its queue had no room) or ``deadline_exceeded`` (no answer within its deadline);
- ``k`` :class:`Ack` (ground -> satellite): the answers the ground has, so that
  the satellite stops repeating them. The TM downlink has no retransmission of
  its own; the satellite repeats an answer until it is acknowledged, and the
  ground keeps the first copy of each (exactly one answer per query).

Times are ``t_s`` of the emulation clock (seconds since the scenario epoch); a
timestamp not (yet) known is None: written as null (``ts``), or left out of the
answer's onboard times (``ti``). Times and the generation parameters ``T`` and ``p``
always travel as floats.

Decoding is strict, like the CCSDS decoders: it refuses with a
:class:`linkstack.errors.DecodeError` (layer ``msg``) naming the field anything
malformed, and the version field ``v`` decides what else it refuses:

- a message of a version we speak (:data:`MIN_VERSION` to :data:`VERSION`) must be
  exactly what :func:`encode` writes for it: one CBOR map and no octet after it, no
  duplicate key, no indefinite length, no unknown key (at the top level, in ``pa``
  or in ``ti``), no key left out (``ts`` is always there, null when not known), and the canonical
  encoding (shortest integers, lengths and floats, keys sorted). So whatever
  :func:`decode` accepts, :func:`encode` turns back into the same octets;
- a message of a newer version (``v`` greater than :data:`VERSION`) may carry keys
  that we do not know, at the top level and in the ``pa`` and ``ti`` maps: they are ignored
  (dropped), and the message decodes to what our version knows of it (re-encoded,
  it is the message of our version that we understood). Everything else is checked
  as for our version (the keys we know are all there, with their types and ranges;
  one map, no octet after it, no duplicate key, no indefinite length), except the
  canonical encoding. A newer version may add keys, never drop or retype ours, and
  a message type we do not know (``t``) is refused;
- an older version (below :data:`MIN_VERSION`, 1) is refused.

Versions: 1 is the first; 2 adds one onboard instant to the answer's ``ti``,
``pw`` (:attr:`OnboardTimes.power_asked_t_s`: when the satellite's power model
was asked, the start of the answer's ``power_wait``); 3 adds the answer's ``tm``
(:attr:`Answer.timing_source`: what its inference legs are, ``modelled:
ACCELERATOR/MODEL/PRECISION`` when a timing profile gave them; left out when the
satellite's host stopwatch measured them, :data:`HOST_TIMING`) and ``bw``
(:attr:`Answer.battery_wh`: the battery's charge when the inference ended, as the
satellite's power model books it, so that a ground in another process can see the
batteries; left out without a power model). A message is
written in the lowest version that can carry it, so that a run without a power
model or a timing profile sends what version 1 sent, octet for octet, and an
older peer reads a newer answer as a newer one (``pw`` and ``tm`` ignored: its
power wait counts in its onboard queue). Each version we speak is decoded exactly
(a version-1 message with ``pw`` is refused as an unknown key, a version-2 message
that version 1 could carry as not canonical, and so on).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cbor2

from linkstack.errors import DecodeError, EncodeError

VERSION = 3  # the newest version we speak (see the module docstring)
MIN_VERSION = 1
QUERY_APID = 0x100  # uplink: queries and acks, in TC Space Packets
ANSWER_APID = 0x101  # downlink: answers, chunks and errors, in TM Space Packets
MAX_MESSAGE_LEN = 1 << 20  # octets; refused before decoding
MAX_ID_LEN = 64
MAX_TIMING_SOURCE_LEN = 200
# what an answer without a timing source (``tm``) was timed with: the stopwatch of the
# host that ran the model
HOST_TIMING = "host stopwatch"

ERROR_CODES = (
    "model_unavailable",
    "prompt_too_long",
    "rejected",
    "malformed",
    "busy",  # transient: the ground queues the query again (payloads.client)
    "ground_queue_full",  # made by the ground, never sent by a satellite
    "deadline_exceeded",  # made by the ground, never sent by a satellite
)
TRANSIENT_ERROR_CODES = ("busy",)
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
    # version 2: the power model was asked (the inference started when it allowed)
    power_asked_t_s: float | None = None


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
    # version 3: what the inference legs are ("modelled: ACC/MODEL/PRECISION"); ""
    # (left out of the message): the host's stopwatch, HOST_TIMING
    timing_source: str = ""
    # version 3: the battery's charge (Wh) at the inference's end; None: no power model
    battery_wh: float | None = None

    @property
    def inference_timing(self) -> str:
        """What the inference legs are, said in full: the timing source or HOST_TIMING."""
        return self.timing_source or HOST_TIMING


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
_TIME_KEYS_V2 = {"power_asked_t_s": "pw"}


def _time_keys(version: int) -> dict[str, str]:
    return _TIME_KEYS | _TIME_KEYS_V2 if version >= 2 else _TIME_KEYS


def version_of(msg: Message) -> int:
    """The lowest version that carries ``msg``: what :func:`encode` writes."""
    if isinstance(msg, Answer) and (msg.timing_source or msg.battery_wh is not None):
        return 3
    if isinstance(msg, Answer) and msg.times.power_asked_t_s is not None:
        return 2
    return 1


def _check_id(msg_id: object) -> str:
    if not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID_LEN:
        raise EncodeError("msg", "id", f"must be a string of 1..{MAX_ID_LEN} characters")
    return msg_id


def _number(value: float | None) -> float | None:
    """A time or a parameter as it travels: always a float (an int written as one would
    not read back to the same octets), or None."""
    return None if value is None else float(value)


def _body(msg: Message) -> dict[str, Any]:
    """The CBOR map of one message, before its encoding."""
    version = version_of(msg)
    body: dict[str, Any] = {"v": version}
    if isinstance(msg, Query):
        pa = {short: getattr(msg.params, name) for name, short in _PARAM_KEYS.items()}
        body |= {
            "t": "q",
            "id": _check_id(msg.id),
            "pr": msg.prompt,
            "pa": pa | {"T": float(pa["T"]), "p": float(pa["p"])},
            "st": msg.stream,
            "ts": _number(msg.submit_t_s),
        }
    elif isinstance(msg, Answer):
        times = {short: getattr(msg.times, name) for name, short in _time_keys(version).items()}
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
            "ti": {k: float(v) for k, v in times.items() if v is not None},  # None: left out
        }
        if msg.timing_source:  # version 3; "" (the host's stopwatch): left out
            if len(msg.timing_source) > MAX_TIMING_SOURCE_LEN:
                raise EncodeError(
                    "msg", "timing_source", f"longer than {MAX_TIMING_SOURCE_LEN} characters"
                )
            body["tm"] = msg.timing_source
        if msg.battery_wh is not None:  # version 3; None (no power model): left out
            body["bw"] = float(msg.battery_wh)
    elif isinstance(msg, AnswerChunk):
        body |= {
            "t": "c",
            "id": _check_id(msg.id),
            "sq": msg.seq,
            "tx": msg.text,
            "ts": _number(msg.t_s),
        }
    elif isinstance(msg, ErrorMessage):
        if msg.code not in ERROR_CODES:
            raise EncodeError("msg", "code", f"must be one of {ERROR_CODES}, got {msg.code!r}")
        body |= {
            "t": "e",
            "id": _check_id(msg.id),
            "co": msg.code,
            "de": msg.detail,
            "sa": msg.satellite,
            "ts": _number(msg.t_s),
        }
    elif isinstance(msg, Ack):
        body |= {"t": "k", "ids": [_check_id(i) for i in msg.ids]}
    else:
        raise EncodeError("msg", "type", f"not a message: {type(msg).__name__}")
    return body


def _dumps(body: dict[str, Any]) -> bytes:
    return cbor2.dumps(body, canonical=True)  # shortest exact floats, sorted keys


def encode(msg: Message) -> bytes:
    """CBOR octets of one message: the canonical encoding of its map."""
    raw = _dumps(_body(msg))
    if len(raw) > MAX_MESSAGE_LEN:
        raise EncodeError("msg", "length", f"{len(raw)} octets exceed {MAX_MESSAGE_LEN}")
    return raw


# -- decoding -----------------------------------------------------------------------------


class _Reader:
    """Typed access to a decoded CBOR map, refusing with the field's name.

    ``exact`` (a message of our version): every key of the map must have been read when
    :meth:`finish` is called. Otherwise (a newer version) the keys not read are ignored.
    """

    def __init__(
        self, body: dict[Any, Any], where: str = "", exact: bool = True, version: int = VERSION
    ) -> None:
        self.body = body
        self.where = where
        self.exact = exact
        self.version = version
        self.read: set[str] = set()

    def _fail(self, key: str, rule: str) -> DecodeError:
        return DecodeError("msg", f"{self.where}{key}", rule)

    def get(self, key: str, kinds: tuple[type, ...], nullable: bool = False) -> Any:
        if key not in self.body:
            raise self._fail(key, "missing")
        self.read.add(key)
        value = self.body[key]
        if value is None and nullable:
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

    def nullable_number(self, key: str) -> float | None:
        """A number or null (not known); the key itself is always there."""
        value = self.get(key, (int, float), nullable=True)
        return None if value is None else float(value)

    def omissible_number(self, key: str) -> float | None:
        """A number, or None when the key is left out (never null)."""
        if key not in self.body:
            return None
        if self.body[key] is None:
            self.read.add(key)
            raise self._fail(key, "null: a time not known is left out, not written as null")
        return self.number(key)

    def omissible_text(self, key: str, max_len: int) -> str:
        """Text of 1..``max_len`` characters, or "" when the key is left out."""
        return self.text(key, max_len) if key in self.body else ""

    def flag(self, key: str) -> bool:
        return self.get(key, (bool,))

    def sub(self, key: str) -> _Reader:
        value = self.get(key, (dict,))
        return _Reader(value, f"{self.where}{key}.", self.exact, self.version)

    def finish(self) -> None:
        """Refuse a key that was not read, in a message of our version."""
        if self.exact:
            for key in self.body:
                if key not in self.read:
                    name = key if isinstance(key, str) else repr(key)
                    raise self._fail(name, f"unknown key in a version-{self.version} message")


def _load(raw: bytes) -> dict[Any, Any]:
    """The one CBOR map that ``raw`` holds, nothing before or after it."""
    fp = io.BytesIO(raw)
    try:
        body = cbor2.CBORDecoder(
            fp, allow_indefinite=False, allow_duplicate_keys=False, strict_hashable_types=True
        ).decode()
    except Exception as exc:  # cbor2 raises several kinds; all mean "not CBOR"
        raise DecodeError("msg", "cbor", f"not a CBOR item: {exc}") from None
    if not isinstance(body, dict):
        raise DecodeError("msg", "cbor", f"expected a map, got {type(body).__name__}")
    if fp.tell() != len(raw):
        raise DecodeError(
            "msg", "length", f"{len(raw) - fp.tell()} octets after the {fp.tell()}-octet map"
        )
    return body


def decode(raw: bytes | bytearray | memoryview) -> Message:
    """One message from its CBOR octets; malformed input raises DecodeError.

    A message of our version must be exactly what :func:`encode` writes for it: no
    unknown key, no key left out, the canonical encoding. A message of a newer version
    is read for the fields we know (with the same rules); the keys we do not know are
    ignored (see the module's docstring).
    """
    raw = bytes(raw)
    if len(raw) > MAX_MESSAGE_LEN:
        raise DecodeError("msg", "length", f"{len(raw)} octets exceed {MAX_MESSAGE_LEN}")
    body = _load(raw)
    version = _Reader(body).count("v", 0, 1 << 63)
    if version < MIN_VERSION:
        raise DecodeError(
            "msg", "v", f"version {version} is not supported (this speaks {MIN_VERSION}..{VERSION})"
        )
    r = _Reader(body, exact=version <= VERSION, version=min(version, VERSION))
    r.read.add("v")
    msg = _message(r)
    r.finish()
    if r.exact:
        _check_canonical(raw, msg)
    return msg


def _message(r: _Reader) -> Message:
    """The message of the map ``r`` reads (the sub-maps finished, not the map itself)."""
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
        pa.finish()
        return Query(
            r.text("id", MAX_ID_LEN), r.text("pr"), params, r.flag("st"), r.nullable_number("ts")
        )
    if kind == "a":
        ti = r.sub("ti")
        times = OnboardTimes(
            **{name: ti.omissible_number(short) for name, short in _time_keys(r.version).items()}
        )
        ti.finish()
        finish = r.text("fr")
        if finish not in FINISH_REASONS:
            raise DecodeError("msg", "fr", f"must be one of {FINISH_REASONS}, got {finish!r}")
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
            r.omissible_text("tm", MAX_TIMING_SOURCE_LEN) if r.version >= 3 else "",
            r.omissible_number("bw") if r.version >= 3 else None,
        )
    if kind == "c":
        return AnswerChunk(
            r.text("id", MAX_ID_LEN), r.count("sq"), r.text("tx"), r.nullable_number("ts")
        )
    if kind == "e":
        code = r.text("co")
        if code not in ERROR_CODES:
            raise DecodeError("msg", "co", f"must be one of {ERROR_CODES}, got {code!r}")
        return ErrorMessage(
            r.text("id", MAX_ID_LEN), code, r.text("de"), r.text("sa"), r.nullable_number("ts")
        )
    if kind == "k":
        ids = r.get("ids", (list,))
        if len(ids) > 4096 or not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LEN for i in ids):
            raise DecodeError("msg", "ids", "must be a list of at most 4096 ids")
        return Ack(tuple(ids))
    raise DecodeError("msg", "t", f"unknown message type {kind!r}")


# -- canonical form -------------------------------------------------------------------------

_CANONICAL = "canonical CBOR (shortest integers, lengths and floats; keys sorted)"


def _hex(octets: bytes) -> str:
    return octets.hex() if len(octets) <= 12 else f"{octets[:12].hex()}..."


def _check_canonical(raw: bytes, msg: Message) -> None:
    """Refuse ``raw`` unless it is what encode() writes for ``msg``, naming the first
    field whose octets differ."""
    again = _dumps(_body(msg))
    if again != raw:
        raise DecodeError("msg", *_difference(raw, again))


def _head(buf: bytes, pos: int) -> tuple[int, int, int]:
    """The major type, the argument and the end of the head of the item at ``pos``
    (definite lengths only: the map was decoded without indefinite ones)."""
    major, info = buf[pos] >> 5, buf[pos] & 0x1F
    if info < 24:
        return major, info, pos + 1
    size = 1 << (info - 24)  # 24..27: 1, 2, 4 or 8 octets follow
    return major, int.from_bytes(buf[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def _item_end(buf: bytes, pos: int) -> int:
    """Where the (well-formed, definite-length) CBOR item at ``pos`` ends."""
    major, arg, pos = _head(buf, pos)
    if major in (2, 3):  # byte and text strings
        return pos + arg
    if major == 6:  # a tag and its item
        return _item_end(buf, pos)
    if major in (4, 5):  # arrays and maps
        for _ in range(arg * (2 if major == 5 else 1)):
            pos = _item_end(buf, pos)
    return pos  # integers, simple values and floats: the head is all (major 7: arg is the value)


def _entries(buf: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The head of the map ``buf`` is and its entries, each (key octets, value octets)."""
    _, count, pos = _head(buf, 0)
    head, entries = buf[:pos], []
    for _ in range(count):
        mid = _item_end(buf, pos)
        end = _item_end(buf, mid)
        entries.append((buf[pos:mid], buf[mid:end]))
        pos = end
    return head, entries


def _difference(raw: bytes, canonical: bytes, where: str = "") -> tuple[str, str]:
    """The first field where the map ``raw`` and its canonical form differ, and how."""
    if raw[0] >> 5 != 5:  # a tag before the map
        return where.rstrip(".") or "cbor", f"not {_CANONICAL}: a tag before the map"
    raw_head, raw_entries = _entries(raw)
    head, entries = _entries(canonical)
    if raw_head != head:
        return where.rstrip(".") or "cbor", f"not {_CANONICAL}: the map's length is not shortest"
    for (raw_key, raw_value), (key, value) in zip(raw_entries, entries, strict=False):
        got = cbor2.loads(raw_key)
        name = where + (got if isinstance(got, str) else repr(got))
        if raw_key != key:
            if got == cbor2.loads(key):
                return name, f"not {_CANONICAL}: the key's length is not shortest"
            return name, f"not {_CANONICAL}: {cbor2.loads(key)!r} comes before this key"
        if raw_value != value:
            if raw_value[0] >> 5 == 5 and value[0] >> 5 == 5:
                return _difference(raw_value, value, name + ".")
            return name, f"not {_CANONICAL}: {_hex(raw_value)} where {_hex(value)} is written"
    return where.rstrip(".") or "cbor", f"not {_CANONICAL}"


def as_dict(msg: Message) -> dict:
    """A plain dict of a message (for JSON reports and logs)."""
    return {"type": type(msg).__name__, **asdict(msg)}
