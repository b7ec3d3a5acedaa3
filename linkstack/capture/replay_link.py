"""The links of a replay, sans-I/O: which link a unit travels on, and its receiving end.

A replay (:mod:`linkstack.capture.replay`) keeps one receive chain per link as the
emulator has them: the uplink per satellite, the downlink per satellite, a laser link
per (sender, receiver). :func:`family_of` says which kind of link a captured unit
travels on (by its layer, else its ends), :func:`decode_sources` which layer of each
kind the replay decodes, and :class:`ReplayLink` holds one link's receivers, built as
its units show what they are, with what the pairing of frame units and the end of
capture checks need. The chains that fill it are :mod:`linkstack.capture.replay_uplink`
and :mod:`linkstack.capture.replay_cadu`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from linkstack.capture.network import NODE_NETWORKS
from linkstack.capture.reader import CapturedUnit
from linkstack.capture.replay_uslp import destination_flag
from linkstack.capture.window_pairing import WindowPairing
from linkstack.ccsds.spp import Reassembler

if TYPE_CHECKING:  # annotations only: the chains build the receivers
    from linkstack.ccsds.aos import AosReceiver
    from linkstack.ccsds.coding.chains import CaduReceiver, CltuReceiver
    from linkstack.ccsds.cop1.clcw import Clcw
    from linkstack.ccsds.cop1.farm import Farm
    from linkstack.ccsds.tc import TcReceiver
    from linkstack.ccsds.tm import TmReceiver
    from linkstack.ccsds.uslp_channels import UslpReceiver
    from linkstack.ccsds.uslp_cop1 import UslpCop1Receiver

UPLINK, DOWNLINK, LASER = "uplink", "downlink", "laser"
FAMILIES: dict[str, tuple[str, str]] = {  # kind of link -> (unit layer, frame layer)
    UPLINK: ("cltu", "tc_frame"),
    DOWNLINK: ("tm_cadu", "tm_frame"),
    LASER: ("aos_cadu", "aos_frame"),
}
FAMILY_OF_LAYER = {layer: fam for fam, layers in FAMILIES.items() for layer in layers}
USLP_FRAME = "uslp_frame"  # USLP frames of every kind of link: the ends say which
RECEIVER = {UPLINK: "sat", DOWNLINK: "ground", LASER: "sat"}  # who receives each kind
FRAME_KIND = {UPLINK: "tc", DOWNLINK: "tm", LASER: "aos"}  # the frames of each kind of link
SIDES = ("ground", "sat", "both")

_NETWORK_KIND = {net: prefix.rstrip(":") for prefix, net in NODE_NETWORKS.items()}


def node_kind(name: str) -> str | None:
    """``ground``, ``sat`` or None for a node name, or an address in the capture's
    networks (ground stations 10.1.0.0/16, satellites 10.2.0.0/16)."""
    if name.startswith("ground:"):
        return "ground"
    if name.startswith("sat:"):
        return "sat"
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "10" and parts[1].isdigit():
        return _NETWORK_KIND.get(int(parts[1]))
    return None


def family_of(unit: CapturedUnit) -> str:
    """The kind of link a unit travels on: by its layer, or for a Space Packet by its
    ends (ground to satellite, satellite to ground, satellite to satellite) and,
    when they say nothing, its packet type (telecommand up, telemetry down)."""
    fam = FAMILY_OF_LAYER.get(unit.layer)
    if fam is not None:
        return fam
    ends = (node_kind(unit.src), node_kind(unit.dst))
    if ends == ("ground", "sat"):
        return UPLINK
    if ends == ("sat", "ground"):
        return DOWNLINK
    if ends == ("sat", "sat"):
        return LASER
    if unit.layer == USLP_FRAME:  # the SCID names the destination on an uplink
        return UPLINK if destination_flag(unit.data) else DOWNLINK
    return UPLINK if unit.data and unit.data[0] & 0x10 else DOWNLINK


def decode_sources(layers: Iterable[str]) -> dict[str, str | None]:
    """For each kind of link, the layer to decode: the lowest the capture holds (a
    link's frames: its TC, TM or AOS frames, else USLP frames)."""
    present = set(layers)
    out: dict[str, str | None] = {}
    for fam, (unit_layer, frame_layer) in FAMILIES.items():
        if unit_layer in present:
            out[fam] = unit_layer
        elif frame_layer in present:
            out[fam] = frame_layer
        elif USLP_FRAME in present:
            out[fam] = USLP_FRAME
        else:
            out[fam] = "space_packet" if "space_packet" in present else None
    return out


class Carried:
    """A CLTU or CADU decoded on a link, waiting for the frame unit that records it:
    its time and the frame it gave (None: refused)."""

    __slots__ = ("frame", "t_s")

    def __init__(self, t_s: float, frame: bytes | None) -> None:
        self.t_s = t_s
        self.frame = frame


def _same_frame(record: CapturedUnit, carried: Carried) -> bool:
    return record.data == carried.frame


class ReplayLink:
    """The receiving end of one link: its chain, built as the units show what they are."""

    def __init__(self, family: str, key: tuple[str, ...], window_s: float) -> None:
        self.family = family
        self.key = key
        self.cltu: CltuReceiver | None = None
        self.cltu_fixed = False
        self.cadu: CaduReceiver | None = None
        self.cadu_len = 0
        self.cadu_fixed = False
        self.cadu_coding = ""
        self.tc: TcReceiver | None = None
        self.farms: dict[int, Farm] = {}
        self.tm: TmReceiver | None = None
        self.aos: AosReceiver | None = None
        self.uslp_up: UslpCop1Receiver | None = None  # USLP: the uplink's COP-1 frames
        self.uslp: UslpReceiver | None = None  # USLP: the downlink's or laser link's
        self.spp = Reassembler()
        self.apids: set[int] = set()
        self.clcw: dict[int, Clcw] = {}
        self.last: tuple[float, str, str] = (0.0, "", "")  # the last unit's time and ends
        self.recorded: list[bytes] = []  # the capture's space_packet units of this link
        self.decoded: list[bytes] = []  # packets decoded from the units
        # frame units whose unit has not come yet, units whose frame unit has not
        self.pairing: WindowPairing[CapturedUnit, Carried] = WindowPairing(window_s, _same_frame)
        self.paired = 0  # frame units that found their unit: this link's units have them
