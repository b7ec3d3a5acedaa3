"""What the rules judge: a capture's units, and the observations made of them.

An observation is one thing a capture shows, with the facts a rule needs to judge it:
a CADU with what its coding showed (ASM, Reed-Solomon, randomization), a CLTU with its
codeblocks, a TM/AOS/TC/USLP frame with its header fields, a frame data field ("zone") with
where its first packet header *should* start, a Space Packet with the stream it belongs
to, a CLCW with what COP-1 had sent when it was emitted. Its ``kind`` names it to the
rules (each :class:`~linkstack.conformance.passive.rules.Rule` lists the kinds it judges
in ``on``); its ``units`` are the captured units it was seen in, the one to blame first.

A frame under SDLS is also an :class:`SdlsObs` (its security header and trailer),
and what its encryption keeps from the rules without a key a :class:`HiddenObs`.

A field that a unit does not hold is ``None``. :mod:`.decoding` fills in what one unit
shows on its own; :mod:`.analysis` what it shows after the units before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import Opened


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


Key = tuple[str | int | None, ...]
"""What tells a channel or a packet stream from another: its kind ("tm", "tc", ...), its
ends, its identifiers (SCID, VCID, MAP ID)."""


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
    mc_key: Key = ()
    vc_key: Key = ()


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
    vc_key: Key = ()


@dataclass(slots=True)
class ZoneObs:
    """A TM frame data field or an AOS packet zone, and where its packets start."""

    kind: str  # "zone_tm", "zone_aos" or "zone_uslp"
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
    unread: bool = False  # SDLS: its data field could not be read (encrypted, no key; refused)


@dataclass(slots=True)
class UslpFrameObs:
    """A USLP frame (732.1-B-2): ``kind`` "uslp_fdu" for an uplink's (its SCID names its
    destination: COP-1's FDU, with ``frame_type``, ``ns`` and ``cop`` as a TC frame's),
    "uslp_frame" for the others (downlink, laser links)."""

    kind: str
    units: tuple[Unit, ...]
    length: int
    version: int | None = None
    scid: int = 0
    dest: bool = False
    vcid: int = 0
    map_id: int = 0
    truncated: bool = False
    length_field: int | None = None
    bypass: bool = False
    command: bool = False
    spare: int = 0
    ocf_flag: bool = False
    vc_count_len: int = 0
    vc_count: int | None = None
    rule: int | None = None  # the TFDF header's construction rule; None: no TFDF header
    upid: int | None = None
    pointer: int | None = None
    fecf_ok: bool | None = None
    fecf_want: str = ""
    fecf_got: str = ""
    vc_key: Key = ()
    # COP-1 (uplink frames): the FDU's type, N(S) and data field, as a TC frame's
    frame_type: str | None = None
    ns: int = 0
    data: bytes = b""
    cop: CopFacts | None = None
    seg_fault: tuple[str, str] | tuple[()] | None = None  # as TcFrameObs's, by rule


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
    stream: Key
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
    # frame losses seen on its stream so far: the counts and segments of the packets
    # before a loss cannot be followed past it (a receiver starts again)
    losses: int = 0


@dataclass(slots=True)
class SdlsObs:
    """A frame under SDLS (355.0-B-2): its security header and trailer as read, and
    with the key verified (:class:`~linkstack.capture.sdls_view.Opened`); ``stream``:
    its kind of link, sender and receiver (with the SPI, one anti-replay counter);
    ``known``: the associations of its kind of link, for a fault's text."""

    kind = "sdls"
    units: tuple[Unit, ...]
    stream: Key
    opened: Opened
    known: str


@dataclass(slots=True)
class HiddenObs:
    """What SDLS kept from the rules in one frame: ``kind`` "sealed_tc", "sealed_tm",
    "sealed_aos" (its data field is encrypted and there is no key; a USLP frame's also
    "sealed_uslp") or
    "sdls_unverified" (it carries a MAC and there is no key to verify it)."""

    kind: str
    units: tuple[Unit, ...]


Observation = (
    UnitObs
    | CaduObs
    | CltuObs
    | TmFrameObs
    | AosFrameObs
    | ZoneObs
    | TcFrameObs
    | UslpFrameObs
    | TcDataObs
    | ClcwObs
    | PacketObs
    | SdlsObs
    | HiddenObs
)
