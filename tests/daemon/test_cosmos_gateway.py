"""OpenC3 COSMOS at the gateway, as docs/mission-control.md (section 2) configures it.

The ground application is COSMOS's own Python interface (``openc3`` 7.4.1):
``TcpipClientInterface`` with the LENGTH protocol, built from the recipe's
``INTERFACE`` line as COSMOS builds it from a ``plugin.txt`` (the line's words, as
strings), its commands and telemetry from the recipe's ``cmd.txt`` and ``tlm.txt``
parsed by COSMOS's ``PacketConfig``. Over one TCP connection to the gateway
(``[gateway] transport = "tcp"``, packets both ways) it writes Space Packets on APID
0x20 that must reach the flight software at the radio octet for octet and in order,
and reads the flight software's telemetry on APID 0x21, each packet cut whole from
the stream by the LENGTH protocol. The recipe's commands leave the CCSDS length
field 0; COSMOS's ``fill_length`` (the last ``True`` of the LENGTH words) must write
it, or the gateway loses the stream's framing. The expected packets are built by
``spacepackets``, never by linkstack or COSMOS.

COSMOS logs to stdout and, unless ``OPENC3_NO_STORE`` is set, also to its Redis
(a thread that would try to reach ``openc3-redis-ephemeral``): the one setting it
needs to run outside its containers, set before ``openc3`` is first imported.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from spacepackets.ccsds.spacepacket import PacketType, SpacePacket, SpacePacketHeader

from tests.daemon.test_daemon_processes import HANG_S
from tests.daemon.test_flight_radio import _listening, _scenario

os.environ.setdefault("OPENC3_NO_STORE", "1")  # read once, when openc3 is imported
from openc3.interfaces.tcpip_client_interface import TcpipClientInterface
from openc3.packets.packet_config import PacketConfig

RECIPE = Path(__file__).parents[2] / "docs" / "mission-control.md"
TARGET = "LSGW"
TC_APID, TM_APID = 0x20, 0x21
COUNT = 6  # packets each way, sequence counts 0..5


@dataclass(frozen=True)
class Recipe:
    """What section 2 of docs/mission-control.md gives COSMOS."""

    interface: list[str]  # the words of the Python INTERFACE line after its name
    cmd_txt: str
    tlm_txt: str


def _recipe() -> Recipe:
    section = RECIPE.read_text().split("## 2. OpenC3 COSMOS", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "section 2 should hold the plugin.txt and cmd_tlm blocks"
    line = next(w for w in blocks[0].splitlines() if w.startswith("INTERFACE "))
    cmd_txt, tlm_txt = blocks[1].split("# targets/LSGW/cmd_tlm/tlm.txt")
    return Recipe(line.split()[2:], cmd_txt, tlm_txt)


def _packet_config(recipe: Recipe, folder: Path) -> PacketConfig:
    config = PacketConfig()
    for name, text in (("cmd.txt", recipe.cmd_txt), ("tlm.txt", recipe.tlm_txt)):
        (folder / name).write_text(text)
        config.process_file(str(folder / name), TARGET)
    assert config.warnings == []
    return config


async def test_cosmos_tcp_client_and_length_protocol_carry_space_packets_both_ways(run, tmp_path):
    ports = _scenario(
        run,
        {"transport": "tcp", "uplink": "packet", "downlink": "packet"},
        {"transport": "udp", "uplink": "packet", "downlink": "packet"},
    )
    recipe = _recipe()
    assert recipe.interface[:4] == [
        "openc3/interfaces/tcpip_client_interface.py",
        "host.docker.internal",
        "47607",  # CS-08's gateway port in the default scenario, both ways
        "47607",
    ]
    config = _packet_config(recipe, tmp_path)
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    loop = asyncio.get_running_loop()
    flight = _listening(ports["radio_peer"])
    # as COSMOS makes it from plugin.txt: every word a string; here our host and port
    port = str(ports["gw"])
    cosmos = TcpipClientInterface("127.0.0.1", port, port, *recipe.interface[4:])
    await asyncio.to_thread(cosmos.connect)
    try:
        # up: COSMOS builds each command from cmd.txt; its length field is the default 0
        commands = []
        for k in range(COUNT):
            command = config.commands[TARGET]["PING"].clone()
            command.restore_defaults()
            command.write("CCSDSSEQCNT", k)
            command.write("ARG", 0xC0DE_0000 + k)
            assert command.read("CCSDSLENGTH") == 0
            commands.append(command)
        for command in commands:  # back to back, the gateway cuts the stream
            await asyncio.to_thread(cosmos.write, command)
        expected_up = [
            bytes(_space_packet(PacketType.TC, TC_APID, k, (0xC0DE_0000 + k).to_bytes(4, "big")))
            for k in range(COUNT)
        ]
        got: list[bytes] = []
        async with asyncio.timeout(HANG_S):
            while len(got) < COUNT:
                got.append(await loop.sock_recv(flight, 65_536))
        assert got == expected_up  # length 3 (10 - 7), written by fill_length
        assert [c.read("CCSDSLENGTH") for c in commands] == [3] * COUNT
        # down: the flight software's HK, one datagram each
        telemetry = [
            bytes(_space_packet(PacketType.TM, TM_APID, k, (0xBEEF_0000 + k).to_bytes(4, "big")))
            for k in range(COUNT)
        ]
        for t in telemetry:
            flight.sendto(t, ("127.0.0.1", ports["radio"]))
        read = await asyncio.wait_for(
            asyncio.to_thread(lambda: [cosmos.read() for _ in range(COUNT)]), HANG_S
        )
        assert all(p is not None for p in read), "COSMOS lost the connection"
        assert [bytes(p.buffer) for p in read] == telemetry
        hk = config.telemetry[TARGET]["HK"]
        for k, p in enumerate(read):  # what COSMOS makes of each, by tlm.txt
            assert hk.identify(p.buffer)
            decom = hk.clone()
            decom.buffer = p.buffer
            assert (decom.read("CCSDSSEQCNT"), decom.read("VALUE")) == (k, 0xBEEF_0000 + k)
        assert (cosmos.write_count, cosmos.read_count) == (COUNT, COUNT)
        assert cosmos.bytes_written == cosmos.bytes_read == 10 * COUNT
    finally:
        cosmos.disconnect()  # also wakes a read still blocked in its thread
        flight.close()
    run.stop_all(*procs)
    ground = next(m for m in run.records(procs[2]) if m["msg"] == "stopped")
    gateway = ground["counters"]["ground"]["gateway"]
    assert gateway["refused"] == {}
    stats = gateway["stats"]
    assert (stats["tcp_connections"], stats["units_in"], stats["packets_up"]) == (1, COUNT, COUNT)
    assert (stats["packets_down"], stats["units_out"]) == (COUNT, COUNT)
    assert "tcp_framing_lost" not in stats  # every length COSMOS wrote was right
    sat = next(m for m in run.records(procs[1]) if m["msg"] == "stopped")
    radio = sat["counters"]["satellites"]["radio"]
    assert radio["refused"] == {}
    assert radio["stats"]["packets_up"] == COUNT and radio["stats"]["packets_down"] == COUNT


def _space_packet(kind: PacketType, apid: int, seq: int, data: bytes) -> bytes:
    """An unsegmented Space Packet without secondary header, by spacepackets."""
    header = SpacePacketHeader(kind, apid, seq, len(data) - 1)
    return bytes(SpacePacket(header, None, data).pack())
