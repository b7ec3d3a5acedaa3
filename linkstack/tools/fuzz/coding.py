"""Fuzz targets: channel coding, CLTUs (BCH codeblocks) and frame synchronization (ASM).

Each decoder is checked against an independent computation: the CLTU decoder against
the encoder (every codeblock it accepts is within the bits it may correct), the frame
finder against a bit-by-bit extraction of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from linkstack.ccsds.coding.cltu import (
    TAIL_SEQUENCE,
    CltuDecoded,
    CltuEnd,
    DecodeMode,
    decode_cltu,
    encode_cltu,
)
from linkstack.ccsds.coding.randomizer import tc_randomize
from linkstack.ccsds.coding.sync import ASM, FrameSynchronizer, find_asm, find_frame
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target
from linkstack.tools.fuzz.framing import valid_tc

# -- CLTUs -----------------------------------------------------------------------------------------


def _valid_cltu(randomize: bool) -> Callable[[random.Random], bytes]:
    def gen(rng: random.Random) -> bytes:
        return encode_cltu(valid_tc(rng), randomize)

    return gen


def _codeblocks(info: bytes) -> np.ndarray:
    """The codeblocks (n x 8) of ``info`` (a multiple of 7 octets), by the encoder."""
    return np.frombuffer(encode_cltu(info)[2:-8], dtype=np.uint8).reshape(-1, 8)


def _bit_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.unpackbits(a ^ b, axis=1).sum(axis=1)


def _acceptable(block: bytes, mode: DecodeMode) -> bool:
    """Brute force: is ``block`` within 0 (DETECT) or 1 (CORRECT) bits of a codeblock?"""
    v = int.from_bytes(block, "big")
    flips = [0] if mode is DecodeMode.DETECT else [0] + [1 << bit for bit in range(64)]
    candidates = b"".join((v ^ f).to_bytes(8, "big") for f in flips)
    received = np.frombuffer(candidates, dtype=np.uint8).reshape(-1, 8)
    info = b"".join(candidates[i : i + 7] for i in range(0, len(candidates), 8))
    return bool((_bit_distances(_codeblocks(info), received) == 0).any())


def _cltu_decoder(mode: DecodeMode, randomize: bool) -> Decoder:
    """decode_cltu, checked against the encoder: every accepted codeblock is within
    0 / 1 bit of the codeblock its data encodes to, the corrections add up, and
    the codeblock that ended decoding is really refused (or is the tail)."""

    def decode(buf: bytes) -> object:
        got: CltuDecoded = decode_cltu(buf, mode, randomize)
        n = got.codeblocks
        if len(got.data) != 7 * n:
            raise FuzzCheckError(f"{len(got.data)} octets from {n} codeblocks")
        if n:
            raw = tc_randomize(got.data) if randomize else got.data
            received = np.frombuffer(buf, dtype=np.uint8, count=8 * n, offset=2).reshape(n, 8)
            d = _bit_distances(_codeblocks(raw), received)
            if d.max() > (0 if mode is DecodeMode.DETECT else 1):
                raise FuzzCheckError(f"a codeblock accepted {d.max()} bits from its re-encoding")
            if int(d.sum()) != got.corrected_bits:
                raise FuzzCheckError(f"{got.corrected_bits} bits said corrected, {d.sum()} were")
        at = 2 + 8 * n
        last = buf[at : at + 8]
        if got.end is CltuEnd.TRUNCATED:
            ok = len(last) < 8
        elif got.end is CltuEnd.TAIL:
            ok = last == TAIL_SEQUENCE
        else:
            ok = len(last) == 8 and last != TAIL_SEQUENCE and not _acceptable(last, mode)
        if not ok:
            raise FuzzCheckError(f"decoding ended with {got.end} on codeblock {last.hex()}")
        return got

    return decode


# -- frame synchronization -------------------------------------------------------------------------

_SYNC_FRAME_LEN = 64  # octets after the ASM: short, so that an input holds several CADUs


def _valid_cadus(rng: random.Random) -> bytes:
    """A few CADUs at a random bit offset after junk, perhaps inverted."""
    count = rng.randrange(1, 8)
    cadus = b"".join(ASM + rng.randbytes(_SYNC_FRAME_LEN) for _ in range(count))
    junk = rng.randrange(0, 200)  # bits
    n_bits = junk + 8 * len(cadus)
    v = (rng.getrandbits(junk) << 8 * len(cadus)) | int.from_bytes(cadus, "big")
    if rng.random() < 0.3:
        v ^= (1 << n_bits) - 1
    pad = -n_bits % 8
    return ((v << pad) | rng.getrandbits(pad)).to_bytes((n_bits + pad) // 8, "big")


def _find_frame_decoder(buf: bytes) -> object:
    """find_frame, checked against find_asm and a bit extraction of its own."""
    n = _SYNC_FRAME_LEN
    out = find_frame(buf, n)
    match = find_asm(buf, n)
    if (out is None) != (match is None):
        raise FuzzCheckError("find_frame and find_asm disagree")
    if out is None or match is None:
        return out
    total = 8 * len(buf)
    p = match.bit_offset
    if p + 32 + 8 * n > total:
        raise FuzzCheckError(f"ASM at bit {p} leaves no room for the frame")
    v = int.from_bytes(buf, "big")
    asm = (v >> (total - p - 32)) & 0xFFFFFFFF
    body = (v >> (total - p - 32 - 8 * n)) & ((1 << 8 * n) - 1)
    if match.inverted:
        asm, body = asm ^ 0xFFFFFFFF, body ^ ((1 << 8 * n) - 1)
    if (asm ^ int.from_bytes(ASM, "big")).bit_count() != match.errors or match.errors > 4:
        raise FuzzCheckError(f"ASM at bit {p} does not have the {match.errors} errors reported")
    if out != body.to_bytes(n, "big"):
        raise FuzzCheckError(f"frame at bit {p} is not the bits after the ASM")
    return out


def _sync_stream() -> Decoder:
    """One synchronizer fed every input in turn, as a continuous stream."""
    sync = FrameSynchronizer(_SYNC_FRAME_LEN, flywheel_frames=2)

    def decode(buf: bytes) -> object:
        got = []
        for i in range(0, max(len(buf), 1), 97):  # in pieces, like datagrams
            got += sync.push(buf[i : i + 97])
            if sync.buffered > sync.max_buffered:
                raise FuzzCheckError(f"holds {sync.buffered} octets, more than its bound")
        for frame in got:
            if len(frame) != _SYNC_FRAME_LEN:
                raise FuzzCheckError(f"emitted a frame of {len(frame)} octets")
        return got

    return decode


TARGETS: list[Target] = [
    Target(
        "cltu.decode",
        _valid_cltu(False),
        lambda: _cltu_decoder(DecodeMode.CORRECT, False),
        strict=True,
    ),
    Target(
        "cltu.detect+randomizer",
        _valid_cltu(True),
        lambda: _cltu_decoder(DecodeMode.DETECT, True),
        strict=True,
    ),
    Target(
        "sync.find_frame",
        _valid_cadus,
        lambda: _find_frame_decoder,
        strict=False,
        max_random_len=300,
    ),
    Target("sync.stream", _valid_cadus, _sync_stream, strict=False),
]
