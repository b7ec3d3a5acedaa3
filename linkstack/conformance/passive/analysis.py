"""The stateful passes over a capture: each unit's observations in the light of the
units before it.

The :class:`Analyzer` takes the units in capture order (``feed`` each, then ``finish``)
and hands every observation to ``emit`` as soon as it is made. :mod:`.decoding` reads
what each unit shows on its own; this module follows what spans units: carriers paired
with their frames, packets through the zones of a virtual channel, TC segments joined
per MAP, and COP-1 in both directions. It never raises on what a unit holds.

Pairs. linkstack's captures hold every frame twice: inside its carrier (CLTU or
CADU) and alone on the frame port, written one after the other with the same time
stamp; other tools write the frame when they decoded it, tens of milliseconds later,
with other units between. A carrier and a frame record of the same link (same ends,
the carrier's frame layer) that holds the very frame the carrier decodes to, within
:data:`~linkstack.capture.reader.PAIR_WINDOW_S` of it (before or after), are one
frame: its rules run once, at the carrier's time, blamed on the frame unit. Of two
candidates the earlier is taken (a retransmitted TC frame is the same frame again).
Units wait in arrival order until they are paired or the window has passed them,
so the observations come out in the capture's order whatever the lag. A capture
with only carriers (or only frames) is checked from what it has.

Streams. A Space Packet's sequence count and a frame's counters belong to a source;
the capture shows nodes. Every node the profile puts on the ground is one ground
segment (one mission control behind many stations), so a stream is keyed by (the
sending side, the receiving side, the identifiers): the ground's packets to CS-01 are
one stream whichever station radiated them, CS-01's TM frames are one master channel
whichever station received them, and CS-01's AOS frames to CS-02 and to CS-12 are two.

SDLS. Given an :class:`~linkstack.capture.sdls_view.SdlsView`, a frame of a kind and
virtual channel under SDLS (a USLP frame: with the SAs of its kind of link) is opened
after its header was read (its SPI, counter, pad and MAC verdict are an
:class:`SdlsObs`), and what follows (its zone, its TC data field, its control command)
is read from the plain frame; the OCF, outside SDLS, from
the frame as sent. A data field encrypted without a key (or refused) is not read:
that frame is a :class:`HiddenObs`, and the rules that read data fields cannot judge.

COP-1 needs both directions: a CLCW in a TM (or AOS) frame of spacecraft S reports
on TC virtual channel (S, the CLCW's VCID), and is compared with the Type-AD frames
of that channel sent before it. Captures made at the sender (linkstack's are) time
each unit when it left; ``[cop1] ack_latency_s`` is how long a CLCW may take to reach
the ground and be acted on.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linkstack.capture.reader import PAIR_WINDOW_S
from linkstack.ccsds.cop1.commands import SetVr, Unlock, unpack_control_command
from linkstack.conformance.passive import decoding
from linkstack.conformance.passive.decoding import Carrier, Contents
from linkstack.conformance.passive.observations import (
    CltuObs,
    CopFacts,
    HiddenObs,
    Key,
    NrFacts,
    Observation,
    SdlsObs,
    TcFrameObs,
    Unit,
    UnitObs,
    UslpFrameObs,
    ZoneObs,
)
from linkstack.errors import DecodeError
from linkstack.runtime.mission_profile import Profile

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import SdlsView

FHP_NO_HEADER = 0x7FF
FHP_IDLE_ONLY = 0x7FE
CARRIER_FRAME = {"cltu": "tc_frame", "tm_cadu": "tm_frame", "aos_cadu": "aos_frame"}
USLP_FRAME = "uslp_frame"  # USLP frames of every kind of link, on one port
FRAME_LAYERS = frozenset((*CARRIER_FRAME.values(), USLP_FRAME))
# the carrier of a USLP frame unit, by the sides of its ends
USLP_CARRIER = {("ground", "space"): "cltu", ("space", "ground"): "tm_cadu"}
USLP_CARRIER[("space", "space")] = "aos_cadu"
MAX_WAITING = 1 << 16  # units held for a partner at most, whatever the window


# -- following packets through zones ---------------------------------------------------------------


class ZoneWalker:
    """Follows the packets of one virtual channel through its zones, in order.

    ``push`` returns the zone's facts and the packets it completes (each with the
    units that carried it and whether it ends at the zone's end). When the walk and
    the FHP disagree, the walk is trusted if the header where it points is a version
    000 header, else the FHP; when the counters say zones were lost, the walker
    drops what was pending and waits for the next FHP.
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
        if not continuous:
            # frames were lost: as a receiver does, drop the packet that was pending and
            # start again at the next header the pointer gives (issue 20: a walk that
            # happened to agree kept a packet with a hole in it)
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


def _behind(sent: Contents, plain: Contents | None) -> Contents:
    """What a frame under SDLS carries: its zone from the plain frame (none when that
    could not be read), its OCF from the frame as sent (outside SDLS)."""
    if plain is None:
        return Contents(sent.clcw)
    return Contents(sent.clcw, plain.zone, plain.zone_data)


def _merge_units(a: tuple[Unit, ...], b: tuple[Unit, ...]) -> tuple[Unit, ...]:
    return a + tuple(u for u in b if u not in a)


# -- COP-1 bookkeeping -----------------------------------------------------------------------------


class _CopVc:
    """One TC virtual channel as the capture shows it: V(S), the frames sent and
    which a CLCW acknowledged, the last N(R), a Lockout being reported."""

    __slots__ = ("acked", "lockout", "nr", "pending_vr", "sent", "vs")

    def __init__(self) -> None:
        self.vs: int | None = None
        self.sent: dict[int, bytes | None] = {}  # None: its data field was not read (SDLS)
        self.acked: dict[int, tuple[float, Unit]] = {}
        self.nr: int | None = None
        self.pending_vr: int | None = None
        self.lockout: tuple[float, Unit] | None = None

    def reset(self, vs: int | None) -> None:
        self.vs = vs
        self.sent.clear()
        self.acked.clear()

    def frame(
        self, obs: TcFrameObs | UslpFrameObs, raw: bytes | None, t: float, latency: float
    ) -> CopFacts:
        """A TC frame sent on this channel (``raw``: the frame, as its standard has it;
        None when its data field could not be read)."""
        kind = obs.frame_type
        facts = CopFacts(kind.lower() if kind else "other")
        if self.lockout is not None and t >= self.lockout[0] + latency:
            facts.lockout = self.lockout
        if kind == "BC" and raw is None:  # a control command not read: follow afresh
            self.pending_vr = self.nr = None
            self.reset(None)
            return facts
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
            first = self.sent[ns]
            facts.differs = first is not None and raw is not None and first != raw
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


class _Slot:
    """One place in the arrival order: a carrier, a frame unit or a packet unit, and
    (once paired) the partner that joined it."""

    __slots__ = ("emitted", "item", "key", "partner", "t_s")

    def __init__(self, item: Carrier | Unit, key: tuple[str, str, str] | None) -> None:
        self.item = item
        self.key = key  # (carrier layer, src, dst) while it waits for a partner; else None
        self.partner: Carrier | Unit | None = None
        self.emitted = False  # emitted before its turn, after the carrier it stands beside
        self.t_s = item.unit.t_s if isinstance(item, Carrier) else item.t_s

    @property
    def is_carrier(self) -> bool:
        return isinstance(self.item, Carrier)


def _frame_of(carrier: Carrier, frame: Unit) -> bool:
    """Whether ``frame`` (a frame unit) holds the frame ``carrier`` decodes to."""
    if carrier.unit.layer == "cltu":
        f = frame.data
        return any(c.startswith(f) and len(c) - len(f) < 7 for c in carrier.candidates)
    return frame.data in carrier.candidates


@dataclass(slots=True)
class _MapRun:
    """One MAP's segmented data field being joined (``run``, from the units in
    ``units``); ``seen``: a frame of the MAP came before."""

    run: bytearray | None = None
    units: tuple[Unit, ...] = ()
    seen: bool = False


_TC_FLAG_NAMES = {0: "continuation (00)", 1: "first (01)", 2: "last (10)", 3: "unsegmented (11)"}
_USLP_RULE_NAMES = {  # the construction rules of a MAP's segments, by TC's sequence flags
    0: "continuing segment (rule 101)",
    1: "start of a segment (rule 100)",
    2: "last segment (rule 110)",
    3: "no segmentation (rule 111)",
}


def _join_segments(
    state: _MapRun,
    flags: int,
    obs: TcFrameObs | UslpFrameObs,
    units: tuple[Unit, ...],
    names: dict[int, str],
) -> list[tuple[bytes, tuple[Unit, ...]]]:
    """One MAP's frame (its sequence ``flags``, TC's: 1 first, 0 continuation, 2 last,
    3 unsegmented) joined to the segments before it: the complete data fields it ends,
    and in ``obs.seg_fault`` what a flag out of order was (() none, None: the capture
    began inside a segmented packet)."""
    out: list[tuple[bytes, tuple[Unit, ...]]] = []
    first_seen = not state.seen
    state.seen = True
    obs.seg_fault = ()
    if flags in (0, 2) and state.run is None:
        if first_seen:
            obs.seg_fault = None  # the capture began inside a segmented packet
        else:
            obs.seg_fault = (f"{names[1]} or {names[3]}", names[flags])
        return out
    if flags in (1, 3) and state.run is not None:
        obs.seg_fault = (f"{names[0]} or {names[2]}", names[flags])
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


# -- the analyzer ----------------------------------------------------------------------------------


class Analyzer:
    """Units -> observations (see the module docstring). ``emit`` receives each one."""

    def __init__(
        self,
        profile: Profile,
        emit: Callable[[Observation], None],
        window_s: float = PAIR_WINDOW_S,
        sdls: SdlsView | None = None,
    ) -> None:
        self.p = profile
        self.emit = emit
        self.sdls = sdls
        self.window_s = window_s
        self._order: deque[_Slot] = deque()  # every unit not yet emitted, in arrival order
        # unpaired carriers (True) and frame units (False) of each link, oldest first
        self._waiting: dict[tuple[tuple[str, str, str], bool], deque[_Slot]] = {}
        self._latest_s = float("-inf")
        self._walkers: dict[Key, ZoneWalker] = {}
        self._losses: Counter[Key] = Counter()  # frame-count gaps per VC (a packet stream)
        self._vc_next: dict[Key, int] = {}
        self._maps: dict[Key, _MapRun] = {}
        self._cop: dict[tuple[int, int], _CopVc] = {}

    # -- the stream of units, carriers paired with their frames -----------------------------------
    def feed(self, unit: Unit) -> None:
        p = self.p
        self.emit(UnitObs((unit,), p.side(unit.src), p.side(unit.dst)))
        layer = unit.layer
        if layer in CARRIER_FRAME:
            slot = self._pair(_Slot(self._carrier(unit), (layer, unit.src, unit.dst)))
        elif layer == USLP_FRAME:  # its carrier's layer from its ends; none known: alone
            sides = (p.side(unit.src), p.side(unit.dst))
            carrier = USLP_CARRIER.get((sides[0] or "", sides[1] or ""))
            key = (carrier, unit.src, unit.dst) if carrier is not None else None
            slot = self._pair(_Slot(unit, key)) if key is not None else _Slot(unit, None)
        elif layer in FRAME_LAYERS:
            carrier_layer = next(c for c, f in CARRIER_FRAME.items() if f == layer)
            slot = self._pair(_Slot(unit, (carrier_layer, unit.src, unit.dst)))
        else:
            slot = _Slot(unit, None)
        if slot is not None:
            self._order.append(slot)
        self._latest_s = max(self._latest_s, unit.t_s)
        self._drain(self._latest_s - self.window_s)

    def finish(self) -> None:
        self._drain(float("inf"))

    def _pair(self, slot: _Slot) -> _Slot | None:
        """Pair ``slot`` with the earliest unit of its link waiting for it (then the
        waiting slot holds both and None is returned), else make it wait."""
        key = slot.key
        assert key is not None
        partners = self._waiting.get((key, not slot.is_carrier))
        for i, other in enumerate(partners or ()):
            if abs(other.t_s - slot.t_s) > self.window_s:
                continue
            carrier, frame = (other, slot) if other.is_carrier else (slot, other)
            assert isinstance(carrier.item, Carrier) and isinstance(frame.item, Unit)
            if _frame_of(carrier.item, frame.item):
                assert partners is not None
                del partners[i]
                other.partner, other.key = slot.item, None
                return None
        self._waiting.setdefault((key, slot.is_carrier), deque()).append(slot)
        return slot

    def _drain(self, before_s: float) -> None:
        """Emit, in arrival order, every unit that waits for nothing any more: paired,
        alone by nature (a packet), or past the window (``before_s``).

        A carrier that found no frame record of its own (its frame could not be
        decoded, or differs from the record) is followed by the first frame record of
        its link that found no carrier either, within the window: where a capture
        that writes each frame beside its carrier would have put it."""
        order = self._order
        while order:
            head = order[0]
            if head.key is not None and head.t_s >= before_s and len(order) <= MAX_WAITING:
                return
            order.popleft()
            if head.emitted:
                continue
            beside = None
            if head.key is not None:  # unpaired: it waits no more
                self._waiting[(head.key, head.is_carrier)].remove(head)
                if head.is_carrier:
                    beside = self._take_frame(head)
            self._emit_slot(head)
            if beside is not None:
                self._emit_slot(beside)

    def _take_frame(self, carrier: _Slot) -> _Slot | None:
        """The first unpaired frame record of ``carrier``'s link within the window."""
        assert carrier.key is not None
        frames = self._waiting.get((carrier.key, False))
        for i, slot in enumerate(frames or ()):
            if abs(slot.t_s - carrier.t_s) <= self.window_s:
                assert frames is not None
                del frames[i]
                slot.key, slot.emitted = None, True
                return slot
        return None

    def _emit_slot(self, slot: _Slot) -> None:
        item, partner = slot.item, slot.partner
        if isinstance(item, Carrier):
            if isinstance(partner, Unit):
                self._merged(item, partner)
                return
            self.emit(item.obs)
            if item.frame is not None:
                self._frame(CARRIER_FRAME[item.unit.layer], item.frame, (item.unit,), item.unit.t_s)
            return
        if isinstance(partner, Carrier):
            self._merged(partner, item)
        elif item.layer in FRAME_LAYERS:
            self._frame(item.layer, item.data, (item,), item.t_s)
        else:
            self._packet_unit(item)

    def _merged(self, carrier: Carrier, frame: Unit) -> None:
        if isinstance(carrier.obs, CltuObs):
            carrier.obs.frame_len = len(frame.data)
        self.emit(carrier.obs)
        self._frame(frame.layer, frame.data, (frame, carrier.unit), carrier.unit.t_s)

    def _carrier(self, unit: Unit) -> Carrier:
        if unit.layer == "cltu":
            return decoding.cltu_carrier(unit, self.p)
        return decoding.cadu_carrier(unit, self.p)

    def _frame(self, layer: str, data: bytes, units: tuple[Unit, ...], t_s: float) -> None:
        """A frame seen in ``units`` (the frame unit first), sent at ``t_s``."""
        if layer == USLP_FRAME or decoding.is_uslp(data):  # frames.protocol = "uslp"
            self._uslp(data, units, t_s)
        elif layer == "tm_frame":
            self._tm(data, units, t_s)
        elif layer == "aos_frame":
            self._aos(data, units, t_s)
        else:
            self._tc(data, units, t_s)

    def _key(self, unit: Unit) -> tuple[str, str]:
        return self.p.domain(unit.src), self.p.domain(unit.dst)

    # -- SDLS: the security header, and the plain frame behind it ---------------------------------
    def _open(
        self, kind: str, data: bytes, units: tuple[Unit, ...], frames: str = ""
    ) -> tuple[bool, bytes | None]:
        """(whether ``data`` is a frame under SDLS, its plain frame or None when its data
        field cannot be read); emits what its security header and trailer show.
        ``frames``: the frames' own kind where it is not the link's (USLP on any link:
        the USLP rules are hidden by sealed USLP frames alone, not by a sealed TM, AOS
        or TC frame of a capture that has no USLP frame)."""
        view = self.sdls
        if view is None or not view.protects(kind, data):
            return False, data
        opened = view.open(kind, data)
        src, dst = self._key(units[0])
        self.emit(SdlsObs(units, (kind, src, dst), opened, view.links[kind].describe()))
        if opened.sealed:
            self.emit(HiddenObs(f"sealed_{kind}", units))
            if frames:  # the USLP rules read only USLP frames; the others read them all
                self.emit(HiddenObs(f"sealed_{frames}", units))
        if opened.key_missing and opened.sa is not None and opened.sa.mac_len:
            self.emit(HiddenObs("sdls_unverified", units))
        return True, opened.plain

    # -- TM and AOS frames: their CLCWs, their zones in order --------------------------------------
    def _tm(self, data: bytes, units: tuple[Unit, ...], t_s: float) -> None:
        key = self._key(units[0])
        obs, inside = decoding.tm_frame(data, units, key, self.p)
        self.emit(obs)
        protected, plain = self._open("tm", data, units)
        if protected:  # the data field of the plain frame; the OCF, outside SDLS, as sent
            behind = decoding.tm_frame(plain, units, key, self.p)[1] if plain else None
            inside = _behind(inside, behind)
        if inside.clcw is not None:
            self._clcw(inside.clcw, "tm", obs.scid, units, t_s)
        if inside.zone is not None:
            where = f"in TM frames of SCID {obs.scid}, VC {obs.vcid}"
            self._zone(inside, obs.vc_key, obs.vc_count, 256, where)

    def _aos(self, data: bytes, units: tuple[Unit, ...], t_s: float) -> None:
        key = self._key(units[0])
        obs, inside = decoding.aos_frame(data, units, key, self.p)
        protected, plain = self._open("aos", data, units)
        if protected:  # the M_PDU header and zone are the plain frame's; the OCF as sent
            obs.mpdu_spare, behind = None, None
            if plain:
                plain_obs, behind = decoding.aos_frame(plain, units, key, self.p)
                obs.mpdu_spare = plain_obs.mpdu_spare
            inside = _behind(inside, behind)
        self.emit(obs)
        if inside.clcw is not None:
            self._clcw(inside.clcw, "aos", obs.scid, units, t_s)
        if inside.zone is not None:
            modulo = 1 << (28 if obs.count_usage else 24)
            where = f"in AOS frames of SCID {obs.scid}, VC {obs.vcid}"
            self._zone(inside, obs.vc_key, obs.full_count, modulo, where)

    def _zone(self, inside: Contents, key: Key, count: int, modulo: int, where: str) -> None:
        """The zone of a frame of virtual channel ``key`` (its frame count ``count``,
        modulo ``modulo``: a gap means zones were lost), and the packets it completes."""
        zone_obs = inside.zone
        assert zone_obs is not None
        expected = self._vc_next.get(key)
        self._vc_next[key] = (count + 1) % modulo
        walker = self._walkers.get(key)
        if walker is None:
            walker = self._walkers[key] = ZoneWalker()
        units = zone_obs.units
        continuous = expected in (None, count)
        if not continuous:
            self._losses[key] += 1
        packets = walker.push(inside.zone_data, zone_obs.fhp, continuous, units, zone_obs)
        self.emit(zone_obs)
        for raw, carried_by, ends in packets:
            self._packet(raw, carried_by, key, where, ends_zone=ends)

    def _clcw(
        self, ocf: bytes, channel: str, scid: int, units: tuple[Unit, ...], t_s: float
    ) -> None:
        obs = decoding.clcw(ocf, channel, scid, units)
        if decoding.is_farm_report(obs.word):
            cop = self._cop_vc(scid, obs.clcw_vcid)
            obs.nr_facts = cop.clcw(obs.report_value, obs.lockout, t_s, units[0])
        self.emit(obs)

    def _cop_vc(self, scid: int, vcid: int) -> _CopVc:
        cop = self._cop.get((scid, vcid))
        if cop is None:
            cop = self._cop[(scid, vcid)] = _CopVc()
        return cop

    # -- USLP frames: COP-1's FDUs up, zones of packets down and across ------------------------
    def _uslp(self, data: bytes, units: tuple[Unit, ...], t_s: float) -> None:
        key = self._key(units[0])
        obs, inside = decoding.uslp_frame(data, units, key)
        # SDLS: the SAs of the frame's kind of link (an uplink's frame names its
        # destination; a downlink's goes to the ground); its data field header and zone
        # are the plain frame's, its primary header, OCF and FECF as sent
        link_kind = "tc" if obs.dest else "tm" if self.p.side(units[0].dst) == "ground" else "aos"
        protected, plain = self._open(link_kind, data, units, frames="uslp")
        if protected:
            behind = decoding.uslp_frame(plain, units, key) if plain else None
            read = behind[0] if behind is not None else None
            obs.rule, obs.upid, obs.pointer = (
                (read.rule, read.upid, read.pointer) if read else (None, None, None)
            )
            obs.data = read.data if read else b""
            inside = _behind(inside, behind[1] if behind is not None else None)
        valid = obs.version == decoding.USLP_VERSION and obs.frame_type is not None
        fields: list[tuple[bytes, tuple[Unit, ...]]] = []
        if obs.dest and valid:  # COP-1 over USLP, as a TC frame's (scid: the 16-bit one)
            cop = self._cop_vc(obs.scid, obs.vcid)
            obs.cop = cop.frame(obs, plain, t_s, self.p.cop1.ack_latency_s)
            if obs.frame_type != "BC" and obs.cop.kind != "retransmission" and plain:
                fields = self._uslp_fields(obs, units)
        self.emit(obs)
        if inside.clcw is not None:
            self._clcw(inside.clcw, "uslp", obs.scid, units, t_s)
        if inside.zone is not None and obs.vc_count is not None:
            modulo = 1 << (8 * obs.vc_count_len)
            where = f"in USLP frames of SCID {obs.scid}, VC {obs.vcid}, MAP {obs.map_id}"
            self._zone(inside, (*obs.vc_key, obs.map_id), obs.vc_count, modulo, where)
        src, dst = key
        stream = ("uslp", src, dst, obs.scid, obs.vcid, obs.map_id)
        where = f"in USLP frames of SCID {obs.scid}, VC {obs.vcid}, MAP {obs.map_id}"
        for payload, carried_by in fields:
            data_obs, packets = decoding.tc_data_field(payload, carried_by)
            self.emit(data_obs)
            for raw in packets:
                self._packet(raw, carried_by, stream, where)

    def _uslp_fields(
        self, obs: UslpFrameObs, units: tuple[Unit, ...]
    ) -> list[tuple[bytes, tuple[Unit, ...]]]:
        """The complete data fields of an uplink frame's MAP (rules 100 first, 101
        continuing, 110 last segment, 111 whole packets), joined as TC's segments are."""
        rule = obs.rule
        flags = {4: 1, 5: 0, 6: 2, 7: 3}.get(rule if rule is not None else -1)
        if flags is None or obs.upid != 0:
            return []
        src, dst = self._key(units[0])
        state = self._maps.setdefault(("uslp", src, dst, obs.scid, obs.vcid, obs.map_id), _MapRun())
        return _join_segments(state, flags, obs, units, _USLP_RULE_NAMES)

    # -- TC frames: COP-1, segments joined per MAP, the packets of whole data fields ---------------
    def _tc(self, data: bytes, units: tuple[Unit, ...], t_s: float) -> None:
        obs = decoding.tc_frame(data, units, self.p)
        protected, plain = self._open("tc", data, units)
        if protected:  # the segment header precedes the security header: read as sent
            obs.data = decoding.tc_frame(plain, units, self.p).data if plain else b""
            obs.unread = plain is None
        valid = obs.version == 0 and obs.frame_type is not None
        if valid:
            cop = self._cop_vc(obs.scid, obs.vcid)
            obs.cop = cop.frame(obs, plain, t_s, self.p.cop1.ack_latency_s)
        fields = None
        facts = obs.cop
        # data fields of Type-AD and BD frames, once: a retransmission's was judged already
        first_copy = facts is not None and facts.kind != "retransmission"
        if valid and obs.frame_type != "BC" and first_copy and (obs.data or obs.unread):
            fields = self._map_fields(obs, units)
        self.emit(obs)
        if fields and not obs.unread:
            src, dst = self._key(units[0])
            stream = ("tc", src, dst, obs.scid, obs.vcid, obs.map_id)
            where = f"in TC frames of SCID {obs.scid}, VC {obs.vcid}, MAP {obs.map_id}"
            for payload, carried_by in fields:
                data_obs, packets = decoding.tc_data_field(payload, carried_by)
                self.emit(data_obs)
                for raw in packets:
                    self._packet(raw, carried_by, stream, where)

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
        return _join_segments(state, obs.seq_flags, obs, units, _TC_FLAG_NAMES)

    # -- Space Packets: on the packet port, or out of frames ---------------------------------------
    def _packet_unit(self, unit: Unit) -> None:
        src, dst = self._key(unit)
        where = f"on the packet port, {unit.src} -> {unit.dst}"
        self._packet(unit.data, (unit,), ("port", src, dst), where, whole=True)

    def _packet(
        self,
        raw: bytes,
        units: tuple[Unit, ...],
        stream: Key,
        where: str,
        *,
        whole: bool = False,
        ends_zone: bool = False,
    ) -> None:
        obs = decoding.space_packet(raw, units, stream, where, whole=whole, ends_zone=ends_zone)
        obs.losses = self._losses[stream]
        self.emit(obs)
