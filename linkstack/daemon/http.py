"""The daemons' HTTP server: aiohttp in the daemon's own event loop, with limits.

aiohttp parses the requests (its parser refuses a request line, a header or a
header count over the limits with a 400, and logs no traceback), answers, and
closes a connection that has not sent a whole request within
:attr:`HttpLimits.idle_timeout_s` of opening (aiohttp's keep-alive timer starts
with the connection: a slow-loris client that trickles its headers is cut at that
instant, whatever it sends). What aiohttp has no setting for is the number of
connections: past :attr:`HttpLimits.max_connections` a new connection gets a
``503`` and is closed at once, before any of its bytes are read. The limits are the
scenario's ``[daemon.http]`` (:class:`HttpLimits`, read and checked in
:mod:`linkstack.runtime.daemon_settings`).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

# the limits are a scenario's [daemon.http] table: defined and checked where it is read
from linkstack.runtime.daemon_settings import HttpLimits

__all__ = ["HttpServer"]

log = logging.getLogger("linkstack.daemon.http")

# The whole answer to a connection over the limit: sent before reading anything.
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 24\r\nConnection: close\r\n\r\n"
    b"too many connections now"
)


class _Refuse(asyncio.Protocol):
    """A connection past the limit: answered 503 and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class _ClientFaults(logging.Filter):
    """aiohttp logs a request it could not parse (too long, too many headers) as an
    error with a traceback: the client's fault, not ours. Such a record becomes one
    debug line, counted; any other error keeps its traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        self.count += 1
        record.msg, record.args = "http: refused a bad request: %s", (exc.message,)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return log.isEnabledFor(logging.DEBUG)


class HttpServer:
    """Serve :attr:`app` (add its routes before :meth:`start`) on ``host:port``
    within ``limits`` until :meth:`close`."""

    def __init__(self, host: str, port: int, limits: HttpLimits | None = None) -> None:
        self.host = host
        self.port = port
        self.limits = limits or HttpLimits()
        self.app = web.Application(client_max_size=self.limits.max_body_bytes)
        self.refused_busy = 0  # connections answered 503 (over max_connections)
        self._faults = _ClientFaults()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        lim = self.limits
        runner = web.AppRunner(
            self.app,
            access_log=None,  # a daemon logs what it does, not every poll
            logger=log,
            keepalive_timeout=lim.idle_timeout_s,
            max_line_size=lim.max_line_bytes,
            max_field_size=lim.max_field_bytes,
            max_headers=lim.max_headers,
            shutdown_timeout=1.0,
        )
        if self._faults not in log.filters:
            log.addFilter(self._faults)
        await runner.setup()
        self._runner = runner
        handlers = runner.server
        assert handlers is not None

        def protocol() -> asyncio.Protocol:
            if len(handlers.connections) >= lim.max_connections:
                self.refused_busy += 1
                return _Refuse()
            return handlers()

        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                protocol, self.host, self.port, backlog=lim.max_connections
            )
        except OSError:
            await runner.cleanup()
            self._runner = None
            raise
        if self.port == 0:  # tests: the port the system chose
            self.port = self._server.sockets[0].getsockname()[1]

    @property
    def refused_bad(self) -> int:
        """Requests refused with a 4xx before any route saw them (over a limit)."""
        return self._faults.count

    @property
    def connections(self) -> int:
        """Connections open now."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()  # closes the open connections, streams too
            self._runner = None
        log.removeFilter(self._faults)
