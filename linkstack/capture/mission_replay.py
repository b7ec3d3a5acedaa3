"""A mission's downlink replayed as its profile says, sans-I/O: units in, the counts out.

``linkstack replay --profile P`` reads another mission's recording (or linkstack's, by
its profile) through the project's own receivers, configured from the profile's
downlink section (:mod:`linkstack.capture.mission_profile`), nothing guessed: CADUs
through :class:`~linkstack.ccsds.coding.chains.CaduReceiver` (the ASM at any bit
offset and either polarity, derandomization, Reed-Solomon in the dual or the
conventional basis, or none), frames through
:class:`~linkstack.ccsds.tm.TmReceiver` or :class:`~linkstack.ccsds.aos.AosReceiver`
(FECF or none, insert zone, OCF), the packets through
:class:`~linkstack.ccsds.spp.SpacePacket`. Out come what a mission's ground station
counts (:class:`MissionCounts`): CADUs synchronized, Reed-Solomon codewords corrected
and uncorrectable, frames per virtual channel with the gaps of its frame count,
packets per APID with the gaps of their sequence count (per APID, or one counter
shared by all when the profile says so), CLCWs; and every packet
(:class:`MissionPacket`) for export. Only the APIDs the profile names as linkstack's
(``[mission] linkstack_apids``; none for another mission) are read as linkstack's
messages (:mod:`payloads.messages`).

**A frame record beside its CADU.** linkstack's capture writes each frame twice: in
its CADU (``tm_cadu``) and as a frame record (``tm_frame``) at the same instant.
Decoding both would count every frame twice (twice the packets, a frame count gap at
each repeat), so a frame record goes with a CADU of the same source within
:data:`~linkstack.capture.reader.PAIR_WINDOW_S` either way, as in the general replay:
the one whose frame it equals (a refused CADU's frame is unknown: a record that comes
after it may be its), else (once the window has passed) the earliest left without one.
It is then checked against that CADU's frame (counted in
:attr:`MissionCounts.frame_records`: ``equal``, ``different``, or ``cadu_refused``),
never decoded again. A frame record with no CADU near it is decoded on its own
(``alone``): a recording of frames only reads as it always did. Records wait a window
for their CADU, so call :meth:`MissionReplay.finish` at the end of the recording. The
waiting and the window's rule are :mod:`linkstack.capture.window_pairing`'s, shared
with the general replay.

The general :class:`~linkstack.capture.replay.Replayer` stays the replay of
linkstack's own captures (uplinks, COP-1, laser links, SDLS); this one is the
downlink of any mission, a few hundred lines that share the codecs, not the chains.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from linkstack.capture.reader import PAIR_WINDOW_S, CapturedUnit
from linkstack.capture.window_pairing import WindowPairing
from linkstack.ccsds.aos import AosConfig, AosReceiver
from linkstack.ccsds.cop1.clcw import is_clcw
from linkstack.ccsds.packet_zone import ReceivedFrame
from linkstack.ccsds.spp import IDLE_APID, SEQ_COUNT_MODULO, Reassembler, SpacePacket
from linkstack.ccsds.tm import TmConfig, TmReceiver
from linkstack.errors import DecodeError

if TYPE_CHECKING:
    from linkstack.ccsds.coding.chains import CaduReceiver
    from linkstack.runtime.mission_profile import Profile

SHARED = "shared"  # the packet counter key when one count runs across the APIDs
_VC_COUNT_MODULO = {"tm": 256}  # AOS: 2^24, or 2^28 with the frame count cycle


@dataclass
class ChannelCount:
    """One virtual channel: frames received, and the frames its count says are missing."""

    frames: int = 0
    idle: int = 0
    gaps: int = 0  # discontinuities of the frame count
    lost: int = 0  # frames missing by the count
    last_count: int | None = None


@dataclass
class ApidCount:
    """One APID: packets, octets, and the sequence count's gaps (per APID or shared)."""

    packets: int = 0
    octets: int = 0
    gaps: int = 0
    lost: int = 0


@dataclass(frozen=True, slots=True)
class MissionPacket:
    """A packet as it came out of the frames, with where it came from (for export)."""

    index: int  # in the recording's order, from 0
    unit: int  # the unit (CADU or frame) that completed it, from 0
    vcid: int
    vc_count: int
    apid: int
    seq_count: int
    seq_flags: int
    raw: bytes


@dataclass(slots=True, eq=False)  # taken out of the waiting ones by identity
class _Cadu:
    """A CADU decoded while no frame record went with it yet: a later one may."""

    t_s: float
    src: str
    frame: bytes | None  # None: refused


@dataclass(frozen=True, slots=True, eq=False)
class _Record:
    """A frame record waiting for its CADU, and the number of the unit it came in."""

    number: int  # from 0
    unit: CapturedUnit

    @property
    def t_s(self) -> float:
        return self.unit.t_s


def _same_source(record: _Record, cadu: _Cadu) -> bool:
    return record.unit.src == cadu.src


def _may_be_its_frame(record: _Record, cadu: _Cadu) -> bool:
    """``cadu``'s frame is ``record``'s, or may be: a refused CADU's frame is unknown."""
    return cadu.frame is None or record.unit.data == cadu.frame


@dataclass
class MissionCounts:
    units: Counter[str] = field(default_factory=Counter)  # per layer
    # frame records beside a CADU (equal, different, cadu_refused), or decoded alone
    frame_records: Counter[str] = field(default_factory=Counter)
    cadu: Counter[str] = field(default_factory=Counter)  # the CaduReceiver's counters
    frames: Counter[str] = field(default_factory=Counter)  # the frame receiver's counters
    vcs: dict[int, ChannelCount] = field(default_factory=dict)
    apids: dict[int, ApidCount] = field(default_factory=dict)
    idle_packets: int = 0
    packets_refused: int = 0
    clcws: int = 0
    scids: Counter[int] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)  # linkstack's, by type
    counter_gaps: int = 0  # sequence count gaps (per APID, or of the shared counter)
    counter_lost: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counts as JSON wants them (``--json``)."""
        return {
            "units": dict(self.units),
            "frame_records": dict(self.frame_records),
            "cadu": dict(self.cadu),
            "frames": dict(self.frames),
            "scids": {str(k): v for k, v in sorted(self.scids.items())},
            "virtual_channels": {
                str(vc): {"frames": c.frames, "idle": c.idle, "gaps": c.gaps, "lost": c.lost}
                for vc, c in sorted(self.vcs.items())
            },
            "apids": {
                str(apid): {
                    "packets": c.packets,
                    "octets": c.octets,
                    "gaps": c.gaps,
                    "lost": c.lost,
                }
                for apid, c in sorted(self.apids.items())
            },
            "idle_packets": self.idle_packets,
            "packets_refused": self.packets_refused,
            "sequence_gaps": self.counter_gaps,
            "sequence_lost": self.counter_lost,
            "clcws": self.clcws,
            "linkstack_messages": dict(self.messages),
        }


class MissionReplay:
    """One mission's downlink: ``feed`` each unit (a CADU or a frame of the profile's
    downlink), ``finish`` at the end, then read :attr:`counts` and :attr:`packets`."""

    def __init__(
        self, profile: Profile, keep_packets: bool = True, window_s: float = PAIR_WINDOW_S
    ) -> None:
        self.profile = profile
        self.window_s = window_s
        self.kind = profile.mission.downlink
        ch = profile.downlink
        self.shared = profile.mission.packet_counter == SHARED
        self.keep_packets = keep_packets
        self.counts = MissionCounts()
        self.packets: list[MissionPacket] = []
        self.refusals: list[str] = []  # the first few, for the report
        self._cadu: CaduReceiver | None = None
        self._rx: TmReceiver | AosReceiver
        ocf = ch.ocf != "none"
        if self.kind == "tm":
            self._rx = TmReceiver(
                TmConfig(
                    frame_length=ch.frame_length,
                    fecf=ch.fecf,
                    ocf=ocf,
                    secondary_header_len=getattr(ch, "secondary_header_len", 0),
                    idle_vcid=max(ch.idle_vcid, 0),
                ),
                check_scid=False,
            )
            self._modulo = _VC_COUNT_MODULO["tm"]
            self._idle_vcid = self._rx.config.idle_vcid
        else:
            count_cycle = getattr(ch, "count_cycle", False)
            self._rx = AosReceiver(
                AosConfig(
                    frame_length=ch.frame_length,
                    insert_zone_len=getattr(ch, "insert_zone_len", 0),
                    ocf=ocf,
                    fecf=ch.fecf,
                    count_cycle=count_cycle,
                ),
                check_scid=False,
            )
            self._modulo = 1 << (28 if count_cycle else 24)
            self._idle_vcid = 63  # AOS's idle VC, whatever the profile's idle_vcid
        self._seq: dict[int | str, int] = {}
        self._own = profile.mission.linkstack_apids
        self._reassembler = Reassembler()
        self._unit = -1
        self._idle_seen = 0
        self._latest_s = float("-inf")
        # frame records waiting for their CADU, CADUs decoded with no record yet
        self._pairing: WindowPairing[_Record, _Cadu] = WindowPairing(
            window_s, _may_be_its_frame, _same_source
        )

    def _cadu_receiver(self) -> CaduReceiver:
        if self._cadu is None:
            from linkstack.ccsds.coding.chains import (  # noqa: PLC0415 - numpy/numba, when used
                CaduReceiver,
            )

            ch = self.profile.downlink
            coding = ch.cadu_coding()
            self._cadu = CaduReceiver(ch.frame_length, coding)
        return self._cadu

    # -- units ---------------------------------------------------------------------------
    def feed(self, unit: CapturedUnit) -> None:
        self.counts.units[unit.layer] += 1
        if unit.t_s > self._latest_s:
            self._latest_s = unit.t_s
            self._expire(unit.t_s - self.window_s)
        if unit.layer == f"{self.kind}_cadu":
            self._unit += 1
            self._cadu_unit(unit, self._unit)
        elif unit.layer == f"{self.kind}_frame":
            self._unit += 1
            self._frame_record(unit, self._unit)
        else:
            self.counts.units["not_the_profiles_downlink"] += 1

    def finish(self) -> None:
        """The end of the recording: the frame records still waiting for a CADU go with
        one near them, else are decoded on their own. Units fed after it pair afresh."""
        self._expire(float("inf"))
        self._pairing.forget_units()

    def _cadu_unit(self, unit: CapturedUnit, number: int) -> None:
        rx = self._cadu_receiver()
        got = rx.receive_cadu(unit.data)
        self.counts.cadu = Counter(rx.all_stats())
        frame = None if got is None else got.frame
        if got is None:
            reason = "no ASM" if rx.stats["no_asm"] else "Reed-Solomon uncorrectable"
            self._refused(f"CADU {number}: {reason}")
        else:
            self._frame(got.frame, number)
        cadu = _Cadu(unit.t_s, unit.src, frame)
        if frame is not None:  # its frame's record, come first (a refused CADU waits)
            record = self._pairing.record_of(cadu)
            if record is not None:
                self._check(record.unit, frame)
                return
        self._pairing.wait_unit(cadu)

    def _frame_record(self, unit: CapturedUnit, number: int) -> None:
        record = _Record(number, unit)
        cadu = self._pairing.unit_of(record)  # the CADU whose frame it is, come first
        if cadu is not None:
            self._check(unit, cadu.frame)
            return
        self._pairing.wait_record(record)

    def _expire(self, before_s: float) -> None:
        """Frame records that waited past the window: with the earliest CADU of their
        source near them left without one, else decoded on their own; CADUs no record
        can reach any more are forgotten (a record waits a window, so a CADU two)."""
        self._pairing.expire(before_s, self._with_cadu, self._alone)

    def _with_cadu(self, record: _Record, cadu: _Cadu) -> None:
        self._check(record.unit, cadu.frame)

    def _alone(self, record: _Record) -> None:
        self.counts.frame_records["alone"] += 1
        self._frame(record.unit.data, record.number)

    def _check(self, record: CapturedUnit, frame: bytes | None) -> None:
        """A frame record beside its CADU: checked against the CADU's frame, not decoded."""
        if frame is None:
            self.counts.frame_records["cadu_refused"] += 1
        elif frame == record.data:
            self.counts.frame_records["equal"] += 1
        else:
            self.counts.frame_records["different"] += 1

    def _refused(self, text: str) -> None:
        if len(self.refusals) < 20:
            self.refusals.append(text)

    def _frame(self, raw: bytes, number: int) -> None:
        """A frame through the receiver; ``number``: the unit it came in, from 0."""
        before = Counter(self._rx.all_stats())
        got = self._rx.receive(raw)
        after = self._rx.all_stats()
        self.counts.frames = Counter(after)
        self.counts.idle_packets = after.get("idle_packets", 0) + self._idle_seen
        if got is None:
            why = ", ".join(k for k in after if after[k] > before.get(k, 0)) or "refused"
            self._refused(f"frame {number}: {why}")
            return
        w0 = raw[0] << 8 | raw[1]
        self.counts.scids[(w0 >> 4) & 0x3FF if self.kind == "tm" else (w0 >> 6) & 0xFF] += 1
        self._vc(got, raw)
        if got.ocf is not None and is_clcw(got.ocf):
            self.counts.clcws += 1
        for packet in got.packets:
            self._packet(packet, got, number)

    def _vc(self, got: ReceivedFrame, raw: bytes) -> None:
        vc = self.counts.vcs.setdefault(got.vcid, ChannelCount())
        vc.frames += 1
        if not got.packets and got.vcid == self._idle_vcid:
            vc.idle += 1
        count = raw[2] if self.kind == "tm" else got.vc_count
        if vc.last_count is not None:
            missing = (count - vc.last_count - 1) % self._modulo
            if missing:
                vc.gaps += 1
                vc.lost += missing
        vc.last_count = count

    # -- packets ---------------------------------------------------------------------------
    def _packet(self, raw: bytes, frame: ReceivedFrame, number: int) -> None:
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError as exc:
            self.counts.packets_refused += 1
            self._refused(f"packet after unit {number}: {exc}")
            return
        if packet.apid == IDLE_APID:  # those the receiver did not take out itself
            self._idle_seen += 1
            self.counts.idle_packets += 1
            return
        apid = self.counts.apids.setdefault(packet.apid, ApidCount())
        apid.packets += 1
        apid.octets += len(raw)
        key: int | str = SHARED if self.shared else packet.apid
        expected = self._seq.get(key)
        self._seq[key] = (packet.seq_count + 1) % SEQ_COUNT_MODULO
        if expected is not None and packet.seq_count != expected:
            missing = (packet.seq_count - expected) % SEQ_COUNT_MODULO
            apid.gaps += 1
            apid.lost += missing
            self.counts.counter_gaps += 1
            self.counts.counter_lost += missing
        if self.keep_packets:
            self.packets.append(
                MissionPacket(
                    len(self.packets),
                    number,
                    frame.vcid,
                    frame.vc_count,
                    packet.apid,
                    packet.seq_count,
                    int(packet.seq_flags),
                    bytes(raw),
                )
            )
        if packet.apid in self._own:
            self._message(packet)

    def _message(self, packet: SpacePacket) -> None:
        """A packet on one of linkstack's APIDs (the profile says so): its message."""
        from linkstack.runtime.routing import RELAY_APID, RelayHeader  # noqa: PLC0415
        from payloads.messages import decode  # noqa: PLC0415

        payload = self._reassembler.push(packet)
        if payload is None:
            return
        try:
            if packet.apid == RELAY_APID:
                _, payload = RelayHeader.unwrap(payload)
            msg = decode(payload)
        except DecodeError as exc:
            self.counts.messages["refused"] += 1
            self._refused(f"linkstack message on APID {packet.apid:#05x}: {exc}")
            return
        self.counts.messages[type(msg).__name__] += 1
