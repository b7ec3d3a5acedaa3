"""Fuzz target: the query and answer messages (:mod:`payloads.messages`), the CBOR maps
that the Space Packets of APIDs 0x100 and 0x101 carry.

A message of our version that the decoder accepts must re-encode to exactly the input
octets. A message of a newer version may carry keys we do not know; the decoder keeps
what it knows, so such a message must re-encode (as our version) to octets that read
back as the same message.
"""

from __future__ import annotations

import random
from typing import Any

import cbor2

from linkstack.tools.fuzz.engine import FuzzCheckError, Target
from payloads import messages as m

_TEXTS = ("", "What is 2+2?", "4", "Summarise the pass over Mohe", "é ✓ 轨道", "x" * 70)


def _time(rng: random.Random) -> float | None:
    """None, a whole second (a short float on the wire), a half or any double."""
    return rng.choice(
        (None, float(rng.randrange(10**6)), rng.randrange(10**6) + 0.5, rng.uniform(0, 1e5))
    )


def _id(rng: random.Random) -> str:
    return rng.choice(("q", "q-", "query-")) + str(rng.randrange(10 ** rng.randrange(1, 9)))


def _message(rng: random.Random) -> m.Message:
    kind = rng.randrange(5)
    if kind == 0:
        params = m.Params(
            rng.randrange(1, 4096),
            rng.choice((0.0, 0.7, 1.0, rng.uniform(0, 2))),
            rng.choice((1.0, 0.9, rng.uniform(0.01, 1))),
            rng.random() < 0.5,
            rng.choice((0, rng.randrange(2**63))),
        )
        return m.Query(_id(rng), rng.choice(_TEXTS), params, rng.random() < 0.5, _time(rng))
    if kind == 1:
        times = m.OnboardTimes(*(_time(rng) for _ in range(9)))  # 9: version 2's too
        return m.Answer(
            _id(rng),
            rng.choice(_TEXTS),
            rng.randrange(5000),
            rng.randrange(5000),
            rng.choice(m.FINISH_REASONS),
            rng.choice(("tiny", "hf", "gguf")),
            rng.choice(("qwen3-tiny", "Qwen/Qwen3-0.6B")),
            rng.random() < 0.5,
            rng.choice(("", "CS-01", "CS-12")),
            times,
            # version 3: the timing source and the battery's charge ("", None: left out)
            rng.choice(("", "", "modelled: reference-744/qwen3-8b/int8")),
            rng.choice((None, None, 0.0, rng.uniform(0, 2000))),
        )
    if kind == 2:
        return m.AnswerChunk(_id(rng), rng.randrange(300), rng.choice(_TEXTS), _time(rng))
    if kind == 3:
        return m.ErrorMessage(
            _id(rng),
            rng.choice(m.ERROR_CODES),
            rng.choice(_TEXTS),
            rng.choice(("", "CS-03")),
            _time(rng),
        )
    return m.Ack(tuple(_id(rng) for _ in range(rng.randrange(6))))


def _newer(rng: random.Random, raw: bytes) -> bytes:
    """The message as a newer peer might write it: a higher version, and a key we do not
    know at the top level or in a nested map."""
    body = cbor2.loads(raw)
    body["v"] = m.VERSION + rng.randrange(1, 3)
    nested = [k for k in ("pa", "ti") if k in body]
    where = body[rng.choice(nested)] if nested and rng.random() < 0.5 else body
    where[rng.choice(("x", "zz", "new"))] = rng.choice((1, "text", 2.5, None, [1, 2], {"a": 1}))
    return bytes(cbor2.dumps(body, canonical=True))


def _valid(rng: random.Random) -> bytes:
    raw = m.encode(_message(rng))
    return _newer(rng, raw) if rng.random() < 0.1 else raw


def _version(buf: bytes) -> Any:
    body = cbor2.loads(buf)
    return body.get("v") if isinstance(body, dict) else None


def _decoder(buf: bytes) -> object:
    """Refused with DecodeError, or decoded into a message that re-encodes to the input
    (our version) or to octets that read back as the same message (a newer version)."""
    msg = m.decode(buf)
    again = m.encode(msg)
    if _version(buf) == m.VERSION:
        if again != buf:
            raise FuzzCheckError(f"accepted a message that re-encodes as {again.hex()}")
    elif m.decode(again) != msg:
        raise FuzzCheckError(f"a newer message {msg} reads back as {m.decode(again)}")
    return msg


TARGETS: list[Target] = [
    Target("messages.decode", _valid, lambda: _decoder, strict=True, max_random_len=300),
]
