"""Running the rules over a capture: units in, observations, rule verdicts, a report.

Two stages, both sans-I/O and streaming (:meth:`Checker.feed` one unit at a time,
:meth:`Checker.finish` at the end):

1. The :class:`Analyzer` turns each captured unit into *observations*: a CADU with
   what its coding showed (ASM, Reed-Solomon, randomization), a CLTU with its
   codeblocks, a TM/AOS/TC frame with its header fields, each frame data field
   ("zone") with where its first packet header *should* start given the packets of
   the previous frames of its virtual channel, each Space Packet with the stream it
   belongs to, each CLCW with what COP-1 had sent when it was emitted. It never
   raises on what a unit holds: a field that is not there is ``None``.
2. Each :class:`~linkstack.conformance.passive.rules.Rule` judges the observations of the
   kinds it names; a :class:`RuleRun` keeps its verdicts (units checked, units that
   failed, the first failure).

Pairs. linkstack's captures hold every frame twice: inside its carrier (CLTU or
CADU) and alone on the frame port, written one after the other with the same time
stamp. A carrier and the frame that follows (or precedes) it, same time, same ends,
same frame, are one frame: its rules run once, blamed on the frame unit. A capture
with only carriers (or only frames) is checked from what it has.

Streams. A Space Packet's sequence count and a frame's counters belong to a source;
the capture shows nodes. Every node the profile puts on the ground is one ground
segment (one mission control behind many stations), so a stream is keyed by (the
sending side, the receiving side, the identifiers): the ground's packets to CS-01 are
one stream whichever station radiated them, CS-01's TM frames are one master channel
whichever station received them, and CS-01's AOS frames to CS-02 and to CS-12 are two.

COP-1 needs both directions: a CLCW in a TM (or AOS) frame of spacecraft S reports
on TC virtual channel (S, the CLCW's VCID), and is compared with the Type-AD frames
of that channel sent before it. Captures made at the sender (linkstack's are) time
each unit when it left; ``[cop1] ack_latency_s`` is how long a CLCW may take to reach
the ground and be acted on.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import os
import struct
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from linkstack.capture.pcap import (
    LAYERS,
    CapturedUnit,
    PcapReader,
)
from linkstack.ccsds.coding.cltu import (
    START_SEQUENCE,
    TAIL_SEQUENCE,
    CltuEnd,
    DecodeMode,
    bch_encode,
    decode_cltu,
)
from linkstack.ccsds.coding.randomizer import tc_randomize, tm_randomize
from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS, ReedSolomon
from linkstack.ccsds.coding.sync import find_asm, find_frame
from linkstack.ccsds.cop1.commands import SetVr, Unlock, unpack_control_command
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import IDLE_APID
from linkstack.conformance.passive.profile import CaduProfile, Profile, load_profile
from linkstack.conformance.passive.rules import CATALOGUE, SKIP, Rule, RuleContext
from linkstack.errors import ConfigError, DecodeError, LinkstackError

FHP_NO_HEADER = 0x7FF
FHP_IDLE_ONLY = 0x7FE
CARRIER_FRAME = {"cltu": "tc_frame", "tm_cadu": "tm_frame", "aos_cadu": "aos_frame"}
FRAME_LAYERS = frozenset(CARRIER_FRAME.values())
IDLE_SHAPE_MIN_DATA = 4  # a packet of fewer data octets is not taken for idle fill

_TM_HDR = struct.Struct(">HBBH")
_AOS_HDR = struct.Struct(">HHBB")
_TC_HDR = struct.Struct(">HHB")
_SPP_HDR = struct.Struct(">HHH")


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit of the capture: ``index`` counts units from 1 in file order,
    ``record`` is the pcap record (Wireshark's frame number) that completed it."""

    index: int
    record: int
    t_s: float
    layer: str
    src: str
    dst: str
    data: bytes

    def describe(self) -> str:
        return f"#{self.index} (pcap frame {self.record}), {self.layer} {self.src} -> {self.dst}"


# -- observations ----------------------------------------------------------------------------------


@dataclass(slots=True)
class UnitObs:
    kind = "unit"
    units: tuple[Unit, ...]
    src_side: str | None
    dst_side: str | None

    @property
    def unit(self) -> Unit:
        return self.units[0]


@dataclass(slots=True)
class CaduObs:
    kind = "cadu"
    units: tuple[Unit, ...]
    channel: str  # "tm" or "aos"
    head: bytes
    asm_expected: bytes
    length: int
    expected_length: int
    randomize_expected: bool
    rs_profile_text: str
    asm_at: int | None = None  # bit offset where the ASM was found
    asm_errors: int = 0
    asm_inverted: bool = False
    rs_errors: tuple[int, ...] | None = None  # per codeword at the profile's parameters
    alt: str | None = None  # other RS parameters that decode the codeblock cleanly
    randomized: bool | None = None  # what the codeblock was found to be


@dataclass(slots=True)
class CltuObs:
    kind = "cltu"
    units: tuple[Unit, ...]
    start: bytes
    codeblocks: int = 0  # before the tail (or all, without one)
    bad_blocks: list[int] = field(default_factory=list)
    bad_blocks_detail: str = ""
    tail_at: int | None = None  # codeblock index of the tail sequence
    tail_note: str = ""
    after_tail: int = 0  # octets after the tail
    data: bytes = b""  # information octets of the codeblocks, as sent (not derandomized)
    randomized: bool | None = None
    frame_len: int | None = None  # where the frame ends in ``data``


@dataclass(slots=True)
class TmFrameObs:
    kind = "tm_frame"
    units: tuple[Unit, ...]
    length: int
    version: int | None = None
    scid: int = 0
    vcid: int = 0
    ocf_flag: bool = False
    mc_count: int = 0
    vc_count: int = 0
    sec_flag: bool = False
    sync_flag: bool = False
    order_flag: bool = False
    seg_id: int = 0
    fhp: int = 0
    sec_ident: int | None = None
    fecf_ok: bool | None = None
    fecf_want: str = ""
    fecf_got: str = ""
    mc_key: tuple = ()
    vc_key: tuple = ()


@dataclass(slots=True)
class AosFrameObs:
    kind = "aos_frame"
    units: tuple[Unit, ...]
    length: int
    version: int | None = None
    scid: int = 0
    vcid: int = 0
    sig_spare: int = 0
    count_usage: bool = False
    count_cycle: int = 0
    full_count: int = 0
    mpdu_spare: int | None = None
    fecf_ok: bool | None = None
    fecf_want: str = ""
    fecf_got: str = ""
    vc_key: tuple = ()


@dataclass(slots=True)
class ZoneObs:
    """A TM frame data field or an AOS packet zone, and where its packets start."""

    kind: str  # "zone_tm" or "zone_aos"
    units: tuple[Unit, ...]
    fhp: int
    zone_len: int
    expected: int | None = None  # the FHP the previous zones call for; None: unknown
    out_of_range: bool = False
    idle_mid_packet: bool = False
    idle_vc: bool = False
    parsed: bool = False
    zero_fill_at: int | None = None


@dataclass(slots=True)
class CopFacts:
    """What COP-1 had done on a TC virtual channel when a frame was sent."""

    kind: str  # "new", "retransmission", "jump", "bd", "bc"
    expected: int | None = None  # V(S)
    differs: bool = False  # a retransmission that is not the first copy
    acked: tuple[float, Unit] | None = None  # the CLCW that had acknowledged it
    lockout: tuple[float, Unit] | None = None  # the CLCW that reported Lockout


@dataclass(slots=True)
class NrFacts:
    previous: int | None
    limit: int | None = None  # the highest N(R) the frames sent allow
    unsent: list[int] = field(default_factory=list)
    backwards: bool = False


@dataclass(slots=True)
class TcFrameObs:
    kind = "tc_frame"
    units: tuple[Unit, ...]
    length: int
    version: int | None = None
    frame_type: str | None = None  # "AD", "BD", "BC"; None for the invalid flag pair
    spare: int = 0
    scid: int = 0
    vcid: int = 0
    length_field: int | None = None
    ns: int = 0
    map_id: int | None = None
    seq_flags: int | None = None
    data: bytes = b""
    fecf_ok: bool | None = None
    fecf_want: str = ""
    fecf_got: str = ""
    cop: CopFacts | None = None
    seg_fault: tuple[str, str] | tuple[()] | None = None


@dataclass(slots=True)
class TcDataObs:
    kind = "tc_data"
    units: tuple[Unit, ...]
    leftover_at: int
    leftover: bytes


@dataclass(slots=True)
class ClcwObs:
    kind = "clcw"
    units: tuple[Unit, ...]
    ocf: bytes
    word: int
    channel: str
    scid: int
    report_value: int = 0
    clcw_vcid: int = 0
    lockout: bool = False
    nr_facts: NrFacts | None = None


@dataclass(slots=True)
class PacketObs:
    kind = "packet"
    units: tuple[Unit, ...]
    raw: bytes
    stream: tuple
    where_text: str
    whole_unit: bool = False  # the packet is a whole captured unit
    ends_zone: bool = False  # the packet ends where its frame's data field ends
    version: int | None = None
    packet_type: int = 0
    sec_flag: bool = False
    apid: int = 0
    seq_flags: int = 0
    seq_count: int = 0
    length_field: int = 0
    idle_shaped: bool = False


Observation = (
    UnitObs
    | CaduObs
    | CltuObs
    | TmFrameObs
    | AosFrameObs
    | ZoneObs
    | TcFrameObs
    | TcDataObs
    | ClcwObs
    | PacketObs
)


# -- helpers ---------------------------------------------------------------------------------------


def _fecf_fields(obs: Any, data: bytes) -> None:
    if len(data) < 2:
        obs.fecf_ok = False
        obs.fecf_want, obs.fecf_got = "a 2-octet FECF", f"{len(data)} octets"
        return
    obs.fecf_ok = crc16_ccitt(data) == 0
    if not obs.fecf_ok:
        obs.fecf_want = f"{crc16_ccitt(data[:-2]):#06x}"
        obs.fecf_got = f"{int.from_bytes(data[-2:], 'big'):#06x}"


@functools.lru_cache(maxsize=64)
def _rs(e: int, depth: int, frame_length: int, dual: bool) -> ReedSolomon:
    return ReedSolomon(e, depth, frame_length, dual)


def _rs_text(e: int, depth: int, dual: bool) -> str:
    return f"RS(255,{255 - 2 * e}) I={depth}, {'dual' if dual else 'conventional'} basis"


@functools.lru_cache(maxsize=64)
def _rs_alternatives(
    codeblock_length: int, e0: int, depth0: int, dual0: bool
) -> tuple[tuple[int, int, int, bool], ...]:
    """(E, I, frame length, dual) of every other code with the same codeblock length."""
    out = []
    for dual in (dual0, not dual0):
        for e in (e0, 24 - e0):  # 16 <-> 8
            for depth in INTERLEAVING_DEPTHS:
                if (e, depth, dual) == (e0, depth0, dual0):
                    continue
                frame_length = codeblock_length - 2 * e * depth
                k = 255 - 2 * e
                if depth <= frame_length <= k * depth and frame_length % depth == 0:
                    out.append((e, depth, frame_length, dual))
    return tuple(out)


def _clean(result: Any) -> bool:
    return result.frame is not None and not any(result.corrected)


def _tc_plausible(data: bytes, p: Profile) -> int | None:
    """The frame length if ``data`` starts with a believable TC frame, else None."""
    if len(data) < 6 or data[0] >> 6:
        return None
    length = ((data[2] << 8 | data[3]) & 0x3FF) + 1
    if length < 6 or length > len(data) or len(data) - length >= 7:
        return None
    if p.tc.fecf:
        return length if crc16_ccitt(data[:length]) == 0 else None
    scid = (data[0] << 8 | data[1]) & 0x3FF
    return length if scid in p.tc.scids and not p.tc.scids.any else None


def _frame_plausible(frame: bytes, version: int, ch: CaduProfile) -> bool:
    if len(frame) < 6 or frame[0] >> 6 != version:
        return False
    return crc16_ccitt(frame) == 0 if ch.fecf else True


# -- following packets through zones ---------------------------------------------------------------


class ZoneWalker:
    """Follows the packets of one virtual channel through its zones, in order.

    ``push`` returns the zone's facts and the packets it completes (each with the
    units that carried it and whether it ends at the zone's end). When the walk and
    the FHP disagree, the walk is trusted if the header where it points is a version
    000 header, else the FHP; when the counters say zones were lost, the walker
    waits for the next FHP.
    """

    __slots__ = ("need", "pending", "pending_units", "synced")

    def __init__(self) -> None:
        self.synced = False
        self.pending = bytearray()
        self.need = 0  # total length of the pending packet; 0 while its header is cut
        self.pending_units: tuple[Unit, ...] = ()

    def _drop(self) -> None:
        self.pending = bytearray()
        self.need = 0
        self.pending_units = ()

    def _rest(self, zone: bytes) -> int | None:
        """Octets of ``zone`` that the pending packet still takes (None: unknowable)."""
        if not self.need:
            k = 6 - len(self.pending)
            if len(zone) < k:
                return None
            head = bytes(self.pending) + zone[:k]
            self.need = 7 + int.from_bytes(head[4:6], "big")
        return self.need - len(self.pending)

    def push(
        self, zone: bytes, fhp: int, continuous: bool, units: tuple[Unit, ...], facts: ZoneObs
    ) -> list[tuple[bytes, tuple[Unit, ...], bool]]:
        out: list[tuple[bytes, tuple[Unit, ...], bool]] = []
        zl = len(zone)
        rest = walk = None
        if self.synced:
            if self.pending:
                rest = self._rest(zone)
                walk = FHP_NO_HEADER if rest is None or rest >= zl else rest
            else:
                walk = 0
        if not continuous and walk is not None and fhp != walk:
            # frames were lost (or the counter is wrong and so is the pointer): start again
            self._drop()
            self.synced = False
            rest = walk = None
        facts.expected = walk
        if fhp == FHP_IDLE_ONLY:
            if walk is not None and self.pending:
                facts.idle_mid_packet = True
                if zone.count(zone[:1]) != zl:  # not idle fill: the packet goes on all the same
                    self._follow(zone, rest, units, out, facts)
                    return out
            self._drop()
            self.synced = True
            return out
        if fhp != FHP_NO_HEADER and fhp >= zl:
            facts.out_of_range = True
            self._drop()
            self.synced = False
            return out
        if walk is None:
            if fhp != FHP_NO_HEADER:  # else nothing to hold on to yet
                self.synced = True
                facts.parsed = True
                self._parse(zone, fhp, units, out, facts)
            return out
        if fhp not in (walk, FHP_NO_HEADER):
            head = self.pending[0] if walk == FHP_NO_HEADER else zone[walk]
            head_ok = not head >> 5  # a version 000 header where the walk leads
            if not head_ok:  # the walk leads nowhere sensible: take the frame's pointer
                self._drop()
                facts.parsed = True
                self._parse(zone, fhp, units, out, facts)
                return out
        self._follow(zone, rest, units, out, facts)
        return out

    def _follow(
        self,
        zone: bytes,
        rest: int | None,
        units: tuple[Unit, ...],
        out: list[tuple[bytes, tuple[Unit, ...], bool]],
        facts: ZoneObs,
    ) -> None:
        """Go on from where the previous zone left off."""
        facts.parsed = True
        zl = len(zone)
        if not self.pending:
            self._parse(zone, 0, units, out, facts)
            return
        if rest is None or rest >= zl:
            self.pending += zone
            self.pending_units = _merge_units(self.pending_units, units)
            if rest == zl:
                out.append((bytes(self.pending), self.pending_units, True))
                self._drop()
            return
        self.pending += zone[:rest]
        out.append((bytes(self.pending), _merge_units(self.pending_units, units), False))
        self._drop()
        self._parse(zone, rest, units, out, facts)

    def _parse(
        self,
        zone: bytes,
        pos: int,
        units: tuple[Unit, ...],
        out: list[tuple[bytes, tuple[Unit, ...], bool]],
        facts: ZoneObs,
    ) -> None:
        zl = len(zone)
        nonzero_end = len(zone.rstrip(b"\x00"))
        while pos < zl:
            if pos >= nonzero_end:
                facts.zero_fill_at = pos
                return
            if zl - pos < 6:
                self.pending = bytearray(zone[pos:])
                self.need = 0
                self.pending_units = units
                return
            end = pos + 7 + int.from_bytes(zone[pos + 4 : pos + 6], "big")
            if end > zl:
                self.pending = bytearray(zone[pos:])
                self.need = end - pos
                self.pending_units = units
                return
            out.append((zone[pos:end], units, end == zl))
            pos = end


def _merge_units(a: tuple[Unit, ...], b: tuple[Unit, ...]) -> tuple[Unit, ...]:
    return a + tuple(u for u in b if u not in a)


# -- COP-1 bookkeeping -----------------------------------------------------------------------------


class _CopVc:
    """One TC virtual channel as the capture shows it: V(S), the frames sent and
    which a CLCW acknowledged, the last N(R), a Lockout being reported."""

    __slots__ = ("acked", "lockout", "nr", "pending_vr", "sent", "vs")

    def __init__(self) -> None:
        self.vs: int | None = None
        self.sent: dict[int, bytes] = {}
        self.acked: dict[int, tuple[float, Unit]] = {}
        self.nr: int | None = None
        self.pending_vr: int | None = None
        self.lockout: tuple[float, Unit] | None = None

    def reset(self, vs: int | None) -> None:
        self.vs = vs
        self.sent.clear()
        self.acked.clear()

    def frame(self, obs: TcFrameObs, raw: bytes, t: float, latency: float) -> CopFacts:
        kind = obs.frame_type
        facts = CopFacts(kind.lower() if kind else "other")
        if self.lockout is not None and t >= self.lockout[0] + latency:
            facts.lockout = self.lockout
        if kind == "BC":
            try:
                command = unpack_control_command(obs.data)
            except DecodeError:
                return facts
            if isinstance(command, SetVr):
                self.pending_vr = command.vr
                self.reset(command.vr)
            elif isinstance(command, Unlock):
                self.reset(None)
            return facts
        if kind != "AD":
            return facts
        ns = obs.ns
        facts.expected = self.vs
        if self.vs is None or ns == self.vs:
            facts.kind = "new"
        elif ns in self.sent and (self.vs - 1 - ns) % 256 < 128:
            facts.kind = "retransmission"
            facts.differs = self.sent[ns] != raw
            ack = self.acked.get(ns)
            if ack is not None and t - ack[0] >= latency:
                facts.acked = ack
            return facts
        else:
            facts.kind = "jump"
        self.vs = (ns + 1) % 256
        self.sent.pop((ns - 128) % 256, None)
        self.sent[ns] = raw
        self.acked.pop(ns, None)
        return facts

    def clcw(self, nr: int, lockout: bool, t: float, unit: Unit) -> NrFacts:
        facts = NrFacts(self.nr)
        if self.pending_vr is not None and nr == self.pending_vr:
            self.pending_vr = None
        elif self.nr is not None:
            d = (nr - self.nr) % 256
            if 0 < d < 128:
                for k in range(d):
                    ns = (self.nr + k) % 256
                    if ns in self.sent:
                        self.acked.setdefault(ns, (t, unit))
                    elif self.vs is not None and (ns - self.vs) % 256 < 128:
                        facts.unsent.append(ns)
                if facts.unsent:
                    facts.limit = self.vs
            elif d >= 128:
                facts.backwards = True
                for k in range(256 - d):  # the reports past ``nr`` are taken back
                    self.acked.pop((nr + k) % 256, None)
        self.nr = nr
        if lockout:
            if self.lockout is None:
                self.lockout = (t, unit)
        else:
            self.lockout = None
        return facts


@dataclass(slots=True)
class _MapRun:
    run: bytearray | None = None
    units: tuple[Unit, ...] = ()
    seen: bool = False


# -- the analyzer ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Carrier:
    unit: Unit
    obs: CaduObs | CltuObs
    frame: bytes | None
    candidates: tuple[bytes, ...]  # what the frame unit it pairs with must match


class Analyzer:
    """Units -> observations (see the module docstring). ``emit`` receives each one."""

    def __init__(self, profile: Profile, emit: Callable[[Observation], None]) -> None:
        self.p = profile
        self.emit = emit
        self._pending: _Carrier | Unit | None = None
        self._walkers: dict[tuple, ZoneWalker] = {}
        self._vc_next: dict[tuple, int] = {}
        self._maps: dict[tuple, _MapRun] = {}
        self._cop: dict[tuple[int, int], _CopVc] = {}

    # -- the stream of units --------------------------------------------------------------------
    def feed(self, unit: Unit) -> None:
        p = self.p
        self.emit(UnitObs((unit,), p.side(unit.src), p.side(unit.dst)))
        layer = unit.layer
        if layer in CARRIER_FRAME:
            item: _Carrier | Unit = self._carrier(unit)
        elif layer in FRAME_LAYERS:
            item = unit
        else:
            self._flush()
            self._packet_unit(unit)
            return
        pending = self._pending
        if pending is not None and self._pairs(pending, item):
            self._pending = None
            if isinstance(pending, _Carrier):
                assert isinstance(item, Unit)
                self._merged(pending, item)
            else:
                assert isinstance(item, _Carrier)
                self._merged(item, pending)
            return
        self._flush()
        self._pending = item

    def finish(self) -> None:
        self._flush()

    def _pairs(self, a: _Carrier | Unit, b: _Carrier | Unit) -> bool:
        if isinstance(a, _Carrier) == isinstance(b, _Carrier):
            return False
        carrier, frame = (a, b) if isinstance(a, _Carrier) else (b, a)
        assert isinstance(carrier, _Carrier) and isinstance(frame, Unit)
        cu = carrier.unit
        if CARRIER_FRAME[cu.layer] != frame.layer:
            return False
        if abs(cu.t_s - frame.t_s) > 1e-6 or (cu.src, cu.dst) != (frame.src, frame.dst):
            return False
        if cu.layer == "cltu":
            f = frame.data
            return any(c.startswith(f) and len(c) - len(f) < 7 for c in carrier.candidates)
        return frame.data in carrier.candidates

    def _flush(self) -> None:
        item, self._pending = self._pending, None
        if item is None:
            return
        if isinstance(item, Unit):
            self._frame(item.layer, item.data, (item,))
            return
        self.emit(item.obs)
        if item.frame is not None:
            self._frame(CARRIER_FRAME[item.unit.layer], item.frame, (item.unit,))

    def _merged(self, carrier: _Carrier, frame: Unit) -> None:
        if isinstance(carrier.obs, CltuObs):
            carrier.obs.frame_len = len(frame.data)
        self.emit(carrier.obs)
        self._frame(frame.layer, frame.data, (frame, carrier.unit))

    def _carrier(self, unit: Unit) -> _Carrier:
        if unit.layer == "cltu":
            return self._cltu(unit)
        return self._cadu(unit, "tm" if unit.layer == "tm_cadu" else "aos")

    def _frame(self, layer: str, data: bytes, units: tuple[Unit, ...]) -> None:
        if layer == "tm_frame":
            self._tm(data, units)
        elif layer == "aos_frame":
            self._aos(data, units)
        else:
            self._tc(data, units)

    def _key(self, unit: Unit) -> tuple[str, str]:
        return self.p.domain(unit.src), self.p.domain(unit.dst)

    # -- CADUs (131.0-B-4) ------------------------------------------------------------------------
    def _cadu(self, unit: Unit, channel: str) -> _Carrier:
        ch = self.p.tm if channel == "tm" else self.p.aos
        data = unit.data
        asm = ch.asm
        length = ch.codeblock_length
        obs = CaduObs(
            (unit,),
            channel,
            data[: len(asm)],
            asm,
            len(data),
            len(asm) + length,
            ch.randomize,
            _rs_text(ch.rs_e, ch.rs_depth, ch.dual_basis) if ch.rs_e else "no Reed-Solomon",
        )
        block = None
        max_errors = min(4, (8 * len(asm) - 1) // 2)
        if data[: len(asm)] == asm:
            obs.asm_at = 0
            block = data[len(asm) : len(asm) + length]
        else:
            match = find_asm(data, min(length, max(len(data) - len(asm), 0)), asm, max_errors)
            if match is not None:
                obs.asm_at, obs.asm_errors, obs.asm_inverted = match
                block = find_frame(data, length, asm, max_errors)
            if block is None and len(data) == len(asm) + length:
                block = data[len(asm) :]  # judge the coding where the ASM should have been
        frame = None
        if block is not None and len(block) == length:
            frame = self._codeblock(obs, block, ch, 0 if channel == "tm" else 1)
        return _Carrier(unit, obs, frame, (frame,) if frame is not None else ())

    def _codeblock(self, obs: CaduObs, block: bytes, ch: CaduProfile, version: int) -> bytes | None:
        want = ch.randomize
        as_sent = {want: tm_randomize(block) if want else block}
        as_sent[not want] = block if want else tm_randomize(block)
        if not ch.rs_e:
            p_want = _frame_plausible(as_sent[want], version, ch)
            p_other = _frame_plausible(as_sent[not want], version, ch)
            if p_want != p_other:
                obs.randomized = want if p_want else not want
            return as_sent[want if obs.randomized is None else obs.randomized]
        rs = _rs(ch.rs_e, ch.rs_depth, ch.frame_length, ch.dual_basis)
        first = rs.decode(as_sent[want])
        if _clean(first):
            obs.randomized, obs.rs_errors = want, first.corrected
            return first.frame
        second = rs.decode(as_sent[not want])
        if _clean(second):
            obs.randomized, obs.rs_errors = not want, second.corrected
            return second.frame
        obs.rs_errors = first.corrected
        for e, depth, frame_length, dual in _rs_alternatives(
            len(block), ch.rs_e, ch.rs_depth, ch.dual_basis
        ):
            alt = _rs(e, depth, frame_length, dual)
            for randomized in (want, not want):
                got = alt.decode(as_sent[randomized])
                if _clean(got):
                    obs.alt = f"{_rs_text(e, depth, dual)} decodes it"
                    obs.randomized = randomized
                    return got.frame
        if first.frame is not None:
            obs.randomized = want
            return first.frame
        if second.frame is not None:
            obs.randomized, obs.rs_errors = not want, second.corrected
            return second.frame
        return None

    # -- CLTUs (231.0-B-4) ------------------------------------------------------------------------
    @staticmethod
    def _clean_cltu(obs: CltuObs, body: bytes) -> bytes | None:
        """The information octets of a CLTU whose codeblocks are all clean up to the tail
        (the common case, decoded at once), else None."""
        try:
            got = decode_cltu(START_SEQUENCE + body, DecodeMode.DETECT)
        except DecodeError:
            return None
        if got.end is not CltuEnd.TAIL:
            return None
        obs.codeblocks = obs.tail_at = got.codeblocks
        obs.after_tail = len(body) - 8 * (got.codeblocks + 1)
        return got.data

    @staticmethod
    def _scan_cltu(obs: CltuObs, body: bytes) -> bytes:
        """Codeblock by codeblock: where the tail is, which codeblocks are damaged."""
        whole = len(body) // 8
        used = whole
        for i in range(whole):
            if body[8 * i : 8 * i + 8] == TAIL_SEQUENCE:
                obs.tail_at = used = i
                obs.after_tail = len(body) - 8 * (i + 1)
                break
        else:
            extra = len(body) - 8 * whole
            obs.tail_note = f"the unit ends after {whole} codeblocks" + (
                f" and {extra} more octets" if extra else ""
            )
        info = []
        for i in range(used):
            block = body[8 * i : 8 * i + 8]
            good = bch_encode(block[:7])
            if good != block:
                if not obs.bad_blocks:
                    obs.bad_blocks_detail = f"parity octet {block[7]:02x}, expected {good[7]:02x}"
                obs.bad_blocks.append(i)
            info.append(block[:7])
        obs.codeblocks = used
        return b"".join(info)

    def _cltu(self, unit: Unit) -> _Carrier:
        data = unit.data
        obs = CltuObs((unit,), data[:2])
        body = data[2:]
        raw = self._clean_cltu(obs, body)
        if raw is None:
            raw = self._scan_cltu(obs, body)
        obs.data = raw
        p = self.p
        want = p.tc.randomize
        as_sent = {want: tc_randomize(raw) if want else raw}
        as_sent[not want] = raw if want else tc_randomize(raw)
        len_want = _tc_plausible(as_sent[want], p)
        len_other = _tc_plausible(as_sent[not want], p)
        if (len_want is None) != (len_other is None):
            obs.randomized = want if len_want is not None else not want
        chosen = as_sent[want if obs.randomized is None else obs.randomized]
        frame = None
        if len(chosen) >= 5:
            length = ((chosen[2] << 8 | chosen[3]) & 0x3FF) + 1
            if 5 < length <= len(chosen):
                frame = chosen[:length]
                obs.frame_len = length
        candidates = (chosen,) if obs.randomized is not None else (as_sent[want], as_sent[not want])
        return _Carrier(unit, obs, frame, candidates)

    # -- TM frames (132.0-B-3) --------------------------------------------------------------------
    def _tm(self, data: bytes, units: tuple[Unit, ...]) -> None:
        tm = self.p.tm
        n = len(data)
        obs = TmFrameObs(units, n)
        if n < 6:
            self.emit(obs)
            return
        w0, mc, vc, dfs = _TM_HDR.unpack_from(data)
        obs.version = w0 >> 14
        obs.scid, obs.vcid, obs.ocf_flag = (w0 >> 4) & 0x3FF, (w0 >> 1) & 7, bool(w0 & 1)
        obs.mc_count, obs.vc_count = mc, vc
        obs.sec_flag, obs.sync_flag = bool(dfs & 0x8000), bool(dfs & 0x4000)
        obs.order_flag, obs.seg_id, obs.fhp = bool(dfs & 0x2000), (dfs >> 11) & 3, dfs & 0x7FF
        src, dst = self._key(units[0])
        obs.mc_key = ("tm", src, dst, obs.scid)
        obs.vc_key = (*obs.mc_key, obs.vcid)
        if tm.fecf:
            _fecf_fields(obs, data)
        end = n - (2 if tm.fecf else 0)
        ocf = None
        if obs.ocf_flag:
            end -= 4
            if end >= 6:
                ocf = data[end : end + 4]
        pos = 6
        if obs.sec_flag and pos < end:
            obs.sec_ident = data[pos]
            pos += 1 + (data[pos] & 0x3F)
        self.emit(obs)
        if obs.version != 0:
            return
        if ocf is not None and tm.ocf == "clcw":
            self._clcw(ocf, "tm", obs.scid, units)
        if obs.sync_flag or end - pos < 1:
            return
        key = obs.vc_key
        zone = ZoneObs("zone_tm", units, obs.fhp, end - pos, idle_vc=obs.vcid == tm.idle_vcid)
        self._zone(zone, key, data[pos:end], vc, 256, "tm", obs.scid, obs.vcid)

    def _zone(
        self,
        zone_obs: ZoneObs,
        key: tuple,
        zone: bytes,
        count: int,
        modulo: int,
        channel: str,
        scid: int,
        vcid: int,
    ) -> None:
        expected = self._vc_next.get(key)
        self._vc_next[key] = (count + 1) % modulo
        walker = self._walkers.get(key)
        if walker is None:
            walker = self._walkers[key] = ZoneWalker()
        units = zone_obs.units
        packets = walker.push(zone, zone_obs.fhp, expected in (None, count), units, zone_obs)
        self.emit(zone_obs)
        stream = key
        where = f"in {channel.upper()} frames of SCID {scid}, VC {vcid}"
        for raw, carried_by, ends in packets:
            self._packet(raw, carried_by, stream, where, ends_zone=ends)

    # -- AOS frames (732.0-B-4) -------------------------------------------------------------------
    def _aos(self, data: bytes, units: tuple[Unit, ...]) -> None:
        aos = self.p.aos
        n = len(data)
        obs = AosFrameObs(units, n)
        if n < 6:
            self.emit(obs)
            return
        w0, count_hi, count_lo, sig = _AOS_HDR.unpack_from(data)
        obs.version = w0 >> 14
        obs.scid, obs.vcid = (w0 >> 6) & 0xFF, w0 & 0x3F
        obs.sig_spare, obs.count_usage, obs.count_cycle = (sig >> 4) & 3, bool(sig & 0x40), sig & 15
        count = (count_hi << 8) | count_lo
        obs.full_count = (obs.count_cycle << 24 | count) if obs.count_usage else count
        src, dst = self._key(units[0])
        obs.vc_key = ("aos", src, dst, obs.scid, obs.vcid)
        if aos.fecf:
            _fecf_fields(obs, data)
        end = n - (2 if aos.fecf else 0) - (4 if aos.ocf != "none" else 0)
        start = 6 + aos.insert_zone_len
        ocf = data[end : end + 4] if aos.ocf == "clcw" and end >= 6 else None
        packet_zone = obs.version == 1 and obs.vcid != aos.idle_vcid and end - start >= 3
        if packet_zone:
            head = (data[start] << 8) | data[start + 1]
            obs.mpdu_spare = head >> 11
        self.emit(obs)
        if obs.version != 1:
            return
        if ocf is not None and len(ocf) == 4:
            self._clcw(ocf, "aos", obs.scid, units)
        if not packet_zone:
            return
        fhp = ((data[start] << 8) | data[start + 1]) & 0x7FF
        zone = ZoneObs("zone_aos", units, fhp, end - start - 2)
        modulo = 1 << (28 if obs.count_usage else 24)
        zone_bytes = data[start + 2 : end]
        self._zone(zone, obs.vc_key, zone_bytes, obs.full_count, modulo, "aos", obs.scid, obs.vcid)

    # -- TC frames (232.0-B-4) and COP-1 (232.1-B-2) -----------------------------------------------
    def _tc(self, data: bytes, units: tuple[Unit, ...]) -> None:
        p = self.p
        n = len(data)
        obs = TcFrameObs(units, n)
        if n < 5:
            self.emit(obs)
            return
        w0, w1, ns = _TC_HDR.unpack_from(data)
        obs.version = w0 >> 14
        bypass, cc = (w0 >> 13) & 1, (w0 >> 12) & 1
        obs.frame_type = {(0, 0): "AD", (1, 0): "BD", (1, 1): "BC"}.get((bypass, cc))
        obs.spare = (w0 >> 10) & 3
        obs.scid, obs.vcid = w0 & 0x3FF, w1 >> 10
        obs.length_field, obs.ns = w1 & 0x3FF, ns
        if p.tc.fecf:
            _fecf_fields(obs, data)
        end = n - (2 if p.tc.fecf else 0)
        pos = 5
        seg = p.tc.segment_header and obs.frame_type in ("AD", "BD")
        if seg and end - pos >= 1:
            obs.seq_flags, obs.map_id = data[pos] >> 6, data[pos] & 0x3F
            pos += 1
        obs.data = data[pos:end] if end > pos else b""
        valid = obs.version == 0 and obs.frame_type is not None
        if valid:
            cop = self._cop.get((obs.scid, obs.vcid))
            if cop is None:
                cop = self._cop[(obs.scid, obs.vcid)] = _CopVc()
            obs.cop = cop.frame(obs, data, units[0].t_s, p.cop1.ack_latency_s)
        fields = None
        cop = obs.cop
        # data fields of Type-AD and BD frames, once: a retransmission's was judged already
        first_copy = cop is not None and cop.kind != "retransmission"
        if valid and obs.frame_type != "BC" and first_copy and obs.data:
            fields = self._map_fields(obs, units)
        self.emit(obs)
        if fields:
            src, dst = self._key(units[0])
            stream = ("tc", src, dst, obs.scid, obs.vcid, obs.map_id)
            where = f"in TC frames of SCID {obs.scid}, VC {obs.vcid}, MAP {obs.map_id}"
            for payload, carried_by in fields:
                self._tc_packets(payload, carried_by, stream, where)

    def _map_fields(
        self, obs: TcFrameObs, units: tuple[Unit, ...]
    ) -> list[tuple[bytes, tuple[Unit, ...]]]:
        """The complete data fields this frame gives (and its segment header's verdict)."""
        if obs.seq_flags is None:
            return [(obs.data, units)]
        src, dst = self._key(units[0])
        key = (src, dst, obs.scid, obs.vcid, obs.map_id)
        state = self._maps.get(key)
        if state is None:
            state = self._maps[key] = _MapRun()
        flags = obs.seq_flags
        names = {0: "continuation (00)", 1: "first (01)", 2: "last (10)", 3: "unsegmented (11)"}
        out: list[tuple[bytes, tuple[Unit, ...]]] = []
        first_seen = not state.seen
        state.seen = True
        obs.seg_fault = ()
        if flags in (0, 2) and state.run is None:
            if first_seen:
                obs.seg_fault = None  # the capture began inside a segmented packet
            else:
                obs.seg_fault = ("first (01) or unsegmented (11)", names[flags])
            return out
        if flags in (1, 3) and state.run is not None:
            obs.seg_fault = ("continuation (00) or last (10)", names[flags])
            state.run, state.units = None, ()
        if flags == 3:
            out.append((obs.data, units))
        elif flags == 1:
            state.run, state.units = bytearray(obs.data), units
        else:
            assert state.run is not None
            state.run += obs.data
            state.units = _merge_units(state.units, units)
            if flags == 2:
                out.append((bytes(state.run), state.units))
                state.run, state.units = None, ()
        return out

    def _tc_packets(self, data: bytes, units: tuple[Unit, ...], stream: tuple, where: str) -> None:
        pos, n = 0, len(data)
        nonzero_end = len(data.rstrip(b"\x00"))
        packets = []
        while pos < n and pos < nonzero_end and n - pos >= 6:
            end = pos + 7 + int.from_bytes(data[pos + 4 : pos + 6], "big")
            if end > n:
                break
            packets.append(data[pos:end])
            pos = end
        self.emit(TcDataObs(units, pos, data[pos:]))
        for raw in packets:
            self._packet(raw, units, stream, where)

    def _clcw(self, ocf: bytes, channel: str, scid: int, units: tuple[Unit, ...]) -> None:
        word = int.from_bytes(ocf, "big")
        obs = ClcwObs(units, ocf, word, channel, scid)
        obs.report_value, obs.clcw_vcid = word & 0xFF, (word >> 18) & 0x3F
        obs.lockout = bool(word & 0x2000)
        well_formed = not word >> 29 and (word >> 24) & 3 == 1 and not (word >> 16) & 3
        if well_formed and not word & 0x100:
            cop = self._cop.get((scid, obs.clcw_vcid))
            if cop is None:
                cop = self._cop[(scid, obs.clcw_vcid)] = _CopVc()
            obs.nr_facts = cop.clcw(obs.report_value, obs.lockout, units[0].t_s, units[0])
        self.emit(obs)

    # -- Space Packets (133.0-B-2) ----------------------------------------------------------------
    def _packet_unit(self, unit: Unit) -> None:
        src, dst = self._key(unit)
        where = f"on the packet port, {unit.src} -> {unit.dst}"
        self._packet(unit.data, (unit,), ("port", src, dst), where, whole=True)

    def _packet(
        self,
        raw: bytes,
        units: tuple[Unit, ...],
        stream: tuple,
        where: str,
        *,
        whole: bool = False,
        ends_zone: bool = False,
    ) -> None:
        obs = PacketObs(units, raw, stream, where, whole, ends_zone)
        if len(raw) >= 6:
            w0, w1, length = _SPP_HDR.unpack_from(raw)
            obs.version, obs.packet_type, obs.sec_flag = w0 >> 13, (w0 >> 12) & 1, bool(w0 & 0x800)
            obs.apid, obs.seq_flags, obs.seq_count = w0 & 0x7FF, w1 >> 14, w1 & 0x3FFF
            obs.length_field = length
            body = raw[6:]
            obs.idle_shaped = (
                ends_zone
                and obs.apid != IDLE_APID
                and len(body) >= IDLE_SHAPE_MIN_DATA
                and body.count(body[0]) == len(body)
            )
        self.emit(obs)


# -- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """The first unit that broke a rule, and how."""

    unit: Unit
    field: str
    expected: str
    found: str
    note: str = ""
    also: tuple[Unit, ...] = ()  # the other units of the observation (its carrier)


class RuleRun:
    """One rule over one capture: its context, and its verdicts so far."""

    __slots__ = ("checked", "ctx", "error", "errors", "failed", "first", "rule")

    def __init__(self, rule: Rule, profile: Profile) -> None:
        self.rule = rule
        self.ctx = RuleContext(profile)
        self.checked = 0
        self.failed: set[int] = set()
        self.first: Finding | None = None
        self.errors = 0
        self.error: str | None = None

    def judge(self, obs: Observation) -> None:
        try:
            result = self.rule.judge(obs, self.ctx)
        except Exception as exc:  # a bug in a rule must not end the audit; it is reported
            self.errors += 1
            if self.error is None:
                where = obs.units[0].describe() if obs.units else "?"
                line = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self.error = f"{line} (judging unit {where})"
            return
        if result is SKIP:
            return
        self.checked += 1
        if result is None:
            return
        for fault in result if isinstance(result, list) else (result,):
            unit = fault.unit if fault.unit is not None else obs.units[0]
            self.failed.add(unit.index)
            if self.first is None:
                also = tuple(u for u in obs.units if u is not unit)
                self.first = Finding(
                    unit, fault.field, fault.expected, fault.found, fault.note, also
                )


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: Rule
    status: str  # "pass", "fail", "n/a", "error"
    checked: int = 0
    failed: int = 0
    first: Finding | None = None
    reason: str = ""  # why not applicable
    error: str | None = None


@dataclass
class Report:
    capture: str
    profile: Profile
    results: list[RuleResult]
    units: Counter[str]
    reader: Counter[str]
    epoch: datetime
    read_error: str | None = None
    internal_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def empty(self) -> str | None:
        """Why there was nothing to audit (a capture read to its end without one unit on
        the profile's ports), or None."""
        if sum(self.units.values()) or self.read_error:
            return None
        records = self.reader.get("records", 0)
        return (
            f"no UDP datagram on the profile's ports in {records} pcap record(s) "
            "(another port table? see --profile and [ports])"
        )

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        """0: every applicable rule passed; 1: a rule failed; 2: the audit is incomplete
        (the capture could not be read to its end or held nothing to audit, or a rule or
        the analysis broke)."""
        if any(r.status == "fail" for r in self.results):
            return 1
        broken = any(r.status == "error" for r in self.results)
        if self.read_error or self.internal_errors or broken or self.empty:
            return 2
        return 0

    def time_of(self, unit: Unit) -> str:
        try:
            when = (self.epoch + timedelta(seconds=unit.t_s)).isoformat().replace("+00:00", "Z")
        except (OverflowError, ValueError):
            when = "?"
        return f"t = {unit.t_s:.6f} s ({when})"


_SUBJECT_KINDS = {
    "unit": ("cltu", "tc_frame", "tm_cadu", "tm_frame", "aos_cadu", "aos_frame"),
}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a checker of these rules under this profile needs before the first unit."""

    rules: tuple[Rule, ...]
    disabled: tuple[RuleResult | None, ...]  # the result of a rule the profile rules out
    by_kind: dict[str, tuple[int, ...]]  # observation kind -> the rules that judge it
    subjects: tuple[tuple[str, ...], ...]  # the kinds (or layers) each rule needs
    absent: tuple[RuleResult, ...]  # n/a: what the rule needs is not in the capture
    unused: tuple[RuleResult, ...]  # n/a: it is there, but nothing the rule applies to


_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Profile, _Plan]] = {}


def _plan(profile: Profile, rules: tuple[Rule, ...] | None) -> _Plan:
    key = (id(profile), None if rules is None else tuple(r.id for r in rules))
    got = _PLANS.get(key)
    if got is not None and got[0] is profile:
        return got[1]
    rules = tuple(CATALOGUE) if rules is None else rules
    reasons = [r.disabled_by(profile) for r in rules]
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        if reasons[i] is None:
            for kind in r.on:
                by_kind.setdefault(kind, []).append(i)
    plan = _Plan(
        rules,
        tuple(
            None if why is None else RuleResult(r, "n/a", reason=why)
            for r, why in zip(rules, reasons, strict=True)
        ),
        {k: tuple(v) for k, v in by_kind.items()},
        tuple(tuple(k for kind in r.on for k in _SUBJECT_KINDS.get(kind, (kind,))) for r in rules),
        tuple(RuleResult(r, "n/a", reason=f"no {r.subject} in the capture") for r in rules),
        tuple(
            RuleResult(r, "n/a", reason=r.na or f"nothing in the capture that {r.id} applies to")
            for r in rules
        ),
    )
    if len(_PLANS) > 16:
        _PLANS.clear()
    _PLANS[key] = (profile, plan)
    return plan


class Checker:
    """The rules over a stream of units: ``feed`` each, then ``finish`` for the results."""

    def __init__(self, profile: Profile, rules: Iterable[Rule] | None = None) -> None:
        self.profile = profile
        self.plan = _plan(profile, None if rules is None else tuple(rules))
        self.rules = list(self.plan.rules)
        self.runs: list[RuleRun | None] = [None] * len(self.rules)  # made when first needed
        self.kinds: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.internal_errors: list[str] = []
        self.analyzer = Analyzer(profile, self._dispatch)
        self._count = 0

    def _dispatch(self, obs: Observation) -> None:
        self.kinds[obs.kind] += 1
        runs = self.runs
        for i in self.plan.by_kind.get(obs.kind, ()):
            run = runs[i]
            if run is None:
                run = runs[i] = RuleRun(self.rules[i], self.profile)
            run.judge(obs)

    def feed(self, unit: Unit) -> None:
        self.units[unit.layer] += 1
        try:
            self.analyzer.feed(unit)
        except Exception as exc:  # the analysis must not end the audit either
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.internal_errors.append(f"analysing unit {unit.describe()}: {line}")

    def feed_captured(self, captured: CapturedUnit, record: int = 0) -> Unit:
        """Feed a :class:`~linkstack.capture.pcap.CapturedUnit` (numbered in arrival order)."""
        self._count += 1
        unit = Unit(
            self._count,
            record or self._count,
            captured.t_s,
            captured.layer,
            captured.src,
            captured.dst,
            captured.data,
        )
        self.feed(unit)
        return unit

    def finish(self) -> list[RuleResult]:
        try:
            self.analyzer.finish()
        except Exception as exc:
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.internal_errors.append(f"analysing the last unit: {line}")
        return [self._result(i) for i in range(len(self.rules))]

    def _result(self, i: int) -> RuleResult:
        plan = self.plan
        disabled = plan.disabled[i]
        if disabled is not None:
            return disabled
        rule = self.rules[i]
        run = self.runs[i]
        if run is not None:
            if run.errors:
                failed = len(run.failed)
                return RuleResult(rule, "error", run.checked, failed, run.first, error=run.error)
            if run.failed:
                return RuleResult(rule, "fail", run.checked, len(run.failed), run.first)
            if run.checked:
                return RuleResult(rule, "pass", run.checked)
        kinds, units = self.kinds, self.units
        if any(kinds.get(k) or units.get(k) for k in plan.subjects[i]):
            return plan.unused[i]
        return plan.absent[i]


# -- reading a capture -----------------------------------------------------------------------------


def select_rules(spec: str | None) -> list[Rule]:
    """Rules by comma-separated identifiers (``*`` patterns allowed); all for None."""
    if not spec:
        return list(CATALOGUE)
    wanted = [s.strip().upper() for s in spec.split(",") if s.strip()]
    out = []
    for pattern in wanted:
        hits = [r for r in CATALOGUE if fnmatch.fnmatchcase(r.id, pattern)]
        if not hits:
            raise ConfigError(
                "conform", "--rules", f"no rule {pattern!r}; see `linkstack conform --list-rules`"
            )
        out.extend(r for r in hits if r not in out)
    return out


def check_capture(
    source: str | os.PathLike[str] | BinaryIO | bytes,
    profile: Profile | str | None = None,
    rules: Iterable[Rule] | None = None,
) -> Report:
    """Check a pcap file (a path, a binary file or its bytes) against ``profile``.

    Never raises on what the capture holds: a file that cannot be read to its end is
    reported (``read_error``) with the rules judged over the units read before.
    """
    t0 = time.perf_counter()
    if not isinstance(profile, Profile):
        profile = load_profile(profile or "linkstack")
    checker = Checker(profile, rules)
    name = (
        os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else "<bytes>"
        if isinstance(source, bytes | bytearray)
        else getattr(source, "name", "<stream>")
    )
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(bytes(source))
    read_error = None
    reader: PcapReader | None = None
    try:
        reader = PcapReader(source, ports=profile.layer_by_port)
        for captured in reader:
            if captured.layer not in LAYERS:  # pragma: no cover - the port table is checked
                continue
            checker.feed_captured(captured, reader.stats["records"])
    except (LinkstackError, OSError) as exc:
        records = reader.stats["records"] if reader is not None else 0
        read_error = f"stopped after {records} pcap records: {exc}"
    results = checker.finish()
    epoch = reader.epoch if reader is not None else datetime(1970, 1, 1, tzinfo=UTC)
    return Report(
        name,
        profile,
        results,
        checker.units,
        reader.stats if reader is not None else Counter(),
        epoch,
        read_error,
        checker.internal_errors,
        time.perf_counter() - t0,
    )
