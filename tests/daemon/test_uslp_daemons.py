"""The three daemons with ``[frames] protocol = "uslp"`` (issue 16, item 2), real
processes and a real broker: queries over MQTT answered straight up and relayed over
the laser links, with SCIDs from 3000 and SDLS on; the captures hold USLP frames on
every kind of link (on the USLP frame port), and no SDLS guard refused anything. The
in-process checks of the same: tests/runtime/test_uslp_links.py."""

from __future__ import annotations

import json
from collections import Counter

from linkstack.capture.pcap import read_units
from linkstack.ccsds.uslp import frame_ids
from tests.daemon.test_daemon_processes import Listener, publish_queries, query

USLP_VERSION = 0b1100
SCID_BASE = 3000


async def test_the_daemons_answer_over_uslp_with_16_bit_scids(run, broker):
    run.scenario.write_text(
        run.scenario.read_text() + f'[frames]\nprotocol = "uslp"\nscid_base = {SCID_BASE}\n'
    )
    procs = {role: run.start(role) for role in ("channel", "sat", "ground")}
    await run.ready(*procs.values())
    ids = ["u0", "u1", "u2"]
    async with Listener(broker.port) as listener:
        await publish_queries(broker.port, [query(i, f"Over USLP {i}") for i in ids])
        got = await listener.answers(ids)
    assert all(got[i]["type"] == "answer" and got[i]["id"] == i for i in ids), got
    run.stop_all(*procs.values())
    counters = {
        role: next(m for m in run.records(p) if m["msg"] == "stopped")["counters"]
        for role, p in procs.items()
    }
    for role in ("sat", "ground"):
        sdls = counters[role]["sdls"]
        assert sdls["protected"] > 0 and sdls["verified"] > 0, sdls
        assert not [k for k in sdls if k.startswith("refused")], sdls
    assert counters["sat"]["satellites"]["services"]["answers"] == len(ids)
    frames: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for pcap in ("ground.pcap", "sat.pcap"):  # the frames each end sent
        for unit in read_units(run.out / pcap):
            layers[unit.layer] += 1
            if unit.layer.endswith("_frame"):  # on the USLP frame port, whatever the link
                assert unit.layer == "uslp_frame", unit.layer
                assert unit.data[0] >> 4 == USLP_VERSION, unit.layer
                assert frame_ids(unit.data)[0] >= SCID_BASE, unit.layer
                ends = (unit.src.split(":")[0], unit.dst.split(":")[0])
                frames[{("ground", "sat"): "up", ("sat", "ground"): "down"}.get(ends, "laser")] += 1
        # the side file says the run's frames protocol (learnt from the units it wrote)
        side = json.loads((run.out / f"{pcap}.nodes.json").read_text())
        assert side["frames"] == "uslp" and side["ports"]["uslp_frame"] == 47014, side
    assert frames.keys() == {"up", "down", "laser"}, layers
