"""A satellite's radio for flight software of the user's.

With ``[radio]`` in the scenario, the sat daemon is the radio of each satellite it
names for flight software that runs beside it (cFS, F Prime, the user's own): CLTUs
are decoded on board as always; what the flight software gets and gives (ports and
transports: :mod:`linkstack.daemon.endpoints`) is, each way:

- ``tc_frame`` (up): every valid TC frame (header, FECF, this satellite's SCID) of
  the flight software's virtual channels (``vcids``), as it came out of the CLTU:
  FARM-1 for those channels is the flight software's (``farm = "flight"``); or, with
  ``farm = "linkstack"``, a FARM-1 on board for each of them passes on only the
  frames it accepts (Type-AD in sequence, once; Type-BD as they come) and reports
  its CLCW in the OCF, in turn with virtual channel 0's. Frames of virtual channel 0
  stay with linkstack's FARM-1 and inference endpoint.
- ``tm_frame`` (down): TM frames of the flight software's virtual channels, made by
  its own framer for this master channel (length, SCID, OCF flag as configured); the
  satellite multiplexes them with its own frames as the master channel generation
  does (its frame count, a new FECF) and puts its FARM-1's CLCW in their OCF, unless
  the frame carries a CLCW of the flight software's own virtual channels (its FARM).
- ``packet``: Space Packets of ``apids`` (never linkstack's own 0x100-0x102): up,
  those that linkstack's FARM-1 delivered on virtual channel 0 (the gateway's
  ``packet`` mode puts them there through linkstack's FOP-1); down, framed with the
  satellite's own TM (a bounded buffer waits for the next pass).

The inference endpoint stays on its APIDs beside it. ``counters()`` says what went
each way and what was refused, by reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping

from linkstack.ccsds.cop1.clcw import Clcw, is_clcw
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.tc import frame_vcid as tc_frame_vcid
from linkstack.ccsds.tm import FECF_LEN, OCF_LEN
from linkstack.daemon.endpoints import UnitPorts
from linkstack.daemon.gateway import packet_fault
from linkstack.daemon.packet_log import PacketLog
from linkstack.errors import DecodeError
from linkstack.runtime.satellite import SatelliteNode
from linkstack.runtime.scenario import RadioSettings
from linkstack.timebase import Clock

log = logging.getLogger("linkstack.daemon")


class FlightRadio:
    """The radio of every satellite of ``nodes`` (name -> (its index in the scenario,
    its node)) for flight software (see the module docstring)."""

    def __init__(
        self,
        settings: RadioSettings,
        nodes: Mapping[str, tuple[int, SatelliteNode]],
        clock: Clock,
        packet_log: PacketLog | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.packet_log = packet_log if packet_log is not None else PacketLog("sat")
        self.nodes = {name: node for name, (_, node) in nodes.items()}
        self.stats: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        tm = next(iter(self.nodes.values())).spacecraft.config.tm_config() if nodes else None
        self._tm_len = tm.frame_length if tm is not None else 0
        self._ocf_at = (
            self._tm_len - OCF_LEN - (FECF_LEN if tm is not None and tm.fecf else 0)
            if tm is not None and tm.ocf
            else None
        )
        self.ports = UnitPorts(
            "radio",
            settings.transport,
            settings.host,
            settings.port,
            settings.peer_port,
            {name: index for name, (index, _) in nodes.items()},
            self.from_flight,
            settings.downlink,
            self._tm_len,
        )
        for name, node in self.nodes.items():
            if settings.uplink == "tc_frame":
                sc = node.spacecraft
                sc.on_other_vc = self._tc_frame_of(name)
                if settings.farm == "linkstack":
                    sc.flight_farms = {v: Farm(v, sc.config.farm_window) for v in settings.vcids}
            else:
                node.packet_listeners.append(self._packet_of(name))

    async def open(self) -> None:
        await self.ports.open()
        s = self.settings
        log.info(
            "radio open: %s, %s to flight software, %s from it, for %s",
            s.transport,
            s.uplink,
            s.downlink,
            self.ports.where(),
        )

    def close(self) -> None:
        self.ports.close()
        self.packet_log.close()

    # -- up: from the ground to the flight software ------------------------------------
    def _tc_frame_of(self, satellite: str) -> Callable[[bytes], None]:
        def on_frame(frame: bytes) -> None:
            vcid = tc_frame_vcid(frame)
            if vcid not in self.settings.vcids:
                self.stats["tc_frames_other_vc"] += 1
                return
            self.stats["tc_frames_up"] += 1
            self.ports.send(satellite, frame)

        return on_frame

    def _packet_of(self, satellite: str) -> Callable[[str, float, bytes], None]:
        def on_packet(ingress: str, t_s: float, raw: bytes) -> None:
            if ingress != "up" or packet_fault(raw, self.settings.apids) is not None:
                return  # linkstack's own, or not bridged
            self.stats["packets_up"] += 1
            self.ports.send(satellite, raw)
            self.packet_log.record("up", satellite, raw, onboard_s=round(t_s, 6))

        return on_packet

    # -- down: from the flight software to the ground ----------------------------------
    def from_flight(self, satellite: str, unit: bytes) -> bool:
        """One unit from the flight software of ``satellite``; whether it was taken."""
        node = self.nodes[satellite]
        now_s = self.clock.now()
        if self.settings.downlink == "packet":
            fault = packet_fault(unit, self.settings.apids)
            if fault is not None:
                self.refused[fault] += 1
                return False
            if not node.send_outside_packet(unit):
                self.refused["tm_buffer_full"] += 1
                return False
            self.stats["packets_down"] += 1
            self.packet_log.record("down", satellite, unit, from_flight_s=round(now_s, 6))
            return True
        fault = self._frame_fault(unit)
        if fault is not None:
            self.refused[fault] += 1
            return False
        node.send_outside_frame(unit, keep_ocf=self._own_clcw(unit))
        self.stats["tm_frames_down"] += 1
        return True

    def _frame_fault(self, frame: bytes) -> str | None:
        if len(frame) != self._tm_len:
            return "tm_frame_length"
        vcid = (frame[1] >> 1) & 0x07
        if vcid not in self.settings.vcids:
            return "tm_vcid_not_flight"
        return None  # the rest is checked where it is multiplexed (counted there)

    def _own_clcw(self, frame: bytes) -> bool:
        """Whether the frame's OCF is a CLCW of the flight software's own FARM."""
        at = self._ocf_at
        if at is None or not frame[1] & 1:
            return False
        ocf = frame[at : at + OCF_LEN]
        if not is_clcw(ocf):
            return False
        try:
            return Clcw.unpack(ocf).vcid in self.settings.vcids
        except DecodeError:
            return False

    def counters(self) -> dict[str, object]:
        return {
            "stats": {**self.stats, **self.ports.stats, **self.packet_log.stats},
            "refused": dict(self.refused),
        }
