"""``linkstack replay --profile P FILE`` and ``--detect``: a mission's recording, read as
its profile says (:mod:`linkstack.capture.mission_replay`), and printed.

The I/O around the sans-I/O core: the file (a pcap or pcapng, its units on the
profile's ports; or a raw file of CADUs, frames or a bit stream,
:mod:`linkstack.capture.raw_units`), the report (text, or ``--json``), and
``--export-packets DIR``: per APID the packets back to back (``apid_0x009.bin``) and
an index (``apid_0x009.csv``: the packet's number, its offset in the ``.bin``, its
length, sequence count and flags, and the unit, virtual channel and frame count it
came out of), for a mission's own packet decoders. ``--detect`` guesses the profile
from the data (:mod:`linkstack.capture.mission_detect`) and prints it as TOML.
The profile may be a ``--scenario``'s ``[frames] profile`` (replay_cli chooses it),
whose port plan is read too: a capture of the daemons run under that profile.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from linkstack.capture.mission_replay import MissionPacket, MissionReplay
from linkstack.capture.raw_units import is_pcap, raw_units
from linkstack.capture.reader import CapturedUnit, LinkPorts, PcapReader, PortRole
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.mission_profile import Profile, load_profile

# a daemons' port plan (``--scenario``): port -> its links, as replay_cli reads it
Links = Mapping[int, PortRole | LinkPorts]


def mission_units(
    path: Path,
    profile: Profile,
    links: Links | None = None,
    views: Collection[str] | None = None,
) -> tuple[Iterator[CapturedUnit], str]:
    """The units of ``path`` (pcap or pcapng on the profile's ports, and on ``links``'s,
    a daemons' port plan, of which only the units of ``views`` are read; else a raw file
    as ``[mission] raw_unit`` says) and what the file was."""
    try:
        pcap = is_pcap(path)
        data = b"" if pcap else path.read_bytes()
    except OSError as exc:
        raise ConfigError("replay", str(path), f"cannot read it: {exc.strerror or exc}") from None
    if pcap:
        ports: dict[int, str | PortRole | LinkPorts] = dict(profile.layer_by_port)
        ports.update(links or {})
        reader = PcapReader(path, ports=ports, views=views if links else None)
        where = "the profile's ports" + (" and the port plan" if links else "")
        return iter(reader), f"capture (pcap/pcapng) on {where}"
    return raw_units(data, profile), f"raw file of {profile.mission.raw_unit}s"


def replay_mission(
    path: Path,
    profile: Profile,
    links: Links | None = None,
    views: Collection[str] | None = None,
) -> tuple[MissionReplay, str]:
    """The whole recording through a :class:`MissionReplay`; what the file was."""
    replay = MissionReplay(profile)
    units, what = mission_units(path, profile, links, views)
    try:
        for unit in units:
            replay.feed(unit)
    except DecodeError as exc:  # a pcap that cannot be read further
        replay.refusals.append(f"reading stopped: {exc}")
    replay.finish()  # the frame records still waiting for their CADU
    return replay, what


def report_lines(
    replay: MissionReplay, path: Path, what: str, notes: Iterable[str] = ()
) -> list[str]:
    c = replay.counts
    p = replay.profile
    ch = p.downlink
    out = [f"linkstack replay {path} --profile {p.name} ({what})"]
    out += [f"  {note}" for note in notes]
    coding = (
        f"RS(255,{255 - 2 * ch.rs_e}) x {ch.rs_depth} {'dual' if ch.dual_basis else 'conventional'}"
        f" basis"
        if ch.rs_e
        else "no Reed-Solomon"
    )
    iz = f", insert zone {p.aos.insert_zone_len}" if p.mission.downlink == "aos" else ""
    out.append(
        f"  {p.mission.downlink.upper()} frames of {ch.frame_length} octets{iz}, FECF "
        f"{'yes' if ch.fecf else 'no'}, OCF {ch.ocf}; {coding}, "
        f"{'randomized' if ch.randomize else 'not randomized'}"
    )
    out.append(f"  units     {_counts(c.units)}")
    paired = {k: v for k, v in c.frame_records.items() if k != "alone"}
    if paired:  # frame records beside their CADUs: checked, not decoded again
        alone = c.frame_records["alone"]
        out.append(
            f"  records   {p.mission.downlink}_frame beside its CADU: "
            f"{_counts(paired).replace('_', ' ')}"
            + (f"; {alone:,} with no CADU near, decoded" if alone else "")
        )
    if c.cadu:
        cadu = c.cadu
        out.append(
            f"  cadus     {cadu['cadus']:,} read, {cadu['frames']:,} decoded, no ASM "
            f"{cadu['no_asm']:,}; RS codewords {cadu['rs_codewords']:,}: corrected "
            f"{cadu['rs_codewords_corrected']:,} ({cadu['rs_symbols_corrected']:,} symbols), "
            f"uncorrectable {cadu['rs_codewords_uncorrectable']:,}"
        )
    out.append(f"  frames    {_counts(c.frames)}")
    out.append(f"  scids     {_counts({str(k): v for k, v in c.scids.items()})}")
    for vcid, vc in sorted(c.vcs.items()):
        out.append(
            f"  VC {vcid:<6} {vc.frames:,} frames ({vc.idle:,} idle); frame count gaps "
            f"{vc.gaps:,}, {vc.lost:,} frames missing"
        )
    scope = "one counter shared by the APIDs" if replay.shared else "per APID"
    for apid, a in sorted(c.apids.items()):
        out.append(
            f"  APID {apid:#05x} {a.packets:,} packets, {a.octets:,} octets; sequence gaps "
            f"{a.gaps:,}, {a.lost:,} packets missing"
        )
    out.append(
        f"  packets   {sum(a.packets for a in c.apids.values()):,} on {len(c.apids)} APIDs, "
        f"{c.idle_packets:,} idle, {c.packets_refused:,} refused; sequence count ({scope}) "
        f"gaps {c.counter_gaps:,}, {c.counter_lost:,} missing"
    )
    out.append(f"  clcws     {c.clcws:,}")
    own = p.mission.linkstack_apids
    if own:
        apids = ", ".join(f"{a:#05x}" for a in sorted(own))
        out.append(f"  messages  linkstack's on APIDs {apids}: {_counts(c.messages)}")
    else:
        out.append("  messages  none read: the profile gives linkstack no APID of this mission")
    for text in replay.refusals:
        out.append(f"  refused   {text}")
    return out


def _counts(counter: dict[str, int] | Any) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counter.items() if v) or "none"


def export_packets(packets: Iterable[MissionPacket], folder: Path) -> dict[int, int]:
    """Per APID ``apid_0xNNN.bin`` (the packets back to back) and ``apid_0xNNN.csv``
    (an index into it); how many packets each APID got."""
    folder.mkdir(parents=True, exist_ok=True)
    by_apid: dict[int, list[MissionPacket]] = {}
    for packet in packets:
        by_apid.setdefault(packet.apid, []).append(packet)
    for apid, group in by_apid.items():
        stem = folder / f"apid_{apid:#05x}"
        offset = 0
        with (
            open(stem.with_suffix(".bin"), "wb") as raw,
            open(stem.with_suffix(".csv"), "w", newline="") as index,
        ):
            writer = csv.writer(index)
            writer.writerow(
                ["packet", "offset", "length", "seq_count", "seq_flags", "unit", "vcid", "vc_count"]
            )
            for pk in group:
                raw.write(pk.raw)
                writer.writerow(
                    [
                        pk.index,
                        offset,
                        len(pk.raw),
                        pk.seq_count,
                        pk.seq_flags,
                        pk.unit,
                        pk.vcid,
                        pk.vc_count,
                    ]
                )
                offset += len(pk.raw)
    return {apid: len(group) for apid, group in by_apid.items()}


def run(
    path: Path,
    profile_spec: str | Profile,
    *,
    as_json: bool = False,
    export: Path | None = None,
    say: Callable[[str], None] = print,
    links: Links | None = None,
    views: Collection[str] | None = None,
    notes: Iterable[str] = (),
) -> int:
    """The command: 0 every unit decoded, 1 some refused or nothing read. ``links``,
    ``views``: a daemons' port plan and the view of it read (``--scenario``);
    ``notes``: lines for the report's head (where the profile and ports came from)."""
    profile = load_profile(profile_spec) if isinstance(profile_spec, str) else profile_spec
    notes = list(notes)
    replay, what = replay_mission(path, profile, links, views)
    exported = export_packets(replay.packets, export) if export is not None else None
    c = replay.counts
    read = sum(v for k, v in c.units.items() if k != "not_the_profiles_downlink")
    bad = c.cadu.get("no_asm", 0) + c.cadu.get("rs_uncorrectable", 0)
    bad += c.frames.get("frames_dropped", 0) + c.packets_refused
    status = 1 if bad or not read or replay.refusals else 0
    if as_json:
        doc = {"file": str(path), "profile": profile.name, "input": what, **c.as_dict()}
        doc["refusals"] = replay.refusals
        if notes:
            doc["notes"] = notes
        if exported is not None:
            doc["exported"] = {str(k): v for k, v in sorted(exported.items())}
        say(json.dumps(doc, indent=1))
        return status
    for line in report_lines(replay, path, what, notes):
        say(line)
    if exported is not None:
        say(f"  exported  {sum(exported.values()):,} packets on {len(exported)} APIDs to {export}")
    say(
        "result    every unit decoded"
        if status == 0
        else "result    some units refused, or none read (see above; exit status 1)"
    )
    return status


def main(
    args: Any,
    profile: Profile | None = None,
    links: Links | None = None,
    notes: Iterable[str] = (),
) -> int:
    """``linkstack replay --profile P FILE`` or ``--detect FILE`` (from replay_cli);
    ``profile``: the one replay_cli chose (``--profile``'s or ``--scenario``'s), read
    from ``args.profile`` when None; ``links``: ``--scenario``'s port plan, of which
    ``args.view`` is read."""
    import sys  # noqa: PLC0415

    try:
        if args.detect:
            from linkstack.capture.mission_detect import detect_file  # noqa: PLC0415

            found = detect_file(args.pcap)
            print(found.toml(), end="")
            return 0
        return run(
            args.pcap,
            profile if profile is not None else args.profile,
            as_json=args.json,
            export=args.export_packets,
            links=links,
            views=(getattr(args, "view", "sent"),),
            notes=notes,
        )
    except ConfigError as exc:
        print(f"linkstack replay: {exc}", file=sys.stderr)
        return 2
