"""``linkstack decode --profile NAME|FILE``: one unit decoded with its frame parameters
(FECF, OCF, insert zone, frame length, segment header, and for a CADU the ASM,
randomization and Reed-Solomon code) taken from a mission profile, the same profiles
replay and conform read, instead of the hand flags.

The hand flags still work beside a profile when they agree with it; one that
contradicts it is refused, naming the flag and the profile's key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from linkstack.ccsds import aos, tc, tm
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.mission_profile import AosProfile, Profile, TmProfile, load_profile

# what --profile describes: the profile has a section for each (cadu: its downlink's)
PROFILE_LAYERS = ("tm", "aos", "tc", "cadu")


@dataclass(frozen=True)
class HandFlags:
    """What the command line said; None where the flag was not given."""

    fecf: bool | None = None  # --no-fecf: False
    ocf: bool | None = None  # --ocf: True
    insert_zone_len: int | None = None  # --insert-zone N
    segment_header: bool | None = None  # --no-segment-header: False


@dataclass(frozen=True)
class FrameParameters:
    section: str  # the profile's section they come from: "tm", "aos" or "tc"
    profile: str  # which profile, for the refusals
    fecf: bool
    ocf: bool
    insert_zone_len: int
    segment_header: bool
    count_cycle: bool
    frame_length: int | None  # what a fixed-length frame must be


def parameters(layer: str, profile: Profile, hand: HandFlags) -> FrameParameters:
    """The profile's parameters for ``layer``; ConfigError for a hand flag that
    contradicts them, or a layer a profile does not describe."""
    who = f"profile {profile.source or profile.name}"
    if layer not in PROFILE_LAYERS:
        why = (
            "profiles describe TC, TM and AOS channels, not USLP: give --insert-zone and "
            "--no-fecf by hand"
            if layer == "uslp"
            else f"applies to {', '.join(PROFILE_LAYERS)}, not {layer}"
        )
        raise ConfigError("decode", "--profile", why)
    section = profile.mission.downlink if layer == "cadu" else layer
    if section == "tc":
        ch_tc = profile.tc
        _agree(hand.fecf, ch_tc.fecf, "--no-fecf", who, "[tc] fecf")
        _agree(
            hand.segment_header,
            ch_tc.segment_header,
            "--no-segment-header",
            who,
            "[tc] segment_header",
        )
        _agree_zone(hand.insert_zone_len, 0, who, "[tc] (TC frames have no insert zone)")
        return FrameParameters("tc", who, ch_tc.fecf, False, 0, ch_tc.segment_header, False, None)
    ch: TmProfile | AosProfile = profile.aos if section == "aos" else profile.tm
    ocf = ch.ocf != "none"
    _agree(hand.fecf, ch.fecf, "--no-fecf", who, f"[{section}] fecf")
    if hand.ocf and not ocf:
        raise ConfigError("decode", "--ocf", f'contradicts {who}: [{section}] ocf = "none"')
    zone = ch.insert_zone_len if isinstance(ch, AosProfile) else 0
    _agree_zone(hand.insert_zone_len, zone, who, f"[{section}] insert_zone_len = {zone}")
    cycle = ch.count_cycle if isinstance(ch, AosProfile) else False
    return FrameParameters(section, who, ch.fecf, ocf, zone, True, cycle, ch.frame_length)


def _agree(given: bool | None, wanted: bool, flag: str, who: str, key: str) -> None:
    if given is not None and given != wanted:
        raise ConfigError("decode", flag, f"contradicts {who}: {key} = {str(wanted).lower()}")


def _agree_zone(given: int | None, wanted: int, who: str, key: str) -> None:
    if given is not None and given != wanted:
        raise ConfigError("decode", f"--insert-zone {given}", f"contradicts {who}: {key}")


def decode_cadu(data: bytes, profile: Profile) -> tuple[bytes, str]:
    """The frame in one CADU of the profile's downlink (ASM found, derandomized,
    Reed-Solomon corrected as the profile says) and a line saying how; DecodeError
    naming why not."""
    from linkstack.ccsds.coding.chains import CaduReceiver  # noqa: PLC0415

    ch = profile.downlink
    coding = ch.cadu_coding()
    rx = CaduReceiver(ch.frame_length, coding)
    section = profile.mission.downlink
    if len(data) != rx.cadu_length:
        raise DecodeError(
            "cadu",
            "length",
            f"the unit is {len(data)} octets; profile {profile.source or profile.name}'s CADU is "
            f"{rx.cadu_length} ({len(ch.asm)}-octet ASM and [{section}] frame_length "
            f"{ch.frame_length}{' with its check symbols' if ch.rs_e else ''})",
        )
    got = rx.receive_cadu(data)
    if got is None:
        why = "no ASM" if rx.stats["no_asm"] else "Reed-Solomon uncorrectable"
        raise DecodeError("cadu", "codeblock", why)
    code = (
        f"RS(255,{255 - 2 * ch.rs_e}) x {ch.rs_depth}, "
        f"{'dual' if ch.dual_basis else 'conventional'} basis, "
        f"{got.symbols_corrected} symbols corrected"
        if ch.rs_e
        else "no Reed-Solomon"
    )
    randomized = "derandomized" if ch.randomize else "not randomized"
    return got.frame, f"cadu: ASM {ch.asm.hex()}, {code}, {randomized}"


def decode_frame(layer: str, data: bytes, p: FrameParameters) -> object:
    """A TM, AOS or TC frame under the parameters; DecodeError when refused."""
    if p.frame_length is not None and len(data) != p.frame_length:
        raise DecodeError(
            layer,
            "length",
            f"the frame is {len(data)} octets; {p.profile}'s [{p.section}] frame_length "
            f"is {p.frame_length}",
        )
    if p.section == "tm":
        return tm.TmFrame.unpack(data, p.fecf)
    if p.section == "tc":
        return tc.TcFrame.unpack(data, p.fecf, p.segment_header)
    cfg = aos.AosConfig(
        frame_length=len(data),
        fecf=p.fecf,
        ocf=p.ocf,
        insert_zone_len=p.insert_zone_len,
        count_cycle=p.count_cycle,
    )
    return aos.AosFrame.unpack(data, cfg)


def main(layer: str, data: bytes, spec: str, hand: HandFlags) -> int:
    """Print the unit's fields (0), why it is refused (1), or a usage error (2)."""
    try:
        profile = load_profile(spec)
        params = parameters(layer, profile, hand)
    except ConfigError as exc:
        print(f"linkstack {exc}", file=sys.stderr)
        return 2
    try:
        if layer == "cadu":
            data, how = decode_cadu(data, profile)
            print(how)
        print(decode_frame(layer, data, params))
    except DecodeError as exc:
        print(f"refused: {exc}")
        return 1
    return 0
