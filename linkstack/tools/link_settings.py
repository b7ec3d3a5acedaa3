"""``linkstack settings``: what outside software must be told to talk to a scenario's
satellites through the gateway and the radio.

A mission control system, or flight software, configures its framing and coding to
match the link's managed parameters; this command says them, per satellite, from
the scenario file: the spacecraft id, the TC channel (frame length, FECF, segment
header, CLTU coding), the TM channel (frame length, FECF, OCF, Reed-Solomon,
randomizer, ASM, idle virtual channel), and the ports of the gateway and of the radio
when they are enabled; with the F Prime GDS command line that matches (the settings
``tests/daemon/test_gateway.py`` and ``tests/daemon/test_flight_radio.py`` run).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from linkstack.errors import ConfigError
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.scenario import ScenarioFile


def satellite_settings(settings: ScenarioFile, satellite: str) -> dict[str, Any]:
    """The link parameters and ports of one satellite of the scenario."""
    names = list(settings.scenario.satellite_names)
    if satellite not in names:
        raise ConfigError("settings", "satellite", f"no satellite {satellite!r} in this scenario")
    index = names.index(satellite)
    up = settings.emulation.uplink
    if up.protocol != "tm-tc-aos":  # the gateway and the radio refuse it too
        raise ConfigError(
            "settings", "frames.protocol", f"{up.protocol!r} frames are not described yet"
        )
    tc, tm = up.tc_config(), up.tm_config()
    cadu, cltu = up.cadu_coding, up.cltu_coding
    out: dict[str, Any] = {
        "satellite": satellite,
        "scid": settings.emulation.scid_base + index,
        "tc": {
            "vcid": up.vcid,
            "max_frame_length": tc.max_frame_length,
            "fecf": tc.fecf,
            "segment_header": tc.segment_header,
            "map_id": up.map_id if tc.segment_header else None,
            "cltu": {"bch": cltu.mode.value, "randomize": cltu.randomize},
        },
        "tm": {
            "vcid": up.vcid,
            "frame_length": tm.frame_length,
            "fecf": tm.fecf,
            "ocf": "CLCW" if tm.ocf else None,
            "idle_vcid": tm.idle_vcid,
            "reed_solomon": (
                {
                    "e": cadu.rs_e,
                    "depth": cadu.rs_depth,
                    "basis": "dual" if cadu.dual_basis else "conventional",
                }
                if cadu.rs_e
                else None
            ),
            "randomize": cadu.randomize,
            "asm": cadu.asm.hex(),
        },
    }
    sdls = up.sdls
    if sdls.enabled:  # the frame lengths above are the plain ones: what software builds
        out["sdls"] = {
            "uplink": {"spi": sdls.uplink.spi, "service": sdls.uplink.service},
            "downlink": {"spi": sdls.downlink.spi, "service": sdls.downlink.service},
            "on_air_tc_max_frame_length": up.tc_max_frame_length,
            "on_air_tm_frame_length": up.tm_frame_length,
            "gateway": settings.gateway.sdls,
        }
    gw, radio = settings.gateway, settings.radio
    if gw.enabled and (gw.satellites is None or satellite in gw.satellites):
        where: dict[str, Any]
        if gw.transport == "mqtt":  # the ground daemon's broker, a topic each way
            base = f"{settings.mqtt.prefix}/{settings.ground.name}/gateway/{satellite}"
            where = {
                "host": settings.mqtt.host,
                "port": settings.mqtt.port,
                "up_topic": f"{base}/up",
                "down_topic": f"{base}/down",
            }
        else:
            where = {"host": gw.host, "port": gw.port_of(index)}
            if gw.transport == "udp":
                where["peer_port"] = gw.peer_port_of(index)
        out["gateway"] = {
            "transport": gw.transport,
            "uplink": gw.uplink,
            "downlink": gw.downlink,
            **where,
            **({"repeat_window": gw.repeats_dropped()} if gw.uplink == "packet" else {}),
        }
    if radio.enabled and (radio.satellites is None or satellite in radio.satellites):
        out["radio"] = {
            "transport": radio.transport,
            "uplink": radio.uplink,
            "downlink": radio.downlink,
            "vcids": list(radio.vcids),
            "farm": radio.farm,
            "host": radio.host,
            "port": radio.port_of(index),
            **({"peer_port": radio.peer_port + index} if radio.transport == "udp" else {}),
        }
    gateway = out.get("gateway")
    frames = gateway and gateway["uplink"] == "tc_frame" and gateway["downlink"] == "tm_frame"
    if frames and not tc.segment_header:  # F Prime frames packets without one
        out["fprime_gds"] = fprime_arguments(out)
    return out


def fprime_arguments(sat: dict[str, Any]) -> list[str]:
    """F Prime GDS (4.4) options for the gateway of one satellite: its CCSDS framing
    (TC frames without segment header; TM frames of this length, on the flight
    software's virtual channel or linkstack's) and, over TCP, its IP adapter as the
    client of the gateway."""
    gw, radio = sat["gateway"], sat.get("radio")
    # its commands and telemetry: the flight software's virtual channel when a radio
    # hands it frames, else linkstack's own (the inference endpoint)
    vcid = sat["tm"]["vcid"]
    if radio is not None and radio["uplink"] == "tc_frame":
        vcid = radio["vcids"][0]
    args = [
        "--framing-selection",
        "space-packet-space-data-link",
        "--scid",
        str(sat["scid"]),
        "--vcid",
        str(vcid),
        "--frame-size",
        str(sat["tm"]["frame_length"]),
    ]
    if gw["transport"] == "tcp":
        args += ["--communication-selection", "ip", "--ip-client"]
        args += ["--ip-address", gw["host"], "--ip-port", str(gw["port"])]
    return args


def text_of(sat: dict[str, Any]) -> str:
    tc, tm = sat["tc"], sat["tm"]
    rs = tm["reed_solomon"]
    lines = [
        f"{sat['satellite']}: SCID {sat['scid']}",
        f"  TC: VC {tc['vcid']}, frames up to {tc['max_frame_length']} octets, "
        f"FECF {'yes' if tc['fecf'] else 'no'}, segment header "
        f"{'yes (MAP ' + str(tc['map_id']) + ')' if tc['segment_header'] else 'no'}; "
        f"CLTU BCH {tc['cltu']['bch']}, randomized {'yes' if tc['cltu']['randomize'] else 'no'}",
        f"  TM: VC {tm['vcid']} (idle frames on {tm['idle_vcid']}), frames of "
        f"{tm['frame_length']} octets, FECF {'yes' if tm['fecf'] else 'no'}, "
        f"OCF {tm['ocf'] or 'none'}; "
        + (
            f"RS(255,{255 - 2 * rs['e']}) depth {rs['depth']} {rs['basis']} basis, "
            if rs
            else "no RS, "
        )
        + f"randomized {'yes' if tm['randomize'] else 'no'}, ASM {tm['asm']}",
    ]
    sdls = sat.get("sdls")
    if sdls:
        up, down = sdls["uplink"], sdls["downlink"]
        lines.append(
            f"  SDLS: TC SPI {up['spi']} {up['service']}, TM SPI {down['spi']} "
            f"{down['service']}; the frames above are without it, as the gateway "
            f"({sdls['gateway']}) and the radio take them; on air TC up to "
            f"{sdls['on_air_tc_max_frame_length']}, TM {sdls['on_air_tm_frame_length']} octets"
        )
    for name in ("gateway", "radio"):
        part = sat.get(name)
        if part is None:
            continue
        peer = f", out to {part['host']}:{part['peer_port']}" if "peer_port" in part else ""
        if "up_topic" in part:
            peer = f", in on {part['up_topic']}, out on {part['down_topic']}"
        extra = f", VCs {part['vcids']}, FARM-1 {part['farm']}" if name == "radio" else ""
        if part.get("repeat_window"):
            extra += f", repeats of the last {part['repeat_window']} packets dropped"
        lines.append(
            f"  {name}: {part['transport'].upper()} {part['host']}:{part['port']}{peer}; "
            f"{part['uplink']} up, {part['downlink']} down{extra}"
        )
    if "fprime_gds" in sat:
        lines.append("  F Prime GDS: fprime-gds " + " ".join(sat["fprime_gds"]))
    return "\n".join(lines)


def cmd_settings(args: argparse.Namespace) -> int:
    settings = scenario_file.load(args.scenario) if args.scenario else scenario_file.load_default()
    names = args.satellite or list(settings.scenario.satellite_names)
    sats = [satellite_settings(settings, name) for name in names]
    if args.json:
        print(json.dumps(sats, indent=1))
    else:
        print("\n".join(text_of(s) for s in sats))
    return 0


def add_settings_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``linkstack settings`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "settings",
        help="the link settings outside software needs (SCIDs, frames, coding, ports)",
        description="Print, per satellite, what a mission control system at the gateway "
        "or flight software at the radio must be configured with: the spacecraft id, the "
        "TC channel (frame length, FECF, segment header, CLTU coding), the TM channel "
        "(frame length, FECF, OCF, Reed-Solomon, randomizer, ASM) and the gateway's and "
        "radio's ports when the scenario enables them; with the F Prime GDS options that "
        "match a TC/TM frame gateway.",
        epilog="Example: linkstack settings --scenario my.toml --satellite CS-08",
    )
    p.add_argument("--scenario", help="scenario file (TOML; default: the shipped default)")
    p.add_argument(
        "--satellite", action="append", help="only this satellite (repeatable; default: all)"
    )
    p.add_argument("--json", action="store_true", help="one JSON list, for programs")
    p.set_defaults(func=cmd_settings)
    return p
