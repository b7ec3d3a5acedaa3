"""The CADU links' receive chains in a replay, sans-I/O: CADU -> frame -> packets, CLCW.

What the ground runs on a satellite's downlink (TM frames), and a satellite on a laser
link (AOS frames), one chain per link: :meth:`CaduChain.cadu` takes a CADU through the
attached sync marker and Reed-Solomon (:class:`~linkstack.ccsds.coding.chains.CaduReceiver`,
the code, depth, randomization and frame length found from the link's first CADUs,
:class:`~linkstack.capture.replay_coding.CaduDetector`) to its frame;
:meth:`CaduChain.tm`, :meth:`CaduChain.aos` and :meth:`CaduChain.uslp` (a fixed-length
USLP frame, :mod:`linkstack.capture.replay_uslp`) take a frame to its packets, handed
to the :class:`~linkstack.capture.replay_sink.ReplaySink`, and :meth:`CaduChain.ocf`
reports the CLCW in a frame's OCF. A receiver is configured from the link's first
frame (its length, the AOS frame count cycle use). The frames come here plain: the
:class:`~linkstack.capture.replay.Replayer` opens SDLS first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from linkstack.capture.reader import CapturedUnit
from linkstack.capture.replay_coding import CaduDetector, heavy
from linkstack.capture.replay_link import DOWNLINK, ReplayLink
from linkstack.capture.replay_sink import ReplayEvent, ReplaySink, grown_counters
from linkstack.capture.replay_uslp import describe_fixed, fixed_receiver, refusal
from linkstack.ccsds.aos import AosConfig, AosFrame, AosReceiver, mpdu_unpack
from linkstack.ccsds.cop1.clcw import Clcw, is_clcw
from linkstack.ccsds.packet_zone import ReceivedFrame
from linkstack.ccsds.tm import TmConfig, TmFrame, TmReceiver
from linkstack.errors import DecodeError, EncodeError

if TYPE_CHECKING:  # imported when first used (replay_coding.heavy)
    from linkstack.ccsds.coding.chains import CaduReceiver

_Rx = TypeVar("_Rx", TmReceiver, AosReceiver)


class CaduChain:
    """The downlinks' and laser links' receivers of a replay, reporting to ``sink``;
    their state is each link's (:class:`~linkstack.capture.replay_link.ReplayLink`)."""

    def __init__(self, sink: ReplaySink) -> None:
        self._sink = sink
        self._detector = CaduDetector()

    # -- CADU -> frame -------------------------------------------------------------------
    def _cadu_receiver(
        self, link: ReplayLink, unit: CapturedUnit, events: list[ReplayEvent]
    ) -> CaduReceiver | None:
        CaduCoding, CaduReceiver = heavy().CaduCoding, heavy().CaduReceiver  # noqa: N806
        n = len(unit.data)
        if link.cadu is not None and (link.cadu_fixed or n == link.cadu_len):
            if n == link.cadu_len:
                return link.cadu
            exc = DecodeError(
                unit.layer,
                "length",
                f"{n} octets; this link's CADUs are {link.cadu_len} ({link.cadu_coding})",
            )
            self._sink.refuse(events, unit, link, exc, True)
            return None
        found = self._detector.detect(unit.data, 0 if link.family == DOWNLINK else 1)
        if found is not None:
            coding, frame_len, name = found
            link.cadu = CaduReceiver(frame_len, coding)
            link.cadu_len, link.cadu_fixed, link.cadu_coding = n, True, name
            if not name.startswith("RS(255,223) x 5, randomized, 1115"):
                text = f"{unit.layer}s of this link: {name}"
                self._sink.event(events, unit, link, "note", text)
            return link.cadu
        default = CaduCoding()
        if n == 4 + default.codeblock_length(1115):  # linkstack's own: damaged beyond the FECF
            link.cadu = CaduReceiver(1115, default)
            link.cadu_len, link.cadu_coding = n, "RS(255,223) x 5, randomized, 1115-octet frames"
            return link.cadu
        exc = DecodeError(
            unit.layer,
            "coding",
            f"{n} octets: no CCSDS coding (RS(255,223) or RS(255,239) at depth 1-8, or none; "
            "randomized or not) yields a frame whose FECF checks",
        )
        self._sink.refuse(events, unit, link, exc, True)
        return None

    def cadu(self, link: ReplayLink, unit: CapturedUnit, events: list[ReplayEvent]) -> bytes | None:
        """The frame in the CADU ``unit``; None when the receiver refuses it (reported)."""
        sink = self._sink
        rx = self._cadu_receiver(link, unit, events)
        if rx is None:
            return None
        before = Counter(rx.stats)
        got = rx.receive_cadu(unit.data)
        if got is None:
            grown = grown_counters(before, rx.stats)
            if "no_asm" in grown:
                exc = DecodeError(
                    unit.layer,
                    "asm",
                    f"no attached sync marker {rx.coding.asm.hex()} (within "
                    f"{rx.coding.max_asm_errors} bit errors) before a whole codeblock",
                )
            else:
                exc = DecodeError(
                    unit.layer, "reed_solomon", "a codeword has more errors than the code corrects"
                )
            sink.refuse(events, unit, link, exc, True)
            return None
        sink.stats["units_decoded"] += 1
        if got.symbols_corrected:
            sink.stats["rs_symbols_corrected"] += got.symbols_corrected
            sink.event(
                events,
                unit,
                link,
                "note",
                f"Reed-Solomon corrected {got.symbols_corrected} symbol(s)",
            )
        return got.frame

    # -- TM and AOS frames -> packets --------------------------------------------------
    def _receive(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool,
        layer: str,
        make: Callable[[], _Rx],
        why: Callable[[_Rx], object],
    ) -> tuple[_Rx, ReceivedFrame, dict[str, int]] | None:
        """Hand ``raw`` to the link's ``layer`` ("tm" or "aos") receiver, made by
        ``make()`` from the first frame (refused when its length cannot configure one),
        and count the frame. Return (receiver, frame, grown stats), or None when
        nothing came out: the frame is refused, with the error ``why(receiver)`` raises
        when it unpacks the frame, else the first stat the receiver grew."""
        sink = self._sink
        rx: _Rx | None = getattr(link, layer)
        if rx is None:
            try:
                rx = make()
            except EncodeError as bad:
                sink.refuse(events, unit, link, DecodeError(layer, bad.field, bad.rule), counted)
                return None
            setattr(link, layer, rx)
        before = rx.all_stats()
        got = rx.receive(raw)
        grown = grown_counters(before, rx.all_stats())
        if got is None:
            try:
                why(rx)
                reason = next((k for k in grown if k != "frames_dropped"), "dropped")
                exc = DecodeError(layer, reason, "the receiver does not carry such frames")
            except DecodeError as err:
                exc = err
            sink.refuse(events, unit, link, exc, counted)
            return None
        sink.frame_decoded(counted)
        return rx, got, grown

    def tm(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A plain TM frame; ``counted``: it is the unit itself (a frame unit)."""
        done = self._receive(
            link,
            unit,
            raw,
            events,
            counted,
            "tm",
            lambda: TmReceiver(TmConfig(frame_length=len(raw)), check_scid=False),
            lambda rx: TmFrame.unpack(raw, rx.config.fecf, rx.config.frame_length),
        )
        if done is None:
            return
        rx, got, grown = done
        sink = self._sink
        sink.count_drops(events, unit, link, grown, "tm", ("mc_frames_lost", "TM", "MC count"))
        if sink.verbose:
            idle = got.vcid == rx.config.idle_vcid and not got.packets
            what = "idle" if idle else f"{len(got.packets)} packet(s)"
            scid = ((raw[0] << 8 | raw[1]) >> 4) & 0x3FF
            sink.event(
                events,
                unit,
                link,
                "frame",
                f"TM frame VC {got.vcid} MC {raw[2]} VC# {got.vc_count} (SCID {scid}, "
                f"{len(raw)} octets): {what}",
            )
        self._frame_data(link, unit, got.ocf, got.packets, events)

    def aos(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A plain AOS frame; ``counted``: it is the unit itself (a frame unit)."""

        def make() -> AosReceiver:
            usage = len(raw) > 5 and bool(raw[5] & 0x40)
            config = AosConfig(frame_length=len(raw), count_cycle=usage)
            return AosReceiver(config, check_scid=False)

        def why(rx: AosReceiver) -> None:
            frame = AosFrame.unpack(raw, rx.config)
            if frame.vcid != 63:
                mpdu_unpack(frame.data)

        done = self._receive(link, unit, raw, events, counted, "aos", make, why)
        if done is None:
            return
        _, got, grown = done
        sink = self._sink
        sink.count_drops(events, unit, link, grown, "aos")
        if sink.verbose:
            what = "idle" if got.vcid == 63 else f"{len(got.packets)} packet(s)"
            scid = (raw[0] << 2 | raw[1] >> 6) & 0xFF
            sink.event(
                events,
                unit,
                link,
                "frame",
                f"AOS frame VC {got.vcid} VC# {got.vc_count} (SCID {scid}, {len(raw)} octets): "
                f"{what}",
            )
        for packet in got.packets:
            sink.packet(link, unit, packet, events)

    # -- USLP: fixed-length frames -> packets and the CLCW -----------------------------
    def uslp(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A plain USLP frame of a downlink or laser link."""
        sink = self._sink
        rx = link.uslp
        if rx is None:
            try:
                rx = link.uslp = fixed_receiver(raw)
            except DecodeError as bad:
                sink.refuse(events, unit, link, bad, counted)
                return
        before = rx.all_stats()
        got = rx.receive(raw)
        grown = grown_counters(before, rx.all_stats())
        if got is None:
            sink.refuse(events, unit, link, refusal(rx, raw, Counter(grown)), counted)
            return
        sink.frame_decoded(counted)
        gap = ("vc_frames_lost", "USLP", f"VC {got.vcid} frame count")
        sink.count_drops(events, unit, link, grown, "uslp", gap)
        if sink.verbose:
            sink.event(events, unit, link, "frame", describe_fixed(got, raw))
        self._frame_data(link, unit, got.ocf, got.packets, events)

    # -- what a frame carries ----------------------------------------------------------
    def _frame_data(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        ocf: bytes | None,
        packets: Iterable[bytes],
        events: list[ReplayEvent],
    ) -> None:
        """What a TM or USLP frame carries: the CLCW in its OCF, then its packets."""
        if ocf is not None:
            self.ocf(link, unit, ocf, events)
        for packet in packets:
            self._sink.packet(link, unit, packet, events)

    def ocf(
        self, link: ReplayLink, unit: CapturedUnit, ocf: bytes, events: list[ReplayEvent]
    ) -> None:
        """The CLCW in a frame's OCF, told when it changes (every one with ``verbose``);
        an OCF that holds no CLCW is passed over."""
        sink = self._sink
        if not is_clcw(ocf):
            return
        try:
            clcw = Clcw.unpack(ocf)
        except DecodeError as exc:
            sink.refuse(events, unit, link, exc, False)
            return
        sink.stats["clcws"] += 1
        if link.clcw.get(clcw.vcid) == clcw and not sink.verbose:
            return
        link.clcw[clcw.vcid] = clcw
        flags = [
            name
            for name, on in (
                ("lockout", clcw.lockout),
                ("wait", clcw.wait),
                ("retransmit", clcw.retransmit),
                ("no RF", clcw.no_rf_available),
                ("no bit lock", clcw.no_bit_lock),
            )
            if on
        ]
        text = f"CLCW VC {clcw.vcid}: N(R) {clcw.report_value}"
        text += f" [{', '.join(flags)}]" if flags else ""
        text += f", FARM-B {clcw.farm_b_counter}"
        sink.event(events, unit, link, "clcw", text, clcw)
