"""Live traffic of the daemons, captured on loopback and decoded by tshark with no
Decode As.

The channel, sat and ground daemons run as real processes (tests/daemon/conftest.py);
``linkstack wireshark --install`` puts the dissector and the scenario's file into the
personal Lua plugins folder of a home of the test's own; dumpcap captures ``lo``
through the scenario's capture filter (``linkstack wireshark --capture-filter``)
while a query is answered directly and another over the laser links; then tshark,
with nothing on its command line but the capture and the fields, must decode every
datagram at every layer: CLTU, TC frame, Space Packet, CBOR query and relay envelope
on the uplinks; CADU, TM and AOS frames, answers on the downlinks and laser links.
The answers it reads are the ones MQTT delivered. The dissector alone (no scenario
file) must find the same units by their sync patterns. The same pcapng, read on the
scenario's port plan, passes the conformance suite on each side of the channel.

Capturing on ``lo`` needs root or a dumpcap with CAP_NET_RAW and CAP_NET_ADMIN: the
tests run as root (``make test`` in CI does); without the right the test fails and
says so, as without dumpcap (``make tools`` installs it with tshark).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkstack.conformance.passive.checker import check_capture
from linkstack.conformance.passive.report import format_text
from linkstack.conformance.portplan import plan_ports
from linkstack.runtime import scenario as scenario_file
from linkstack.tools import wireshark
from linkstack.tools.cli import main as linkstack_main
from tests.capture.test_wireshark import INSTALL_HINT, LUA, tshark
from tests.capture.test_wireshark import json_fields as fields
from tests.daemon.test_daemon_processes import HANG_S, Listener, publish_queries, query
from tests.ports import free_block

LIVE_FIELDS = [
    "udp.dstport",
    "_ws.col.Protocol",
    "linkstack.link.index",
    "linkstack.link.kind",
    "linkstack.link.to",
    "linkstack.cltu.start",
    "linkstack.cltu.refused",
    "linkstack.tc.type",
    "linkstack.tc.spacecraft",
    "linkstack.tc.fecf.status",
    "linkstack.cadu.asm",
    "linkstack.tm.spacecraft",
    "linkstack.tm.fecf.status",
    "linkstack.aos.spacecraft",
    "linkstack.aos.fecf.status",
    "ccsds.apid",
    "linkstack.msg.type",
    "linkstack.msg.id",
    "linkstack.msg.text",
    "linkstack.msg.satellite",
    "linkstack.msg.completion_tokens",
    "linkstack.relay.src_name",
    "linkstack.relay.dst_name",
    "_ws.expert.message",
]
UNIT_OF_KIND = {"uplink": "CLTU", "downlink": "TM CADU", "isl": "AOS CADU"}


SENTINEL = b"linkstack test: the end of the capture"


@contextlib.contextmanager
def capturing(path: Path, capture_filter: str, folder: Path, sentinel_port: int) -> Iterator[None]:
    """dumpcap on ``lo`` through ``capture_filter`` into ``path`` until the block ends.

    dumpcap reads the kernel's buffer in blocks that it takes when they fill or time
    out, and a SIGINT loses a block not yet taken: so at the end one more datagram
    (:data:`SENTINEL`, to ``sentinel_port``, captured too) is sent, and dumpcap is
    stopped once the file holds it, and with it everything that came before."""
    exe = shutil.which("dumpcap")
    if exe is None:
        pytest.fail(INSTALL_HINT.replace("tshark (", "dumpcap (tshark's capture engine, "))
    log = folder / "dumpcap.log"
    cfilter = f"({capture_filter}) or udp dst port {sentinel_port}"
    cmd = [exe, "-q", "-i", "lo", "-f", cfilter, "-w", str(path)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + HANG_S
        while "Capturing on" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                pytest.fail(
                    "dumpcap could not capture on lo (capturing needs root, or dumpcap with "
                    f"CAP_NET_RAW and CAP_NET_ADMIN):\n{log.read_text(errors='replace')}"
                )
            assert time.monotonic() < deadline, "dumpcap did not start capturing"
            time.sleep(0.05)
        yield
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(SENTINEL, ("127.0.0.1", sentinel_port))
        deadline = time.monotonic() + HANG_S
        while not (path.exists() and SENTINEL in path.read_bytes()):
            assert proc.poll() is None, f"dumpcap stopped:\n{log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, "dumpcap did not write the last datagram"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(HANG_S) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def claimed_udp_ports(home: Path) -> set[int]:
    """The UDP ports that a dissector of this Wireshark owns (a heuristic is tried only
    where none does)."""
    out = tshark("-G", "decodes", home=home)
    return {
        int(cols[1])
        for cols in (line.split("\t") for line in out.splitlines())
        if len(cols) >= 2 and cols[0] == "udp.port" and cols[1].isdigit()
    }


async def test_a_live_capture_of_the_daemons_decodes_at_every_layer_without_decode_as(
    run, broker, tmp_path, monkeypatch, capsys
):
    with run.scenario.open("a") as f:  # clear frames, read to the messages (SDLS's own:
        f.write("[sdls]\nenabled = false\n")  # tests/capture/test_wireshark_sdls.py)
    # the daemons take seconds to start: the install and the capture start meanwhile
    procs = {role: run.start(role) for role in ("channel", "sat", "ground")}
    home = tmp_path / "tshark-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # tshark -G folders names this home's folder
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    assert linkstack_main(["wireshark", "--scenario", str(run.scenario), "--install"]) == 0
    assert linkstack_main(["wireshark", "--scenario", str(run.scenario), "--capture-filter"]) == 0
    capture_filter = capsys.readouterr().out.strip().splitlines()[-1]
    settings = scenario_file.load(run.scenario)
    plugins = home / ".local" / "lib" / "wireshark" / "plugins"
    assert sorted(p.name for p in plugins.iterdir()) == sorted(
        ["linkstack.lua", wireshark.scenario_file_name(settings)]
    )
    links = {link["index"]: link for link in wireshark.scenario_table(settings)["links"]}

    pcap = tmp_path / "live.pcapng"
    ids = ["w-direct", "w-relay"]
    sentinel_port = free_block(1)
    with capturing(pcap, capture_filter, tmp_path, sentinel_port):
        await run.ready(*procs.values())
        async with Listener(broker.port, "test-listener-ws") as listener:
            await publish_queries(
                broker.port,
                [
                    query("w-direct", "Seen in Wireshark?"),
                    query("w-relay", "Relayed, and seen?", target="CS-10"),
                ],
            )
            got = await listener.answers(ids)
    run.stop_all(*procs.values())

    # -- the scenario installed: nothing on tshark's command line but the file ----------------
    decoded = fields(pcap, LIVE_FIELDS, home=home)
    (sentinel,) = [n for n, f in decoded.items() if f["udp.dstport"] == [str(sentinel_port)]]
    del decoded[sentinel]
    assert len(decoded) > 20, "the capture holds the queries' traffic"
    for number, frame in decoded.items():  # every datagram, as sent and as delivered
        link = links[int(frame["linkstack.link.index"][0])]  # from its link header
        # to the channel's port of its sender's end, or to its receiver's end's port
        assert int(frame["udp.dstport"][0]) in (link["channel_port"], link["node_port"])
        assert frame["_ws.col.Protocol"] == [UNIT_OF_KIND[link["kind"]]], (number, frame)
        assert frame["linkstack.link.kind"] == [link["kind"]], number
        assert not [m for m in frame["_ws.expert.message"] if "Lua" in m], (number, frame)
    # as sent (into the channel): no bit errors yet, so every check holds exactly; the
    # channel's deliveries may carry the link's bit errors
    sent = [f for f in decoded.values() if f["linkstack.link.to"] == ["channel"]]

    def of(kind: str) -> list[dict]:
        return [f for f in sent if f["linkstack.link.kind"] == [kind]]

    def carrying(frames: list[dict], kind: str, qid: str, relay: str | None) -> list[dict]:
        """The frames with one message, of ``kind`` for ``qid``, in an envelope
        ``src->dst`` (``relay``) or bare (None)."""
        ends = [
            f"{f['linkstack.relay.src_name'][0]}->{f['linkstack.relay.dst_name'][0]}"
            if f["linkstack.relay.src_name"]
            else None
            for f in frames
        ]
        return [
            f
            for f, e in zip(frames, ends, strict=True)
            if f["linkstack.msg.type"] == [kind] and f["linkstack.msg.id"] == [qid] and e == relay
        ]

    # uplink: CLTU -> TC frame -> Space Packet -> CBOR query (bare, or in an envelope)
    cltus = of("uplink")
    for f in cltus:
        assert f["linkstack.cltu.start"] == ["0xeb90"] and f["linkstack.cltu.refused"] == ["0"]
        assert f["linkstack.tc.fecf.status"] == ["1"]
        assert f["linkstack.tc.spacecraft"] == [links[int(f["linkstack.link.index"][0])]["dst"]]
    assert Counter(v for f in cltus for v in f["linkstack.tc.type"])["AD"] >= 2
    assert {"256", "258"} <= {a for f in cltus for a in f["ccsds.apid"]}  # 0x100, 0x102
    assert carrying(cltus, "q", "w-direct", None)
    assert carrying(cltus, "q", "w-relay", "ground->CS-10")
    # downlink: CADU -> TM frame -> Space Packet -> CBOR answer, as MQTT delivered it
    tms = of("downlink")
    for f in tms:
        assert f["linkstack.cadu.asm"] == ["0x1acffc1d"] and f["linkstack.tm.fecf.status"] == ["1"]
        assert f["linkstack.tm.spacecraft"] == [links[int(f["linkstack.link.index"][0])]["src"]]
    for qid in ids:
        answers = carrying(tms, "a", qid, None)
        assert answers, f"the answer to {qid} went down"
        assert answers[0]["linkstack.msg.text"] == [got[qid]["text"]]
        assert answers[0]["linkstack.msg.satellite"] == [got[qid]["satellite"]]
        tokens = [str(got[qid]["completion_tokens"])]
        assert answers[0]["linkstack.msg.completion_tokens"] == tokens
    # laser links: CADU -> AOS frame -> the relayed query in its envelope, then bare on
    # its last hop; the answer in its envelope towards the ground
    isl = of("isl")
    for f in isl:
        assert f["linkstack.cadu.asm"] == ["0x1acffc1d"] and f["linkstack.aos.fecf.status"] == ["1"]
        assert f["linkstack.aos.spacecraft"] == [links[int(f["linkstack.link.index"][0])]["src"]]
    assert carrying(isl, "q", "w-relay", "ground->CS-10")
    assert carrying(isl, "q", "w-relay", None), "the relayed query's last hop is bare"
    assert carrying(isl, "a", "w-relay", "CS-10->ground")

    # -- the dissector alone: the same units, found by their sync patterns ---------------------
    bare = tmp_path / "bare-home"
    bare.mkdir()
    alone = fields(
        pcap, ["_ws.col.Protocol", "linkstack.msg.type"], "-X", f"lua_script:{LUA}", home=bare
    )
    del alone[sentinel]
    claimed = claimed_udp_ports(bare)
    checked = 0
    for number, frame in alone.items():
        scenario_view = decoded[number]
        if {int(p) for p in scenario_view["udp.dstport"]} & claimed:
            continue  # another dissector owns this port: the heuristic is never asked
        if not (
            scenario_view["linkstack.cltu.start"] == ["0xeb90"]
            or scenario_view["linkstack.cadu.asm"] == ["0x1acffc1d"]
        ):
            continue  # the link's bit errors hit the sync pattern: no heuristic finds it
        why = (number, frame, scenario_view)  # which frame, as each view decoded it
        assert frame["_ws.col.Protocol"] == scenario_view["_ws.col.Protocol"], why
        assert frame["linkstack.msg.type"] == scenario_view["linkstack.msg.type"], why
        checked += 1
    assert checked > len(alone) // 2

    # -- and the same live pcapng passes the conformance suite on the daemons' port plan,
    # each side of the channel (what was sent into it; what it delivered)
    plan = plan_ports(run.scenario)
    for view in ("sent", "delivered"):
        report = check_capture(pcap, links=plan.ports, views=(view,), ports_text=plan.text)
        assert report.exit_code == 0, format_text(report)
        assert sum(r.status == "pass" for r in report.results) >= 20, format_text(report)
