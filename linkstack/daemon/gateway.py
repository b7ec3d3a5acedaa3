"""The ground-station interface for an outside mission control system.

A real ground station takes telecommand from the mission control system as TC
frames or CLTUs and hands it the telemetry it received as frames (after frame
synchronisation, derandomization and Reed-Solomon) or as raw CADUs. The ground daemon
does the same for each satellite of ``[gateway]`` (scenario keys, README "Your own
mission control"): what comes in goes up on that satellite's uplink, beside the
CLTUs of linkstack's own FOP-1, through the same station and the same physics; what
comes down is handed out as the station decodes it.

- **UDP**: one unit a datagram. TC frames or CLTUs in on ``port + k`` (satellite k of
  the scenario), TM frames or CADUs out to ``host:peer_port + k``.
- **TCP**: this end listens on ``port + k``; one connection carries both directions,
  units back to back with nothing between them (each delimits itself: a TC frame by
  its length field, a CLTU by its tail sequence, a TM frame or a CADU by its fixed
  length), which is how F Prime's GDS, COSMOS's stream protocols and YAMCS's TCP
  links read them. Every connection gets the downlink.

Nothing is trusted: a TC frame is checked as the satellite would check it (header,
FECF, this satellite's SCID) and a CLTU for its shape before it takes uplink time; a
refused unit is counted under its reason (``counters()``); a TCP stream whose framing
is lost is closed (its units cannot be told apart any more). The external system's
COP-1, if it runs one, is its own business: FARM-1 on board answers it in the CLCW of
every TM frame, as it answers linkstack's FOP-1 (share a virtual channel only with
Type-BD frames, or give it a virtual channel of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from channels.link import Link
from linkstack.ccsds.coding.chains import CltuTransmitter
from linkstack.ccsds.coding.cltu import CODEBLOCK_LEN as CLTU_BLOCK
from linkstack.ccsds.coding.cltu import START_SEQUENCE as CLTU_START
from linkstack.ccsds.coding.cltu import TAIL_SEQUENCE as CLTU_TAIL
from linkstack.ccsds.tc import TcConfig, TcFrame
from linkstack.daemon.wire import cltu_shape_fault
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.scenario import GatewaySettings

log = logging.getLogger("linkstack.daemon")

# the longest CLTU: a TC frame of 1024 octets (the 10-bit length field's most) in
# codeblocks of 7 information octets, with start and tail sequences
MAX_CLTU_LEN = len(CLTU_START) + -(-1024 // 7) * CLTU_BLOCK + len(CLTU_TAIL)
MAX_TCP_BUFFER = 4 << 20  # octets of downlink a slow TCP reader may have waiting


class StreamFramingError(DecodeError):
    """A byte stream's units can no longer be told apart."""


class UnitStream:
    """Sans-I/O: cut a byte stream into the units it carries back to back
    (``"tc_frame"`` by its length field, ``"cltu"`` by its tail sequence, anything
    of fixed ``length``). :meth:`feed` returns the whole units so far and keeps the
    rest; it raises :class:`StreamFramingError` where the stream stops making sense
    (a CLTU without its start sequence, or without a tail within the longest CLTU)."""

    def __init__(self, kind: str, length: int | None = None, max_cltu: int = MAX_CLTU_LEN) -> None:
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
        if self.kind == "tc_frame":
            if len(buf) < 4:
                return None
            n = ((buf[2] & 0x03) << 8 | buf[3]) + 1  # the frame length field, plus one
            return n if len(buf) >= n else None
        if self.kind == "cltu":
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
        assert self.length is not None
        return self.length if len(buf) >= self.length else None


@dataclass(frozen=True)
class GatewayEnd:
    """What the interface of one satellite needs: its index in the scenario (its
    ports), its uplink radio, and how its TC frames must look."""

    satellite: str
    index: int
    uplink: Link
    tc: TcConfig
    cltu: CltuTransmitter


def uplink_check(kind: str, tc: TcConfig) -> Callable[[bytes], str | None]:
    """The check of one unit from the outside system: the reason to refuse it, or None."""
    if kind == "cltu":
        return cltu_shape_fault

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
    ``downlink(satellite, unit)`` is what the ground hands it: TM frames or CADUs as
    ``settings.downlink`` says. ``stats`` counts what went each way, ``refused``
    what was refused, by reason."""

    def __init__(self, settings: GatewaySettings, ends: list[GatewayEnd]) -> None:
        self.settings = settings
        self.ends = {end.satellite: end for end in ends}
        self.stats: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._checks = {end.satellite: uplink_check(settings.uplink, end.tc) for end in ends}
        self._udp: dict[str, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.Server] = []
        self._writers: dict[str, set[asyncio.StreamWriter]] = {e.satellite: set() for e in ends}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------
    async def open(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        for end in self.ends.values():
            port = s.port_of(end.index)
            try:
                if s.transport == "udp":
                    transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(_Datagrams, self, end.satellite),
                        local_addr=(s.host, port),
                    )
                    self._udp[end.satellite] = transport
                else:
                    server = await asyncio.start_server(
                        functools.partial(self._serve, end.satellite),
                        s.host,
                        port,
                    )
                    self._servers.append(server)
            except OSError as exc:
                self.close()
                raise ConfigError(
                    "gateway",
                    "port",
                    f"cannot listen on {s.transport.upper()} {s.host}:{port} for "
                    f"{end.satellite}: {exc.strerror or exc}",
                ) from None
        log.info(
            "gateway open: %s, %s in, %s out, ports %d..%d",
            s.transport,
            s.uplink,
            s.downlink,
            s.port,
            s.port + max(e.index for e in self.ends.values()) if self.ends else s.port,
        )

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
        for task in self._tasks:
            task.cancel()

    # -- up: from the outside system to the satellite --------------------------------
    def uplink(self, satellite: str, unit: bytes) -> bool:
        """Radiate one unit from the outside system; whether it was taken."""
        self.stats["units_in"] += 1
        fault = self._checks[satellite](unit)
        if fault is not None:
            self.refused[fault] += 1
            return False
        end = self.ends[satellite]
        cltu = end.cltu.cltu(unit) if self.settings.uplink == "tc_frame" else unit
        if end.uplink.send(cltu) is None:
            self.refused["uplink_queue_full"] += 1
            return False
        self.stats["cltus_up"] += 1
        return True

    async def _serve(
        self, satellite: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        log.info("gateway: %s connected for %s", peer, satellite)
        self.stats["tcp_connections"] += 1
        self._writers[satellite].add(writer)
        stream = UnitStream(self.settings.uplink)
        try:
            while data := await reader.read(65_536):
                for unit in stream.feed(data):
                    self.uplink(satellite, unit)
        except StreamFramingError as exc:
            self.refused["tcp_framing_lost"] += 1
            log.warning("gateway: %s for %s: %s; closing the connection", peer, satellite, exc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers[satellite].discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            log.info("gateway: %s for %s closed", peer, satellite)

    # -- down: from the satellite to the outside system ------------------------------
    def downlink(self, satellite: str, unit: bytes) -> None:
        """Hand one received unit (a TM frame or a CADU) to the outside system."""
        end = self.ends.get(satellite)
        if end is None:
            return
        if self.settings.transport == "udp":
            transport = self._udp.get(satellite)
            if transport is None:
                return
            transport.sendto(unit, (self.settings.host, self.settings.peer_port_of(end.index)))
            self.stats["units_out"] += 1
            return
        for writer in list(self._writers[satellite]):
            if writer.transport.get_write_buffer_size() > MAX_TCP_BUFFER:
                self.stats["units_dropped_slow_reader"] += 1
                continue
            writer.write(unit)
            self.stats["units_out"] += 1

    def counters(self) -> dict[str, object]:
        return {"stats": dict(self.stats), "refused": dict(self.refused)}


class _Datagrams(asyncio.DatagramProtocol):
    """One satellite's UDP port: each datagram is one unit for its uplink."""

    def __init__(self, gateway: Gateway, satellite: str) -> None:
        self.gateway = gateway
        self.satellite = satellite

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.gateway.uplink(self.satellite, data)

    def error_received(self, exc: Exception) -> None:
        # e.g. ECONNREFUSED from a downlink datagram nobody listened for
        self.gateway.stats["udp_errors"] += 1
