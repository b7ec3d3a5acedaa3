"""One captured unit, layer by layer: the observation of what it shows on its own.

Stateless, and never raising on what a unit holds: a field that is not there stays
``None``. What only the units before it can tell (where a zone's first packet starts,
what COP-1 had sent, which frame a carrier pairs with) belongs to :mod:`.analysis`;
these functions hand it what it follows further: the frame inside a carrier
(:class:`Carrier`), the CLCW and the packet zone inside a frame (:class:`Contents`),
the packets inside a TC data field.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from linkstack.ccsds.coding.cltu import (
    START_SEQUENCE,
    TAIL_SEQUENCE,
    CltuEnd,
    DecodeMode,
    bch_encode,
    decode_cltu,
)
from linkstack.ccsds.coding.randomizer import tc_randomize, tm_randomize
from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS, ReedSolomon, RsDecodeResult
from linkstack.ccsds.coding.sync import find_asm, find_frame
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import IDLE_APID
from linkstack.conformance.passive.observations import (
    AosFrameObs,
    CaduObs,
    ClcwObs,
    CltuObs,
    Key,
    PacketObs,
    TcDataObs,
    TcFrameObs,
    TmFrameObs,
    Unit,
    UslpFrameObs,
    ZoneObs,
)
from linkstack.errors import DecodeError
from linkstack.runtime.mission_profile import CaduProfile, Profile

IDLE_SHAPE_MIN_DATA = 4  # a packet of fewer data octets is not taken for idle fill

_TM_HDR = struct.Struct(">HBBH")
_AOS_HDR = struct.Struct(">HHBB")
_TC_HDR = struct.Struct(">HHB")
_SPP_HDR = struct.Struct(">HHH")
_USLP_ID = struct.Struct(">I")
USLP_VERSION = 0b1100
USLP_OID_VCID = 63
USLP_UPID_IDLE = 31
USLP_POINTER_NONE = 0xFFFF
FHP_NO_HEADER, FHP_IDLE_ONLY = 0x7FF, 0x7FE  # TM's and AOS's: what the zone walker follows


@dataclass(slots=True)
class Carrier:
    """A CADU or a CLTU: its observation, the frame found inside it (None: none could
    be told), and what the frame unit it pairs with must match."""

    unit: Unit
    obs: CaduObs | CltuObs
    frame: bytes | None
    candidates: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Contents:
    """What a frame carries that the analysis follows further."""

    clcw: bytes | None = None  # the OCF, when the channel puts a CLCW there
    zone: ZoneObs | None = None  # the data field or packet zone, when it holds packets
    zone_data: bytes = b""


NOTHING = Contents()


# -- helpers ---------------------------------------------------------------------------------------


def _fecf_fields(obs: TmFrameObs | AosFrameObs | TcFrameObs | UslpFrameObs, data: bytes) -> None:
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


def _clean(result: RsDecodeResult) -> bool:
    return result.frame is not None and not any(result.corrected)


def is_uslp(data: bytes) -> bool:
    """Whether ``data`` starts as a USLP frame (version 1100)."""
    return len(data) > 0 and data[0] >> 4 == USLP_VERSION


def _uslp_length(data: bytes) -> int | None:
    """A (non-truncated) USLP frame's length as its length field says, else None."""
    if len(data) < 7 or not is_uslp(data) or data[3] & 1:
        return None
    return ((data[4] << 8) | data[5]) + 1


def _tc_plausible(data: bytes, p: Profile) -> int | None:
    """The frame length if ``data`` starts with a believable TC frame (or USLP frame:
    COP-1's FDUs over USLP), else None."""
    uslp = _uslp_length(data)
    if uslp is not None:
        good = 7 < uslp <= len(data) and len(data) - uslp < 7
        return uslp if good and (not p.tc.fecf or crc16_ccitt(data[:uslp]) == 0) else None
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
    if len(frame) < 6 or (frame[0] >> 6 != version and not is_uslp(frame)):
        return False
    return crc16_ccitt(frame) == 0 if ch.fecf else True


# -- CADUs (131.0-B-4) -----------------------------------------------------------------------------


def cadu_carrier(unit: Unit, profile: Profile) -> Carrier:
    """A TM or AOS CADU: its ASM, how its codeblock was coded, the frame inside."""
    channel = "tm" if unit.layer == "tm_cadu" else "aos"
    ch = profile.tm if channel == "tm" else profile.aos
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
        frame = _codeblock(obs, block, ch, 0 if channel == "tm" else 1)
    return Carrier(unit, obs, frame, (frame,) if frame is not None else ())


def _codeblock(obs: CaduObs, block: bytes, ch: CaduProfile, version: int) -> bytes | None:
    """The frame in ``block``, trying the profile's coding first, then the other
    randomization and the other Reed-Solomon codes of the same length (``obs`` says
    which one decoded it)."""
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


# -- CLTUs (231.0-B-4) -----------------------------------------------------------------------------


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


def cltu_carrier(unit: Unit, profile: Profile) -> Carrier:
    """A CLTU: its start sequence, codeblocks and tail, whether its frame was
    randomized, the frame inside (its length field tells where it ends)."""
    data = unit.data
    obs = CltuObs((unit,), data[:2])
    body = data[2:]
    raw = _clean_cltu(obs, body)
    if raw is None:
        raw = _scan_cltu(obs, body)
    obs.data = raw
    want = profile.tc.randomize
    as_sent = {want: tc_randomize(raw) if want else raw}
    as_sent[not want] = raw if want else tc_randomize(raw)
    len_want = _tc_plausible(as_sent[want], profile)
    len_other = _tc_plausible(as_sent[not want], profile)
    if (len_want is None) != (len_other is None):
        obs.randomized = want if len_want is not None else not want
    chosen = as_sent[want if obs.randomized is None else obs.randomized]
    frame = None
    uslp = _uslp_length(chosen)
    if uslp is not None:  # COP-1's FDU in a USLP frame: its length field says where it ends
        if 7 < uslp <= len(chosen):
            frame = chosen[:uslp]
            obs.frame_len = uslp
    elif len(chosen) >= 5:
        length = ((chosen[2] << 8 | chosen[3]) & 0x3FF) + 1
        if 5 < length <= len(chosen):
            frame = chosen[:length]
            obs.frame_len = length
    candidates = (chosen,) if obs.randomized is not None else (as_sent[want], as_sent[not want])
    return Carrier(unit, obs, frame, candidates)


# -- frames: TM (132.0-B-3), AOS (732.0-B-4), TC (232.0-B-4) ---------------------------------------


def tm_frame(
    data: bytes, units: tuple[Unit, ...], ends: tuple[str, str], profile: Profile
) -> tuple[TmFrameObs, Contents]:
    """A TM frame's header and trailer; ``ends`` (the sending and receiving sides) key
    its master and virtual channels. A frame of another version carries nothing."""
    tm = profile.tm
    n = len(data)
    obs = TmFrameObs(units, n)
    if n < 6:
        return obs, NOTHING
    w0, mc, vc, dfs = _TM_HDR.unpack_from(data)
    obs.version = w0 >> 14
    obs.scid, obs.vcid, obs.ocf_flag = (w0 >> 4) & 0x3FF, (w0 >> 1) & 7, bool(w0 & 1)
    obs.mc_count, obs.vc_count = mc, vc
    obs.sec_flag, obs.sync_flag = bool(dfs & 0x8000), bool(dfs & 0x4000)
    obs.order_flag, obs.seg_id, obs.fhp = bool(dfs & 0x2000), (dfs >> 11) & 3, dfs & 0x7FF
    obs.mc_key = ("tm", *ends, obs.scid)
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
    if obs.version != 0:
        return obs, NOTHING
    clcw = ocf if tm.ocf == "clcw" else None
    if obs.sync_flag or end - pos < 1:  # synchronization flag 1: no packet zone to follow
        return obs, Contents(clcw)
    zone = ZoneObs("zone_tm", units, obs.fhp, end - pos, idle_vc=obs.vcid == tm.idle_vcid)
    return obs, Contents(clcw, zone, data[pos:end])


def aos_frame(
    data: bytes, units: tuple[Unit, ...], ends: tuple[str, str], profile: Profile
) -> tuple[AosFrameObs, Contents]:
    """An AOS frame's header, M_PDU header and trailer; ``ends`` key its virtual
    channel. A frame of another version carries nothing."""
    aos = profile.aos
    n = len(data)
    obs = AosFrameObs(units, n)
    if n < 6:
        return obs, NOTHING
    w0, count_hi, count_lo, sig = _AOS_HDR.unpack_from(data)
    obs.version = w0 >> 14
    obs.scid, obs.vcid = (w0 >> 6) & 0xFF, w0 & 0x3F
    obs.sig_spare, obs.count_usage, obs.count_cycle = (sig >> 4) & 3, bool(sig & 0x40), sig & 15
    count = (count_hi << 8) | count_lo
    obs.full_count = (obs.count_cycle << 24 | count) if obs.count_usage else count
    obs.vc_key = ("aos", *ends, obs.scid, obs.vcid)
    if aos.fecf:
        _fecf_fields(obs, data)
    end = n - (2 if aos.fecf else 0) - (4 if aos.ocf != "none" else 0)
    start = 6 + aos.insert_zone_len
    ocf = data[end : end + 4] if aos.ocf == "clcw" and end >= 6 else None
    packet_zone = obs.version == 1 and obs.vcid != aos.idle_vcid and end - start >= 3
    if packet_zone:
        head = (data[start] << 8) | data[start + 1]
        obs.mpdu_spare = head >> 11
    if obs.version != 1:
        return obs, NOTHING
    clcw = ocf if ocf is not None and len(ocf) == 4 else None
    if not packet_zone:
        return obs, Contents(clcw)
    fhp = ((data[start] << 8) | data[start + 1]) & 0x7FF
    zone = ZoneObs("zone_aos", units, fhp, end - start - 2)
    return obs, Contents(clcw, zone, data[start + 2 : end])


def tc_frame(data: bytes, units: tuple[Unit, ...], profile: Profile) -> TcFrameObs:
    """A TC frame's header, segment header, data field and FECF."""
    p = profile
    n = len(data)
    obs = TcFrameObs(units, n)
    if n < 5:
        return obs
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
    return obs


def uslp_frame(
    data: bytes, units: tuple[Unit, ...], ends: tuple[str, str], fecf: bool = True
) -> tuple[UslpFrameObs, Contents]:
    """A USLP frame's primary header, data field header and trailer; ``ends`` key its
    virtual channel. An uplink's (its SCID names the destination) is COP-1's FDU: its
    type and N(S) (the VC frame count) and its data zone, as a TC frame's. A rule 000
    frame of packets has its zone (the pointer as TM's: 0x7FF when no header starts,
    0x7FE for idle data); the OCF is a CLCW."""
    n = len(data)
    obs = UslpFrameObs("uslp_frame", units, n)
    if n < 4:
        return obs, NOTHING
    (w,) = _USLP_ID.unpack_from(data)
    obs.version = w >> 28
    obs.scid, obs.dest = (w >> 12) & 0xFFFF, bool(w & 0x800)
    obs.vcid, obs.map_id, obs.truncated = (w >> 5) & 0x3F, (w >> 1) & 0xF, bool(w & 1)
    if obs.dest:
        obs.kind = "uslp_fdu"
    if fecf:
        _fecf_fields(obs, data)
    end = n - (2 if fecf else 0)
    pos = 4
    if not obs.truncated:
        if n < 7:
            return obs, NOTHING
        obs.length_field = (data[4] << 8) | data[5]
        flags = data[6]
        obs.bypass, obs.command = bool(flags & 0x80), bool(flags & 0x40)
        obs.spare, obs.ocf_flag, obs.vc_count_len = (flags >> 4) & 3, bool(flags & 8), flags & 7
        pos = 7 + obs.vc_count_len
        if pos > end:
            return obs, NOTHING
        obs.vc_count = int.from_bytes(data[7:pos], "big") if obs.vc_count_len else None
    obs.vc_key = ("uslp", *ends, obs.scid, obs.vcid, obs.bypass)
    ocf = None
    if obs.ocf_flag and end - 4 >= pos:
        end -= 4
        ocf = data[end : end + 4]
    if obs.dest:  # COP-1's FDU: (bypass, control command) -> AD, BD, BC; N(S) the count
        obs.frame_type = {(0, 0): "AD", (1, 0): "BD", (1, 1): "BC"}.get(
            (int(obs.bypass), int(obs.command))
        )
        obs.ns = obs.vc_count or 0
    if pos >= end or obs.version != USLP_VERSION:
        return obs, Contents(ocf)
    obs.rule, obs.upid = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    if (
        not obs.truncated and obs.rule <= 2
    ):  # the rules with a first header / last valid octet pointer
        if pos + 2 > end:
            return obs, Contents(ocf)
        obs.pointer = (data[pos] << 8) | data[pos + 1]
        pos += 2
    obs.data = data[pos:end]
    if obs.rule != 0 or obs.pointer is None or obs.upid not in (0, USLP_UPID_IDLE):
        return obs, Contents(ocf)
    zone_len = end - pos
    if obs.upid == USLP_UPID_IDLE:
        fhp = FHP_IDLE_ONLY
    elif obs.pointer == USLP_POINTER_NONE:
        fhp = FHP_NO_HEADER
    else:  # past the zone (or where TM's special values would read it): out of range
        fhp = obs.pointer if obs.pointer < min(zone_len, FHP_IDLE_ONLY) else 0xFFFF
    zone = ZoneObs("zone_uslp", units, fhp, zone_len, idle_vc=obs.vcid == USLP_OID_VCID)
    return obs, Contents(ocf, zone, obs.data)


def tc_data_field(data: bytes, units: tuple[Unit, ...]) -> tuple[TcDataObs, list[bytes]]:
    """The Space Packets a complete TC data field holds, and what is left after them."""
    pos, n = 0, len(data)
    nonzero_end = len(data.rstrip(b"\x00"))
    packets = []
    while pos < n and pos < nonzero_end and n - pos >= 6:
        end = pos + 7 + int.from_bytes(data[pos + 4 : pos + 6], "big")
        if end > n:
            break
        packets.append(data[pos:end])
        pos = end
    return TcDataObs(units, pos, data[pos:]), packets


# -- CLCWs (232.1-B-2 §4.2) and Space Packets (133.0-B-2) ------------------------------------------


def clcw(ocf: bytes, channel: str, scid: int, units: tuple[Unit, ...]) -> ClcwObs:
    """The CLCW in a frame of ``channel`` ("tm", "aos") of spacecraft ``scid``."""
    word = int.from_bytes(ocf, "big")
    obs = ClcwObs(units, ocf, word, channel, scid)
    obs.report_value, obs.clcw_vcid = word & 0xFF, (word >> 18) & 0x3F
    obs.lockout = bool(word & 0x2000)
    return obs


def is_farm_report(word: int) -> bool:
    """A COP-1 CLCW of version 00 with its spare bits clear: only such a word is taken
    for FARM-1's report (anything else is judged, not believed)."""
    well_formed = not word >> 29 and (word >> 24) & 3 == 1 and not (word >> 16) & 3
    return well_formed and not word & 0x100


def space_packet(
    raw: bytes,
    units: tuple[Unit, ...],
    stream: Key,
    where: str,
    *,
    whole: bool = False,
    ends_zone: bool = False,
) -> PacketObs:
    """A Space Packet's primary header; ``stream`` and ``where`` say what carried it."""
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
    return obs
