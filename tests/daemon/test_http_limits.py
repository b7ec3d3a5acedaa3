"""The daemons' HTTP endpoint under abuse, over real sockets: a request line or
header over the limit, too many headers, too many connections and slow-loris
clients each get a clean answer or are cut, nothing is logged as a traceback,
and a normal request is served all along."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from linkstack.daemon.status import StatusServer
from linkstack.runtime.daemon_settings import HttpLimits

pytestmark = pytest.mark.asyncio


async def _request(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send ``raw`` on a new connection, read the answer to its end: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


async def _status_ok(port: int) -> bool:
    code, body = await _request(port, _get("/status"))
    return code == 200 and json.loads(body) == {"ok": 1}


async def _server(limits: HttpLimits) -> StatusServer:
    server = StatusServer("127.0.0.1", 0, {"/status": lambda: {"ok": 1}}, limits=limits)
    await server.start()
    return server


async def test_oversized_request_lines_and_headers_get_a_clean_400(caplog):
    caplog.set_level(logging.DEBUG)
    server = await _server(HttpLimits(max_line_bytes=1024, max_field_bytes=1024, max_headers=8))
    try:
        long_path = "/status?" + "a" * 70_000  # the old endpoint's 500 began at 64 KiB
        assert (await _request(server.port, _get(long_path)))[0] in (400, 414)
        big_header = "X-Big: " + "b" * 70_000
        assert (await _request(server.port, _get("/status", big_header)))[0] in (400, 431)
        many = [f"X-{i}: {i}" for i in range(9)]
        assert (await _request(server.port, _get("/status", *many)))[0] in (400, 431)
        # just under the limits: served
        assert (await _request(server.port, _get("/status", *many[:5])))[0] == 200
        assert await _status_ok(server.port)
        assert server.http.refused_bad == 3
    finally:
        await server.close()
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == []


async def test_slow_loris_connections_are_cut_at_the_timeout_and_others_served():
    limits = HttpLimits(idle_timeout_s=1.0, max_connections=512)
    server = await _server(limits)
    n = 300
    try:
        conns = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", server.port) for _ in range(n))
        )
        opened = time.monotonic()
        closed_at: list[float] = []

        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """A header line every 0.2 s, never the blank line that ends them."""
            writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\n")
            try:
                for i in range(40):
                    if reader.at_eof():
                        break
                    writer.write(f"X-Slow-{i}: 1\r\n".encode())
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(1), 0.2) == b"":
                            break
                    except TimeoutError:
                        pass
            except ConnectionError:
                pass
            closed_at.append(time.monotonic() - opened)
            writer.close()

        tasks = [asyncio.create_task(trickle(r, w)) for r, w in conns]
        await asyncio.sleep(0.3)
        assert server.http.connections == n + 0  # all held, none served yet
        assert await _status_ok(server.port)  # a normal request is served meanwhile
        await asyncio.wait_for(asyncio.gather(*tasks), 6.0)
        assert len(closed_at) == n
        assert max(closed_at) < limits.idle_timeout_s + 2.0  # cut, not 40 x 0.2 s later
        assert server.http.connections == 0
        assert await _status_ok(server.port)
    finally:
        await server.close()


async def test_connections_past_the_limit_get_503_and_the_server_goes_on():
    server = await _server(HttpLimits(max_connections=4, idle_timeout_s=5.0))
    try:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
        await asyncio.sleep(0.1)
        code, body = await _request(server.port, _get("/status"))
        assert (code, body) == (503, b"too many connections now")
        assert server.http.refused_busy == 1
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        assert await _status_ok(server.port)
    finally:
        await server.close()
