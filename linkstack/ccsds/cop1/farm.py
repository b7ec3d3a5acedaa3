"""FARM-1, the receiving end of COP-1 (CCSDS 232.1-B-2 §6), sans-I/O.

One :class:`Farm` serves one TC virtual channel. It takes frames that passed the
TC frame validation (:meth:`linkstack.ccsds.tc.TcReceiver.validate`) — or ``None`` for a
frame that did not — and decides, by the FARM-1 state table (232.1-B-2 table 6-1),
whether each is accepted; it keeps the variables the CLCW reports
(:meth:`Farm.clcw`). Nothing here reads a clock or does I/O.

States: S1 Open, S2 Wait (no buffer space), S3 Lockout. The window: with the
FARM sliding window width W (even, 2..254), the positive window edge PW and the
negative window edge NW are both W/2; for a Type-AD frame, modulo 256:

- N(S) = V(R): in sequence (E1 with buffer space, E2 without);
- V(R) < N(S) <= V(R) + PW - 1: the positive window, a frame was lost (E3);
- V(R) - NW <= N(S) < V(R): the negative window, a repeat of an accepted frame (E4);
- anything else: the lockout area (E5).

Events (table 6-1): E1..E5 the Type-AD cases above, E6 a Type-BD frame, E7 a
Type-BC Unlock, E8 a Type-BC Set V(R), E9 an invalid frame (failed validation,
another virtual channel, or a Type-BC frame whose data is not a control
command), E10 the buffer release signal from the higher procedures. The CLCW
report (action 6.2.4 "Report") is :meth:`Farm.clcw`: it changes nothing.

Accepted frames go to :attr:`Farm.buffer` until the higher procedures
:meth:`take` them; with ``buffer_frames`` set, a Type-AD frame that would
exceed it finds no buffer space (E2): FARM-1 sets the Wait flag and goes to S2
until :meth:`buffer_release` (E10); in S2 a frame in sequence stays E2 until
that signal, so E1 does not arise there (the table's "not applicable"). Type-BD
frames are accepted whatever the buffer holds (they bypass flow control).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from enum import Enum, IntEnum

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock, seq_distance, unpack_control_command
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.errors import ConfigError, DecodeError

MIN_WINDOW = 2
MAX_WINDOW = 254


class FarmState(IntEnum):
    OPEN = 1  # S1
    WAIT = 2  # S2
    LOCKOUT = 3  # S3


class FarmEvent(Enum):
    """The events of the FARM-1 state table (232.1-B-2 table 6-1)."""

    E1 = "AD frame, N(S) = V(R), buffer space available"
    E2 = "AD frame, N(S) = V(R), no buffer space"
    E3 = "AD frame in the positive window"
    E4 = "AD frame in the negative window"
    E5 = "AD frame in the lockout area"
    E6 = "BD frame"
    E7 = "BC frame: Unlock"
    E8 = "BC frame: Set V(R)"
    E9 = "invalid frame"
    E10 = "buffer release signal"


@dataclass(frozen=True, slots=True)
class FarmResult:
    """What one event did: ``accepted`` is the frame put in the buffer (AD or BD),
    None when the frame was discarded or was a control command."""

    event: FarmEvent
    old_state: FarmState
    new_state: FarmState
    accepted: TcFrame | None = None


class Farm:
    """FARM-1 for one virtual channel (see the module docstring)."""

    def __init__(
        self,
        vcid: int,
        window_width: int = 64,
        buffer_frames: int | None = None,
        status: int = 0,
    ) -> None:
        if not isinstance(window_width, int) or not (
            MIN_WINDOW <= window_width <= MAX_WINDOW and window_width % 2 == 0
        ):
            raise ConfigError(
                "farm",
                "window_width",
                f"must be even, {MIN_WINDOW}..{MAX_WINDOW}, got {window_width}",
            )
        if buffer_frames is not None and buffer_frames < 1:
            raise ConfigError("farm", "buffer_frames", f"must be None or >= 1, got {buffer_frames}")
        Clcw(vcid, 0, status=status)  # checks vcid and status
        self.vcid = vcid
        self.window_width = window_width
        self.positive_window = window_width // 2  # PW
        self.negative_window = window_width // 2  # NW
        self.buffer_frames = buffer_frames
        self.status = status
        self.state = FarmState.OPEN
        self.vr = 0  # V(R), the receiver frame sequence number
        self.lockout = False
        self.wait = False
        self.retransmit = False
        self.farm_b_counter = 0  # counted in full; the CLCW carries the 2 low bits
        # set by the runtime from the physical layer; reported, never used by FARM-1
        self.no_rf_available = False
        self.no_bit_lock = False
        self.buffer: deque[TcFrame] = deque()
        self._ad_buffered = 0
        self.stats: Counter[str] = Counter()

    # -- the report -------------------------------------------------------------------
    def clcw(self) -> Clcw:
        """The CLCW that reports FARM-1's state now (action "Report")."""
        return Clcw(
            vcid=self.vcid,
            report_value=self.vr,
            lockout=self.lockout,
            wait=self.wait,
            retransmit=self.retransmit,
            farm_b_counter=self.farm_b_counter & 0b11,
            no_rf_available=self.no_rf_available,
            no_bit_lock=self.no_bit_lock,
            status=self.status,
        )

    # -- the higher procedures' side of the buffer --------------------------------------
    @property
    def buffer_space(self) -> bool:
        return self.buffer_frames is None or self._ad_buffered < self.buffer_frames

    def take(self) -> list[TcFrame]:
        """Hand every buffered frame to the higher procedures, in order of acceptance.
        (The buffer release signal is separate: :meth:`buffer_release`.)"""
        out = list(self.buffer)
        self.buffer.clear()
        self._ad_buffered = 0
        return out

    def buffer_release(self) -> FarmResult:
        """E10: the higher procedures say buffer space is free again."""
        return self._apply(FarmEvent.E10, None, None)

    # -- frames -------------------------------------------------------------------------
    def classify(self, frame: TcFrame | None) -> tuple[FarmEvent, SetVr | None]:
        """The event a frame is (and the Set V(R) command it carries, for E8)."""
        if frame is None or frame.vcid != self.vcid:
            return FarmEvent.E9, None
        if frame.frame_type is TcFrameType.BD:
            return FarmEvent.E6, None
        if frame.frame_type is TcFrameType.BC:
            try:
                command = unpack_control_command(frame.data)
            except DecodeError:
                return FarmEvent.E9, None
            if isinstance(command, Unlock):
                return FarmEvent.E7, None
            return FarmEvent.E8, command
        d = seq_distance(frame.seq, self.vr)
        if d == 0:  # in Wait, space counts as free only after the release signal (E10)
            free = self.state is not FarmState.WAIT and self.buffer_space
            return (FarmEvent.E1 if free else FarmEvent.E2), None
        if d <= self.positive_window - 1:
            return FarmEvent.E3, None
        if d >= 256 - self.negative_window:
            return FarmEvent.E4, None
        return FarmEvent.E5, None

    def receive(self, frame: TcFrame | None) -> FarmResult:
        """One frame from the validation (None: a frame that failed it). Never raises."""
        event, command = self.classify(frame)
        return self._apply(event, frame, command)

    # -- the state table -------------------------------------------------------------------
    def _accept(self, frame: TcFrame) -> TcFrame:
        self.buffer.append(frame)
        if frame.frame_type is TcFrameType.AD:
            self._ad_buffered += 1
        return frame

    def _apply(self, event: FarmEvent, frame: TcFrame | None, command: SetVr | None) -> FarmResult:
        old = state = self.state
        accepted = None
        S1, S2, S3 = FarmState.OPEN, FarmState.WAIT, FarmState.LOCKOUT  # noqa: N806
        if event is FarmEvent.E1:
            if state is S1:  # accept, V(R) + 1, Retransmit := 0
                assert frame is not None
                accepted = self._accept(frame)
                self.vr = (self.vr + 1) % 256
                self.retransmit = False
            # S2: not applicable (no buffer space in Wait); S3: discard
        elif event is FarmEvent.E2:
            if state is S1:  # discard, Retransmit := 1, Wait := 1
                self.retransmit = True
                self.wait = True
                state = S2
        elif event is FarmEvent.E3:
            if state is S1:  # discard, Retransmit := 1
                self.retransmit = True
        elif event is FarmEvent.E5:
            if state in (S1, S2):  # discard, Lockout := 1
                self.lockout = True
                state = S3
        elif event is FarmEvent.E6:  # every state: accept, FARM-B counter + 1
            assert frame is not None
            accepted = self._accept(frame)
            self.farm_b_counter += 1
        elif event is FarmEvent.E7:  # Unlock
            self.farm_b_counter += 1
            self.retransmit = False
            if state in (S2, S3):
                self.wait = False
                self.lockout = False
                state = S1
        elif event is FarmEvent.E8:  # Set V(R): not executed in Lockout
            self.farm_b_counter += 1
            if state in (S1, S2):
                assert command is not None
                self.retransmit = False
                self.wait = False
                self.vr = command.vr
                state = S1
        elif event is FarmEvent.E10:  # buffer release
            if state in (S2, S3):
                self.wait = False
            if state is S2:
                state = S1
        # E4 and E9: discard in every state
        self.state = state
        self.stats[event.name] += 1
        if accepted is not None:
            self.stats["accepted"] += 1
        elif event in (FarmEvent.E7, FarmEvent.E8):
            self.stats["control_commands"] += 1
        elif event is not FarmEvent.E10:
            self.stats["discarded"] += 1
        return FarmResult(event, old, state, accepted)
