"""Fuzz targets of what outside software hands the daemons: byte streams cut into
units (:class:`~linkstack.daemon.endpoints.UnitStream`: the gateway's and the radio's
TCP streams) and TM frames of flight software's own that a satellite multiplexes
(:meth:`~linkstack.ccsds.tm.TmMasterChannel.multiplex`)."""

from __future__ import annotations

import random
from collections.abc import Callable

from linkstack.ccsds.coding.cltu import START_SEQUENCE, TAIL_SEQUENCE, encode_cltu
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.daemon.endpoints import UnitStream
from linkstack.errors import EncodeError
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target, check_packet
from linkstack.tools.fuzz.framing import random_packet, valid_tc

_TM = TmConfig(frame_length=128, scid=0x47, ocf=True)


def _stream(kind: str, length: int | None = None) -> Decoder:
    """Cut the input, fed in pieces as a socket would hand it; what came out must be
    the input's prefix, unit by unit of the right shape, even when a refusal ends it."""

    def decode(buf: bytes) -> object:
        stream = UnitStream(kind, length)
        got: list[bytes] = []

        def check() -> None:
            if b"".join(got) != buf[: sum(map(len, got))]:
                raise FuzzCheckError("the units are not the stream's prefix")
            for unit in got:
                if kind == "tc_frame" and len(unit) != ((unit[2] & 3) << 8 | unit[3]) + 1:
                    raise FuzzCheckError("a TC frame cut off its length field")
                if kind == "cltu" and not (
                    unit.startswith(START_SEQUENCE) and unit.endswith(TAIL_SEQUENCE)
                ):
                    raise FuzzCheckError("a CLTU without its start or tail sequence")
                if kind == "packet":
                    check_packet(unit)

        try:
            for i in range(0, len(buf), 61):
                got += stream.feed(buf[i : i + 61])
        except Exception:
            check()
            raise
        check()
        return got

    return decode


def _valid_stream(kind: str) -> Callable[[random.Random], bytes]:
    def valid(rng: random.Random) -> bytes:
        n = rng.randrange(1, 4)
        if kind == "packet":
            return b"".join(random_packet(rng).pack() for _ in range(n))
        frames = [valid_tc(rng) for _ in range(n)]
        if kind == "cltu":
            return b"".join(encode_cltu(f, rng.random() < 0.5) for f in frames)
        return b"".join(frames)

    return valid


def _valid_outside_frame(rng: random.Random) -> bytes:
    """A frame of virtual channel 1 for this master channel (made by another one)."""
    other = TmMasterChannel(_TM, vcids=(1,))
    other.ocf = rng.randbytes(4)
    other.push(1, random_packet(rng, max_data=80).pack())
    other.flush(1)
    return other.drain()[0]


def _multiplex() -> Decoder:
    mc = TmMasterChannel(_TM)

    def decode(buf: bytes) -> object:
        count = mc.mc_count
        keep = bool(buf[-1:] and buf[-1] & 1)
        frame = mc.multiplex(buf, keep_ocf=keep)
        ocf_at = _TM.frame_length - 6
        kept = frame[:ocf_at] == buf[:2] + bytes([count]) + buf[3:ocf_at]
        if len(frame) != _TM.frame_length or crc16_ccitt(frame) or not kept:
            raise FuzzCheckError("multiplexing changed more than the count, OCF and FECF")
        if frame[ocf_at : ocf_at + 4] != (buf[ocf_at : ocf_at + 4] if keep else mc.ocf):
            raise FuzzCheckError("the OCF is not the one asked for")
        return frame

    return decode


def _stream_target(kind: str) -> Target:
    return Target(
        f"stream.{kind}",
        _valid_stream(kind),
        lambda: _stream(kind),
        strict=True,
        max_random_len=1500,
    )


TARGETS: list[Target] = [
    *(_stream_target(kind) for kind in ("tc_frame", "cltu", "packet")),
    Target(
        "tm.multiplex",
        _valid_outside_frame,
        _multiplex,
        strict=True,
        has_fecf=True,
        max_random_len=200,
        refusal=EncodeError,
    ),
]
