"""Fuzzing of every decoder: ``linkstack fuzz``.

Each target feeds a decoder random byte strings and mutated valid units (bit
flips, truncation, extra octets, corruption with the FECF recomputed so that it
passes the CRC, random headers on valid bodies). What must hold:

- strict decoders (``unpack``) raise only :class:`DecodeError`; whatever they
  accept re-encodes to exactly the input octets (so nothing was misread);
- receivers (stateful, kept across inputs) never raise, and every packet they
  hand out is a well-formed Space Packet whose length field matches its size.

Any other outcome is a failure, reported with the input in hex to reproduce it.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from linkstack.aos import AosConfig, AosFrame, AosMasterChannel, AosReceiver, mpdu_pack, mpdu_unpack
from linkstack.crc import crc16_ccitt
from linkstack.cuc import CucFormat
from linkstack.errors import DecodeError
from linkstack.packet_zone import PacketZoneExtractor
from linkstack.spp import (
    PRIMARY_HEADER_LEN,
    PacketStreamParser,
    PacketType,
    SeqFlags,
    SpacePacket,
    parse_primary_header,
)
from linkstack.tc import TcConfig, TcFrame, TcFrameType, TcReceiver, TcVirtualChannel
from linkstack.tm import TmConfig, TmFrame, TmMasterChannel, TmReceiver

Decoder = Callable[[bytes], object]


@dataclass
class Target:
    name: str
    valid: Callable[[random.Random], bytes]  # a valid unit to mutate
    make: Callable[[], Decoder]  # a fresh decoder (receivers keep state across inputs)
    strict: bool  # True: DecodeError is allowed; False: nothing may be raised
    has_fecf: bool = False
    max_random_len: int = 1200


@dataclass
class Report:
    target: str
    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


class FuzzCheckError(AssertionError):
    pass


def _check_packet(pkt: bytes) -> None:
    h = parse_primary_header(pkt)
    if h.packet_length != len(pkt):
        raise FuzzCheckError(
            f"emitted packet of {len(pkt)} octets whose header says {h.packet_length}"
        )


# -- valid unit generators ---------------------------------------------------


def _random_packet(rng: random.Random, max_data: int = 300, sec: bool = False) -> SpacePacket:
    fields = dict(
        packet_type=PacketType(rng.randrange(2)),
        seq_count=rng.randrange(1 << 14),
        seq_flags=SeqFlags(rng.randrange(4)),
    )
    data = rng.randbytes(rng.randrange(0 if sec else 1, max_data))
    if sec:
        cuc = CucFormat(rng.randrange(1, 5), rng.randrange(0, 4))
        t_s = rng.random() * (1 << (8 * cuc.coarse_octets)) - 1
        return SpacePacket.timed(rng.randrange(2048), data, max(t_s, 0.0), cuc, **fields)
    return SpacePacket(rng.randrange(2048), data, **fields)


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
            mc.push(0, _random_packet(rng, 900).pack())
        mc.flush()
        frames = mc.drain()
        return rng.choice([*frames, mc.idle_frame()])

    return gen


_AOS = AosConfig(ocf=True, insert_zone_len=2)


def _valid_aos(rng: random.Random) -> bytes:
    mc = AosMasterChannel(_AOS)
    for _ in range(rng.randrange(1, 4)):
        mc.push(0, _random_packet(rng, 900).pack())
    mc.flush()
    return rng.choice([*mc.drain(), mc.idle_frame()])


def _valid_mpdu(rng: random.Random) -> bytes:
    zone = rng.randbytes(rng.randrange(1, 200))
    fhp = rng.choice([0x7FF, 0x7FE, rng.randrange(len(zone))])
    return mpdu_pack(fhp, zone)


_TC = TcConfig(scid=0x2F6)


def _valid_tc(rng: random.Random) -> bytes:
    vc = TcVirtualChannel(_TC, rng.randrange(64))
    kind = rng.choice([TcFrameType.AD, TcFrameType.BD])
    frames = vc.frames([_random_packet(rng, 2500).pack()], rng.randrange(64), kind)
    if rng.random() < 0.1:
        return TcFrame(_TC.scid, 0, b"\x00", TcFrameType.BC).pack()
    return rng.choice(frames).pack()


# -- decoders ------------------------------------------------------------------


def _strict(fn: Callable[[bytes], object], reencode: Callable[[object], bytes] | None) -> Decoder:
    def decode(buf: bytes) -> object:
        out = fn(buf)
        if reencode is not None and reencode(out) != buf:
            raise FuzzCheckError("accepted input does not re-encode to the same octets")
        return out

    return decode


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
                _check_packet(p)

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


def _receiver(rx_factory: Callable[[], object]) -> Callable[[], Decoder]:
    def make() -> Decoder:
        rx = rx_factory()

        def decode(buf: bytes) -> object:
            result = rx.receive(buf)
            packets = getattr(result, "packets", None) if result is not None else None
            if isinstance(result, list):  # TC receiver returns packets directly
                packets = [p.packet for p in result]
            for p in packets or ():
                _check_packet(p)
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
            _check_packet(p)
        return out

    return decode


TARGETS: list[Target] = [
    Target(
        "spp.unpack",
        lambda rng: _random_packet(rng).pack(),
        lambda: _strict(SpacePacket.unpack, lambda p: p.pack()),
        strict=True,
        max_random_len=400,
    ),
    Target(
        "spp.unpack+cuc",
        lambda rng: _random_packet(rng, sec=True).pack(),
        lambda: _strict(lambda b: SpacePacket.unpack(b, CucFormat()), lambda p: p.pack()),
        strict=True,
        max_random_len=400,
    ),
    Target(
        "spp.stream",
        lambda rng: b"".join(_random_packet(rng).pack() for _ in range(rng.randrange(1, 5))),
        _stream_decoder,
        strict=True,
        max_random_len=1500,
    ),
    Target("cuc.unpack", _valid_cuc, lambda: _cuc_decoder, strict=True, max_random_len=20),
    Target(
        "tm.unpack",
        _valid_tm(_TM),
        lambda: _strict(
            lambda b: TmFrame.unpack(b, True, _TM.frame_length), lambda f: f.pack(True)
        ),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "tm.unpack-nofecf",
        _valid_tm(_TM_NOFECF),
        lambda: _strict(lambda b: TmFrame.unpack(b, False), lambda f: f.pack(False)),
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
        _valid_tc,
        lambda: _strict(lambda b: TcFrame.unpack(b, True, True), lambda f: f.pack(True)),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "tc.unpack-nofecf",
        lambda rng: TcFrame.unpack(_valid_tc(rng)).pack(fecf=False),
        lambda: _strict(lambda b: TcFrame.unpack(b, False, True), lambda f: f.pack(False)),
        strict=True,
    ),
    Target(
        "tc.receiver",
        _valid_tc,
        _receiver(lambda: TcReceiver(_TC, check_scid=False)),
        strict=False,
        has_fecf=True,
    ),
    Target(
        "aos.unpack",
        _valid_aos,
        lambda: _strict(lambda b: AosFrame.unpack(b, _AOS), lambda f: f.pack(_AOS.fecf)),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "aos.mpdu",
        _valid_mpdu,
        lambda: _strict(mpdu_unpack, lambda r: mpdu_pack(*r)),
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
        lambda rng: b"".join(_random_packet(rng, 200).pack() for _ in range(3))[
            rng.randrange(20) :
        ],
        _extractor,
        strict=False,
        max_random_len=600,
    ),
]


def _mutate(rng: random.Random, target: Target) -> bytes:
    """One fuzz input: random octets, or a valid unit damaged in one of several ways."""
    choice = rng.randrange(6)
    if choice == 0:
        return rng.randbytes(rng.randrange(target.max_random_len + 1))
    unit = bytearray(target.valid(rng))
    if choice == 1 and unit:  # bit flips
        for _ in range(rng.randrange(1, 9)):
            unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
    elif choice == 2:  # truncation
        del unit[rng.randrange(len(unit) + 1) :]
    elif choice == 3:  # extra octets
        unit += rng.randbytes(rng.randrange(1, 16))
    elif choice == 4 and unit:  # random header octets on a valid body
        for i in range(min(len(unit), PRIMARY_HEADER_LEN + 2)):
            if rng.random() < 0.5:
                unit[i] = rng.randrange(256)
    elif unit:  # corrupted content that still passes the CRC
        for _ in range(rng.randrange(1, 5)):
            unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
    if target.has_fecf and choice in (4, 5) and len(unit) > 2:
        unit[-2:] = crc16_ccitt(bytes(unit[:-2])).to_bytes(2, "big")
    return bytes(unit)


def fuzz_target(target: Target, iterations: int, seed: int = 0, max_failures: int = 5) -> Report:
    rng = random.Random(f"{seed}:{target.name}")
    report = Report(target.name)
    decode = target.make()
    t0 = time.perf_counter()
    for _ in range(iterations):
        buf = _mutate(rng, target)
        report.inputs += 1
        try:
            decode(buf)
            report.accepted += 1
        except DecodeError:
            if not target.strict:
                report.failures.append(f"receiver raised DecodeError on {buf.hex()}")
            report.refused += 1
        except Exception as exc:  # the point of fuzzing: anything else is a bug
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            report.failures.append(f"{tb} on input {buf.hex()}")
        if len(report.failures) >= max_failures:
            break
    report.seconds = time.perf_counter() - t0
    return report


def run(
    iterations: int,
    seed: int = 0,
    only: list[str] | None = None,
    progress: Callable[[Report], None] | None = None,
) -> list[Report]:
    reports = []
    for target in TARGETS:
        if only and not any(target.name.startswith(o) for o in only):
            continue
        report = fuzz_target(target, iterations, seed)
        reports.append(report)
        if progress:
            progress(report)
    return reports
