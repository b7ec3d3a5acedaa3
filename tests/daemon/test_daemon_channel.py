"""The channel daemon alone, as a separate process, between ends the test plays.

Two ``linkstack daemon channel`` processes run for the whole module, on ports of
their own and at ``START`` (CS-08 over Sanya, descending, in view for about a
minute more): a clean one (the physics only) and a lossy one (injected loss and
a BER floor on the uplink). No model, no broker: ``[mqtt] enabled = false``, the
channel role uses nothing of MQTT. The test is the ground and the satellites: it
sends units to a link's channel port and receives what the daemon delivers on
the link's node port, timing both ends with the monotonic clock the daemon's
event loop also reads (``time.monotonic``).

The physics is checked from below only: a unit cannot arrive before its
serialisation at the link's rate plus the light time over the range at emission
(computed here with :class:`channels.orbit.StationView`, independently of the
daemon, and checked against its status). Upward, the slack is generous: a busy
2-core machine may schedule the daemon late, never early.
"""

from __future__ import annotations

import json
import random
import selectors
import socket
import threading
import time
import types
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from channels.constants import SPEED_OF_LIGHT_M_S
from channels.orbit import StationView
from linkstack.capture.link_header import link_header, split
from linkstack.capture.pcap import read_units
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.daemon.wire import PortPlan
from linkstack.runtime.scenario import load
from tests.daemon.test_daemon_processes import HANG_S, START, Run

IN_VIEW = "CS-08"  # over Sanya at START, descending: about 55 s to its LOS
STATION = "Sanya"
LOSS = 0.5
BER = 1e-3
SLACK_S = 3.0  # upward only: wall-clock scheduling on a busy machine
QUIET_S = 1.0  # how long "nothing arrives" is waited for, past the physical bound
LAYER = {"uplink": "cltu", "downlink": "tm_cadu", "isl": "aos_cadu"}
SMALL_FIELD_BYTES = 1024  # the lossy daemon's [daemon.http]; the default: 8 KiB
SMALL_CONNECTIONS = 6  # the default: 128


class Ends:
    """The test's side of every link of one channel daemon: a socket to send to the
    channel ports, and a thread that receives on every end's node port and keeps each
    unit with its link (from its link header) and the monotonic time it was read."""

    def __init__(self, plan: PortPlan) -> None:
        self.plan = plan
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.got: list[tuple[int, float, bytes]] = []  # (link index, t_mono, unit)
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self.by_port: dict[int, socket.socket] = {}
        # deliveries from another port than the end's channel port, or of a link into
        # another end: none expected
        self.wrong: list[tuple[object, bytes]] = []
        for end in plan.ends:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((plan.host, end.node_port))
            s.setblocking(False)
            self._sel.register(s, selectors.EVENT_READ, end)
            self.by_port[end.node_port] = s
        self._thread = threading.Thread(target=self._receive, name="node ports", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(0.05):
                while True:
                    try:
                        data, addr = key.fileobj.recvfrom(65536)
                    except BlockingIOError:
                        break
                    t = time.monotonic()
                    k, unit = split(data)
                    end = key.data
                    if addr != (self.plan.host, end.channel_port) or (
                        self.plan.links[k].node_port != end.node_port
                    ):
                        self.wrong.append((addr, data))
                        continue
                    with self._lock:
                        self.got.append((k, t, unit))

    def send(
        self, index: int, unit: bytes, *, stranger: bool = False, header: int | None = None
    ) -> float:
        """Send ``unit`` on link ``index``, behind its link header (or that of link
        ``header``; -1: none), from the port of the link's sender's end (or, as a
        ``stranger``, from any other); the monotonic time just before it left."""
        spec = self.plan.links[index]
        sock = self.tx if stranger else self.by_port[spec.source_port]
        head = b"" if header == -1 else link_header(index if header is None else header)
        t = time.monotonic()
        sock.sendto(head + unit, (self.plan.host, spec.channel_port))
        return t

    def received(self, index: int) -> list[tuple[float, bytes]]:
        with self._lock:
            return [(t, data) for k, t, data in self.got if k == index]

    def all_received(self) -> list[tuple[int, float, bytes]]:
        with self._lock:
            return list(self.got)

    def wait_for(self, index: int, count: int, timeout_s: float) -> list[tuple[float, bytes]]:
        deadline = time.monotonic() + timeout_s
        while len(got := self.received(index)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return got

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()
        self._sel.close()
        self.tx.close()


class ChannelDaemon:
    """One channel daemon with its scenario file, and the test's ends of its links."""

    def __init__(self, folder: Path, links_toml: str = "") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # Run writes a scenario file for a broker; this daemon needs none, so the file
        # is written again with Run's free ports and no MQTT
        self.run = Run(folder, types.SimpleNamespace(port=1883))
        r = self.run
        r.scenario.write_text(
            "[mqtt]\n"
            "enabled = false\n"
            "[daemon]\n"
            f"channel_port = {r.channel_port}\n"
            f"node_port = {r.node_port}\n"
            f"http_port = {r.http_port}\n"
            # no periodic status line: it would share the window of the per-link
            # status with the test's GETs (each status() starts a new one)
            "status_interval_s = 3600.0\n"
            f'out_dir = "{r.out}"\n' + links_toml
        )
        self.settings = load(r.scenario)
        self.scenario = self.settings.scenario
        d = self.settings.daemon
        self.plan = PortPlan.of(self.scenario, d)
        self.status_url = f"http://{d.host}:{d.http_port + 1}"
        self.ends = Ends(self.plan)
        self.proc = r.start("channel")
        self.t0_unix = float(START.lstrip("+"))
        self.anchor = float(r.anchor)

    def ports(self) -> set[int]:
        r = self.run
        return set(range(r.channel_port, r.channel_port + 2 * len(self.plan.ends)))

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.status_url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def t_s(self, mono: float | None = None) -> float:
        """The scenario instant at monotonic time ``mono`` (default: now), as the
        daemon's clock has it (same start, same anchor)."""
        t = self.t0_unix + (time.time() - self.anchor)
        return t if mono is None else t - (time.monotonic() - mono)

    def look(self, satellite: str, station: str, t_s: float):
        view = StationView(
            self.scenario.station(station), self.scenario.satellite(satellite), self.scenario.epoch
        )
        return view.at(t_s)

    def counters(self, kind: str) -> Counter:
        return Counter(self.get("/counters")["channel"][kind])

    def wait_counters(self, kind: str, done: int) -> Counter:
        """The counters of ``kind`` once ``done`` units have met their fate (delivered,
        corrupted or dropped)."""
        deadline = time.monotonic() + HANG_S
        while True:
            c = self.counters(kind)
            if c["delivered"] + c["corrupted"] + c["dropped"] >= done:
                return c
            if time.monotonic() > deadline:
                pytest.fail(f"the channel did not handle {done} {kind} units: {dict(c)}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    """The clean and the lossy channel daemon, started together (start-up in parallel)."""
    clean = ChannelDaemon(tmp_path_factory.mktemp("clean"))
    lossy_toml = f"[links.uplink]\nloss = {LOSS}\nber = {BER}\n"
    # and HTTP limits of its own, below the defaults (test_http_limits_from_the_scenario)
    lossy_toml += f"[daemon.http]\nmax_field_bytes = {SMALL_FIELD_BYTES}\n"
    lossy_toml += f"max_connections = {SMALL_CONNECTIONS}\n"
    lossy = ChannelDaemon(tmp_path_factory.mktemp("lossy"), lossy_toml)
    all_daemons = [clean, lossy]
    try:
        # each drew free ports before either bound any: the same ones, in theory
        assert not clean.ports() & lossy.ports(), "the two daemons drew the same ports"
        for d in all_daemons:
            _wait_ready(d)
        yield types.SimpleNamespace(clean=clean, lossy=lossy)
    finally:
        for d in all_daemons:
            d.run.kill_all()
            d.ends.close()


def _wait_ready(d: ChannelDaemon) -> None:
    deadline = time.monotonic() + HANG_S
    while '"msg":"ready"' not in d.run.log_of(d.proc):
        if d.proc.poll() is not None:
            pytest.fail(f"the channel daemon exited at start:\n{d.run.log_of(d.proc)[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the channel daemon is not ready:\n{d.run.log_of(d.proc)[-3000:]}")
        time.sleep(0.05)


def _in_view(d: ChannelDaemon) -> dict[str, dict]:
    return {v["satellite"]: v for v in d.get("/status")["channel"]["in_view"]}


def _cltus(rng: random.Random, count: int, frame_length: int) -> list[bytes]:
    return [encode_cltu(rng.randbytes(frame_length), randomize=True) for _ in range(count)]


def _cadus(d: ChannelDaemon, rng: random.Random, count: int) -> list[bytes]:
    up = d.settings.emulation.uplink
    tx = CaduTransmitter(up.tm_frame_length, up.cadu_coding)
    return tx.cadus([rng.randbytes(up.tm_frame_length) for _ in range(count)])


def _hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _check_arrivals(
    d: ChannelDaemon,
    index: int,
    units: list[bytes],
    sent_at: list[float],
    rate_bps: float,
    station: str,
    satellite: str,
) -> list[tuple[float, float]]:
    """Every unit arrived, unchanged and in order, no earlier than its serialisation
    (queued behind those ahead of it) plus the light time over the range at its
    emission; (observed one-way delay, that physical minimum) of each."""
    got = d.ends.wait_for(index, len(units), HANG_S)
    assert [data for _, data in got] == units, "all delivered, unchanged, in order"
    out = []
    for k, ((t_rx, unit), t_tx) in enumerate(zip(got, sent_at, strict=True)):
        serial_s = 8 * len(unit) / rate_bps
        # the transmitter takes unit k no earlier than it came, nor before the k ahead
        # of it have been serialised
        start = max(t_tx, sent_at[0] + k * serial_s)
        # it was emitted between then and its arrival; the range changes monotonically
        # over so short a time, so the nearer end bounds the light time from below
        range_m = min(d.look(satellite, station, d.t_s(t)).range_m for t in (start, t_rx))
        earliest = start + serial_s + range_m / SPEED_OF_LIGHT_M_S
        # 1 us: the floats of two clocks' conversions, nothing physical
        assert t_rx >= earliest - 1e-6, f"unit {k} arrived {earliest - t_rx:.6f} s too early"
        assert t_rx <= earliest + SLACK_S, f"unit {k} arrived {t_rx - earliest:.3f} s late"
        out.append((t_rx - t_tx, earliest - t_tx))
    return out


def test_in_view_units_arrive_after_serialisation_and_light_time_in_order(daemons):
    d = daemons.clean
    view = _in_view(d)
    assert IN_VIEW in view, f"{IN_VIEW} should be in view at {START}: {view}"
    station = view[IN_VIEW]["station"]
    assert station == STATION, view
    # a budget this strong has no bit errors worth the name: units arrive unchanged
    assert min(view[IN_VIEW]["ebn0_up_db"], view[IN_VIEW]["ebn0_down_db"]) > 12.0, view
    rng = random.Random(8)
    em = d.settings.emulation

    # uplink: CLTUs of full-size TC frames, sent at once: the channel serialises them
    up = d.plan.uplink(IN_VIEW).index
    cltus = _cltus(rng, 8, em.uplink.tc_max_frame_length)
    sent_at = [d.ends.send(up, unit) for unit in cltus]
    up_delays = _check_arrivals(d, up, cltus, sent_at, em.uplink_rf.rate_bps, station, IN_VIEW)

    # downlink: TM CADUs of the scenario's coding
    down = d.plan.downlink(IN_VIEW).index
    cadus = _cadus(d, rng, 3)
    cadu_length = len(em.uplink.cadu_coding.asm) + em.uplink.cadu_coding.codeblock_length(
        em.uplink.tm_frame_length
    )
    assert {len(c) for c in cadus} == {cadu_length}
    sent_at = [d.ends.send(down, unit) for unit in cadus]
    down_delays = _check_arrivals(
        d, down, cadus, sent_at, em.downlink_rf.rate_bps, station, IN_VIEW
    )

    # the daemon's status (per link: the physics at the last emission) agrees with
    # the geometry computed here, and it still sees the satellite from the same
    # station (the bounds used the right range)
    doc = d.get("/status")["channel"]
    look = d.look(IN_VIEW, station, d.t_s(sent_at[-1]))
    links = {entry["link"]: entry for entry in doc["links"]}
    for spec in (d.plan.uplink(IN_VIEW), d.plan.downlink(IN_VIEW)):
        entry = links[spec.name]
        assert entry["up"] and entry["station"] == station, entry
        assert entry["range_m"] == pytest.approx(look.range_m, abs=10e3), entry
        assert entry["elevation_deg"] == pytest.approx(look.elevation_deg, abs=0.2), entry
        assert entry["loss_rate"] == 0 and entry["corrupted_rate"] == 0, entry
        rf = em.uplink_rf if spec.kind == "uplink" else em.downlink_rf
        doppler_hz = -rf.freq_hz * look.range_rate_mps / SPEED_OF_LIGHT_M_S  # receding: < 0
        assert entry["doppler_hz"] == pytest.approx(doppler_hz, rel=0.05), entry
    assert links[d.plan.uplink(IN_VIEW).name]["ebn0_db"] > 12.0
    after = {v["satellite"]: v for v in doc["in_view"]}
    assert after[IN_VIEW]["station"] == station
    assert after[IN_VIEW]["range_km"] == pytest.approx(look.range_m / 1e3, abs=10.0)
    counters = d.counters("uplink")
    assert counters["delivered"] == len(cltus) and not counters["dropped"], dict(counters)

    light_ms = 1e3 * look.range_m / SPEED_OF_LIGHT_M_S
    print(  # what was measured (pytest -s shows it)
        f"{IN_VIEW} via {station}: range {look.range_m / 1e3:.1f} km, "
        f"light {light_ms:.3f} ms, el {look.elevation_deg:.1f} deg; uplink "
        f"{len(cltus[0])}-octet CLTU serialisation "
        f"{1e3 * 8 * len(cltus[0]) / em.uplink_rf.rate_bps:.3f} ms; one-way delays ms: "
        f"up (observed/minimum) {_ms(up_delays)}; "
        f"{cadu_length}-octet CADU down {_ms(down_delays)}"
    )


def _ms(delays: list[tuple[float, float]]) -> str:
    return ", ".join(f"{1e3 * seen:.3f}/{1e3 * least:.3f}" for seen, least in delays)


def _out_of_view(d: ChannelDaemon, for_s: float) -> str:
    """A satellite the daemon says is not in view, and that no station's mask has
    it for the next ``for_s`` seconds."""
    seen = _in_view(d)
    t = d.t_s()
    for name in d.scenario.satellite_names:
        if name in seen:
            continue
        if all(
            d.look(name, st.name, t + dt).elevation_deg < st.min_elevation_deg - 1.0
            for st in d.scenario.stations
            for dt in range(0, int(for_s) + 10, 5)
        ):
            return name
    pytest.fail(f"every satellite is in view or close to it: {seen}")


def test_out_of_view_nothing_is_delivered(daemons):
    d = daemons.clean
    sat = _out_of_view(d, 60.0)
    rng = random.Random(6)
    up, down = d.plan.uplink(sat).index, d.plan.downlink(sat).index
    before = {kind: d.counters(kind) for kind in ("uplink", "downlink")}
    cltus, cadus = _cltus(rng, 5, 256), _cadus(d, rng, 5)
    for unit in cltus:
        d.ends.send(up, unit)
    for unit in cadus:
        d.ends.send(down, unit)
    # had they gone through, they would have arrived by now: serialised one after the
    # other, and 3000 km is more than the slant range of a 500 km orbit over any mask
    em = d.settings.emulation
    serial_s = 8 * sum(map(len, cltus)) / em.uplink_rf.rate_bps
    time.sleep(serial_s + 3e6 / SPEED_OF_LIGHT_M_S + QUIET_S)
    assert not d.ends.received(up) and not d.ends.received(down)
    for kind in ("uplink", "downlink"):
        c = d.counters(kind)
        c.subtract(before[kind])
        assert c["sent"] == 5 and c["dropped"] == 5 and c["dropped_no_contact"] == 5, dict(c)
        assert not c["delivered"] and not c["corrupted"], dict(c)


def test_injected_loss_and_ber_on_the_uplink(daemons):
    d = daemons.lossy
    assert IN_VIEW in _in_view(d)
    rng = random.Random(3)
    index = d.plan.uplink(IN_VIEW).index
    n = 200
    cltus = _cltus(rng, n, 128)  # 162 octets: 5 ms each at 256 kbit/s
    serial_s = 8 * len(cltus[0]) / d.settings.emulation.uplink_rf.rate_bps
    before = d.counters("uplink")
    t0 = time.monotonic()
    for k, unit in enumerate(cltus):  # paced at the rate, as a real sender does
        if (wait := t0 + k * serial_s - time.monotonic()) > 0:
            time.sleep(wait)
        d.ends.send(index, unit)
    c = d.wait_counters("uplink", n + sum(before[k] for k in ("delivered", "corrupted", "dropped")))
    c.subtract(before)
    arrived = c["delivered"] + c["corrupted"]
    got = [data for _, data in d.ends.wait_for(index, arrived, HANG_S)]
    assert len(got) == arrived and c["sent"] == n, dict(c)
    assert c["dropped"] == c["dropped_injected_loss"] == n - arrived, dict(c)
    # binomial(200, 0.5): mean 100, sd 7.1; 60..140 is more than 5 sd either way
    assert 60 <= arrived <= 140, dict(c)

    # each delivered unit is one of those sent, in order (a subsequence); random units
    # differ in about half their bits, a damaged one in a bit or two
    bits = errors = damaged = 0
    k = 0
    for unit in got:
        while k < n and _hamming(unit, cltus[k]) > len(unit):  # an eighth of its bits
            k += 1
        assert k < n, "a delivered unit matches none sent after the one before it"
        e = _hamming(unit, cltus[k])
        bits += 8 * len(unit)
        errors += e
        damaged += e > 0
        k += 1
    assert errors == c["bit_errors"] and damaged == c["corrupted"], dict(c)
    # ~130 errors expected in ~130 kbit: the bound is many sd wide
    assert 0.5 * BER <= errors / bits <= 2.0 * BER, (errors, bits)
    print(  # what was measured (pytest -s shows it)
        f"loss {LOSS}, ber {BER}: {arrived}/{n} delivered, {damaged} damaged, "
        f"{errors} bit errors in {bits} bits (BER {errors / bits:.2e})"
    )


def test_garbage_and_strangers_are_refused_before_they_take_link_time(daemons):
    """A flood on one uplink's ingress (random octets behind the link's header from the
    link's own sender, well-formed CLTUs from a port that is not the link's sender,
    CLTUs without a link header, CLTUs behind the header of a link the port does not
    carry) takes no link time: each datagram is refused at the socket, counted by port
    and reason, and a valid
    CLTU sent right after arrives as soon as its serialisation and light time allow,
    not after the flood has been serialised at 256 kbit/s (which would take minutes)."""
    d = daemons.clean
    station = _in_view(d)[IN_VIEW]["station"]
    em = d.settings.emulation
    spec = d.plan.uplink(IN_VIEW)
    rng = random.Random(9)
    before = d.get("/counters")
    already = len(d.ends.received(spec.index))
    garbage = [rng.randbytes(rng.randrange(1, 1300)) for _ in range(3000)]
    for unit in garbage:
        d.ends.send(spec.index, unit)
    strangers = _cltus(rng, 300, 256)
    for unit in strangers:
        d.ends.send(spec.index, unit, stranger=True)
    bare = _cltus(rng, 50, 256)
    for unit in bare:
        d.ends.send(spec.index, unit, header=-1)
    elsewhere = _cltus(rng, 40, 256)  # a downlink's: not the ground's to send
    for unit in elsewhere:
        d.ends.send(spec.index, unit, header=d.plan.downlink(IN_VIEW).index)
    valid = _cltus(rng, 1, em.uplink.tc_max_frame_length)[0]
    sent_at = d.ends.send(spec.index, valid)
    deadline = time.monotonic() + HANG_S
    while len(d.ends.received(spec.index)) <= already and time.monotonic() < deadline:
        time.sleep(0.01)
    new = d.ends.received(spec.index)[already:]
    assert [unit for _, unit in new] == [valid], "only the valid CLTU went up"
    t_rx = new[0][0]
    range_m = d.look(IN_VIEW, station, d.t_s(sent_at)).range_m
    earliest = sent_at + 8 * len(valid) / em.uplink_rf.rate_bps + range_m / SPEED_OF_LIGHT_M_S
    assert earliest - 1e-4 <= t_rx < earliest + 0.5, "the flood took link time"
    after = d.get("/counters")
    refused = after["refused"][str(spec.channel_port)]
    shapes = {k: v for k, v in refused.items() if k.startswith("cltu_")}
    assert sum(shapes.values()) == len(garbage), refused  # none of them looks like a CLTU
    assert refused["not_the_peer"] == len(strangers)
    assert refused["link_header"] == len(bare)
    assert refused["link_not_here"] == len(elsewhere)
    uplink_before, uplink_after = before["channel"]["uplink"], after["channel"]["uplink"]
    assert uplink_after.get("sent", 0) - uplink_before.get("sent", 0) == 1  # the valid one


def _http_status(port: int, *headers: str) -> int:
    """The status code a GET /status with ``headers`` gets, on a connection of its own."""
    lines = ["GET /status HTTP/1.1", "Host: x", *headers, "Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_S) as sock:
        sock.sendall("\r\n".join(lines).encode())
        return int(sock.makefile("rb").readline().split()[1])


def test_http_limits_from_the_scenario(daemons):
    """The lossy daemon's [daemon.http] is applied: a 2 KB header line, which the clean
    daemon (the defaults, 8 KiB) serves, gets a 400 from it; with its few connections
    held, the next one gets the 503 that the default limit would give only past 128."""
    header = "X-Big: " + "b" * 2000
    clean_port, lossy_port = (
        d.settings.daemon.http_port + 1 for d in (daemons.clean, daemons.lossy)
    )
    assert _http_status(clean_port, header) == 200
    assert _http_status(lossy_port, header) == 400
    assert _http_status(lossy_port, header[: SMALL_FIELD_BYTES - 100]) == 200
    held = [socket.create_connection(("127.0.0.1", lossy_port)) for _ in range(SMALL_CONNECTIONS)]
    try:
        # the next connection is refused before anything of it is read, once the
        # daemon's loop has taken the held ones (served until then)
        deadline = time.monotonic() + HANG_S
        while _http_status(lossy_port) != 503:
            assert time.monotonic() < deadline, "no 503 past the scenario's max_connections"
            time.sleep(0.05)
        assert _http_status(clean_port) == 200
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + HANG_S
    while _http_status(lossy_port) != 200:  # served again once they are closed
        assert time.monotonic() < deadline, "the lossy daemon refuses HTTP after the test"
        time.sleep(0.05)


def test_sigterm_stops_with_0_and_the_capture_holds_what_was_delivered(daemons):
    rng = random.Random(4)
    for d in (daemons.clean, daemons.lossy):
        index = d.plan.uplink(IN_VIEW).index
        before = d.counters("uplink")
        for unit in _cltus(rng, 3, 64):
            d.ends.send(index, unit)
        d.wait_counters("uplink", 3 + sum(before[k] for k in ("delivered", "corrupted", "dropped")))
        counters = d.get("/counters")["channel"]
        delivered = sum(c.get("delivered", 0) + c.get("corrupted", 0) for c in counters.values())
        # every delivery the daemon counted has reached the test's node ports
        deadline = time.monotonic() + HANG_S
        while len(d.ends.all_received()) < delivered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert d.run.stop(d.proc) == 0, d.run.log_of(d.proc)[-3000:]
        records = d.run.records(d.proc)
        assert [m["msg"] for m in records][-3:] == ["stopping", "capture closed", "stopped"]
        received = Counter(
            (LAYER[d.plan.links[k].kind], data) for k, _, data in d.ends.all_received()
        )
        assert sum(received.values()) == delivered > 0
        assert not d.ends.wrong, d.ends.wrong[:3]
        captured = list(read_units(d.run.out / "channel.pcap"))
        assert Counter((u.layer, u.data) for u in captured) == received
        # stamped with the scheduled arrival: not after the test read the unit (5 ms
        # for the two processes' readings of the wall clock), nor long before
        read_at = {data: d.t_s(t) for _, t, data in d.ends.all_received()}
        for u in captured:
            assert read_at[u.data] - SLACK_S <= u.t_s <= read_at[u.data] + 5e-3, u
        # each unit between the right ends: the station tracking the satellite and it
        ends = {"cltu": (f"ground:{STATION}", f"sat:{IN_VIEW}")}
        ends["tm_cadu"] = ends["cltu"][::-1]
        assert all((u.src, u.dst) == ends.get(u.layer) for u in captured), captured
