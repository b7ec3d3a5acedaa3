"""Between daemons: each physical unit is one UDP datagram, a few ports per process.

The port plan (:class:`PortPlan`). The links of a scenario are numbered in a fixed
order: for each satellite in the scenario's order, its uplink then its downlink;
then for each laser-link pair (a, b) of the scenario, a -> b then b -> a. With N
satellites and P laser pairs that is M = 2N + 2P links (48 for the default
scenario; about 27,600 for the planned 2,800 satellites).

The links do not each take a port: the nodes that receive are grouped into *ends*,
each with one pair of ports on ``daemon.host`` (127.0.0.1). End 0 is the ground;
ends 1..B are the satellites, cut in the scenario's order into B blocks of
consecutive satellites, ``B = min(daemon.sat_ports, N)`` (16 by default: one end per
satellite up to 16 satellites). End ``j`` has

- ``daemon.node_port + j``: where the channel daemon delivers every unit for the
  end's nodes, once the link's delay has passed, with the bit errors the link made
  (or not at all, if the link lost it); the end's nodes also send from it;
- ``daemon.channel_port + j``: where the end's nodes send each unit, to the channel
  daemon, when the unit starts to radiate; the channel delivers to the end from it.

So a process opens one socket per end and side it runs: the channel daemon 1 + B,
the ground one, a sat daemon the ends of its satellites (all B by default), ``daemon
all`` 2 (1 + B), whatever M is: the wall-clock loop's ``select()`` takes no file
descriptor past 1023, so one socket per link or per node would not do at scale. A
channel port per end rather than one for all: each port has one peer (the source
check is a comparison of ports), and the kernel buffers each end's units apart, so
that one end's burst or flood cannot fill the buffer the others' units wait in.

Each datagram starts with a 4-octet link header (:mod:`linkstack.capture.link_header`:
0x4C, then the link's index k, 24 bits) and then the unit and nothing else (a CLTU on
an uplink, a TM CADU on a downlink, an AOS CADU on a laser link); the receiver finds
the link from k. Each datagram also comes from a known port, so that a receiver can
refuse anyone but its peer (``daemon.check_source``, on by default): the channel's
port of end j takes units only from end j's node port, and only of links whose
sender is in end j; an end's node port takes deliveries only from its own channel
port, and only of links whose receiver is in the end. Before a unit takes any link
time the channel also checks its shape (:func:`unit_shape_fault`: a CLTU's start and
tail sequences, a CADU's length and sync marker), and a link queues no more than it
can send within a bounded time; what it refuses it counts, by port and reason
(``not_the_peer``, ``link_header``, ``link_not_here``, the shape's).

Several sat daemons may share the constellation (``--name``) when each runs whole
ends: two that run satellites of one end would both need its port, and the second
is refused at start, naming the port and its satellites.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.link import Conditions, Delivery, Link, LinkEvent
from channels.scenarios import Scenario
from linkstack.capture.link_header import LINK_HEADER_LEN, MAX_LINK_INDEX, link_header, link_of
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.ccsds.coding.cltu import CODEBLOCK_LEN as CLTU_BLOCK
from linkstack.ccsds.coding.cltu import START_SEQUENCE as CLTU_START
from linkstack.ccsds.coding.cltu import TAIL_SEQUENCE as CLTU_TAIL
from linkstack.errors import ConfigError
from linkstack.runtime.interface_settings import DEFAULT_SAT_PORTS, end_count
from linkstack.runtime.routing import StationSwitch
from linkstack.timebase import Clock

if TYPE_CHECKING:
    from linkstack.runtime.daemon_settings import DaemonSettings

log = logging.getLogger("linkstack.daemon.wire")

GROUND = "ground"
ARRIVED = Conditions(True, 1.0)  # what a receiving node knows of the link: it arrived


@dataclass(frozen=True, slots=True)
class PortEnd:
    """End ``index`` of the plan: the nodes that receive on ``node_port`` and send
    into ``channel_port`` (the ground, or a block of consecutive satellites)."""

    index: int
    nodes: tuple[str, ...]
    channel_port: int
    node_port: int

    @property
    def name(self) -> str:
        if self.nodes == (GROUND,):
            return GROUND
        if len(self.nodes) == 1:
            return f"satellite {self.nodes[0]}"
        return f"satellites {self.nodes[0]}..{self.nodes[-1]}"


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One direction of one link, and its ports: its sender sends into the channel
    at ``channel_port`` from ``source_port`` (its end's node port, so that the channel
    can tell its peer from anyone else); the channel delivers to ``node_port`` (the
    receiver's end) from ``delivered_from`` (that end's channel port). Every datagram
    of the link carries ``index`` in its link header."""

    index: int
    kind: str  # "uplink", "downlink", "isl"
    src: str  # "ground" or a satellite name
    dst: str
    channel_port: int
    node_port: int
    source_port: int
    delivered_from: int
    src_end: int
    dst_end: int

    @property
    def name(self) -> str:
        if self.kind == "uplink":
            return f"uplink {self.dst}"
        if self.kind == "downlink":
            return f"downlink {self.src}"
        return f"isl {self.src}->{self.dst}"


class PortPlan:
    """The links of a scenario, its ends and their ports (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        host: str,
        channel_port: int,
        node_port: int,
        *,
        sat_ports: int = DEFAULT_SAT_PORTS,
        check_source: bool = True,
    ) -> None:
        if sat_ports < 1:
            raise ConfigError("daemon", "sat_ports", f"must be 1 or more, got {sat_ports}")
        self.host = host
        self.check_source = check_source
        names = list(scenario.satellite_names)
        blocks = end_count(len(names), sat_ports) - 1
        if max(channel_port, node_port) + blocks > 65535:
            raise ConfigError("daemon", "ports", f"{blocks + 1} ends do not fit below port 65536")
        end_of = {GROUND: 0}
        members: list[list[str]] = [[GROUND]] + [[] for _ in range(blocks)]
        for i, name in enumerate(names):
            end_of[name] = 1 + i * blocks // len(names)
            members[end_of[name]].append(name)
        self.ends = [
            PortEnd(j, tuple(nodes), channel_port + j, node_port + j)
            for j, nodes in enumerate(members)
        ]
        self._end_of = end_of
        links: list[LinkSpec] = []

        def add(kind: str, src: str, dst: str) -> None:
            a, b = self.ends[end_of[src]], self.ends[end_of[dst]]
            links.append(
                LinkSpec(
                    len(links), kind, src, dst,
                    channel_port=a.channel_port,
                    node_port=b.node_port,
                    source_port=a.node_port,
                    delivered_from=b.channel_port,
                    src_end=a.index,
                    dst_end=b.index,
                )
            )  # fmt: skip

        for name in names:
            add("uplink", GROUND, name)
            add("downlink", name, GROUND)
        for a_i, b_i in scenario.isl_pairs:
            add("isl", names[a_i], names[b_i])
            add("isl", names[b_i], names[a_i])
        if len(links) - 1 > MAX_LINK_INDEX:
            raise ConfigError("daemon", "links", f"{len(links)} links do not fit the link header")
        self.links = links
        self._by_ends = {(s.src, s.dst): s for s in links}

    @classmethod
    def of(
        cls, scenario: Scenario, daemon: DaemonSettings, *, check_source: bool | None = None
    ) -> PortPlan:
        """The plan a scenario file's ``[daemon]`` table makes (``check_source``: its
        own unless given)."""
        return cls(
            scenario,
            daemon.host,
            daemon.channel_port,
            daemon.node_port,
            sat_ports=daemon.sat_ports,
            check_source=daemon.check_source if check_source is None else check_source,
        )

    def uplink(self, satellite: str) -> LinkSpec:
        return self._by_ends[(GROUND, satellite)]

    def downlink(self, satellite: str) -> LinkSpec:
        return self._by_ends[(satellite, GROUND)]

    def isl(self, src: str, dst: str) -> LinkSpec:
        return self._by_ends[(src, dst)]

    def end_of(self, node: str) -> PortEnd:
        """The end of ``node`` ("ground" or a satellite's name)."""
        return self.ends[self._end_of[node]]

    def ends_of(self, nodes: Iterable[str]) -> list[PortEnd]:
        """The ends ``nodes`` are in, in the plan's order."""
        return [self.ends[j] for j in sorted({self._end_of[n] for n in nodes})]

    def sent_by(self, end: PortEnd) -> list[LinkSpec]:
        """The links whose sender is in ``end`` (what its channel port takes)."""
        return [s for s in self.links if s.src_end == end.index]

    def received_by(self, end: PortEnd) -> list[LinkSpec]:
        """The links whose receiver is in ``end`` (what its node port takes)."""
        return [s for s in self.links if s.dst_end == end.index]

    def peer_of_channel(self, end: PortEnd) -> int | None:
        """The one port the channel's port of ``end`` takes units from (None: any)."""
        return end.node_port if self.check_source else None

    def peer_of_node(self, end: PortEnd) -> int | None:
        """The one port ``end``'s node port takes deliveries from (None: any)."""
        return end.channel_port if self.check_source else None

    @property
    def ports(self) -> int:
        """How many UDP ports the plan takes, all ends and both sides."""
        return 2 * len(self.ends)

    def ranges(self) -> dict[str, tuple[int, int]]:
        """The first and last port of each side: ``channel_port``, ``node_port``."""
        last = len(self.ends) - 1
        first_c, first_n = self.ends[0].channel_port, self.ends[0].node_port
        return {"channel_port": (first_c, first_c + last), "node_port": (first_n, first_n + last)}

    def table(self) -> dict[str, list[dict[str, Any]]]:
        """The ends and the links, as the HTTP endpoint ``/ports`` serves them."""
        return {
            "ends": [
                {
                    "end": e.index,
                    "name": e.name,
                    "nodes": list(e.nodes),
                    "channel_port": e.channel_port,
                    "node_port": e.node_port,
                }
                for e in self.ends
            ],
            "links": [
                {
                    "link": s.name,
                    "index": s.index,
                    "kind": s.kind,
                    "channel_port": s.channel_port,
                    "node_port": s.node_port,
                    "source_port": s.source_port,
                    "delivered_from": s.delivered_from,
                }
                for s in self.links
            ],
        }


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


UnitCheck = Callable[[bytes], str | None]  # the reason a unit is refused, or None
OnUnit = Callable[[bytes, float], object]  # a unit and the instant the kernel had it


class Wire:
    """The UDP sockets of one process: one socket per port it receives on, which is
    also the port it sends from (see the module docstring), and one for anything else.

    A port carries several links: each datagram's link header names its link, and
    the port hands the unit (the datagram without its header) to that link's
    handler. A listening socket is read until it is empty each time the loop finds
    it ready (at most :data:`READ_BATCH` datagrams, so that no port starves the
    others), rather than one datagram per wake: at thousands of units a second the
    loop's turn, not the socket, is what costs. Sends go straight to the socket; a
    datagram the kernel cannot take now (a full buffer) is lost and counted, as a
    unit the link could not carry. ``refused`` counts, per port, what was refused
    there, by reason."""

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

    @property
    def sockets(self) -> int:
        """How many sockets are open."""
        return len(self._rx) + (self._tx is not None)

    async def listen(
        self,
        port: int,
        links: Mapping[int, tuple[OnUnit, UnitCheck | None]],
        what: str,
        peer: int | None = None,
    ) -> None:
        """Hand the units that arrive on ``port`` to their link's ``on_unit(unit, t_s)``
        (``links``: link index -> the handler and the check of its units), with the
        instant the kernel had each (not when this process got round to it): only
        from port ``peer`` of this host when given, only of the links given, and only
        those that the link's check finds no fault in (it returns the reason of a
        refusal). ``what``: the key or end, for errors.

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
                "(another daemon of this role, or a sat daemon with satellites of this "
                "end, running? change daemon.channel_port/node_port, or daemon.sat_ports)",
            ) from None
        sock.setblocking(False)
        source = (self.host, peer) if peer is not None else None
        asyncio.get_running_loop().add_reader(
            sock.fileno(), self._read, sock, port, dict(links), source
        )
        self._rx[port] = sock

    def _refuse(self, port: int, reason: str) -> None:
        self.stats["refused"] += 1
        self.refused.setdefault(port, Counter())[reason] += 1

    def _read(
        self,
        sock: socket.socket,
        port: int,
        links: dict[int, tuple[OnUnit, UnitCheck | None]],
        source: tuple[str, int] | None,
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
                continue  # the error is reported once: the datagrams behind it wait
            stats["datagrams_in"] += 1
            # refused before it costs anything
            if source is not None and addr != source:
                self._refuse(port, "not_the_peer")
                continue
            index = link_of(data)
            if index is None:
                self._refuse(port, "link_header")
                continue
            link = links.get(index)
            if link is None:  # a link this port does not carry (or none at all)
                self._refuse(port, "link_not_here")
                continue
            on_unit, check = link
            unit = data[LINK_HEADER_LEN:]
            fault = check(unit) if check is not None else None
            if fault is not None:
                self._refuse(port, fault)
                continue
            # now, read again: a datagram may have come in while this batch was read
            t_s = now()
            for level, kind, stamp in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(stamp)
                    t_s = min(sec + nsec * 1e-9 + offset_s, t_s)
            try:
                on_unit(unit, t_s)
            except Exception:  # a unit must never stop a daemon (DESIGN.md, principle 4)
                stats["receive_errors"] += 1
                log.exception("handling a unit of link %d on port %d failed", index, port)

    def sender(self, port: int, link: int, source: int | None = None) -> Callable[[bytes], None]:
        """Send units of link ``link`` (behind its link header) to ``port`` of this
        host, from the socket that receives on ``source`` (listened on by the time
        the first unit goes) or from any port."""
        addr = (self.host, port)
        header = [link_header(link)]
        no_ancillary: list[tuple[int, int, bytes]] = []

        def send(unit: bytes) -> None:
            tx = self._rx.get(source) if source is not None else self._tx
            if tx is None:
                self.stats["send_closed"] += 1
                return
            try:
                tx.sendmsg([*header, unit], no_ancillary, 0, addr)  # no copy of the unit
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
