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

The table is :data:`TABLE` below, one row per event and one cell per state, each
cell naming its steps (the actions of 232.1-B-2 §6.2, methods of :class:`Farm`) and
the next state, as FOP-1's is. A FARM-1 can be built with another table (the
``table`` argument), so that a test can make one that breaks one rule on purpose.

Reading of the standard, where it leaves room: the Lockout flag is set only on the
way into S3 and cleared only on the way out, so it is set exactly in S3, and the
Wait flag is never set in S1; the cells that leave S1 or S2 clear only the flags
the standard names for them.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
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


# -- the state table ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: the steps (methods of :class:`Farm`, ``name`` or ``name:argument``),
    the next state (None: stay) and the kind of outcome, which names the counter of
    :attr:`Farm.stats` it adds to: "accept" (the frame goes to the buffer, counted
    ``accepted``), "discard" (``discarded``), "command" (a control command, executed
    or not, ``control_commands``), "signal" (the buffer release: no frame, no
    counter) and "n/a" (cannot occur in this state; a frame that reached it anyway
    would be discarded and counted so)."""

    steps: tuple[str, ...] = ()
    to: FarmState | None = None
    kind: str = "discard"


Row = tuple[Cell, Cell, Cell]

S1, S2, S3 = FarmState

DISCARD = Cell()
NA = Cell(kind="n/a")


def _every(cell: Cell) -> Row:
    return (cell, cell, cell)


def _discard(*steps: str, to: FarmState | None = None) -> Cell:
    return Cell(tuple(steps), to)


def _command(*steps: str, to: FarmState | None = None) -> Cell:
    return Cell(("count_farm_b", *steps), to, "command")


_E = FarmEvent
_LOCK = _discard("set:lockout", to=S3)

# One row per event, one cell per state S1..S3 (232.1-B-2 table 6-1).
TABLE: dict[FarmEvent, Row] = {
    # Type-AD frames, by where N(S) falls against V(R)
    _E.E1: (Cell(("accept", "advance_vr", "clear:retransmit"), kind="accept"), NA, DISCARD),
    _E.E2: (_discard("set:retransmit", "set:wait", to=S2), DISCARD, DISCARD),
    _E.E3: (_discard("set:retransmit"), DISCARD, DISCARD),
    _E.E4: _every(DISCARD),
    _E.E5: (_LOCK, _LOCK, DISCARD),
    # Type-BD frames bypass the checks and the flow control
    _E.E6: _every(Cell(("accept", "count_farm_b"), kind="accept")),
    # Type-BC frames: the control commands
    _E.E7: (
        _command("clear:retransmit", to=S1),
        _command("clear:retransmit", "clear:wait", to=S1),
        _command("clear:retransmit", "clear:wait", "clear:lockout", to=S1),
    ),
    _E.E8: (
        _command("clear:retransmit", "set_vr", to=S1),
        _command("clear:retransmit", "clear:wait", "set_vr", to=S1),
        _command(),  # not executed in Lockout, but counted by FARM-B
    ),
    _E.E9: _every(DISCARD),
    # the higher procedures free buffer space
    _E.E10: (
        Cell(kind="signal"),
        Cell(("clear:wait",), S1, "signal"),
        Cell(("clear:wait",), kind="signal"),
    ),
}

_COUNTERS = {
    "accept": "accepted",
    "discard": "discarded",
    "n/a": "discarded",
    "command": "control_commands",
    "signal": None,
}
# the steps a cell can name; "set" and "clear" take one of the flags the CLCW reports
_STEPS = frozenset({"accept", "advance_vr", "set_vr", "count_farm_b", "set", "clear"})
_FLAGS = ("retransmit", "wait", "lockout")


@dataclass(slots=True)
class _Input:
    """What one event brings: the frame (None for a failed one or the release
    signal) and, for E8, the Set V(R) command; ``accepted`` is set by the step that
    buffers the frame."""

    frame: TcFrame | None
    command: SetVr | None
    accepted: TcFrame | None = None


_Step = Callable[["_Input", str], None]


_Plan = dict[tuple[FarmEvent, FarmState], tuple[tuple[str, str], ...]]
_SHIPPED_PLAN: list[_Plan] = []  # TABLE's, checked once: a FARM-1 per satellite of thousands


def _plan(table: Mapping[FarmEvent, Row]) -> _Plan:
    """Each cell's steps as (method name, argument), which also checks the table."""
    if table is TABLE and _SHIPPED_PLAN:
        return _SHIPPED_PLAN[0]
    plan: _Plan = {}
    for event in FarmEvent:
        row = table.get(event)
        if row is None or len(row) != len(FarmState):
            raise ConfigError("farm", "table", f"needs a row of 3 cells for {event.name}")
        for state, cell in zip(FarmState, row, strict=True):
            if cell.kind not in _COUNTERS:
                raise ConfigError("farm", "table", f"{event.name}/S{state}: kind {cell.kind!r}")
            steps = []
            for step in cell.steps:
                name, _, argument = step.partition(":")
                takes_flag = name in ("set", "clear")
                bad_argument = argument not in _FLAGS if takes_flag else argument != ""
                if name not in _STEPS or bad_argument:
                    raise ConfigError("farm", "table", f"{event.name}/S{state}: step {step!r}")
                steps.append(("_" + name, argument))
            plan[event, state] = tuple(steps)
    if table is TABLE:
        _SHIPPED_PLAN.append(plan)
    return plan


class Farm:
    """FARM-1 for one virtual channel (see the module docstring). ``table`` replaces
    :data:`TABLE` (the same shape: a row of three cells for every event)."""

    def __init__(
        self,
        vcid: int,
        window_width: int = 64,
        buffer_frames: int | None = None,
        status: int = 0,
        table: Mapping[FarmEvent, Row] | None = None,
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
        self.table = TABLE if table is None else table
        self._steps = self._bind(self.table)

    def _bind(
        self, table: Mapping[FarmEvent, Row]
    ) -> dict[tuple[FarmEvent, FarmState], tuple[tuple[_Step, str], ...]]:
        """Each cell's steps as bound methods (the table checked once, see _plan)."""
        return {
            cell: tuple((getattr(self, name), argument) for name, argument in steps)
            for cell, steps in _plan(table).items()
        }

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
        return self._apply(FarmEvent.E10, _Input(None, None))

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
        return self._apply(event, _Input(frame, command))

    # -- the machine ------------------------------------------------------------------------
    def _apply(self, event: FarmEvent, inp: _Input) -> FarmResult:
        old = self.state
        cell = self.table[event][old - 1]
        for method, argument in self._steps[event, old]:
            method(inp, argument)
        new = self.state = cell.to or old
        self.stats[event.name] += 1
        counter = _COUNTERS[cell.kind]
        if counter is not None:
            self.stats[counter] += 1
        return FarmResult(event, old, new, inp.accepted)

    # -- actions of 232.1-B-2 §6.2, the steps of the table ------------------------------
    def _accept(self, inp: _Input, _: str) -> None:
        frame = inp.frame
        assert frame is not None
        self.buffer.append(frame)
        if frame.frame_type is TcFrameType.AD:
            self._ad_buffered += 1
        inp.accepted = frame

    def _advance_vr(self, inp: _Input, _: str) -> None:
        self.vr = (self.vr + 1) % 256

    def _set_vr(self, inp: _Input, _: str) -> None:
        assert inp.command is not None
        self.vr = inp.command.vr

    def _count_farm_b(self, inp: _Input, _: str) -> None:
        self.farm_b_counter += 1

    def _set(self, inp: _Input, flag: str) -> None:
        setattr(self, flag, True)

    def _clear(self, inp: _Input, flag: str) -> None:
        setattr(self, flag, False)
