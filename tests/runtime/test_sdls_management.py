"""SDLS SA and key management over linkstack's links (linkstack/runtime/sdls_management.py,
CCSDS 355.1), in emulated time: key rotation in the middle of 300 queries over a link
that loses 30 % of its units each way (every query once and in order, COP-1's
retransmissions across the switch protected afresh under the new SA), frames under the
stopped SA refused afterwards, a forged management PDU refused, over-the-air rekeying,
and a rotation in the in-process emulation (mission control and a satellite node)."""

from __future__ import annotations

import asyncio
import random
import secrets

import pytest

from channels.errors import IndependentErrors
from channels.link import FixedConditions
from linkstack.ccsds import sdls_ep as ep
from linkstack.ccsds.coding.chains import CltuReceiver
from linkstack.ccsds.cop1.fop import Transmit
from linkstack.ccsds.sdls import FrameSecurity, SaCounters
from linkstack.ccsds.sdls_manager import SaState
from linkstack.ccsds.spp import PacketType, SpacePacket
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.cop1_link import Cop1Link
from linkstack.runtime.emulation import Emulation, EmulationConfig
from linkstack.runtime.interface_settings import LINKSTACK_APIDS
from linkstack.runtime.sdls_management import attach
from linkstack.runtime.security import (
    SDLS_EP_APID,
    ManagementSettings,
    SaSettings,
    SdlsSettings,
    load_keys,
)
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.bench.cop1 import (
    DELAY_S,
    DOWNLINK_RATE_BPS,
    UPLINK_RATE_BPS,
    LossyModel,
    random_queries,
)
from payloads.backends import make_backend
from payloads.messages import Params

ROTATION_KEY = 11
MASTER_KEY = 10
MANAGED = SdlsSettings(
    enabled=True,
    management=ManagementSettings(key_ids=(ROTATION_KEY,), master_key_id=MASTER_KEY),
)


def lossy_link(clock: clk.Clock, config: UplinkConfig, loss: float, seed: int) -> Cop1Link:
    up = LossyModel(FixedConditions(UPLINK_RATE_BPS, DELAY_S), loss, seed + 1)
    down = LossyModel(FixedConditions(DOWNLINK_RATE_BPS, DELAY_S), loss, seed + 2)
    return Cop1Link(
        clock, up, down, config, IndependentErrors(seed=seed + 3), IndependentErrors(seed=seed + 4)
    )


def spi_of(link: Cop1Link, cltu: bytes, frame_type: TcFrameType) -> int:
    """The SPI of the protected TC frame a CLTU carries (after the segment header,
    which a control frame has not)."""
    frame = CltuReceiver(link.config.cltu_coding).receive(cltu)
    assert frame is not None
    at = 5 if frame_type is TcFrameType.BC else 6
    return int.from_bytes(frame[at : at + 2], "big")


# -- the scenario's table -----------------------------------------------------------------------


def test_the_management_table_is_read_and_its_keys_go_in_the_key_file(tmp_path):
    s = scenario_file.loads(
        "[sdls]\nenabled = true\n[sdls.management]\nspare_spis = [4, 5]\n"
        "key_ids = [11, 12]\nmaster_key_id = 10\n"
    )
    sdls = s.emulation.uplink.sdls
    assert sdls.management == ManagementSettings(True, (4, 5), (11, 12), 10)
    keys, _ = load_keys(tmp_path / "keys.json", sdls)
    assert keys.ids == [1, 2, 3, 10, 11, 12]
    assert scenario_file.loads("").emulation.uplink.sdls.management == ManagementSettings()
    assert SDLS_EP_APID in LINKSTACK_APIDS  # outside software may not send on it


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("spare_spis = [1]", "must differ from the links' SPIs"),
        ("spare_spis = [4, 4]", "names one twice"),
        ("spare_spis = [0]", "integers 1..65534"),
        ("key_ids = [2]", "not be the downlink's or the laser links' keys"),
        ("master_key_id = 1", "a key of its own"),
        ("key_ids = [10]\nmaster_key_id = 10", "a key of its own"),
        ("spares = [4]", "spares"),
    ],
)
def test_a_bad_management_table_is_refused_by_its_key(text, words):
    with pytest.raises(scenario_file.ScenarioError) as info:
        scenario_file.loads(f"[sdls.management]\n{text}")
    assert words in str(info.value)


# -- key rotation while queries flow ---------------------------------------------------------


def test_a_key_rotation_in_the_middle_of_300_queries_under_30_percent_loss():
    queries = random_queries(300, seed=7)
    config = UplinkConfig(sdls=MANAGED)

    async def main() -> None:
        clock = clk.make_clock(True)
        async with lossy_link(clock, config, 0.3, seed=7) as link:
            ground, craft = link.ground, link.spacecraft
            mgmt, onboard = attach(link)
            first_spi: dict[object, int] = {}  # each AD frame's FDU -> its first SPI
            crossed = []  # FDUs sent under SA 1, retransmitted under SA 4

            def on_air(event) -> None:
                action = event.tag
                if event.kind != "sent" or not isinstance(action, Transmit):
                    return
                if action.frame.frame_type is not TcFrameType.AD:
                    return
                spi = spi_of(link, event.unit, action.frame.frame_type)
                if not action.retransmission:
                    first_spi[action.tag] = spi
                elif first_spi.get(action.tag) == 1 and spi == 4:
                    crossed.append(action.tag)

            link.uplink.add_listener(on_air)
            rng = random.Random(8)
            rotation: asyncio.Task[object] | None = None
            for i, packet in enumerate(queries):
                await clock.sleep(rng.expovariate(1.0))
                ground.send(packet)
                if i == 150:  # queries keep coming while it runs
                    rotation = asyncio.get_running_loop().create_task(mgmt.rotate(ROTATION_KEY))
            await asyncio.wait_for(craft.wait_delivered(len(queries)), 20_000)
            assert rotation is not None
            outcome = await rotation

            assert outcome.done, outcome
            assert [p for _, p in craft.delivered] == queries  # exactly once, in order
            assert ground.alerts == []
            assert ground.guard.tx_spi == 4 and set(ground.guard.tx.sas) == {4}
            states = {spi: m.state for spi, m in onboard.manager.sas.items()}
            assert states == {1: SaState.UNKEYED, 4: SaState.OPERATIONAL}
            assert onboard.manager.security.sa(4).ekid == ROTATION_KEY
            assert crossed, "no frame sent under SA 1 was retransmitted under SA 4"
            refused = {k: v for k, v in craft.guard.stats.items() if k.startswith("refused_")}
            assert set(refused) <= {"refused_fecf"}, refused  # only the link's damage
            assert onboard.stats["commands"] >= 5  # status, rekey, start, stop, expire
            print(
                f"\nrotation: {outcome.log}; {len(crossed)} FDUs crossed the switch; {mgmt.stats}"
            )

    clk.run(main, emulated=True)


def test_after_a_rotation_frames_under_the_stopped_sa_are_refused():
    queries = random_queries(12, seed=5)
    config = UplinkConfig(sdls=MANAGED)

    async def main() -> None:
        clock = clk.make_clock(True)
        async with lossy_link(clock, config, 0.0, seed=5) as link:
            ground, craft = link.ground, link.spacecraft
            mgmt, _ = attach(link)
            old_units: list[bytes] = []
            link.uplink.add_listener(lambda e: e.kind == "sent" and old_units.append(e.unit))
            for q in queries[:6]:
                ground.send(q)
            await craft.wait_delivered(6)
            assert (await mgmt.rotate(ROTATION_KEY)).done
            await clock.sleep(1.0)
            vr, delivered = craft.farm.vr, craft.delivered_count
            # someone who holds the old key, with fresh counters, builds a frame under SA 1
            assert ground.guard is not None and ground.guard.tx is not None
            keys = ground.guard.tx.keys
            old_sa = mgmt.template
            forger = FrameSecurity(
                "tc", [old_sa], keys, fecf=True, segment_header=True, frame_length=1024
            )
            forger.set_send_counters(1, SaCounters(iv=(1 << 95) - 1))
            rogue = random_queries(1, seed=6, max_data=100)[0]
            plain = TcFrame(config.scid, 0, rogue, TcFrameType.AD, vr, 0).pack()
            link.uplink.send(ground.cltu.cltu(forger.apply(plain, 1)))
            link.uplink.send(old_units[2])  # a CLTU the spacecraft took under SA 1
            await clock.sleep(1.0)
            assert craft.guard.stats["refused_spi_unknown"] == 2
            assert (craft.farm.vr, craft.delivered_count) == (vr, delivered)
            for q in queries[6:]:  # and the link goes on under SA 4
                ground.send(q)
            await craft.wait_delivered(12)
            assert [p for _, p in craft.delivered] == queries

    clk.run(main, emulated=True)


def test_a_forged_management_command_is_refused_before_it_reaches_the_manager():
    async def main() -> None:
        clock = clk.make_clock(True)
        async with lossy_link(clock, UplinkConfig(sdls=MANAGED), 0.0, seed=3) as link:
            craft = link.spacecraft
            mgmt, onboard = attach(link)
            await clock.sleep(1.0)
            assert await mgmt.status(1) == "operational"
            commands = onboard.stats["commands"]
            stop = SpacePacket(SDLS_EP_APID, ep.StopSa(1).pack(), packet_type=PacketType.TC)
            plain = link.config.tc_config()
            for frame_type, seq in ((TcFrameType.AD, craft.farm.vr), (TcFrameType.BD, 0)):
                forged = TcFrame(link.config.scid, 0, stop.pack(), frame_type, seq, 0)
                link.uplink.send(link.ground.cltu.cltu(forged.pack(plain.fecf)))
            await clock.sleep(1.0)
            refused = sum(v for k, v in craft.guard.stats.items() if k.startswith("refused_"))
            assert refused == 2
            assert onboard.stats["commands"] == commands  # the manager never saw them
            assert onboard.manager.state(1) is SaState.OPERATIONAL

    clk.run(main, emulated=True)


def test_a_command_under_a_clear_uplink_sa_is_refused_by_the_manager():
    clear = SdlsSettings(enabled=True, uplink=SaSettings(spi=1, key_id=1, service="clear"))

    async def main() -> None:
        clock = clk.make_clock(True)
        async with lossy_link(clock, UplinkConfig(sdls=clear), 0.0, seed=2) as link:
            mgmt, onboard = attach(link)
            await clock.sleep(1.0)
            reply = await mgmt.command(ep.StopSa(1))
            assert reply == ep.ProcedureResult(0x1E, ep.EpStatus.UNAUTHENTICATED, 1)
            assert onboard.manager.stats["refused_unauthenticated"] == 1
            outcome = await mgmt.rotate(1, spi=4)
            assert not outcome.done and "UNAUTHENTICATED" in outcome.reason
            assert onboard.manager.state(1) is SaState.OPERATIONAL

    clk.run(main, emulated=True)


def test_keys_uploaded_over_the_air_then_rotated_to_while_queries_flow():
    queries = random_queries(40, seed=9)
    config = UplinkConfig(sdls=MANAGED)

    async def main() -> None:
        clock = clk.make_clock(True)
        async with lossy_link(clock, config, 0.2, seed=9) as link:
            ground, craft = link.ground, link.spacecraft
            mgmt, onboard = attach(link)
            for q in queries[:20]:
                ground.send(q)
            new = secrets.token_bytes(32)
            assert 12 not in onboard.manager.keys and 12 not in mgmt.keys
            uploaded = await mgmt.upload_keys({12: new})
            assert uploaded.done, uploaded
            assert onboard.manager.keys.key(12) == new == mgmt.keys.key(12)
            rotated = await mgmt.rotate(12)
            assert rotated.done, rotated
            for q in queries[20:]:
                ground.send(q)
            await asyncio.wait_for(craft.wait_delivered(40), 5_000)
            assert [p for _, p in craft.delivered] == queries
            assert onboard.manager.security.sa(4).ekid == 12
            # a second upload of the same key id is refused: it is in service
            again = await mgmt.upload_keys({12: secrets.token_bytes(32)})
            assert not again.done

    clk.run(main, emulated=True)


def test_a_rotation_with_a_key_the_ground_lacks_fails_at_once():
    async def main() -> None:
        clock = clk.make_clock(True)
        async with lossy_link(clock, UplinkConfig(sdls=MANAGED), 0.0, seed=1) as link:
            mgmt, _ = attach(link)
            outcome = await mgmt.rotate(77)
            assert not outcome.done and "key 77 is not in the keyring" in outcome.reason
            assert mgmt.stats["commands"] == 0

    clk.run(main, emulated=True)


def test_attach_needs_sdls():
    async def main() -> None:
        clock = clk.make_clock(True)
        off = UplinkConfig(sdls=SdlsSettings(enabled=False))
        async with lossy_link(clock, off, 0.0, seed=1) as link:
            with pytest.raises(ConfigError, match="SDLS is off"):
                attach(link)

    clk.run(main, emulated=True)


# -- in the emulation: mission control and a satellite node ----------------------------------


def test_the_emulation_rotates_a_satellites_key_between_queries():
    backend = make_backend("tiny")
    backend.load()
    config = EmulationConfig(uplink=UplinkConfig(sdls=MANAGED))
    at_t_s = 10_935.0  # CS-06 and CS-07 in view (tests/runtime/test_dispatch.py)

    async def main() -> None:
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        async with emu:
            await clock.sleep_until(at_t_s)
            sat = next(s for s in emu.contacts.satellites if emu.contacts.usable_pass(s, at_t_s))
            params = Params(max_new_tokens=4, seed=1)
            first = emu.client.submit("Before?", params, target=sat)
            mgmt = emu.mcc.sdls_management(sat)
            outcome = await mgmt.rotate(ROTATION_KEY)
            assert outcome.done, outcome
            second = emu.client.submit("After?", params, target=sat)
            results = await asyncio.gather(first.result(), second.result())
            assert all(isinstance(r, tuple) for r in results)
            node = emu.satellites[sat]
            assert node.sdls_ep is not None
            assert node.sdls_ep.manager.state(4) is SaState.OPERATIONAL
            assert node.sdls_ep.manager.state(1) is SaState.UNKEYED
            assert emu.site.guards is not None
            counts = emu.site.guards.counters()
            assert not [k for k in counts if k.startswith("refused_")], counts
            assert emu.mcc.sdls_management(sat) is mgmt  # one a satellite

    clk.run(main)
