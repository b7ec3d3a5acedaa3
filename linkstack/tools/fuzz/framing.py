"""Fuzz targets: Space Packets, CUC time codes, TM, TC and AOS frames, packet zones.

The strict ``unpack`` of each codec, and the stateful receivers that take frames
apart into packets (kept across inputs, like a link's).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from linkstack.ccsds.aos import (
    AosConfig,
    AosFrame,
    AosMasterChannel,
    AosReceiver,
    mpdu_pack,
    mpdu_unpack,
)
from linkstack.ccsds.cuc import CucFormat
from linkstack.ccsds.packet_zone import PacketZoneExtractor
from linkstack.ccsds.spp import PacketStreamParser, PacketType, SeqFlags, SpacePacket
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcReceiver, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel, TmReceiver
from linkstack.errors import DecodeError
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target, check_packet, strict

# -- valid units -----------------------------------------------------------------------------------


def random_packet(rng: random.Random, max_data: int = 300, sec: bool = False) -> SpacePacket:
    packet_type = PacketType(rng.randrange(2))
    seq_count = rng.randrange(1 << 14)
    seq_flags = SeqFlags(rng.randrange(4))
    data = rng.randbytes(rng.randrange(0 if sec else 1, max_data))
    if sec:
        cuc = CucFormat(rng.randrange(1, 5), rng.randrange(0, 4))
        t_s = rng.random() * (1 << (8 * cuc.coarse_octets)) - 1
        return SpacePacket.timed(
            rng.randrange(2048),
            data,
            max(t_s, 0.0),
            cuc,
            packet_type=packet_type,
            seq_count=seq_count,
            seq_flags=seq_flags,
        )
    return SpacePacket(
        rng.randrange(2048),
        data,
        packet_type=packet_type,
        seq_count=seq_count,
        seq_flags=seq_flags,
    )


def _valid_cuc(rng: random.Random) -> bytes:
    cuc = CucFormat(rng.randrange(1, 8), rng.randrange(0, 11))
    return cuc.encode_ticks(
        rng.randrange(1 << (8 * cuc.coarse_octets)), rng.randrange(1 << (8 * cuc.fine_octets))
    )


_TM = TmConfig(ocf=True, secondary_header_len=3)
_TM_NOFECF = TmConfig(fecf=False)


def _valid_tm(cfg: TmConfig) -> Callable[[random.Random], bytes]:
    def gen(rng: random.Random) -> bytes:
        mc = TmMasterChannel(cfg)
        for _ in range(rng.randrange(1, 4)):
            mc.push(0, random_packet(rng, 900).pack())
        mc.flush()
        frames = mc.drain()
        return rng.choice([*frames, mc.idle_frame()])

    return gen


_AOS = AosConfig(ocf=True, insert_zone_len=2)


def _valid_aos(rng: random.Random) -> bytes:
    mc = AosMasterChannel(_AOS)
    for _ in range(rng.randrange(1, 4)):
        mc.push(0, random_packet(rng, 900).pack())
    mc.flush()
    return rng.choice([*mc.drain(), mc.idle_frame()])


def _valid_mpdu(rng: random.Random) -> bytes:
    zone = rng.randbytes(rng.randrange(1, 200))
    fhp = rng.choice([0x7FF, 0x7FE, rng.randrange(len(zone))])
    return mpdu_pack(fhp, zone)


TC = TcConfig(scid=0x2F6)  # the TC channel of every target that sends TC frames


def valid_tc(rng: random.Random) -> bytes:
    vc = TcVirtualChannel(TC, rng.randrange(64))
    kind = rng.choice([TcFrameType.AD, TcFrameType.BD])
    frames = vc.frames([random_packet(rng, 2500).pack()], rng.randrange(64), kind)
    if rng.random() < 0.1:
        return TcFrame(TC.scid, 0, b"\x00", TcFrameType.BC).pack()
    return rng.choice(frames).pack()


# -- decoders --------------------------------------------------------------------------------------


def _cuc_decoder(buf: bytes) -> object:
    value, n = CucFormat().unpack(buf)
    if not 0 < n <= len(buf) or value.coarse >> (8 * value.coarse_octets):
        raise FuzzCheckError(f"inconsistent CUC decode {value} from {n} octets")
    return value


def _stream_decoder() -> Decoder:
    def decode(buf: bytes) -> object:
        parser = PacketStreamParser()
        got: list[bytes] = []

        def check() -> None:
            if b"".join(got) != buf[: sum(map(len, got))]:
                raise FuzzCheckError("stream parser output is not a prefix of its input")
            for p in got:
                check_packet(p)

        for i in range(0, len(buf), 97):  # fed in pieces, like a socket would
            parser.feed(buf[i : i + 97])
            try:
                for p in parser:
                    got.append(p)
            except DecodeError:
                check()  # what came out before the refusal must still be right
                raise
        check()
        return got

    return decode


class _Receiver(Protocol):
    """A stateful receiver: a frame in, what it took out of it (packets) out."""

    def receive(self, frame: bytes, /) -> object: ...


def _receiver(rx_factory: Callable[[], _Receiver]) -> Callable[[], Decoder]:
    def make() -> Decoder:
        rx = rx_factory()

        def decode(buf: bytes) -> object:
            result = rx.receive(buf)
            packets = getattr(result, "packets", None) if result is not None else None
            if isinstance(result, list):  # TC receiver returns packets directly
                packets = [p.packet for p in result]
            for p in packets or ():
                check_packet(p)
            return result

        return decode

    return make


def _extractor() -> Decoder:
    ex = PacketZoneExtractor()
    rng = random.Random(0)

    def decode(buf: bytes) -> object:
        if not buf:
            return []
        fhp = rng.choice([0x7FF, 0x7FE, rng.randrange(len(buf) + 3)])
        out = ex.push(buf, fhp, rng.random() < 0.9)
        for p in out:
            check_packet(p)
        return out

    return decode


TARGETS: list[Target] = [
    Target(
        "spp.unpack",
        lambda rng: random_packet(rng).pack(),
        lambda: strict(SpacePacket.unpack, lambda p: p.pack()),
        strict=True,
        max_random_len=400,
    ),
    Target(
        "spp.unpack+cuc",
        lambda rng: random_packet(rng, sec=True).pack(),
        lambda: strict(lambda b: SpacePacket.unpack(b, CucFormat()), lambda p: p.pack()),
        strict=True,
        max_random_len=400,
    ),
    Target(
        "spp.stream",
        lambda rng: b"".join(random_packet(rng).pack() for _ in range(rng.randrange(1, 5))),
        _stream_decoder,
        strict=True,
        max_random_len=1500,
    ),
    Target("cuc.unpack", _valid_cuc, lambda: _cuc_decoder, strict=True, max_random_len=20),
    Target(
        "tm.unpack",
        _valid_tm(_TM),
        lambda: strict(lambda b: TmFrame.unpack(b, True, _TM.frame_length), lambda f: f.pack(True)),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "tm.unpack-nofecf",
        _valid_tm(_TM_NOFECF),
        lambda: strict(lambda b: TmFrame.unpack(b, False), lambda f: f.pack(False)),
        strict=True,
    ),
    Target(
        "tm.receiver",
        _valid_tm(_TM),
        _receiver(lambda: TmReceiver(_TM, check_scid=False)),
        strict=False,
        has_fecf=True,
    ),
    Target(
        "tm.receiver-nofecf",
        _valid_tm(_TM_NOFECF),
        _receiver(lambda: TmReceiver(_TM_NOFECF, check_scid=False)),
        strict=False,
    ),
    Target(
        "tc.unpack",
        valid_tc,
        lambda: strict(lambda b: TcFrame.unpack(b, True, True), lambda f: f.pack(True)),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "tc.unpack-nofecf",
        lambda rng: TcFrame.unpack(valid_tc(rng)).pack(fecf=False),
        lambda: strict(lambda b: TcFrame.unpack(b, False, True), lambda f: f.pack(False)),
        strict=True,
    ),
    Target(
        "tc.receiver",
        valid_tc,
        _receiver(lambda: TcReceiver(TC, check_scid=False)),
        strict=False,
        has_fecf=True,
    ),
    Target(
        "aos.unpack",
        _valid_aos,
        lambda: strict(lambda b: AosFrame.unpack(b, _AOS), lambda f: f.pack(_AOS.fecf)),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "aos.mpdu",
        _valid_mpdu,
        lambda: strict(mpdu_unpack, lambda r: mpdu_pack(*r)),
        strict=True,
        max_random_len=300,
    ),
    Target(
        "aos.receiver",
        _valid_aos,
        _receiver(lambda: AosReceiver(_AOS, check_scid=False)),
        strict=False,
        has_fecf=True,
    ),
    Target(
        "packet_zone.extractor",
        lambda rng: b"".join(random_packet(rng, 200).pack() for _ in range(3))[rng.randrange(20) :],
        _extractor,
        strict=False,
        max_random_len=600,
    ),
]
