"""The pieces of the daemons, in one process: the port plan, time, COP-1 resync after a
ground restart, the node's transmitter, logs and the HTTP status endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from channels.link import FixedConditions, Link
from channels.scenarios import default_scenario
from linkstack.capture.link_header import link_header
from linkstack.ccsds.cop1.farm import FarmState
from linkstack.ccsds.cop1.fop import FopState
from linkstack.ccsds.spp import PacketType, SpacePacket
from linkstack.daemon.run import parse_instant, scenario_time
from linkstack.daemon.status import JsonFormatter, StatusServer, TextFormatter
from linkstack.daemon.wire import ModemModel, PortPlan, Wire, wire_link
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime.cop1_link import Ground, Spacecraft
from linkstack.runtime.security import SdlsSettings
from linkstack.runtime.uplink_config import UplinkConfig

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


# -- the port plan and time ---------------------------------------------------------------


def test_the_port_plan_numbers_every_link_of_the_default_scenario():
    plan = PortPlan(default_scenario(), "127.0.0.1", 47100, 47400)
    assert len(plan.links) == 48
    # one end per satellite (12 < daemon.sat_ports' 16) and the ground's: 13 pairs
    assert [e.name for e in plan.ends[:2]] == ["ground", "satellite CS-01"]
    assert (len(plan.ends), plan.ports) == (13, 26)
    up, down = plan.uplink("CS-01"), plan.downlink("CS-01")
    assert (up.index, down.index) == (0, 1)
    # the ground sends CS-01's CLTUs into the channel's port 47100 from its own 47400;
    # the channel delivers them to CS-01's 47401 from its port of CS-01's end, 47101
    assert (up.channel_port, up.source_port, up.node_port, up.delivered_from) == (
        47100, 47400, 47401, 47101
    )  # fmt: skip
    assert (down.channel_port, down.source_port, down.node_port, down.delivered_from) == (
        47101, 47401, 47400, 47100
    )  # fmt: skip
    assert plan.downlink("CS-12").channel_port == 47112
    assert (plan.isl("CS-01", "CS-02").index, plan.isl("CS-02", "CS-01").index) == (24, 25)
    ring = plan.isl("CS-01", "CS-12")  # the ring closes
    assert (ring.index, ring.channel_port, ring.node_port) == (47, 47101, 47412)
    used = {s.channel_port for s in plan.links} | {s.node_port for s in plan.links}
    assert used == set(range(47100, 47113)) | set(range(47400, 47413))
    assert plan.table()["links"][0] == {
        "link": "uplink CS-01",
        "index": 0,
        "kind": "uplink",
        "channel_port": 47100,
        "node_port": 47401,
        "source_port": 47400,
        "delivered_from": 47101,
    }
    assert plan.table()["ends"][3] == {
        "end": 3, "name": "satellite CS-03", "nodes": ["CS-03"],
        "channel_port": 47103, "node_port": 47403,
    }  # fmt: skip
    # a satellite sends from its end's node port, down and over laser alike
    cs03 = plan.end_of("CS-03")
    assert plan.downlink("CS-03").source_port == plan.isl("CS-03", "CS-04").source_port == 47403
    assert plan.peer_of_channel(cs03) == 47403 and plan.peer_of_node(cs03) == 47103
    sent = {"downlink CS-03", "isl CS-03->CS-02", "isl CS-03->CS-04"}
    assert {s.name for s in plan.sent_by(cs03)} == sent
    received = {"uplink CS-03", "isl CS-02->CS-03", "isl CS-04->CS-03"}
    assert {s.name for s in plan.received_by(cs03)} == received
    anyone = PortPlan(default_scenario(), "127.0.0.1", 47100, 47400, check_source=False)
    assert anyone.peer_of_channel(cs03) is None and anyone.peer_of_node(cs03) is None
    with pytest.raises(ConfigError, match="ports"):
        PortPlan(default_scenario(), "127.0.0.1", 65530, 47400)


def test_fewer_sat_ports_put_blocks_of_satellites_on_one_end():
    plan = PortPlan(default_scenario(), "127.0.0.1", 47100, 47400, sat_ports=5)
    assert [e.nodes for e in plan.ends] == [
        ("ground",),
        ("CS-01", "CS-02", "CS-03"),
        ("CS-04", "CS-05"),
        ("CS-06", "CS-07", "CS-08"),
        ("CS-09", "CS-10"),
        ("CS-11", "CS-12"),
    ]
    assert plan.ends[1].name == "satellites CS-01..CS-03"
    # a laser link inside a block goes in and out of the same end
    inside = plan.isl("CS-01", "CS-02")
    assert (inside.channel_port, inside.source_port, inside.node_port) == (47101, 47401, 47401)
    assert [e.index for e in plan.ends_of(["CS-12", "CS-02", "CS-03"])] == [1, 5]
    one = PortPlan(default_scenario(), "127.0.0.1", 47100, 47400, sat_ports=1)
    assert one.ports == 4 and {s.node_port for s in one.links} == {47400, 47401}
    with pytest.raises(ConfigError, match="sat_ports"):
        PortPlan(default_scenario(), "127.0.0.1", 47100, 47400, sat_ports=0)


def test_scenario_time_at_the_anchor():
    anchor = datetime(2026, 11, 22, 5, 0, tzinfo=UTC).timestamp()
    assert scenario_time(EPOCH, "now", anchor) == anchor - EPOCH.timestamp()
    assert scenario_time(EPOCH, "+10765", anchor) == 10765.0
    assert scenario_time(EPOCH, "2026-01-01T02:59:25Z", anchor) == 10765.0
    assert parse_instant("1700000000.5", "anchor") == 1700000000.5
    assert parse_instant("2026-01-01T00:00:00+00:00", "anchor") == EPOCH.timestamp()
    for bad, what in (("+soon", "start"), ("yesterday", "start"), ("2026-01-01T00:00", "start")):
        with pytest.raises(ConfigError, match=what):
            scenario_time(EPOCH, bad, anchor)


# -- COP-1 after a restart of the ground --------------------------------------------------


class Bench:
    """A spacecraft (FARM-1 and TM) that lives on, and grounds that come and go, over
    perfect links in emulated time."""

    def __init__(self, clock) -> None:
        self.clock = clock
        # no guards here: SDLS off (its restarts: tests/runtime/test_sdls_management.py)
        self.config = UplinkConfig(scid=0x40, initiate=None, sdls=SdlsSettings(enabled=False))
        self.down = Link("down", clock, FixedConditions(150e6, 0.004), on_delivery=self._down)
        self.spacecraft = Spacecraft(self.config, clock, self.down)
        self.ground: Ground | None = None
        self.up: Link | None = None
        self.sent: list[bytes] = []
        self.tasks: list[asyncio.Task] = []

    def _down(self, delivery) -> None:
        if self.ground is not None:
            self.ground.on_downlink(delivery)

    async def new_ground(self) -> Ground:
        """A freshly started ground: FOP-1 from scratch, synchronised on the first CLCW."""
        if self.ground is not None:
            self.ground.close()
        if self.up is not None:
            await self.up.close()
        self.up = Link(
            "up", self.clock, FixedConditions(256e3, 0.004), on_delivery=self.spacecraft.on_uplink
        )
        self.up.start()
        self.ground = Ground(replace(self.config, resync_from_clcw=True), self.clock, self.up)
        self.ground.start()
        return self.ground

    def send(self, n: int) -> list[bytes]:
        assert self.ground is not None
        packets = []
        for i in range(n):
            raw = _packet(len(self.sent) + i)
            packets.append(raw)
            self.ground.send(raw)
        self.sent += packets
        return packets

    async def __aenter__(self) -> Bench:
        self.down.start()
        self.tasks.append(asyncio.get_running_loop().create_task(self.spacecraft.run()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self.tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.ground is not None:
            self.ground.close()
        if self.up is not None:
            await self.up.close()
        await self.down.close()


def _packet(n: int) -> bytes:
    return SpacePacket(0x100, bytes([n]) * 40, PacketType.TC, seq_count=n).pack()


def test_a_restarted_ground_carries_on_with_the_farm_it_finds():
    async def main():
        clock = clk.make_clock(True)
        async with Bench(clock) as bench:
            first = await bench.new_ground()
            sent = bench.send(5)
            await clock.sleep(5.0)
            assert first.stats["sync_set_vr"] == 1 and first.fop.state is FopState.ACTIVE
            assert bench.spacecraft.farm.vr == 5
            second = await bench.new_ground()  # V(S) back to 0; FARM-1 expects 5
            assert second.fop.state is FopState.INITIAL
            sent += bench.send(4)
            await clock.sleep(5.0)
            assert second.stats["sync_set_vr"] == 1 and second.fop.vs == 9
            assert bench.spacecraft.farm.vr == 9 and bench.spacecraft.farm.state is FarmState.OPEN
            assert [p for _, p in bench.spacecraft.delivered] == sent  # once each, in order
            # FARM-1 in lockout (frames from elsewhere): Unlock first, then Set V(R)
            bench.spacecraft.farm.lockout = True
            bench.spacecraft.farm.state = FarmState.LOCKOUT
            third = await bench.new_ground()
            sent += bench.send(2)
            await clock.sleep(8.0)
            assert third.stats["sync_unlock"] == 1 and third.stats["sync_set_vr"] >= 1
            assert [p for _, p in bench.spacecraft.delivered] == sent

    clk.run(main)


def test_the_sync_waits_for_a_clcw_and_the_emulation_keeps_its_own_start():
    async def main():
        clock = clk.make_clock(True)
        up = Link("up", clock, FixedConditions(256e3))
        ground = Ground(UplinkConfig(resync_from_clcw=True), clock, up)
        ground.start()
        assert ground.fop.state is FopState.INITIAL  # no CLCW yet: nothing initiated
        plain = Ground(UplinkConfig(), clock, up)
        plain.start()
        assert plain.fop.state is FopState.ACTIVE  # "without CLCW check", as before
        ground.close()
        plain.close()

    clk.run(main)


# -- a node's transmitter ---------------------------------------------------------------------


def test_a_wire_link_puts_each_unit_on_the_wire_when_it_starts_to_radiate():
    async def main():
        clock = clk.make_clock(True)
        wire: list[tuple[float, bytes]] = []
        link = wire_link("up", clock, ModemModel(8000.0), lambda u: wire.append((clock.now(), u)))
        link.start()
        for k in range(3):
            assert link.send(bytes([k]) * 100) == k
        await link.drain()
        await link.close()
        # 100 octets at 8 kbit/s: 0.1 s each, sent back to back
        assert [u[0] for _, u in wire] == [0, 1, 2]
        assert [t for t, _ in wire] == pytest.approx([0.0, 0.1, 0.2])
        assert link.model.conditions(5.0).up

    clk.run(main)


def test_the_offset_to_kernel_stamps_never_makes_a_unit_early(monkeypatch):
    """A process paused between its two clock reads (each read here comes 5 ms after
    the one before) gets an offset too large by the pause, never too small: a kernel
    stamp mapped with it is late by the pause, never early."""
    from linkstack.daemon import wire

    true_offset_s = 10_000.0
    instant = [1_796_000_000.0]

    def read_unix() -> float:
        instant[0] += 5e-3
        return instant[0]

    def read_now() -> float:
        instant[0] += 5e-3
        return instant[0] + true_offset_s

    monkeypatch.setattr(wire.time, "time", read_unix)
    offset_s = wire.unix_offset_s(read_now)
    assert true_offset_s <= offset_s <= true_offset_s + 5e-3 + 1e-6


def test_the_wire_hands_each_unit_the_instant_the_kernel_had_it():
    """A daemon busy elsewhere reads a datagram late; the instant it hands on is the
    kernel's (SO_TIMESTAMPNS), so the lateness of the read is not added to the
    link's; and a datagram that comes in while a batch is being read gets its own
    instant, never one before it was sent. Real sockets on loopback, the wall clock."""

    async def main():
        clock = clk.make_clock(False)
        wire = Wire("127.0.0.1", clock)
        got: list[tuple[int, float, float]] = []  # (k, instant handed on, when read)
        sent: dict[int, tuple[float, float]] = {}  # the clock just before and after sendto
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def send(k: int) -> None:
            before = clock.now()
            tx.sendto(link_header(7) + bytes([k]), ("127.0.0.1", port))
            sent[k] = (before, clock.now())  # a test preempted in between: the kernel's is in it

        WARMUP = 255  # the warm-up datagram's one octet
        warmup: list[float] = []  # how late the kernel's instant was behind the read

        def on_unit(unit: bytes, t_s: float) -> None:
            k = unit[0]
            if k == WARMUP:
                warmup.append(clock.now() - t_s)
                return
            got.append((k, t_s, clock.now()))
            if k % 5 < 4:  # the next one comes in while this batch is read
                time.sleep(0.003)
                send(k + 1)

        await wire.open()
        try:
            await wire.listen(port, {7: (on_unit, None)}, "test")
            # Linux turns stamping on a moment after the first socket asks for it
            # (deferred work); until then a datagram is stamped when it is read. Wait
            # for it: a datagram read 20 ms late must carry an instant 20 ms old.
            for _ in range(100):
                tx.sendto(link_header(7) + bytes([WARMUP]), ("127.0.0.1", port))
                time.sleep(0.02)
                await asyncio.sleep(0.005)
                if warmup and warmup[-1] >= 0.015:
                    break
            assert warmup and warmup[-1] >= 0.015, warmup
            for first in range(0, 25, 5):
                send(first)
                time.sleep(0.05)  # the loop is blocked: the datagram waits unread
                await asyncio.sleep(0.02)
        finally:
            wire.close()
            tx.close()
        return got, sent

    got, sent = clk.run(main, emulated=False)
    assert [k for k, _, _ in got] == list(range(25))
    for k, t_s, read in got:
        before, after = sent[k]
        assert before - 0.0005 <= t_s <= min(read, after + 0.002), (k, before, t_s, after, read)
        if k % 5 == 0:
            assert read - t_s >= 0.045  # read late, handed on with the kernel's instant


# -- logs and the HTTP endpoint -----------------------------------------------------------------


def _record(msg: str, **fields) -> logging.LogRecord:
    record = logging.LogRecord("linkstack.daemon", logging.INFO, __file__, 1, msg, (), None)
    record.fields = fields
    return record


def test_log_records_are_one_json_object_or_key_values_a_line():
    rec = _record("status", t_s=12.5, links=[{"satellite": "CS-06", "ebn0_db": float("nan")}])
    doc = json.loads(JsonFormatter("ground").format(rec))
    assert (doc["daemon"], doc["level"], doc["msg"], doc["t_s"]) == (
        "ground",
        "info",
        "status",
        12.5,
    )
    assert doc["links"] == [{"satellite": "CS-06", "ebn0_db": None}]
    assert "\n" not in JsonFormatter("ground").format(rec)
    text = TextFormatter("sat").format(_record("ready", role="sat", t_s=1.0))
    assert " INFO sat 'ready' role=sat t_s=1.0" in text


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict | None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    code = int(head.split()[1])
    return code, json.loads(body) if body else None


async def test_the_status_endpoint_answers_json():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = StatusServer("127.0.0.1", port, {"/status": lambda: {"ok": 1, "x": float("inf")}})
    await server.start()
    try:
        assert await _get(port, "/status") == (200, {"ok": 1, "x": None})
        assert await _get(port, "/status/?full=1") == (200, {"ok": 1, "x": None})
        code, body = await _get(port, "/nothing")
        assert code == 404 and body["paths"] == ["/status"]
        assert (await _get(port, "/status", "POST"))[0] == 405
        assert await _get(port, "/status", "HEAD") == (200, None)
    finally:
        await server.close()


def test_json_logs_go_to_stderr(capsys):
    from linkstack.daemon.status import event, setup_logging

    setup_logging("channel", "info", "json")
    try:
        event("hello", n=1)
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["n"] == 1
    finally:
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
        root.setLevel(logging.WARNING)


def test_the_status_line_says_aos_elevation_ebn0_doppler_rates_and_the_queue():
    from linkstack.daemon.status import status_line

    view = {
        "satellite": "CS-08",
        "aos": True,
        "station": "Sanya",
        "elevation_deg": 15.36,
        "ebn0_up_db": 21.46,
        "ebn0_down_db": 17.04,
        "doppler_up_hz": -39935.8,
        "doppler_down_hz": -158632.7,
        "tm_frames_per_s": 5.8,
        "tm_frame_error_rate": 0.0,
    }
    doc = {
        "utc": "2026-01-01T02:59:30Z",
        "ground": {"links": [view, {"satellite": "CS-07", "aos": False}]},
        "app": {
            "queue": {"received": 1, "submitted": 2, "answered": 1, "published": 4},
            "pending": 2,
            "mqtt": "connected",
        },
    }
    line = status_line(doc)
    assert line == (
        "2026-01-01T02:59:30Z CS-08 AOS Sanya el 15.4deg Eb/N0 21.5/17.0 dB "
        "Doppler -39.9/-158.6 kHz TM 5.8 fr/s FER 0; queries: 3 waiting, 1 to publish, "
        "4 published; mqtt connected"
    )
    # a satellite daemon alone: its own view; nobody in view says so
    assert "CS-08 AOS Sanya" in status_line({"satellites": {"satellites": [view]}})
    assert status_line({"utc": "x", "channel": {"in_view": []}}) == "x no satellite in view"


def test_rates_cover_the_window_however_often_they_are_read():
    from linkstack.daemon.parts import Rates

    r = Rates(window_s=5.0)
    assert r.delta("sent", 3, 0.0) == 3  # counters start at zero
    assert r.rate("fps", 0, 0.0) == 0.0
    # a status line every 5 s, and an HTTP poll every 0.5 s in between
    for k in range(1, 31):
        t = 0.5 * k
        d, rate = r.delta("sent", 3 + 10 * t, t), r.rate("fps", 10 * t, t)
        if t >= 5.0:  # a full window behind: 10 units/s, whoever asked in between
            assert d == pytest.approx(50.0) and rate == pytest.approx(10.0)
    assert r.delta("sent", 153, 20.0) == pytest.approx(153 - (3 + 10 * 15.0))
