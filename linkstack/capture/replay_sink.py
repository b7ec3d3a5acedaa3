"""What a replay's receive chains hand up, sans-I/O: their reports and their packets.

A :class:`~linkstack.capture.replay.Replayer` gives its chains
(:mod:`linkstack.capture.replay_uplink`, :mod:`linkstack.capture.replay_cadu`) one
:class:`ReplaySink`, and they report through it: :meth:`~ReplaySink.event` (what a
unit did), :meth:`~ReplaySink.refuse` (a unit or packet a decoder refused, with the
layer, the field and the rule broken), :meth:`~ReplaySink.count_drops` (the losses a
receiver counted), and :meth:`~ReplaySink.packet`, the top of every chain: a Space
Packet out of a frame, reassembled into a payload and decoded into a message (a relay
envelope, APID 0x102, unwrapped first). What the sink gathers is the replay's:
:attr:`~ReplaySink.stats`, :attr:`~ReplaySink.refused`, :attr:`~ReplaySink.drops`,
:attr:`~ReplaySink.packets` (:class:`DecodedPacket`) and :attr:`~ReplaySink.messages`
(:class:`DecodedMessage`); the events (:class:`ReplayEvent`) go to the list each
call is given, the one the replay returns for the unit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linkstack.capture.reader import CapturedUnit
from linkstack.capture.replay_link import RECEIVER, ReplayLink, node_kind
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.spp import IDLE_APID, SeqFlags, SpacePacket
from linkstack.errors import DecodeError
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
    from linkstack.runtime.routing import RelayHeader

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


def grown_counters(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """The counters that grew from ``before`` to ``after``, by how much."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}


class ReplaySink:
    """The reports and the packets of a replay's chains, and what they add up to.

    ``verbose``: the chains also tell every frame; ``relay_apid`` and ``relay``: the
    relay envelope's APID and header class, whose payloads are unwrapped."""

    def __init__(self, *, verbose: bool, relay_apid: int, relay: type[RelayHeader]) -> None:
        self.verbose = verbose
        self._relay_apid = relay_apid
        self._relay = relay
        self.stats: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.packets: list[DecodedPacket] = []
        self.messages: list[DecodedMessage] = []
        self._copies: Counter[tuple[object, ...]] = Counter()

    # -- reports -----------------------------------------------------------------------
    def event(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: ReplayLink,
        kind: str,
        text: str,
        data: EventData = None,
    ) -> None:
        events.append(ReplayEvent(unit.t_s, link.family, unit.src, unit.dst, kind, text, data))

    def frame_decoded(self, counted: bool) -> None:
        """A frame decoded; ``counted``: the frame was the captured unit itself."""
        if counted:
            self.stats["units_decoded"] += 1
        self.stats["frames"] += 1

    def refuse(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: ReplayLink,
        exc: DecodeError,
        unit_level: bool,
    ) -> None:
        self.refused[f"{exc.layer}: {exc.field}"] += 1
        if unit_level:
            self.stats["units_refused"] += 1
        self.event(events, unit, link, "refused", f"refused: {exc}", exc)

    def count_drops(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: ReplayLink,
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
                self.event(events, unit, link, "drop", text, counter)
        for reason, n in sorted(grown.items()):
            if reason in _QUIET_COUNTERS:
                continue
            self.drops[f"{what}: {reason}"] += n
            self.event(events, unit, link, "drop", f"{what}: {reason} +{n}", reason)

    # -- packets and messages ----------------------------------------------------------
    def packet(
        self, link: ReplayLink, unit: CapturedUnit, raw: bytes, events: list[ReplayEvent]
    ) -> None:
        """A Space Packet out of ``link``'s frame (or a captured one): recorded, pushed
        to the link's reassembler, and its payload decoded when it is whole."""
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError as exc:
            self.refuse(events, unit, link, exc, unit.layer == "space_packet")
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
        self.event(
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
        self.count_drops(events, unit, link, grown_counters(before, link.spp.stats), "spp")
        if payload is not None:
            self._message(link, unit, packet.apid, payload, events)

    def _message(
        self,
        link: ReplayLink,
        unit: CapturedUnit,
        apid: int,
        payload: bytes,
        events: list[ReplayEvent],
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
        self.event(events, unit, link, "message", text, msg)

    def _not_a_message(
        self,
        events: list[ReplayEvent],
        unit: CapturedUnit,
        link: ReplayLink,
        exc: DecodeError,
        foreign: bool,
    ) -> None:
        if foreign:
            self.stats["payloads_foreign"] += 1
        else:
            self.refuse(events, unit, link, exc, False)
