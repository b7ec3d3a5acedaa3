"""The replay's core, sans-I/O: a capture's units in, what the receivers decode out.

:class:`Replayer` takes captured units (:class:`~linkstack.capture.reader.CapturedUnit`)
one at a time, in capture order, and feeds each into the receive chain that the node
at the far end runs:

- **the satellites** (side ``sat``): CLTUs -> :class:`~linkstack.ccsds.coding.chains.CltuReceiver`
  (BCH, derandomizer) -> TC frame validation -> FARM-1 -> TC reassembly -> Space
  Packets -> messages (queries and acks); laser-link AOS CADUs ->
  :class:`~linkstack.ccsds.coding.chains.CaduReceiver` (Reed-Solomon) ->
  :class:`~linkstack.ccsds.aos.AosReceiver` -> packets -> messages, relay envelopes
  (APID 0x102) unwrapped;
- **the ground** (side ``ground``): TM CADUs -> Reed-Solomon ->
  :class:`~linkstack.ccsds.tm.TmReceiver` -> the CLCW in each frame's OCF, and the packets ->
  answers, chunks, errors.

By default both, each event labelled with the side that receives. One chain per
link as the emulator has them: the uplink per satellite (one FARM-1 whatever
station sends), the downlink per satellite, a laser link per (sender, receiver).
A capture shows units *as sent* (a unit the channel lost is in it), so FARM-1
sees every frame in the order FOP-1 sent it: a retransmission shows as a repeat
it discards (E4), and the packets come out once each, in order, as on board. A
FARM-1 starts at the N(S) of the first frame it sees, so that a capture may begin
in the middle of a session.

**Which layer is decoded.** A linkstack capture can hold a unit and the frame
inside it and every Space Packet (one port a layer, :mod:`linkstack.capture.pcap`).
For each kind of link (uplink, downlink, laser) the replay decodes the lowest
layer the capture has (CLTU, else TC frame; CADU, else frame; else the Space
Packets themselves), and checks the layers above against what it decoded: each
frame unit must equal the frame decoded from its unit, and the ``space_packet``
units (every packet as it was handed to the framing layer) must equal the packets
decoded from the units, in order, link by link.

**A frame unit and its unit.** linkstack writes a frame right after its CLTU or CADU,
at the same instant; other tools write it when they decoded the unit, tens of
milliseconds later, or before its unit went out. A frame unit goes with the unit of
its link that decodes to the very same frame, within
:data:`~linkstack.capture.reader.PAIR_WINDOW_S` either way (the earliest, when a
frame was sent twice), whatever lies between them; it is checked, never decoded
again. One that equals no unit's frame goes with the unit beside it at the same
instant, else (once the window has passed, and if the link's units have frame units
at all) with the earliest unit of its link left without one, and is reported as
different (or as following a refused unit). A frame unit that goes with no unit is
decoded on its own, as in a capture of frames alone.

**USLP.** A run with ``frames.protocol = "uslp"`` has a USLP frame inside each CLTU and
CADU, and its frame units on the ``uslp_frame`` port whatever the link (their ends
say which). A frame's version number sends it to the USLP chain of its link
(:mod:`linkstack.capture.replay_uslp`): up, COP-1's FDU out of the frame, then the
same FARM-1 and reassembly as a TC frame's; down and across, the fixed-length frames'
packets and the CLCW in the OCF.

**Foreign units.** The managed parameters a unit does not carry are found from the
first units of a link (the Reed-Solomon code and depth, randomization, the frame
length, from the frame's FECF; the TC randomizer: :mod:`linkstack.capture.replay_coding`;
AOS frame count cycle use), as the Wireshark dissector does. A unit a receiver
refuses is reported with the layer, the field and the rule broken, never a traceback.

**SDLS.** Given an :class:`~linkstack.capture.sdls_view.SdlsView` (the links'
security associations, and the keys if any), each protected frame (TC, TM, AOS or USLP)
is opened before its receiver sees it (:mod:`linkstack.capture.sdls_view`): the MAC verified and the
data decrypted with the key; read as it stands, without one, where the SA does not
encrypt. A frame whose MAC does not verify, whose SPI is unknown, or whose anti-replay
counter is not ahead of the last of its link is refused, as a receiver refuses it; an
encrypted frame without the key is counted (``sdls_sealed``) and goes no further but
for its OCF (the CLCW, outside SDLS's reach).

**The modules.** This one holds the :class:`Replayer`: which link and chain a unit
goes to, the pairing of frame units with their units (what pairs; the waiting and the
window's rule are :mod:`linkstack.capture.window_pairing`'s, one per link), SDLS, the
end-of-capture checks and the counters. The links and their receiving ends are
:mod:`linkstack.capture.replay_link`; the chains, :mod:`linkstack.capture.replay_uplink`
(CLTU, TC and USLP frames, FARM-1) and :mod:`linkstack.capture.replay_cadu` (CADU, TM,
AOS and USLP frames, the CLCW); each reports through the Replayer's
:class:`~linkstack.capture.replay_sink.ReplaySink`, which takes their packets up to
messages.

Out come :class:`~linkstack.capture.replay_sink.ReplayEvent` (what each unit did),
:class:`~linkstack.capture.replay_sink.DecodedPacket`,
:class:`~linkstack.capture.replay_sink.DecodedMessage` and the receivers' counters.
No file, no terminal, no clock here: ``linkstack replay``
(:mod:`linkstack.capture.replay_cli`) reads the file, paces the units and prints.
The codec chains that need numpy and numba
(:mod:`linkstack.ccsds.coding.chains`) and the relay envelope's module are imported
when the first :class:`Replayer` is made, so that registering the subcommand costs
the command line little (the light codecs only, about 0.1 s).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from linkstack.capture.network import LAYERS
from linkstack.capture.reader import PAIR_WINDOW_S, CapturedUnit
from linkstack.capture.replay_cadu import CaduChain
from linkstack.capture.replay_coding import heavy
from linkstack.capture.replay_link import (
    DOWNLINK,
    FAMILIES,
    FAMILY_OF_LAYER,
    FRAME_KIND,
    RECEIVER,
    SIDES,
    UPLINK,
    USLP_FRAME,
    Carried,
    ReplayLink,
    decode_sources,
    family_of,
)
from linkstack.capture.replay_sink import DecodedMessage, DecodedPacket, ReplayEvent, ReplaySink
from linkstack.capture.replay_uplink import UplinkChain
from linkstack.capture.replay_uslp import is_uslp
from linkstack.errors import ConfigError, SdlsError

if TYPE_CHECKING:  # imported when first used
    from linkstack.capture.sdls_view import FrameGate, SdlsView

# the chain a frame unit goes to, by its layer (else "aos": an AOS frame)
_CHAIN_OF_LAYER = {"tc_frame": "tc", "tm_frame": "tm", USLP_FRAME: "uslp"}


class Replayer:
    """The receivers of a replay, sans-I/O: :meth:`feed` one unit, get events.

    ``layers``: the layers the capture holds (to choose what to decode, see
    :func:`~linkstack.capture.replay_link.decode_sources`); ``side``: ``ground``,
    ``sat`` or ``both``. What was decoded accumulates in :attr:`packets` and
    :attr:`messages`; :attr:`refused` counts refusals by "layer: field", :attr:`drops`
    the receivers' losses by reason; :meth:`finish` runs the end-of-capture checks;
    :meth:`counters` gives every receiver's counters, summed per kind of link."""

    def __init__(
        self,
        layers: Iterable[str] = LAYERS,
        *,
        side: str = "both",
        verbose: bool = False,
        window_s: float = PAIR_WINDOW_S,
        sdls: SdlsView | None = None,
    ) -> None:
        if side not in SIDES:
            raise ConfigError("replay", "side", f"must be one of {SIDES}, got {side!r}")
        h = heavy()
        self._sink = ReplaySink(verbose=verbose, relay_apid=h.RELAY_APID, relay=h.RelayHeader)
        self._uplink = UplinkChain(self._sink)
        self._cadus = CaduChain(self._sink)
        self.side = side
        layers = set(layers)
        self.sources = decode_sources(layers)
        self.window_s = window_s
        # the kinds of link whose units come with frame units in the capture
        self._recorded = {
            fam
            for fam, (unit_layer, frame_layer) in FAMILIES.items()
            if unit_layer in layers and layers & {frame_layer, USLP_FRAME}
        }
        self.links: dict[tuple[str, tuple[str, ...]], ReplayLink] = {}
        self.units_by_layer: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()
        # the last unit decoded (CLTU or CADU), while it waits for its frame unit: a
        # linkstack capture writes that right after it
        self._beside: tuple[ReplayLink, Carried] | None = None
        self._waiting: dict[ReplayLink, None] = {}  # links with units or frame units waiting
        self._latest_s = float("-inf")
        self._gate: FrameGate | None = None
        if sdls is not None:
            from linkstack.capture.sdls_view import FrameGate  # noqa: PLC0415

            self._gate = FrameGate(sdls)

    # -- what the chains gathered (the sink's) -----------------------------------------
    @property
    def verbose(self) -> bool:
        return self._sink.verbose

    @property
    def stats(self) -> Counter[str]:
        return self._sink.stats

    @property
    def refused(self) -> Counter[str]:
        return self._sink.refused

    @property
    def drops(self) -> Counter[str]:
        return self._sink.drops

    @property
    def packets(self) -> list[DecodedPacket]:
        return self._sink.packets

    @property
    def messages(self) -> list[DecodedMessage]:
        return self._sink.messages

    # -- the entry point ---------------------------------------------------------------
    def feed(self, unit: CapturedUnit) -> list[ReplayEvent]:
        """One captured unit; what the receivers made of it. Never raises on the data:
        what the decoders refuse is reported, and anything else that goes wrong (a bug)
        is reported as an internal error and counted, and the replay goes on."""
        try:
            return self._feed(unit)
        except Exception as exc:  # a bug, not the data's fault: say it, keep replaying
            self.stats["internal_errors"] += 1
            self.refused["replay: internal error"] += 1
            text = f"internal error on this unit ({type(exc).__name__}: {exc}); please report it"
            family = FAMILY_OF_LAYER.get(unit.layer, DOWNLINK)
            return [ReplayEvent(unit.t_s, family, unit.src, unit.dst, "note", text)]

    def _feed(self, unit: CapturedUnit) -> list[ReplayEvent]:
        self.stats["units"] += 1
        self.units_by_layer[unit.layer] += 1
        family = family_of(unit)
        if self.side != "both" and RECEIVER[family] != self.side:
            self.stats["units_other_side"] += 1
            return []
        events: list[ReplayEvent] = []
        if unit.t_s > self._latest_s:
            self._latest_s = unit.t_s
            self._expire(unit.t_s - self.window_s, events)
        link = self._link(family, unit)
        link.last = (unit.t_s, unit.src, unit.dst)
        source = self.sources[family]
        layer = unit.layer
        beside, self._beside = self._beside, None
        if layer == "space_packet":
            if source == "space_packet":
                self.stats["units_decoded"] += 1
                self._sink.packet(link, unit, unit.data, events)
            else:
                link.recorded.append(unit.data)
        elif layer != source and family in self._recorded and source == FAMILIES[family][0]:
            self._frame_unit(link, unit, beside, events)
        elif layer in ("cltu", "tm_cadu", "aos_cadu"):
            if layer == "cltu":
                frame = self._uplink.cltu(link, unit, events)
            else:
                frame = self._cadus.cadu(link, unit, events)
            if frame is not None:
                chain = "uslp" if is_uslp(frame) else FRAME_KIND[link.family]
                self._frame(link, unit, frame, chain, events)
            self._carried(link, unit, frame, events)
        else:
            self._frame(link, unit, unit.data, _CHAIN_OF_LAYER.get(layer, "aos"), events, True)
        return events

    # -- a frame through its chain -------------------------------------------------------
    def _frame(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        chain: str,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A frame through the ``chain`` ("tc", "tm", "aos" or "uslp") of its link,
        opened first when SDLS protects it (a USLP frame with the SAs of its kind of
        link). ``counted``: the frame is the unit itself (a frame unit)."""
        kind = FRAME_KIND[link.family] if chain == "uslp" else chain
        plain = self._open(link, unit, kind, raw, events, counted)
        if plain is None:
            return
        if chain == "tc":
            self._uplink.tc(link, unit, plain, events, counted)
        elif chain == "tm":
            self._cadus.tm(link, unit, plain, events, counted)
        elif chain == "aos":
            self._cadus.aos(link, unit, plain, events, counted)
        elif link.family == UPLINK:
            self._uplink.uslp(link, unit, plain, events, counted)
        else:
            self._cadus.uslp(link, unit, plain, events, counted)

    def _open(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        kind: str,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool,
    ) -> bytes | None:
        """The frame its receiver reads: ``raw`` itself on a clear link or virtual
        channel, the plain frame of a protected one, None when it goes no further
        (refused, or encrypted and no key: its OCF's CLCW is read all the same)."""
        opened = self._gate.admit(kind, link.key, raw) if self._gate is not None else None
        if opened is None:
            return raw
        sink = self._sink
        if sink.verbose:
            sink.event(events, unit, link, "note", f"SDLS {opened.fields_text()}")
        if opened.refusal:
            exc = SdlsError("sdls", opened.refusal, opened.detail)
            sink.refuse(events, unit, link, exc, counted)
            return None
        if opened.plain is not None:
            return opened.plain
        self.stats["sdls_sealed"] += 1
        if counted:
            self.stats["units_decoded"] += 1
        if sink.verbose or kind == "tc":
            what = f"{kind.upper()} frame VC {opened.vcid} ({len(raw)} octets"
            text = f"{what}, {opened.fields_text()}): encrypted, not read (no key for it)"
            sink.event(events, unit, link, "frame", text)
        if opened.ocf is not None:
            self._cadus.ocf(link, unit, opened.ocf, events)
        return None

    # -- frame units and the units they record -------------------------------------------
    def _carried(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        frame: bytes | None,
        events: list[ReplayEvent],
    ) -> None:
        """A CLTU or CADU was decoded to ``frame`` (None: refused): the frame unit
        waiting for it, or it waits for its frame unit."""
        if link.family not in self._recorded:
            return
        carried = Carried(unit.t_s, frame)
        if frame is not None:
            record = link.pairing.record_of(carried)
            if record is not None:
                self._check_frame(link, record, frame, events)
                return
        link.pairing.wait_unit(carried)
        self._waiting[link] = None
        self._beside = (link, carried)

    def _frame_unit(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        beside: tuple[ReplayLink, Carried] | None,
        events: list[ReplayEvent],
    ) -> None:
        """A frame unit where its link's units are decoded: checked against the unit
        whose frame it is, else the unit beside it, else it waits for its unit."""
        carried = link.pairing.unit_of(unit)
        if carried is not None:
            self._check_frame(link, unit, carried.frame, events)
            return
        if beside is not None and beside[0] is link and beside[1].t_s == unit.t_s:
            link.pairing.take_unit(beside[1])  # linkstack's: the frame of the unit before
            self._check_frame(link, unit, beside[1].frame, events)
            return
        link.pairing.wait_record(unit)
        self._waiting[link] = None

    def _expire(self, before_s: float, events: list[ReplayEvent]) -> None:
        """Units and frame units that waited past the window (all of them at the end):
        a frame unit goes with the earliest unit of its link left without one (on a link
        whose units have frame units), and is decoded on its own when there is none; a
        unit needs no frame unit."""
        for link in list(self._waiting):
            self._expire_link(link, before_s, events)
            if not link.pairing:
                del self._waiting[link]

    def _expire_link(self, link: ReplayLink, before_s: float, events: list[ReplayEvent]) -> None:
        def check(record: CapturedUnit, carried: Carried) -> None:
            self._check_frame(link, record, carried.frame, events)

        def decode(record: CapturedUnit) -> None:
            chain = _CHAIN_OF_LAYER.get(record.layer, "aos")
            self._frame(link, record, record.data, chain, events, True)

        # by time alone only where this link's units have been seen with frame units
        link.pairing.expire(before_s, check, decode, by_time=link.paired > 0)

    def _link(self, family: str, unit: CapturedUnit) -> ReplayLink:
        if family == UPLINK:
            key: tuple[str, ...] = (unit.dst,)
        elif family == DOWNLINK:
            key = (unit.src,)
        else:
            key = (unit.src, unit.dst)
        link = self.links.get((family, key))
        if link is None:
            link = self.links[(family, key)] = ReplayLink(family, key, self.window_s)
        return link

    # -- the checks against the capture's upper layers -----------------------------------
    def _check_frame(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        expected: bytes | None,
        events: list[ReplayEvent],
    ) -> None:
        self.stats["units_checked"] += 1
        link.paired += 1
        if expected is None:
            self.checks[f"{unit.layer}:unit_refused"] += 1
        elif expected == unit.data:
            self.checks[f"{unit.layer}:equal"] += 1
        else:
            self.checks[f"{unit.layer}:different"] += 1
            self._sink.event(
                events,
                unit,
                link,
                "check",
                f"check: this {unit.layer} differs from the frame decoded from its unit",
            )

    def finish(self) -> list[ReplayEvent]:
        """The end of the capture: the frame units still waiting, payloads left
        incomplete, and the space_packet check."""
        events: list[ReplayEvent] = []
        self._expire(float("inf"), events)
        for (family, _), link in self.links.items():
            t, src, dst = link.last
            for apid in sorted(link.apids):
                if link.spp.in_progress(apid):
                    self.drops["spp: incomplete at the end"] += 1
                    events.append(
                        ReplayEvent(
                            t,
                            family,
                            src,
                            dst,
                            "drop",
                            f"a payload on APID {apid:#05x} is incomplete at the end of the "
                            "capture",
                        )
                    )
            if not link.recorded:
                continue
            rec, dec = link.recorded, link.decoded
            if self._sealed(link):  # packets in frames that could not be decrypted
                self.checks["space_packet:sealed"] += len(rec)
                continue
            self.checks["space_packet:recorded"] += len(rec)
            n = min(len(rec), len(dec))
            first_bad = next((i for i in range(n) if rec[i] != dec[i]), None)
            if first_bad is None and len(dec) <= len(rec):
                self.checks["space_packet:equal"] += n
                if len(rec) > n:
                    self.checks["space_packet:not_sent"] += len(rec) - n
                continue
            self.checks["space_packet:different_links"] += 1
            where = first_bad if first_bad is not None else n
            events.append(
                ReplayEvent(
                    t,
                    family,
                    src,
                    dst,
                    "check",
                    f"check: the packets decoded on this link differ from the capture's "
                    f"space_packet units from packet {where + 1} on ({len(dec)} decoded, "
                    f"{len(rec)} recorded)",
                )
            )
        return events

    # -- figures ------------------------------------------------------------------------
    def counters(self) -> dict[str, dict[str, Counter[str]]]:
        """Every receiver's counters, summed per kind of link and stage."""
        out: dict[str, dict[str, Counter[str]]] = {}
        for (family, _), link in self.links.items():
            stages = out.setdefault(family, {})

            def add(
                stage: str, counter: Mapping[str, int], stages: dict[str, Counter[str]] = stages
            ) -> None:
                stages.setdefault(stage, Counter()).update(counter)

            if link.cltu is not None:
                add("cltu", link.cltu.stats)
            if link.cadu is not None:
                add("cadu", link.cadu.stats)
            if link.tc is not None:
                add("tc", link.tc.all_stats())
            for farm in link.farms.values():
                add("farm-1", farm.stats)
            if link.tm is not None:
                add("tm", link.tm.all_stats())
            if link.aos is not None:
                add("aos", link.aos.all_stats())
            for uslp in (link.uslp_up, link.uslp):
                if uslp is not None:
                    add("uslp", uslp.all_stats())
            sdls = self._gate.stats.get((FRAME_KIND[family], *link.key)) if self._gate else None
            if sdls:
                add("sdls", sdls)
            if link.decoded:
                add("spp", link.spp.stats)
        return out

    def _sealed(self, link: ReplayLink) -> int:
        """How many of ``link``'s frames were encrypted and not decrypted (no key)."""
        if self._gate is None:
            return 0
        return self._gate.stats.get((FRAME_KIND[link.family], *link.key), Counter())["sealed"]

    @property
    def problems(self) -> int:
        """Refusals and failed checks (0: every unit decoded, every check passed)."""
        bad_checks = sum(n for k, n in self.checks.items() if k.endswith((":different", "_links")))
        return sum(self.refused.values()) + bad_checks
