"""Captures of linkstack's traffic as other tools make them, from the project's own.

- :func:`frames_late`: the frame records written when a tool decoded the unit, some
  milliseconds after its CLTU or CADU (or before it, ``delay_s`` < 0), the records in
  time order, so that other units come between a unit and its frame record; written
  by the project's writer (linkstack/capture/pcap.py) with the side file.
- :func:`on_port_plan`: what ``tshark -i lo`` sees of running daemons: each CLTU and
  CADU behind its link's header on the ports of a scenario's port plan
  (linkstack/daemon/wire.py), sent from the sender's end's node port to its channel
  port and, ``deliver_s`` later, from the receiver's end's channel port to its node
  port; everything on 127.0.0.1, a pcapng written by scapy; no frame records, no
  packets, no side file.
- :func:`port_per_link`: a recorder's capture with one UDP port per link (a layer's
  base port + the link's number), one view, no names: what a profile's port lists
  (``[ports] cltu = ["47100-47111"]``) are for.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcapng

from linkstack.capture.link_header import link_header
from linkstack.capture.pcap import PcapCapture, PcapReader
from linkstack.daemon.wire import LinkSpec, PortPlan
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.scenario import ScenarioFile

FRAME_LAYERS = ("tc_frame", "tm_frame", "aos_frame", "uslp_frame")
UNIT_LAYERS = ("cltu", "tm_cadu", "aos_cadu")


def frames_late(src: Path, dst: Path, delay_s: float) -> Path:
    """A copy of the capture ``src`` with every frame record ``delay_s`` after its unit."""
    reader = PcapReader(src)
    timed = []
    for i, u in enumerate(reader):
        t_s = u.t_s + delay_s if u.layer in FRAME_LAYERS else u.t_s
        timed.append((t_s, i, u))
    timed.sort(key=lambda x: (x[0], x[1]))
    with PcapCapture(dst, reader.epoch) as cap:
        for t_s, _, u in timed:
            cap.unit(u.layer, t_s, u.src, u.dst, u.data)
    return dst


def units_only(src: Path, dst: Path) -> Path:
    """A copy of the capture ``src`` with its CLTUs and CADUs alone (what the port
    plan shows of it), by the project's writer."""
    reader = PcapReader(src)
    with PcapCapture(dst, reader.epoch) as cap:
        for u in reader:
            if u.layer in UNIT_LAYERS:
                cap.unit(*u)
    return dst


def _spec(plan: PortPlan, layer: str, src: str, dst: str) -> LinkSpec:
    """The link of a unit of ``layer`` from node ``src`` to ``dst`` (``sat:NAME``)."""
    src, dst = src.removeprefix("sat:"), dst.removeprefix("sat:")
    if layer == "cltu":
        return plan.uplink(dst)
    if layer == "tm_cadu":
        return plan.downlink(src)
    return plan.isl(src, dst)


def on_port_plan(src: Path, dst: Path, settings: ScenarioFile, deliver_s: float = 0.005) -> Path:
    """The CLTUs and CADUs of the capture ``src`` on the port plan of ``settings``."""
    reader = PcapReader(src)
    d = settings.daemon
    plan = PortPlan.of(settings.scenario, d)
    t0 = reader.epoch.timestamp()
    packets = []
    for i, u in enumerate(reader):
        if u.layer not in UNIT_LAYERS:
            continue
        spec = _spec(plan, u.layer, u.src, u.dst)
        for t_s, sport, dport in (
            (u.t_s, spec.source_port, spec.channel_port),  # into the channel
            (u.t_s + deliver_s, spec.delivered_from, spec.node_port),  # out of it
        ):
            pkt = (
                Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
                / IP(src="127.0.0.1", dst="127.0.0.1")
                / UDP(sport=sport, dport=dport)
                / Raw(link_header(spec.index) + u.data)
            )
            pkt.time = t0 + t_s
            packets.append((t_s, i, pkt))
    packets.sort(key=lambda x: (x[0], x[1]))
    wrpcapng(str(dst), [p for _, _, p in packets])
    return dst


def clear_default_text() -> str:
    """The shipped default scenario with SDLS off: the committed samples are clear."""
    text = scenario_file.default_text()
    at = text.index("[sdls]")
    flag = text.index("enabled = true", at)
    return text[:flag] + "enabled = false" + text[flag + len("enabled = true") :]


def laser_relay_on_plan(folder: Path) -> tuple[Path, Path, Path]:
    """pcaps/laser-relay.pcap's CLTUs and CADUs (all three kinds of link) as tshark sees
    them between running daemons of the default scenario (a pcapng in ``folder``), its
    scenario file, and the same units in a linkstack capture."""
    scenario = folder / "default.toml"
    scenario.write_text(clear_default_text())
    sample = Path(__file__).resolve().parents[2] / "pcaps" / "laser-relay.pcap"
    pcapng = on_port_plan(sample, folder / "lo.pcapng", scenario_file.load(scenario))
    return pcapng, scenario, units_only(sample, folder / "units.pcap")


def port_per_link(
    src: Path, dst: Path, base: dict[str, int], *, one_port: bool = False
) -> dict[str, list[int]]:
    """The CLTUs and CADUs of ``src`` sent from 127.0.0.1:40000 to ``base[layer] + n``,
    ``n`` the link's number in its layer (in the order links first appear; 0 for every
    link with ``one_port``), as a pcapng at ``dst``; each layer's ports."""
    reader = PcapReader(src)
    t0 = reader.epoch.timestamp()
    links: dict[str, dict[tuple[str, str], int]] = {layer: {} for layer in base}
    packets = []
    for u in reader:
        if u.layer not in base:
            continue
        n = links[u.layer].setdefault((u.src, u.dst), len(links[u.layer]))
        pkt = (
            Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
            / IP(src="127.0.0.1", dst="127.0.0.1")
            / UDP(sport=40000, dport=base[u.layer] + (0 if one_port else n))
            / Raw(u.data)
        )
        pkt.time = t0 + u.t_s
        packets.append(pkt)
    wrpcapng(str(dst), packets)
    if one_port:
        return {layer: [base[layer]] for layer in links}
    return {layer: [base[layer] + n for n in range(len(ls))] for layer, ls in links.items()}
