"""``linkstack replay``: a capture's units fed into the receivers again, and what they decode.

::

    linkstack replay FILE [--as ground|sat|both] [--realtime|--fast]
                     [--port LAYER=PORT ...] [--scenario FILE [--view sent|delivered]]
                     [--keys KEYFILE] [-v]

Each unit of the capture goes, at its recorded time, into the receive chain that
the node at the far end runs (:class:`~linkstack.capture.replay.Replayer`, the
sans-I/O core: what is decoded, and how, is said there): ``--as sat`` the uplink
and laser links, ``--as ground`` the downlink, by default both. This module is the
I/O around it: the file, the clock, the printing and the summary.

**Files.** A pcap or a pcapng (read directly by :mod:`linkstack.capture.reader`),
from linkstack or any capture of CADUs, CLTUs, frames or Space Packets over UDP
(IPv4 or IPv6): on the documented ports, or on others named with ``--port
LAYER=PORT``; a capture of running daemons (``tshark -i lo``) on their port plan
with ``--scenario FILE``, each port one link (its layer and ends) and one view of it
(``--view``: ``sent`` into the channel, the default, or ``delivered`` out of it; the
command line hands this module the plan, as the daemons' layer is above this one).
The side file ``FILE.nodes.json``, when there is one, gives the node
names and the epoch back. What cannot be used is said, never a traceback: a
damaged record is skipped (or, when the file cannot be read further, the replay
stops there and says why); the summary counts the units read, decoded and refused
by reason. A file that is not a capture at all exits with status 2.

**Profiles.** ``--profile P`` reads a mission's recording as its profile says
(:mod:`linkstack.capture.mission_cli`). A ``--scenario`` whose ``[frames] profile``
names one other than linkstack's ran its ground link by it, so its capture is read
the same way, exactly as ``--profile`` of that file would, on the port plan too; a
``--profile`` beside it must be the same profile, else exit 2 naming both
(:mod:`linkstack.runtime.scenario_profile`, the choice conform makes too).

**SDLS.** A capture of links under SDLS (a scenario whose ``[sdls]`` is enabled)
holds protected frames: the security associations (which frames carry a security
header, its fields' lengths, the service) come from ``--scenario FILE`` or, without
one, from the capture's side file (linkstack records the run's there, no key); the
report's ``sdls:`` line says which. ``--keys KEYFILE`` (the key file the daemons read
and write, or the one ``linkstack demo`` writes beside its capture, which is named but
never read unless given) verifies every MAC and decrypts
(:mod:`linkstack.capture.sdls_view`). Without the keys, what an SA leaves in clear
is read and encrypted data fields are counted, not read.

Time: ``--fast`` (the default) runs on the virtual-time clock (emulated time, no
waiting), ``--realtime`` on the wall clock, the gaps between units as recorded;
both through :mod:`linkstack.runtime.clock`, imported when a replay starts.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from linkstack.capture.network import LAYER_BY_PORT, LAYERS, NodeRegistry
from linkstack.capture.reader import CapturedUnit, LinkPorts, PcapReader, PortRole, ReadProblem
from linkstack.capture.replay import Replayer
from linkstack.capture.replay_link import FAMILIES, RECEIVER, SIDES, USLP_FRAME, family_of
from linkstack.capture.replay_sink import ReplayEvent
from linkstack.errors import ConfigError, DecodeError, LinkstackError

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import SdlsView
    from linkstack.runtime.mission_profile import Profile

REFUSALS_PRINTED = 10  # of one kind (layer and field), unless verbose
VIEWS = ("sent", "delivered")  # of a unit on the daemons' port plan: into the channel, out of it
# a scenario file -> (port -> its links, what it is): the daemons' port plan
PortPlanReader = Callable[[str], tuple[Mapping[int, PortRole | LinkPorts], str]]


class CaptureFileError(LinkstackError):
    """The file cannot be read as a capture at all (not a pcap or pcapng, unreadable)."""


# -- the file --------------------------------------------------------------------------------


class CaptureFile:
    """A capture to replay: its units (a tolerant reader), epoch and node names.

    ``ports``: extra layer ports (``{"tm_cadu": 5000}``), on top of the documented
    ones; ``links``: the ports of the daemons' port plan (each carries links named by
    the datagrams' link headers), of which only the units of ``views`` are read.
    :meth:`units` yields :class:`CapturedUnit` and, for a record that cannot be read,
    :class:`ReadProblem`; it raises :class:`CaptureFileError` when the file is no
    capture at all. ``stats`` holds the reader's counters of the last pass."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        ports: Mapping[str, int] | None = None,
        links: Mapping[int, PortRole | LinkPorts] | None = None,
        views: Iterable[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.ports: dict[int, str | PortRole | LinkPorts] = dict(LAYER_BY_PORT)
        self.ports.update(links or {})
        for layer, port in (ports or {}).items():
            if layer not in LAYERS:
                raise ConfigError("replay", "port", f"unknown layer {layer!r}: {sorted(LAYERS)}")
            self.ports[port] = layer
        self.views = None if views is None else tuple(views)
        self.note = ""
        self.format = "pcap"  # or "pcapng", as the last pass over the file found
        try:
            base = PcapReader(self.path)
            self.named = base.registry is not None and len(base.registry) > 0
            self.registry, self.epoch = base.registry, base.epoch
        except DecodeError as exc:  # a damaged side file: go on with addresses
            self.note = f"side file ignored: {exc}"
            self.named = False
            self.registry, self.epoch = NodeRegistry(), datetime(1970, 1, 1, tzinfo=UTC)
        if self.epoch.tzinfo is None:
            self.epoch = self.epoch.replace(tzinfo=UTC)
        self.stats: Counter[str] = Counter()

    def units(self) -> Iterator[CapturedUnit | ReadProblem]:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise CaptureFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with f:
            reader = PcapReader(
                f, epoch=self.epoch, registry=self.registry, ports=self.ports, views=self.views
            )
            self.stats = reader.stats
            try:
                yield from reader.read(resume=True)
            except DecodeError as exc:  # its header, or a pcapng's blocks before an interface
                what = "not a pcapng file we can read: " if exc.layer == "pcapng" else ""
                raise CaptureFileError(f"{self.path}: {what}{exc}") from None
            except OSError as exc:
                raise CaptureFileError(f"cannot read {self.path}: {exc}") from None
            finally:
                self.format = reader.format or self.format

    def survey(self) -> tuple[Counter[str], set[str], float | None]:
        """A first pass: units per layer, the kinds of link present, the first unit's time."""
        layers: Counter[str] = Counter()
        families: set[str] = set()
        first = None
        for item in self.units():
            if isinstance(item, CapturedUnit):
                layers[item.layer] += 1
                families.add(family_of(item))
                if first is None:
                    first = item.t_s
        return layers, families, first


# -- the driver: a clock, the printing, the summary ---------------------------------------------


@dataclass
class ReplayResult:
    replayer: Replayer
    read_stats: Counter[str]
    read_problems: list[ReadProblem] = field(default_factory=list)
    keys_option: str = "--keys KEYFILE"  # what to pass for the encrypted frames

    @property
    def exit_status(self) -> int:
        """0: every unit decoded and every check passed; 1: some were not, or there was
        nothing to decode (said above)."""
        r = self.replayer
        nothing = not r.stats["units"]
        return 1 if r.problems or self.read_problems or nothing else 0


def _counts(counter: Mapping[str, int], order: Iterable[str] = ()) -> str:
    keys = [k for k in order if counter.get(k)] + sorted(k for k in counter if k not in order)
    return ", ".join(f"{k} {counter[k]:,}" for k in keys if counter[k]) or "none"


def _check_lines(checks: Mapping[str, int]) -> list[str]:
    out = []
    for layer in ("tc_frame", "tm_frame", "aos_frame", USLP_FRAME):
        n = sum(v for k, v in checks.items() if k.startswith(layer + ":"))
        if not n:
            continue
        text = (
            f"{layer} {checks[layer + ':equal']:,}/{n:,} equal to the frame decoded from its unit"
        )
        for key, what in (("different", "DIFFERENT"), ("unit_refused", "after a refused unit")):
            if checks.get(f"{layer}:{key}"):
                text += f", {checks[f'{layer}:{key}']:,} {what}"
        out.append(text)
    recorded = checks.get("space_packet:recorded", 0)
    if recorded:
        text = (
            f"space_packet {checks['space_packet:equal']:,}/{recorded:,} equal to the packets "
            "decoded from the units, link by link, in order"
        )
        if checks.get("space_packet:not_sent"):
            text += (
                f"; {checks['space_packet:not_sent']:,} in no unit of the capture (sent after "
                "it ended, or not by these units)"
            )
        if checks.get("space_packet:different_links"):
            text += f"; DIFFERENT on {checks['space_packet:different_links']:,} link(s)"
        out.append(text)
    if checks.get("space_packet:sealed"):
        out.append(
            f"space_packet {checks['space_packet:sealed']:,} not checked: their links' frames "
            "are encrypted and there is no key"
        )
    return out


def _summary(result: ReplayResult) -> list[str]:
    r = result.replayer
    rs = result.read_stats
    s = r.stats
    layer_order = [layer for fam in FAMILIES.values() for layer in fam]
    layer_order += [USLP_FRAME, "space_packet"]
    lines = ["", "summary"]
    lines.append(
        f"  read      {s['units']:,} units from {rs['records']:,} pcap records "
        f"({_counts(r.units_by_layer, layer_order)})"
    )
    ignored = {
        "not IP": rs["not_ip"],
        "not UDP": rs["not_udp"],
        "UDP on other ports (see --port LAYER=PORT)": rs["other_ports"],
        "units of the other view (--view)": rs["other_view"],
        "empty UDP datagrams": rs["empty_datagrams"],
        "IPv4 datagrams missing fragments": rs["incomplete_datagrams"],
        "records unreadable": len(result.read_problems),
        "units for the other side (--as)": s["units_other_side"],
    }
    if any(ignored.values()):
        lines.append(f"  ignored   {_counts(ignored)}")
    messages = Counter(
        {k.removeprefix("messages_"): v for k, v in s.items() if k.startswith("messages_")}
    )
    lines.append(
        f"  decoded   {s['units_decoded']:,} units: {s['frames']:,} frames, "
        f"{s['packets']:,} packets, {s['messages']:,} messages ({_counts(messages)})"
    )
    if s["payloads_foreign"]:
        lines.append(
            f"  foreign   {s['payloads_foreign']:,} payloads on linkstack's APIDs, between nodes "
            "that are not linkstack's, are no linkstack message: another mission's packets, "
            "not refusals (read them with --profile P)"
        )
    lines.append(f"  refused   {sum(r.refused.values()):,}: {_counts(r.refused)}")
    sdls = Counter[str]()
    for stages in r.counters().values():
        sdls.update(stages.get("sdls", {}))
    if sdls["frames"]:
        text = (
            f"  sdls      {sdls['frames']:,} protected frames: {sdls['opened']:,} opened "
            f"({sdls['verified']:,} MAC or tag verified)"
        )
        if sdls["sealed"]:
            text += f", {sdls['sealed']:,} encrypted and not read (no key: {result.keys_option})"
        lines.append(text)
    if r.drops:
        lines.append(f"  dropped   {_counts(r.drops)}")
    for i, text in enumerate(_check_lines(r.checks)):
        lines.append(f"  {'checked' if i == 0 else '':<9} {text}")
    lines.append("")
    lines.append("counters (every receiver of the replay, summed per kind of link)")
    for family, stages in r.counters().items():
        for stage, counter in stages.items():
            lines.append(f"  {family:<9} {stage:<7} {_counts(counter)}")
    lines.append("")
    if not s["units"]:
        lines.append(
            "result    nothing decoded: no unit of a known layer in the capture (units go on "
            "the ports of linkstack/capture/pcap.py, or name others with --port LAYER=PORT)"
        )
    elif result.exit_status == 0 and s["sdls_sealed"]:
        lines.append(
            f"result    every unit read, every check passed; {s['sdls_sealed']:,} encrypted "
            f"frames not decrypted (give the keys: {result.keys_option})"
        )
    elif result.exit_status == 0:
        lines.append("result    every unit decoded, every check passed")
    else:
        lines.append(
            "result    some units could not be used, or a check failed (see above; exit status 1)"
        )
    return lines


def replay_file(
    path: str | os.PathLike[str],
    *,
    side: str = "both",
    realtime: bool = False,
    ports: Mapping[str, int] | None = None,
    verbose: bool = False,
    say: Callable[[str], None] = print,
    links: Mapping[int, PortRole | LinkPorts] | None = None,
    view: str = VIEWS[0],
    ports_text: str = "",
    sdls: SdlsView | None = None,
) -> ReplayResult:
    """Replay one capture, saying what the receivers decode as it goes and a summary
    at the end. ``links``: the ports of a daemons' port plan (``ports_text`` says
    whose), of which the ``view`` is replayed; ``sdls``: the links' SDLS (their
    associations, and the keys if any). Raises :class:`CaptureFileError` if the file
    is no capture at all."""
    from linkstack.runtime import clock as clk  # noqa: PLC0415 - see the module docstring

    if view not in VIEWS:
        raise ConfigError("replay", "view", f"must be one of {VIEWS}, got {view!r}")
    capture = CaptureFile(path, ports, links, (view,) if links else None)
    layers, families, first_t = capture.survey()
    replayer = Replayer(layers, side=side, verbose=verbose, sdls=sdls)
    result = ReplayResult(replayer, Counter())
    if sdls is not None:
        result.keys_option = sdls.keys_option
    names = "node names from the side file" if capture.named else "no side file: addresses"
    if links:
        names = "node names from the port plan" + (", the side file" if capture.named else "")
    epoch = capture.epoch.isoformat()
    say(f"linkstack replay {capture.path} ({capture.format}; epoch {epoch}; {names})")
    if capture.note:
        say(f"  {capture.note}")
    if ports_text:
        say(f"  ports: {ports_text}; view {view}")
    if sdls is not None:
        say(f"  sdls: {sdls.describe()}")
    plan = []
    for fam, source in replayer.sources.items():
        if fam in families and source is not None and (side == "both" or RECEIVER[fam] == side):
            plan.append(f"{fam} from {source}")
    say(
        "  decoding "
        + ("; ".join(plan) if plan else "nothing: no unit of a known layer")
        + f"; {'wall-clock time (--realtime)' if realtime else 'emulated time (--fast)'}"
    )
    say(f"  {'t_s':>14}  {'side':<6}  from -> to  what")
    printed: Counter[str] = Counter()

    def show(event: ReplayEvent) -> None:
        if event.kind in ("refused", "drop") and not verbose:
            data = event.data
            # a refusal carries its DecodeError, a drop its reason
            key = f"{data.layer}: {data.field}" if isinstance(data, DecodeError) else str(data)
            printed[key] += 1
            if printed[key] > REFUSALS_PRINTED:
                return
            if printed[key] == REFUSALS_PRINTED:
                say(event.format() + f"  (further '{key}' are counted, not shown; -v shows all)")
                return
        say(event.format())

    async def drive() -> None:
        clock = clk.make_clock(not realtime, capture.epoch, first_t or 0.0)
        for item in capture.units():
            if isinstance(item, ReadProblem):
                result.read_problems.append(item)
                stop = "; reading stops here" if item.fatal else "; skipped"
                say(f"{'':14}  pcap    {'record ' + str(item.record)}: {item.error}{stop}")
                continue
            await clock.sleep_until(item.t_s)
            for event in replayer.feed(item):
                show(event)
        for event in replayer.finish():
            say(event.format())

    clk.run(drive, emulated=not realtime)
    result.read_stats = capture.stats
    for line in _summary(result):
        say(line)
    return result


# -- the command line -----------------------------------------------------------------------------


def _port_spec(text: str) -> tuple[str, int]:
    layer, sep, port = text.partition("=")
    layer = layer.strip()
    if not sep or layer not in LAYERS or not port.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"expected LAYER=PORT with LAYER one of {', '.join(sorted(LAYERS))}, got {text!r}"
        )
    number = int(port)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {number}")
    return layer, number


def sdls_of(
    scenario: str | None,
    keys: Path | None,
    capture: str | os.PathLike[str] | None = None,
) -> SdlsView | None:
    """The SDLS of the capture's links, with the keys of ``keys``: a scenario's
    associations (``--scenario``; None when its ``[sdls]`` is off), else those the
    capture's side file records (linkstack's captures under SDLS); None: every frame
    clear. A key file beside the capture is named, never read unless given.
    ConfigError for a key file without associations, one that cannot be read (or that
    others may read), or a side file whose associations are wrong."""
    from linkstack.capture import sdls_view  # noqa: PLC0415 - the codec, when asked

    if scenario is not None:
        links, source = sdls_view.scenario_links(scenario), f"--scenario {scenario}"
    elif capture is not None:
        links, source = sdls_view.capture_links(capture), "the capture's side file"
    else:
        links, source = None, ""
    if links is None:
        if keys is None:
            return None
        raise ConfigError(
            "replay",
            "--keys",
            "the keys need the links' security associations: --scenario FILE, a scenario "
            "whose [sdls] is enabled (the capture's side file records none)",
        )
    from linkstack.ccsds.sdls_keys import Keyring  # noqa: PLC0415

    hint = sdls_view.keys_beside(capture) if capture is not None and keys is None else None
    ring = Keyring.from_file(keys) if keys is not None else None
    return sdls_view.SdlsView(links, ring, source=source, keys_hint=hint)


def profile_of(given: str | None, scenario: str | None) -> tuple[Profile | None, list[str]]:
    """The mission profile the replay decodes by: ``--profile``'s, or the ``[frames]
    profile`` the ``--scenario`` names (both given must agree: ConfigError naming
    both), with the lines that say where it came from; None for linkstack's own replay
    (no ``--profile``, and a scenario that names no profile or one with linkstack's
    own parameters, which the general replay decodes with its uplinks and SDLS)."""
    from linkstack.runtime import scenario_profile as chosen  # noqa: PLC0415 - when asked
    from linkstack.runtime.mission_profile import DEFAULT_PROFILE, load_profile  # noqa: PLC0415

    if scenario is None:
        return (None if given is None else load_profile(given)), []
    from linkstack.capture.sdls_view import from_uplink  # noqa: PLC0415
    from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415

    settings = scenario_file.load(scenario)
    named = settings.link_profile
    if given is None and (
        named is None or not chosen.differences(named, load_profile(DEFAULT_PROFILE))
    ):
        return None, []
    profile = chosen.choose_profile(given, named, scenario, "replay")
    notes = [f"profile: {profile.source}"]
    if from_uplink(settings.emulation.uplink) is not None:
        notes.append(
            f"sdls: on in --scenario {scenario}, not read by a profile's replay: protected "
            f"frames' data fields are taken as they are (linkstack conform --scenario "
            f"{scenario} --keys KEYFILE opens them)"
        )
    return profile, notes


def cmd_replay(args: argparse.Namespace) -> int:
    links: Mapping[int, PortRole | LinkPorts] | None = None
    ports_text = ""
    if args.scenario is not None:
        if args.port_plan is None:
            print("linkstack replay: --scenario needs the linkstack command line", file=sys.stderr)
            return 2
        links, ports_text = args.port_plan(args.scenario)
    try:
        profile, notes = (None, []) if args.detect else profile_of(args.profile, args.scenario)
    except ConfigError as exc:
        print(f"linkstack replay: {exc}", file=sys.stderr)
        return 2
    if args.detect or profile is not None:  # a mission's recording: mission_cli
        from linkstack.capture import mission_cli  # noqa: PLC0415 - when asked

        if links:
            notes.append(f"ports: {ports_text}; view {args.view}")
        return mission_cli.main(args, profile, links, notes)
    if args.json or args.export_packets is not None:
        print(
            "linkstack replay: --json and --export-packets need --profile (or a --scenario "
            "whose [frames] profile names one)",
            file=sys.stderr,
        )
        return 2
    ports: dict[str, int] = {}
    for layer, port in args.port or ():
        ports[layer] = port
    try:
        sdls = sdls_of(args.scenario, args.keys, args.pcap)
    except ConfigError as exc:
        print(f"linkstack replay: {exc}", file=sys.stderr)
        return 2
    try:
        result = replay_file(
            args.pcap,
            side=args.side,
            realtime=args.realtime,
            ports=ports,
            verbose=args.verbose,
            say=functools.partial(print, flush=True) if args.realtime else print,
            links=links,
            view=args.view,
            ports_text=ports_text,
            sdls=sdls,
        )
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CaptureFileError as exc:
        print(f"linkstack replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linkstack replay: interrupted", file=sys.stderr)
        return 130
    sys.stdout.flush()
    return result.exit_status


def add_replay_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    port_plan: PortPlanReader | None = None,
) -> argparse.ArgumentParser:
    """Register ``linkstack replay`` on the CLI's subparsers. ``port_plan`` reads a
    scenario's port plan for ``--scenario`` (the daemons' layer has it; the command
    line hands it over)."""
    p = subparsers.add_parser(
        "replay",
        help="feed a capture's units into the receivers and print what they decode",
        description="Replay a pcap (from linkstack, or any capture of CADUs, CLTUs, frames or "
        "Space Packets over UDP; TC/TM/AOS or USLP frames, told by their version) into the "
        "ground's and the satellites' receive chains at "
        "the recorded times, and print the frames, CLCWs, packets and messages decoded, "
        "every unit refused with its reason, and the counters. Exit status: 0 all decoded, "
        "1 some units refused or a check failed, 2 not a capture.",
    )
    p.add_argument(
        "pcap",
        type=Path,
        metavar="FILE",
        help="the capture (classic pcap or pcapng); with --profile also a raw file of CADUs, "
        "frames or a bit stream",
    )
    mission = p.add_argument_group(
        "a mission's recording (any mission's downlink, read as its profile says)"
    )
    mission.add_argument(
        "--profile",
        metavar="P",
        help="a mission profile (built-in: linkstack, meteor-m2-lrpt, mars2020; or a TOML "
        "file): decode the downlink's CADUs or frames with its parameters and report CADUs, "
        "RS codewords, frames per VC, packets per APID with their gaps, CLCWs (default: the "
        "--scenario's [frames] profile when it names one; given beside such a scenario, it "
        "must be the same profile)",
    )
    mission.add_argument(
        "--detect",
        action="store_true",
        help="guess the profile from the data (ASM, randomization, RS code and basis, frame "
        "length, insert zone, FECF) and print it as TOML to edit",
    )
    mission.add_argument("--json", action="store_true", help="with --profile: the report as JSON")
    mission.add_argument(
        "--export-packets",
        type=Path,
        metavar="DIR",
        help="with --profile: write each APID's packets to DIR/apid_0xNNN.bin with an index "
        "DIR/apid_0xNNN.csv",
    )
    p.add_argument(
        "--as",
        dest="side",
        choices=SIDES,
        default="both",
        help="decode what the ground receives (downlink), what the satellites receive "
        "(uplink and laser links), or both (default)",
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="pace the units with the wall clock")
    pace.add_argument("--fast", action="store_true", help="emulated time, no waiting (the default)")
    p.add_argument(
        "--port",
        action="append",
        type=_port_spec,
        metavar="LAYER=PORT",
        help="UDP port of a layer, besides the documented ones (repeatable), e.g. tm_cadu=5000",
    )
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="a capture of running daemons (tshark -i lo): the scenario whose port plan "
        "(a few UDP ports, each datagram's link header naming its link) tells each unit's "
        "link and layer; its [frames] profile, when it names one other than linkstack's, "
        "decodes the capture as --profile of that profile would",
    )
    p.add_argument(
        "--view",
        choices=VIEWS,
        default=VIEWS[0],
        help="with --scenario: replay the units as their senders emitted them (sent, the "
        "default) or as the channel delivered them to the receivers (delivered: after bit "
        "errors and losses)",
    )
    p.add_argument(
        "--keys",
        type=Path,
        metavar="KEYFILE",
        help="with SDLS on (the associations from --scenario, or from the capture's side "
        "file): the SDLS key file (as the daemons write it, or the one linkstack demo writes "
        "beside its capture, never read unless given) to verify every MAC and decrypt; "
        "without it encrypted frames are counted, not read",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="every frame (idle ones too), every CLCW and every refusal",
    )
    p.set_defaults(func=cmd_replay, port_plan=port_plan)
    return p


if __name__ == "__main__":  # pragma: no cover - python -m linkstack.capture.replay_cli FILE
    parser = argparse.ArgumentParser(prog="linkstack")
    add_replay_parser(parser.add_subparsers(dest="command"))
    arguments = parser.parse_args(["replay", *sys.argv[1:]])
    sys.exit(arguments.func(arguments))
