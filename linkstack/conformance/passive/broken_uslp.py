"""The USLP conformance captures (732.1-B-2, ``frames.protocol = "uslp"``): a good session
and one broken capture per USLP rule, written by
:func:`linkstack.conformance.passive.broken.write_all` beside the TC/TM/AOS ones in
``tests/conformance/broken``.

:func:`build` makes the session with the project's own codecs and a real FARM-1, as
:class:`~linkstack.conformance.passive.session.Record` s in the order sent (kinds
``uslp-up``, ``uslp-down``, ``uslp-laser``, ``pkt``), SCID 3000 (past TC's and TM's 10
bits):

- ground:Svalbard -> sat:CS-01: COP-1's FDUs in variable-length USLP frames inside CLTUs
  (:mod:`linkstack.ccsds.uslp_cop1`): a query packet whole (rule 111), then one
  segmented over three frames (rules 100, 101, 110), N(S) 0..3;
- sat:CS-01 -> ground: fixed-length 1115-octet frames inside CADUs (RS(255,223) I=5,
  randomized) with FARM-1's CLCW in the OCF: an answer that spans two frames (rule 000,
  the first header pointer past the end of the first packet), Only Idle Data frames on
  VC 63;
- sat:CS-01 -> sat:CS-02: fixed-length frames without OCF, relayed packets;
- every Space Packet on the packet port when it is handed to the framing layer.

Each broken capture is the session with one frame changed (its FECF made to match and
its carrier encoded again from it), and must fail exactly its rule (:data:`BROKEN`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import PacketType, SequenceCounter, segment
from linkstack.ccsds.tc import TcVirtualChannel
from linkstack.ccsds.uslp_channels import UslpConfig, UslpMasterChannel
from linkstack.ccsds.uslp_cop1 import UslpCop1Codec
from linkstack.conformance.passive.session import (
    ANSWER_APID,
    EPOCH,
    FRAME_LEN,
    GROUND,
    PEER,
    QUERY_APID,
    RELAY_APID,
    SAT,
    Record,
    payload,
)

SCID = 3000
UP, DOWN, LASER, PKT = "uslp-up", "uslp-down", "uslp-laser", "pkt"
FRAME_LAYER = "uslp_frame"
_CARRIER = {UP: "cltu", DOWN: "tm_cadu", LASER: "aos_cadu"}
TC_ROOM = 200  # the longest uplink frame: a 600-octet query goes in three segments


def build() -> list[Record]:
    """The good USLP session (see the module docstring)."""
    recs: list[Record] = []
    farm = Farm(vcid=0, window_width=64)
    codec = UslpCop1Codec(SCID, max_frame_length=TC_ROOM)
    tc_vc = TcVirtualChannel(codec.tc_config(), 0)
    down = UslpMasterChannel(
        UslpConfig(scid=SCID, frame_length=FRAME_LEN, vc_count_len=2, ocf=True), (0,), (0,)
    )
    laser = UslpMasterChannel(UslpConfig(scid=SCID, frame_length=FRAME_LEN, vc_count_len=2), (0,))
    counters = {GROUND: SequenceCounter(), SAT: SequenceCounter(), PEER: SequenceCounter()}

    def packets(tag: str, apid: int, n: int, src: str, dst: str, t: float) -> list[bytes]:
        ptype = PacketType.TC if src == GROUND else PacketType.TM
        counter = counters[PEER] if dst == PEER else counters[src]
        out = []
        for chunk in segment(payload(tag, n), apid, SequenceCounter(), 1024, ptype):
            raw = replace(chunk, seq_count=counter.next(apid)).pack()
            recs.append(Record(PKT, t, src, dst, raw, f"pkt:{tag}"))
            out.append(raw)
        return out

    def uplink(t: float, pkts: list[bytes], tag: str) -> None:
        for i, fdu in enumerate(tc_vc.frames(pkts, 0)):
            raw = codec.pack(fdu)
            recs.append(Record(UP, t + 0.01 * i, GROUND, SAT, raw, f"{tag}#{i}"))
            farm.receive(codec.unpack(raw))
            farm.take()

    def downlink(t: float, tag: str, pkts: list[bytes] | None = None) -> None:
        down.ocf = farm.clcw().pack()
        for p in pkts or ():
            down.push(0, 0, p)
        down.flush()
        frames = down.drain() or [down.idle_frame()]
        for i, frame in enumerate(frames):
            recs.append(Record(DOWN, t + 0.001 * i, SAT, GROUND, frame, f"{tag}#{i}"))

    def relay(t: float, tag: str, pkts: list[bytes]) -> None:
        for p in pkts:
            laser.push(0, 0, p)
        laser.flush()
        for i, frame in enumerate(laser.drain()):
            recs.append(Record(LASER, t + 0.001 * i, SAT, PEER, frame, f"{tag}#{i}"))

    downlink(0.0, "down:idle-a")
    uplink(0.1, packets("Q1", QUERY_APID, 100, GROUND, SAT, 0.1), "up:Q1")  # N(S) 0, rule 111
    uplink(0.2, packets("Q2", QUERY_APID, 500, GROUND, SAT, 0.2), "up:Q2")  # 1..3: 100 101 110
    relay(0.5, "laser:R1", packets("R1", RELAY_APID, 300, SAT, PEER, 0.5))
    downlink(0.8, "down:A1", packets("A1", ANSWER_APID, 1500, SAT, GROUND, 0.8))
    relay(0.9, "laser:R2", packets("R2", RELAY_APID, 200, SAT, PEER, 0.9))
    downlink(1.0, "down:idle-c")
    downlink(1.2, "down:A2", packets("A2", ANSWER_APID, 400, SAT, GROUND, 1.2))
    return recs


def write(
    records: list[Record], path: str | Path | BinaryIO, carriers: bool = True
) -> list[tuple[str, str]]:
    """The records as a capture (and its side file, when ``path`` is a path), each frame
    on the USLP frame port after its carrier (``carriers`` False: the frames alone);
    (tag, layer) of every unit, in order."""
    cadu = CaduTransmitter(FRAME_LEN)
    units: list[tuple[str, str]] = []
    target = path if hasattr(path, "write") else Path(path)
    with PcapCapture(target, EPOCH, frames="uslp") as cap:
        for r in records:
            if r.kind == PKT:
                cap.unit("space_packet", r.t_s, r.src, r.dst, r.data)
                units.append((r.tag, "space_packet"))
                continue
            if carriers:
                carrier = encode_cltu(r.data, randomize=True) if r.kind == UP else cadu.cadu(r.data)
                cap.unit(_CARRIER[r.kind], r.t_s, r.src, r.dst, carrier)
                units.append((r.tag, _CARRIER[r.kind]))
            cap.unit(FRAME_LAYER, r.t_s, r.src, r.dst, r.data)
            units.append((r.tag, FRAME_LAYER))
    return units


# -- the faults -------------------------------------------------------------------------------


def _fecf(frame: bytes | bytearray) -> bytes:
    body = bytes(frame[:-2])
    return body + crc16_ccitt(body).to_bytes(2, "big")


def _set(offset: int, mask: int, value: int) -> Callable[[bytes], bytes]:
    """The frame with the bits ``mask`` of octet ``offset`` set to ``value``, FECF matched."""

    def change(frame: bytes) -> bytes:
        out = bytearray(frame)
        out[offset] = (out[offset] & ~mask & 0xFF) | (value & mask)
        return _fecf(out)

    return change


def _vc_count_plus_one(frame: bytes) -> bytes:
    count = int.from_bytes(frame[7:9], "big") + 1
    return _fecf(frame[:7] + (count & 0xFFFF).to_bytes(2, "big") + frame[9:])


def _length_plus_one(frame: bytes) -> bytes:
    length = int.from_bytes(frame[4:6], "big") + 1
    return _fecf(frame[:4] + length.to_bytes(2, "big") + frame[6:])


def _pointer_zero(frame: bytes) -> bytes:
    at = 7 + 2 + 1  # the header with its 2-octet count, the TFDF header's first octet
    return _fecf(frame[:at] + b"\x00\x00" + frame[at + 2 :])


def _fecf_flipped(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def _rule_of_uplink(rule: int) -> Callable[[bytes], bytes]:
    at = 7 + 1  # an uplink frame's header with its 1-octet N(S)
    return _set(at, 0xE0, rule << 5)


@dataclass(frozen=True)
class Broken:
    """One USLP capture: what is wrong, the rules it must fail, the record a report must
    blame first, the change made to that record's frame (None: the good session), the
    kinds of record it keeps (None: all) and whether its frames come with their carriers
    (so that the files stay small: the downlink's faults are captures of frames alone)."""

    what: str
    fails: frozenset[str]
    blame: str = ""
    change: Callable[[bytes], bytes] | None = None
    kinds: frozenset[str] | None = None
    carriers: bool = True

    def records(self) -> list[Record]:
        recs = build()
        if self.change is not None:
            target = next(r for r in recs if r.tag == self.blame)
            target.data = self.change(target.data)
        return [r for r in recs if self.kinds is None or r.kind in self.kinds]


def _b(
    what: str,
    fails: str,
    blame: str = "",
    change: Callable[[bytes], bytes] | None = None,
    kinds: str = "",
) -> Broken:
    keep = frozenset(kinds.split()) if kinds else None
    return Broken(what, frozenset(fails.split()), blame, change, keep, DOWN not in (keep or ()))


GOOD = _b("the good USLP session: every applicable rule passes", "")
GOODS = {"uslp_good": GOOD}
BROKEN: dict[str, Broken] = {
    "uslp_version": _b(
        "the last Only Idle Data frame of version 1101", "USLP-VER-01", "down:idle-c#0",
        _set(0, 0xF0, 0xD0), DOWN,
    ),
    "uslp_length": _b(
        "a downlink frame whose frame length field says one octet more",
        "USLP-LEN-01", "down:A1#0", _length_plus_one, DOWN,
    ),
    "uslp_spare": _b(
        "a laser frame with a reserved spare bit set", "USLP-HDR-01", "laser:R1#0",
        _set(6, 0x10, 0x10), LASER,
    ),
    "uslp_vc_count_gap": _b(
        "a downlink frame whose VC frame count skips a value",
        "USLP-VC-01", "down:A2#0", _vc_count_plus_one, DOWN,
    ),
    "uslp_fhp_wrong": _b(
        "the second frame of an answer that spans two frames, its first header pointer 0 "
        "where the answer's end and the next packet's start are",
        "USLP-FHP-01", "down:A1#1", _pointer_zero, DOWN,
    ),
    "uslp_segment_rule": _b(
        "an uplink frame carrying the start of a segmented query labelled a continuing "
        "segment (101)", "USLP-SEG-01", "up:Q2#0", _rule_of_uplink(5), UP,
    ),
    "uslp_fecf_wrong": _b(
        "a laser frame whose FECF has a bit flipped", "USLP-FECF-01", "laser:R2#0",
        _fecf_flipped, LASER,
    ),
}  # fmt: skip
CASES = {**GOODS, **BROKEN}


def readme_lines() -> list[str]:
    """The README's rows of the USLP captures."""
    lines = []
    for name, spec in CASES.items():
        fails = ", ".join(sorted(spec.fails)) or "nothing"
        blame = f"`{spec.blame}`" if spec.blame else ""
        lines.append(f"| `{name}.pcap` | {fails} | {blame} | linkstack | {spec.what} |")
    return lines


def write_all(folder: Path) -> list[Path]:
    """Write the USLP captures into ``folder``; their paths."""
    out = []
    for name, spec in CASES.items():
        path = folder / f"{name}.pcap"
        write(spec.records(), path, spec.carriers)
        out.append(path)
    return out
