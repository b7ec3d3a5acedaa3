"""The recipient of SDLS extended procedures (CCSDS 355.1-B-1) on board: the states of
its security associations and keys, sans-I/O.

An :class:`SaManager` manages the SAs of one receiving link direction (a spacecraft's
TC SAs) over that direction's :class:`~linkstack.ccsds.sdls.FrameSecurity`, and the
keys of its keyring. :meth:`SaManager.handle` takes one PDU (octets, as they came out
of an authenticated frame, and the SPI of that frame's SA), carries the procedure out
or refuses it, and returns the reply PDU (:mod:`linkstack.ccsds.sdls_ep`); nothing
that comes in makes it raise.

SA states and the procedures that move them (355.1; :data:`SA_TRANSITIONS`)::

    unkeyed --Rekey SA--> keyed --Start SA--> operational --Stop SA--> keyed
    keyed --Expire SA--> unkeyed

Only operational SAs are in the ``FrameSecurity``: a frame under a keyed or unkeyed
SA is refused there as of an unknown SPI. Stop SA keeps the SA's anti-replay counters,
so that starting it again (without a rekey) takes no frame it took before; Rekey SA
sets them from its ARSN (the last value taken: the next frame must carry more).

Key states (:data:`KEY_TRANSITIONS`): the keys in the keyring at the start are
active; OTAR brings keys in pre-active; Key Activation makes them active, Key
Deactivation retires active ones, Key Destruction erases deactivated ones from the
keyring. Master keys (OTAR's) are never an SA's key and no procedure changes them.

What is refused, each with its :class:`~linkstack.ccsds.sdls_ep.EpStatus` in a
:class:`~linkstack.ccsds.sdls_ep.ProcedureResult` (and counted in ``stats``):

- a PDU that does not read (MALFORMED); a reply or a procedure not carried out here
  (NOT_SUPPORTED);
- a command that did not come under an operational SA that authenticates ("auth" or
  "aead"): an unprotected or encryption-only frame carries no command (UNAUTHENTICATED);
- an SPI not managed here (UNKNOWN_SPI); a procedure in a state its table has no
  cell for: start an unkeyed SA, rekey a keyed or operational one, stop one that is
  not operational, expire one that is not keyed (SA_STATE);
- Rekey, Stop, Expire and Set ARSN of the SA the command came under: a command does
  not pull the SA from under itself, as CryptoLib refuses (SA_IN_USE);
- Start SA on a channel the SA cannot protect here (GVCID);
- an ARSN of the wrong length for the SA's counter (ARSN_LENGTH);
- a key not in the keyring (UNKNOWN_KEY), not active when an SA takes it, or in no
  state the key procedure applies to (KEY_STATE), used by another SA or by another
  link direction (KEY_IN_USE: two SAs that encrypt with one key would repeat GCM IVs);
  a master key where an SA key is meant or the reverse (MASTER_KEY);
- OTAR whose sealed keys do not verify under the master key (OTAR_MAC).

A key procedure over several keys is carried out for all or for none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum

from linkstack.ccsds.sdls import FrameSecurity, SaCounters, SecurityAssociation
from linkstack.ccsds.sdls_ep import (
    EpStatus,
    ExpireSa,
    Gvcid,
    KeyActivation,
    KeyDeactivation,
    KeyDestruction,
    Otar,
    Pdu,
    ProcedureResult,
    ReadArsn,
    ReadArsnReply,
    RekeySa,
    Reply,
    SaStatusReply,
    SaStatusRequest,
    SetArsn,
    StartSa,
    StopSa,
    unpack,
)
from linkstack.ccsds.sdls_suites import MacError
from linkstack.errors import ConfigError, DecodeError


class SaState(IntEnum):
    """355.1's SA states (CryptoLib's numbers)."""

    UNKEYED = 1
    KEYED = 2
    OPERATIONAL = 3


class KeyState(IntEnum):
    """355.1's key states (CryptoLib's numbers)."""

    PREACTIVE = 0
    ACTIVE = 1
    DEACTIVATED = 2
    DESTROYED = 3


SaCommand = RekeySa | StartSa | StopSa | ExpireSa
KeyCommand = KeyActivation | KeyDeactivation | KeyDestruction

# the state table of the SA procedures: (procedure, state before) -> state after; a
# missing cell is a refusal (SA_STATE)
SA_TRANSITIONS: dict[type[SaCommand], dict[SaState, SaState]] = {
    RekeySa: {SaState.UNKEYED: SaState.KEYED},
    StartSa: {SaState.KEYED: SaState.OPERATIONAL},
    StopSa: {SaState.OPERATIONAL: SaState.KEYED},
    ExpireSa: {SaState.KEYED: SaState.UNKEYED},
}
KEY_TRANSITIONS: dict[type[KeyCommand], dict[KeyState, KeyState]] = {
    KeyActivation: {KeyState.PREACTIVE: KeyState.ACTIVE},
    KeyDeactivation: {KeyState.ACTIVE: KeyState.DEACTIVATED},
    KeyDestruction: {KeyState.DEACTIVATED: KeyState.DESTROYED},
}
# the last transition an SA reports when no procedure has touched it yet: the
# procedure that would have left it in its state
_AS_IF = {
    SaState.UNKEYED: ExpireSa.tag().octet,
    SaState.KEYED: RekeySa.tag().octet,
    SaState.OPERATIONAL: StartSa.tag().octet,
}


def arsn_len(sa: SecurityAssociation) -> int:
    """Octets of the SA's anti-replay counter: its sequence number, or for
    encryption without one its IV (0: a clear SA has none)."""
    if sa.service == "clear":
        return 0
    return sa.sn_len or sa.iv_len


def counters_after(sa: SecurityAssociation, arsn: int) -> SaCounters:
    """The counters the next frame of ``sa`` must reach when ``arsn`` is the last taken."""
    n = arsn_len(sa)
    if not n:
        return SaCounters()
    following = (arsn + 1) % (1 << (8 * n))
    return SaCounters(sn=following) if sa.sn_len else SaCounters(iv=following)


def arsn_of(sa: SecurityAssociation, counters: SaCounters) -> int:
    """The last value taken, from the counters the next frame must reach."""
    n = arsn_len(sa)
    if not n:
        return 0
    following = counters.sn if sa.sn_len else counters.iv
    return (following - 1) % (1 << (8 * n))


@dataclass(slots=True)
class ManagedSa:
    """One SA as the manager holds it: its configuration (with its current key id),
    its state, the tag of the last procedure that moved it, and, while it is not
    operational, the counters it will start from."""

    sa: SecurityAssociation
    state: SaState
    transition: int
    counters: SaCounters = field(default_factory=SaCounters)

    @property
    def key_id(self) -> int | None:
        return self.sa.ekid if self.sa.ekid is not None else self.sa.akid


class _RefusedError(Exception):
    def __init__(self, status: EpStatus, subject: int) -> None:
        self.status = status
        self.subject = subject


class SaManager:
    """The SAs and keys of one receiving link direction (module docstring).

    ``security``: the direction's ``FrameSecurity``; the SAs in it now are operational.
    ``gvcids``: the channels Start SA may name. ``spares``: further SAs it manages,
    unkeyed at the start (their key ids mean nothing until a Rekey SA).
    ``master_key_ids``: OTAR's keys. ``reserved_key_ids``: keys other link directions
    use (no SA here may take them)."""

    def __init__(
        self,
        security: FrameSecurity,
        gvcids: Iterable[Gvcid],
        *,
        spares: Iterable[SecurityAssociation] = (),
        master_key_ids: Iterable[int] = (),
        reserved_key_ids: Iterable[int] = (),
    ) -> None:
        self.security = security
        self.keys = security.keys
        self.gvcids = frozenset(gvcids)
        self.master_key_ids = frozenset(master_key_ids)
        self.reserved_key_ids = frozenset(reserved_key_ids)
        self.stats: Counter[str] = Counter()
        self.sas: dict[int, ManagedSa] = {}
        for spi, sa in security.sas.items():
            self.sas[spi] = ManagedSa(sa, SaState.OPERATIONAL, _AS_IF[SaState.OPERATIONAL])
        for sa in spares:
            if sa.spi in self.sas:
                raise ConfigError("sdls", "spares", f"SPI {sa.spi} is managed twice")
            self.sas[sa.spi] = ManagedSa(sa, SaState.UNKEYED, _AS_IF[SaState.UNKEYED])
        self.key_states: dict[int, KeyState] = dict.fromkeys(self.keys.ids, KeyState.ACTIVE)

    # -- what the runtime asks --------------------------------------------------------------

    def state(self, spi: int) -> SaState | None:
        managed = self.sas.get(spi)
        return None if managed is None else managed.state

    def handle(self, octets: bytes, via_spi: int | None) -> Reply:
        """Carry out the command ``octets`` that came under SA ``via_spi`` (None:
        under none known); the reply PDU."""
        try:
            pdu = unpack(octets)
        except DecodeError:
            return self._refused(octets[0] if octets else 0, EpStatus.MALFORMED, 0)
        tag = pdu.tag().octet
        try:
            if not self._authenticated(via_spi):
                raise _RefusedError(EpStatus.UNAUTHENTICATED, _subject(pdu))
            reply = self._dispatch(pdu, via_spi)
        except _RefusedError as refusal:
            return self._refused(tag, refusal.status, refusal.subject)
        self.stats[f"{pdu.NAME}_done"] += 1
        return reply

    def _refused(self, tag: int, status: EpStatus, subject: int) -> ProcedureResult:
        self.stats[f"refused_{status.name.lower()}"] += 1
        return ProcedureResult(tag, status, subject)

    def _authenticated(self, via_spi: int | None) -> bool:
        """Whether a command under ``via_spi`` came under an operational SA that
        authenticates."""
        carrier = self.sas.get(via_spi) if via_spi is not None else None
        return (
            carrier is not None
            and carrier.state is SaState.OPERATIONAL
            and carrier.sa.service in ("auth", "aead")
        )

    def _dispatch(self, pdu: Pdu, via_spi: int | None) -> Reply:
        if isinstance(pdu, SaStatusRequest):
            managed = self._sa(pdu.spi)
            return SaStatusReply(pdu.spi, managed.transition)
        if isinstance(pdu, ReadArsn):
            managed = self._sa(pdu.spi)
            value = arsn_of(managed.sa, self._counters(managed))
            return ReadArsnReply(pdu.spi, value.to_bytes(arsn_len(managed.sa), "big"))
        if isinstance(pdu, SetArsn):
            return self._set_arsn(pdu, via_spi)
        if isinstance(pdu, RekeySa | StartSa | StopSa | ExpireSa):
            return self._sa_procedure(pdu, via_spi)
        if isinstance(pdu, KeyActivation | KeyDeactivation | KeyDestruction):
            return self._key_procedure(pdu)
        if isinstance(pdu, Otar):
            return self._otar(pdu)
        raise _RefusedError(EpStatus.NOT_SUPPORTED, 0)  # a reply has no business coming up

    # -- SA procedures ----------------------------------------------------------------------

    def _sa(self, spi: int) -> ManagedSa:
        managed = self.sas.get(spi)
        if managed is None:
            raise _RefusedError(EpStatus.UNKNOWN_SPI, spi)
        return managed

    def _counters(self, managed: ManagedSa) -> SaCounters:
        if managed.state is SaState.OPERATIONAL:
            return self.security.receive_counters(managed.sa.spi)
        return managed.counters

    def _arsn(self, managed: ManagedSa, arsn: bytes) -> SaCounters:
        if len(arsn) != arsn_len(managed.sa):
            raise _RefusedError(EpStatus.ARSN_LENGTH, managed.sa.spi)
        return counters_after(managed.sa, int.from_bytes(arsn, "big"))

    def _set_arsn(self, pdu: SetArsn, via_spi: int | None) -> Reply:
        managed = self._sa(pdu.spi)
        if pdu.spi == via_spi:
            raise _RefusedError(EpStatus.SA_IN_USE, pdu.spi)
        counters = self._arsn(managed, pdu.arsn)
        if managed.state is SaState.OPERATIONAL:
            self.security.set_receive_counters(pdu.spi, counters)
        else:
            managed.counters = counters
        return ProcedureResult(pdu.tag().octet, EpStatus.DONE, pdu.spi)

    def _sa_procedure(self, pdu: SaCommand, via_spi: int | None) -> Reply:
        managed = self._sa(pdu.spi)
        spi = pdu.spi
        if spi == via_spi and not isinstance(pdu, StartSa):
            raise _RefusedError(EpStatus.SA_IN_USE, spi)
        after = SA_TRANSITIONS[type(pdu)].get(managed.state)
        if after is None:
            raise _RefusedError(EpStatus.SA_STATE, spi)
        if isinstance(pdu, RekeySa):
            self._check_sa_key(pdu.key_id, spi, needs_state=True)
            counters = self._arsn(managed, pdu.arsn)
            sa = managed.sa
            managed.sa = replace(
                sa,
                ekid=pdu.key_id if sa.ekid is not None else None,
                akid=pdu.key_id if sa.akid is not None else None,
            )
            managed.counters = counters
        elif isinstance(pdu, StartSa):
            if not pdu.gvcids or not set(pdu.gvcids) <= self.gvcids:
                raise _RefusedError(EpStatus.GVCID, spi)
            kid = managed.key_id
            if kid is not None and self.key_states.get(kid) is not KeyState.ACTIVE:
                raise _RefusedError(EpStatus.KEY_STATE, kid)
            try:
                self.security.add_sa(managed.sa)
            except ConfigError:  # a GCM key taken by another SA: the rekey checks miss none
                raise _RefusedError(EpStatus.KEY_IN_USE, kid or 0) from None
            self.security.set_receive_counters(spi, managed.counters)
        elif isinstance(pdu, StopSa):
            managed.counters = self.security.receive_counters(spi)
            self.security.remove_sa(spi)
        managed.state = after
        managed.transition = pdu.tag().octet
        return ProcedureResult(pdu.tag().octet, EpStatus.DONE, spi)

    def _check_sa_key(self, kid: int, spi: int, *, needs_state: bool) -> None:
        """Key ``kid`` may become SA ``spi``'s."""
        if kid in self.master_key_ids:
            raise _RefusedError(EpStatus.MASTER_KEY, kid)
        if kid not in self.keys:
            raise _RefusedError(EpStatus.UNKNOWN_KEY, kid)
        if needs_state and self.key_states.get(kid) is not KeyState.ACTIVE:
            raise _RefusedError(EpStatus.KEY_STATE, kid)
        if kid in self.reserved_key_ids or any(
            m.sa.spi != spi and m.state is not SaState.UNKEYED and m.key_id == kid
            for m in self.sas.values()
        ):
            raise _RefusedError(EpStatus.KEY_IN_USE, kid)

    # -- key procedures ---------------------------------------------------------------------

    def _key_procedure(self, pdu: KeyCommand) -> Reply:
        table = KEY_TRANSITIONS[type(pdu)]
        if len(set(pdu.key_ids)) != len(pdu.key_ids):
            raise _RefusedError(EpStatus.MALFORMED, pdu.key_ids[0])
        for kid in pdu.key_ids:  # every key first: all or none
            if kid in self.master_key_ids:
                raise _RefusedError(EpStatus.MASTER_KEY, kid)
            state = self.key_states.get(kid)
            if state is None:
                raise _RefusedError(EpStatus.UNKNOWN_KEY, kid)
            if state not in table:
                raise _RefusedError(EpStatus.KEY_STATE, kid)
            if not isinstance(pdu, KeyActivation) and self._in_use(kid, pdu):
                raise _RefusedError(EpStatus.KEY_IN_USE, kid)
        for kid in pdu.key_ids:
            after = table[self.key_states[kid]]
            self.key_states[kid] = after
            if after is KeyState.DESTROYED:
                self.keys.remove(kid)
        return ProcedureResult(pdu.tag().octet, EpStatus.DONE, pdu.key_ids[0])

    def _in_use(self, kid: int, pdu: KeyCommand) -> bool:
        """Deactivation: an operational SA uses ``kid``; destruction: any keyed one;
        either: another link direction does."""
        if kid in self.reserved_key_ids:
            return True
        using = (
            (SaState.OPERATIONAL,)
            if isinstance(pdu, KeyDeactivation)
            else (SaState.KEYED, SaState.OPERATIONAL)
        )
        return any(m.key_id == kid and m.state in using for m in self.sas.values())

    def _otar(self, pdu: Otar) -> Reply:
        master = pdu.master_key_id
        if master not in self.master_key_ids:
            raise _RefusedError(EpStatus.MASTER_KEY, master)
        if master not in self.keys:
            raise _RefusedError(EpStatus.UNKNOWN_KEY, master)
        if self.key_states.get(master) is not KeyState.ACTIVE:
            raise _RefusedError(EpStatus.KEY_STATE, master)
        try:
            keys = pdu.open(self.keys.cipher(master, "AES256_GCM"))
        except MacError:
            raise _RefusedError(EpStatus.OTAR_MAC, master) from None
        except DecodeError:
            raise _RefusedError(EpStatus.MALFORMED, master) from None
        for kid in keys:  # every key first: all or none
            if kid in self.master_key_ids:
                raise _RefusedError(EpStatus.MASTER_KEY, kid)
            if kid in self.reserved_key_ids:
                raise _RefusedError(EpStatus.KEY_IN_USE, kid)
            if self.key_states.get(kid) in (KeyState.ACTIVE, KeyState.DEACTIVATED):
                raise _RefusedError(EpStatus.KEY_STATE, kid)  # never overwrite a key in service
        for kid, key in keys.items():
            self.keys.set(kid, key)
            self.key_states[kid] = KeyState.PREACTIVE
        return ProcedureResult(pdu.tag().octet, EpStatus.DONE, master)


def _subject(pdu: Pdu) -> int:
    """What a command is about, as its result names it: its SPI, its first key id, or
    OTAR's master key id (0 for a reply)."""
    if isinstance(pdu, KeyActivation | KeyDeactivation | KeyDestruction):
        return pdu.key_ids[0]
    if isinstance(pdu, Otar):
        return pdu.master_key_id
    if isinstance(pdu, ProcedureResult):
        return 0
    return pdu.spi


def describe(reply: Reply) -> str:
    """One line for a log: what a reply says."""
    if isinstance(reply, ProcedureResult):
        return f"command {reply.command:#04x}: {reply.status.name} ({reply.subject})"
    if isinstance(reply, SaStatusReply):
        return f"SA {reply.spi}: {reply.state or f'transition {reply.transition:#04x}'}"
    return f"SA {reply.spi}: ARSN {reply.arsn.hex()}"
