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

import io
import json
import random
import struct
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from channels.orbit import parse_tles
from linkstack.capture.pcap import LAYERS, MAX_UNIT_LEN, PcapCapture, PcapReader, ipv4_checksum
from linkstack.ccsds.aos import (
    AosConfig,
    AosFrame,
    AosMasterChannel,
    AosReceiver,
    mpdu_pack,
    mpdu_unpack,
)
from linkstack.ccsds.coding.chains import (
    CaduCoding,
    CaduReceiver,
    CaduTransmitter,
    CltuReceiver,
    CltuTransmitter,
)
from linkstack.ccsds.coding.cltu import (
    TAIL_SEQUENCE,
    CltuDecoded,
    CltuEnd,
    DecodeMode,
    decode_cltu,
    encode_cltu,
)
from linkstack.ccsds.coding.randomizer import tc_randomize
from linkstack.ccsds.coding.rs import ReedSolomon
from linkstack.ccsds.coding.sync import ASM, FrameSynchronizer, find_asm, find_frame
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock, unpack_control_command
from linkstack.ccsds.cop1.farm import Farm, FarmEvent, FarmState
from linkstack.ccsds.cop1.fop import Directive, Fop, FopConfig, FopState, Transmit
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.cuc import CucFormat
from linkstack.ccsds.packet_zone import PacketZoneExtractor
from linkstack.ccsds.spp import (
    PRIMARY_HEADER_LEN,
    PacketStreamParser,
    PacketType,
    SeqFlags,
    SpacePacket,
    parse_primary_header,
)
from linkstack.ccsds.tc import (
    TcConfig,
    TcFrame,
    TcFrameType,
    TcReceiver,
    TcVirtualChannel,
    frame_length,
)
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel, TmReceiver
from linkstack.conformance.passive.broken import build as _conform_build
from linkstack.conformance.passive.checker import check_capture as _check_capture
from linkstack.conformance.passive.profile import load_profile as _load_profile
from linkstack.daemon import mqtt as _mqtt
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime import scenario as _scenario

Decoder = Callable[[bytes], object]


@dataclass
class Target:
    name: str
    valid: Callable[[random.Random], bytes]  # a valid unit to mutate
    make: Callable[[], Decoder]  # a fresh decoder (receivers keep state across inputs)
    strict: bool  # True: DecodeError is allowed; False: nothing may be raised
    has_fecf: bool = False
    max_random_len: int = 1200
    refusal: type[Exception] = DecodeError  # what a clean refusal of bad input raises
    # makes a damaged unit pass its checksum again, so that the damage reaches the
    # parser behind it (like recomputing the FECF of a frame)
    fix: Callable[[bytes], bytes] | None = None


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


# -- channel coding: CLTUs and frame synchronization ----------------------------


def _valid_cltu(randomize: bool) -> Callable[[random.Random], bytes]:
    def gen(rng: random.Random) -> bytes:
        return encode_cltu(_valid_tc(rng), randomize)

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


def _cltu_decoder(mode: DecodeMode, randomize: bool) -> Callable[[], Decoder]:
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


# -- Reed-Solomon and the coded chains -------------------------------------------

_RS = ReedSolomon(16, 2, 2 * 60)  # shortened, interleaved: small units, every path


def _valid_rs(rng: random.Random) -> bytes:
    return _RS.encode(rng.randbytes(_RS.frame_length))


def _rs_decoder(buf: bytes) -> object:
    """What the decoder says it corrected must be the codeword nearest to the input:
    re-encoding it differs from the input in exactly the symbols it counted,
    at most E per codeword."""
    got = _RS.decode(buf)
    if got.frame is not None:
        fixed = _RS.encode(got.frame)
        for j, count in enumerate(got.corrected):
            diff = sum(a != b for a, b in zip(fixed[j::2], buf[j::2], strict=True))
            if diff != count or count > 16:
                raise FuzzCheckError(f"codeword {j}: {count} said corrected, {diff} differ")
    return got


_CADU_CODING = CaduCoding(rs_e=8, rs_depth=1)
_CADU_FRAME_LEN = 100


def _valid_cadu(rng: random.Random) -> bytes:
    return CaduTransmitter(_CADU_FRAME_LEN, _CADU_CODING).cadu(rng.randbytes(_CADU_FRAME_LEN))


def _cadu_receiver() -> Decoder:
    rx = CaduReceiver(_CADU_FRAME_LEN, _CADU_CODING)

    def decode(buf: bytes) -> object:
        got = rx.receive_cadu(buf)
        if got is not None and len(got.frame) != _CADU_FRAME_LEN:
            raise FuzzCheckError(f"delivered a frame of {len(got.frame)} octets")
        for frame in rx.receive_stream(buf):
            if len(frame.frame) != _CADU_FRAME_LEN:
                raise FuzzCheckError(f"stream delivered a frame of {len(frame.frame)} octets")
        return got

    return decode


def _cltu_receiver() -> Decoder:
    rx = CltuReceiver()

    def decode(buf: bytes) -> object:
        frame = rx.receive(buf)
        if frame is not None and frame_length(frame) != len(frame):
            raise FuzzCheckError("delivered a frame whose length field disagrees with it")
        return frame

    return decode


_ISS_TLE = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9005\n"
    "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579432925"
)


def _fix_tle_checksums(buf: bytes) -> bytes:
    """Recompute the modulo-10 checksum of every line that looks like TLE line 1 or 2."""
    lines = buf.decode("latin-1").split("\n")
    for i, line in enumerate(lines):
        if line[:2] in ("1 ", "2 ") and len(line) >= 69:
            total = sum(int(c) if c in "0123456789" else c == "-" for c in line[:68])
            lines[i] = line[:68] + str(total % 10) + line[69:]
    return "\n".join(lines).encode("latin-1")


def _tle_decoder(buf: bytes) -> object:
    """TLE text in, satellites out: a damaged TLE must be refused with ConfigError
    (checksums catch most damage), never with another exception."""
    sats = parse_tles(buf.decode("latin-1"))
    for sat in sats:
        if not sat.name or sat.satrec.no_kozai <= 0:
            raise FuzzCheckError(f"accepted a satellite without a name or mean motion: {sat}")
    return sats


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
    Target(
        "orbit.parse_tles",
        lambda rng: _fix_tle_checksums(_ISS_TLE.encode()),
        lambda: _tle_decoder,
        strict=True,
        max_random_len=200,
        refusal=ConfigError,
        fix=_fix_tle_checksums,
    ),
    Target("rs.decode", _valid_rs, lambda: _rs_decoder, strict=True, max_random_len=200),
    Target("pipeline.cadu_receiver", _valid_cadu, _cadu_receiver, strict=False, max_random_len=300),
    Target(
        "pipeline.cltu_receiver",
        lambda rng: CltuTransmitter().cltu(_valid_tc(rng)),
        _cltu_receiver,
        strict=False,
        max_random_len=600,
    ),
]


# -- COP-1: the CLCW and control command decoders, FARM-1 and FOP-1 fed at random -----------


def _valid_clcw(rng: random.Random) -> bytes:
    return Clcw(
        rng.randrange(64),
        rng.randrange(256),
        *(rng.random() < 0.5 for _ in range(3)),
        rng.randrange(4),
        rng.random() < 0.5,
        rng.random() < 0.5,
        rng.randrange(8),
    ).pack()


def _valid_control_command(rng: random.Random) -> bytes:
    return Unlock().pack() if rng.random() < 0.4 else SetVr(rng.randrange(256)).pack()


class _Cop1Fuzz:
    """The state machine a stateful COP-1 target is feeding, so that the generator of
    valid inputs can aim near its sequence numbers (else nearly every frame would
    fall in the lockout area, and nearly every N(R) would be invalid)."""

    farm: Farm | None = None
    fop: Fop | None = None


_COP1 = _Cop1Fuzz()
_COP1_VC = 5


def _valid_farm_frame(rng: random.Random) -> bytes:
    vr = _COP1.farm.vr if _COP1.farm is not None else 0
    pick = rng.random()
    if pick < 0.08:
        frame = TcFrame(_TC.scid, _COP1_VC, Unlock().pack(), TcFrameType.BC)
    elif pick < 0.12:
        frame = TcFrame(_TC.scid, _COP1_VC, SetVr(rng.randrange(256)).pack(), TcFrameType.BC)
    elif pick < 0.2:
        frame = TcFrame(_TC.scid, _COP1_VC, rng.randbytes(20), TcFrameType.BD, 0, 0)
    else:
        offset = rng.choice([0, 0, 0, 0, 1, 2, 7, 8, -1, -8, -9, rng.randrange(256)])
        seq = (vr + offset) % 256
        frame = TcFrame(_TC.scid, _COP1_VC, rng.randbytes(20), TcFrameType.AD, seq, 0)
    return frame.pack()


def _farm_receiver() -> Decoder:
    """FARM-1 behind the TC frame validation: never raises, accepts a Type-AD frame
    only when it is the next in sequence in the Open state, and moves V(R) only by
    such an acceptance or by a Set V(R) it may execute."""
    farm = _COP1.farm = Farm(_COP1_VC, 16, buffer_frames=3)

    def decode(buf: bytes) -> object:
        try:
            frame: TcFrame | None = TcFrame.unpack(buf, True, True)
        except DecodeError:
            frame = None
        vr, state = farm.vr, farm.state
        result = farm.receive(frame)
        accepted = result.accepted
        if accepted is not None and accepted.frame_type is TcFrameType.AD:
            if accepted.seq != vr or state is not FarmState.OPEN:
                raise FuzzCheckError(f"accepted N(S) {accepted.seq} with V(R) {vr} in {state}")
            if farm.vr != (vr + 1) % 256:
                raise FuzzCheckError("V(R) did not advance by one on an acceptance")
        elif farm.vr != vr and not (
            result.event is FarmEvent.E8 and state is not FarmState.LOCKOUT
        ):
            raise FuzzCheckError(f"V(R) moved from {vr} to {farm.vr} on {result.event.name}")
        Clcw.unpack(farm.clcw().pack())  # the report is always a valid COP-1 CLCW
        if farm.state is FarmState.WAIT or len(farm.buffer) > 6:  # read once FARM-1 waits
            farm.take()
            farm.buffer_release()
        return result

    return decode


def _valid_fop_clcw(rng: random.Random) -> bytes:
    fop = _COP1.fop
    vs, nnr = (fop.vs, fop.nnr) if fop is not None else (0, 0)
    span = (vs - nnr) % 256 + 2
    nr = rng.choice([vs, nnr, (nnr + rng.randrange(span)) % 256, rng.randrange(256)])
    flags = [rng.random() < p for p in (0.05, 0.2, 0.3)]  # lockout, wait, retransmit
    return Clcw(_COP1_VC, nr, *flags, rng.randrange(4)).pack()


def _fop_clcw_reader() -> Decoder:
    """FOP-1 with frames outstanding fed CLCWs (good, damaged or random octets) and T1
    expiries: never raises; V(S) - NN(R) never exceeds K and is what the Sent Queue
    holds; after an alert or a suspension it is started again."""
    fop = _COP1.fop = Fop(FopConfig(_TC.scid, _COP1_VC, 4, 1.0, 4, 0))
    clock = [0.0]
    counter = [0]
    fdu = TcFrame(_TC.scid, _COP1_VC, b"fdu", TcFrameType.AD, 0, 0)

    def run(actions: list) -> None:
        todo = list(actions)
        while todo:
            action = todo.pop(0)
            if isinstance(action, Transmit):  # the lower procedures take it at once
                todo += fop.transmit_accepted(action.frame.frame_type, clock[0])

    def decode(buf: bytes) -> object:
        clock[0] += 0.3
        if fop.state is FopState.INITIAL:
            counter[0] += 1
            fop.directive(Directive.SET_TIMEOUT_TYPE, clock[0], counter[0] % 2)
            run(fop.directive(Directive.INITIATE_AD_WITHOUT_CLCW, clock[0]))
        while fop.wait_queue is None and fop.outstanding < 3 and fop.state <= 2:
            run(fop.request_ad(fdu, clock[0]))
        out = fop.clcw(buf, clock[0])
        run(out)
        if fop.timer_expiry_t_s is not None and clock[0] >= fop.timer_expiry_t_s:
            run(fop.timer_expired(clock[0]))
        ads = [f for f in fop.sent_queue if f.frame_type is TcFrameType.AD]
        if fop.outstanding > fop.window_width:
            raise FuzzCheckError(f"{fop.outstanding} frames in flight with K = {fop.window_width}")
        if fop.state <= 3 and len(ads) != fop.outstanding:
            raise FuzzCheckError(f"Sent Queue holds {len(ads)}, V(S) - NN(R) = {fop.outstanding}")
        if [f.seq for f in ads] != [(fop.nnr + i) % 256 for i in range(len(ads))]:
            raise FuzzCheckError("the Sent Queue is not NN(R), NN(R) + 1, ...")
        return out

    return decode


TARGETS += [
    Target(
        "clcw.unpack",
        _valid_clcw,
        lambda: _strict(Clcw.unpack, lambda c: c.pack()),
        strict=True,
        max_random_len=8,
    ),
    Target(
        "cop1.control_command",
        _valid_control_command,
        lambda: _strict(unpack_control_command, lambda c: c.pack()),
        strict=True,
        max_random_len=6,
    ),
    Target("farm.receiver", _valid_farm_frame, _farm_receiver, strict=False, has_fecf=True),
    Target("fop.clcw", _valid_fop_clcw, _fop_clcw_reader, strict=False, max_random_len=8),
]


# -- pcap captures: the reader behind replay ---------------------------------------------

_PCAP_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_PCAP_NODES = ("ground:Svalbard", "sat:CS-01", "sat:CS-02", "client")
_PCAP_LAYERS = sorted(LAYERS)


def _valid_pcap(rng: random.Random) -> bytes:
    """A small capture: a few units of any layer, some cut into IPv4 fragments."""
    buf = io.BytesIO()
    mtu = rng.choice([68, 128, 1500])
    with PcapCapture(buf, _PCAP_EPOCH, mtu=mtu, nanoseconds=rng.random() < 0.3) as cap:
        for _ in range(rng.randrange(1, 4)):
            src, dst = rng.sample(_PCAP_NODES, 2)
            data = rng.randbytes(rng.randrange(1, 400))
            cap.unit(rng.choice(_PCAP_LAYERS), rng.random() * 1e5, src, dst, data)
    return buf.getvalue()


def _fix_pcap_checksums(buf: bytes) -> bytes:
    """Recompute the IPv4 header checksum of every record (little-endian Ethernet
    pcap, as the writer makes), so that damage reaches the fragment and UDP checks."""
    out = bytearray(buf)
    pos = 24
    while pos + 16 <= len(out):
        incl = struct.unpack_from("<I", out, pos + 8)[0]
        frame = pos + 16
        ip = frame + 14
        if incl > len(out) - frame:
            break
        if incl >= 34 and out[frame + 12 : frame + 14] == b"\x08\x00":
            ihl = 4 * (out[ip] & 0x0F)
            if ihl >= 20 and ip + ihl <= frame + incl:
                out[ip + 10 : ip + 12] = b"\0\0"
                out[ip + 10 : ip + 12] = ipv4_checksum(out[ip : ip + ihl]).to_bytes(2, "big")
        pos = frame + incl
    return bytes(out)


def _pcap_decoder(buf: bytes) -> object:
    """The reader refuses with DecodeError or yields units that are whole: a known
    layer, 1..65,507 octets, and they come back unchanged through the writer."""
    units = list(PcapReader(buf, epoch=_PCAP_EPOCH))
    out = io.BytesIO()
    with PcapCapture(out, _PCAP_EPOCH, nanoseconds=True) as cap:
        for u in units:
            if u.layer not in LAYERS or not 1 <= len(u.data) <= MAX_UNIT_LEN:
                raise FuzzCheckError(f"read a {len(u.data)}-octet unit of layer {u.layer!r}")
            cap.unit(u.layer, u.t_s, u.src, u.dst, u.data)
    again = list(PcapReader(out.getvalue(), epoch=_PCAP_EPOCH, registry=cap.registry))
    if [(u.layer, u.src, u.dst, u.data) for u in again] != [
        (u.layer, u.src, u.dst, u.data) for u in units
    ]:
        raise FuzzCheckError("the units read do not survive a write and a read")
    if any(abs(a.t_s - b.t_s) > 1e-6 for a, b in zip(again, units, strict=True)):
        raise FuzzCheckError("the time stamps read do not survive a write and a read")
    return units


TARGETS.append(
    Target(
        "capture.read_units",
        _valid_pcap,
        lambda: _pcap_decoder,
        strict=True,
        max_random_len=300,
        fix=_fix_pcap_checksums,
    )
)


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
    if target.fix is not None and choice in (1, 4, 5):
        return target.fix(bytes(unit))
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
        except target.refusal:
            if not target.strict:
                report.failures.append(f"receiver raised {target.refusal.__name__} on {buf.hex()}")
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


# -- the conformance checker over captures of random and damaged units ----------------------------


_CONFORM_LAYERS = {
    "tc": ("cltu", "tc_frame"),
    "tm": ("tm_cadu", "tm_frame"),
    "aos": ("aos_cadu", "aos_frame"),
}
_CONFORM_SESSION: list = []


def _conform_session() -> tuple:
    """The linkstack profile, and the units (carrier and frame, or a packet) of the
    good session of linkstack.conformance.passive.broken, grouped as they are sent."""
    if not _CONFORM_SESSION:
        cadu = CaduTransmitter(1115)
        units = []
        for r in _conform_build():
            if r.kind == "pkt":
                units.append([("space_packet", r.t_s, r.src, r.dst, r.data)])
                continue
            carrier = encode_cltu(r.data, True) if r.kind == "tc" else cadu.cadu(r.data)
            first, second = _CONFORM_LAYERS[r.kind]
            units.append(
                [(first, r.t_s, r.src, r.dst, carrier), (second, r.t_s, r.src, r.dst, r.data)]
            )
        _CONFORM_SESSION.append((_load_profile("linkstack"), units))
    return _CONFORM_SESSION[0]


def _valid_conform_pcap(rng: random.Random) -> bytes:
    """A few consecutive units of the conformance suite's good session (frames with their
    carriers, packets), small ones mostly, sometimes with random payloads among them."""
    _, session = _conform_session()
    buf = io.BytesIO()
    start = rng.randrange(len(session))
    with PcapCapture(buf, _PCAP_EPOCH) as cap:
        for group in session[start : start + rng.randrange(1, 4)]:
            for layer, t_s, src, dst, data in group:
                if len(data) > 600 and rng.random() < 0.7:
                    continue  # keep most inputs small: the checker's cost is per octet
                payload = rng.randbytes(rng.randrange(1, 300)) if rng.random() < 0.1 else data
                cap.unit(layer, t_s, src, dst, payload)
    return buf.getvalue()


def _conform_checker(buf: bytes) -> object:
    """check_capture never raises on a capture, and no rule or analysis step breaks on one."""
    profile, _ = _conform_session()
    report = _check_capture(buf, profile)
    broken = [f"{r.rule.id}: {r.error}" for r in report.results if r.status == "error"]
    if broken or report.internal_errors:
        raise FuzzCheckError(f"the conformance check broke: {(broken + report.internal_errors)[0]}")
    return report


TARGETS.append(
    Target(
        "conformance.check_capture",
        _valid_conform_pcap,
        lambda: _conform_checker,
        strict=False,
        max_random_len=300,
        fix=_fix_pcap_checksums,
    )
)


# -- what comes from outside the link: scenario files and MQTT requests ---------------------------


_SCENARIO_TEXTS = (
    'name = "fuzz"\n[[constellation.planes]]\nkind = "sso"\ncount = 2\naltitude_km = 550.0\n'
    '[[stations]]\nname = "Svalbard"\n[cop1]\nfop_window = 8\nfarm_window = 16\n',
    '[[stations]]\nname = "Mohe"\nelevation_mask_deg = 5.0\n[links.uplink]\nrate_bps = 64e3\n'
    "[links.downlink]\nber = 1e-6\n[coding]\nrs_depth = 4\n[mqtt]\nport = 1884\ntls = false\n",
    '[constellation]\nisl = "none"\n[[constellation.planes]]\nkind = "walker"\ntotal = 6\n'
    "planes = 2\nphasing = 1\ninclination_deg = 53.0\naltitude_km = 550.0\n"
    '[[stations]]\nname = "Sanya"\n[daemon]\nchannel_port = 40000\nnode_port = 41000\n',
)


def _scenario_decoder(buf: bytes) -> object:
    """A scenario file: refused with ConfigError naming the key, or read into a scenario
    that has satellites and stations and a COP-1 window FARM-1 can hold."""
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as exc:  # as scenario.load() refuses a file
        raise ConfigError("scenario", "(file)", f"is not UTF-8 text: {exc}") from None
    sf = _scenario.loads(text, source="fuzz.toml")
    sc, up = sf.scenario, sf.emulation.uplink
    if not sc.satellites or not sc.stations:
        raise FuzzCheckError("accepted a scenario without satellites or stations")
    if not 1 <= up.fop_window <= up.farm_window // 2:
        raise FuzzCheckError(f"accepted K {up.fop_window} with W {up.farm_window}")
    return sf


def _valid_request(rng: random.Random) -> bytes:
    body: dict = {"prompt": rng.choice(["What is 2+2?", "Summarise the pass", "é ✓"])}
    if rng.random() < 0.7:
        body["id"] = f"q{rng.randrange(10**6)}"
    if rng.random() < 0.5:
        body["target"] = f"CS-{rng.randrange(1, 13):02d}"
    if rng.random() < 0.5:
        body["stream"] = rng.random() < 0.5
    if rng.random() < 0.7:
        body["params"] = {"max_new_tokens": rng.randrange(1, 512), "temperature": 0.7}
    return json.dumps(body).encode()


def _request_decoder(buf: bytes) -> object:
    """An MQTT query request: refused with RequestError, or read into a request that
    reads back the same from its own JSON."""
    request = _mqtt.parse_request(buf)
    if not request.prompt or (request.id is not None and not _mqtt.valid_id(request.id)):
        raise FuzzCheckError(f"accepted a request without a prompt or with a bad id: {request}")
    again = _mqtt.parse_request(json.dumps(request.to_json()).encode())
    if again != request:
        raise FuzzCheckError(f"{request} reads back as {again}")
    return request


TARGETS += [
    Target(
        "scenario.loads",
        lambda rng: rng.choice(_SCENARIO_TEXTS).encode(),
        lambda: _scenario_decoder,
        strict=True,
        max_random_len=400,
        refusal=ConfigError,
    ),
    Target(
        "mqtt.parse_request",
        _valid_request,
        lambda: _request_decoder,
        strict=True,
        max_random_len=300,
        refusal=_mqtt.RequestError,
    ),
]
