"""The port plan at scale: any number of links on a bounded number of ports.

The planned 2,800-satellite constellation (with about 11,000 laser pairs added to its
rings) takes 34 ports whatever its links; real channel and ground daemons of 180
satellites and 720 links open one UDP socket per end (17 and 1), where a port per
link and end would have taken 720 each, near what ``select()`` can wait on (``daemon
all``: 1,440, past it); sat daemons that share the
constellation each run whole ends, and one that would share an end is refused at
start with the port and the key to change. (The planned constellation itself does not
run here: its daemons would make this a benchmark, and its SCIDs need USLP.)
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from channels.scenarios import planned_scenario
from linkstack.daemon.wire import GROUND, PortPlan
from linkstack.errors import ConfigError
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.clock import FINE_TIMERS_MAX_FDS
from tests.daemon.test_daemon_processes import HANG_S, START
from tests.ports import free_block

ISL_PAIRS = 11_000  # the laser links the planned network is to have, about


def _big_planned():
    """planned-2800 with its rings, and random laser pairs up to ISL_PAIRS."""
    sc = planned_scenario(cross_plane=True)
    n = len(sc.satellite_names)
    pairs = set(sc.isl_pairs)
    rng = random.Random(28)
    while len(pairs) < ISL_PAIRS:
        a, b = sorted(rng.sample(range(n), 2))
        pairs.add((a, b))
    return replace(sc, isl_pairs=tuple(sorted(pairs)))


def test_the_planned_constellation_takes_34_ports_for_27600_links():
    sc = _big_planned()
    plan = PortPlan(sc, "127.0.0.1", 47100, 47400)
    assert len(sc.satellite_names) == 2800
    assert len(plan.links) == 2 * 2800 + 2 * ISL_PAIRS == 27_600
    # the ground's end and 16 blocks of 175 satellites, a port each side
    assert len(plan.ends) == 17 and plan.ports == 34
    assert {len(e.nodes) for e in plan.ends[1:]} == {175}
    assert plan.ranges() == {"channel_port": (47100, 47116), "node_port": (47400, 47416)}
    # every satellite in one end, every link on ports of the plan, and each port takes
    # the links of its end: the sets partition the links, both ways
    assert sorted(n for e in plan.ends[1:] for n in e.nodes) == sorted(sc.satellite_names)
    ports = set(range(47100, 47117)) | set(range(47400, 47417))
    for s in plan.links:
        assert {s.channel_port, s.node_port, s.source_port, s.delivered_from} <= ports
        assert plan.end_of(s.src).index == s.src_end and plan.end_of(s.dst).index == s.dst_end
    sent = [k for e in plan.ends for k in (s.index for s in plan.sent_by(e))]
    received = [k for e in plan.ends for k in (s.index for s in plan.received_by(e))]
    assert sorted(sent) == sorted(received) == list(range(len(plan.links)))
    assert plan.end_of(GROUND).node_port == 47400
    # the sockets of `daemon all`: one per port, far below select()'s limit
    assert plan.ports + 32 < FINE_TIMERS_MAX_FDS
    # finer ends cost ports, not links: still bounded by daemon.sat_ports
    fine = PortPlan(sc, "127.0.0.1", 47100, 47400, sat_ports=400)
    assert fine.ports == 2 * 401 and len(fine.links) == len(plan.links)


def _walker_scenario(folder: Path, base: int, total: int = 180) -> Path:
    path = folder / "big.toml"
    path.write_text(
        'name = "big"\n'
        '[constellation]\nisl = "ring"\n'
        "[[constellation.planes]]\n"
        f'kind = "walker"\ntotal = {total}\nplanes = 12\nphasing = 1\n'
        'inclination_deg = 53.0\naltitude_km = 550.0\nname_prefix = "BG"\n'
        "[mqtt]\nenabled = false\n[capture]\nenabled = false\n"
        f"[daemon]\nchannel_port = {base}\nnode_port = {base + 20}\nhttp_port = 0\n"
        f'out_dir = "{folder / "out"}"\n'
        f'runs_dir = "{folder / "runs"}"\nreport_charts = false\n'
    )
    return path


def _start(scenario: Path, folder: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = folder / f"{'-'.join(args)}.log"
    cmd = [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(scenario)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*cmd, "--start", START, "--no-capture", *args], stdout=subprocess.DEVNULL, stderr=err
        )
    return proc, log


def _ready(proc: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + HANG_S
    while True:
        for line in log.read_text(errors="replace").splitlines():
            if '"msg":"ready"' in line:
                return json.loads(line)
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "not ready"
        time.sleep(0.1)


def _udp_ports(pid: int) -> list[int]:
    """The local ports of the UDP sockets process ``pid`` holds (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[9] in inodes:
            ports.append(int(cols[1].split(":")[1], 16))
    return sorted(ports)


def test_daemons_of_720_links_open_a_socket_per_end(tmp_path):
    """The channel daemon of 180 satellites listens on its 17 ends' channel ports and
    the ground daemon on its one port, where a port per link would have taken 720
    each. (Not ``all``: 180 satellites sending TM through every pass would make this
    test a benchmark.)"""
    base = free_block(60, 1)  # channel ports, node ports, then HTTP (TCP) at base + 60
    scenario = _walker_scenario(tmp_path, base)
    channel, channel_log = _start(scenario, tmp_path, "--http-port", str(base + 60), "channel")
    ground, ground_log = _start(scenario, tmp_path, "--http-port", "0", "ground")
    try:
        ready = _ready(channel, channel_log)
        assert ready["links"] == 720 and ready["ports"] == 17
        assert _udp_ports(channel.pid) == [base + j for j in range(17)]
        assert _ready(ground, ground_log)["ports"] == 1
        assert _udp_ports(ground.pid) == [base + 20]
        url = f"http://127.0.0.1:{base + 60}/ports"
        with urllib.request.urlopen(url, timeout=HANG_S) as resp:
            doc = json.loads(resp.read())
        assert len(doc["ends"]) == 17 and len(doc["links"]) == 720
        assert doc["ends"][1]["name"] == "satellites BG-P01-S01..BG-P01-S12"
        # the sockets of `daemon all` would be both sides of every end: 34
        assert 2 * len(doc["ends"]) + 32 < FINE_TIMERS_MAX_FDS < 2 * 720
    finally:
        for proc in (channel, ground):
            proc.terminate()
        codes = [proc.wait(HANG_S) for proc in (channel, ground)]
    assert codes == [0, 0], channel_log.read_text()[-2000:] + ground_log.read_text()[-2000:]


def test_sat_daemons_share_the_constellation_by_whole_ends(tmp_path):
    """With daemon.sat_ports = 3 the default scenario's satellites make 3 ends of 4: a
    sat daemon of CS-01 and one of CS-05 run side by side; one of CS-02 would share
    CS-01's end, and is refused at start, naming the port and the keys to change."""
    base = free_block(60)
    scenario = tmp_path / "three.toml"
    scenario.write_text(
        "[mqtt]\nenabled = false\n[capture]\nenabled = false\n"
        f"[daemon]\nchannel_port = {base}\nnode_port = {base + 20}\nhttp_port = 0\n"
        f'sat_ports = 3\nout_dir = "{tmp_path / "out"}"\n'
    )
    first, first_log = _start(scenario, tmp_path, "--name", "CS-01", "sat")
    other, other_log = _start(scenario, tmp_path, "--name", "CS-05", "sat")
    try:
        for proc, log in ((first, first_log), (other, other_log)):
            assert _ready(proc, log)["ports"] == 1
        assert base + 20 + 1 in _udp_ports(first.pid)  # end 1: CS-01..CS-04
        assert base + 20 + 2 in _udp_ports(other.pid)  # end 2: CS-05..CS-08
        clash, clash_log = _start(scenario, tmp_path, "--name", "CS-02", "sat")
        assert clash.wait(HANG_S) == 2
        said = clash_log.read_text(errors="replace")
        assert f"cannot listen on UDP 127.0.0.1:{base + 21}" in said
        assert "satellites CS-01..CS-04" in said and "daemon.sat_ports" in said
    finally:
        for proc in (first, other):
            proc.terminate()
        codes = [proc.wait(HANG_S) for proc in (first, other)]
    assert codes == [0, 0], first_log.read_text()[-2000:] + other_log.read_text()[-2000:]


@pytest.mark.parametrize("sat_ports", [1, 12])
def test_the_scenario_reader_checks_the_ends_blocks(tmp_path, sat_ports):
    path = tmp_path / "s.toml"
    # 1 + sat_ports ends each side: the node block starts just past the channel's
    path.write_text(
        f"[daemon]\nchannel_port = 40000\nnode_port = {40001 + sat_ports}\n"
        f"sat_ports = {sat_ports}\n"
    )
    assert scenario_file.load(path).daemon.sat_ports == sat_ports
    path.write_text(
        f"[daemon]\nchannel_port = 40000\nnode_port = {40000 + sat_ports}\n"
        f"sat_ports = {sat_ports}\n"
    )
    with pytest.raises(ConfigError, match=r"daemon.node_port.*overlap channel_port"):
        scenario_file.load(path)
