"""What the nodes of one process share, and how units and nodes are named in captures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from linkstack.runtime.routing import ContactState

if TYPE_CHECKING:
    from linkstack.runtime.radio import StationSwitch
    from linkstack.runtime.trace import Trace


MAX_PACKET_DATA = 4096  # octets of message per Space Packet (longer messages are segmented)
AOS_FRAME_LEN = 1115
LAYERS = ("cltu", "tm_cadu", "aos_cadu", "tc_frame", "tm_frame", "aos_frame", "space_packet")


class CaptureSink(Protocol):
    """Where units go to be captured (``linkstack.capture.pcap.PcapCapture`` is one).

    ``layer`` is one of :data:`LAYERS`; ``src`` and ``dst`` are node names
    (``"ground:Svalbard"``, ``"sat:CS-01"``); ``t_s`` is emulated seconds since the
    scenario epoch."""

    def unit(self, layer: str, t_s: float, src: str, dst: str, data: bytes) -> None: ...

    def close(self) -> None: ...


class Site(Protocol):
    """What the nodes of one process share (an :class:`Emulation` is one; each daemon
    builds its own): ``clock``, ``contacts`` (:class:`ContactState`), ``trace``
    (:class:`Trace`), ``sink`` (a :class:`CaptureSink` or None), ``switches`` (the
    :class:`StationSwitch` of each satellite) and ``wake(satellite)``, which tells a
    satellite's pass loop that there is traffic."""

    clock: Any
    contacts: ContactState
    trace: Trace
    sink: CaptureSink | None
    switches: dict[str, StationSwitch]

    def wake(self, satellite: str) -> None: ...


def sat_node(name: str) -> str:
    return f"sat:{name}"


def ground_node(station: str) -> str:
    return f"ground:{station}"
