"""The recipient of SDLS extended procedures on board (linkstack/ccsds/sdls_manager.py):
its SA state table (each SA procedure from each state) and key state table, what it
refuses and why, the frames its SAs take and refuse as they move, and that nothing
that comes in makes it raise."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds import sdls_ep as ep
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SaCounters, SecurityAssociation
from linkstack.ccsds.sdls_ep import EpStatus
from linkstack.ccsds.sdls_manager import KeyState, SaManager, SaState
from linkstack.ccsds.sdls_suites import make_cipher
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.errors import SdlsError
from tests.ccsds.test_sdls_ep import pdus

LINK_SA = SecurityAssociation(1, "aead", ecs="AES256_GCM", ekid=1, window=1 << 20)
CLEAR_SA = SecurityAssociation(7, "clear", iv_len=0, mac_len=0)
GVCID = ep.Gvcid(0, 42, 0, 0)
MASTER, DOWNLINK_KEY = 10, 2
KEYS = {1: bytes(range(32)), 2: bytes(32), 10: bytes(range(1, 33)), 11: bytes(range(2, 34))}
NEW_KEY = 11
ARSN = 0x0000_0001_0000_0000_0000_0041  # the new SA's last counter taken: frames from +1
ARSN_OCTETS = ARSN.to_bytes(12, "big")


def make(*, clear_sa: bool = False) -> SaManager:
    """SA 1 operational (the link's), spares 4 and 5 unkeyed; key 10 the master,
    key 2 another link direction's."""
    sas = [LINK_SA, CLEAR_SA] if clear_sa else [LINK_SA]
    rx = FrameSecurity(
        "tc", sas, Keyring.from_mapping(KEYS), fecf=True, segment_header=True, frame_length=1024
    )
    return SaManager(
        rx,
        (GVCID,),
        spares=[replace(LINK_SA, spi=4), replace(LINK_SA, spi=5)],
        master_key_ids=(MASTER,),
        reserved_key_ids=(DOWNLINK_KEY,),
    )


def run(manager: SaManager, pdu: ep.Pdu, via: int | None = 1) -> ep.Reply:
    return manager.handle(pdu.pack(), via)


def result(manager: SaManager, pdu: ep.Pdu, via: int | None = 1) -> tuple[EpStatus, int]:
    reply = run(manager, pdu, via)
    assert isinstance(reply, ep.ProcedureResult) and reply.command == pdu.tag().octet
    return reply.status, reply.subject


def into(manager: SaManager, spi: int, state: SaState) -> None:
    """Bring spare ``spi`` (unkeyed) into ``state`` by the procedures."""
    if state >= SaState.KEYED:
        assert result(manager, ep.RekeySa(spi, NEW_KEY, ARSN_OCTETS))[0] is EpStatus.DONE
    if state is SaState.OPERATIONAL:
        assert result(manager, ep.StartSa(spi, (GVCID,)))[0] is EpStatus.DONE
    assert manager.state(spi) is state


# -- the SA state table -------------------------------------------------------------------------

PROCEDURES = {
    "rekey": ep.RekeySa(4, NEW_KEY, ARSN_OCTETS),
    "start": ep.StartSa(4, (GVCID,)),
    "stop": ep.StopSa(4),
    "expire": ep.ExpireSa(4),
}
# 355.1's SA state machine, written out: (procedure, state) -> state after, None: refused
TABLE = {
    ("rekey", SaState.UNKEYED): SaState.KEYED,
    ("rekey", SaState.KEYED): None,
    ("rekey", SaState.OPERATIONAL): None,
    ("start", SaState.UNKEYED): None,
    ("start", SaState.KEYED): SaState.OPERATIONAL,
    ("start", SaState.OPERATIONAL): None,
    ("stop", SaState.UNKEYED): None,
    ("stop", SaState.KEYED): None,
    ("stop", SaState.OPERATIONAL): SaState.KEYED,
    ("expire", SaState.UNKEYED): None,
    ("expire", SaState.KEYED): SaState.UNKEYED,
    ("expire", SaState.OPERATIONAL): None,
}


@pytest.mark.parametrize(("name", "before"), list(TABLE), ids=lambda v: getattr(v, "name", v))
def test_each_sa_procedure_from_each_state(name, before):
    manager = make()
    into(manager, 4, before)
    pdu = PROCEDURES[name]
    status_before = run(manager, ep.SaStatusRequest(4))
    status, subject = result(manager, pdu)
    after = TABLE[name, before]
    assert subject == 4
    if after is None:
        assert status is EpStatus.SA_STATE
        assert manager.state(4) is before
        assert run(manager, ep.SaStatusRequest(4)) == status_before  # nothing moved
    else:
        assert status is EpStatus.DONE and manager.state(4) is after
        reply = run(manager, ep.SaStatusRequest(4))
        assert isinstance(reply, ep.SaStatusReply) and reply.transition == pdu.tag().octet
        assert reply.state == after.name.lower()
    # only operational SAs are on the link
    assert (4 in manager.security.sas) == (manager.state(4) is SaState.OPERATIONAL)


def test_the_status_of_an_sa_no_procedure_touched_says_its_state():
    manager = make()
    link, spare = run(manager, ep.SaStatusRequest(1)), run(manager, ep.SaStatusRequest(4))
    assert isinstance(link, ep.SaStatusReply) and link.state == "operational"
    assert isinstance(spare, ep.SaStatusReply) and spare.state == "unkeyed"


# -- the key state table ---------------------------------------------------------------------

KEY_TABLE = {
    ("activation", KeyState.PREACTIVE): KeyState.ACTIVE,
    ("activation", KeyState.ACTIVE): None,
    ("activation", KeyState.DEACTIVATED): None,
    ("deactivation", KeyState.PREACTIVE): None,
    ("deactivation", KeyState.ACTIVE): KeyState.DEACTIVATED,
    ("deactivation", KeyState.DEACTIVATED): None,
    ("destruction", KeyState.PREACTIVE): None,
    ("destruction", KeyState.ACTIVE): None,
    ("destruction", KeyState.DEACTIVATED): KeyState.DESTROYED,
}
KEY_PROCEDURES = {
    "activation": ep.KeyActivation,
    "deactivation": ep.KeyDeactivation,
    "destruction": ep.KeyDestruction,
}


def otar(
    keys: dict[int, bytes], master_key: bytes = KEYS[MASTER], iv: bytes = bytes(12)
) -> ep.Otar:
    return ep.Otar.seal(MASTER, iv, keys, make_cipher("AES256_GCM", master_key))


def key_into(manager: SaManager, kid: int, state: KeyState) -> None:
    assert result(manager, otar({kid: bytes([kid]) * 32}))[0] is EpStatus.DONE
    if state >= KeyState.ACTIVE:
        assert result(manager, ep.KeyActivation((kid,)))[0] is EpStatus.DONE
    if state >= KeyState.DEACTIVATED:
        assert result(manager, ep.KeyDeactivation((kid,)))[0] is EpStatus.DONE
    assert manager.key_states[kid] is state


@pytest.mark.parametrize(("name", "before"), list(KEY_TABLE), ids=lambda v: getattr(v, "name", v))
def test_each_key_procedure_from_each_state(name, before):
    manager = make()
    key_into(manager, 20, before)
    status, subject = result(manager, KEY_PROCEDURES[name]((20,)))
    after = KEY_TABLE[name, before]
    assert subject == 20
    if after is None:
        assert status is EpStatus.KEY_STATE and manager.key_states[20] is before
    else:
        assert status is EpStatus.DONE and manager.key_states[20] is after
    assert (20 in manager.keys) == (manager.key_states[20] is not KeyState.DESTROYED)


def test_otar_brings_keys_in_preactive_and_a_rotation_can_take_them_once_active():
    manager = make()
    new = bytes(range(100, 132))
    assert result(manager, otar({30: new, 31: new[::-1]})) == (EpStatus.DONE, MASTER)
    assert manager.keys.key(30) == new and manager.key_states[30] is KeyState.PREACTIVE
    assert result(manager, ep.RekeySa(4, 30, ARSN_OCTETS)) == (EpStatus.KEY_STATE, 30)
    assert result(manager, ep.KeyActivation((30, 31)))[0] is EpStatus.DONE
    assert result(manager, ep.RekeySa(4, 30, ARSN_OCTETS)) == (EpStatus.DONE, 4)
    # the same keys again: they are in service now, never overwritten
    assert result(manager, otar({30: bytes(32)}, iv=bytes(11) + b"\x01")) == (
        EpStatus.KEY_STATE,
        30,
    )
    assert manager.keys.key(30) == new


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (otar({30: bytes(32)}, master_key=bytes(32)), (EpStatus.OTAR_MAC, MASTER)),
        (
            ep.Otar.seal(1, bytes(12), {30: bytes(32)}, make_cipher("AES256_GCM", KEYS[1])),
            (EpStatus.MASTER_KEY, 1),
        ),
        (otar({MASTER: bytes(32)}), (EpStatus.MASTER_KEY, MASTER)),
        (otar({DOWNLINK_KEY: bytes(32)}), (EpStatus.KEY_IN_USE, DOWNLINK_KEY)),
        (otar({1: bytes(32)}), (EpStatus.KEY_STATE, 1)),
        (otar({30: bytes(32), 1: bytes(32)}), (EpStatus.KEY_STATE, 1)),
    ],
)
def test_otar_refusals_change_no_key(pdu, expected):
    manager = make()
    before = {kid: manager.keys.key(kid) for kid in manager.keys.ids}
    assert result(manager, pdu) == expected
    assert {kid: manager.keys.key(kid) for kid in manager.keys.ids} == before


def test_a_key_procedure_over_several_keys_is_all_or_nothing():
    manager = make()
    key_into(manager, 20, KeyState.PREACTIVE)
    key_into(manager, 21, KeyState.ACTIVE)
    assert result(manager, ep.KeyActivation((20, 21))) == (EpStatus.KEY_STATE, 21)
    assert manager.key_states[20] is KeyState.PREACTIVE


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "pdu", "via", "expected"),
    [
        (None, ep.StopSa(9), 1, (EpStatus.UNKNOWN_SPI, 9)),
        (None, ep.SaStatusRequest(9), 1, (EpStatus.UNKNOWN_SPI, 9)),
        (None, ep.StopSa(1), 1, (EpStatus.SA_IN_USE, 1)),  # the SA the command came under
        (None, ep.SetArsn(1, bytes(12)), 1, (EpStatus.SA_IN_USE, 1)),
        (None, ep.RekeySa(4, 99, ARSN_OCTETS), 1, (EpStatus.UNKNOWN_KEY, 99)),
        (None, ep.RekeySa(4, MASTER, ARSN_OCTETS), 1, (EpStatus.MASTER_KEY, MASTER)),
        (None, ep.RekeySa(4, DOWNLINK_KEY, ARSN_OCTETS), 1, (EpStatus.KEY_IN_USE, DOWNLINK_KEY)),
        (None, ep.RekeySa(4, 1, ARSN_OCTETS), 1, (EpStatus.KEY_IN_USE, 1)),  # SA 1's key
        (None, ep.RekeySa(4, NEW_KEY, bytes(8)), 1, (EpStatus.ARSN_LENGTH, 4)),
        ("keyed", ep.StartSa(4, (ep.Gvcid(0, 43, 0, 0),)), 1, (EpStatus.GVCID, 4)),
        ("keyed", ep.StartSa(4, (GVCID, ep.Gvcid(0, 42, 1, 0))), 1, (EpStatus.GVCID, 4)),
        ("keyed", ep.RekeySa(5, NEW_KEY, ARSN_OCTETS), 1, (EpStatus.KEY_IN_USE, NEW_KEY)),
        ("operational", ep.KeyDeactivation((NEW_KEY,)), 1, (EpStatus.KEY_IN_USE, NEW_KEY)),
        (None, ep.KeyDeactivation((MASTER,)), 1, (EpStatus.MASTER_KEY, MASTER)),
        (None, ep.KeyDeactivation((DOWNLINK_KEY,)), 1, (EpStatus.KEY_IN_USE, DOWNLINK_KEY)),
        (None, ep.KeyActivation((99,)), 1, (EpStatus.UNKNOWN_KEY, 99)),
        (None, ep.KeyActivation((20, 20)), 1, (EpStatus.MALFORMED, 20)),
        (None, ep.SaStatusReply(1, 0x1B), 1, (EpStatus.NOT_SUPPORTED, 0)),
        (None, ep.StopSa(4), None, (EpStatus.UNAUTHENTICATED, 4)),  # under no SA known
        (None, ep.StopSa(5), 4, (EpStatus.UNAUTHENTICATED, 5)),  # under an unkeyed one
        (None, ep.KeyActivation((20,)), 4, (EpStatus.UNAUTHENTICATED, 20)),
    ],
)
def test_what_is_refused_and_why(setup, pdu, via, expected):
    manager = make()
    if setup == "keyed":
        into(manager, 4, SaState.KEYED)
    elif setup == "operational":
        into(manager, 4, SaState.OPERATIONAL)
    states = {spi: m.state for spi, m in manager.sas.items()}
    assert result(manager, pdu, via) == expected
    assert {spi: m.state for spi, m in manager.sas.items()} == states
    assert manager.stats[f"refused_{expected[0].name.lower()}"] == 1


def test_a_command_under_a_clear_sa_is_refused():
    manager = make(clear_sa=True)
    assert CLEAR_SA.spi in manager.security.sas  # operational: its frames go through
    assert result(manager, ep.StopSa(1), via=CLEAR_SA.spi) == (EpStatus.UNAUTHENTICATED, 1)
    assert manager.state(1) is SaState.OPERATIONAL


def test_a_pdu_that_does_not_read_is_answered_malformed():
    manager = make()
    assert manager.handle(b"\x1e\x00\x18\x00\x04\x00", 1) == ep.ProcedureResult(
        0x1E, EpStatus.MALFORMED, 0
    )
    assert manager.handle(b"", 1) == ep.ProcedureResult(0, EpStatus.MALFORMED, 0)


@given(st.binary(max_size=120), st.sampled_from([None, 1, 4, 9]))
def test_random_octets_never_make_it_raise(octets, via):
    reply = make().handle(octets, via)
    assert ep.unpack(reply.pack()) == reply


@given(pdus, st.sampled_from([None, 1, 4]))
def test_any_pdu_is_answered(pdu, via):
    manager = make()
    reply = manager.handle(pdu.pack(), via)
    assert ep.unpack(reply.pack()) == reply


# -- the frames the SAs take as they move ------------------------------------------------------


def frame(sender: FrameSecurity, spi: int, n: int) -> bytes:
    plain = TcFrame(42, 0, bytes([n]) * 20, TcFrameType.AD, n % 256, 0).pack()
    return sender.apply(plain, spi)


def test_a_started_sa_takes_frames_above_its_arsn_and_a_stopped_one_none():
    manager = make()
    rx = manager.security
    sender = FrameSecurity(
        "tc",
        [LINK_SA, replace(LINK_SA, spi=4, ekid=NEW_KEY)],
        Keyring.from_mapping(KEYS),
        fecf=True,
        segment_header=True,
        frame_length=1024,
    )
    sender.set_send_counters(4, SaCounters(iv=ARSN + 1))
    early = frame(sender, 4, 1)
    with pytest.raises(SdlsError) as info:
        rx.process(early)
    assert info.value.reason == "spi_unknown"  # unkeyed: not on the link
    into(manager, 4, SaState.KEYED)
    with pytest.raises(SdlsError) as info:
        rx.process(early)
    assert info.value.reason == "spi_unknown"  # keyed, not started
    assert result(manager, ep.StartSa(4, (GVCID,))) == (EpStatus.DONE, 4)
    assert rx.process(early)[0] == 4
    second = frame(sender, 4, 2)
    assert rx.process(second)[0] == 4
    assert run(manager, ep.ReadArsn(4)) == ep.ReadArsnReply(4, (ARSN + 2).to_bytes(12, "big"))
    # at or below the ARSN: a replay
    sender.set_send_counters(4, SaCounters(iv=ARSN))
    with pytest.raises(SdlsError) as info:
        rx.process(frame(sender, 4, 3))
    assert info.value.reason == "replay"
    # the link's SA goes on meanwhile; then SA 1 is stopped, by a command under SA 4
    assert rx.process(frame(sender, 1, 4))[0] == 1
    assert result(manager, ep.StopSa(1), via=4) == (EpStatus.DONE, 1)
    with pytest.raises(SdlsError) as info:
        rx.process(frame(sender, 1, 5))
    assert info.value.reason == "spi_unknown"
    # started again without a rekey, SA 1 takes nothing it took before
    assert result(manager, ep.StartSa(1, (GVCID,)), via=4) == (EpStatus.DONE, 1)
    sender.set_send_counters(1, SaCounters(iv=0))
    with pytest.raises(SdlsError) as info:
        rx.process(frame(sender, 1, 6))
    assert info.value.reason == "replay"


def test_set_arsn_moves_the_counter_of_an_sa():
    manager = make()
    into(manager, 4, SaState.OPERATIONAL)
    higher = (ARSN + 1000).to_bytes(12, "big")
    assert result(manager, ep.SetArsn(4, higher)) == (EpStatus.DONE, 4)
    assert run(manager, ep.ReadArsn(4)) == ep.ReadArsnReply(4, higher)
    assert manager.security.receive_counters(4) == SaCounters(iv=ARSN + 1001)
    assert result(manager, ep.SetArsn(4, bytes(4))) == (EpStatus.ARSN_LENGTH, 4)
