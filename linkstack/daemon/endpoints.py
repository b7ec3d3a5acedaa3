"""Ports where outside software meets a daemon, one per satellite, and how units
travel on them.

Outside software (a mission control system at the ground daemon's gateway, flight
software at a satellite's radio) exchanges units with linkstack the way ground
stations and radios do:

- **UDP**: one unit a datagram. Units come in on ``port + k`` (satellite k of the
  scenario) and go out to ``host:peer_port + k``.
- **TCP**: linkstack listens on ``port + k``; one connection carries both ways, the
  units back to back with nothing between them, each delimited by itself
  (:class:`UnitStream`): a TC frame by its length field, a CLTU by its tail
  sequence, a Space Packet by its length field, a TM frame or a CADU by its fixed
  length. Every connection gets what goes out; a reader that falls more than
  :data:`MAX_TCP_BUFFER` behind loses units (counted) rather than the daemon's memory.
- **MQTT** (the gateway only, through the ground daemon's broker connection): one
  unit a message, in on ``<base>/gateway/<satellite>/up`` and out on
  ``<base>/gateway/<satellite>/down``, both QoS 1 (:class:`MqttUnits`).

:class:`UnitPorts` and :class:`MqttUnits` do the I/O and nothing else: what a unit
means, and whether it is taken, is their owner's (``on_unit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping

from linkstack.ccsds.coding.cltu import CODEBLOCK_LEN as CLTU_BLOCK
from linkstack.ccsds.coding.cltu import START_SEQUENCE as CLTU_START
from linkstack.ccsds.coding.cltu import TAIL_SEQUENCE as CLTU_TAIL
from linkstack.errors import ConfigError, DecodeError

log = logging.getLogger("linkstack.daemon")

# the longest CLTU: a TC frame of 1024 octets (the 10-bit length field's most) in
# codeblocks of 7 information octets, with start and tail sequences
MAX_CLTU_LEN = len(CLTU_START) + -(-1024 // 7) * CLTU_BLOCK + len(CLTU_TAIL)
MAX_TCP_BUFFER = 4 << 20  # octets that a slow TCP reader may have waiting
SPP_HEADER_LEN = 6
TC_HEADER_LEN = 5


class StreamFramingError(DecodeError):
    """A byte stream's units can no longer be told apart."""


class UnitStream:
    """Sans-I/O: cut a byte stream into the units it carries back to back
    (``"tc_frame"`` by its length field, ``"cltu"`` by its tail sequence,
    ``"packet"`` by its length field, anything else of fixed ``length``). :meth:`feed`
    returns the whole units so far and keeps the rest; it raises
    :class:`StreamFramingError` where the stream stops making sense (a unit whose
    version is not 0, a TC frame length that cannot hold its header, a CLTU without
    its start sequence or without a tail within the longest CLTU)."""

    def __init__(self, kind: str, length: int | None = None, max_cltu: int = MAX_CLTU_LEN) -> None:
        if kind not in ("tc_frame", "cltu", "packet") and not length:
            raise ValueError(f"a stream of {kind!r} needs the units' fixed length")
        self.kind = kind
        self.length = length
        self.max_cltu = max_cltu
        self._buf = bytearray()
        self._scanned = 0  # CLTU: codeblocks of the current unit already looked at

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        units = []
        while (n := self._next_length()) is not None:
            units.append(bytes(self._buf[:n]))
            del self._buf[:n]
            self._scanned = 0
        return units

    @property
    def pending(self) -> int:
        """Octets of a unit not yet whole."""
        return len(self._buf)

    def _next_length(self) -> int | None:
        buf = self._buf
        if self.kind == "cltu":
            return self._cltu_length()
        if self.kind == "tc_frame":
            if len(buf) < 4:
                return None
            if buf[0] >> 6:
                raise StreamFramingError("tc", "version", "a TC frame's version must be 0")
            n = ((buf[2] & 0x03) << 8 | buf[3]) + 1  # the frame length field, plus one
            if n <= TC_HEADER_LEN:
                raise StreamFramingError(
                    "tc", "frame_length", f"{n} octets cannot hold a TC frame's header"
                )
        elif self.kind == "packet":
            if len(buf) < SPP_HEADER_LEN:
                return None
            if buf[0] >> 5:
                raise StreamFramingError("spp", "version", "a Space Packet's version must be 0")
            n = SPP_HEADER_LEN + (buf[4] << 8 | buf[5]) + 1  # the packet data length, plus one
        else:
            assert self.length is not None
            n = self.length
        return n if len(buf) >= n else None

    def _cltu_length(self) -> int | None:
        buf = self._buf
        if len(buf) < len(CLTU_START):
            return None
        if bytes(buf[: len(CLTU_START)]) != CLTU_START:
            raise StreamFramingError("cltu", "start_sequence", "a CLTU must begin with EB 90")
        at = len(CLTU_START) + self._scanned * CLTU_BLOCK
        while at + CLTU_BLOCK <= len(buf):
            if bytes(buf[at : at + CLTU_BLOCK]) == CLTU_TAIL:
                return at + CLTU_BLOCK
            at += CLTU_BLOCK
            self._scanned += 1
        if len(buf) > self.max_cltu:
            raise StreamFramingError(
                "cltu", "tail_sequence", f"no tail sequence within {self.max_cltu} octets"
            )
        return None


class UnitPorts:
    """The ports of one interface (``what``: for logs and errors), one per satellite
    of ``indexes`` (name -> its index in the scenario). ``on_unit(satellite, unit)``
    hears each unit that comes in; :meth:`send` sends one out. ``unit_in`` and
    ``length_in`` say how a TCP stream coming in is cut (:class:`UnitStream`)."""

    def __init__(
        self,
        what: str,
        transport: str,
        host: str,
        port: int,
        peer_port: int,
        indexes: Mapping[str, int],
        on_unit: Callable[[str, bytes], object],
        unit_in: str,
        length_in: int | None = None,
    ) -> None:
        self.what = what
        self.transport = transport
        self.host = host
        self.port = port
        self.peer_port = peer_port
        self.indexes = dict(indexes)
        self.on_unit = on_unit
        self.unit_in = unit_in
        self.length_in = length_in
        self.stats: Counter[str] = Counter()
        self._udp: dict[str, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.Server] = []
        self._writers: dict[str, set[asyncio.StreamWriter]] = {n: set() for n in self.indexes}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for name, index in self.indexes.items():
            port = self.port + index
            try:
                if self.transport == "udp":
                    transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(_Datagrams, self, name), local_addr=(self.host, port)
                    )
                    self._udp[name] = transport
                else:
                    server = await asyncio.start_server(
                        functools.partial(self._serve, name), self.host, port
                    )
                    self._servers.append(server)
            except OSError as exc:
                self.close()
                raise ConfigError(
                    self.what,
                    "port",
                    f"cannot listen on {self.transport.upper()} {self.host}:{port} for "
                    f"{name}: {exc.strerror or exc}",
                ) from None

    def close(self) -> None:
        for transport in self._udp.values():
            transport.close()
        self._udp.clear()
        for server in self._servers:
            server.close()
        self._servers.clear()
        for writers in self._writers.values():
            for writer in writers:
                writer.close()
            writers.clear()

    def send(self, satellite: str, unit: bytes) -> None:
        """Send one unit to the outside software of ``satellite`` (every connection,
        over TCP); lost, and counted, where nobody can take it now."""
        index = self.indexes.get(satellite)
        if index is None:
            return
        if self.transport == "udp":
            transport = self._udp.get(satellite)
            if transport is None:
                self.stats["units_not_sent_closed"] += 1
                return
            transport.sendto(unit, (self.host, self.peer_port + index))
            self.stats["units_out"] += 1
            return
        writers = self._writers[satellite]
        if not writers:
            self.stats["units_not_sent_no_connection"] += 1
        for writer in list(writers):
            if writer.transport.get_write_buffer_size() > MAX_TCP_BUFFER:
                self.stats["units_dropped_slow_reader"] += 1
                continue
            writer.write(unit)
            self.stats["units_out"] += 1

    def where(self) -> str:
        """Which satellite is on which port, for logs."""
        return ", ".join(f"{n} on {self.port + i}" for n, i in self.indexes.items())

    def connections(self, satellite: str) -> int:
        return len(self._writers.get(satellite, ()))

    async def _serve(
        self, satellite: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        log.info("%s: %s connected for %s", self.what, peer, satellite)
        self.stats["tcp_connections"] += 1
        self._writers[satellite].add(writer)
        stream = UnitStream(self.unit_in, self.length_in)
        try:
            while data := await reader.read(65_536):
                for unit in stream.feed(data):
                    self.stats["units_in"] += 1
                    self.on_unit(satellite, unit)
        except StreamFramingError as exc:
            self.stats["tcp_framing_lost"] += 1
            log.warning("%s: %s for %s: %s; closing it", self.what, peer, satellite, exc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers[satellite].discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            log.info("%s: %s for %s closed", self.what, peer, satellite)


MAX_MQTT_IN_FLIGHT = 1024  # units out waiting for the broker's PUBACK


class MqttUnits:
    """The gateway's units over MQTT, one a message, for the satellites named:
    ``take(topic, payload)`` is called by the ground daemon's broker connection with
    each message on :attr:`filter` (it is acknowledged to the broker once this
    returns, so QoS 1 holds until the unit is taken); :meth:`send` publishes one
    unit with QoS 1 through ``publish`` (set by the connection's owner; None while
    there is none). Units out while the broker is away are lost and counted, as
    over UDP: what must not be lost is a COP-1 frame, which FOP-1 sends again."""

    def __init__(
        self, base: str, satellites: Iterable[str], on_unit: Callable[[str, bytes], object]
    ) -> None:
        self.base = f"{base}/gateway"
        self.satellites = set(satellites)
        self.on_unit = on_unit
        self.publish: Callable[[str, bytes], Awaitable[bool]] | None = None
        self.stats: Counter[str] = Counter()
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def filter(self) -> str:
        return f"{self.base}/+/up"

    def up_topic(self, satellite: str) -> str:
        return f"{self.base}/{satellite}/up"

    def down_topic(self, satellite: str) -> str:
        return f"{self.base}/{satellite}/down"

    async def open(self) -> None:
        pass  # the broker connection is the ground daemon's

    def close(self) -> None:
        for task in self._sending:
            task.cancel()

    def take(self, topic: str, payload: bytes) -> None:
        satellite = topic[len(self.base) + 1 : -len("/up")]
        if satellite not in self.satellites:
            self.stats["units_unknown_satellite"] += 1
            return
        self.stats["units_in"] += 1
        self.on_unit(satellite, payload)

    def send(self, satellite: str, unit: bytes) -> None:
        if satellite not in self.satellites:
            return
        if self.publish is None:
            self.stats["units_not_sent_offline"] += 1
            return
        if len(self._sending) >= MAX_MQTT_IN_FLIGHT:
            self.stats["units_dropped_broker_slow"] += 1
            return
        # aiomqtt hands the message to its client at once: the order is kept
        task = asyncio.get_running_loop().create_task(
            self._send(self.publish, self.down_topic(satellite), unit)
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self, publish: Callable[[str, bytes], Awaitable[bool]], topic: str, unit: bytes
    ) -> None:
        sent = await publish(topic, unit)
        self.stats["units_out" if sent else "units_not_sent_offline"] += 1

    def where(self) -> str:
        return f"{self.base}/<satellite>/up and /down for {', '.join(sorted(self.satellites))}"


class _Datagrams(asyncio.DatagramProtocol):
    """One satellite's UDP port: each datagram is one unit."""

    def __init__(self, ports: UnitPorts, satellite: str) -> None:
        self.ports = ports
        self.satellite = satellite

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.ports.stats["units_in"] += 1
        self.ports.on_unit(self.satellite, data)

    def error_received(self, exc: Exception) -> None:
        # e.g. ECONNREFUSED from a datagram nobody listened for
        self.ports.stats["udp_errors"] += 1
