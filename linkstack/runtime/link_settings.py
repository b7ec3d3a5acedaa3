"""The ground link's scenario tables: ``[frames]``, ``[coding]`` and ``[cop1]``.

What frames the link carries (TM/TC/AOS or USLP, lengths, segment header, SCIDs), how
they are coded (Reed-Solomon, randomization, the CLTU's decoding), COP-1's windows and
timers; or a mission profile the link runs (``[frames] profile``,
:mod:`linkstack.runtime.link_profile`), whose values are the defaults and which a key
given beside it must agree with.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from linkstack.ccsds.coding.cltu import DecodeMode
from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS
from linkstack.errors import ConfigError
from linkstack.runtime import link_profile
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.frames import MAX_SCID, PROTOCOLS, USLP
from linkstack.runtime.mission_profile import Profile
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tomlcheck import Table


def read_link(
    frames: Table, coding: Table, cop1: Table, base: EmulationConfig, base_dir: Path
) -> tuple[int, UplinkConfig, Profile | None]:
    """``[frames]``, ``[coding]`` and ``[cop1]``: the ground link's frames, coding and
    COP-1 over ``base``'s (a built-in scenario's), as ``(scid_base, uplink, profile)``;
    ``[frames] profile`` (a mission profile) gives the defaults, and a key beside it
    must agree with it."""
    up = base.uplink
    cadu, cltu = up.cadu_coding, up.cltu_coding
    profile = _profile(frames, base_dir)
    # a profile's values are the defaults; a key given beside it must agree
    said = (
        link_profile.scenario_values(profile)
        if profile
        else link_profile.LinkValues(
            tm_frame_length=None,
            tc_max_frame_length=up.tc_max_frame_length,
            tc_segment_header=up.tc_segment_header,
            rs_e=cadu.rs_e or 0,
            rs_depth=cadu.rs_depth,
            randomize=cadu.randomize,
            cltu_mode=cltu.mode.value,
            cltu_randomize=cltu.randomize,
        )
    )
    rs_e = coding.raw("rs_e", said.rs_e)
    if isinstance(rs_e, bool) or rs_e not in (16, 8, 0):
        raise coding.error(
            "rs_e", f"must be 16 (RS(255,223)), 8 (RS(255,239)) or 0 (none), got {rs_e!r}"
        )
    depth = coding.integer("rs_depth", said.rs_depth)
    if depth not in INTERLEAVING_DEPTHS:
        depths = ", ".join(map(str, INTERLEAVING_DEPTHS))
        raise coding.error("rs_depth", f"must be one of {depths}, got {depth}")
    randomize = coding.boolean("randomize", said.randomize)
    modes = tuple(m.value for m in DecodeMode)
    cltu_mode = coding.choice("cltu_mode", said.cltu_mode, modes, "CLTU decoding mode")
    cltu_randomize = coding.boolean("cltu_randomize", said.cltu_randomize)
    coding.done()
    need = ((223 if rs_e == 16 else 239) * depth) if rs_e else None
    protocol = frames.choice("protocol", up.protocol, PROTOCOLS, "frame protocol")
    scid_base = frames.integer("scid_base", base.scid_base, 0, MAX_SCID[USLP])
    tm_default = said.tm_frame_length or need or up.tm_frame_length
    tm_len = frames.integer("tm_frame_length", tm_default, 16, 2048)
    tc_len = frames.integer("tc_max_frame_length", said.tc_max_frame_length, 16, 1024)
    segment_header = frames.boolean("tc_segment_header", said.tc_segment_header)
    frames.done()
    if profile is not None:
        read = link_profile.LinkValues(
            tm_len, tc_len, segment_header, rs_e, depth, randomize, cltu_mode, cltu_randomize
        )
        _agree(frames, coding, profile, read, protocol)
    if need is not None and tm_len != need:
        raise frames.error(
            "tm_frame_length",
            f"must be {need} octets with Reed-Solomon E={rs_e} at depth {depth} "
            f"(the information part of the codeblock), got {tm_len}",
        )
    farm_w = cop1.integer("farm_window", up.farm_window, 2, 254)
    if farm_w % 2:
        raise cop1.error("farm_window", f"must be even, got {farm_w}")
    fop_w = cop1.integer("fop_window", up.fop_window, 1, 255)
    t1_s = cop1.number("t1_s", up.t1_initial_s, 0.0, 3600.0, lo_open=True)
    limit = cop1.integer("transmission_limit", up.transmission_limit, 1, 255)
    timeout_type = cop1.integer("timeout_type", up.timeout_type, 0, 1)
    clcw_s = cop1.number("clcw_interval_s", up.clcw_interval_s, 0.001, 60.0)
    cadu_coding = replace(cadu, rs_e=rs_e or None, rs_depth=depth, randomize=randomize)
    if profile is not None:  # what the scenario has no key for: the basis and the ASM
        cadu_coding = replace(cadu_coding, dual_basis=profile.tm.dual_basis, asm=profile.tm.asm)
    cltu_coding = replace(cltu, randomize=cltu_randomize, mode=DecodeMode(cltu_mode))
    cop1.done()
    with cop1.wrapping(
        {
            "fop_window": "fop_window",
            "farm_window": "farm_window",
            "clcw_interval_s": "clcw_interval_s",
        }
    ):
        return (
            scid_base,
            replace(
                up,
                protocol=protocol,
                tc_max_frame_length=tc_len,
                tc_segment_header=segment_header,
                tm_frame_length=tm_len,
                farm_window=farm_w,
                fop_window=fop_w,
                t1_initial_s=t1_s,
                transmission_limit=limit,
                timeout_type=timeout_type,
                clcw_interval_s=clcw_s,
                cadu_coding=cadu_coding,
                cltu_coding=cltu_coding,
            ),
            profile,
        )


def _profile(frames: Table, base_dir: Path) -> Profile | None:
    """``[frames] profile``: a mission profile the ground link runs, or None."""
    if not frames.has(link_profile.KEY):
        return None
    spec = frames.text(link_profile.KEY, "", empty=False)
    try:
        profile = link_profile.load(spec, base_dir)
    except ConfigError as exc:
        raise frames.error(link_profile.KEY, str(exc)) from None
    why = link_profile.refusals(profile)
    if why:
        raise frames.error(
            link_profile.KEY,
            f"the ground link cannot run profile {profile.name!r}: " + "; ".join(why),
        )
    return profile


def _agree(
    frames: Table,
    coding: Table,
    profile: Profile,
    read: link_profile.LinkValues,
    protocol: str,
) -> None:
    """Keys given beside ``frames.profile`` must say what the profile says."""
    if protocol == USLP:
        raise frames.error(
            "protocol",
            f'"uslp" contradicts frames.profile {profile.name!r}: a profile\'s ground link '
            "is TC frames up and TM frames down",
        )
    said = link_profile.scenario_values(profile)
    tables = {"frames": frames, "coding": coding}
    for sk in link_profile.SCENARIO_KEYS:
        table, value, wanted = tables[sk.table], getattr(read, sk.key), getattr(said, sk.key)
        if table.has(sk.key) and value != wanted:
            raise table.error(
                sk.key,
                f"{value!r} contradicts frames.profile {profile.name!r}, whose "
                f"{sk.profile_key} is {wanted!r}",
            )
