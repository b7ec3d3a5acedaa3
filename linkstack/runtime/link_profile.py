"""A mission profile on the ground link: a scenario's ``[frames] profile = "NAME"`` (or a
path to a profile TOML, relative to the scenario file).

The profile (:mod:`linkstack.runtime.mission_profile`, the same one ``replay``,
``conform`` and ``decode`` take with ``--profile``) sets the link's frames and coding:
its ``[tm]`` frame length, Reed-Solomon code (E, depth, basis), randomization and ASM
become the downlink's; its ``[tc]`` maximum frame length, segment header, randomization
and CLTU mode the uplink's. What the daemons cannot run is refused, with why: a
downlink that is not TM, a TM frame without FARM-1's CLCW in its OCF (COP-1 needs it) or
without an FECF, an ASM the coding cannot take, a profile that says no packet is
linkstack's, and parameters the link does not configure yet (the laser links' AOS,
SDLS, which is the scenario's ``[sdls]``).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.ccsds.tm import IDLE_VCID as TM_IDLE_VCID
from linkstack.errors import LinkstackError
from linkstack.runtime.mission_profile import (
    DEFAULT_PROFILE,
    LINKSTACK_APIDS,
    Profile,
    load_profile,
)

KEY = "profile"  # in [frames]
KEY_PATH = "frames.profile"
MIN_TC_FRAME_LENGTH = 16  # as frames.tc_max_frame_length


class ScenarioKey(NamedTuple):
    """A ``[frames]`` or ``[coding]`` key the profile sets, and what it is in the profile."""

    table: str  # "frames" or "coding"
    key: str
    profile_key: str  # e.g. "[tm] rs_depth"


SCENARIO_KEYS = (
    ScenarioKey("frames", "tm_frame_length", "[tm] frame_length"),
    ScenarioKey("frames", "tc_max_frame_length", "[tc] max_frame_length"),
    ScenarioKey("frames", "tc_segment_header", "[tc] segment_header"),
    ScenarioKey("coding", "rs_e", "[tm] rs_e"),
    ScenarioKey("coding", "rs_depth", "[tm] rs_depth"),
    ScenarioKey("coding", "randomize", "[tm] randomize"),
    ScenarioKey("coding", "cltu_mode", "[tc] cltu_mode"),
    ScenarioKey("coding", "cltu_randomize", "[tc] randomize"),
)


def resolve(spec: str, base_dir: Path) -> str | Path:
    """A built-in profile's name as it is; a path relative to the scenario's folder."""
    if spec.endswith(".toml") or "/" in spec:
        path = Path(spec)
        return path if path.is_absolute() else base_dir / path
    return spec


def load(spec: str, base_dir: Path) -> Profile:
    """The profile, or a :class:`~linkstack.errors.ConfigError` that says why not."""
    return load_profile(resolve(spec, base_dir))


class LinkValues(NamedTuple):
    """The ``[frames]``/``[coding]`` keys a profile sets (named as the scenario names them)."""

    tm_frame_length: int | None  # None: what the Reed-Solomon code needs (no profile)
    tc_max_frame_length: int
    tc_segment_header: bool
    rs_e: int
    rs_depth: int
    randomize: bool
    cltu_mode: str
    cltu_randomize: bool


def scenario_values(p: Profile) -> LinkValues:
    """What the profile makes each ``[frames]``/``[coding]`` key."""
    return LinkValues(
        tm_frame_length=p.tm.frame_length,
        tc_max_frame_length=p.tc.max_frame_length,
        tc_segment_header=p.tc.segment_header,
        rs_e=p.tm.rs_e,
        rs_depth=p.tm.rs_depth,
        randomize=p.tm.randomize,
        cltu_mode=p.tc.cltu_mode,
        cltu_randomize=p.tc.randomize,
    )


def refusals(p: Profile) -> list[str]:
    """Why the daemons' ground link cannot run the profile (empty: it can)."""
    why = []
    if p.mission.downlink != "tm":
        why.append(
            f"its downlink is {p.mission.downlink.upper()} ([mission] downlink), and the "
            "ground link's downlink is TM frames"
        )
    tm, tc = p.tm, p.tc
    if tm.ocf != "clcw":
        why.append(
            f"its TM frames carry {'no OCF' if tm.ocf == 'none' else 'an OCF that is not a CLCW'} "
            "([tm] ocf), and COP-1 needs FARM-1's CLCW in every one"
        )
    if not tm.fecf or not tc.fecf:
        why.append("the ground link's TC and TM frames end with an FECF ([tc]/[tm] fecf = false)")
    if tc.max_frame_length < MIN_TC_FRAME_LENGTH:
        why.append(f"the ground link's TC frames are {MIN_TC_FRAME_LENGTH}..1024 octets long")
    if tm.secondary_header_len:
        why.append(
            "the ground link's TM frames have no secondary header ([tm] secondary_header_len)"
        )
    if tm.idle_vcid != TM_IDLE_VCID:
        why.append(f"the ground link sends idle TM frames on VC {TM_IDLE_VCID} ([tm] idle_vcid)")
    if tm.rs_e:
        k = 255 - 2 * tm.rs_e
        if tm.frame_length != k * tm.rs_depth:
            why.append(
                f"the ground link's Reed-Solomon has no virtual fill: RS(255,{k}) at depth "
                f"{tm.rs_depth} needs [tm] frame_length = {k * tm.rs_depth}, got {tm.frame_length}"
            )
    try:
        CaduCoding(rs_e=tm.rs_e or None, rs_depth=tm.rs_depth, asm=tm.asm)
    except LinkstackError as exc:
        why.append(f"the coding cannot take its ASM {tm.asm.hex()} ([tm] asm: {exc})")
    if not p.mission.linkstack_apids >= LINKSTACK_APIDS:
        why.append(
            "its [mission] linkstack_apids leaves out linkstack's messages "
            f"({', '.join(f'{a:#05x}' for a in sorted(LINKSTACK_APIDS))}), "
            "which the ground link carries"
        )
    if p.spp.time_code != "none":
        why.append("linkstack's packets carry no time code ([spp] time_code)")
    if p.sdls.any:
        why.append("its [sdls] associations: the scenario's [sdls] table says the link's security")
    if _aos_differs(p):
        why.append(
            "its [aos] differs from linkstack's: the laser links' AOS frames are not "
            "set by a profile yet"
        )
    return why


def _aos_differs(p: Profile) -> bool:
    """The laser links run linkstack's AOS frames and coding, whatever the profile says;
    a profile whose ``[aos]`` says otherwise would have conform judge them wrongly."""
    own = load_profile(DEFAULT_PROFILE).aos
    return any(
        getattr(p.aos, name) != getattr(own, name)
        for name in (f.name for f in fields(p.aos))
        if name != "scids"
    )


def id_refusal(
    p: Profile, scids: range, data_vcid: int, flight_vcids: tuple[int, ...]
) -> str | None:
    """Why the satellites' SCIDs or the link's virtual channels are outside what the
    profile expects (conform would call every frame of them wrong), or None."""
    for section, ids in (("tc", p.tc.scids), ("tm", p.tm.scids), ("aos", p.aos.scids)):
        outside = [s for s in scids if s not in ids]
        if outside:
            return (
                f"the satellites' SCIDs {scids.start}..{scids.stop - 1} (frames.scid_base) are "
                f"not all in its [{section}] scids ({ids}): {outside[0]} is not"
            )
    for section, ids, vcids in (
        ("tc", p.tc.vcids, (data_vcid, *flight_vcids)),
        ("tm", p.tm.vcids, (data_vcid, TM_IDLE_VCID, *flight_vcids)),
    ):
        outside = [v for v in vcids if v not in ids]
        if outside:
            return (
                f"VC {outside[0]}, which the ground link uses, is not in its "
                f"[{section}] vcids ({ids})"
            )
    return None
