"""The ground's side of SDLS extended procedures (linkstack/ccsds/sdls_initiator.py),
sans-I/O: its procedures driven against the recipient on board
(:class:`~linkstack.ccsds.sdls_manager.SaManager`), with replies lost on the way down
as TM loses them; then the frames each side's SAs protect and take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from linkstack.ccsds import sdls_ep as ep
from linkstack.ccsds import sdls_initiator as ini
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SaCounters
from linkstack.ccsds.sdls_manager import SaManager, SaState
from linkstack.ccsds.sdls_suites import make_cipher
from linkstack.errors import SdlsError
from tests.ccsds.test_sdls_manager import GVCID, KEYS, LINK_SA, MASTER, NEW_KEY, frame, make

ARSN = 0x2000


class Ends:
    """The ground's sending SAs and the manager on board, joined by a reply path that
    loses the replies ``lose`` says."""

    def __init__(self, lose: Callable[[int], bool] = lambda n: False) -> None:
        self.manager: SaManager = make()
        self.ground = FrameSecurity(
            "tc",
            [LINK_SA],
            Keyring.from_mapping(KEYS),
            fecf=True,
            segment_header=True,
            frame_length=1024,
        )
        self.sending = LINK_SA.spi
        self.lose = lose
        self.sent: list[ep.Command] = []

    def drive(self, steps: ini.Steps[ini.T]) -> ini.T:
        answer: ep.Reply | None = None
        try:
            while True:
                step = steps.send(answer)
                answer = None
                if isinstance(step, ini.Send):
                    n = len(self.sent)
                    self.sent.append(step.command)
                    reply = self.manager.handle(step.command.pack(), self.sending)
                    answer = None if self.lose(n) else reply
                elif isinstance(step, ini.TakeSa):
                    self.ground.add_sa(step.sa)
                    self.ground.set_send_counters(step.sa.spi, SaCounters(iv=step.arsn + 1))
                elif isinstance(step, ini.SendUnder):
                    self.sending = step.spi
                elif isinstance(step, ini.DropSa):
                    self.ground.remove_sa(step.spi)
        except StopIteration as done:
            return done.value

    def rotate(self, key_id: int = NEW_KEY, spi: int = 4) -> ini.Outcome:
        old = self.sending
        return self.drive(ini.rotate(old, replace(LINK_SA, spi=spi), key_id, ARSN, GVCID))


def states(ends: Ends) -> dict[int, str]:
    return {spi: m.state.name.lower() for spi, m in ends.manager.sas.items()}


@pytest.mark.parametrize(
    "lose",
    [
        lambda n: False,
        lambda n: n % 2 == 1,  # every other reply
        lambda n: n % 3 != 2,  # two replies of three
    ],
    ids=["none lost", "half lost", "two thirds lost"],
)
def test_a_rotation_ends_with_the_new_sa_alone_whatever_replies_are_lost(lose):
    ends = Ends(lose)
    outcome = ends.rotate()
    assert outcome.done, outcome
    assert states(ends) == {1: "unkeyed", 4: "operational", 5: "unkeyed"}
    assert ends.sending == 4 and set(ends.ground.sas) == {4}
    assert ends.ground.sa(4).ekid == NEW_KEY
    # the ground's frames go under SA 4, counted from the ARSN, and the spacecraft takes them
    rx = ends.manager.security
    assert rx.process(frame(ends.ground, 4, 1))[0] == 4
    assert rx.receive_counters(4) == SaCounters(iv=ARSN + 2)
    # each command went once when its reply came, and was followed by a status request
    # when it did not: never two rekeys
    assert sum(isinstance(c, ep.RekeySa) for c in ends.sent) == 1
    lost = sum(1 for n in range(len(ends.sent)) if lose(n))
    assert ("reply lost" in " ".join(outcome.log)) == (lost > 0)


def test_a_rotation_back_and_forth_uses_the_expired_sa_as_the_next_spare():
    ends = Ends()
    assert ends.rotate(NEW_KEY, 4).done
    assert ends.rotate(1, 1).done  # key 1 is free again: SA 1 was expired
    assert states(ends) == {1: "operational", 4: "unkeyed", 5: "unkeyed"}
    assert ends.sending == 1


def test_a_keyed_sa_is_expired_before_it_is_rekeyed():
    ends = Ends()
    master = make_cipher("AES256_GCM", KEYS[MASTER])
    steps = [
        (ep.Otar.seal(MASTER, bytes(12), {12: bytes(range(5, 37))}, master), MASTER),
        (ep.KeyActivation((12,)), 12),
        (ep.RekeySa(5, 12, bytes(12)), 5),  # SA 5 keyed, with another key, before the rotation
    ]
    for command, subject in steps:
        reply = ends.manager.handle(command.pack(), 1)
        assert reply == ep.ProcedureResult(command.tag().octet, ep.EpStatus.DONE, subject)
    assert ends.rotate(NEW_KEY, 5).done
    assert [type(c).__name__ for c in ends.sent][:3] == ["SaStatusRequest", "ExpireSa", "RekeySa"]
    assert states(ends)[5] == "operational"


def test_a_refused_rotation_says_why_and_leaves_the_ground_where_it_was():
    ends = Ends()
    outcome = ends.rotate(key_id=99)  # no key 99 on board
    assert not outcome.done
    assert "RekeySa SA 4: refused: UNKNOWN_KEY (99)" in outcome.reason
    assert ends.sending == 1 and set(ends.ground.sas) == {1}
    assert states(ends)[1] == "operational"


def test_a_rotation_with_no_reply_at_all_fails_before_it_changes_anything():
    ends = Ends(lambda n: True)
    outcome = ends.rotate()
    assert not outcome.done and "no status came" in outcome.reason
    assert ends.sending == 1 and states(ends)[4] == "unkeyed"


def test_rotating_to_the_sa_sent_under_is_refused_at_once():
    ends = Ends()
    outcome = ends.drive(ini.rotate(1, LINK_SA, NEW_KEY, ARSN, GVCID))
    assert not outcome.done and "rotate to another" in outcome.reason and not ends.sent


def test_keys_uploaded_over_the_air_then_rotated_to():
    ends = Ends(lambda n: n == 0)  # the OTAR's reply is lost: the retry finds the key there
    master = make_cipher("AES256_GCM", KEYS[MASTER])
    key = bytes(range(50, 82))
    outcome = ends.drive(ini.upload_keys(MASTER, bytes(11) + b"\x07", {40: key}, master))
    assert outcome.done, outcome
    assert ends.manager.keys.key(40) == key
    ends.ground.keys.set(40, key)
    assert ends.rotate(40).done
    assert ends.manager.security.process(frame(ends.ground, 4, 9))[0] == 4


def test_a_frame_under_the_old_sa_is_refused_after_the_rotation():
    ends = Ends()
    old = FrameSecurity(
        "tc",
        [LINK_SA],
        Keyring.from_mapping(KEYS),
        fecf=True,
        segment_header=True,
        frame_length=1024,
    )
    old.set_send_counters(1, SaCounters(iv=1 << 80))  # fresh counters, the right key
    assert ends.rotate().done
    with pytest.raises(SdlsError) as info:
        ends.manager.security.process(frame(old, 1, 1))
    assert info.value.reason == "spi_unknown"
    assert ends.manager.state(1) is SaState.UNKEYED


def test_answers_matches_a_reply_to_its_command_only():
    start, stop = ep.StartSa(4, (GVCID,)), ep.StopSa(4)
    done = ep.ProcedureResult(start.tag().octet, ep.EpStatus.DONE, 4)
    assert ini.answers(start, done) and not ini.answers(stop, done)
    assert not ini.answers(ep.StartSa(5, (GVCID,)), done)
    assert ini.answers(ep.SaStatusRequest(4), ep.SaStatusReply(4, 0x1B))
    assert not ini.answers(ep.SaStatusRequest(5), ep.SaStatusReply(4, 0x1B))
    keys = ep.KeyActivation((20, 21))
    assert ini.answers(keys, ep.ProcedureResult(keys.tag().octet, ep.EpStatus.KEY_STATE, 21))
    assert not ini.answers(keys, ep.ProcedureResult(keys.tag().octet, ep.EpStatus.DONE, 22))
