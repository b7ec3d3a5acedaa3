"""The initiator of SDLS extended procedures (CCSDS 355.1-B-1) on the ground, sans-I/O:
SA and key management as steps, and key rotation made of them.

A procedure is a generator (as the active conformance cases are): it yields steps and
is sent back what each produced, and returns an :class:`Outcome`:

- :class:`Send` a command up; back comes the recipient's reply that answers it
  (:func:`answers`), or None when none came in the time the runtime allows;
- :class:`TakeSa` the ground may send under this SA from now on (it is operational
  on board), its counters starting after ``arsn``; :class:`SendUnder` the SA the
  ground protects its frames with from now on; :class:`DropSa` the ground no longer
  sends under it. These three get None back.

A reply can be lost on the way down (TM has no retransmission) while the command,
which COP-1 delivered, was carried out. So a command whose reply does not come, or
is a refusal, is followed by an SA Status Request: if the SA is where the command was
to leave it, the command is done (its reply was lost, or it was sent twice and the
second found the work done); if not, it is sent again when no reply came, and the
procedure fails on a refusal. Key procedures have no status request here (Key
Inventory is not built): a retry that is refused with KEY_STATE after a lost reply
is taken as done.

:func:`rotate` is key rotation without losing a frame: the ground, sending under SA
``old``, keys a second SA with the new key and starts it on board, then sends under
it, then stops and expires ``old``. A frame that was sent under ``old`` and is
retransmitted after the switch goes under the new SA (the runtime protects each
transmission afresh), which the spacecraft takes: both are operational until the
ground has switched. ``old`` is stopped by a command under the new SA, so that no
command pulls its own SA away.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from linkstack.ccsds.sdls import SecurityAssociation
from linkstack.ccsds.sdls_ep import (
    SA_KEYED,
    SA_OPERATIONAL,
    SA_UNKEYED,
    Command,
    EpStatus,
    ExpireSa,
    Gvcid,
    KeyActivation,
    KeyDeactivation,
    KeyDestruction,
    Otar,
    ProcedureResult,
    ReadArsn,
    ReadArsnReply,
    RekeySa,
    Reply,
    SaStatusReply,
    SaStatusRequest,
    StartSa,
    StopSa,
)
from linkstack.ccsds.sdls_manager import arsn_len
from linkstack.ccsds.sdls_suites import Cipher

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    command: Command


@dataclass(frozen=True, slots=True)
class TakeSa:
    sa: SecurityAssociation
    arsn: int


@dataclass(frozen=True, slots=True)
class SendUnder:
    spi: int


@dataclass(frozen=True, slots=True)
class DropSa:
    spi: int


Step = Send | TakeSa | SendUnder | DropSa
Steps = Generator[Step, Reply | None, T]


@dataclass
class Outcome:
    """How a procedure ended: ``done``, what it did (one line a step), and why not."""

    done: bool
    log: list[str] = field(default_factory=list)
    reason: str = ""


class _FailedError(Exception):
    pass


def answers(command: Command, reply: Reply) -> bool:
    """Whether ``reply`` is the recipient's answer to ``command`` (a late answer to an
    earlier command is not)."""
    if isinstance(reply, ProcedureResult):
        if reply.command != command.tag().octet:
            return False
        if isinstance(command, KeyActivation | KeyDeactivation | KeyDestruction):
            return reply.subject in command.key_ids
        if isinstance(command, Otar):  # the subject may be a key it carried, sealed
            return True
        return reply.subject == command.spi
    if isinstance(reply, SaStatusReply):
        return isinstance(command, SaStatusRequest) and reply.spi == command.spi
    return isinstance(command, ReadArsn) and reply.spi == command.spi


# -- the steps procedures are made of --------------------------------------------------------


def status(spi: int, attempts: int = 3) -> Steps[str | None]:
    """SA ``spi``'s state on board ("unkeyed", "keyed", "operational"), or None when
    no status came in ``attempts`` requests."""
    for _ in range(attempts):
        reply = yield Send(SaStatusRequest(spi))
        if isinstance(reply, SaStatusReply):
            return reply.state
        if isinstance(reply, ProcedureResult):
            raise _FailedError(f"SA {spi}: status refused: {reply.status.name}")
    return None


def carry_out(
    command: RekeySa | StartSa | StopSa | ExpireSa,
    state_after: str,
    log: list[str],
    attempts: int = 3,
) -> Steps[None]:
    """Send the SA procedure ``command`` until SA ``command.spi`` is in
    ``state_after`` (the module docstring); ``_FailedError`` if it is refused."""
    spi = command.spi
    name = type(command).__name__
    for attempt in range(1, attempts + 1):
        reply = yield Send(command)
        if isinstance(reply, ProcedureResult) and reply.done:
            log.append(f"{name} SA {spi}: done")
            return
        now = yield from status(spi)
        if now == state_after:
            log.append(f"{name} SA {spi}: {state_after} (reply lost)")
            return
        if isinstance(reply, ProcedureResult):
            raise _FailedError(f"{name} SA {spi}: refused: {reply.status.name} ({reply.subject})")
        log.append(f"{name} SA {spi}: no reply, SA {now or 'not reported'} (try {attempt})")
    raise _FailedError(f"{name} SA {spi}: no reply in {attempts} tries")


def carry_out_keys(command: Command, log: list[str], attempts: int = 3) -> Steps[None]:
    """Send a key procedure until it is done (the module docstring)."""
    name = type(command).__name__
    for attempt in range(1, attempts + 1):
        reply = yield Send(command)
        if isinstance(reply, ProcedureResult):
            if reply.done or (attempt > 1 and reply.status is EpStatus.KEY_STATE):
                log.append(f"{name}: done" + (" (reply lost)" if not reply.done else ""))
                return
            raise _FailedError(f"{name}: refused: {reply.status.name} ({reply.subject})")
        log.append(f"{name}: no reply (try {attempt})")
    raise _FailedError(f"{name}: no reply in {attempts} tries")


def _run(body: Steps[None], log: list[str]) -> Steps[Outcome]:
    try:
        yield from body
    except _FailedError as failure:
        return Outcome(False, log, str(failure))
    return Outcome(True, log)


# -- the procedures ----------------------------------------------------------------------------


def rotate(
    old_spi: int, new_sa: SecurityAssociation, key_id: int, arsn: int, gvcid: Gvcid
) -> Steps[Outcome]:
    """Key rotation (the module docstring): from SA ``old_spi`` to ``new_sa`` (an SA
    managed on board, shaped as the link's) keyed with ``key_id``, its anti-replay
    counter starting after ``arsn``, on channel ``gvcid``."""
    log: list[str] = []

    def body() -> Steps[None]:
        spi = new_sa.spi
        if spi == old_spi:
            raise _FailedError(f"SA {spi} is the one sent under: rotate to another")
        now = yield from status(spi)
        if now is None:
            raise _FailedError(f"SA {spi}: no status came")
        if now == SA_OPERATIONAL:
            raise _FailedError(f"SA {spi} is operational already: stop and expire it first")
        if now == SA_KEYED:
            yield from carry_out(ExpireSa(spi), SA_UNKEYED, log)
        counter = arsn.to_bytes(arsn_len(new_sa), "big")
        yield from carry_out(RekeySa(spi, key_id, counter), SA_KEYED, log)
        yield from carry_out(StartSa(spi, (gvcid,)), SA_OPERATIONAL, log)
        keyed = replace(
            new_sa,
            ekid=key_id if new_sa.ekid is not None else None,
            akid=key_id if new_sa.akid is not None else None,
        )
        yield TakeSa(keyed, arsn)
        yield SendUnder(spi)
        log.append(f"sending under SA {spi} (key {key_id})")
        yield from carry_out(StopSa(old_spi), SA_KEYED, log)
        yield from carry_out(ExpireSa(old_spi), SA_UNKEYED, log)
        yield DropSa(old_spi)

    return (yield from _run(body(), log))


def upload_keys(
    master_key_id: int, iv: bytes, keys: Mapping[int, bytes], master: Cipher
) -> Steps[Outcome]:
    """Over-the-air rekeying: ``keys`` sealed under the master key (``master``, with
    ``iv``, which must be new for that key), then activated."""
    log: list[str] = []

    def body() -> Steps[None]:
        yield from carry_out_keys(Otar.seal(master_key_id, iv, keys, master), log)
        yield from carry_out_keys(KeyActivation(tuple(keys)), log)

    return (yield from _run(body(), log))


def read_arsn(spi: int, attempts: int = 3) -> Steps[int | None]:
    """The last anti-replay counter value SA ``spi`` took on board, or None."""
    for _ in range(attempts):
        reply = yield Send(ReadArsn(spi))
        if isinstance(reply, ReadArsnReply):
            return int.from_bytes(reply.arsn, "big")
        if isinstance(reply, ProcedureResult):
            return None
    return None
