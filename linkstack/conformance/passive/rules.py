"""The rule catalogue: what a conforming capture must show, rule by rule, with its source.

Each :class:`Rule` has an identifier (``TM-VC-01``), the standard and the section it
comes from, a one-line statement, the layer it applies to, the kinds of observation
it judges (``on``), what else the capture must hold for its verdict to mean anything
(``needs``: COP-1's N(R) is judged against the TC frames sent, so a capture without
the uplink cannot judge it), and its ``judge``: a function of one observation and a
:class:`RuleContext` that returns

- :data:`SKIP` when the rule does not apply to that observation,
- ``None`` when the observation conforms,
- a :class:`Fault` (or a list of them) when it does not: the field, what was
  expected and what was found.

A rule that reads what SDLS may encrypt (a frame's data field, the packets in it)
names the observations that say a frame of the capture hid it (``hidden_by``: a data
field encrypted and no key given): with any of them it cannot judge, unless it failed
on what it could read.

Observations (:mod:`linkstack.conformance.passive.observations`) are made from the units of
a capture (a frame with its facts, a packet with the stream it belongs to, a CLCW with
what COP-1 had sent by then...); judges never see raw pcap records and never raise on
what a capture holds. A rule that keeps state (counters, runs of segments) keeps it in
``ctx.state``, which belongs to one run over one capture.

Section references: numbered where the clause is known (132.0-B-3's header fields
§4.1.2.x, 232.0-B-4's §4.1.2.x, 732.0-B-4's §4.1.2.x, 131.0-B-4 §4 Reed-Solomon, §9
synchronization, §10 randomization, 232.1-B-2 §5 FOP-1 and §6 FARM-1), otherwise
coarse: the section and, in brackets, the part of it. 355.0-B-2's: §4.1.1.x the
security header's fields, §4.1.2 the trailer, §4.2 the procedures at each end.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from linkstack.ccsds.cop1.commands import unpack_control_command
from linkstack.ccsds.cuc import LEVEL1_ID, LEVEL2_ID
from linkstack.ccsds.spp import IDLE_APID, SEQ_COUNT_MODULO
from linkstack.errors import DecodeError

if TYPE_CHECKING:
    from linkstack.conformance.passive.observations import (
        AosFrameObs,
        Observation,
        PacketObs,
        TcFrameObs,
        TmFrameObs,
        Unit,
        UslpFrameObs,
        ZoneObs,
    )
    from linkstack.runtime.mission_profile import Profile


class _Skip(enum.Enum):
    """One value: :data:`SKIP` (an enum, so that a type checker tells it from a Fault)."""

    SKIP = "SKIP"

    def __repr__(self) -> str:
        return "SKIP"

    __str__ = __repr__


SKIP: Final = _Skip.SKIP
"""A judge's answer when its rule does not apply to the observation."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One way an observation breaks a rule. ``unit`` overrides the observation's own
    unit (COP-1 rules blame the frame, not the CLCW that revealed it)."""

    field: str
    expected: str
    found: str
    note: str = ""
    unit: Unit | None = None


Outcome = _Skip | None | Fault | list[Fault]
"""What a judge answers: :data:`SKIP`, None (the observation conforms), or its faults."""


class RuleContext:
    """What a judge gets besides the observation: the profile and its own state."""

    __slots__ = ("profile", "state")

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.state: dict[Hashable, int | bool] = {}  # counters, flags: the rule's own


Judge = Callable[["Observation", RuleContext], Outcome]


@dataclass(frozen=True)
class Rule:
    id: str
    standard: str  # "CCSDS 132.0-B-3"
    section: str  # "§4.1.2.6 (virtual channel frame count)"
    statement: str
    layer: str  # "spp", "tm", "aos", "tc", "cltu", "cadu", "cop1", "link"
    on: tuple[str, ...]  # the observation kinds it judges
    subject: str  # what it needs, for "no ... in the capture"
    judge: Judge = field(repr=False, compare=False)
    na: str = ""  # why it can be inapplicable when its subject is there
    disabled: Callable[[Profile], str | None] | None = field(default=None, repr=False)
    mode: str = "passive"  # "passive": any capture; "active" (to come): needs stimuli
    # observation kinds the capture must also hold, else the rule cannot be judged
    needs: tuple[str, ...] = ()
    cannot: str = ""  # why, when one of them is missing
    # observation kinds that say a frame hid what the rule reads (SDLS without a key):
    # with any of them it cannot judge, unless it failed; ``hidden`` says why ({n}: how many)
    hidden_by: tuple[str, ...] = ()
    hidden: str = ""

    @property
    def reference(self) -> str:
        return f"{self.standard} {self.section}"

    def disabled_by(self, profile: Profile) -> str | None:
        return self.disabled(profile) if self.disabled is not None else None


CATALOGUE: list[Rule] = []


def rule(
    rule_id: str,
    standard: str,
    section: str,
    statement: str,
    layer: str,
    on: str | tuple[str, ...],
    subject: str,
    na: str = "",
    disabled: Callable[[Profile], str | None] | None = None,
    needs: tuple[str, ...] = (),
    cannot: str = "",
    hidden_by: tuple[str, ...] = (),
    hidden: str = "",
) -> Callable[[Judge], Judge]:
    def register(judge: Judge) -> Judge:
        CATALOGUE.append(
            Rule(
                rule_id,
                standard,
                section,
                statement,
                layer,
                (on,) if isinstance(on, str) else on,
                subject,
                judge,
                na,
                disabled,
                needs=needs,
                cannot=cannot,
                hidden_by=hidden_by,
                hidden=hidden or SEALED,
            )
        )
        return judge

    return register


def _hex(value: int, width: int) -> str:
    return f"{value:#0{width + 2}x}"


def _ids(values: object) -> str:
    return f"one of {values}"


SPP = "CCSDS 133.0-B-2"
TM = "CCSDS 132.0-B-3"
AOS = "CCSDS 732.0-B-4"
TC = "CCSDS 232.0-B-4"
COP1 = "CCSDS 232.1-B-2"
TM_CODING = "CCSDS 131.0-B-4"
TC_CODING = "CCSDS 231.0-B-4"
CUC = "CCSDS 301.0-B-4"
SDLS = "CCSDS 355.0-B-2"
USLP = "CCSDS 732.1-B-2"
USLP_FRAMES = ("uslp_frame", "uslp_fdu")  # downlink and laser frames; the uplink's FDUs
TC_SENT = "tc_frame|uslp_fdu"  # COP-1's frames sent: TC frames, or FDUs in USLP frames

# frames whose data field SDLS encrypted and no key opened (HiddenObs kinds), per link
SEALED_TC, SEALED_TM, SEALED_AOS = ("sealed_tc",), ("sealed_tm",), ("sealed_aos",)
SEALED_USLP = ("sealed_uslp",)  # USLP frames of any link
SEALED_ANY = SEALED_TC + SEALED_TM + SEALED_AOS + SEALED_USLP
SEALED = (
    "{n} frame(s) hold a data field that SDLS encrypted, and no key was given (--keys "
    "KEYFILE): what they carry was not read"
)


# -- the link: who sends what to whom --------------------------------------------------------------


@rule(
    "LINK-DIR-01",
    "CCSDS 232.0-B-4 / 132.0-B-3 / 732.0-B-4",
    "§2 (overview: TC goes to a spacecraft, TM comes from one)",
    "CLTUs and TC frames go to a spacecraft, TM CADUs and frames come from one, and AOS "
    "units and USLP frames have a spacecraft at one end (node names as the profile's [nodes] "
    "classify them).",
    "link",
    "unit",
    "units of a frame layer",
    na="no node of a frame unit is named in the profile's [nodes] (addresses only?)",
)
def _link_direction(o, ctx):
    layer = o.unit.layer
    src, dst = o.src_side, o.dst_side
    if layer in ("cltu", "tc_frame"):
        if dst is None:
            return SKIP
        return None if dst == "space" else Fault("destination", "a spacecraft", o.unit.dst)
    if layer in ("tm_cadu", "tm_frame"):
        if src is None:
            return SKIP
        return None if src == "space" else Fault("source", "a spacecraft", o.unit.src)
    if layer in ("aos_cadu", "aos_frame", "uslp_frame"):
        if src is None and dst is None:
            return SKIP
        if "space" in (src, dst):
            return None
        return Fault("ends", "a spacecraft at one end", f"{o.unit.src} -> {o.unit.dst}")
    return SKIP


# -- Space Packets (133.0-B-2) ---------------------------------------------------------------------


@rule(
    "SPP-VER-01",
    SPP,
    "§4.1 (packet primary header: packet version number)",
    "The packet version number is 000.",
    "spp",
    "packet",
    "Space Packets",
    hidden_by=SEALED_ANY,
)
def _spp_version(o, ctx):
    if o.version is None:
        return SKIP
    if o.version != 0:
        return Fault("version", "000", f"{o.version:03b}", o.where_text)
    return None


@rule(
    "SPP-LEN-01",
    SPP,
    "§4.1 (packet primary header: packet data length)",
    "The packet data length field is the octet count of the packet data field minus one: "
    "a captured packet holds exactly 6 + field + 1 octets.",
    "spp",
    "packet",
    "Space Packets",
    na="no packet was captured on its own (packets inside frames are cut by their length)",
)
def _spp_length(o, ctx):
    if not o.whole_unit:
        return SKIP
    if len(o.raw) < 6:
        return Fault("primary_header", "6 octets", f"{len(o.raw)} octets in the unit")
    want = 7 + o.length_field
    if want != len(o.raw):
        return Fault(
            "data_length", f"{len(o.raw) - 7} ({len(o.raw)}-octet unit)", f"{o.length_field}"
        )
    return None


def _same_run(o: PacketObs, ctx: RuleContext, key: Hashable) -> bool:
    """Whether no frame of the packet's stream was lost since ``key``'s state was last
    set: a receiver follows counts and segments only across frames it received."""
    mark = ("losses", key)
    same = ctx.state.get(mark, 0) == o.losses
    ctx.state[mark] = o.losses
    return same


@rule(
    "SPP-SEQ-01",
    SPP,
    "§4.1 (packet primary header: packet sequence count)",
    "Each APID's packet sequence count increases by one (modulo 16384) from packet to "
    "packet of one source (idle packets excepted); where the profile declares one counter "
    "shared by the APIDs ([mission] packet_counter, SPP-SEQ-02's departure), that counter.",
    "spp",
    "packet",
    "Space Packets",
    na="only idle packets",
    hidden_by=SEALED_ANY,
)
def _spp_sequence(o, ctx):
    if o.version is None or o.apid == IDLE_APID or o.idle_shaped:
        return SKIP
    shared = ctx.profile.mission.packet_counter == "shared"
    key = (o.stream, "shared" if shared else o.apid)
    expected = ctx.state.get(key) if _same_run(o, ctx, key) else None
    ctx.state[key] = (o.seq_count + 1) % SEQ_COUNT_MODULO
    if expected is None:
        return None
    if o.seq_count != expected:
        return Fault("seq_count", str(expected), str(o.seq_count), f"APID {o.apid} {o.where_text}")
    return None


@rule(
    "SPP-SEQ-02",
    SPP,
    "§4.1 (packet primary header: packet sequence count, one per APID)",
    "The packet sequence count is the APID's own: a packet's count does not continue "
    "another APID's in place of its own (one counter shared by the APIDs is a departure, "
    "even where a mission's profile declares it).",
    "spp",
    "packet",
    "Space Packets",
    na="only idle packets",
    hidden_by=SEALED_ANY,
)
def _spp_own_counter(o, ctx):
    if o.version is None or o.apid == IDLE_APID or o.idle_shaped:
        return SKIP
    own_key, last_key = (o.stream, "own", o.apid), (o.stream, "last")
    own = ctx.state.get(own_key) if _same_run(o, ctx, own_key) else None
    # (seq + 1) << 11 | APID of the stream's last packet
    last = ctx.state.get(last_key) if _same_run(o, ctx, last_key) else None
    ctx.state[own_key] = (o.seq_count + 1) % SEQ_COUNT_MODULO
    ctx.state[last_key] = ((o.seq_count + 1) % SEQ_COUNT_MODULO) << 11 | o.apid
    if own is None or last is None or o.seq_count == own:
        return None
    other, follows = int(last) & 0x7FF, int(last) >> 11
    if other != o.apid and o.seq_count == follows:
        return Fault(
            "seq_count",
            f"{own} (APID {o.apid}'s own count)",
            f"{o.seq_count}, continuing APID {other}'s",
            "one sequence counter shared by the APIDs"
            + (
                " (the profile declares it)"
                if ctx.profile.mission.packet_counter == "shared"
                else ""
            ),
        )
    return None


_SEQ_FLAG_NAMES = {0: "continuation (00)", 1: "first (01)", 2: "last (10)", 3: "unsegmented (11)"}


@rule(
    "SPP-SEG-01",
    SPP,
    "§4.1 (packet primary header: sequence flags)",
    "An APID's sequence flags run first (01), continuation (00)..., last (10), or are "
    "unsegmented (11): no continuation or last outside a run, no first or unsegmented inside one.",
    "spp",
    "packet",
    "Space Packets",
    na="only idle packets",
    hidden_by=SEALED_ANY,
)
def _spp_segments(o, ctx):
    if o.version is None or o.apid == IDLE_APID or o.idle_shaped:
        return SKIP
    key = (o.stream, o.apid)
    # None: not seen yet (or not since frames were lost); True: inside a run; False: outside
    state = ctx.state.get(key) if _same_run(o, ctx, key) else None
    flags = o.seq_flags
    ctx.state[key] = flags in (0, 1)  # a first or continuation leaves a run open
    name = _SEQ_FLAG_NAMES[flags]
    if state is True and flags in (1, 3):
        return Fault("seq_flags", "continuation (00) or last (10)", name, f"APID {o.apid}")
    if state is False and flags in (0, 2):
        return Fault("seq_flags", "first (01) or unsegmented (11)", name, f"APID {o.apid}")
    return None


@rule(
    "SPP-IDLE-01",
    SPP,
    "§4.1 (APID 11111111111 is reserved for idle packets)",
    "Idle data travels on APID 2047: a packet that completes a frame with one repeated "
    "octet on another APID is idle data on the wrong APID.",
    "spp",
    "packet",
    "packets that end a frame",
    na="no packet ends exactly at the end of a frame data field",
    hidden_by=SEALED_ANY,
)
def _spp_idle_apid(o, ctx):
    if o.version is None or not o.ends_zone:
        return SKIP
    if o.idle_shaped:
        fill = o.raw[-1]
        return Fault("apid", f"{IDLE_APID} (idle)", str(o.apid), f"fill of {fill:#04x} octets")
    return None


@rule(
    "SPP-IDLE-02",
    SPP,
    "§4.1 (packet primary header: secondary header flag of idle packets)",
    "An idle packet (APID 2047) has no secondary header: its flag is 0.",
    "spp",
    "packet",
    "idle packets",
    na="no idle packet (APID 2047)",
    hidden_by=SEALED_ANY,
)
def _spp_idle_secondary(o, ctx):
    if o.version is None or o.apid != IDLE_APID:
        return SKIP
    return Fault("sec_header_flag", "0", "1") if o.sec_flag else None


@rule(
    "CUC-01",
    CUC,
    "§3.2 (CCSDS unsegmented time code)",
    "Where the profile says packets carry a CUC time code, a packet with the secondary "
    "header flag starts its data field with one: P-field id 001 or 010 and the profile's "
    "octet counts, and the whole T-field.",
    "spp",
    "packet",
    "Space Packets",
    na="no packet with the secondary header flag set",
    disabled=lambda p: (
        None
        if p.spp.time_code == "cuc"
        else "the profile says packets carry no CUC time code ([spp] time_code)"
    ),
    hidden_by=SEALED_ANY,
)
def _cuc(o, ctx):
    if o.version is None or not o.sec_flag or o.apid == IDLE_APID:
        return SKIP
    spp = ctx.profile.spp
    body = o.raw[6:]
    coarse, fine, pos = spp.cuc_coarse_octets, spp.cuc_fine_octets, 0
    if spp.cuc_pfield:
        if not body:
            return Fault("pfield", "a P-field octet", "an empty data field")
        p1 = body[0]
        code_id = (p1 >> 4) & 0b111
        if code_id not in (LEVEL1_ID, LEVEL2_ID):
            return Fault("pfield.time_code_id", "001 or 010", f"{code_id:03b}")
        got_c, got_f = ((p1 >> 2) & 3) + 1, p1 & 3
        pos = 1
        if p1 & 0x80:
            if len(body) < 2:
                return Fault("pfield", "a second octet (extension flag set)", "none")
            got_c += (body[1] >> 5) & 3
            got_f += (body[1] >> 2) & 7
            pos = 2
        if (got_c, got_f) != (coarse, fine):
            return Fault(
                "pfield", f"{coarse}+{fine} octets (the profile)", f"{got_c}+{got_f} octets"
            )
    if len(body) < pos + coarse + fine:
        return Fault("t_field", f"{coarse + fine} octets", f"{max(len(body) - pos, 0)} octets")
    return None


# -- TM frames (132.0-B-3) -------------------------------------------------------------------------


def _tm_valid(o: TmFrameObs) -> bool:
    return o.version == 0


@rule(
    "TM-LEN-01",
    TM,
    "§4.1.1 (constant frame length on a physical channel)",
    "Every TM frame has the channel's frame length.",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_length(o, ctx):
    want = ctx.profile.tm.frame_length
    return None if o.length == want else Fault("length", f"{want} octets", f"{o.length} octets")


@rule(
    "TM-VER-01",
    TM,
    "§4.1.2.2 (transfer frame version number)",
    "The transfer frame version number is 00.",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_version(o, ctx):
    if o.version is None:
        return SKIP
    return None if o.version == 0 else Fault("version", "00", f"{o.version:02b}")


@rule(
    "TM-ID-01",
    TM,
    "§4.1.2.2-§4.1.2.3 (spacecraft and virtual channel identifiers)",
    "The SCID and VCID are ones the profile expects (managed parameters).",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_ids(o, ctx):
    if not _tm_valid(o):
        return SKIP
    tm = ctx.profile.tm
    if o.scid not in tm.scids:
        return Fault("scid", _ids(tm.scids), str(o.scid))
    if o.vcid not in tm.vcids:
        return Fault("vcid", _ids(tm.vcids), str(o.vcid))
    return None


@rule(
    "TM-OCF-01",
    TM,
    "§4.1.2.4 (OCF flag), §4.1.5 (operational control field)",
    "The OCF flag says the OCF is there exactly when the channel carries one.",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_ocf_flag(o, ctx):
    if not _tm_valid(o):
        return SKIP
    want = ctx.profile.tm.ocf != "none"
    if o.ocf_flag != want:
        return Fault("ocf_flag", str(int(want)), str(int(o.ocf_flag)), f"[tm] ocf = {want}")
    return None


@rule(
    "TM-DFS-01",
    TM,
    "§4.1.2.7 (data field status), §4.1.3 (secondary header)",
    "With the synchronization flag 0 the packet order flag is 0 and the segment length id "
    "11; the secondary header flag, the secondary header's version (00) and length are the "
    "channel's.",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_data_field_status(o, ctx):
    if not _tm_valid(o):
        return SKIP
    if not o.sync_flag:
        if o.order_flag:
            return Fault("packet_order_flag", "0", "1")
        if o.seg_id != 0b11:
            return Fault("segment_length_id", "11", f"{o.seg_id:02b}")
    sec_len = ctx.profile.tm.secondary_header_len
    if o.sec_flag != bool(sec_len):
        return Fault("secondary_header_flag", str(int(bool(sec_len))), str(int(o.sec_flag)))
    if o.sec_flag:
        if o.sec_ident is None:
            return Fault("secondary_header", f"{sec_len + 1} octets", "no room")
        if o.sec_ident >> 6:
            return Fault("secondary_header.version", "00", f"{o.sec_ident >> 6:02b}")
        if o.sec_ident & 0x3F != sec_len:
            return Fault("secondary_header.length", str(sec_len), str(o.sec_ident & 0x3F))
    return None


def _count_rule(
    o: TmFrameObs | AosFrameObs | UslpFrameObs,
    ctx: RuleContext,
    key: Hashable,
    value: int,
    modulo: int,
    field_name: str,
    what: str,
) -> Fault | None:
    expected = ctx.state.get(key)
    ctx.state[key] = (value + 1) % modulo
    if expected is None:
        return None
    if value != expected:
        return Fault(field_name, str(expected), str(value), what)
    return None


@rule(
    "TM-MC-01",
    TM,
    "§4.1.2.5 (master channel frame count)",
    "The master channel frame count increases by one (modulo 256) from frame to frame of "
    "a master channel.",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_mc_count(o, ctx):
    if not _tm_valid(o):
        return SKIP
    return _count_rule(o, ctx, o.mc_key, o.mc_count, 256, "mc_count", f"SCID {o.scid}")


@rule(
    "TM-VC-01",
    TM,
    "§4.1.2.6 (virtual channel frame count)",
    "Each virtual channel's frame count increases by one (modulo 256) from frame to frame; "
    "a count that does not move is a failure.",
    "tm",
    "tm_frame",
    "TM frames",
)
def _tm_vc_count(o, ctx):
    if not _tm_valid(o):
        return SKIP
    what = f"SCID {o.scid}, VC {o.vcid}"
    return _count_rule(o, ctx, o.vc_key, o.vc_count, 256, "vc_count", what)


@rule(
    "TM-FECF-01",
    TM,
    "§4.1.6 (frame error control field)",
    "The last two octets are the CRC-16-CCITT of the rest of the frame.",
    "tm",
    "tm_frame",
    "TM frames",
    disabled=lambda p: None if p.tm.fecf else "the profile says TM frames have no FECF",
)
def _tm_fecf(o, ctx):
    return _fecf(o)


def _fecf(o: TmFrameObs | AosFrameObs | TcFrameObs | UslpFrameObs) -> Outcome:
    if o.fecf_ok is None:
        return SKIP
    if not o.fecf_ok:
        return Fault("fecf", o.fecf_want, o.fecf_got)
    return None


def _zone_fhp(o: ZoneObs, expected_text: str) -> Outcome:
    if o.fhp == 0x7FE or (o.expected is None and not o.out_of_range):
        return SKIP
    if o.out_of_range:
        return Fault("fhp", f"an octet of the {o.zone_len}-octet zone or 0x7FF", _hex(o.fhp, 3))
    if o.fhp != o.expected:
        want = _hex(o.expected, 3) if o.expected == 0x7FF else str(o.expected)
        found = _hex(o.fhp, 3) if o.fhp == 0x7FF else str(o.fhp)
        return Fault("fhp", want, found, expected_text)
    return None


def _zone_idle(o: ZoneObs) -> Outcome:
    if o.fhp == 0x7FE:
        if o.idle_mid_packet:
            return Fault(
                "fhp",
                "the offset where the continuing packet ends, or 0x7FF",
                "0x7fe (only idle data)",
                "a packet from the previous frame continues here and is lost",
            )
        return None
    if o.idle_vc:
        return Fault("fhp", "0x7fe on the idle VC", _hex(o.fhp, 3))
    return SKIP


def _zone_fill(o: ZoneObs) -> Outcome:
    if not o.parsed:
        return SKIP
    if o.zero_fill_at is not None:
        n = o.zone_len - o.zero_fill_at
        return Fault(
            f"data[{o.zero_fill_at}:{o.zone_len}]",
            "an idle packet (APID 2047)",
            f"{n} zero octets",
        )
    return None


_FHP_NOTE = "where the packet continuing from the previous frame of the VC ends"


@rule(
    "TM-FHP-01",
    TM,
    "§4.1.2.7.6 (first header pointer)",
    "The first header pointer is the octet where the first packet starting in the frame "
    "starts (as the packets of the VC's previous frames say), 0x7FF when none starts.",
    "tm",
    "zone_tm",
    "TM frames with packets",
    na="no frame whose packet boundaries the capture shows (each VC's first frame has 0x7FF)",
    hidden_by=SEALED_TM,
)
def _tm_fhp(o, ctx):
    return _zone_fhp(o, _FHP_NOTE)


@rule(
    "TM-FHP-02",
    TM,
    "§4.1.2.7.6 (first header pointer 0x7FE: only idle data)",
    "0x7FE (only idle data) is not used while a packet continues into the frame, and the "
    "frames of the idle virtual channel carry it.",
    "tm",
    "zone_tm",
    "TM frames with packets",
    na="no frame with FHP 0x7FE or on the idle VC",
    hidden_by=SEALED_TM,
)
def _tm_fhp_idle(o, ctx):
    return _zone_idle(o)


@rule(
    "TM-FILL-01",
    TM,
    "§4.2 (packet processing: idle packets complete a frame)",
    "The room after the last packet of a frame holds an idle packet, not zero octets.",
    "tm",
    "zone_tm",
    "TM frames with packets",
    na="no frame whose packets could be followed",
    hidden_by=SEALED_TM,
)
def _tm_fill(o, ctx):
    return _zone_fill(o)


@rule(
    "CLCW-01",
    COP1,
    "§4.2 (communications link control word)",
    "An OCF of a channel that carries CLCWs holds a well-formed one: control word type 0, "
    "version 00, COP in effect 01 (COP-1), spare bits 0.",
    "cop1",
    "clcw",
    "OCFs with CLCWs",
    disabled=lambda p: (
        None
        if "clcw" in (p.tm.ocf, p.aos.ocf)
        else "the profile has no channel whose OCF carries CLCWs"
    ),
)
def _clcw_format(o, ctx):
    w = o.word
    if w >> 31:
        return Fault("control_word_type", "0 (CLCW)", "1", o.ocf.hex())
    if (w >> 29) & 3:
        return Fault("version", "00", f"{(w >> 29) & 3:02b}", o.ocf.hex())
    if (w >> 24) & 3 != 1:
        return Fault("cop_in_effect", "01 (COP-1)", f"{(w >> 24) & 3:02b}", o.ocf.hex())
    if (w >> 16) & 3:
        return Fault("spare (bits 14-15)", "00", f"{(w >> 16) & 3:02b}", o.ocf.hex())
    if w & 0x100:
        return Fault("spare (bit 23)", "0", "1", o.ocf.hex())
    return None


# -- AOS frames (732.0-B-4) ------------------------------------------------------------------------


def _aos_valid(o: AosFrameObs) -> bool:
    return o.version == 1


@rule(
    "AOS-LEN-01",
    AOS,
    "§4.1.1 (constant frame length on a physical channel)",
    "Every AOS frame has the channel's frame length.",
    "aos",
    "aos_frame",
    "AOS frames",
)
def _aos_length(o, ctx):
    want = ctx.profile.aos.frame_length
    return None if o.length == want else Fault("length", f"{want} octets", f"{o.length} octets")


@rule(
    "AOS-VER-01",
    AOS,
    "§4.1.2.2 (transfer frame version number)",
    "The transfer frame version number is 01.",
    "aos",
    "aos_frame",
    "AOS frames",
)
def _aos_version(o, ctx):
    if o.version is None:
        return SKIP
    return None if o.version == 1 else Fault("version", "01", f"{o.version:02b}")


@rule(
    "AOS-ID-01",
    AOS,
    "§4.1.2.2-§4.1.2.3 (spacecraft and virtual channel identifiers)",
    "The SCID and VCID are ones the profile expects (managed parameters).",
    "aos",
    "aos_frame",
    "AOS frames",
)
def _aos_ids(o, ctx):
    if not _aos_valid(o):
        return SKIP
    aos = ctx.profile.aos
    if o.scid not in aos.scids:
        return Fault("scid", _ids(aos.scids), str(o.scid))
    if o.vcid not in aos.vcids:
        return Fault("vcid", _ids(aos.vcids), str(o.vcid))
    return None


@rule(
    "AOS-SIG-01",
    AOS,
    "§4.1.2.5 (signaling field)",
    "The signaling field's spare bits are 00, the VC frame count usage flag is the "
    "channel's, and the count cycle is 0000 when the flag is 0.",
    "aos",
    "aos_frame",
    "AOS frames",
)
def _aos_signaling(o, ctx):
    if not _aos_valid(o):
        return SKIP
    if o.sig_spare:
        return Fault("signaling.spare", "00", f"{o.sig_spare:02b}")
    want = ctx.profile.aos.count_cycle
    if o.count_usage != want:
        return Fault("signaling.count_usage", str(int(want)), str(int(o.count_usage)))
    if not o.count_usage and o.count_cycle:
        return Fault("signaling.count_cycle", "0000", f"{o.count_cycle:04b}")
    return None


@rule(
    "AOS-VC-01",
    AOS,
    "§4.1.2.4 (VC frame count), §4.1.2.5.5 (VC frame count cycle)",
    "Each virtual channel's frame count (extended by the cycle when in use) increases by "
    "one, modulo 2^24 (2^28), from frame to frame.",
    "aos",
    "aos_frame",
    "AOS frames",
)
def _aos_vc_count(o, ctx):
    if not _aos_valid(o):
        return SKIP
    modulo = 1 << (28 if o.count_usage else 24)
    what = f"SCID {o.scid}, VC {o.vcid}"
    return _count_rule(o, ctx, o.vc_key, o.full_count, modulo, "vc_count", what)


@rule(
    "AOS-MPDU-01",
    AOS,
    "§4.1.4.2.2 (M_PDU header)",
    "The M_PDU header's 5 spare bits are 0.",
    "aos",
    "aos_frame",
    "AOS frames with packets",
    na="only idle frames",
    hidden_by=SEALED_AOS,
)
def _aos_mpdu(o, ctx):
    if not _aos_valid(o) or o.mpdu_spare is None:
        return SKIP
    return Fault("mpdu_header.spare", "00000", f"{o.mpdu_spare:05b}") if o.mpdu_spare else None


@rule(
    "AOS-FHP-01",
    AOS,
    "§4.1.4.2.2 (M_PDU first header pointer)",
    "The first header pointer is the octet where the first packet starting in the packet "
    "zone starts (as the VC's previous zones say), 0x7FF when none starts.",
    "aos",
    "zone_aos",
    "AOS frames with packets",
    na="no zone whose packet boundaries the capture shows (each VC's first zone has 0x7FF)",
    hidden_by=SEALED_AOS,
)
def _aos_fhp(o, ctx):
    return _zone_fhp(o, _FHP_NOTE)


@rule(
    "AOS-FHP-02",
    AOS,
    "§4.1.4.2.2 (first header pointer 0x7FE: only idle data)",
    "0x7FE (only idle data) is not used while a packet continues into the zone.",
    "aos",
    "zone_aos",
    "AOS frames with packets",
    na="no zone with FHP 0x7FE",
    hidden_by=SEALED_AOS,
)
def _aos_fhp_idle(o, ctx):
    return _zone_idle(o)


@rule(
    "AOS-FILL-01",
    AOS,
    "§4.2 (packet processing: idle packets complete a zone)",
    "The room after the last packet of a packet zone holds an idle packet, not zero octets.",
    "aos",
    "zone_aos",
    "AOS frames with packets",
    na="no zone whose packets could be followed",
    hidden_by=SEALED_AOS,
)
def _aos_fill(o, ctx):
    return _zone_fill(o)


@rule(
    "AOS-FECF-01",
    AOS,
    "§4.1.6 (frame error control field)",
    "The last two octets are the CRC-16-CCITT of the rest of the frame.",
    "aos",
    "aos_frame",
    "AOS frames",
    disabled=lambda p: None if p.aos.fecf else "the profile says AOS frames have no FECF",
)
def _aos_fecf(o, ctx):
    return _fecf(o)


# -- USLP frames (732.1-B-2) -----------------------------------------------------------------------


def _uslp_valid(o: UslpFrameObs) -> bool:
    return o.version == 0b1100


@rule(
    "USLP-VER-01",
    USLP,
    "§4.1.2 (primary header: transfer frame version number)",
    "The transfer frame version number of a USLP frame is 1100.",
    "uslp",
    USLP_FRAMES,
    "USLP frames",
)
def _uslp_version(o, ctx):
    if o.version is None:
        return SKIP
    return None if o.version == 0b1100 else Fault("version", "1100", f"{o.version:04b}")


@rule(
    "USLP-LEN-01",
    USLP,
    "§4.1.2 (primary header: frame length)",
    "The frame length field is the number of octets of the frame minus one.",
    "uslp",
    USLP_FRAMES,
    "USLP frames",
    na="only truncated frames (they have no frame length field)",
)
def _uslp_length(o, ctx):
    if not _uslp_valid(o) or o.length_field is None:
        return SKIP
    if o.length_field + 1 != o.length:
        return Fault(
            "frame_length", str(o.length - 1), f"{o.length_field} ({o.length} octets captured)"
        )
    return None


@rule(
    "USLP-HDR-01",
    USLP,
    "§4.1.2 (primary header: reserved spare), §4.1.4 (data field header: UPID); "
    "SANA UPID 31 (Only Idle Data frames on VCID 63)",
    "The primary header's reserved spare bits are 00, and a frame of virtual channel 63 "
    "(Only Idle Data) carries idle data: UPID 31.",
    "uslp",
    USLP_FRAMES,
    "USLP frames",
)
def _uslp_header(o, ctx):
    if not _uslp_valid(o) or o.length_field is None:
        return SKIP
    if o.spare:
        return Fault("spare", "00", f"{o.spare:02b}")
    if o.vcid == 63 and o.upid is not None and o.upid != 31:
        return Fault("upid", "31 (idle data) on VC 63", str(o.upid), f"SCID {o.scid}")
    return None


@rule(
    "USLP-VC-01",
    USLP,
    "§4.1.2 (primary header: VC frame count)",
    "Each virtual channel's frame count (sequence-controlled and expedited frames counted "
    "apart) increases by one, modulo its length, from frame to frame of a sender; an "
    "uplink's N(S) is COP-1's to judge (COP-NS-01).",
    "uslp",
    "uslp_frame",
    "USLP frames of a downlink or laser link",
    na="no frame with a VC frame count",
)
def _uslp_vc_count(o, ctx):
    if not _uslp_valid(o) or o.vc_count is None:
        return SKIP
    modulo = 1 << (8 * o.vc_count_len)
    what = f"SCID {o.scid}, VC {o.vcid}" + (" (expedited)" if o.bypass else "")
    return _count_rule(o, ctx, o.vc_key, o.vc_count, modulo, "vc_count", what)


@rule(
    "USLP-FHP-01",
    USLP,
    "§4.1.4 (data field header: first header pointer, rule 000)",
    "A rule 000 frame's first header pointer is the octet where the first packet starting in "
    "its zone starts (as the packets of the MAP's previous frames say), FFFF when none starts.",
    "uslp",
    "zone_uslp",
    "USLP frames of packets spanning frames (rule 000)",
    na="no frame whose packet boundaries the capture shows (each MAP's first frame has FFFF)",
    hidden_by=SEALED_USLP,
)
def _uslp_fhp(o, ctx):
    if o.fhp == 0x7FE or (o.expected is None and not o.out_of_range):
        return SKIP
    if o.out_of_range:
        return Fault("fhp", f"an octet of the {o.zone_len}-octet zone or 0xffff", "past the zone")

    def text(v: int) -> str:
        return "0xffff" if v == 0x7FF else str(v)

    if o.fhp != o.expected:
        assert o.expected is not None
        return Fault("fhp", text(o.expected), text(o.fhp), _FHP_NOTE)
    return None


@rule(
    "USLP-SEG-01",
    USLP,
    "§4.1.4 (data field header: construction rules 100, 101, 110, 111)",
    "The uplink frames of a MAP carry a segmented packet as a start of segment (100), "
    "continuing segments (101) and a last segment (110), one packet at a time; whole packets "
    "are rule 111.",
    "uslp",
    "uslp_fdu",
    "USLP uplink frames of packets",
    na="no first copy of a Type-AD or BD frame of packets",
    hidden_by=SEALED_USLP,
)
def _uslp_segments(o, ctx):
    if o.seg_fault is None or not o.seg_fault:
        return SKIP if o.seg_fault is None else None
    want, got = o.seg_fault
    return Fault("rule", want, got, f"SCID {o.scid}, VC {o.vcid}, MAP {o.map_id}")


@rule(
    "USLP-FECF-01",
    USLP,
    "§4.1.6 (frame error control field)",
    "The last two octets are the CRC-16-CCITT of the rest of the frame.",
    "uslp",
    USLP_FRAMES,
    "USLP frames",
)
def _uslp_fecf(o, ctx):
    return _fecf(o)


# -- TC frames (232.0-B-4) -------------------------------------------------------------------------


def _tc_valid(o: TcFrameObs) -> bool:
    return o.version == 0 and o.frame_type is not None


@rule(
    "TC-VER-01",
    TC,
    "§4.1.2.2 (transfer frame version number)",
    "The transfer frame version number is 00.",
    "tc",
    "tc_frame",
    "TC frames",
)
def _tc_version(o, ctx):
    if o.version is None:
        return SKIP
    return None if o.version == 0 else Fault("version", "00", f"{o.version:02b}")


@rule(
    "TC-HDR-01",
    TC,
    "§4.1.2.3-§4.1.2.5 (bypass flag, control command flag, reserved spare)",
    "The bypass and control command flags make a frame type (AD 00, BD 10, BC 11; never "
    "01) and the two spare bits are 00.",
    "tc",
    "tc_frame",
    "TC frames",
)
def _tc_header(o, ctx):
    if o.version != 0:
        return SKIP
    if o.frame_type is None:
        return Fault("control_command_flag", "0 with bypass 0 (AD)", "1 with bypass 0")
    if o.spare:
        return Fault("spare", "00", f"{o.spare:02b}")
    return None


@rule(
    "TC-ID-01",
    TC,
    "§4.1.2.6-§4.1.2.7 (spacecraft and virtual channel identifiers)",
    "The SCID and VCID are ones the profile expects (managed parameters).",
    "tc",
    "tc_frame",
    "TC frames",
)
def _tc_ids(o, ctx):
    if not _tc_valid(o):
        return SKIP
    tc = ctx.profile.tc
    if o.scid not in tc.scids:
        return Fault("scid", _ids(tc.scids), str(o.scid))
    if o.vcid not in tc.vcids:
        return Fault("vcid", _ids(tc.vcids), str(o.vcid))
    return None


@rule(
    "TC-LEN-01",
    TC,
    "§4.1.2.8 (frame length)",
    "The frame length field is the frame's octet count minus one, and the frame is no "
    "longer than the channel's maximum.",
    "tc",
    "tc_frame",
    "TC frames",
)
def _tc_length(o, ctx):
    if o.length_field is None:
        return Fault("header", "5 octets", f"{o.length} octets")
    if o.length_field + 1 != o.length:
        want = f"{o.length - 1} ({o.length}-octet frame)"
        return Fault("frame_length", want, str(o.length_field))
    limit = ctx.profile.tc.max_frame_length
    if o.length > limit:
        return Fault("frame_length", f"at most {limit} octets (the channel)", f"{o.length}")
    return None


@rule(
    "TC-FECF-01",
    TC,
    "§4.1.4 (frame error control field)",
    "The last two octets are the CRC-16-CCITT of the rest of the frame.",
    "tc",
    "tc_frame",
    "TC frames",
    disabled=lambda p: None if p.tc.fecf else "the profile says TC frames have no FECF",
)
def _tc_fecf(o, ctx):
    return _fecf(o)


@rule(
    "TC-BC-01",
    TC,
    "§4.1.3.3 (control commands, as 232.1-B-2 defines them)",
    "A Type-BC frame carries a control command: Unlock (00) or Set V(R) (82 00 V(R)).",
    "tc",
    "tc_frame",
    "TC frames",
    na="no Type-BC frame",
    hidden_by=SEALED_TC,
)
def _tc_control(o, ctx):
    if not _tc_valid(o) or o.frame_type != "BC" or o.unread:  # unread: SDLS, see hidden_by
        return SKIP
    try:
        unpack_control_command(o.data)
    except DecodeError as exc:
        return Fault("control_command", "00 or 82 00 V(R)", o.data[:8].hex() or "empty", exc.rule)
    return None


@rule(
    "TC-SEG-01",
    TC,
    "§4.1.3.2 (segment header: sequence flags)",
    "On each MAP the segments run first (01), continuation (00)..., last (10); a first or "
    "unsegmented data field never interrupts a run (first transmissions only).",
    "tc",
    "tc_frame",
    "TC frames with a segment header",
    na="no Type-AD or Type-BD frame with a segment header",
    disabled=lambda p: None if p.tc.segment_header else "the profile says TC frames have none",
)
def _tc_segments(o, ctx):
    if o.seg_fault is None:
        return SKIP
    if o.seg_fault:
        return Fault("segment_header.seq_flags", o.seg_fault[0], o.seg_fault[1], f"MAP {o.map_id}")
    return None


@rule(
    "TC-DATA-01",
    TC,
    "§4.1.3 (frame data field: whole packets)",
    "An unsegmented data field, and a segmented one once joined, holds whole Space Packets.",
    "tc",
    "tc_data",
    "TC frames with packets",
    hidden_by=SEALED_TC,
)
def _tc_data(o, ctx):
    rest = o.leftover
    if rest and rest.strip(b"\x00"):
        return Fault(
            f"data[{o.leftover_at}:]",
            "whole Space Packets",
            f"{len(rest)} octets that are not a packet ({rest[:8].hex()}...)",
        )
    return None


@rule(
    "TC-FILL-01",
    TC,
    "§4.1.3 (frame data field), §4.1.2.8 (frame length)",
    "A TC frame is not padded: no zero octets follow its packets (the frame is exactly as "
    "long as its data).",
    "tc",
    "tc_data",
    "TC frames with packets",
    hidden_by=SEALED_TC,
)
def _tc_fill(o, ctx):
    rest = o.leftover
    if rest and not rest.strip(b"\x00"):
        return Fault(f"data[{o.leftover_at}:]", "no padding", f"{len(rest)} zero octets")
    return None


# -- CLTUs (231.0-B-4) -----------------------------------------------------------------------------


@rule(
    "CLTU-START-01",
    TC_CODING,
    "(CLTU: start sequence)",
    "A CLTU starts with the start sequence EB90.",
    "cltu",
    "cltu",
    "CLTUs",
)
def _cltu_start(o, ctx):
    return None if o.start == b"\xeb\x90" else Fault("start_sequence", "eb90", o.start.hex())


@rule(
    "CLTU-BCH-01",
    TC_CODING,
    "(BCH(63,56) codeblock: complemented parity, filler bit 0)",
    "Every codeblock before the tail is a BCH(63,56) codeword with its parity complemented "
    "and the filler bit 0: nothing to correct at the sender.",
    "cltu",
    "cltu",
    "CLTUs",
)
def _cltu_bch(o, ctx):
    if not o.codeblocks:
        return SKIP
    if o.bad_blocks:
        first = o.bad_blocks[0]
        return Fault(
            f"codeblock {first}",
            "valid parity and filler bit 0",
            f"{o.bad_blocks_detail} ({len(o.bad_blocks)} of {o.codeblocks} codeblocks)",
        )
    return None


@rule(
    "CLTU-TAIL-01",
    TC_CODING,
    "(CLTU: tail sequence)",
    "The codeblocks are followed by the tail sequence C5C5C5C5C5C5C579, and the CLTU ends with it.",
    "cltu",
    "cltu",
    "CLTUs",
)
def _cltu_tail(o, ctx):
    if o.tail_at is None:
        return Fault("tail_sequence", "c5c5c5c5c5c5c579", f"none ({o.tail_note})")
    if o.after_tail:
        return Fault("tail_sequence", "the end of the CLTU", f"{o.after_tail} octets after it")
    return None


@rule(
    "CLTU-FILL-01",
    TC_CODING,
    "(CLTU: fill data 0x55)",
    "The last codeblock is completed with fill octets 0x55, and no further codeblock "
    "follows the frame.",
    "cltu",
    "cltu",
    "CLTUs",
    na="no CLTU whose frame end is known",
)
def _cltu_fill(o, ctx):
    if o.frame_len is None:
        return SKIP
    fill = o.data[o.frame_len :]
    if len(fill) >= 7:
        return Fault("codeblocks", "none after the frame's", f"{len(fill)} octets after the frame")
    if fill.strip(b"\x55"):
        return Fault("fill", "0x55 octets", fill.hex())
    return None


@rule(
    "TC-RAND-01",
    TC_CODING,
    "§6 (pseudo-randomizer)",
    "The TC frame in a CLTU is randomized when the channel says so, and only then.",
    "cltu",
    "cltu",
    "CLTUs",
    na="no CLTU whose frame could be told randomized or not",
)
def _tc_randomizer(o, ctx):
    if o.randomized is None:
        return SKIP
    want = ctx.profile.tc.randomize
    if o.randomized != want:
        return Fault("randomization", _rand_text(want), _rand_text(o.randomized))
    return None


def _rand_text(randomized: bool) -> str:
    return "randomized" if randomized else "not randomized"


# -- TM/AOS synchronization and channel coding (131.0-B-4) -----------------------------------------


@rule(
    "CADU-ASM-01",
    TM_CODING,
    "§9 (attached sync marker)",
    "A CADU starts with the attached sync marker 1ACFFC1D, octet-aligned and exact.",
    "cadu",
    "cadu",
    "CADUs",
)
def _cadu_asm(o, ctx):
    asm = o.asm_expected.hex()
    if o.asm_at == 0 and not o.asm_errors and not o.asm_inverted:
        return None
    if o.asm_at is None:
        return Fault("asm", f"{asm} at bit 0", f"{o.head.hex()} (no ASM found)")
    how = f"at bit {o.asm_at}"
    if o.asm_errors:
        how += f" with {o.asm_errors} bits wrong"
    if o.asm_inverted:
        how += ", inverted"
    return Fault("asm", f"{asm} at bit 0", how)


@rule(
    "CADU-LEN-01",
    TM_CODING,
    "§4 (codeblock length), §9 (CADU)",
    "A CADU is the ASM and one codeblock of the channel: frame length + 2E x I octets.",
    "cadu",
    "cadu",
    "CADUs",
)
def _cadu_length(o, ctx):
    if o.length != o.expected_length:
        return Fault("length", f"{o.expected_length} octets", f"{o.length} octets")
    return None


def _rs_disabled(p: Profile) -> str | None:
    if p.tm.rs_e or p.aos.rs_e:
        return None
    return "the profile has no Reed-Solomon code ([tm] and [aos] rs_e = 0)"


@rule(
    "RS-01",
    TM_CODING,
    "§4 (Reed-Solomon code)",
    "Every Reed-Solomon codeword of a codeblock is valid (zero syndromes) at the channel's "
    "E, interleaving depth and basis: a sender has nothing to correct.",
    "cadu",
    "cadu",
    "CADUs",
    na="no CADU with a whole codeblock (or the channel has no Reed-Solomon)",
    disabled=_rs_disabled,
)
def _rs_valid(o, ctx):
    if o.rs_errors is None or o.alt is not None:
        return SKIP
    bad = [(i, n) for i, n in enumerate(o.rs_errors) if n]
    if not bad:
        return None
    i, n = bad[0]
    found = "uncorrectable" if n < 0 else f"{n} symbol(s) to correct"
    return Fault(f"codeword {i}", "zero syndromes", f"{found} ({len(bad)} of {len(o.rs_errors)})")


@rule(
    "RS-02",
    TM_CODING,
    "§4 (interleaving depth, dual basis)",
    "The codeblock is encoded with the channel's E, interleaving depth and symbol basis, "
    "not other parameters that would decode it.",
    "cadu",
    "cadu",
    "CADUs",
    na="no CADU with a whole codeblock (or the channel has no Reed-Solomon)",
    disabled=_rs_disabled,
)
def _rs_params(o, ctx):
    if o.rs_errors is None:
        return SKIP
    if o.alt is not None:
        return Fault("reed_solomon", o.rs_profile_text, o.alt)
    return None


@rule(
    "RAND-01",
    TM_CODING,
    "§10 (pseudo-randomizer)",
    "The codeblock is randomized when the channel says so, and only then: it decodes after "
    "derandomization, not before (or the reverse).",
    "cadu",
    "cadu",
    "CADUs",
    na="no CADU whose codeblock could be told randomized or not",
)
def _cadu_randomizer(o, ctx):
    if o.randomized is None:
        return SKIP
    want = o.randomize_expected
    if o.randomized != want:
        return Fault("randomization", _rand_text(want), _rand_text(o.randomized))
    return None


# -- COP-1 (232.1-B-2), from both directions of a capture ------------------------------------------


def _cop_disabled(p: Profile) -> str | None:
    if "clcw" in (p.tm.ocf, p.aos.ocf):
        return None
    return "the profile has no channel whose OCF carries CLCWs"


@rule(
    "COP-NS-01",
    COP1,
    "§5 (FOP-1: V(S), the transmitter frame sequence number)",
    "New Type-AD frames of a virtual channel carry N(S) = V(S), one more (modulo 256) than "
    "the previous new frame; an N(S) sent before is a retransmission. A Type-BC frame "
    "starts the count afresh.",
    "cop1",
    ("tc_frame", "uslp_fdu"),
    "Type-AD frames",
    na="no Type-AD frame",
)
def _cop_ns(o, ctx):
    cop = o.cop
    if cop is None or o.frame_type != "AD":
        return SKIP
    if cop.kind == "jump":
        return Fault("n_s", str(cop.expected), str(o.ns), f"SCID {o.scid}, VC {o.vcid}")
    return None


@rule(
    "COP-RTX-01",
    COP1,
    "§5 (FOP-1 retransmission from the Sent Queue)",
    "A retransmitted Type-AD frame is the very frame first sent with that N(S).",
    "cop1",
    ("tc_frame", "uslp_fdu"),
    "Type-AD frames",
    na="no Type-AD frame was retransmitted",
    hidden_by=SEALED_TC,
)
def _cop_same_copy(o, ctx):
    cop = o.cop
    if cop is None or cop.kind != "retransmission":
        return SKIP
    if cop.differs:
        return Fault("frame", f"the frame first sent with N(S) = {o.ns}", "a different frame")
    return None


@rule(
    "COP-RTX-02",
    COP1,
    "§5 (FOP-1: acknowledged frames leave the Sent Queue)",
    "No Type-AD frame is retransmitted once a CLCW has acknowledged it (N(R) past it, the CLCW "
    "emitted at least [cop1] ack_latency_s before).",
    "cop1",
    ("tc_frame", "uslp_fdu"),
    "Type-AD frames",
    na="no Type-AD frame was retransmitted",
    disabled=_cop_disabled,
    needs=("clcw",),
    cannot="the capture holds no CLCW (no downlink): what was acknowledged is not known",
)
def _cop_acked(o, ctx):
    cop = o.cop
    if cop is None or cop.kind != "retransmission":
        return SKIP
    if cop.acked is not None:
        t_ack, clcw_unit = cop.acked
        return Fault(
            "n_s",
            "an unacknowledged frame",
            f"N(S) = {o.ns}, acknowledged by the CLCW in unit #{clcw_unit.index} "
            f"{o.units[0].t_s - t_ack:.3f} s earlier",
        )
    return None


@rule(
    "COP-NR-01",
    COP1,
    "§6 (FARM-1: V(R) advances only on accepting the next Type-AD frame)",
    "A CLCW's report value N(R) only advances over Type-AD frames that were sent before it, "
    "and never goes back except to the value of a Set V(R).",
    "cop1",
    "clcw",
    "OCFs with CLCWs",
    na="no well-formed CLCW",
    disabled=_cop_disabled,
    needs=(TC_SENT,),
    cannot="the capture holds no TC frame (no uplink): N(R) cannot be held against the "
    "frames sent, nor a step back against a Set V(R)",
)
def _cop_nr(o, ctx):
    nr = o.nr_facts
    if nr is None:
        return SKIP
    if nr.unsent:
        return Fault(
            "report_value",
            f"at most {nr.limit} (frames sent so far)",
            f"{o.report_value}: acknowledges N(S) {', '.join(map(str, nr.unsent[:4]))}, never sent",
            f"TC VC {o.clcw_vcid}",
        )
    if nr.backwards:
        return Fault(
            "report_value",
            f"{nr.previous} or more",
            f"{o.report_value} (back, no Set V(R))",
            f"TC VC {o.clcw_vcid}",
        )
    return None


@rule(
    "COP-LOCK-01",
    COP1,
    "§5-§6 (FARM-1 Lockout; FOP-1 stops the AD service until it is cleared)",
    "After a CLCW reports Lockout on a virtual channel, no Type-AD frame is sent on it (from "
    "[cop1] ack_latency_s after that CLCW) until a CLCW reports Lockout cleared; only BC "
    "(Unlock) and BD frames.",
    "cop1",
    ("clcw", "tc_frame", "uslp_fdu"),
    "OCFs with CLCWs",
    na="no CLCW reported Lockout",
    disabled=_cop_disabled,
    needs=(TC_SENT,),
    cannot="the capture holds no TC frame (no uplink): what was sent during a Lockout is not known",
)
def _cop_lockout(o, ctx):
    if o.kind == "clcw":
        return None if o.nr_facts is not None and o.lockout else SKIP
    cop = o.cop
    if cop is None or cop.lockout is None:
        return SKIP
    if o.frame_type == "AD":
        t_lock, clcw_unit = cop.lockout
        return Fault(
            "frame_type",
            "BC (Unlock) or BD while FARM-1 reports Lockout",
            f"AD, N(S) = {o.ns}",
            f"Lockout reported by unit #{clcw_unit.index}, {o.units[0].t_s - t_lock:.3f} s earlier",
        )
    return None


# -- SDLS (355.0-B-2): the security header and trailer of protected frames -------------------------


def _sdls_disabled(p: Profile) -> str | None:
    if p.sdls.any:
        return None
    return (
        "no security associations: the profile has no [sdls] (nor --scenario an [sdls] on, "
        "nor the capture's side file any)"
    )


@rule(
    "SDLS-SPI-01",
    SDLS,
    "§4.1.1.2 (security parameter index), §4.2.3 (receiving end: the SA of the SPI)",
    "Every frame of a kind of link and virtual channel under SDLS carries the SPI of a "
    "security association that the profile gives that kind of link on that virtual channel.",
    "sdls",
    "sdls",
    "frames under SDLS",
    na="no frame whose security header could be read",
    disabled=_sdls_disabled,
)
def _sdls_spi(o, ctx):
    opened = o.opened
    if opened.spi is None:  # no security header to read: the frame's own rules say why
        return SKIP
    if opened.refusal == "spi_unknown":
        return Fault("spi", o.known, f"{opened.spi} on VC {opened.vcid}", opened.detail)
    return None


@rule(
    "SDLS-SEQ-01",
    SDLS,
    "§4.1.1.3-§4.1.1.4 (initialization vector, sequence number), §4.2.3 (anti-replay)",
    "Per security association, the anti-replay counter (the sequence number, or the IV of "
    "an AES-GCM association without one) increases from frame to frame of one sender to "
    "one receiver: no value comes twice or goes back, a retransmitted frame's included.",
    "sdls",
    "sdls",
    "frames under SDLS",
    na="no frame of an association with an anti-replay counter (clear ones only)",
    disabled=_sdls_disabled,
)
def _sdls_sequence(o, ctx):
    opened = o.opened
    if opened.counter is None or opened.refusal == "spi_unknown":
        return SKIP
    key = (o.stream, opened.spi)
    value, last = opened.counter, ctx.state.get(key)
    modulus = 1 << (8 * opened.counter_octets)
    # ahead of the last (modulo the field, less than half its range): the codec's rule
    if last is None or 0 < (value - int(last)) % modulus < modulus // 2:
        ctx.state[key] = value
        return None
    name = opened.counter_name
    return Fault(
        name.replace(" ", "_"),
        f"more than {int(last):#x} (the last {name} of SPI {opened.spi})",
        f"{value:#x}",
        "a replayed or repeated counter" if value == last else "a counter that went back",
    )


@rule(
    "SDLS-MAC-01",
    SDLS,
    "§4.1.2 (security trailer: MAC), §4.2.3 (receiving end: verification)",
    "With the keys (--keys), the MAC of every frame of an authenticating association "
    "(auth: AES-CMAC or HMAC-SHA-256; aead: the AES-GCM tag) verifies over what the "
    "association authenticates.",
    "sdls",
    "sdls",
    "frames under SDLS",
    na="no frame of an association with a MAC",
    disabled=_sdls_disabled,
    hidden_by=("sdls_unverified",),
    hidden="{n} frame(s) carry a MAC and no key was given (--keys KEYFILE) to verify it",
)
def _sdls_mac(o, ctx):
    opened = o.opened
    if opened.verified is None:
        return SKIP
    if not opened.verified:
        sa = opened.sa
        kid = sa.akid if sa.service == "auth" else sa.ekid
        what = "MAC" if sa.service == "auth" else "GCM tag"
        return Fault("mac", f"a {what} that verifies with key {kid}", "one that does not")
    return None


@rule(
    "SDLS-PAD-01",
    SDLS,
    "§4.1.1.5 (pad length)",
    "Where a security association has a pad length field, it says 0: the baseline suites "
    "(AES-GCM, AES-CMAC, HMAC-SHA-256) add no padding.",
    "sdls",
    "sdls",
    "frames under SDLS",
    na="no association with a pad length field",
    disabled=_sdls_disabled,
)
def _sdls_pad(o, ctx):
    opened = o.opened
    if opened.sa is None or not opened.sa.pad_len or len(opened.pad) != opened.sa.pad_len:
        return SKIP
    if any(opened.pad):
        return Fault("pad_length", "0 (no suite here pads)", str(int.from_bytes(opened.pad)))
    return None
