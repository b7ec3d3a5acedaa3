"""The ground-station interface for an outside mission control system.

A real ground station takes telecommand from the mission control system as TC
frames or CLTUs and hands it the telemetry it received as frames (after frame
synchronisation, derandomization and Reed-Solomon) or as raw CADUs. The ground daemon
does the same for each satellite of ``[gateway]`` (scenario keys, README "Your own
mission control system"): what comes in goes up on that satellite's uplink, beside
the CLTUs of linkstack's own FOP-1, through the same station and the same physics;
what comes down is handed out as the station decodes it. The ports and how units
travel on them (UDP, TCP): :mod:`linkstack.daemon.endpoints`.

Units, each way (``uplink``, ``downlink``):

- ``tc_frame`` / ``tm_frame``: the system frames and runs COP-1 itself, if it does;
  FARM-1 on board answers it in the CLCW of every TM frame, as it answers
  linkstack's FOP-1 (share a virtual channel with linkstack only with Type-BD
  frames, or give it a virtual channel of its own and a FARM on board: the radio,
  :mod:`linkstack.daemon.flight_radio`).
- ``cltu`` / ``cadu``: the system does the coding too.

With SDLS on (``[sdls]``), frames are protected on air: ``sdls = "terminate"`` has
the gateway protect the system's TC frames with the uplink's association and hand it
TM frames verified and decrypted (a station that holds the keys); ``"pass"`` hands
frames as they are on air, for a system that does SDLS itself. CLTUs and CADUs are
always as on air.
- ``packet``: Space Packets of the system's own APIDs (``apids``; linkstack's own,
  0x100-0x102, are refused): up through linkstack's FOP-1 (COP-1 in the loop, each
  packet delivered on board once and in order), down as the ground extracts them.
  On board they meet the radio's packet bridge (flight software). Each packet's
  passage is recorded (:mod:`linkstack.daemon.packet_log`): ``linkstack packets``
  joins the ground's and the radio's records into its timeline. Over MQTT (QoS 1,
  at-least-once) a repeat of one of the last ``repeat_window`` packets of an APID
  (the same octets, so the same sequence count) is a redelivery and is dropped.

Nothing is trusted: a unit is checked before it takes uplink time (a TC frame as the
satellite would check it: header, FECF, SCID; a CLTU's shape; a packet's header and
APID); a refused one is counted under its reason (``counters()``).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from channels.link import Link
from linkstack.ccsds.coding.chains import CltuTransmitter
from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.tc import TcConfig, TcFrame
from linkstack.daemon.endpoints import MqttUnits, UnitPorts
from linkstack.daemon.packet_log import PacketLog
from linkstack.daemon.wire import cltu_shape_fault
from linkstack.errors import DecodeError
from linkstack.runtime.cop1_link import SentPacket, Transmitted
from linkstack.runtime.interface_settings import LINKSTACK_APIDS, GatewaySettings
from linkstack.timebase import Clock

log = logging.getLogger("linkstack.daemon")


@dataclass(frozen=True)
class GatewayEnd:
    """What the interface of one satellite needs: its index in the scenario (its
    ports), its uplink radio, how its TC frames must look, and its COP-1 channel's
    ``send`` (packets through linkstack's FOP-1)."""

    satellite: str
    index: int
    uplink: Link
    tc: TcConfig
    cltu: CltuTransmitter
    send_packet: Callable[[bytes, object], object]  # COP-1's send(packet, tag)
    protect: Callable[[bytes], bytes] = bytes  # a TC frame as it goes on air (SDLS)


@dataclass(slots=True, eq=False)
class BridgedUp:
    """A packet from the outside system on its way up: the tag FOP-1 carries for it."""

    satellite: str
    raw: bytes
    received_s: float
    radiated_s: float | None = None
    frames: int = 0
    retransmissions: int = 0


def packet_fault(unit: bytes, apids: tuple[int, ...] | None) -> str | None:
    """Why a Space Packet from outside software may not travel, or None: it must be
    one whole packet, not on linkstack's own APIDs, and on ``apids`` when given."""
    try:
        packet = SpacePacket.unpack(unit)
    except DecodeError as exc:
        return f"packet_{exc.field}"
    if packet.apid in LINKSTACK_APIDS:
        return "packet_apid_linkstack"
    if apids is not None and packet.apid not in apids:
        return "packet_apid_not_bridged"
    return None


def uplink_check(
    kind: str, tc: TcConfig, apids: tuple[int, ...] | None = None
) -> Callable[[bytes], str | None]:
    """The check of one unit from the outside system: the reason to refuse it, or None."""
    if kind == "cltu":
        return cltu_shape_fault
    if kind == "packet":
        return lambda unit: packet_fault(unit, apids)

    def tc_frame(unit: bytes) -> str | None:
        try:
            frame = TcFrame.unpack(unit, tc.fecf, tc.segment_header)
        except DecodeError as exc:
            return f"tc_{exc.field}"
        if frame.scid != tc.scid:
            return "tc_wrong_scid"
        return None

    return tc_frame


class Gateway:
    """The interface of every satellite of ``settings`` (see the module docstring).
    ``downlink(satellite, unit)`` is what the ground hands it: TM frames, CADUs or
    packets as ``settings.downlink`` says. ``stats`` counts what went each way,
    ``refused`` what was refused, by reason."""

    def __init__(
        self,
        settings: GatewaySettings,
        ends: list[GatewayEnd],
        clock: Clock,
        packet_log: PacketLog | None = None,
        mqtt_base: str = "linkstack/mcc",
    ) -> None:
        self.settings = settings
        self.ends = {end.satellite: end for end in ends}
        self.clock = clock
        self.packet_log = packet_log if packet_log is not None else PacketLog("ground")
        self.stats: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._checks = {
            end.satellite: uplink_check(settings.uplink, end.tc, settings.apids) for end in ends
        }
        window = settings.repeats_dropped()
        # (satellite, APID) -> the last packets taken, for the repeat rule
        self._recent: defaultdict[tuple[str, int], deque[bytes]] = defaultdict(
            lambda: deque(maxlen=window)
        )
        self.ports: UnitPorts | MqttUnits
        if settings.transport == "mqtt":
            self.ports = MqttUnits(mqtt_base, self.ends, self.uplink)
        else:
            self.ports = UnitPorts(
                "gateway",
                settings.transport,
                settings.host,
                settings.port,
                settings.peer_port,
                {end.satellite: end.index for end in ends},
                self.uplink,
                settings.uplink,
            )

    async def open(self) -> None:
        await self.ports.open()
        s = self.settings
        log.info(
            "gateway open: %s, %s in, %s out, for %s",
            s.transport,
            s.uplink,
            s.downlink,
            self.ports.where(),
        )

    def close(self) -> None:
        self.ports.close()
        self.packet_log.close()

    # -- up: from the outside system to the satellite --------------------------------
    def uplink(self, satellite: str, unit: bytes) -> bool:
        """Take one unit from the outside system; whether it was taken."""
        fault = self._checks[satellite](unit)
        if fault is not None:
            self.refused[fault] += 1
            return False
        end = self.ends[satellite]
        kind = self.settings.uplink
        if kind == "packet":
            if self._repeated(satellite, unit):
                self.stats["packet_repeats_dropped"] += 1
                return True  # the copy before it is on its way
            # FOP-1 frames it, in order, and sees it acknowledged
            end.send_packet(unit, BridgedUp(satellite, unit, self.clock.now()))
            self.stats["packets_up"] += 1
            return True
        cltu = end.cltu.cltu(end.protect(unit)) if kind == "tc_frame" else unit
        if end.uplink.send(cltu) is None:
            self.refused["uplink_queue_full"] += 1
            return False
        self.stats["cltus_up"] += 1
        return True

    def _repeated(self, satellite: str, unit: bytes) -> bool:
        if not self.settings.repeats_dropped():
            return False
        recent = self._recent[satellite, SpacePacket.unpack(unit).apid]
        if unit in recent:
            return True
        recent.append(unit)
        return False

    def transmitted(self, satellite: str, sent: Transmitted) -> None:
        """A frame of a packet sent by FOP-1 began to radiate (mission control's
        ``on_other_transmitted``)."""
        up = sent.tag
        if not isinstance(up, BridgedUp):
            return
        if up.radiated_s is None:
            up.radiated_s = sent.t_s
        up.frames += 1
        up.retransmissions += int(sent.retransmission)

    def settled(self, sent: SentPacket) -> None:
        """FOP-1 is done with a packet: acknowledged or given up (COP-1's ``on_settled``)."""
        up = sent.tag
        if not isinstance(up, BridgedUp):
            return
        self.stats["packets_up_acknowledged" if not sent.failed else "packets_up_failed"] += 1
        self.packet_log.record(
            "up",
            up.satellite,
            up.raw,
            received_s=_round(up.received_s),
            radiated_s=_round(up.radiated_s),
            acknowledged_s=_round(sent.acked_t_s),
            failed=sent.failed,
            frames=up.frames,
            retransmissions=up.retransmissions,
        )

    # -- down: from the satellite to the outside system ------------------------------
    def downlink(self, satellite: str, unit: bytes) -> None:
        """Hand one received unit to the outside system."""
        if satellite in self.ends:
            self.ports.send(satellite, unit)

    def downlink_packet(self, satellite: str, t_s: float, raw: bytes) -> None:
        """A packet of an APID not linkstack's, as the ground extracted it."""
        apids = self.settings.apids
        if apids is not None and SpacePacket.unpack(raw).apid not in apids:
            self.stats["packets_down_not_bridged"] += 1
            return
        self.stats["packets_down"] += 1
        self.downlink(satellite, raw)
        self.packet_log.record(
            "down", satellite, raw, on_ground_s=_round(t_s), handed_out_s=_round(self.clock.now())
        )

    def counters(self) -> dict[str, object]:
        return {
            "stats": {**self.stats, **self.ports.stats, **self.packet_log.stats},
            "refused": dict(self.refused),
        }


def _round(t_s: float | None) -> float | None:
    return None if t_s is None else round(t_s, 6)
