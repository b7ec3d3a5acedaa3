"""``linkstack wireshark``: what Wireshark needs to decode a scenario's live traffic.

::

    linkstack wireshark [--scenario FILE] [--install [FOLDER] | --capture-filter]

Between the daemons each unit is one UDP datagram on loopback, behind a 4-octet link
header that names its link, on the ports of its sender's or receiver's end
(``daemon.channel_port + j`` and ``daemon.node_port + j``: :mod:`linkstack.daemon.wire`).
The dissector ``wireshark/linkstack.lua`` finds linkstack's units on any port by their
sync patterns, after a link header if there is one (a heuristic); a *scenario file*
for Wireshark, made here from a scenario, adds what the units do not say: the ports
of each end, which link each index names and between which nodes, the names of the
spacecraft
ids and of the relay node numbers, the coding of each kind of link (CADU
lengths, Reed-Solomon check octets, randomization), and, when the scenario turns
SDLS on, the security associations of each kind of link (SPI, service, the lengths
of the security header's fields and of the MAC; never a key), so that the dissector
finds the security header and trailer of each frame.

The scenario file is a Lua script holding one table (format
:data:`SCENARIO_FORMAT`) that hands itself to the dissector, in whichever order
Wireshark loads the two. By default the command prints it; ``--install`` writes it
and a copy of the dissector into Wireshark's personal Lua plugins folder (the one
``tshark -G folders`` names, or a folder given); ``--capture-filter`` prints the
capture filter of the scenario's ports (for ``dumpcap -f`` / ``wireshark -f``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkstack import __version__
from linkstack.errors import ConfigError

if TYPE_CHECKING:
    from linkstack.runtime.scenario import ScenarioFile
    from linkstack.runtime.security import SaSettings
    from linkstack.runtime.uplink_config import UplinkConfig

# of the table; the dissector refuses others (SCENARIO_FORMATS there). 3: with "ends" (the
# daemons' ports are an end's; the link header names the link); 2: with "sdls", a port
# per link; the dissector reads a table of format 1 (none) as saying nothing of SDLS
SCENARIO_FORMAT = 3
DISSECTOR_NAME = "linkstack.lua"
DISSECTOR = Path(__file__).resolve().parents[2] / "wireshark" / DISSECTOR_NAME
TSHARK_TIMEOUT_S = 30.0


# -- what a scenario says -------------------------------------------------------------------


def scenario_table(settings: ScenarioFile) -> dict[str, Any]:
    """The table the scenario file holds: the ends and their ports and the links (the
    daemons' port plan), the coding of each kind of link, and the names of relay nodes
    and SCIDs."""
    # imported here: the CLI imports this module to build its parser, and the stack
    # takes most of a second to import
    from linkstack.ccsds.coding.chains import CaduCoding  # noqa: PLC0415
    from linkstack.daemon.wire import PortPlan  # noqa: PLC0415
    from linkstack.runtime.routing import GROUND_NODE  # noqa: PLC0415
    from linkstack.runtime.site import AOS_FRAME_LEN  # noqa: PLC0415

    d = settings.daemon
    plan = PortPlan.of(settings.scenario, d)
    uplink = settings.emulation.uplink
    names = settings.scenario.satellite_names

    frames = uplink.protocol  # "tm-tc-aos" or "uslp" (USLP frames on every link)

    def cadu(unit: str, coding: CaduCoding, frame_length: int) -> dict[str, Any]:
        codeblock = coding.codeblock_length(frame_length)
        return {
            "unit": unit,
            "frame_length": frame_length,
            "cadu_length": len(coding.asm) + codeblock,
            "rs_check": codeblock - frame_length,
            "randomized": coding.randomize,
            "frames": frames,
        }

    return {
        "format": SCENARIO_FORMAT,
        "name": settings.name,
        "source": settings.source,
        "host": d.host,
        # the same codings as the daemons' (linkstack.daemon.parts: the laser links keep
        # the default CADU coding of AOS_FRAME_LEN-octet frames)
        "coding": {
            "uplink": {
                "unit": "cltu",
                "randomized": uplink.cltu_coding.randomize,
                "frames": frames,
            },
            "downlink": cadu("tm_cadu", uplink.cadu_coding, uplink.tm_frame_length),
            "isl": cadu("aos_cadu", CaduCoding(), AOS_FRAME_LEN),
        },
        "nodes": {GROUND_NODE: "ground"} | {i + 1: name for i, name in enumerate(names)},
        "scids": {settings.emulation.scid_base + i: name for i, name in enumerate(names)},
        "sdls": sdls_table(uplink),
        "ends": [
            {
                "index": e.index,
                "name": e.name,
                "channel_port": e.channel_port,
                "node_port": e.node_port,
            }
            for e in plan.ends
        ],
        "links": [
            {
                "index": s.index,
                "kind": s.kind,
                "name": s.name,
                "src": s.src,
                "dst": s.dst,
                "channel_port": s.channel_port,
                "node_port": s.node_port,
                "source_port": s.source_port,
                "delivered_from": s.delivered_from,
            }
            for s in plan.links
        ],
    }


def sdls_table(uplink: UplinkConfig) -> dict[str, Any]:
    """What the dissector needs of ``[sdls]``: for each kind of link, the security
    associations of its frames (SPI, service and field lengths: no key) and, for the
    uplink, the one TC virtual channel under SDLS (linkstack's: the flight software's
    are its own business, :mod:`linkstack.runtime.security`)."""
    sdls = uplink.sdls
    if not sdls.enabled:
        return {"enabled": False}

    def associations(settings: SaSettings) -> list[dict[str, Any]]:
        sa = settings.association()
        return [
            {
                "spi": sa.spi,
                "service": sa.service,
                "iv_len": sa.iv_len,
                "sn_len": sa.sn_len,
                "pad_len": sa.pad_len,
                "mac_len": sa.mac_len,
            }
        ]

    return {
        "enabled": True,
        "uplink": {"vcid": uplink.vcid, "sas": associations(sdls.uplink)},
        "downlink": {"sas": associations(sdls.downlink)},
        "isl": {"sas": associations(sdls.laser)},
    }


def port_ranges(settings: ScenarioFile) -> list[tuple[int, int]]:
    """The UDP port ranges of the daemons' ends (first, last), merged where they touch."""
    from linkstack.runtime.interface_settings import end_count  # noqa: PLC0415

    d = settings.daemon
    sc = settings.scenario
    if not sc.satellite_names:
        return []
    count = end_count(len(sc.satellite_names), d.sat_ports)
    merged: list[tuple[int, int]] = []
    for first in sorted((d.channel_port, d.node_port)):
        last = first + count - 1
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def capture_filter(settings: ScenarioFile) -> str:
    """A capture filter (pcap syntax) for the scenario's datagrams and nothing else."""
    ranges = port_ranges(settings)
    if not ranges:
        raise ConfigError("wireshark", "scenario", f"{settings.source} has no links to capture")
    ports = " or ".join(f"portrange {a}-{b}" for a, b in ranges)
    return f"udp and ({ports})"


# -- the scenario file -----------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LUA_WORDS = frozenset(
    {
        *("and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto"),
        *("if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true"),
        *("until", "while"),
    }
)


def lua_string(text: str) -> str:
    """A Lua string literal of ``text`` that every Lua reads the same: printable ASCII
    as is, anything else as decimal escapes of its UTF-8 octets."""
    out = []
    for octet in text.encode("utf-8"):
        char = chr(octet)
        if 0x20 <= octet < 0x7F and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\{octet:03d}")
    return '"' + "".join(out) + '"'


def _lua_key(key: object) -> str:
    if isinstance(key, str) and _IDENTIFIER.match(key) and key not in _LUA_WORDS:
        return key
    return f"[{lua_value(key)}]"


def lua_value(value: object, indent: str = "") -> str:
    """``value`` (dicts, lists, strings, integers, booleans) as a Lua expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return lua_string(value)
    inner = indent + "    "
    if isinstance(value, dict):
        pairs = [f"{_lua_key(key)} = {lua_value(item, inner)}" for key, item in value.items()]
        flat = "{ " + ", ".join(pairs) + " }"
        if all(isinstance(v, int | str) for v in value.values()) and len(inner + flat) <= 200:
            return flat  # a row of scalars (a link) on one line
        lines = [f"{inner}{pair}," for pair in pairs]
        return "{\n" + "\n".join(lines) + f"\n{indent}}}" if lines else "{}"
    if isinstance(value, list):
        lines = [f"{inner}{lua_value(item, inner)}," for item in value]
        return "{\n" + "\n".join(lines) + f"\n{indent}}}" if lines else "{}"
    raise TypeError(f"no Lua form for {type(value).__name__}")


def scenario_file_name(settings: ScenarioFile) -> str:
    """The scenario file's name in a plugins folder: one per scenario name."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", settings.name).strip("_") or "scenario"
    return f"linkstack-scenario-{safe}.lua"


def scenario_lua(settings: ScenarioFile, dissector: Path = DISSECTOR) -> str:
    """The scenario file for Wireshark: the table of :func:`scenario_table`, handed to
    the dissector whether it loads before or after this file."""
    table = scenario_table(settings)
    links = len(table["links"])
    name = scenario_file_name(settings)
    cfilter = capture_filter(settings) if links else "(no links)"
    header = [
        f"-- linkstack scenario {settings.name!r} for Wireshark: {links} links, their ports",
        "-- and nodes, the names of spacecraft ids and relay nodes, the coding of each kind",
        "-- of link and its SDLS security associations (no keys). Made by `linkstack",
        f"-- wireshark` (linkstack {__version__}) from",
        f"-- {settings.source}; make it again when the scenario changes.",
        "--",
        "-- It needs the linkstack dissector. Either put both in Wireshark's personal Lua",
        f"-- plugins folder (`linkstack wireshark --install` does), as {name},",
        "-- or load both for one run:",
        f"--   tshark -X lua_script:{dissector} -X lua_script:{name} -i lo \\",
        f"--          -f '{cfilter}'",
        "-- Capture filter of the scenario's ports:",
        f"--   {cfilter}",
    ]
    return (
        "\n".join(header)
        + "\n\nlocal scenario = "
        + lua_value(table)
        + """

-- Hand it to the dissector: now if it is loaded, else when it loads (scripts have
-- globals of their own; _G is the one table they share).
if type(rawget(_G, "linkstack_add_scenario")) == "function" then
    _G.linkstack_add_scenario(scenario)
else
    local pending = rawget(_G, "linkstack_pending_scenarios") or {}
    pending[#pending + 1] = scenario
    _G.linkstack_pending_scenarios = pending
end
"""
    )


# -- where it goes ---------------------------------------------------------------------------


def dissector_path() -> Path:
    """The dissector of this linkstack (wireshark/linkstack.lua of the source tree)."""
    if not DISSECTOR.is_file():
        raise ConfigError(
            "wireshark",
            "dissector",
            f"{DISSECTOR} is not there: the dissector ships with linkstack's source tree "
            "(an installed wheel does not carry it); run linkstack from a checkout",
        )
    return DISSECTOR


def personal_plugins_folder() -> Path:
    """Wireshark's personal Lua plugins folder: as ``tshark -G folders`` names it (it
    follows the environment, as Wireshark does), else the documented default."""
    tshark = shutil.which("tshark")
    if tshark is not None:
        try:
            proc = subprocess.run(
                [tshark, "-G", "folders"],
                capture_output=True,
                text=True,
                timeout=TSHARK_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        for line in proc.stdout.splitlines() if proc is not None else []:
            key, _, value = line.partition(":")
            if key.strip() == "Personal Lua Plugins" and value.strip():
                return Path(value.strip())
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "Wireshark" / "plugins"
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def install(settings: ScenarioFile, folder: Path) -> list[Path]:
    """Write the dissector and the scenario file into ``folder`` (made if missing);
    returns the two paths."""
    source = dissector_path()
    if folder.exists() and not folder.is_dir():
        raise ConfigError("wireshark", "folder", f"{folder} is not a folder")
    scenario_path = folder / scenario_file_name(settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / DISSECTOR_NAME
        shutil.copyfile(source, target)
        scenario_path.write_text(scenario_lua(settings, target), "utf-8")
    except OSError as exc:
        raise ConfigError(
            "wireshark", "folder", f"cannot write into {folder}: {exc.strerror or exc}"
        ) from None
    return [target, scenario_path]


# -- the command -----------------------------------------------------------------------------


def cmd_wireshark(args: argparse.Namespace) -> int:
    from linkstack.runtime import scenario  # noqa: PLC0415 (see scenario_table)

    settings = scenario.load(args.scenario) if args.scenario else scenario.load_default()
    if args.capture_filter:
        print(capture_filter(settings))
        return 0
    if args.install is None:  # the file alone: it names where the dissector is
        sys.stdout.write(scenario_lua(settings))
        return 0
    folder = Path(args.install).expanduser() if args.install else personal_plugins_folder()
    for path in install(settings, folder):
        print(f"wrote {path}")
    print(
        "Restart Wireshark (or Analyze > Reload Lua Plugins), then capture the "
        f"scenario's traffic:\n  wireshark -k -i lo -f '{capture_filter(settings)}'"
    )
    return 0


def add_wireshark_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``linkstack wireshark`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "wireshark",
        help="what Wireshark needs to decode a scenario's live traffic: print or install it",
        description="Make the Wireshark scenario file of a scenario: which link each UDP port "
        "of the daemons carries and between which nodes, the names of spacecraft ids and "
        "relay nodes, the coding of each kind of link. With the dissector "
        "(wireshark/linkstack.lua) Wireshark then decodes a live capture on loopback (CLTU, "
        "TC frame, Space Packet, CBOR message; CADU, TM/AOS frame, relay envelope) without "
        "any Decode As. The dissector alone finds the units by their sync patterns; the "
        "scenario file adds the names and the ports. By default the scenario file is "
        "printed; --install writes it and the dissector into a plugins folder.",
        epilog="Examples: linkstack wireshark --scenario my.toml > linkstack-scenario-my.lua; "
        "linkstack wireshark --scenario my.toml --install; dumpcap -i lo -f "
        '"$(linkstack wireshark --scenario my.toml --capture-filter)" -w live.pcapng',
    )
    p.add_argument("--scenario", help="scenario file (TOML; default: the shipped default)")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--install",
        nargs="?",
        const="",
        metavar="FOLDER",
        help="write the dissector (linkstack.lua) and the scenario file "
        "(linkstack-scenario-NAME.lua) into FOLDER, by default Wireshark's personal Lua "
        "plugins folder (as `tshark -G folders` names it; ~/.local/lib/wireshark/plugins "
        "on Linux and macOS)",
    )
    what.add_argument(
        "--capture-filter",
        action="store_true",
        help="print only the capture filter of the scenario's ports (for dumpcap/wireshark -f)",
    )
    p.set_defaults(func=cmd_wireshark)
    return p
