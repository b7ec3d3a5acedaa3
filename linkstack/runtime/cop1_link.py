"""COP-1 at work on a link: FOP-1 on the ground, FARM-1 on board, CLCWs coming back.

::

    ground      packets -> Type-AD FDUs (tc.TcVirtualChannel: blocking, segmentation)
                -> FOP-1 (N(S), Sent Queue, retransmissions) -> CLTU -> uplink Link
    spacecraft  CLTU -> frame (pipeline.CltuReceiver) -> TC frame validation (tc)
                -> FARM-1 -> accepted frames -> tc.TcReassembler -> packets, once, in order
    spacecraft  FARM-1's CLCW -> the OCF of a TM frame (data, or idle when there is no
                data) every ``clcw_interval_s`` -> CADU (Reed-Solomon) -> downlink Link
    ground      CADU -> TM frame -> its OCF -> FOP-1 (CLCW arrival)

This is runtime: small asyncio glue that executes what the sans-I/O machines
(:mod:`linkstack.ccsds.cop1.fop`, :mod:`linkstack.ccsds.cop1.farm`) ask for. The ground plays
the lower procedures of FOP-1 one frame at a time: a transmit request becomes a CLTU handed
to the uplink :class:`~channels.link.Link`, and is answered "accepted" (E41/E43/E45)
when the link starts radiating it, so at most one CLTU waits in the link's queue
and a retransmission never queues behind stale copies. T1 is armed on the clock.
The higher procedures' side keeps a backlog of FDUs and offers the next one as
soon as the Wait Queue is empty (the standard's flow control).

Contact gaps. Nothing in COP-1 knows that the spacecraft went below the horizon,
and left alone FOP-1 would spend its transmission limit retransmitting into the
void and then alert (timeout type 0) or suspend (type 1). The ground does what
an operator does, by two rules:

1. **No T1 expiry out of contact.** The ground is "in contact" while CLCWs for
   its channel keep arriving (the last one less than ``contact_timeout_s`` ago)
   and the last one has neither No RF Available nor No Bit Lock set. A T1 expiry
   out of contact is held back (re-armed for another T1) instead of reaching
   FOP-1, so loss of signal costs no transmission and the Sent Queue waits
   intact; after acquisition the first CLCW acknowledges what got through and
   the next expiry retransmits the rest.
2. **Suspend, then resume.** With timeout type 1 (the default here), if the
   limit is reached anyway (a very lossy link), FOP-1 suspends with its queues
   held; as soon as the ground is in contact it raises the transmission limit
   past the current count (directive "set transmission limit", E38) and resumes
   (E31..E34), and it puts the configured limit back once a frame is
   acknowledged (count back to 1). Both are ordinary directives of the standard.

An alert, by contrast, purges the queues: frames negatively confirmed may or may
not have reached FARM-1, so their packets are reported as failed
(:attr:`SentPacket.failed`) rather than sent again; the FDU purged from the Wait
Queue was never sent and goes back to the head of the backlog. Recovery from an
alert (for example "initiate AD service with Unlock" after a lockout) is the
caller's directive, or, with ``resync_from_clcw``, the ground's own (below).

A ground that restarts while FARM-1 on board does not (the daemons) must not start
over from V(S) = 0: with ``resync_from_clcw`` the AD service is initiated from the
first CLCW that comes down, "initiate AD service with Set V(R)" to the N(R) that
FARM-1 reports (after an Unlock if FARM-1 reports Lockout), and again whenever
FOP-1 is back in its initial state (an alert), but not while it is suspended
(automatic resume handles that).

A spacecraft that restarts while the ground does not loses FARM-1's state: V(R) is
back to 0, and what it had accepted since is gone with its software. The ground
tells it from the CLCW alone, and only while FOP-1 is in step with FARM-1 (active,
or suspended): a CLCW that reports Lockout, or an N(R) outside [NN(R), V(S)] (FARM-1
cannot move back, nor ahead of what was sent), is a :class:`FarmReset`, handed to
``on_far_end`` before FOP-1 sees the CLCW (which then alerts, and the resync above
starts over). A ground that has just started is not in step until its own Set V(R)
completes, so it never takes its own start for the spacecraft's. FARM-1 that comes
back with the very V(R) the ground expects (V(S) a multiple of 256 away, nothing
outstanding) is not seen; for that, and for what a restart of the channel between
them loses, the ground also reports a CLCW stream that stopped and came back
(:class:`ClcwResumed`, after more than ``contact_timeout_s`` without a CLCW): whether
that gap was unexpected (in the middle of a pass) is for the caller, who knows the
passes.

What the caller learns, through data rather than tables of its own: each packet it
sends has a :class:`SentPacket` (its acknowledgement, its failure) carrying the
caller's ``tag``; each CLTU that starts to radiate is reported to
``on_transmitted`` as a :class:`Transmitted` with the tag of the packet its frame
belongs to, because the frame's :class:`~linkstack.ccsds.cop1.fop.Transmit` action
and the link's events carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from channels.link import BitErrorSource, Conditions, Delivery, Link, LinkEvent, LinkModel
from linkstack.ccsds.coding.chains import (
    CaduReceiver,
    CaduTransmitter,
    CltuReceiver,
    CltuTransmitter,
)
from linkstack.ccsds.cop1.clcw import Clcw, is_clcw
from linkstack.ccsds.cop1.commands import seq_distance
from linkstack.ccsds.cop1.farm import Farm, FarmState
from linkstack.ccsds.cop1.fop import (
    Action,
    Alert,
    CancelTimer,
    Directive,
    DirectiveResponse,
    Fop,
    FopState,
    Response,
    StartTimer,
    Suspend,
    TransferResponse,
    Transition,
    Transmit,
)
from linkstack.ccsds.tc import TcFrame, TcFrameType, TcVirtualChannel
from linkstack.ccsds.uslp import MAX_MAP_ID as MAX_USLP_MAP_ID
from linkstack.errors import DecodeError, EncodeError
from linkstack.runtime.frames import (
    USLP,
    DownlinkChannel,
)
from linkstack.runtime.security import FrameGuard, Guards, ephemeral_keys
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.timebase import Clock, TimerHandle

OUTSIDE_FRAMES = 256  # TM frames from flight software a radio holds for the next emission


@dataclass(slots=True, eq=False)
class SentPacket:
    """One packet sent by the ground: when, the caller's ``tag``, and when FOP-1 had it
    all acknowledged, or that a frame of it was negatively confirmed (``failed``)."""

    packet: bytes
    sent_t_s: float
    tag: object = None
    acked_t_s: float | None = None
    failed: bool = False


@dataclass(slots=True, eq=False)
class _Fdu:
    """The tag FOP-1 holds for one FDU: its frame, its packet, whether it is its last frame."""

    frame: TcFrame
    packet: SentPacket
    last: bool


@dataclass(frozen=True, slots=True)
class Transmitted:
    """A Type-AD frame's CLTU began to radiate: the ``tag`` of the packet it belongs to,
    the link's unit id, whether it is a retransmission, when, and the link's conditions
    at that instant (``conditions.via`` names the station of an RF link)."""

    tag: object
    unit_id: int
    retransmission: bool
    t_s: float
    conditions: Conditions | None


@dataclass(frozen=True, slots=True)
class FarmReset:
    """FARM-1 is not where the ground left it: the spacecraft restarted (or FARM-1 was
    locked out), so what was sent since the last acknowledgement, and what the
    spacecraft held, may be lost. ``reason``: ``"lockout"`` or ``"vr_out_of_window"``;
    ``report_value``: FARM-1's V(R) as the CLCW reported it; ``vs``: FOP-1's V(S)."""

    t_s: float
    reason: str
    report_value: int
    vs: int


@dataclass(frozen=True, slots=True)
class ClcwResumed:
    """A CLCW came after ``gap_s`` without one (more than the contact timeout); the
    last one before the gap came at ``since_t_s``."""

    t_s: float
    gap_s: float
    since_t_s: float


FarEndSignal = FarmReset | ClcwResumed


class Ground:
    """The ground end: FOP-1 for one virtual channel, the uplink sender, the CLCW reader."""

    def __init__(
        self,
        config: UplinkConfig,
        clock: Clock,
        uplink: Link,
        on_packet: Callable[[float, bytes], object] | None = None,
        *,
        on_transmitted: Callable[[Transmitted], object] | None = None,
        on_far_end: Callable[[FarEndSignal], object] | None = None,
        guard: FrameGuard | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.uplink = uplink
        self.guard = guard  # SDLS: TC frames protected, TM frames checked
        self.on_packet = on_packet  # downlink packets, if the spacecraft sends any
        self.on_transmitted = on_transmitted
        self.on_far_end = on_far_end  # what the CLCW says of the spacecraft's restarts
        # each TM frame as the station decoded it (sync, derandomizer, RS), before the
        # TM layer's checks: what a ground station hands its mission control
        self.on_frame: Callable[[bytes], object] | None = None
        self.on_plain_frame = False  # on_frame gets the frame after SDLS (True) or as on air
        # each packet once FOP-1 is done with it: acknowledged (acked_t_s) or failed
        self.on_settled: Callable[[SentPacket], object] | None = None
        self.fop = Fop(config.fop_config())
        self.vc = TcVirtualChannel(config.tc_config(), config.vcid)
        self.frames = config.uplink_frames()  # FDU -> the frame on air
        self.cltu = CltuTransmitter(config.cltu_coding)
        self.cadu_rx = CaduReceiver(config.tm_frame_length, config.cadu_coding)
        self.tm_rx = config.downlink_receiver()
        self.failed: list[SentPacket] = []  # packets with a frame negatively confirmed
        self.alerts: list[tuple[float, Alert]] = []  # (t_s, alert)
        self.directives: list[tuple[float, DirectiveResponse]] = []  # (t_s, response)
        self.last_clcw: Clcw | None = None
        self.last_clcw_t_s: float | None = None
        self._last_gap_s: float | None = None  # between the last two CLCWs
        self.stats: Counter[str] = Counter()
        self._backlog: deque[_Fdu] = deque()
        self._bd_backlog: deque[TcFrame] = deque()
        self._owned: set[_Fdu] = set()  # the FDUs FOP-1 holds (Wait or Sent Queue)
        self._unlocking = False  # resync: an Unlock is under way
        self._actions: deque[Action] = deque()
        self._draining = False
        self._timer: TimerHandle | None = None  # the clock's handle of the armed T1
        self._limit_raised = False  # by an automatic resume, until a frame is acknowledged
        self._progressed = False
        uplink.add_listener(self._on_uplink_event)

    # -- the caller's side ---------------------------------------------------------------
    def start(self) -> None:
        """Initiate the AD service as configured (with ``resync_from_clcw``, the first
        CLCW does)."""
        if self.config.initiate is not None and not self.config.resync_from_clcw:
            self.directive(self.config.initiate, self.config.initiate_value)

    def send(self, packet: bytes, tag: object = None) -> SentPacket:
        """Queue one packet for the AD service; its :class:`SentPacket`, which carries
        ``tag`` and follows the packet to its acknowledgement."""
        sent = SentPacket(bytes(packet), self.clock.now(), tag)
        frames = self.vc.frames([packet], self.config.map_id)
        for i, frame in enumerate(frames):
            self._backlog.append(_Fdu(frame, sent, i == len(frames) - 1))
        self._execute(())
        return sent

    def send_bd(self, packet: bytes, map_id: int | None = None) -> None:
        """Queue one packet for Type-BD frames: they bypass FARM-1's sequence check and
        COP-1's guarantees (no retransmission), and go whatever state FOP-1 is in. Give
        them a MAP of their own if AD packets are being segmented on the default one."""
        map_id = self.config.map_id if map_id is None else map_id
        if self.config.protocol == USLP and not 0 <= map_id <= MAX_USLP_MAP_ID:
            raise EncodeError("uslp", "map_id", f"USLP MAP ids are 0..{MAX_USLP_MAP_ID}")
        self._bd_backlog.extend(self.vc.frames([packet], map_id, TcFrameType.BD))
        self._execute(())

    def directive(self, directive: Directive, value: object = None) -> list[Action]:
        """Issue a directive to FOP-1 now; the actions it produced (responses included)."""
        actions = self.fop.directive(directive, self.clock.now(), value)
        self._execute(actions)
        return actions

    @property
    def backlog(self) -> int:
        """FDUs not yet handed to FOP-1."""
        return len(self._backlog)

    @property
    def busy(self) -> bool:
        """Whether there is anything to send or to have acknowledged."""
        fop = self.fop
        return bool(self._backlog or fop.outstanding or fop.wait_queue is not None)

    def in_contact(self, t_s: float | None = None) -> bool:
        """Whether the downlink is bringing fresh CLCWs that report an RF uplink, at
        ``t_s`` (default: now)."""
        if self.last_clcw is None or self.last_clcw_t_s is None:
            return False
        t_s = self.clock.now() if t_s is None else t_s
        clcw = self.last_clcw
        fresh = t_s - self.last_clcw_t_s <= self.config.effective_contact_timeout_s
        return fresh and not (clcw.no_rf_available or clcw.no_bit_lock)

    def close(self) -> None:
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the downlink: TM frames and their CLCW ------------------------------------------
    def on_downlink(self, delivery: Delivery) -> None:
        decoded = self.cadu_rx.receive_cadu(delivery.unit)
        if decoded is None:
            return
        raw = decoded.frame
        if self.on_frame is not None and not self.on_plain_frame:
            self.on_frame(raw)
        guard = self.guard
        if guard is not None:
            # the plain frame's FECF is computed only for someone who takes it whole
            handed = self.on_frame is not None and self.on_plain_frame
            checked = guard.check(raw, plain_fecf=handed)
            if checked is None:
                return  # refused by SDLS: counted and alarmed there, never seen by COP-1
            raw = checked
        if self.on_frame is not None and self.on_plain_frame:
            self.on_frame(raw)
        frame = self.tm_rx.receive(raw, fecf_checked=guard is not None)
        if frame is None:
            return
        now = self.clock.now()
        if self.on_packet is not None:
            for packet in frame.packets:
                self.on_packet(now, packet)
        if frame.ocf is not None:
            self._on_ocf(frame.ocf, now)

    def protect(self, frame: bytes) -> bytes:
        """An uplink frame as it goes on air: with SDLS's header and trailer when it is
        on and the frame is on this channel's virtual channel (the uplink's association
        is on linkstack's; a frame of another, the flight software's, is its own)."""
        if self.guard is None or self.frames.vcid(frame) != self.config.vcid:
            return frame
        return self.guard.protect(frame)

    def _on_ocf(self, ocf: bytes, t_s: float) -> None:
        if not is_clcw(ocf):
            self.stats["ocf_not_clcw"] += 1
            return
        try:
            clcw = Clcw.unpack(ocf)
        except DecodeError:
            self.stats["clcw_invalid"] += 1
            self._execute(self.fop.clcw(ocf, t_s))  # E15
            return
        if clcw.vcid != self.config.vcid:
            self.stats["clcw_other_vc"] += 1
            return
        self.stats["clcws"] += 1
        previous_t_s = self.last_clcw_t_s
        self.last_clcw, self.last_clcw_t_s = clcw, t_s
        reason = self._farm_reset_reason(clcw)
        if reason is not None:
            self.stats[f"farm_reset_{reason}"] += 1
            self._signal(FarmReset(t_s, reason, clcw.report_value, self.fop.vs))
        gap_s = None if previous_t_s is None else t_s - previous_t_s
        if gap_s is not None and gap_s > self._break_after_s():
            self.stats["clcw_resumed"] += 1
            self._signal(ClcwResumed(t_s, gap_s, t_s - gap_s))
        self._last_gap_s = gap_s
        self._execute(self.fop.clcw(clcw, t_s))
        self._maybe_resume()
        if self.config.resync_from_clcw:
            self._resync(clcw)

    def _break_after_s(self) -> float:
        """The gap after which the CLCW stream broke: the contact timeout, or, from a
        satellite that slows its TM when idle and was sending at its busy pace, 1.5 idle
        intervals (it may just have gone idle; any longer, something was lost)."""
        config = self.config
        timeout_s = config.effective_contact_timeout_s
        idle_s, last_s = config.idle_clcw_interval_s, self._last_gap_s
        if idle_s is None or last_s is None or last_s > 2 * config.clcw_interval_s:
            return timeout_s
        return min(timeout_s, 1.5 * idle_s)

    def _farm_reset_reason(self, clcw: Clcw) -> str | None:
        """What in ``clcw`` says FARM-1 lost its state, if FOP-1 was in step with it."""
        fop = self.fop
        in_step = fop.state <= FopState.RETRANSMIT_WITH_WAIT or (
            fop.state is FopState.INITIAL and fop.suspend_state != 0
        )
        if not in_step:  # starting, or re-initiating: V(S) is not FARM-1's business yet
            return None
        if clcw.lockout:
            return "lockout"
        if seq_distance(clcw.report_value, fop.nnr) > seq_distance(fop.vs, fop.nnr):
            return "vr_out_of_window"
        return None

    def _signal(self, signal: FarEndSignal) -> None:
        if self.on_far_end is not None:
            self.on_far_end(signal)

    def _resync(self, clcw: Clcw) -> None:
        """Initiate the AD service from FARM-1's report (see the module docstring)."""
        fop = self.fop
        if fop.state is FopState.INITIALISING_WITH_BC:
            if clcw.lockout and not self._unlocking:
                # FARM-1 does not execute Set V(R) in Lockout: start over, with an Unlock
                self.stats["sync_restart_in_lockout"] += 1
                self.directive(Directive.TERMINATE_AD)
            elif self._unlocking and not clcw.lockout and clcw.report_value != fop.vs:
                # unlocked, but V(R) is not our V(S): start over, with Set V(R)
                self.stats["sync_restart_after_unlock"] += 1
                self.directive(Directive.TERMINATE_AD)
            else:
                return  # the initiation's own CLCW check completes it
        if fop.state is not FopState.INITIAL or fop.suspend_state:
            return
        if clcw.lockout:
            self._unlocking = True
            self.stats["sync_unlock"] += 1
            self.directive(Directive.INITIATE_AD_WITH_UNLOCK)
            return
        self._unlocking = False
        self.stats["sync_set_vr"] += 1
        self.directive(Directive.INITIATE_AD_WITH_SET_VR, clcw.report_value)

    # -- executing FOP-1's actions ---------------------------------------------------------
    def _execute(self, actions: list[Action] | tuple[Action, ...]) -> None:
        """Run actions in order; actions they cause are queued behind (never nested)."""
        self._actions.extend(actions)
        if self._draining:
            return
        self._draining = True
        try:
            while True:
                while self._actions:
                    self._do(self._actions.popleft())
                if not (self._offer_fdu() or self._offer_bd() or self._restore_limit()):
                    break
        finally:
            self._draining = False

    def _offer_fdu(self) -> bool:
        fop = self.fop
        if (
            not self._backlog
            or fop.wait_queue is not None
            or fop.state > FopState.RETRANSMIT_WITH_WAIT
        ):
            return False
        fdu = self._backlog.popleft()
        self._owned.add(fdu)
        self._actions.extend(fop.request_ad(fdu.frame, self.clock.now(), fdu))
        return True

    def _offer_bd(self) -> bool:
        if not self._bd_backlog or not self.fop.bd_out_ready:
            return False
        frame = self._bd_backlog.popleft()
        self._actions.extend(self.fop.request_bd(frame, self.clock.now(), "bd"))
        return True

    def _do(self, action: Action) -> None:
        now = self.clock.now()
        stats = self.stats
        if isinstance(action, Transmit):
            frame = action.frame
            unit = self.cltu.cltu(self.protect(self.frames.pack(frame)))
            unit_id = self.uplink.send(unit, tag=action)  # the action comes back at "sent"
            stats[
                f"{frame.frame_type.name}_{'retransmitted' if action.retransmission else 'sent'}"
            ] += 1
            if unit_id is None:
                self._actions.extend(self.fop.transmit_rejected(frame.frame_type, now))
        elif isinstance(action, StartTimer):
            self._arm(action.expiry_t_s)
        elif isinstance(action, CancelTimer):
            self._cancel_timer()
        elif isinstance(action, TransferResponse):
            self._on_transfer_response(action, now)
        elif isinstance(action, DirectiveResponse):
            self.directives.append((now, action))
        elif isinstance(action, Alert):
            stats[f"alert_{action.code.name}"] += 1
            self.alerts.append((now, action))
        elif isinstance(action, Suspend):
            stats["suspends"] += 1
            asyncio.get_running_loop().call_soon(self._maybe_resume)
        elif isinstance(action, Transition):
            stats[f"event_{action.event.name}"] += 1

    def _on_transfer_response(self, response: TransferResponse, t_s: float) -> None:
        tag = response.tag
        if not isinstance(tag, _Fdu):  # a BD frame the caller sent itself
            return
        kind = response.response
        if kind is Response.POSITIVE_CONFIRM:
            self._owned.discard(tag)
            self._progressed = True
            if tag.last:
                tag.packet.acked_t_s = t_s
                if self.on_settled is not None:
                    self.on_settled(tag.packet)
        elif kind is Response.NEGATIVE_CONFIRM:
            self._owned.discard(tag)
            sent = tag.packet
            if not sent.failed:
                sent.failed = True
                self.failed.append(sent)
                if self.on_settled is not None:
                    self.on_settled(sent)
        elif kind is Response.REJECT and tag in self._owned:
            # purged from the Wait Queue, or refused on request: never sent, so offer it again
            self._owned.discard(tag)
            self._backlog.appendleft(tag)

    # -- T1 and the contact gate ---------------------------------------------------------------
    def _arm(self, expiry_t_s: float) -> None:
        self._cancel_timer()
        self._timer = self.clock.call_at(expiry_t_s, self._on_timer, expiry_t_s)

    def _on_timer(self, expiry_t_s: float) -> None:
        self._timer = None
        now = self.clock.now()
        if not self.in_contact(now):
            self.stats["t1_held_out_of_contact"] += 1
            later_t_s = now + self.fop.t1_initial_s
            self._timer = self.clock.call_at(later_t_s, self._on_timer, expiry_t_s)
            return
        self.stats["t1_expired"] += 1
        self._execute(self.fop.timer_expired(max(now, expiry_t_s)))

    def _maybe_resume(self) -> None:
        fop = self.fop
        if not (self.config.auto_resume and fop.state is FopState.INITIAL and fop.suspend_state):
            return
        if not self.in_contact():
            return  # tried again at the next CLCW
        limit = max(fop.transmission_limit, fop.transmission_count + self.config.transmission_limit)
        self.stats["auto_resumes"] += 1
        self._limit_raised, self._progressed = True, False
        self.directive(Directive.SET_TRANSMISSION_LIMIT, limit)
        self.directive(Directive.RESUME_AD)

    def _restore_limit(self) -> bool:
        """Put the configured transmission limit back once a resumed FOP-1 progresses."""
        fop = self.fop
        if not (self._limit_raised and self._progressed):
            return False
        self._limit_raised = False
        base = self.config.transmission_limit
        now = self.clock.now()
        self._actions.extend(fop.directive(Directive.SET_TRANSMISSION_LIMIT, now, base))
        return True

    # -- the lower procedures ----------------------------------------------------------------
    def _on_uplink_event(self, event: LinkEvent) -> None:
        if event.kind == "sent":
            action = event.tag
            if not isinstance(action, Transmit):
                return  # a unit someone else put on this link
            self._execute(self.fop.transmit_accepted(action.frame.frame_type, event.t_s))
            fdu = action.tag
            if self.on_transmitted is not None and isinstance(fdu, _Fdu):
                self.on_transmitted(
                    Transmitted(
                        fdu.packet.tag,
                        event.unit_id,
                        action.retransmission,
                        event.t_s,
                        event.conditions,
                    )
                )
        elif event.kind == "dropped":
            self.stats[f"uplink_dropped_{event.reason}"] += 1


class Spacecraft:
    """The spacecraft end: CLTU decoding, FARM-1, reassembly, and the TM frames that
    carry FARM-1's CLCW down."""

    def __init__(
        self,
        config: UplinkConfig,
        clock: Clock,
        downlink: Link,
        on_packet: Callable[[float, bytes], object] | None = None,
        guard: FrameGuard | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.downlink = downlink
        self.on_packet = on_packet
        self.guard = guard  # SDLS: TC frames of its virtual channel checked, TM protected
        self.farm = Farm(config.vcid, config.farm_window)
        self.cltu_rx = CltuReceiver(config.cltu_coding)
        self.tc_rx = config.uplink_receiver()
        self.frames = config.uplink_frames()
        self.mc: DownlinkChannel = config.downlink_channel()
        self.cadu_tx = CaduTransmitter(config.tm_frame_length, config.cadu_coding)
        # (t_s, packet), kept when nobody takes them (on_packet None: Cop1Link), for
        # a node that runs for ever must not keep every packet it was sent
        self.delivered: list[tuple[float, bytes]] = []
        self.delivered_count = 0
        self.stats: Counter[str] = Counter()
        self._delivered_event = asyncio.Event()
        self._wanted = 0
        # valid TC frames of a virtual channel that is not FARM-1's (flight software's
        # own, through the radio); None: dropped and counted. A virtual channel in
        # ``flight_farms`` has a FARM-1 of its own here: only the frames it accepts,
        # in order and once, go on, and its CLCW takes turns in the OCF with FARM-1's
        self.on_other_vc: Callable[[bytes], object] | None = None
        # a packet that a part on board takes before it is delivered (SDLS management,
        # runtime/sdls_management.py): True when it took it
        self.take_packet: Callable[[float, bytes], bool] | None = None
        self.flight_farms: dict[int, Farm] = {}
        self._clcw_turn = 0
        # TM frames of someone else's virtual channel waiting for the next emission
        # (the radio's buffer: the oldest is lost when it is full); each with keep_ocf
        self.outside_frames: deque[tuple[bytes, bool]] = deque(maxlen=OUTSIDE_FRAMES)

    def on_uplink(self, delivery: Delivery) -> None:
        raw = self.cltu_rx.receive(delivery.unit)
        if raw is None:
            return
        if self.guard is not None and self.guard.protects(raw):
            checked = self.guard.check(raw)
            if checked is None:
                return  # refused by SDLS: FARM-1 never sees it (BD and control frames too)
            raw = checked
        frame = self.tc_rx.validate(raw)
        if frame is not None and frame.vcid != self.farm.vcid:
            self.stats["frames_other_vc"] += 1
            farm = self.flight_farms.get(frame.vcid)
            if farm is None:
                if self.on_other_vc is not None:
                    self.on_other_vc(raw)
                return
            farm.receive(frame)
            for accepted in farm.take():
                if self.on_other_vc is not None:
                    self.on_other_vc(self.frames.pack(accepted))
            if farm.state is FarmState.WAIT:
                farm.buffer_release()
            return
        self.farm.receive(frame)
        now = self.clock.now()
        for accepted in self.farm.take():
            for out in self.tc_rx.reassembler.push(accepted):
                self._deliver(now, out.packet)
        if self.farm.state is FarmState.WAIT:
            self.farm.buffer_release()

    def _deliver(self, t_s: float, packet: bytes) -> None:
        if self.take_packet is not None and self.take_packet(t_s, packet):
            return
        self.delivered_count += 1
        if self.on_packet is not None:
            self.on_packet(t_s, packet)
        else:
            self.delivered.append((t_s, packet))
        if self.delivered_count >= self._wanted:
            self._delivered_event.set()

    async def wait_delivered(self, count: int) -> None:
        """Until ``count`` packets have been delivered in all."""
        while self.delivered_count < count:
            self._wanted = count
            self._delivered_event.clear()
            await self._delivered_event.wait()

    def send_tm(self, packet: bytes, vcid: int = 0) -> None:
        """Queue a packet for the downlink (it goes in the next TM frame)."""
        self.mc.push(vcid, packet)

    def _next_clcw(self) -> Clcw:
        """FARM-1's CLCW, or in turn each FARM's when flight virtual channels have theirs
        (one emission each: every CLCW comes at least every few intervals)."""
        if not self.flight_farms:
            return self.farm.clcw()
        farms = [self.farm, *self.flight_farms.values()]
        self._clcw_turn = (self._clcw_turn + 1) % len(farms)
        return farms[self._clcw_turn].clcw()

    def send_frame(self, frame: bytes, keep_ocf: bool = False) -> None:
        """Queue a TM frame of someone else's virtual channel for the next emission
        (the master channel's ``multiplex`` checks it then)."""
        if len(self.outside_frames) == self.outside_frames.maxlen:
            self.stats["outside_frames_overflow"] += 1
        self.outside_frames.append((bytes(frame), keep_ocf))

    def emit_tm(self) -> int:
        """Send the TM frames ready now (outside ones included), or one idle frame:
        each carries the CLCW (an outside frame kept with its own, if asked)."""
        mc = self.mc
        mc.ocf = self._next_clcw().pack()
        mc.flush()
        frames = mc.drain()
        while self.outside_frames:
            frame, keep_ocf = self.outside_frames.popleft()
            try:
                frames.append(mc.multiplex(frame, keep_ocf))
            except EncodeError as exc:
                self.stats[f"outside_frames_bad_{exc.field}"] += 1
        frames = frames or [mc.idle_frame()]
        guard = self.guard
        for frame in frames:
            on_air = guard.protect(frame) if guard is not None else frame
            self.downlink.send(self.cadu_tx.cadu(on_air))
        self.stats["tm_frames"] += len(frames)
        return len(frames)

    async def run(self) -> None:
        """Report the CLCW every ``clcw_interval_s``, for ever."""
        next_t_s = self.clock.now()
        while True:
            self.emit_tm()
            next_t_s += self.config.clcw_interval_s
            await self.clock.sleep_until(next_t_s)


class Cop1Link:
    """A ground and a spacecraft joined by an uplink and a downlink :class:`Link`.

    ``async with Cop1Link(clock, up_model, down_model) as link:`` starts both links,
    the spacecraft's TM reports and the AD service; ``link.ground.send(packet)``
    sends, ``link.spacecraft.delivered`` is what arrived.
    """

    def __init__(
        self,
        clock: Clock,
        uplink_model: LinkModel,
        downlink_model: LinkModel,
        config: UplinkConfig | None = None,
        uplink_errors: BitErrorSource | None = None,
        downlink_errors: BitErrorSource | None = None,
    ) -> None:
        self.config = config = config or UplinkConfig()
        self.clock = clock
        self.uplink = Link(
            "uplink", clock, uplink_model, uplink_errors, on_delivery=self._to_spacecraft
        )
        self.downlink = Link(
            "downlink", clock, downlink_model, downlink_errors, on_delivery=self._to_ground
        )
        self.guards: Guards | None = None  # the ground's
        self.onboard_guards: Guards | None = None
        ground_guard = spacecraft_guard = None
        if config.sdls.enabled:  # SDLS both ways, with keys made for this link
            keys = ephemeral_keys(config.sdls)
            self.guards = guards = Guards(config.sdls, keys, clock.now, protocol=config.protocol)
            # the spacecraft's keyring is its own, as in the daemons (a key that
            # over-the-air rekeying brings is in one of them, then in the other)
            from linkstack.ccsds.sdls_keys import Keyring  # noqa: PLC0415 - where SDLS is on

            copy = Keyring.from_mapping({kid: keys.key(kid) for kid in keys.ids})
            self.onboard_guards = Guards(config.sdls, copy, clock.now, protocol=config.protocol)
            lengths = (config.tc_max_frame_length, config.tc_segment_header, config.tm_frame_length)
            ground_guard = guards.ground("spacecraft", 1, *lengths)
            spacecraft_guard = self.onboard_guards.spacecraft(
                "spacecraft", 1, *lengths, config.vcid
            )
        self.ground = Ground(config, clock, self.uplink, guard=ground_guard)
        self.spacecraft = Spacecraft(config, clock, self.downlink, guard=spacecraft_guard)
        self._task: asyncio.Task[None] | None = None

    def _to_spacecraft(self, delivery: Delivery) -> None:
        self.spacecraft.on_uplink(delivery)

    def _to_ground(self, delivery: Delivery) -> None:
        self.ground.on_downlink(delivery)

    async def __aenter__(self) -> Cop1Link:
        self.uplink.start()
        self.downlink.start()
        self._task = asyncio.get_running_loop().create_task(self.spacecraft.run(), name="tm")
        self.ground.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.ground.close()
        await self.uplink.close()
        await self.downlink.close()
