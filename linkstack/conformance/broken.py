"""The deliberately broken captures of ``tests/conformance``, made from correct units.

``python -m linkstack.conformance.broken [DIR]`` (default ``tests/conformance``)
writes ``good.pcap`` and one ``NAME.pcap`` per entry of :data:`BROKEN`, each with its
``.nodes.json`` side file, byte for byte the same on every run.

The good capture is a short scripted session over linkstack's channels (the
``linkstack`` profile), built with the project's own codecs and a real FARM-1:

- ground:Svalbard -> sat:CS-01 (SCID 0x40): a Set V(R) to 250, then Type-AD frames in
  CLTUs (TC randomizer, BCH): two packets blocked in one frame, a packet segmented
  over two frames, N(S) wrapping 255 -> 0; one frame lost on the way (FARM-1 reports
  Retransmit) and the two unacknowledged frames retransmitted; a Type-BD frame; a
  Lockout (caused by a frame that is not in the capture), an Unlock after it, and
  Type-AD frames again once FARM-1 reports it cleared;
- sat:CS-01 -> ground: TM frames every few hundred ms with FARM-1's CLCW in the OCF,
  answers in packets that span frames and end in an idle packet, idle frames on VC 7,
  the master, virtual and idle channel counts wrapping; CADUs with RS(255,223) I=5,
  randomized, behind the ASM;
- sat:CS-01 -> sat:CS-02: AOS frames of relayed packets (the VC count passing 2^24,
  into the count cycle) and an idle frame on VC 63;
- every Space Packet also on the packet port when it is handed to the framing layer.

Each broken capture is the good one with one fault (:data:`BROKEN`: what was broken
and the exact set of rules it must fail). Faults are made where a real implementation
makes them: in the frame (its FECF recomputed, its CADU or CLTU encoded again from it)
or in the carrier only (the frame left as it was).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from linkstack.aos import AosConfig, AosMasterChannel
from linkstack.capture import PcapCapture
from linkstack.coding.cltu import encode_cltu
from linkstack.coding.randomizer import tm_randomize
from linkstack.coding.rs import ReedSolomon
from linkstack.coding.sync import ASM
from linkstack.cop1 import SetVr, Unlock
from linkstack.crc import crc16_ccitt
from linkstack.farm import Farm
from linkstack.pipeline import CaduTransmitter
from linkstack.spp import PacketType, SequenceCounter, SpacePacket, segment
from linkstack.tc import TcConfig, TcFrame, TcFrameType, TcVirtualChannel
from linkstack.tm import TmConfig, TmMasterChannel

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
GROUND = "ground:Svalbard"
SAT = "sat:CS-01"
PEER = "sat:CS-02"
SCID = 0x40
FRAME_LEN = 1115
QUERY_APID, ANSWER_APID, RELAY_APID, HK_APID, EXTRA_APID = 0x100, 0x101, 0x102, 0x0F0, 0x0F1
DEFAULT_DIR = Path("tests/conformance")

_CARRIER = {"tc": "cltu", "tm": "tm_cadu", "aos": "aos_cadu"}
_FRAME = {"tc": "tc_frame", "tm": "tm_frame", "aos": "aos_frame"}


@dataclass
class Record:
    """One unit of the session: a frame (written with its carrier, encoded from it
    unless ``carrier`` is given) or a packet (``kind`` "pkt")."""

    kind: str  # "tc", "tm", "aos", "pkt"
    t_s: float
    src: str
    dst: str
    data: bytes
    tag: str = ""
    carrier: bytes | None = None


@dataclass(frozen=True)
class Tweaks:
    """Faults that must be made before the packets are framed (they reach both the
    packet port and the frames)."""

    skip_seq_before: str | None = None  # the APID's counter skips a value before this packet
    bad_version: str | None = None  # this packet gets version 001


def _payload(tag: str, n: int) -> bytes:
    return random.Random(f"linkstack-conformance:{tag}").randbytes(n)


def build(tweaks: Tweaks = Tweaks()) -> list[Record]:
    """The good session (with ``tweaks`` applied while it is built)."""
    recs: list[Record] = []
    farm = Farm(vcid=0, window_width=64)
    tc_vc = TcVirtualChannel(TcConfig(scid=SCID, max_frame_length=1024), 0)
    tm = TmMasterChannel(TmConfig(frame_length=FRAME_LEN, scid=SCID, ocf=True), vcids=(0,))
    tm.mc_count, tm.idle_vc_count = 250, 254
    tm.mux.vc(0).vc_count = 253
    aos = AosMasterChannel(AosConfig(frame_length=FRAME_LEN, scid=SCID), vcids=(0,))
    aos.mux.vc(0).vc_count = (1 << 24) - 2
    counters = {GROUND: SequenceCounter(), SAT: SequenceCounter(), PEER: SequenceCounter()}
    counters[GROUND].set(QUERY_APID, 16382)

    def packets(tag: str, apid: int, n: int, src: str, dst: str, t: float) -> list[bytes]:
        ptype = PacketType.TC if src == GROUND else PacketType.TM
        counter = counters[src] if dst != PEER else counters[PEER]
        out = []
        chunks = segment(_payload(tag, n), apid, SequenceCounter(), 1024, ptype)
        for i, chunk in enumerate(chunks):
            name = f"{tag}.{i}" if len(chunks) > 1 else tag
            if tweaks.skip_seq_before == name:
                counter.next(apid)
            pkt = replace(chunk, seq_count=counter.next(apid))
            raw = pkt.pack()
            if tweaks.bad_version == name:
                raw = bytes([raw[0] | 0x20]) + raw[1:]
            recs.append(Record("pkt", t, src, dst, raw, f"pkt:{name}"))
            out.append(raw)
        return out

    sent: dict[int, bytes] = {}  # the Type-AD frames sent, by N(S)

    def uplink(t: float, frame: TcFrame, tag: str, deliver: bool = True) -> bytes:
        raw = frame.pack()
        if frame.frame_type is TcFrameType.AD:
            sent[frame.seq] = raw
        recs.append(Record("tc", t, GROUND, SAT, raw, tag))
        if deliver:
            farm.receive(TcFrame.unpack(raw))
            farm.take()
        return raw

    def ad(t: float, pkts: list[bytes], tag: str, lost: tuple[int, ...] = ()) -> None:
        for i, frame in enumerate(tc_vc.frames(pkts, 0)):
            uplink(t + 0.01 * i, frame, f"{tag}#{i}", deliver=i not in lost)

    def downlink(t: float, tag: str, pkts: list[bytes] = ()) -> None:
        tm.ocf = farm.clcw().pack()
        for p in pkts:
            tm.push(0, p)
        tm.flush()
        frames = tm.drain() or [tm.idle_frame()]
        for i, frame in enumerate(frames):
            recs.append(Record("tm", t + 0.001 * i, SAT, GROUND, frame, f"{tag}#{i}"))

    def relay(t: float, tag: str, pkts: list[bytes]) -> None:
        for p in pkts:
            aos.push(0, p)
        aos.flush()
        for i, frame in enumerate(aos.drain()):
            recs.append(Record("aos", t + 0.001 * i, SAT, PEER, frame, f"{tag}#{i}"))

    downlink(0.0, "tm:idle-a")
    uplink(0.05, TcFrame(SCID, 0, SetVr(250).pack(), TcFrameType.BC), "tc:set-vr")
    tc_vc.next_seq = 250
    downlink(0.2, "tm:idle-b")
    p1 = packets("P1", QUERY_APID, 200, GROUND, SAT, 0.3)
    p2 = packets("P2", QUERY_APID, 300, GROUND, SAT, 0.3)
    ad(0.3, p1 + p2, "tc:P1P2")  # N(S) 250: two packets blocked in one frame
    # N(S) 251..253: two packets, the first segmented over two frames; 252 is lost
    ad(0.32, packets("P3", QUERY_APID, 1500, GROUND, SAT, 0.32), "tc:P3", lost=(1,))
    ad(0.36, packets("P4", QUERY_APID, 100, GROUND, SAT, 0.36), "tc:P4")  # 254; FARM: E3
    downlink(0.4, "tm:retransmit")  # N(R) 252, Retransmit
    ns, k = farm.vr, 0
    while ns != tc_vc.next_seq:  # go-back-N: every unacknowledged frame again
        recs.append(Record("tc", 0.5 + 0.01 * k, GROUND, SAT, sent[ns], f"tc:rtx-{ns}"))
        farm.receive(TcFrame.unpack(sent[ns]))
        farm.take()
        ns, k = (ns + 1) % 256, k + 1
    ad(0.6, packets("P5", QUERY_APID, 120, GROUND, SAT, 0.6), "tc:P5")  # 255
    ad(0.62, packets("P6", QUERY_APID, 130, GROUND, SAT, 0.62), "tc:P6")  # 0
    ad(0.64, packets("P7", QUERY_APID, 140, GROUND, SAT, 0.64), "tc:P7")  # 1
    downlink(0.8, "tm:A1", packets("A1", ANSWER_APID, 3000, SAT, GROUND, 0.8))
    relay(1.0, "aos:M1", packets("M1", RELAY_APID, 2500, SAT, PEER, 1.0))
    downlink(1.2, "tm:idle-c")
    bd = tc_vc.frames(packets("P8", HK_APID, 50, GROUND, SAT, 1.3), 0, TcFrameType.BD)
    uplink(1.3, bd[0], "tc:P8-bd")
    downlink(1.4, "tm:idle-d")
    relay(1.5, "aos:M2", packets("M2", RELAY_APID, 800, SAT, PEER, 1.5))
    recs.append(Record("aos", 1.6, SAT, PEER, aos.idle_frame(), "aos:idle"))
    farm.receive(TcFrame(SCID, 0, b"\x00", TcFrameType.AD, (farm.vr + 100) % 256))  # not captured
    downlink(2.2, "tm:lockout-a")
    downlink(2.6, "tm:lockout-b")
    uplink(3.5, TcFrame(SCID, 0, Unlock().pack(), TcFrameType.BC), "tc:unlock")
    downlink(3.7, "tm:cleared")
    tc_vc.next_seq = farm.vr
    ad(4.0, packets("P9", QUERY_APID, 150, GROUND, SAT, 4.0), "tc:P9")
    downlink(4.3, "tm:A2", packets("A2", ANSWER_APID, 700, SAT, GROUND, 4.3))
    downlink(4.5, "tm:idle-e")
    return recs


# -- writing ---------------------------------------------------------------------------------------


def write(records: list[Record], path: str | Path) -> None:
    """The records as a capture (and its side file), each frame after its carrier."""
    cadu = CaduTransmitter(FRAME_LEN)
    with PcapCapture(Path(path), EPOCH) as cap:
        for r in records:
            if r.kind == "pkt":
                cap.unit("space_packet", r.t_s, r.src, r.dst, r.data)
                continue
            carrier = r.carrier
            if carrier is None and r.kind == "tc":
                carrier = encode_cltu(r.data, randomize=True)
            elif carrier is None:
                carrier = cadu.cadu(r.data)
            cap.unit(_CARRIER[r.kind], r.t_s, r.src, r.dst, carrier)
            cap.unit(_FRAME[r.kind], r.t_s, r.src, r.dst, r.data)


# -- editing tools ---------------------------------------------------------------------------------


def _find(records: list[Record], tag: str) -> Record:
    for r in records:
        if r.tag == tag:
            return r
    raise KeyError(tag)


def _fecf(frame: bytes | bytearray) -> bytes:
    body = bytes(frame[:-2])
    return body + crc16_ccitt(body).to_bytes(2, "big")


def _edit(frame: bytes, offset: int, value: bytes) -> bytes:
    out = bytearray(frame)
    out[offset : offset + len(value)] = value
    return _fecf(out)


def _tm_fhp(frame: bytes, fhp: int) -> bytes:
    dfs = (int.from_bytes(frame[4:6], "big") & ~0x7FF) | fhp
    return _edit(frame, 4, dfs.to_bytes(2, "big"))


TM_ZONE = slice(6, FRAME_LEN - 6)  # the data field of linkstack's TM frames (OCF and FECF after)


def _zone_packets(frame: bytes) -> list[tuple[int, int]]:
    """(offset in the frame, length) of the packets that start in a TM frame."""
    fhp = int.from_bytes(frame[4:6], "big") & 0x7FF
    out = []
    pos, end = TM_ZONE.start + fhp, TM_ZONE.stop
    while fhp < 0x7FE and pos + 6 <= end:
        n = 7 + int.from_bytes(frame[pos + 4 : pos + 6], "big")
        out.append((pos, n))
        pos += n
    return out


def _cadu_with(
    frame: bytes, *, asm: bytes = ASM, randomize: bool = True, dual: bool = True
) -> bytes:
    block = ReedSolomon(16, 5, FRAME_LEN, dual).encode(frame)
    return asm + (tm_randomize(block) if randomize else block)


# -- the faults ------------------------------------------------------------------------------------

Breaker = Callable[[list[Record]], list[Record]]


def _tc_zero_padding(recs: list[Record]) -> list[Record]:
    old = _find(recs, "tc:P4#0").data
    body = old[:-2] + bytes(16)
    n = len(body) + 2
    w1 = (int.from_bytes(body[2:4], "big") & 0xFC00) | (n - 1)
    new = _fecf(body[:2] + w1.to_bytes(2, "big") + body[4:] + b"\0\0")
    for r in recs:  # the frame and its retransmission
        if r.data == old:
            r.data = new
    return recs


def _tm_frames(recs: list[Record], vcid: int | None = None) -> list[Record]:
    return [r for r in recs if r.kind == "tm" and (vcid is None or (r.data[1] >> 1) & 7 == vcid)]


def _tm_vc_frozen(recs: list[Record]) -> list[Record]:
    frames = _tm_frames(recs, 0)
    for r in frames:
        r.data = _edit(r.data, 3, frames[0].data[3:4])
    return recs


def _tm_mc_gap(recs: list[Record]) -> list[Record]:
    for r in _tm_frames(recs)[5:]:
        r.data = _edit(r.data, 2, bytes([(r.data[2] + 1) & 0xFF]))
    return recs


def _last_packet(frame: bytes) -> tuple[int, int]:
    return _zone_packets(frame)[-1]


def _idle_apid_2046(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#2")
    pos, _ = _last_packet(r.data)
    w0 = int.from_bytes(r.data[pos : pos + 2], "big")
    r.data = _edit(r.data, pos, ((w0 & ~0x7FF) | 2046).to_bytes(2, "big"))
    return recs


def _tm_zero_fill(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#2")
    pos, n = _last_packet(r.data)
    r.data = _edit(r.data, pos, bytes(n))
    return recs


def _tm_fhp_wrong(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#1")  # starts with the end of a packet from frame #0
    r.data = _tm_fhp(r.data, 0)
    return recs


def _tm_fhp_idle(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#1")
    r.data = _tm_fhp(r.data, 0x7FE)
    return recs


def _tm_fecf_wrong(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#0")
    r.data = r.data[:-1] + bytes([r.data[-1] ^ 0x01])
    return recs


_OCF = slice(FRAME_LEN - 6, FRAME_LEN - 2)


def _clcw_malformed(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:idle-c#0")
    ocf = bytearray(r.data[_OCF])
    ocf[0] |= 0x20  # CLCW version 01
    r.data = _edit(r.data, _OCF.start, bytes(ocf))
    return recs


def _clcw_nr_ahead(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:idle-c#0")  # N(R) 1, and frames up to N(S) 0 sent
    ocf = bytearray(r.data[_OCF])
    ocf[3] = (ocf[3] + 3) & 0xFF
    r.data = _edit(r.data, _OCF.start, bytes(ocf))
    return recs


def _aos_count_gap(recs: list[Record]) -> list[Record]:
    r = _find(recs, "aos:M2#0")  # the first frame of a message: no packet is cut by the gap
    count = int.from_bytes(r.data[2:5], "big")
    r.data = _edit(r.data, 2, ((count + 1) & 0xFFFFFF).to_bytes(3, "big"))
    return recs


def _rs_uncorrectable(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#1")
    cadu = bytearray(CaduTransmitter(FRAME_LEN).cadu(r.data))
    check = len(ASM) + FRAME_LEN  # codeword 0's check symbols: every 5th from here
    for k in range(20):  # 20 symbols of one codeword: more than E = 16 can correct
        cadu[check + 5 * k] ^= 0xA5
    r.carrier = bytes(cadu)
    return recs


def _rs_conventional(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#1")
    r.carrier = _cadu_with(r.data, dual=False)
    return recs


def _asm_wrong(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#1")
    r.carrier = _cadu_with(r.data, asm=bytes.fromhex("1acffd1d"))
    return recs


def _tm_not_randomized(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tm:A1#1")
    r.carrier = _cadu_with(r.data, randomize=False)
    return recs


def _cltu_no_tail(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:P5#0")
    r.carrier = encode_cltu(r.data, randomize=True)[:-8]
    return recs


def _cltu_bch(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:P5#0")
    cltu = bytearray(encode_cltu(r.data, randomize=True))
    cltu[2 + 8 * 3 + 7] ^= 0x04  # a parity bit of codeblock 3
    r.carrier = bytes(cltu)
    return recs


def _cltu_start(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:P5#0")
    r.carrier = b"\xeb\x91" + encode_cltu(r.data, randomize=True)[2:]
    return recs


def _tc_not_randomized(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:P5#0")
    r.carrier = encode_cltu(r.data, randomize=False)
    return recs


def _tc_length_field(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:P5#0")
    w1 = int.from_bytes(r.data[2:4], "big") - 1
    r.data = _edit(r.data, 2, w1.to_bytes(2, "big"))
    return recs


def _cop_retransmit_acked(recs: list[Record]) -> list[Record]:
    again = _find(recs, "tc:P4#0")  # N(S) 254: acknowledged by the CLCW of 0.8 s
    copy = Record("tc", 1.9, GROUND, SAT, again.data, "tc:late")
    recs.insert(recs.index(_find(recs, "tm:lockout-a#0")), copy)
    return recs


def _cop_lockout_ad(recs: list[Record]) -> list[Record]:
    pkt = SpacePacket(EXTRA_APID, _payload("X", 40), PacketType.TC).pack()
    ns = (_find(recs, "tc:P7#0").data[4] + 1) % 256  # V(S): the next new frame's number
    frame = TcFrame(SCID, 0, pkt, TcFrameType.AD, seq=ns, map_id=0).pack()
    at = recs.index(_find(recs, "tc:unlock"))
    recs[at:at] = [Record("tc", 3.3, GROUND, SAT, frame, "tc:in-lockout")]
    return recs


def _cop_ns_jump(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:P6#0")  # N(S) 0 -> 3
    r.data = _edit(r.data, 4, b"\x03")
    return recs


def _spp_length(recs: list[Record]) -> list[Record]:
    r = _find(recs, "pkt:P2")
    n = int.from_bytes(r.data[4:6], "big") + 1
    r.data = r.data[:4] + n.to_bytes(2, "big") + r.data[6:]
    return recs


def _link_direction(recs: list[Record]) -> list[Record]:
    r = _find(recs, "tc:set-vr")
    r.src, r.dst = r.dst, r.src
    return recs


@dataclass(frozen=True)
class Broken:
    what: str
    fails: frozenset[str]
    breaker: Breaker | None = None
    tweaks: Tweaks = Tweaks()

    def records(self) -> list[Record]:
        recs = build(self.tweaks)
        return self.breaker(recs) if self.breaker is not None else recs


def _b(what: str, fails: str, breaker: Breaker | None = None, tweaks: Tweaks = Tweaks()) -> Broken:
    return Broken(what, frozenset(fails.split()), breaker, tweaks)


GOOD = _b("the good session: every applicable rule passes", "")
BROKEN: dict[str, Broken] = {
    "tc_zero_padding": _b(
        "a TC frame padded with 16 zero octets after its packet", "TC-FILL-01", _tc_zero_padding
    ),
    "tc_length_field": _b(
        "a TC frame whose length field says one octet less", "TC-LEN-01", _tc_length_field
    ),
    "tc_not_randomized": _b(
        "a CLTU whose frame was not randomized (the channel randomizes)",
        "TC-RAND-01",
        _tc_not_randomized,
    ),
    "cltu_no_tail": _b("a CLTU without its tail sequence", "CLTU-TAIL-01", _cltu_no_tail),
    "cltu_bch_parity": _b("a CLTU codeblock with a wrong parity bit", "CLTU-BCH-01", _cltu_bch),
    "cltu_start_sequence": _b("a CLTU starting with eb91", "CLTU-START-01", _cltu_start),
    "tm_vc_count_frozen": _b(
        "TM frames of VC 0 whose frame count never moves", "TM-VC-01", _tm_vc_frozen
    ),
    "tm_mc_count_gap": _b("a TM master channel count that skips a value", "TM-MC-01", _tm_mc_gap),
    "tm_fhp_wrong": _b(
        "a TM frame whose FHP says 0 where a packet from the previous frame continues "
        "(that packet is lost to a receiver)",
        "TM-FHP-01",
        _tm_fhp_wrong,
    ),
    "tm_fhp_idle_mid_packet": _b(
        "a TM frame marked 0x7FE (only idle data) where a packet continues",
        "TM-FHP-02",
        _tm_fhp_idle,
    ),
    "tm_zero_fill": _b(
        "a TM frame whose room after the last packet is zeros instead of an idle packet",
        "TM-FILL-01",
        _tm_zero_fill,
    ),
    "idle_apid_2046": _b(
        "the idle packet that completes a TM frame sent on APID 2046",
        "SPP-IDLE-01",
        _idle_apid_2046,
    ),
    "tm_fecf_wrong": _b("a TM frame with a wrong FECF", "TM-FECF-01", _tm_fecf_wrong),
    "clcw_malformed": _b("a CLCW with version 01", "CLCW-01", _clcw_malformed),
    "clcw_nr_ahead": _b(
        "a CLCW whose N(R) acknowledges three frames never sent (and the next goes back)",
        "COP-NR-01",
        _clcw_nr_ahead,
    ),
    "aos_count_gap": _b("an AOS VC frame count that skips a value", "AOS-VC-01", _aos_count_gap),
    "rs_uncorrectable": _b(
        "a CADU with 20 check symbols of one codeword corrupted (beyond correction)",
        "RS-01",
        _rs_uncorrectable,
    ),
    "rs_conventional_basis": _b(
        "a CADU encoded in the conventional basis (the channel uses the dual basis)",
        "RS-02",
        _rs_conventional,
    ),
    "asm_wrong": _b("a CADU behind the marker 1acffd1d", "CADU-ASM-01", _asm_wrong),
    "tm_not_randomized": _b(
        "a CADU whose codeblock was not randomized", "RAND-01", _tm_not_randomized
    ),
    "cop1_retransmit_acked": _b(
        "a Type-AD frame retransmitted 1.1 s after a CLCW acknowledged it",
        "COP-RTX-02",
        _cop_retransmit_acked,
    ),
    "cop1_lockout_ad": _b(
        "a Type-AD frame sent while FARM-1 reports Lockout, before the Unlock",
        "COP-LOCK-01",
        _cop_lockout_ad,
    ),
    "cop1_ns_jump": _b("a new Type-AD frame numbered 3 where 0 was due", "COP-NS-01", _cop_ns_jump),
    "spp_seq_gap": _b(
        "a query packet whose sequence count skips a value (on the port and in its frame)",
        "SPP-SEQ-01",
        tweaks=Tweaks(skip_seq_before="P4"),
    ),
    "spp_bad_version": _b(
        "a query packet with version 001 (on the port and in its frame)",
        "SPP-VER-01",
        tweaks=Tweaks(bad_version="P4"),
    ),
    "spp_length_field": _b(
        "a packet on the packet port whose length field says one octet more",
        "SPP-LEN-01",
        _spp_length,
    ),
    "link_direction": _b(
        "a TC frame (in its CLTU) sent by the spacecraft to the ground",
        "LINK-DIR-01",
        _link_direction,
    ),
}


def write_all(folder: str | Path = DEFAULT_DIR) -> list[Path]:
    """Write ``good.pcap`` and every broken capture into ``folder``; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, spec in {"good": GOOD, **BROKEN}.items():
        path = folder / f"{name}.pcap"
        write(spec.records(), path)
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DEFAULT_DIR
    for path in write_all(folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
