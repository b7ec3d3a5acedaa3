"""SDLS SA and key management over linkstack's links (CCSDS 355.1-B-1): the ground
sends extended-procedure commands up, the spacecraft's manager carries them out and
its replies come down; key rotation and over-the-air rekeying during a run.

How the PDUs travel. A command is the data field of a Space Packet on
:data:`SDLS_EP_APID` (0x180, one of linkstack's own APIDs), sent on linkstack's TC
virtual channel through COP-1's AD service like a query: delivered once and in order,
and protected by the uplink's operational SA. A reply goes down the same way in a TM
packet on the same APID, in a TM frame the downlink's SA protects. (CryptoLib takes
its commands on the TC packets of APID 0x180 too, behind a PUS header linkstack does
not use, or in the frames of a dedicated virtual channel.)

Which SA protects them. The link's own: the spacecraft's manager carries out a command
only when the frame that brought it was verified under an operational SA that
authenticates ("auth" or "aead"; the guard says which, ``FrameGuard.last_spi``). A
forged or replayed frame never gets that far (the guard refuses it before FARM-1), a
frame of a clear or encryption-only SA carries no command, and the packet filters of
the gateway and the radio refuse APID 0x180 from outside software. There is no
separate management SA (CryptoLib wants its commands under SPI 0 or its highest one):
with the link's SA, a rotation never leaves the ground without an SA to command with.

The SAs. On board, the uplink's configured SA (``[sdls.uplink]``) is operational at
the start and ``[sdls.management] spare_spis`` are further SAs of the same shape,
unkeyed; the manager (:class:`~linkstack.ccsds.sdls_manager.SaManager`) holds their
states over the spacecraft guard's receiving ``FrameSecurity``, where only
operational SAs are. No SA may take the downlink's or the laser links' keys, nor the
master key. On the ground, the guard's sending ``FrameSecurity`` holds the SAs it may
send under and ``tx_spi`` the one it does.

Key rotation (:meth:`GroundManagement.rotate`, the procedure
:func:`~linkstack.ccsds.sdls_initiator.rotate`): the new key is in both keyrings
(pre-placed in the key file, ``[sdls.management] key_ids``, or sent by
:meth:`GroundManagement.upload_keys`); the ground rekeys a spare SA with it and
starts it on board, sends under it, then stops and expires the old one, which becomes
the next rotation's spare. Queries keep flowing all along: each transmission of a TC
frame is protected afresh at the moment it goes (``Ground._do``), so a frame sent
under the old SA and retransmitted after the switch goes under the new one, which the
spacecraft takes. The new SA's counters start at ``[link][now][0]`` (the layout of
:mod:`linkstack.runtime.security`, with the millisecond of the rekey) and above any
value this ground used before under the same key, so that no GCM IV repeats under a
key that comes back.

Over-the-air rekeying (:meth:`GroundManagement.upload_keys`): new keys sealed with
AES-256-GCM under the master key (``[sdls.management] master_key_id``, in the key
file; a fresh random IV each time), then activated. They live in the two processes'
keyrings, not in the key file: a restart forgets them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from linkstack.ccsds.sdls import SaCounters, SecurityAssociation
from linkstack.ccsds.sdls_ep import Command, Gvcid, Reply, unpack
from linkstack.ccsds.sdls_initiator import (
    DropSa,
    Outcome,
    Send,
    SendUnder,
    Steps,
    TakeSa,
    answers,
    read_arsn,
    rotate,
    status,
    upload_keys,
)
from linkstack.ccsds.sdls_manager import SaManager, arsn_len, describe
from linkstack.ccsds.sdls_suites import KEY_LEN
from linkstack.ccsds.spp import PacketType, SequenceCounter, SpacePacket, parse_primary_header
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.security import (
    BOOT_BITS,
    SDLS_EP_APID,
    FrameGuard,
    SdlsSettings,
    boot_stamp,
    counter_start,
)

if TYPE_CHECKING:
    from linkstack.ccsds.sdls_keys import Keyring
    from linkstack.runtime.cop1_link import Cop1Link, Ground, SentPacket
    from linkstack.runtime.uplink_config import UplinkConfig
    from linkstack.timebase import Clock

log = logging.getLogger("linkstack.security")

T = TypeVar("T")
KEPT_OUTCOMES = 32  # procedures a ground remembers the outcome of (a daemon runs for ever)


def uplink_gvcid(config: UplinkConfig) -> Gvcid:
    """The channel linkstack's uplink SAs protect, as Start SA names it."""
    map_id = config.map_id if config.tc_segment_header else 0
    tfvn = 0b1100 if config.protocol == "uslp" else 0  # USLP's version number, else TC's
    return Gvcid(tfvn, config.scid, config.vcid, map_id)


def spare_sas(template: SecurityAssociation, spis: tuple[int, ...]) -> list[SecurityAssociation]:
    """The managed spare SAs: ``template`` (the link's SA) with each SPI."""
    return [replace(template, spi=spi) for spi in spis]


def ep_packet(pdu_octets: bytes, counter: SequenceCounter, packet_type: PacketType) -> bytes:
    """One PDU as the data field of a Space Packet on :data:`SDLS_EP_APID`."""
    seq = counter.next(SDLS_EP_APID)
    return SpacePacket(SDLS_EP_APID, pdu_octets, packet_type=packet_type, seq_count=seq).pack()


def is_ep_packet(packet: bytes) -> bool:
    try:
        return parse_primary_header(packet).apid == SDLS_EP_APID
    except DecodeError:
        return False


# -- the spacecraft's end ------------------------------------------------------------------


class OnboardManagement:
    """A spacecraft's end: each command that came up goes to the manager, with the SA
    of the frame that brought it; its reply goes down (``send_down``: a whole TM
    packet)."""

    def __init__(
        self, manager: SaManager, guard: FrameGuard, send_down: Callable[[bytes], object]
    ) -> None:
        self.manager = manager
        self.guard = guard
        self.send_down = send_down
        self.counter = SequenceCounter()
        self.stats: Counter[str] = Counter()

    @classmethod
    def build(
        cls,
        guard: FrameGuard,
        sdls: SdlsSettings,
        gvcid: Gvcid,
        send_down: Callable[[bytes], object],
    ) -> OnboardManagement | None:
        """The management of a spacecraft guard's uplink SAs, as ``sdls`` says (None
        when it is off)."""
        mgmt = sdls.management
        if not (sdls.enabled and mgmt.enabled) or guard.rx is None:
            return None
        rx = guard.rx
        template = rx.sa(sdls.uplink.spi)
        reserved = {sdls.downlink.key_id, sdls.laser.key_id} - {sdls.uplink.key_id}
        masters = () if mgmt.master_key_id is None else (mgmt.master_key_id,)
        manager = SaManager(
            rx,
            (gvcid,),
            spares=spare_sas(template, mgmt.spare_spis),
            master_key_ids=masters,
            reserved_key_ids=reserved,
        )
        return cls(manager, guard, send_down)

    def take(self, t_s: float, packet: bytes) -> bool:
        """A packet that came up: True when it was a command (carried out, or refused,
        and answered), False when it is someone else's."""
        if not is_ep_packet(packet):
            return False
        try:
            data = SpacePacket.unpack(packet).data
        except DecodeError:
            self.stats["bad_packets"] += 1
            return True
        self.take_payload(data)
        return True

    def take_payload(self, pdu_octets: bytes) -> None:
        """A command's octets (the data field of its packet)."""
        via = self.guard.last_spi
        reply = self.manager.handle(pdu_octets, via)
        self.stats["commands"] += 1
        log.info(
            "SDLS management command",
            extra={"fields": {"end": self.guard.end, "via_spi": via, "reply": describe(reply)}},
        )
        self.send_down(ep_packet(reply.pack(), self.counter, PacketType.TM))


# -- the ground's end ------------------------------------------------------------------------


class GroundManagement:
    """The ground's end of one satellite's management (module docstring): procedures
    run as steps (:meth:`run`), key rotation (:meth:`rotate`) and over-the-air
    rekeying (:meth:`upload_keys`).

    It sends commands through ``ground`` (a COP-1 channel, :class:`Ground`) and takes
    the replies among its downlink packets: it chains ``ground.on_packet`` and
    ``ground.on_settled`` as they are when it is made (the other packets, and the
    settled ones, go on where they went), so it is made after whoever sets them
    (mission control makes it at the first ``MissionControl.sdls_management`` call).
    A command waits for COP-1 to have it acknowledged (out of contact, as long as that
    takes), its reply ``reply_timeout_s`` more.

    What it does not survive: a restart of either end. A restarted ground sends under
    the configured SA again, and a restarted spacecraft takes only that one: after a
    rotation, restart both (or neither)."""

    def __init__(
        self,
        ground: Ground,
        guard: FrameGuard,
        clock: Clock,
        sdls: SdlsSettings,
        gvcid: Gvcid,
        *,
        link: int,
        reply_timeout_s: float = 5.0,
        wall_s: Callable[[], float] = time.time,
    ) -> None:
        if guard.tx is None or guard.tx_spi is None:
            raise ConfigError("sdls", "management", "the ground's guard sends under no SA")
        self.ground = ground
        self.guard = guard
        self.clock = clock
        self.sdls = sdls
        self.gvcid = gvcid
        self.link = link
        self.reply_timeout_s = reply_timeout_s
        self.wall_s = wall_s  # the rekey's millisecond in the new SA's counters
        self.template = guard.tx.sa(guard.tx_spi)
        self.pool = (sdls.uplink.spi, *sdls.management.spare_spis)
        self.counter = SequenceCounter()
        self.stats: Counter[str] = Counter()
        self.outcomes: deque[Outcome] = deque(maxlen=KEPT_OUTCOMES)  # the last few
        # per key id: the counters the next SA under it must start at or above
        self._floors: dict[int, SaCounters] = {}
        self._starts: dict[int, SaCounters] = {}  # SPI -> its send counters, once taken
        self._waiting: tuple[Command, asyncio.Future[Reply | None]] | None = None
        self._acks: dict[SentPacket, asyncio.Future[Reply | None]] = {}
        self._lock = asyncio.Lock()
        self._next_packet = ground.on_packet
        self._next_settled = ground.on_settled
        ground.on_packet = self._on_packet
        ground.on_settled = self._on_settled

    @property
    def keys(self) -> Keyring:
        assert self.guard.tx is not None
        return self.guard.tx.keys

    @property
    def sending_spi(self) -> int:
        assert self.guard.tx_spi is not None
        return self.guard.tx_spi

    # -- the packets ---------------------------------------------------------------------

    def _on_packet(self, t_s: float, packet: bytes) -> None:
        if not is_ep_packet(packet):
            if self._next_packet is not None:
                self._next_packet(t_s, packet)
            return
        try:
            reply = unpack(SpacePacket.unpack(packet).data)
        except DecodeError:
            self.stats["bad_replies"] += 1
            return
        if isinstance(reply, Command):  # a command coming down: none of ours
            self.stats["bad_replies"] += 1
            return
        waiting = self._waiting
        if waiting is not None and not waiting[1].done() and answers(waiting[0], reply):
            waiting[1].set_result(reply)
            self.stats["replies"] += 1
        else:
            self.stats["replies_unmatched"] += 1  # a late one, its command given up on

    def _on_settled(self, sent: SentPacket) -> None:
        future = self._acks.pop(sent, None)
        if future is not None and not future.done():
            future.set_result(None)
        if self._next_settled is not None:
            self._next_settled(sent)

    # -- commands and procedures -----------------------------------------------------------

    async def command(self, command: Command) -> Reply | None:
        """Send one command; its reply, or None (none within ``reply_timeout_s`` of
        its acknowledgement, or COP-1 gave the packet up)."""
        loop = asyncio.get_running_loop()
        # the reply may come before the acknowledgement: in the TM frame whose CLCW says it
        reply: asyncio.Future[Reply | None] = loop.create_future()
        acked: asyncio.Future[Reply | None] = loop.create_future()
        self._waiting = (command, reply)
        packet = ep_packet(command.pack(), self.counter, PacketType.TC)
        sent = self.ground.send(packet, tag=self)
        self._acks[sent] = acked
        self.stats["commands"] += 1
        try:
            await asyncio.wait([reply, acked], return_when=asyncio.FIRST_COMPLETED)
            if not reply.done():
                if sent.failed:
                    self.stats["commands_failed"] += 1
                    return None
                await asyncio.wait_for(asyncio.shield(reply), self.reply_timeout_s)
            return reply.result()
        except TimeoutError:
            self.stats["replies_lost"] += 1
            return None
        finally:
            self._waiting = None
            self._acks.pop(sent, None)

    async def run(self, steps: Steps[T]) -> T:
        """Carry a procedure out, one step at a time (one procedure at a time)."""
        async with self._lock:
            answer: Reply | None = None
            try:
                while True:
                    step = steps.send(answer)
                    answer = None
                    if isinstance(step, Send):
                        answer = await self.command(step.command)
                    elif isinstance(step, TakeSa):
                        self._take(step.sa, step.arsn)
                    elif isinstance(step, SendUnder):
                        self.guard.tx_spi = step.spi
                    elif isinstance(step, DropSa):
                        self._drop(step.spi)
            except StopIteration as done:
                result: T = done.value
                return result

    async def status(self, spi: int) -> str | None:
        """SA ``spi``'s state on board."""
        return await self.run(status(spi))

    async def read_arsn(self, spi: int) -> int | None:
        """The last anti-replay counter SA ``spi`` took on board."""
        return await self.run(read_arsn(spi))

    async def rotate(self, key_id: int, spi: int | None = None) -> Outcome:
        """Key rotation to key ``key_id`` on SA ``spi`` (default: the first of the
        link's SPI and the spares that is not sent under now)."""
        old = self.sending_spi
        if spi is None:
            spi = next(s for s in self.pool if s != old)
        if key_id not in self.keys:
            return self._outcome(Outcome(False, reason=f"key {key_id} is not in the keyring"))
        new = replace(self.template, spi=spi)
        keyed = replace(
            new,
            ekid=key_id if new.ekid is not None else None,
            akid=key_id if new.akid is not None else None,
        )
        counters = self._starting_counters(keyed, key_id)
        self._starts[spi] = counters
        width = 8 * arsn_len(keyed)
        following = counters.sn if keyed.sn_len else counters.iv
        arsn = (following - 1) % (1 << width) if width else 0
        outcome = await self.run(rotate(old, new, key_id, arsn, self.gvcid))
        return self._outcome(outcome)

    async def upload_keys(self, keys: Mapping[int, bytes]) -> Outcome:
        """Over-the-air rekeying of ``keys`` (key id -> 32 octets) under the master
        key; on success they are in the ground's keyring too."""
        master = self.sdls.management.master_key_id
        if master is None:
            return self._outcome(Outcome(False, reason="no master key ([sdls.management])"))
        for kid, key in keys.items():
            if len(key) != KEY_LEN or kid == master or kid in self.keys:
                return self._outcome(
                    Outcome(False, reason=f"key {kid}: a new 32-octet key, not the master's")
                )
        cipher = self.keys.cipher(master, "AES256_GCM")
        iv = secrets.token_bytes(12)  # random: never one twice under the master key
        outcome = await self.run(upload_keys(master, iv, keys, cipher))
        if outcome.done:
            for kid, key in keys.items():
                self.keys.set(kid, key)
        return self._outcome(outcome)

    def _outcome(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        self.stats["procedures_done" if outcome.done else "procedures_failed"] += 1
        log.info(
            "SDLS management procedure",
            extra={"fields": {"link": self.link, "done": outcome.done, "reason": outcome.reason}},
        )
        return outcome

    # -- the ground's sending SAs --------------------------------------------------------

    def _starting_counters(self, sa: SecurityAssociation, key_id: int) -> SaCounters:
        """Counters for a new SA under ``key_id``: ``[link][now][0]``, above any
        this ground used under that key."""
        stamp = boot_stamp(self.wall_s()) & ((1 << BOOT_BITS) - 1)
        start = SaCounters(
            iv=counter_start(sa.iv_len, self.link, stamp) if sa.iv_len else 0,
            sn=counter_start(sa.sn_len, self.link, stamp) if sa.sn_len else 0,
        )
        floor = self._floors.get(key_id, SaCounters())
        return SaCounters(iv=max(start.iv, floor.iv), sn=max(start.sn, floor.sn))

    def _take(self, sa: SecurityAssociation, arsn: int) -> None:
        tx = self.guard.tx
        assert tx is not None
        if sa.spi in tx.sas:  # a procedure run again after a failure
            self._drop(sa.spi)
        tx.add_sa(sa)
        counters = self._starts.pop(sa.spi, None)
        if counters is None:
            following = (arsn + 1) % (1 << (8 * arsn_len(sa))) if arsn_len(sa) else 0
            counters = SaCounters(sn=following) if sa.sn_len else SaCounters(iv=following)
        tx.set_send_counters(sa.spi, counters)

    def _drop(self, spi: int) -> None:
        tx = self.guard.tx
        assert tx is not None
        if spi not in tx.sas:
            return
        sa = tx.sa(spi)
        used = tx.send_counters(spi)
        kid = sa.ekid if sa.ekid is not None else sa.akid
        if kid is not None:
            floor = self._floors.get(kid, SaCounters())
            self._floors[kid] = SaCounters(iv=max(floor.iv, used.iv), sn=max(floor.sn, used.sn))
        tx.remove_sa(spi)


# -- on a Cop1Link ----------------------------------------------------------------------------


def attach(
    link: Cop1Link, reply_timeout_s: float = 5.0
) -> tuple[GroundManagement, OnboardManagement]:
    """Management on both ends of a :class:`~linkstack.runtime.cop1_link.Cop1Link` with
    SDLS on: the spacecraft takes the commands out of what it delivers, the ground the
    replies out of its downlink packets."""
    ground, craft = link.ground, link.spacecraft
    config = link.config
    if ground.guard is None or craft.guard is None:
        raise ConfigError("sdls", "management", "SDLS is off on this link")
    gvcid = uplink_gvcid(config)
    onboard = OnboardManagement.build(craft.guard, config.sdls, gvcid, craft.send_tm)
    if onboard is None:
        raise ConfigError("sdls", "management", "[sdls.management] is off")
    craft.take_packet = onboard.take
    mgmt = GroundManagement(
        ground,
        ground.guard,
        link.clock,
        config.sdls,
        gvcid,
        link=1,
        reply_timeout_s=reply_timeout_s,
    )
    return mgmt, onboard
