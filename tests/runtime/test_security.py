"""SDLS on linkstack's own links (linkstack/runtime/security.py): the scenario's
``[sdls]`` table and its checks, the key file, COP-1 exactly once under loss with
every frame protected, and the attacks of issue 15 on a ground and a spacecraft in
emulated time: a forged Type-BD and Type-AD frame, a forged Set V(R), a replayed
frame, a frame with one bit flipped. Each is refused by SDLS before FARM-1 sees it,
counted by reason, and raises an alarm; nothing is delivered or executed.

The same attacks against running daemons: tests/daemon/test_sdls_attacks.py.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

from channels.errors import IndependentErrors
from channels.link import FixedConditions
from linkstack.ccsds.cop1.farm import FarmState
from linkstack.ccsds.crc import append_fecf
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.cop1_link import Cop1Link
from linkstack.runtime.emulation import Emulation, EmulationConfig
from linkstack.runtime.security import SdlsSettings, load_keys
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.bench.cop1 import (
    DELAY_S,
    DOWNLINK_RATE_BPS,
    SDLS_ON,
    UPLINK_RATE_BPS,
    LossyModel,
    random_queries,
    run_queries,
)
from payloads.backends import make_backend
from payloads.messages import Params

# -- the scenario's table -----------------------------------------------------------------


def test_sdls_is_read_with_its_associations_and_the_frames_shrink_by_its_overhead():
    s = scenario_file.loads(
        '[sdls]\nenabled = true\n[sdls.uplink]\nservice = "auth"\nsn_len = 4\n'
        'auth = "HMAC_SHA256"\nmac_len = 16\n[sdls.downlink]\nspi = 9\n'
    )
    up = s.emulation.uplink
    sdls = up.sdls
    assert sdls.enabled and sdls.uplink.service == "auth" and sdls.downlink.spi == 9
    # TC ("auth"): SPI 2 + SN 4, MAC 16; TM ("aead"): SPI 2 + IV 12, MAC 16
    assert (sdls.tc_overhead, sdls.tm_overhead) == (22, 30)
    assert up.tc_config().max_frame_length == up.tc_max_frame_length - 22
    assert up.tm_config().frame_length == up.tm_frame_length - 30
    assert scenario_file.loads("").emulation.uplink.sdls.enabled  # on by default
    off = scenario_file.loads("[sdls]\nenabled = false").emulation.uplink
    assert not off.sdls.enabled and off.tm_config().frame_length == off.tm_frame_length


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            '[sdls.uplink]\nservice = "auth"',
            "sn_len: an authentication-only SA needs a sequence number",
        ),
        ("[sdls.uplink]\niv_len = 16", "AES-GCM's IV is 12 octets"),
        ('[sdls.uplink]\nservice = "auth"\nsn_len = 4\niv_len = 12', "no IV field"),
        ("[sdls.downlink]\nspi = 1", "the links' SPIs must differ"),
        ('[sdls.laser]\nservice = "rot13"', "unknown service 'rot13'"),
        ("[sdls.uplink]\nspi = 65535", "sdls.uplink.spi"),
        ("[sdls]\nenabled = true\n[frames]\ntc_max_frame_length = 16", "cannot hold SDLS's"),
    ],
)
def test_a_bad_sdls_table_is_refused_by_its_key(text, words):
    with pytest.raises(scenario_file.ScenarioError) as info:
        scenario_file.loads(text)
    assert words in str(info.value)


# -- the key file ---------------------------------------------------------------------------


def test_the_first_start_writes_a_key_file_only_its_owner_reads(tmp_path):
    sdls = SdlsSettings(enabled=True)
    path = tmp_path / "keys" / "sdls-keys.json"
    keys, created = load_keys(path, sdls)
    assert created and oct(path.stat().st_mode & 0o777) == "0o600"
    again, created_again = load_keys(path, sdls)
    assert not created_again  # the same keys, read back; never shown in a repr
    assert again.ids == keys.ids == sdls.key_ids()
    assert all(again.key(k) == keys.key(k) for k in keys.ids)
    assert all(keys.key(k).hex() not in repr(again) for k in keys.ids)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=r"mode 0644: others may read it"):
        load_keys(path, sdls)
    os.chmod(path, 0o600)
    other = replace(sdls, laser=replace(sdls.laser, key_id=77))
    with pytest.raises(ConfigError, match="no key of id 77"):
        load_keys(path, other)
    path.write_text("not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_keys(path, sdls)
    with pytest.raises(ConfigError, match="does not exist"):
        load_keys(tmp_path / "none.json", sdls, create=False)


def _start_with_keys(path, barrier, results):
    barrier.wait()  # every process looks for the file at the same moment
    try:
        keys, created = load_keys(path, SdlsSettings(enabled=True))
        results.put((created, sorted((k, keys.key(k).hex()) for k in keys.ids)))
    except Exception as exc:  # reported, so that the test names it
        results.put(("error", repr(exc)))


def test_daemons_starting_together_share_one_key_file(tmp_path):
    """A ground and a sat daemon started at once both find no key file: one writes
    it, the other reads it whole; neither fails with "exists already" (make test saw
    that). Real processes, released together by a barrier, several times."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = tmp_path / f"run{attempt}" / "sdls-keys.json"
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [
            ctx.Process(target=_start_with_keys, args=(path, barrier, results)) for _ in range(6)
        ]
        for p in procs:
            p.start()
        got = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert not [g for g in got if g[0] == "error"], got
        assert [created for created, _ in got].count(True) == 1
        assert len({repr(keys) for _, keys in got}) == 1  # the same keys for everyone
        assert sorted(os.listdir(path.parent)) == ["sdls-keys.json"]  # no temporary left
        assert oct(path.stat().st_mode & 0o777) == "0o600"


# -- COP-1 with SDLS ------------------------------------------------------------------------


def test_queries_exactly_once_in_order_under_30_percent_loss_with_sdls():
    run = run_queries(300, uplink_loss=0.3, downlink_loss=0.3, seed=7, config=SDLS_ON)
    print("\n" + run.report())
    assert run.exactly_once_in_order, run.report()
    assert run.alerts == []
    s = run.summary()
    assert s["cltus_lost"] > 0 and s["ad_retransmissions"] > 0


def _links(clock: clk.Clock) -> Cop1Link:
    up = LossyModel(FixedConditions(UPLINK_RATE_BPS, DELAY_S))
    down = LossyModel(FixedConditions(DOWNLINK_RATE_BPS, DELAY_S))
    return Cop1Link(clock, up, down, SDLS_ON, IndependentErrors(seed=1), IndependentErrors(seed=2))


def test_forged_replayed_and_damaged_frames_are_refused_before_farm_1():
    queries = random_queries(12, seed=4)

    async def main() -> None:
        clock = clk.make_clock(True)
        async with _links(clock) as link:
            ground, craft = link.ground, link.spacecraft
            on_air: list[bytes] = []
            link.uplink.add_listener(lambda e: e.kind == "sent" and on_air.append(e.unit))
            for q in queries[:6]:
                ground.send(q)
            await craft.wait_delivered(6)
            await clock.sleep(1.0)
            assert craft.guard is not None and ground.guard is not None
            farm_before = (craft.farm.vr, dict(craft.farm.stats))
            delivered = craft.delivered_count
            scid = ground.config.scid
            plain = ground.config.tc_config()
            forged = {
                # what an attacker builds with linkstack's own encoders, keyless
                "bd": TcFrame(scid, 0, b"rogue", TcFrameType.BD, 0, 0),
                "ad": TcFrame(scid, 0, b"rogue", TcFrameType.AD, craft.farm.vr, 0),
                "set_vr": TcFrame(scid, 0, bytes([0x82, 0x00, 0x00]), TcFrameType.BC, 0, None),
            }
            for frame in forged.values():
                link.uplink.send(ground.cltu.cltu(frame.pack(plain.fecf)))
            replayed = [u for u in on_air if u][:3]  # protected CLTUs, accepted once already
            for unit in replayed:
                link.uplink.send(unit)
            await clock.sleep(2.0)
            stats = craft.guard.stats
            assert sum(v for k, v in stats.items() if k.startswith("refused_")) == 6, stats
            assert stats["refused_replay"] >= 1, stats
            assert (craft.farm.vr, dict(craft.farm.stats)) == farm_before  # FARM-1 saw none
            assert craft.delivered_count == delivered and craft.farm.state is FarmState.OPEN
            # and the link goes on: the rest is delivered, exactly once
            for q in queries[6:]:
                ground.send(q)
            await craft.wait_delivered(12)
            assert [p for _, p in craft.delivered] == queries

    clk.run(main, emulated=True)


def test_a_flipped_bit_in_a_protected_tm_frame_is_refused_on_the_ground():
    async def main() -> None:
        clock = clk.make_clock(True)
        async with _links(clock) as link:
            ground = link.ground
            cadus: list[bytes] = []
            link.downlink.add_listener(lambda e: e.kind == "sent" and cadus.append(e.unit))
            await clock.sleep(1.0)
            assert ground.guard is not None and cadus
            alarms: list[str] = []
            ground.guard.on_alarm = lambda end, reason, details: alarms.append(reason)
            decoded = ground.cadu_rx.receive_cadu(cadus[-1])
            assert decoded is not None
            assert ground.guard.check(decoded.frame) is None  # a replay: already verified
            assert ground.guard.stats["refused_replay"] == 1
            damaged = bytearray(decoded.frame)
            damaged[40] ^= 0x10  # one bit of the encrypted data field: link damage
            assert ground.guard.check(bytes(damaged)) is None
            assert ground.guard.stats["refused_fecf"] == 1  # the FECF says so: no alarm
            # the same bit flipped by someone who recomputes the FECF: the tag says so
            forged = append_fecf(bytes(damaged[:-2]))
            assert ground.guard.check(forged) is None
            assert ground.guard.stats["refused_mac"] == 1, ground.guard.stats
            assert alarms == ["replay", "mac"]

    clk.run(main, emulated=True)


def test_the_in_process_emulation_answers_straight_up_and_relayed_with_sdls_on():
    """Every link protected (RF both ways, laser links): queries for a satellite in
    view and for one out of view (relayed over the laser links) are answered, every
    guard verifies what it gets and refuses nothing."""
    backend = make_backend("tiny")
    backend.load()
    config = EmulationConfig(uplink=UplinkConfig(sdls=SdlsSettings(enabled=True)))
    at_t_s = 10_935.0  # CS-06 and CS-07 in view (tests/runtime/test_dispatch.py)

    async def main() -> tuple[list[object], dict[str, int], Emulation]:
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        async with emu:
            await clock.sleep_until(at_t_s)
            far = next(
                s for s in emu.contacts.satellites if not emu.contacts.usable_pass(s, at_t_s)
            )
            params = Params(max_new_tokens=4, seed=1)
            pendings = [
                emu.client.submit("Straight up?", params),
                emu.client.submit("Over the lasers?", params, target=far),
            ]
            results = await asyncio.gather(*(p.result() for p in pendings))
            assert emu.site.guards is not None
            return list(results), emu.site.guards.counters(), emu

    results, counts, emu = clk.run(main)
    assert len(results) == 2 and all(isinstance(r, tuple) for r in results)
    assert counts["protected"] > 0 and counts["verified"] > 0
    assert not [k for k in counts if k.startswith("refused_")], counts
    laser = [g for g in emu.site.guards.made if g.end.startswith("isl:")]
    assert sum(g.stats["verified"] for g in laser) > 0  # the relayed query went by laser


def test_scenario_keys_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = scenario_file.loads('[sdls]\nenabled = true\nkey_file = "k/keys.json"')
    keys, created = load_keys(Path(s.emulation.uplink.sdls.key_file), s.emulation.uplink.sdls)
    assert created and (tmp_path / "k" / "keys.json").exists() and keys.ids == [1, 2, 3]
