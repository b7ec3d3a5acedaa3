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

Out come :class:`ReplayEvent` (what each unit did), :class:`DecodedPacket`,
:class:`DecodedMessage` and the receivers' counters. No file, no terminal, no clock
here: ``linkstack replay`` (:mod:`linkstack.capture.replay_cli`) reads the file,
paces the units and prints. The codec chains that need numpy and numba
(:mod:`linkstack.ccsds.coding.chains`) and the relay envelope's module are imported
when the first :class:`Replayer` is made, so that registering the subcommand costs
the command line little (the light codecs only, about 0.1 s).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from linkstack.capture.network import LAYERS, NODE_NETWORKS
from linkstack.capture.reader import PAIR_WINDOW_S, CapturedUnit
from linkstack.capture.replay_coding import CaduDetector, cltu_randomized, heavy
from linkstack.capture.replay_uslp import (
    describe_fixed,
    describe_uplink,
    destination_flag,
    fixed_receiver,
    is_uslp,
    refusal,
    uplink_receiver,
)
from linkstack.ccsds.aos import AosConfig, AosFrame, AosReceiver, mpdu_unpack
from linkstack.ccsds.cop1.clcw import Clcw, is_clcw
from linkstack.ccsds.cop1.farm import Farm, FarmEvent, FarmState
from linkstack.ccsds.packet_zone import ReceivedFrame
from linkstack.ccsds.spp import IDLE_APID, Reassembler, SeqFlags, SpacePacket
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcReassembler, TcReceiver
from linkstack.ccsds.tm import TmConfig, TmFrame, TmReceiver
from linkstack.ccsds.uslp_channels import UslpReceiver
from linkstack.ccsds.uslp_cop1 import UslpCop1Receiver
from linkstack.errors import ConfigError, DecodeError, EncodeError, SdlsError
from payloads.messages import (
    ANSWER_APID,
    QUERY_APID,
    Ack,
    Answer,
    AnswerChunk,
    ErrorMessage,
    Message,
    Query,
    decode,
)

if TYPE_CHECKING:  # imported when first used (replay_coding.heavy)
    from linkstack.capture.sdls_view import FrameGate, SdlsView
    from linkstack.ccsds.coding.chains import CaduReceiver, CltuReceiver
    from linkstack.runtime.routing import RelayHeader

UPLINK, DOWNLINK, LASER = "uplink", "downlink", "laser"
FAMILIES: dict[str, tuple[str, str]] = {  # kind of link -> (unit layer, frame layer)
    UPLINK: ("cltu", "tc_frame"),
    DOWNLINK: ("tm_cadu", "tm_frame"),
    LASER: ("aos_cadu", "aos_frame"),
}
FAMILY_OF_LAYER = {layer: fam for fam, layers in FAMILIES.items() for layer in layers}
USLP_FRAME = "uslp_frame"  # USLP frames of every kind of link: the ends say which
RECEIVER = {UPLINK: "sat", DOWNLINK: "ground", LASER: "sat"}  # who receives each kind
_KIND = {UPLINK: "tc", DOWNLINK: "tm", LASER: "aos"}  # the frames of each kind of link
SIDES = ("ground", "sat", "both")
FARM_WINDOW = 64  # FARM-1's W, as linkstack.runtime.uplink_config.UplinkConfig has it

_NETWORK_KIND = {net: prefix.rstrip(":") for prefix, net in NODE_NETWORKS.items()}
_QUIET_COUNTERS = frozenset(  # receiver counters that are not drops
    {
        "frames",
        "packets",
        "idle_frames",
        "idle_packets",
        "idle_zones",
        "cadus",
        "cltus",
        "rs_frames_corrected",
        "rs_symbols_corrected",
        "rs_codewords",
        "rs_codewords_corrected",
        "rs_codewords_uncorrectable",
        "bits_corrected",
        "delivered",
        "frames_dropped",
    }
)
_SEQ_FLAGS = {
    SeqFlags.UNSEGMENTED: "unsegmented",
    SeqFlags.FIRST: "first segment",
    SeqFlags.CONTINUATION: "continuation",
    SeqFlags.LAST: "last segment",
}
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


# -- what the replay says -------------------------------------------------------------------

# what an event carries: the DecodeError of a refusal, the reason of a drop, the FARM-1
# event's name, the packet's octets, the message, the CLCW
EventData = DecodeError | Message | Clcw | bytes | str | None


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """One thing the receivers did with a unit. ``kind``: ``frame``, ``clcw``,
    ``packet``, ``message``, ``refused`` (a unit or packet a decoder refused:
    ``data`` is the :class:`DecodeError`), ``drop`` (a receiver counted a loss),
    ``check`` (a captured layer disagrees with what was decoded), ``note``."""

    t_s: float
    family: str
    src: str
    dst: str
    kind: str
    text: str
    data: EventData = None

    @property
    def side(self) -> str:
        return RECEIVER.get(self.family, "-")

    def format(self) -> str:
        return f"{self.t_s:14.6f}  {self.side:<6}  {self.src} -> {self.dst}  {self.text}"


@dataclass(frozen=True, slots=True)
class DecodedPacket:
    t_s: float
    family: str
    link: tuple[str, ...]  # (receiver,) for the up- and downlink ends, (src, dst) for lasers
    src: str
    dst: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    t_s: float
    family: str
    link: tuple[str, ...]
    src: str
    dst: str
    apid: int
    message: Message
    relay: RelayHeader | None = None  # the envelope's header of a relayed message
    copy: int = 1  # how many times this message has come over this link so far


def node_kind(name: str) -> str | None:
    """``ground``, ``sat`` or None for a node name, or an address in the capture's
    networks (ground stations 10.1.0.0/16, satellites 10.2.0.0/16)."""
    if name.startswith("ground:"):
        return "ground"
    if name.startswith("sat:"):
        return "sat"
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "10" and parts[1].isdigit():
        return _NETWORK_KIND.get(int(parts[1]))
    return None


def family_of(unit: CapturedUnit) -> str:
    """The kind of link a unit travels on: by its layer, or for a Space Packet by its
    ends (ground to satellite, satellite to ground, satellite to satellite) and,
    when they say nothing, its packet type (telecommand up, telemetry down)."""
    fam = FAMILY_OF_LAYER.get(unit.layer)
    if fam is not None:
        return fam
    ends = (node_kind(unit.src), node_kind(unit.dst))
    if ends == ("ground", "sat"):
        return UPLINK
    if ends == ("sat", "ground"):
        return DOWNLINK
    if ends == ("sat", "sat"):
        return LASER
    if unit.layer == USLP_FRAME:  # the SCID names the destination on an uplink
        return UPLINK if destination_flag(unit.data) else DOWNLINK
    return UPLINK if unit.data and unit.data[0] & 0x10 else DOWNLINK


def decode_sources(layers: Iterable[str]) -> dict[str, str | None]:
    """For each kind of link, the layer to decode: the lowest the capture holds (a
    link's frames: its TC, TM or AOS frames, else USLP frames)."""
    present = set(layers)
    out: dict[str, str | None] = {}
    for fam, (unit_layer, frame_layer) in FAMILIES.items():
        if unit_layer in present:
            out[fam] = unit_layer
        elif frame_layer in present:
            out[fam] = frame_layer
        elif USLP_FRAME in present:
            out[fam] = USLP_FRAME
        else:
            out[fam] = "space_packet" if "space_packet" in present else None
    return out


def _printable(text: str, limit: int = 64) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029\u202e\ufeff":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    s = "".join(out)
    return '"' + (s if len(s) <= limit else s[: limit - 1] + "…") + '"'


def describe_message(msg: Message) -> str:
    if isinstance(msg, Query):
        p = msg.params
        extra = (", stream" if msg.stream else "") + (", thinking" if p.thinking else "")
        return (
            f"query {msg.id} {_printable(msg.prompt)} (max {p.max_new_tokens} tokens, "
            f"T {p.temperature:g}, top-p {p.top_p:g}, seed {p.seed}{extra})"
        )
    if isinstance(msg, Answer):
        weights = ", random weights" if msg.random_weights else ""
        return (
            f"answer {msg.id} from {msg.satellite or '?'}: {_printable(msg.text)} "
            f"({msg.completion_tokens} tokens, {msg.finish_reason}; {msg.backend}{weights})"
        )
    if isinstance(msg, AnswerChunk):
        return f"chunk {msg.id} #{msg.seq}: {_printable(msg.text)}"
    if isinstance(msg, ErrorMessage):
        return f"error {msg.id} from {msg.satellite or '?'}: {msg.code}: {_printable(msg.detail)}"
    assert isinstance(msg, Ack)
    return "ack " + (", ".join(msg.ids) if msg.ids else "(no ids)")


_Rx = TypeVar("_Rx", TmReceiver, AosReceiver)


def _grown(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}


# -- one link's receive chain -----------------------------------------------------------------


class _Carried:
    """A CLTU or CADU decoded on a link, waiting for the frame unit that records it:
    its time and the frame it gave (None: refused)."""

    __slots__ = ("frame", "t_s")

    def __init__(self, t_s: float, frame: bytes | None) -> None:
        self.t_s = t_s
        self.frame = frame


class _Link:
    """The receiving end of one link: its chain, built as the units show what they are."""

    def __init__(self, family: str, key: tuple[str, ...]) -> None:
        self.family = family
        self.key = key
        self.cltu: CltuReceiver | None = None
        self.cltu_fixed = False
        self.cadu: CaduReceiver | None = None
        self.cadu_len = 0
        self.cadu_fixed = False
        self.cadu_coding = ""
        self.tc: TcReceiver | None = None
        self.farms: dict[int, Farm] = {}
        self.tm: TmReceiver | None = None
        self.aos: AosReceiver | None = None
        self.uslp_up: UslpCop1Receiver | None = None  # USLP: the uplink's COP-1 frames
        self.uslp: UslpReceiver | None = None  # USLP: the downlink's or laser link's
        self.spp = Reassembler()
        self.apids: set[int] = set()
        self.clcw: dict[int, Clcw] = {}
        self.last: tuple[float, str, str] = (0.0, "", "")  # the last unit's time and ends
        self.recorded: list[bytes] = []  # the capture's space_packet units of this link
        self.decoded: list[bytes] = []  # packets decoded from the units
        self.carried: deque[_Carried] = deque()  # units whose frame unit has not come yet
        self.records: deque[CapturedUnit] = deque()  # frame units whose unit has not come yet
        self.paired = 0  # frame units that found their unit: this link's units have them


class Replayer:
    """The receivers of a replay, sans-I/O: :meth:`feed` one unit, get events.

    ``layers``: the layers the capture holds (to choose what to decode, see
    :func:`decode_sources`); ``side``: ``ground``, ``sat`` or ``both``. What was
    decoded accumulates in :attr:`packets` and :attr:`messages`; :attr:`refused`
    counts refusals by "layer: field", :attr:`drops` the receivers' losses by
    reason; :meth:`finish` runs the end-of-capture checks; :meth:`counters` gives
    every receiver's counters, summed per kind of link."""

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
        self._relay_apid = h.RELAY_APID
        self._relay = h.RelayHeader
        self.side = side
        self.verbose = verbose
        layers = set(layers)
        self.sources = decode_sources(layers)
        self.window_s = window_s
        # the kinds of link whose units come with frame units in the capture
        self._recorded = {
            fam
            for fam, (unit_layer, frame_layer) in FAMILIES.items()
            if unit_layer in layers and layers & {frame_layer, USLP_FRAME}
        }
        self.links: dict[tuple[str, tuple[str, ...]], _Link] = {}
        self.stats: Counter[str] = Counter()
        self.units_by_layer: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()
        self.packets: list[DecodedPacket] = []
        self.messages: list[DecodedMessage] = []
        self._copies: Counter[tuple[object, ...]] = Counter()
        self._cadu_detector = CaduDetector()
        # the last CLTU or CADU: its link, time and frame (None: refused), for the check
        # of the frame unit that a linkstack capture writes right after it
        self._after: tuple[_Link, float, bytes | None] | None = None
        self._beside: tuple[_Link, _Carried] | None = None  # the last unit, while it waits
        self._waiting: dict[_Link, None] = {}  # links with units or frame units waiting
        self._latest_s = float("-inf")
        self._gate: FrameGate | None = None
        if sdls is not None:
            from linkstack.capture.sdls_view import FrameGate  # noqa: PLC0415

            self._gate = FrameGate(sdls)

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
                self._packet(link, unit, unit.data, events)
            else:
                link.recorded.append(unit.data)
        elif layer != source and family in self._recorded and source == FAMILIES[family][0]:
            self._frame_unit(link, unit, beside, events)
        elif layer == "cltu":
            self._cltu(link, unit, events)
            self._carried(link, unit, events)
        elif layer in ("tm_cadu", "aos_cadu"):
            self._cadu(link, unit, events)
            self._carried(link, unit, events)
        elif layer == "tc_frame":
            self._tc(link, unit, unit.data, events, counted=True)
        elif layer == "tm_frame":
            self._tm(link, unit, unit.data, events, counted=True)
        elif layer == USLP_FRAME:
            self._uslp(link, unit, unit.data, events, counted=True)
        else:
            self._aos(link, unit, unit.data, events, counted=True)
        return events

    # -- frame units and the units they record -------------------------------------------
    def _carried(self, link: _Link, unit: CapturedUnit, events: list[ReplayEvent]) -> None:
        """A CLTU or CADU was decoded (``self._after``): the frame unit waiting for it,
        or it waits for its frame unit."""
        after, self._after = self._after, None
        if after is None or link.family not in self._recorded:
            return
        frame = after[2]
        if frame is not None:
            for record in link.records:
                if record.data == frame and abs(record.t_s - unit.t_s) <= self.window_s:
                    link.records.remove(record)
                    self._check_frame(link, record, frame, events)
                    return
        carried = _Carried(unit.t_s, frame)
        link.carried.append(carried)
        self._waiting[link] = None
        self._beside = (link, carried)

    def _frame_unit(
        self,
        link: _Link,
        unit: CapturedUnit,
        beside: tuple[_Link, _Carried] | None,
        events: list[ReplayEvent],
    ) -> None:
        """A frame unit where its link's units are decoded: checked against the unit
        whose frame it is, else the unit beside it, else it waits for its unit."""
        for carried in link.carried:
            if carried.frame == unit.data and abs(carried.t_s - unit.t_s) <= self.window_s:
                link.carried.remove(carried)
                self._check_frame(link, unit, carried.frame, events)
                return
        if beside is not None and beside[0] is link and beside[1].t_s == unit.t_s:
            link.carried.remove(beside[1])  # linkstack's: the frame of the unit before
            self._check_frame(link, unit, beside[1].frame, events)
            return
        link.records.append(unit)
        self._waiting[link] = None

    def _expire(self, before_s: float, events: list[ReplayEvent]) -> None:
        """Units and frame units that waited past the window (all of them at the end):
        a frame unit goes with the earliest unit of its link left without one (on a link
        whose units have frame units), and is decoded on its own when there is none; a
        unit needs no frame unit."""
        for link in list(self._waiting):
            records, carried = link.records, link.carried
            while records and records[0].t_s < before_s:
                record = records.popleft()
                near = None
                if link.paired:  # else nothing says this link's units come with frame units
                    window = self.window_s
                    near = next((c for c in carried if abs(c.t_s - record.t_s) <= window), None)
                if near is not None:
                    carried.remove(near)
                    self._check_frame(link, record, near.frame, events)
                elif record.layer == "tc_frame":
                    self._tc(link, record, record.data, events, counted=True)
                elif record.layer == "tm_frame":
                    self._tm(link, record, record.data, events, counted=True)
                elif record.layer == USLP_FRAME:
                    self._uslp(link, record, record.data, events, counted=True)
                else:
                    self._aos(link, record, record.data, events, counted=True)
            # a unit stays a window longer: a frame unit still waiting may go with it
            while carried and carried[0].t_s < before_s - self.window_s:
                carried.popleft()
            if not records and not carried:
                del self._waiting[link]

    def _link(self, family: str, unit: CapturedUnit) -> _Link:
        if family == UPLINK:
            key: tuple[str, ...] = (unit.dst,)
        elif family == DOWNLINK:
            key = (unit.src,)
        else:
            key = (unit.src, unit.dst)
        link = self.links.get((family, key))
        if link is None:
            link = self.links[(family, key)] = _Link(family, key)
        return link

    # -- reporting helpers -------------------------------------------------------------
    def _event(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: _Link,
        kind: str,
        text: str,
        data: EventData = None,
    ) -> None:
        events.append(ReplayEvent(unit.t_s, link.family, unit.src, unit.dst, kind, text, data))

    def _refuse(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: _Link,
        exc: DecodeError,
        unit_level: bool,
    ) -> None:
        self.refused[f"{exc.layer}: {exc.field}"] += 1
        if unit_level:
            self.stats["units_refused"] += 1
        self._event(events, unit, link, "refused", f"refused: {exc}", exc)

    def _drops(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: _Link,
        grown: dict[str, int],
        what: str,
        gap: tuple[str, str, str] | None = None,
    ) -> None:
        """The losses a receiver counted for this unit's frame, by reason, less the
        counters that are not losses. ``gap``: (counter, frame kind, frame count) of
        the frames that a jump in a frame count says are missing, told as such."""
        if gap is not None:
            counter, kind, count = gap
            lost = grown.pop(counter, 0)
            if lost:
                self.drops[f"{what}: {counter}"] += lost
                text = f"{lost} {kind} frame(s) missing before this one ({count})"
                self._event(events, unit, link, "drop", text, counter)
        for reason, n in sorted(grown.items()):
            if reason in _QUIET_COUNTERS:
                continue
            self.drops[f"{what}: {reason}"] += n
            self._event(events, unit, link, "drop", f"{what}: {reason} +{n}", reason)

    # -- TC: CLTU -> frame -> FARM-1 -> packets ------------------------------------------
    def _cltu_receiver(self, link: _Link, data: bytes) -> CltuReceiver:
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

    def _cltu(self, link: _Link, unit: CapturedUnit, events: list[ReplayEvent]) -> None:
        rx = self._cltu_receiver(link, unit.data)
        frame = rx.receive(unit.data)
        if frame is None:
            self._after = (link, unit.t_s, None)
            c = rx.coding
            try:
                heavy().decode_cltu(unit.data, c.mode, c.randomize, c.max_start_errors).frame()
                exc = DecodeError("tc", "frame_length", "the frame's length field is too short")
            except DecodeError as err:
                exc = err
            self._refuse(events, unit, link, exc, True)
            return
        self.stats["units_decoded"] += 1
        self._after = (link, unit.t_s, frame)
        if is_uslp(frame):
            self._uslp(link, unit, frame, events)
        else:
            self._tc(link, unit, frame, events)

    def _tc(
        self,
        link: _Link,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        opened = self._unprotect(link, unit, "tc", raw, events, counted)
        if opened is None:
            return
        raw = opened
        if link.tc is None:
            link.tc = TcReceiver(TcConfig(), check_scid=False)
        tc = link.tc
        frame = tc.validate(raw)
        if frame is None:
            assert tc.last_error is not None
            self._refuse(events, unit, link, tc.last_error, counted)
            return
        if counted:
            self.stats["units_decoded"] += 1
        self.stats["frames"] += 1
        where = f"TC {frame.frame_type.name} frame"
        where += f" N(S) {frame.seq}" if frame.frame_type is TcFrameType.AD else ""
        where += f" (VC {frame.vcid}" + ("" if frame.map_id is None else f", MAP {frame.map_id}")
        where += f", {len(raw)} octets)"
        self._farm(link, unit, frame, where, tc.reassembler, events)

    def _farm(
        self,
        link: _Link,
        unit: CapturedUnit,
        frame: TcFrame,
        where: str,
        reassembler: TcReassembler,
        events: list[ReplayEvent],
    ) -> None:
        """A valid FDU (of a TC or USLP frame) through its VC's FARM-1, and the packets
        of what it accepts out of ``reassembler``."""
        farm = link.farms.get(frame.vcid)
        if farm is None:
            farm = link.farms[frame.vcid] = Farm(frame.vcid, FARM_WINDOW)
            if frame.frame_type is TcFrameType.AD and frame.seq != 0:
                farm.vr = frame.seq
                self._event(
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
        self._event(events, unit, link, "frame", f"{where}: {text}", result.event.name)
        for accepted in farm.take():
            before = Counter(reassembler.stats)
            outs = reassembler.push(accepted)
            self._drops(events, unit, link, _grown(before, reassembler.stats), "tc")
            for out in outs:
                self._packet(link, unit, out.packet, events)
        if farm.state is FarmState.WAIT:
            farm.buffer_release()

    # -- TM and AOS: CADU -> frame -> packets ------------------------------------------
    def _cadu_receiver(
        self, link: _Link, unit: CapturedUnit, events: list[ReplayEvent]
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
            self._refuse(events, unit, link, exc, True)
            return None
        found = self._cadu_detector.detect(unit.data, 0 if link.family == DOWNLINK else 1)
        if found is not None:
            coding, frame_len, name = found
            link.cadu = CaduReceiver(frame_len, coding)
            link.cadu_len, link.cadu_fixed, link.cadu_coding = n, True, name
            if not name.startswith("RS(255,223) x 5, randomized, 1115"):
                self._event(events, unit, link, "note", f"{unit.layer}s of this link: {name}")
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
        self._refuse(events, unit, link, exc, True)
        return None

    def _cadu(self, link: _Link, unit: CapturedUnit, events: list[ReplayEvent]) -> None:
        self._after = (link, unit.t_s, None)
        rx = self._cadu_receiver(link, unit, events)
        if rx is None:
            return
        before = Counter(rx.stats)
        got = rx.receive_cadu(unit.data)
        if got is None:
            grown = _grown(before, rx.stats)
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
            self._refuse(events, unit, link, exc, True)
            return
        self.stats["units_decoded"] += 1
        if got.symbols_corrected:
            self.stats["rs_symbols_corrected"] += got.symbols_corrected
            self._event(
                events,
                unit,
                link,
                "note",
                f"Reed-Solomon corrected {got.symbols_corrected} symbol(s)",
            )
        self._after = (link, unit.t_s, got.frame)
        if is_uslp(got.frame):
            self._uslp(link, unit, got.frame, events)
        elif link.family == DOWNLINK:
            self._tm(link, unit, got.frame, events)
        else:
            self._aos(link, unit, got.frame, events)

    def _receive(
        self,
        link: _Link,
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
        rx: _Rx | None = getattr(link, layer)
        if rx is None:
            try:
                rx = make()
            except EncodeError as bad:
                self._refuse(events, unit, link, DecodeError(layer, bad.field, bad.rule), counted)
                return None
            setattr(link, layer, rx)
        before = rx.all_stats()
        got = rx.receive(raw)
        grown = _grown(before, rx.all_stats())
        if got is None:
            try:
                why(rx)
                reason = next((k for k in grown if k != "frames_dropped"), "dropped")
                exc = DecodeError(layer, reason, "the receiver does not carry such frames")
            except DecodeError as err:
                exc = err
            self._refuse(events, unit, link, exc, counted)
            return None
        if counted:
            self.stats["units_decoded"] += 1
        self.stats["frames"] += 1
        return rx, got, grown

    def _tm(
        self,
        link: _Link,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        opened = self._unprotect(link, unit, "tm", raw, events, counted)
        if opened is None:
            return
        raw = opened
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
        self._drops(events, unit, link, grown, "tm", ("mc_frames_lost", "TM", "MC count"))
        if self.verbose:
            idle = got.vcid == rx.config.idle_vcid and not got.packets
            what = "idle" if idle else f"{len(got.packets)} packet(s)"
            scid = ((raw[0] << 8 | raw[1]) >> 4) & 0x3FF
            self._event(
                events,
                unit,
                link,
                "frame",
                f"TM frame VC {got.vcid} MC {raw[2]} VC# {got.vc_count} (SCID {scid}, "
                f"{len(raw)} octets): {what}",
            )
        self._frame_data(link, unit, got.ocf, got.packets, events)

    def _frame_data(
        self,
        link: _Link,
        unit: CapturedUnit,
        ocf: bytes | None,
        packets: Iterable[bytes],
        events: list[ReplayEvent],
    ) -> None:
        """What a TM or USLP frame carries: the CLCW in its OCF, then its packets."""
        if ocf is not None:
            self._ocf(link, unit, ocf, events)
        for packet in packets:
            self._packet(link, unit, packet, events)

    def _ocf(self, link: _Link, unit: CapturedUnit, ocf: bytes, events: list[ReplayEvent]) -> None:
        if not is_clcw(ocf):
            return
        try:
            clcw = Clcw.unpack(ocf)
        except DecodeError as exc:
            self._refuse(events, unit, link, exc, False)
            return
        self.stats["clcws"] += 1
        if link.clcw.get(clcw.vcid) == clcw and not self.verbose:
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
        self._event(events, unit, link, "clcw", text, clcw)

    def _aos(
        self,
        link: _Link,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        opened = self._unprotect(link, unit, "aos", raw, events, counted)
        if opened is None:
            return
        raw = opened

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
        self._drops(events, unit, link, grown, "aos")
        if self.verbose:
            what = "idle" if got.vcid == 63 else f"{len(got.packets)} packet(s)"
            scid = (raw[0] << 2 | raw[1] >> 6) & 0xFF
            self._event(
                events,
                unit,
                link,
                "frame",
                f"AOS frame VC {got.vcid} VC# {got.vc_count} (SCID {scid}, {len(raw)} octets): "
                f"{what}",
            )
        for packet in got.packets:
            self._packet(link, unit, packet, events)

    # -- USLP: frame -> COP-1 FDU -> FARM-1, or frame -> packets and the CLCW ------------
    def _uslp(
        self,
        link: _Link,
        unit: CapturedUnit,
        raw: bytes,
        events: list[ReplayEvent],
        counted: bool = False,
    ) -> None:
        """A USLP frame, through its link's chain (:mod:`linkstack.capture.replay_uslp`),
        opened first when SDLS protects it (with the SAs of its kind of link)."""
        opened = self._unprotect(link, unit, _KIND[link.family], raw, events, counted)
        if opened is None:
            return
        raw = opened
        rx: UslpReceiver | UslpCop1Receiver | None = (
            link.uslp_up if link.family == UPLINK else link.uslp
        )
        if rx is None:
            try:
                if link.family == UPLINK:
                    rx = link.uslp_up = uplink_receiver(raw)
                else:
                    rx = link.uslp = fixed_receiver(raw)
            except DecodeError as bad:
                self._refuse(events, unit, link, bad, counted)
                return
        before = rx.all_stats()
        if isinstance(rx, UslpCop1Receiver):
            fdu = rx.validate(raw)
            if fdu is None:
                self._refuse(events, unit, link, refusal(rx, raw, Counter()), counted)
                return
            if counted:
                self.stats["units_decoded"] += 1
            self.stats["frames"] += 1
            self._farm(link, unit, fdu, describe_uplink(fdu, raw), rx.reassembler, events)
            return
        got = rx.receive(raw)
        grown = _grown(before, rx.all_stats())
        if got is None:
            self._refuse(events, unit, link, refusal(rx, raw, Counter(grown)), counted)
            return
        if counted:
            self.stats["units_decoded"] += 1
        self.stats["frames"] += 1
        gap = ("vc_frames_lost", "USLP", f"VC {got.vcid} frame count")
        self._drops(events, unit, link, grown, "uslp", gap)
        if self.verbose:
            self._event(events, unit, link, "frame", describe_fixed(got, raw))
        self._frame_data(link, unit, got.ocf, got.packets, events)

    # -- SDLS: the plain frame of a protected one --------------------------------------
    def _unprotect(
        self,
        link: _Link,
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
        if self.verbose:
            self._event(events, unit, link, "note", f"SDLS {opened.fields_text()}")
        if opened.refusal:
            exc = SdlsError("sdls", opened.refusal, opened.detail)
            self._refuse(events, unit, link, exc, counted)
            return None
        if opened.plain is not None:
            return opened.plain
        self.stats["sdls_sealed"] += 1
        if counted:
            self.stats["units_decoded"] += 1
        if self.verbose or kind == "tc":
            what = f"{kind.upper()} frame VC {opened.vcid} ({len(raw)} octets"
            text = f"{what}, {opened.fields_text()}): encrypted, not read (no key for it)"
            self._event(events, unit, link, "frame", text)
        if opened.ocf is not None:
            self._ocf(link, unit, opened.ocf, events)
        return None

    # -- packets and messages ----------------------------------------------------------
    def _packet(
        self, link: _Link, unit: CapturedUnit, raw: bytes, events: list[ReplayEvent]
    ) -> None:
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError as exc:
            self._refuse(events, unit, link, exc, unit.layer == "space_packet")
            return
        if packet.apid == IDLE_APID:
            self.stats["idle_packets"] += 1
            return
        self.stats["packets"] += 1
        self.packets.append(
            DecodedPacket(unit.t_s, link.family, link.key, unit.src, unit.dst, bytes(raw))
        )
        link.decoded.append(bytes(raw))
        link.apids.add(packet.apid)
        kind = "TC" if packet.packet_type else "TM"
        self._event(
            events,
            unit,
            link,
            "packet",
            f"packet APID {packet.apid:#05x} seq {packet.seq_count} len {len(raw)}, {kind}, "
            f"{_SEQ_FLAGS[packet.seq_flags]}",
            bytes(raw),
        )
        before = Counter(link.spp.stats)
        payload = link.spp.push(packet)
        self._drops(events, unit, link, _grown(before, link.spp.stats), "spp")
        if payload is not None:
            self._message(link, unit, packet.apid, payload, events)

    def _message(
        self, link: _Link, unit: CapturedUnit, apid: int, payload: bytes, events: list[ReplayEvent]
    ) -> None:
        relay = None
        prefix = ""
        # between nodes that are not linkstack's, a payload that is no linkstack message
        # is another mission's packet on these APIDs, not a refusal (--profile says whose)
        foreign = node_kind(unit.src) is None or node_kind(unit.dst) is None
        if apid == self._relay_apid:
            try:
                relay, payload = self._relay.unwrap(payload)
            except DecodeError as exc:
                self._not_a_message(events, unit, link, exc, foreign)
                return

            def node(n: int) -> str:
                return "ground" if n == 0 else f"node {n}"

            prefix = f"relay {node(relay.src)} -> {node(relay.dst)} (hop limit {relay.hop_limit}): "
        elif apid not in (QUERY_APID, ANSWER_APID):
            self.stats["payloads_other_apid"] += 1
            return
        try:
            msg = decode(payload)
        except DecodeError as exc:
            self._not_a_message(events, unit, link, exc, foreign)
            return
        self.stats["messages"] += 1
        self.stats[f"messages_{type(msg).__name__}"] += 1
        ident = msg.ids if isinstance(msg, Ack) else (msg.id, getattr(msg, "seq", None))
        key = (link.family, link.key, type(msg).__name__, ident)
        self._copies[key] += 1
        copy = self._copies[key]
        self.messages.append(
            DecodedMessage(
                unit.t_s, link.family, link.key, unit.src, unit.dst, apid, msg, relay, copy
            )
        )
        text = prefix + describe_message(msg) + (f" (copy {copy})" if copy > 1 else "")
        self._event(events, unit, link, "message", text, msg)

    def _not_a_message(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: _Link,
        exc: DecodeError,
        foreign: bool,
    ) -> None:
        if foreign:
            self.stats["payloads_foreign"] += 1
        else:
            self._refuse(events, unit, link, exc, False)

    # -- the checks against the capture's upper layers -----------------------------------
    def _check_frame(
        self, link: _Link, unit: CapturedUnit, expected: bytes | None, events: list[ReplayEvent]
    ) -> None:
        self.stats["units_checked"] += 1
        link.paired += 1
        if expected is None:
            self.checks[f"{unit.layer}:unit_refused"] += 1
        elif expected == unit.data:
            self.checks[f"{unit.layer}:equal"] += 1
        else:
            self.checks[f"{unit.layer}:different"] += 1
            self._event(
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
            sdls = self._gate.stats.get((_KIND[family], *link.key)) if self._gate else None
            if sdls:
                add("sdls", sdls)
            if link.decoded:
                add("spp", link.spp.stats)
        return out

    def _sealed(self, link: _Link) -> int:
        """How many of ``link``'s frames were encrypted and not decrypted (no key)."""
        if self._gate is None:
            return 0
        return self._gate.stats.get((_KIND[link.family], *link.key), Counter())["sealed"]

    @property
    def problems(self) -> int:
        """Refusals and failed checks (0: every unit decoded, every check passed)."""
        bad_checks = sum(n for k, n in self.checks.items() if k.endswith((":different", "_links")))
        return sum(self.refused.values()) + bad_checks
