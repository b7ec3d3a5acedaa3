"""Between daemons: each physical unit is one UDP datagram, one port per link and end.

The port plan (:class:`PortPlan`). The links of a scenario are numbered in a fixed
order: for each satellite in the scenario's order, its uplink then its downlink;
then for each laser-link pair (a, b) of the scenario, a -> b then b -> a. With N
satellites and P laser pairs that is M = 2N + 2P links (48 for the default
scenario). Link ``k`` has two ports on ``daemon.host`` (127.0.0.1):

- ``daemon.channel_port + k``: where its sender (the ground for an uplink, the
  satellite for a downlink or a laser link) sends each unit, to the channel
  daemon, when the unit starts to radiate;
- ``daemon.node_port + k``: where the channel daemon delivers the unit to its
  receiver, once the link's delay has passed, with the bit errors the link
  made (or not at all, if the link lost it).

Each datagram also comes from a known port, so that a receiver can refuse anyone
but its peer (``daemon.check_source``, on by default): the channel delivers link
``k`` from ``daemon.channel_port + k``; a sender sends from the port it receives on
(a satellite from its uplink's node port, the ground from the satellite's downlink
node port: :attr:`LinkSpec.source_port`). Before a unit takes any link time the
channel also checks its shape (:func:`unit_shape_fault`: a CLTU's start and tail
sequences, a CADU's length and sync marker), and a link queues no more than it can
send within a bounded time; what it refuses it counts, by port and reason.

So each datagram's destination port says which link it is on; the payload is
the unit and nothing else (a CLTU on an uplink, a TM CADU on a downlink, an AOS
CADU on a laser link), which is what Wireshark shows on the loopback interface
(``tshark -i lo -d udp.port==47100,linkstack.cltu ...``).

Senders pace their units at the link's rate (:func:`wire_link`: a
:class:`channels.link.Link` whose model, :class:`ModemModel`, is always up: the
physics is the channel's), so that FOP-1 hears "accepted" when a CLTU starts to
radiate, exactly as in the in-process emulation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from channels.link import Conditions, Delivery, Link, LinkEvent
from channels.scenarios import Scenario
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.ccsds.coding.cltu import CODEBLOCK_LEN as CLTU_BLOCK
from linkstack.ccsds.coding.cltu import START_SEQUENCE as CLTU_START
from linkstack.ccsds.coding.cltu import TAIL_SEQUENCE as CLTU_TAIL
from linkstack.errors import ConfigError
from linkstack.runtime.routing import StationSwitch
from linkstack.timebase import Clock

log = logging.getLogger("linkstack.daemon.wire")

GROUND = "ground"
ARRIVED = Conditions(True, 1.0)  # what a receiving node knows of the link: it arrived


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One direction of one link, and its ports: where its sender sends into the
    channel (``channel_port``) and from (``source_port``: the sender's own receiving
    port, so that the channel can tell its peer from anyone else), and where the
    channel delivers (``node_port``, from ``channel_port``)."""

    index: int
    kind: str  # "uplink", "downlink", "isl"
    src: str  # "ground" or a satellite name
    dst: str
    channel_port: int
    node_port: int
    source_port: int = 0

    @property
    def name(self) -> str:
        if self.kind == "uplink":
            return f"uplink {self.dst}"
        if self.kind == "downlink":
            return f"downlink {self.src}"
        return f"isl {self.src}->{self.dst}"


class PortPlan:
    """The links of a scenario and their ports (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        host: str,
        channel_port: int,
        node_port: int,
        *,
        check_source: bool = True,
    ) -> None:
        self.host = host
        self.check_source = check_source
        links: list[LinkSpec] = []

        def add(kind: str, src: str, dst: str) -> None:
            k = len(links)
            links.append(LinkSpec(k, kind, src, dst, channel_port + k, node_port + k))

        names = scenario.satellite_names
        for name in names:
            add("uplink", GROUND, name)
            add("downlink", name, GROUND)
        for a, b in scenario.isl_pairs:
            add("isl", names[a], names[b])
            add("isl", names[b], names[a])
        if links and max(channel_port, node_port) + len(links) - 1 > 65535:
            raise ConfigError("daemon", "ports", f"{len(links)} links do not fit below port 65536")
        by_ends = {(s.src, s.dst): s for s in links}

        def source(spec: LinkSpec) -> int:
            # a satellite sends from the port it receives its uplink on, the ground
            # from the port it receives the satellite's downlink on
            if spec.kind == "uplink":
                return by_ends[(spec.dst, GROUND)].node_port
            return by_ends[(GROUND, spec.src)].node_port

        self.links = [replace(s, source_port=source(s)) for s in links]
        self._by_ends = {(s.src, s.dst): s for s in self.links}

    def uplink(self, satellite: str) -> LinkSpec:
        return self._by_ends[(GROUND, satellite)]

    def downlink(self, satellite: str) -> LinkSpec:
        return self._by_ends[(satellite, GROUND)]

    def isl(self, src: str, dst: str) -> LinkSpec:
        return self._by_ends[(src, dst)]

    def peer_of_channel(self, spec: LinkSpec) -> int | None:
        """The one port the channel takes ``spec``'s units from (None: any)."""
        return spec.source_port if self.check_source else None

    def peer_of_node(self, spec: LinkSpec) -> int | None:
        """The one port a receiver takes ``spec``'s deliveries from (None: any)."""
        return spec.channel_port if self.check_source else None

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "link": s.name,
                "kind": s.kind,
                "channel_port": s.channel_port,
                "node_port": s.node_port,
                "source_port": s.source_port,
            }
            for s in self.links
        ]


# -- UDP -----------------------------------------------------------------------------------


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # 35 on Linux; the stubs lack it
_TIMESPEC = struct.Struct("qq")
READ_BATCH = 256  # datagrams read from one socket per wake, before other sockets' turn
SOCKET_BUFFER = 4 << 20  # octets of receive buffer a port asks for (bursts wait there)


def unix_offset_s(now: Callable[[], float], tries: int = 3) -> float:
    """What to add to a Unix instant to get ``now()``'s. Unix time is read first and
    the clock after it, so that a process preempted between the two reads makes the
    offset larger, never smaller: a unit it maps is late by that, never early (in
    the other order such a pause made units early by its length: ``bench daemon``
    saw one unit in 50,000 start 27 us before its sending). The smallest of a few
    tries is the tightest such offset."""
    best = math.inf
    for _ in range(tries):
        unix_s = time.time()
        best = min(best, now() - unix_s)
    return best


class Wire:
    """The UDP sockets of one process: one socket per port it receives on, which is
    also the port it sends that link's reverse traffic from (see the module
    docstring), and one for anything else.

    A listening socket is read until it is empty each time the loop finds it ready
    (at most :data:`READ_BATCH` datagrams, so that no port starves the others),
    rather than one datagram per wake: at thousands of units a second the loop's
    turn, not the socket, is what costs. Sends go straight to the socket; a datagram
    the kernel cannot take now (a full buffer) is lost and counted, as a unit the
    link could not carry. ``refused`` counts, per port, what was refused there."""

    def __init__(self, host: str, clock: Clock) -> None:
        self.host = host
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self.refused: dict[int, Counter[str]] = {}
        self._tx: socket.socket | None = None
        self._rx: dict[int, socket.socket] = {}

    async def open(self) -> None:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.setblocking(False)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        self._tx = tx

    async def listen(
        self,
        port: int,
        on_unit: Callable[[bytes, float], object],
        what: str,
        peer: int | None = None,
        check: Callable[[bytes], str | None] | None = None,
    ) -> None:
        """Hand ``on_unit(unit, t_s)`` the units that arrive on ``port`` (``what``:
        the key or link, for errors), with the instant the kernel had each (not when
        this process got round to it): only from port ``peer`` of this host when
        given, and only those that ``check`` finds no fault in (it returns the reason
        of a refusal).

        Linux turns receive stamps on a moment after the first socket of the host
        asks for them (deferred work, milliseconds on a busy host); a datagram that
        comes before is stamped when it is read, so a unit read late in that moment
        is late by as much. A daemon listens long before its first unit comes."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                "daemon",
                what,
                f"cannot listen on UDP {self.host}:{port}: {exc.strerror or exc} "
                "(another daemon of this role running? change daemon.channel_port/node_port)",
            ) from None
        sock.setblocking(False)
        source = (self.host, peer) if peer is not None else None
        asyncio.get_running_loop().add_reader(
            sock.fileno(), self._read, sock, port, on_unit, source, check
        )
        self._rx[port] = sock

    def _read(
        self,
        sock: socket.socket,
        port: int,
        on_unit: Callable[[bytes, float], object],
        source: tuple[str, int] | None,
        check: Callable[[bytes], str | None] | None,
    ) -> None:
        stats = self.stats
        now = self.clock.now
        offset_s = unix_offset_s(now)  # kernel stamps are Unix time
        for _ in range(READ_BATCH):
            try:
                data, ancillary, _, addr = sock.recvmsg(65_535, 64)
            except BlockingIOError:
                return
            except OSError:  # e.g. ECONNREFUSED reported on a socket that also sends
                stats["socket_errors"] += 1
                return
            stats["datagrams_in"] += 1
            fault = "not_the_peer" if source is not None and addr != source else None
            if fault is None and check is not None:
                fault = check(data)
            if fault is not None:  # refused before it costs anything
                stats["refused"] += 1
                self.refused.setdefault(port, Counter())[fault] += 1
                continue
            # now, read again: a datagram may have come in while this batch was read
            t_s = now()
            for level, kind, stamp in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(stamp)
                    t_s = min(sec + nsec * 1e-9 + offset_s, t_s)
            try:
                on_unit(data, t_s)
            except Exception:  # a unit must never stop a daemon (DESIGN.md, principle 4)
                stats["receive_errors"] += 1
                log.exception("handling a unit on port %d failed", port)

    def sender(self, port: int, source: int | None = None) -> Callable[[bytes], None]:
        """Send to ``port`` of this host, from the socket that receives on ``source``
        (listened on by the time the first unit goes) or from any port."""
        addr = (self.host, port)

        def send(unit: bytes) -> None:
            tx = self._rx.get(source) if source is not None else self._tx
            if tx is None:
                self.stats["send_closed"] += 1
                return
            try:
                tx.sendto(unit, addr)
            except BlockingIOError:  # the kernel's buffer is full: the unit is lost
                self.stats["send_blocked"] += 1
                return
            except OSError:
                # e.g. ECONNREFUSED: nothing listens on that port (yet); the unit is
                # lost, as it would be with no receiver in view
                self.stats["send_refused"] += 1
                return
            self.stats["datagrams_out"] += 1

        return send

    def close(self) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # closed from outside the loop: nothing to unregister
            loop = None
        for sock in self._rx.values():
            if loop is not None:
                loop.remove_reader(sock.fileno())
            sock.close()
        self._rx = {}
        if self._tx is not None:
            self._tx.close()
            self._tx = None


def cltu_shape_fault(unit: bytes) -> str | None:
    """Why ``unit`` is not shaped as a CLTU (start sequence, whole codeblocks, tail
    sequence), or None."""
    if not unit.startswith(CLTU_START):
        return "cltu_start_sequence"
    if not unit.endswith(CLTU_TAIL):
        return "cltu_tail_sequence"
    if (len(unit) - len(CLTU_START)) % CLTU_BLOCK:
        return "cltu_length"
    return None


def unit_shape_fault(
    kind: str, coding: CaduCoding, frame_length: int
) -> Callable[[bytes], str | None]:
    """A check of the units a link of ``kind`` carries, cheap enough to run on every
    datagram before it takes link time: a CLTU has its start sequence, whole
    codeblocks and the tail sequence; a CADU (of ``frame_length``-octet frames coded
    with ``coding``) has its length and its sync marker. Damage inside a unit is the
    receiver's business, not the channel's."""
    if kind == "uplink":
        return cltu_shape_fault
    length = len(coding.asm) + coding.codeblock_length(frame_length)
    asm = coding.asm

    def cadu(unit: bytes) -> str | None:
        if len(unit) != length:
            return "cadu_length"
        if not unit.startswith(asm):
            return "cadu_sync_marker"
        return None

    return cadu


def arrival(unit: bytes, t_s: float, unit_id: int = 0) -> Delivery:
    """A unit that came in from the channel, as the node's receivers take it."""
    return Delivery(unit, unit_id, t_s, t_s, 0, ARRIVED)


# -- a node's own transmitter ------------------------------------------------------------------


class ModemModel:
    """The sender's side of a link in a daemon: always up, at the link's rate (the
    channel daemon decides what the physics does to the unit). With a station
    switch, each unit's conditions name the station tracking the satellite when it
    left (``via``: for captures and the trace)."""

    def __init__(self, rate_bps: float, switch: StationSwitch | None = None) -> None:
        self.rate_bps = rate_bps
        self.switch = switch
        self._up = Conditions(True, rate_bps)

    def conditions(self, t_s: float) -> Conditions:
        if self.switch is None:
            return self._up
        return Conditions(True, self.rate_bps, via=self.switch.station_at(t_s) or "")


def wire_link(
    name: str, clock: Clock, model: ModemModel, transmit: Callable[[bytes], object]
) -> Link:
    """A node's transmitter: units paced at the rate, reported when they start to
    radiate (FOP-1's "accepted", the capture), and put on the wire then."""
    link = Link(name, clock, model, on_delivery=_discard, realtime=True)

    def radiate(event: LinkEvent) -> None:
        if event.kind == "sent":
            transmit(event.unit)

    link.add_listener(radiate)
    return link


def _discard(delivery: Delivery) -> None:
    pass
