"""The uplink's receive chain in a replay, sans-I/O: CLTU -> frame -> FARM-1 -> packets.

What a satellite runs on its uplink, one chain per satellite (one FARM-1 whatever
station sends): :meth:`UplinkChain.cltu` takes a CLTU through the BCH decoder and the
derandomizer (:class:`~linkstack.ccsds.coding.chains.CltuReceiver`, the randomizer
found from the link's first CLTUs, :func:`~linkstack.capture.replay_coding.cltu_randomized`)
to its frame; :meth:`UplinkChain.tc` validates a TC frame and :meth:`UplinkChain.uslp`
a USLP frame into COP-1's FDU (:mod:`linkstack.capture.replay_uslp`); either FDU goes
through its virtual channel's FARM-1, and what FARM-1 accepts through TC reassembly to
Space Packets, handed to the :class:`~linkstack.capture.replay_sink.ReplaySink`.

A FARM-1 starts at the N(S) of the first frame it sees, so that a capture may begin in
the middle of a session, and sees every frame in the order FOP-1 sent it: a
retransmission shows as a repeat it discards (E4). The frames come here plain: the
:class:`~linkstack.capture.replay.Replayer` opens SDLS first.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from linkstack.capture.reader import CapturedUnit
from linkstack.capture.replay_coding import cltu_randomized, heavy
from linkstack.capture.replay_link import ReplayLink
from linkstack.capture.replay_sink import ReplayEvent, ReplaySink, grown_counters
from linkstack.capture.replay_uslp import describe_uplink, refusal, uplink_receiver
from linkstack.ccsds.cop1.farm import Farm, FarmEvent, FarmState
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcReassembler, TcReceiver
from linkstack.errors import DecodeError

if TYPE_CHECKING:  # imported when first used (replay_coding.heavy)
    from linkstack.ccsds.coding.chains import CltuReceiver

FARM_WINDOW = 64  # FARM-1's W, as linkstack.runtime.uplink_config.UplinkConfig has it
_FARM_TEXT = {
    FarmEvent.E1: "accepted (E1)",
    FarmEvent.E2: "discarded: no buffer space (E2)",
    FarmEvent.E3: "discarded: ahead of V(R) {vr}, a frame before it is missing (E3; "
    "the CLCW asks for a retransmission)",
    FarmEvent.E4: "discarded: a repeat of a frame already accepted (E4)",
    FarmEvent.E5: "discarded: outside both windows of V(R) {vr}, FARM-1 locks out (E5)",
    FarmEvent.E6: "accepted, bypassing FARM-1's checks (E6)",
    FarmEvent.E7: "Unlock (E7)",
    FarmEvent.E8: "Set V(R) (E8)",
    FarmEvent.E9: "invalid (E9)",
}


class UplinkChain:
    """The satellites' uplink receivers of a replay, reporting to ``sink``; their
    state is each link's (:class:`~linkstack.capture.replay_link.ReplayLink`)."""

    def __init__(self, sink: ReplaySink) -> None:
        self._sink = sink

    # -- CLTU -> frame -------------------------------------------------------------------
    def _cltu_receiver(self, link: ReplayLink, data: bytes) -> CltuReceiver:
        CltuCoding, CltuReceiver = heavy().CltuCoding, heavy().CltuReceiver  # noqa: N806

        if link.cltu is not None and link.cltu_fixed:
            return link.cltu
        randomize = cltu_randomized(data)
        if randomize is not None:
            link.cltu, link.cltu_fixed = CltuReceiver(CltuCoding(randomize=randomize)), True
            return link.cltu
        if link.cltu is None:
            link.cltu = CltuReceiver(CltuCoding())
        return link.cltu

    def cltu(self, link: ReplayLink, unit: CapturedUnit, events: list[ReplayEvent]) -> bytes | None:
        """The frame in the CLTU ``unit``; None when the receiver refuses it (reported)."""
        rx = self._cltu_receiver(link, unit.data)
        frame = rx.receive(unit.data)
        if frame is None:
            c = rx.coding
            try:
                heavy().decode_cltu(unit.data, c.mode, c.randomize, c.max_start_errors).frame()
                exc = DecodeError("tc", "frame_length", "the frame's length field is too short")
            except DecodeError as err:
                exc = err
            self._sink.refuse(events, unit, link, exc, True)
            return None
        self._sink.stats["units_decoded"] += 1
        return frame

    # -- frame -> FDU ------------------------------------------------------------------
    def tc(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A plain TC frame; ``counted``: it is the unit itself (a frame unit)."""
        sink = self._sink
        if link.tc is None:
            link.tc = TcReceiver(TcConfig(), check_scid=False)
        tc = link.tc
        frame = tc.validate(raw)
        if frame is None:
            assert tc.last_error is not None
            sink.refuse(events, unit, link, tc.last_error, counted)
            return
        sink.frame_decoded(counted)
        where = f"TC {frame.frame_type.name} frame"
        where += f" N(S) {frame.seq}" if frame.frame_type is TcFrameType.AD else ""
        where += f" (VC {frame.vcid}" + ("" if frame.map_id is None else f", MAP {frame.map_id}")
        where += f", {len(raw)} octets)"
        self._farm(link, unit, frame, where, tc.reassembler, events)

    def uslp(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A plain USLP frame of the uplink: COP-1's FDU out of it, then FARM-1."""
        sink = self._sink
        rx = link.uslp_up
        if rx is None:
            try:
                rx = link.uslp_up = uplink_receiver(raw)
            except DecodeError as bad:
                sink.refuse(events, unit, link, bad, counted)
                return
        fdu = rx.validate(raw)
        if fdu is None:
            sink.refuse(events, unit, link, refusal(rx, raw, Counter()), counted)
            return
        sink.frame_decoded(counted)
        self._farm(link, unit, fdu, describe_uplink(fdu, raw), rx.reassembler, events)

    # -- FDU -> FARM-1 -> packets --------------------------------------------------------
    def _farm(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        frame: TcFrame,
        where: str,
        reassembler: TcReassembler,
        events: list[ReplayEvent],
    ) -> None:
        """A valid FDU (of a TC or USLP frame) through its VC's FARM-1, and the packets
        of what it accepts out of ``reassembler``."""
        sink = self._sink
        farm = link.farms.get(frame.vcid)
        if farm is None:
            farm = link.farms[frame.vcid] = Farm(frame.vcid, FARM_WINDOW)
            if frame.frame_type is TcFrameType.AD and frame.seq != 0:
                farm.vr = frame.seq
                sink.event(
                    events,
                    unit,
                    link,
                    "note",
                    f"FARM-1 of VC {frame.vcid} starts at V(R) {frame.seq}, the N(S) of the "
                    "first frame (the capture begins in the middle of a session)",
                )
        vr = farm.vr
        result = farm.receive(frame)
        # every TC frame is shown: there are few, and FARM-1's verdict is the story
        text = _FARM_TEXT[result.event].format(vr=vr)
        if result.event is FarmEvent.E8:
            text = f"Set V(R) {farm.vr} (E8)"
        if result.new_state is not result.old_state:
            text += f"; FARM-1 {result.old_state.name} -> {result.new_state.name}"
        sink.event(events, unit, link, "frame", f"{where}: {text}", result.event.name)
        for accepted in farm.take():
            before = Counter(reassembler.stats)
            outs = reassembler.push(accepted)
            sink.count_drops(events, unit, link, grown_counters(before, reassembler.stats), "tc")
            for out in outs:
                sink.packet(link, unit, out.packet, events)
        if farm.state is FarmState.WAIT:
            farm.buffer_release()
