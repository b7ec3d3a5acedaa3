"""FOP-1, the sending end of COP-1 (CCSDS 232.1-B-2 §5), sans-I/O.

One :class:`Fop` drives one TC virtual channel. Every input is a method call with
the time as a parameter, and every call returns the list of actions the runtime
must carry out, in order (h11 style): frames to hand to the lower procedures
(:class:`Transmit`), the timer (:class:`StartTimer`, :class:`CancelTimer`),
responses to the higher procedures (:class:`TransferResponse`,
:class:`DirectiveResponse`), :class:`Alert` and :class:`Suspend` indications,
and one :class:`Transition` per event that says which cell of the state table
was applied. Nothing here reads a clock, sleeps or does I/O.

The inputs and the events of the FOP-1 state table (232.1-B-2 table 5-1, with
E101..E104 of its Technical Corrigendum 1) they map to:

- :meth:`Fop.clcw` — a CLCW arrives: E1..E14 and E101..E103 by the Lockout,
  Retransmit and Wait flags, the relation of N(R) to V(S) and NN(R), and the
  transmission count against the limit; E15 for an invalid CLCW;
- :meth:`Fop.timer_expired` — T1 expires: E16/E104 (count below the limit,
  timeout type 0/1), E17/E18 (limit reached, timeout type 0/1);
- :meth:`Fop.request_ad` — request to transfer an FDU: E19/E20 (Wait Queue
  empty / full); :meth:`Fop.request_bd` — a Type-BD frame: E21/E22;
- :meth:`Fop.directive` — the management directives: E23..E28 (the four ways
  to initiate the AD service, with BC_Out ready or not), E29 terminate, E30..E34
  resume by the suspend state, E35 set V(S), E36..E39 set the sliding window
  width K, T1, the transmission limit, the timeout type, E40 invalid directive;
- :meth:`Fop.transmit_accepted` / :meth:`Fop.transmit_rejected` — the lower
  procedures' answer to a transmit request: E41..E46 (AD, BC, BD).

States: S1 Active, S2 Retransmit without wait, S3 Retransmit with wait,
S4 Initialising without BC frame, S5 Initialising with BC frame, S6 Initial.
The table is :data:`TABLE` below, one row per event and one cell per state.

Reading of the standard, where it leaves room:

- NN(R) is "the N(S) of the oldest unacknowledged frame on the Sent Queue";
  when the Sent Queue is purged it is set to V(S), so that NN(R) = V(S) holds
  whenever the queue holds no Type-AD frame. In S4 and S5 the queue never holds
  one, hence the CLCW events that need NN(R) <= N(R) < V(S) or N(R) != NN(R)
  (E2, E5..E12, E101..E103) cannot occur there: those cells are "n/a".
- Suspending the AD service also cancels T1 (the timer has nothing to time
  while suspended); Resume restarts it (5.2.17).
- The request to abort transmissions in the lower procedures that starts an
  AD/BC retransmission (5.2.7 a) is not an action here: the runtime hands the
  lower procedures one frame at a time, so there is nothing queued to abort.
- A directive, request or timer expiry that the table says to reject is answered
  with a REJECT response whose ``reason`` says why; nothing is silently dropped.
  A timer expiry that does not match the running timer (a cancelled or
  restarted one reaching the runtime late) is stale and ignored (counted).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum

from linkstack.ccsds.cop1.clcw import COP_1, Clcw, is_clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock, seq_distance
from linkstack.ccsds.tc import MAX_SCID, MAX_VCID, TcFrame, TcFrameType
from linkstack.errors import ConfigError, DecodeError, EncodeError, check_range


class FopState(IntEnum):
    ACTIVE = 1  # S1
    RETRANSMIT_WITHOUT_WAIT = 2  # S2
    RETRANSMIT_WITH_WAIT = 3  # S3
    INITIALISING_WITHOUT_BC = 4  # S4
    INITIALISING_WITH_BC = 5  # S5
    INITIAL = 6  # S6


class FopEvent(Enum):
    """The events of the FOP-1 state table (232.1-B-2 table 5-1 and Cor. 1)."""

    E1 = "CLCW: Lockout 0, N(R) = V(S), Retransmit 0, Wait 0, N(R) = NN(R)"
    E2 = "CLCW: Lockout 0, N(R) = V(S), Retransmit 0, Wait 0, N(R) != NN(R)"
    E3 = "CLCW: Lockout 0, N(R) = V(S), Retransmit 0, Wait 1"
    E4 = "CLCW: Lockout 0, N(R) = V(S), Retransmit 1"
    E5 = "CLCW: Lockout 0, NN(R) <= N(R) < V(S), Retransmit 0, Wait 0, N(R) = NN(R)"
    E6 = "CLCW: Lockout 0, NN(R) <= N(R) < V(S), Retransmit 0, Wait 0, N(R) != NN(R)"
    E7 = "CLCW: Lockout 0, NN(R) <= N(R) < V(S), Retransmit 0, Wait 1"
    E101 = "CLCW: Lockout 0, N(R) < V(S), Retransmit 1, Transmission_Limit 1, N(R) != NN(R)"
    E102 = "CLCW: Lockout 0, N(R) < V(S), Retransmit 1, Transmission_Limit 1, N(R) = NN(R)"
    E8 = "CLCW: Lockout 0, N(R) < V(S), Retransmit 1, limit > 1, N(R) != NN(R), Wait 0"
    E9 = "CLCW: Lockout 0, N(R) < V(S), Retransmit 1, limit > 1, N(R) != NN(R), Wait 1"
    E10 = "CLCW: Retransmit 1, N(R) = NN(R), count < limit, Wait 0"
    E11 = "CLCW: Retransmit 1, N(R) = NN(R), count < limit, Wait 1"
    E12 = "CLCW: Retransmit 1, N(R) = NN(R), count >= limit, Wait 0"
    E103 = "CLCW: Retransmit 1, N(R) = NN(R), count >= limit, Wait 1"
    E13 = "CLCW: Lockout 0, N(R) outside NN(R)..V(S) (invalid N(R))"
    E14 = "CLCW: Lockout 1"
    E15 = "invalid CLCW"
    E16 = "T1 expired, count < limit, timeout type 0"
    E104 = "T1 expired, count < limit, timeout type 1"
    E17 = "T1 expired, count >= limit, timeout type 0"
    E18 = "T1 expired, count >= limit, timeout type 1"
    E19 = "request to transfer FDU, Wait Queue empty"
    E20 = "request to transfer FDU, Wait Queue full"
    E21 = "request to transfer BD frame, BD_Out ready"
    E22 = "request to transfer BD frame, BD_Out not ready"
    E23 = "directive: initiate AD service without CLCW check"
    E24 = "directive: initiate AD service with CLCW check"
    E25 = "directive: initiate AD service with Unlock, BC_Out ready"
    E26 = "directive: initiate AD service with Unlock, BC_Out not ready"
    E27 = "directive: initiate AD service with Set V(R), BC_Out ready"
    E28 = "directive: initiate AD service with Set V(R), BC_Out not ready"
    E29 = "directive: terminate AD service"
    E30 = "directive: resume AD service, SS = 0"
    E31 = "directive: resume AD service, SS = 1"
    E32 = "directive: resume AD service, SS = 2"
    E33 = "directive: resume AD service, SS = 3"
    E34 = "directive: resume AD service, SS = 4"
    E35 = "directive: set V(S)"
    E36 = "directive: set FOP sliding window width"
    E37 = "directive: set T1 initial"
    E38 = "directive: set transmission limit"
    E39 = "directive: set timeout type"
    E40 = "invalid directive"
    E41 = "AD_Accept from the lower procedures"
    E42 = "AD_Reject from the lower procedures"
    E43 = "BC_Accept from the lower procedures"
    E44 = "BC_Reject from the lower procedures"
    E45 = "BD_Accept from the lower procedures"
    E46 = "BD_Reject from the lower procedures"


class Directive(Enum):
    INITIATE_AD_WITHOUT_CLCW = "initiate AD service without CLCW check"
    INITIATE_AD_WITH_CLCW = "initiate AD service with CLCW check"
    INITIATE_AD_WITH_UNLOCK = "initiate AD service with Unlock"
    INITIATE_AD_WITH_SET_VR = "initiate AD service with Set V(R)"
    TERMINATE_AD = "terminate AD service"
    RESUME_AD = "resume AD service"
    SET_VS = "set V(S)"
    SET_SLIDING_WINDOW = "set FOP sliding window width"
    SET_T1_INITIAL = "set T1 initial"
    SET_TRANSMISSION_LIMIT = "set transmission limit"
    SET_TIMEOUT_TYPE = "set timeout type"


class AlertCode(Enum):
    LIMIT = "ALRT_LIMIT: the transmission limit was reached"
    T1 = "ALRT_T1: T1 expired with the transmission limit reached"
    LOCKOUT = "ALRT_LOCKOUT: FARM-1 reports Lockout"
    SYNCH = "ALRT_SYNCH: the CLCW contradicts the retransmission state"
    CLCW = "ALRT_CLCW: invalid CLCW"
    NNR = "ALRT_NNR: N(R) is not between NN(R) and V(S)"
    LLIF = "ALRT_LLIF: the lower procedures rejected a frame"
    TERM = "ALRT_TERM: terminate AD service directive"


class Response(Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    POSITIVE_CONFIRM = "positive confirm"
    NEGATIVE_CONFIRM = "negative confirm"


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """Transmit request for a frame to the lower procedures. Answer it with
    :meth:`Fop.transmit_accepted` or :meth:`Fop.transmit_rejected`. ``tag`` is the tag
    the FDU or BD frame was requested with (None for a BC frame), so the runtime knows
    what the frame holds without keeping a table of its own."""

    frame: TcFrame
    retransmission: bool = False
    tag: object = None


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)start T1: call :meth:`Fop.timer_expired` at ``expiry_t_s``."""

    expiry_t_s: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    pass


@dataclass(frozen=True, slots=True)
class TransferResponse:
    """About a request to transfer an FDU (AD) or a BD frame, identified by ``tag``.
    ACCEPT: FOP-1 took it for transmission; REJECT: it did not (``reason``);
    POSITIVE_CONFIRM: FARM-1 acknowledged it (AD) or the lower procedures sent it
    (BD); NEGATIVE_CONFIRM: it was purged before either."""

    response: Response
    tag: object
    frame_type: TcFrameType
    seq: int | None = None  # N(S) of the Type-AD frame, once it has one
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DirectiveResponse:
    response: Response
    directive: Directive | object
    tag: object
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    code: AlertCode
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Suspend:
    """The AD service is suspended; resuming returns to S<suspend_state>."""

    suspend_state: int


@dataclass(frozen=True, slots=True)
class Transition:
    """The cell of the state table applied for one event."""

    event: FopEvent
    old_state: FopState
    new_state: FopState
    kind: str  # "do", "ignore", "reject" or "n/a"


Action = (
    Transmit
    | StartTimer
    | CancelTimer
    | TransferResponse
    | DirectiveResponse
    | Alert
    | Suspend
    | Transition
)


# -- the state table ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: the actions (steps of :class:`Fop`, ``name`` or ``name:argument``)
    and the next state (None: stay)."""

    steps: tuple[str, ...] = ()
    to: FopState | None = None
    kind: str = "do"


S1, S2, S3, S4, S5, S6 = FopState

IGNORE = Cell(kind="ignore")
NA = Cell(kind="n/a")  # the event cannot occur in this state
REJECT = Cell(("reject",), kind="reject")


def _do(*steps: str, to: FopState | None = None) -> Cell:
    return Cell(tuple(steps), to)


def _alert(code: str) -> Cell:
    return Cell((f"alert:{code}",), S6)


_ACK_ALL = _do("remove_acked", "cancel_timer", "look_for_fdu", to=S1)
_ACK_SOME = _do("remove_acked", "look_for_fdu", to=S1)
_ACK_RETRANSMIT = _do("remove_acked", "initiate_ad_retransmission", "look_for_fdu", to=S2)
_RETRANSMIT = _do("initiate_ad_retransmission", "look_for_fdu")
_BC_RETRANSMIT = _do("initiate_bc_retransmission", "look_for_directive")
_QUEUE_AND_LOOK = _do("add_to_wait_queue", "look_for_fdu")
_ONLY_IN_S6 = (REJECT, REJECT, REJECT, REJECT, REJECT)


def _in_s6(cell: Cell) -> tuple[Cell, ...]:
    return (*_ONLY_IN_S6, cell)


def _every(cell: Cell) -> tuple[Cell, ...]:
    return (cell,) * 6


def _setter(step: str) -> tuple[Cell, ...]:
    return _every(_do("accept_directive", step, "confirm_directive"))


def _resume(to: FopState) -> tuple[Cell, ...]:
    return _in_s6(_do("accept_directive", "resume", "confirm_directive", to=to))


_E = FopEvent
_TERMINATE = _do("accept_directive", "alert:TERM", "confirm_directive", to=S6)

# One row per event, one cell per state S1..S6 (232.1-B-2 table 5-1).
TABLE: dict[FopEvent, tuple[Cell, ...]] = {
    # CLCW: all outstanding frames acknowledged (N(R) = V(S))
    _E.E1: (
        IGNORE,
        _alert("SYNCH"),
        _alert("SYNCH"),
        _do("confirm_pending", "cancel_timer", to=S1),
        _do("release_bc", "cancel_timer", "confirm_pending", to=S1),
        IGNORE,
    ),
    _E.E2: (_ACK_ALL, _ACK_ALL, _ACK_ALL, NA, NA, IGNORE),
    _E.E3: (*(_alert("CLCW"),) * 5, IGNORE),
    _E.E4: (*(_alert("SYNCH"),) * 4, IGNORE, IGNORE),
    # CLCW: some frames outstanding (NN(R) <= N(R) < V(S)), no retransmission asked
    _E.E5: (IGNORE, _alert("SYNCH"), _alert("SYNCH"), NA, NA, IGNORE),
    _E.E6: (_ACK_SOME, _ACK_SOME, _ACK_SOME, NA, NA, IGNORE),
    _E.E7: (*(_alert("CLCW"),) * 3, NA, NA, IGNORE),
    # CLCW: retransmission asked
    _E.E101: (*(_do("remove_acked", "alert:LIMIT", to=S6),) * 3, NA, NA, IGNORE),
    _E.E102: (*(_alert("LIMIT"),) * 3, NA, NA, IGNORE),
    _E.E8: (_ACK_RETRANSMIT, _ACK_RETRANSMIT, _ACK_RETRANSMIT, NA, NA, IGNORE),
    _E.E9: (*(_do("remove_acked", to=S3),) * 3, NA, NA, IGNORE),
    _E.E10: (
        _do(*_RETRANSMIT.steps, to=S2),
        IGNORE,
        _do(*_RETRANSMIT.steps, to=S2),
        NA,
        NA,
        IGNORE,
    ),
    _E.E11: (_do(to=S3), _do(to=S3), IGNORE, NA, NA, IGNORE),
    _E.E12: (_do(to=S2), IGNORE, _do(to=S2), NA, NA, IGNORE),
    _E.E103: (_do(to=S3), _do(to=S3), IGNORE, NA, NA, IGNORE),
    # CLCW: invalid N(R), lockout, invalid CLCW
    _E.E13: (*(_alert("NNR"),) * 4, IGNORE, IGNORE),
    _E.E14: (*(_alert("LOCKOUT"),) * 4, IGNORE, IGNORE),
    _E.E15: (*(_alert("CLCW"),) * 5, IGNORE),
    # T1 expiry (the timer does not run in S6)
    _E.E16: (_RETRANSMIT, _RETRANSMIT, IGNORE, _alert("T1"), _BC_RETRANSMIT, NA),
    _E.E104: (_RETRANSMIT, _RETRANSMIT, IGNORE, _do("suspend", to=S6), _BC_RETRANSMIT, NA),
    _E.E17: (*(_alert("T1"),) * 5, NA),
    _E.E18: (*(_do("suspend", to=S6),) * 4, _alert("T1"), NA),
    # requests from the higher procedures
    _E.E19: (_QUEUE_AND_LOOK, _QUEUE_AND_LOOK, _do("add_to_wait_queue"), REJECT, REJECT, REJECT),
    _E.E20: _every(REJECT),
    _E.E21: _every(_do("accept_request", "transmit_bd")),
    _E.E22: _every(REJECT),
    # directives
    _E.E23: _in_s6(_do("accept_directive", "initialise", "confirm_directive", to=S1)),
    _E.E24: _in_s6(_do("accept_directive", "initialise", "hold_directive", "restart_timer", to=S4)),
    _E.E25: _in_s6(
        _do("accept_directive", "initialise", "hold_directive", "transmit_bc_unlock", to=S5)
    ),
    _E.E26: _every(REJECT),
    _E.E27: _in_s6(
        _do(
            "accept_directive",
            "initialise",
            "prepare_set_vr",
            "hold_directive",
            "transmit_bc_set_vr",
            to=S5,
        )
    ),
    _E.E28: _every(REJECT),
    _E.E29: (*(_TERMINATE,) * 5, _do("accept_directive", "confirm_directive")),
    _E.E30: _every(REJECT),
    _E.E31: _resume(S1),
    _E.E32: _resume(S2),
    _E.E33: _resume(S3),
    _E.E34: _resume(S4),
    _E.E35: _in_s6(_do("set_vs")),
    _E.E36: _setter("set_window"),
    _E.E37: _setter("set_t1"),
    _E.E38: _setter("set_limit"),
    _E.E39: _setter("set_timeout_type"),
    _E.E40: _every(REJECT),
    # the lower procedures' responses
    _E.E41: (*(_do("ad_out_ready", "look_for_fdu"),) * 2, *(_do("ad_out_ready"),) * 4),
    _E.E42: _every(_alert("LLIF")),
    _E.E43: (
        *(_do("bc_out_ready"),) * 4,
        _do("bc_out_ready", "look_for_directive"),
        _do("bc_out_ready"),
    ),
    _E.E44: _every(_alert("LLIF")),
    _E.E45: _every(_do("bd_out_ready", "confirm_bd")),
    _E.E46: _every(_do("negative_confirm_bd", "alert:LLIF", to=S6)),
}

# Why a request or directive is refused, when it is not "not allowed in this state".
_REASONS = {
    _E.E20: "the Wait Queue already holds an FDU: wait for its Accept response",
    _E.E22: "BD_Out not ready: the previous BD frame is still with the lower procedures",
    _E.E26: "BC_Out not ready: a BC frame is still with the lower procedures",
    _E.E28: "BC_Out not ready: a BC frame is still with the lower procedures",
    _E.E30: "the AD service is not suspended (SS = 0): nothing to resume",
}

_DIRECTIVE_EVENTS = {
    Directive.INITIATE_AD_WITHOUT_CLCW: _E.E23,
    Directive.INITIATE_AD_WITH_CLCW: _E.E24,
    Directive.TERMINATE_AD: _E.E29,
    Directive.SET_VS: _E.E35,
    Directive.SET_SLIDING_WINDOW: _E.E36,
    Directive.SET_T1_INITIAL: _E.E37,
    Directive.SET_TRANSMISSION_LIMIT: _E.E38,
    Directive.SET_TIMEOUT_TYPE: _E.E39,
}
_RESUME_EVENTS = (_E.E30, _E.E31, _E.E32, _E.E33, _E.E34)


@dataclass(frozen=True, slots=True)
class FopConfig:
    """Managed parameters of FOP-1 for one virtual channel (the directives E36..E39
    change the last four while it runs)."""

    scid: int = 0
    vcid: int = 0
    window_width: int = 16  # K, FOP_Sliding_Window_Width: at most FARM-1's PW
    t1_initial_s: float = 2.0
    transmission_limit: int = 16
    timeout_type: int = 1  # 0: alert when the limit is reached, 1: suspend

    def __post_init__(self) -> None:
        check_range("fop", "scid", self.scid, 0, MAX_SCID)
        check_range("fop", "vcid", self.vcid, 0, MAX_VCID)
        for name in ("window_width", "t1_initial_s", "transmission_limit", "timeout_type"):
            reason = _parameter_error(name, getattr(self, name))
            if reason:
                raise ConfigError("fop", name, reason)


def _parameter_error(name: str, value: object) -> str:
    """Why ``value`` cannot be the parameter ``name`` ("" when it can)."""
    integer = value if isinstance(value, int) and not isinstance(value, bool) else None
    if name in ("window_width", "vs", "vr"):
        lo = 1 if name == "window_width" else 0
        if integer is None or not lo <= integer <= 255:
            return f"must be an integer in {lo}..255, got {value!r}"
    elif name == "transmission_limit":
        if integer is None or integer < 1:
            return f"must be an integer >= 1, got {value!r}"
    elif name == "timeout_type":
        if value not in (0, 1) or isinstance(value, bool):
            return f"must be 0 or 1, got {value!r}"
    elif name == "t1_initial_s" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf)
    ):
        return f"must be a positive number of seconds, got {value!r}"
    return ""


_DIRECTIVE_PARAMETER = {
    Directive.INITIATE_AD_WITH_SET_VR: "vr",
    Directive.SET_VS: "vs",
    Directive.SET_SLIDING_WINDOW: "window_width",
    Directive.SET_T1_INITIAL: "t1_initial_s",
    Directive.SET_TRANSMISSION_LIMIT: "transmission_limit",
    Directive.SET_TIMEOUT_TYPE: "timeout_type",
}


@dataclass(slots=True)
class _SentFrame:
    frame: TcFrame
    tag: object
    to_be_retransmitted: bool = False


@dataclass(slots=True)
class _Input:
    """What one event brings, and the actions it produces."""

    t_s: float
    out: list[Action] = field(default_factory=list)
    event: FopEvent | None = None
    clcw: Clcw | None = None
    frame: TcFrame | None = None
    tag: object = None
    directive: Directive | object = None
    value: object = None
    reason: str = ""


class Fop:
    """FOP-1 for one virtual channel (see the module docstring)."""

    def __init__(self, config: FopConfig | None = None) -> None:
        cfg = self.config = config or FopConfig()
        self.state = FopState.INITIAL
        self.vs = 0  # V(S): N(S) of the next new Type-AD frame
        self.nnr = 0  # NN(R): N(S) of the oldest unacknowledged frame
        self.window_width = cfg.window_width  # K
        self.t1_initial_s = float(cfg.t1_initial_s)
        self.transmission_limit = cfg.transmission_limit
        self.timeout_type = cfg.timeout_type
        self.transmission_count = 1
        self.suspend_state = 0  # SS
        self.ad_out_ready = True
        self.bc_out_ready = True
        self.bd_out_ready = True
        self.timer_expiry_t_s: float | None = None
        self._sent: deque[_SentFrame] = deque()
        self._wait: tuple[TcFrame, object] | None = None
        self._pending: tuple[Directive, object] | None = None  # Initiate AD awaiting confirm
        self._bd_tag: object = None
        self.stats: Counter[str] = Counter()

    # -- what the runtime and the tests can read -------------------------------------------
    @property
    def sent_queue(self) -> tuple[TcFrame, ...]:
        return tuple(s.frame for s in self._sent)

    @property
    def wait_queue(self) -> TcFrame | None:
        return None if self._wait is None else self._wait[0]

    @property
    def outstanding(self) -> int:
        """Type-AD frames sent and not yet acknowledged: V(S) - NN(R)."""
        return seq_distance(self.vs, self.nnr)

    # -- inputs ----------------------------------------------------------------------------------
    def clcw(self, clcw: Clcw | bytes | bytearray | memoryview, t_s: float) -> list[Action]:
        """A CLCW arrives (a :class:`Clcw`, or the 4 octets of an OCF). An OCF that is
        not a CLCW, or a CLCW about another virtual channel, is not for this FOP-1
        (no event; counted); one that breaks the CLCW rules is E15."""
        if not isinstance(clcw, Clcw):
            raw = bytes(clcw)
            if len(raw) == 4 and not is_clcw(raw):
                self.stats["not_a_clcw"] += 1
                return []
            if len(raw) == 4 and raw[1] >> 2 != self.config.vcid:
                self.stats["clcw_other_vc"] += 1  # even a broken one: not this FOP-1's
                return []
            try:
                clcw = Clcw.unpack(raw)
            except DecodeError as exc:
                return self._apply(_E.E15, _Input(t_s, reason=str(exc)))
        if clcw.vcid != self.config.vcid:
            self.stats["clcw_other_vc"] += 1
            return []
        if clcw.cop_in_effect != COP_1:
            reason = f"COP in effect is {clcw.cop_in_effect:02b}, not COP-1"
            return self._apply(_E.E15, _Input(t_s, reason=reason))
        return self._apply(self.classify_clcw(clcw), _Input(t_s, clcw=clcw))

    def classify_clcw(self, clcw: Clcw) -> FopEvent:
        """The event a valid COP-1 CLCW for this channel is, given V(S), NN(R) and the
        transmission count and limit now."""
        nr, vs, nnr = clcw.report_value, self.vs, self.nnr
        if clcw.lockout:
            return _E.E14
        if seq_distance(nr, nnr) > seq_distance(vs, nnr):  # outside NN(R)..V(S): invalid N(R)
            return _E.E13
        if nr == vs:
            if clcw.retransmit:
                return _E.E4
            if clcw.wait:
                return _E.E3
            return _E.E1 if nr == nnr else _E.E2
        if not clcw.retransmit:
            if clcw.wait:
                return _E.E7
            return _E.E5 if nr == nnr else _E.E6
        if self.transmission_limit == 1:
            return _E.E102 if nr == nnr else _E.E101
        if nr != nnr:
            return _E.E9 if clcw.wait else _E.E8
        if self.transmission_count < self.transmission_limit:
            return _E.E11 if clcw.wait else _E.E10
        return _E.E103 if clcw.wait else _E.E12

    def timer_expired(self, t_s: float) -> list[Action]:
        """T1 expired: ``t_s`` is the expiry the runtime was asked to arm (or later)."""
        expiry = self.timer_expiry_t_s
        if expiry is None or t_s < expiry - 1e-9:
            self.stats["timer_stale"] += 1
            return []
        self.timer_expiry_t_s = None
        limit_reached = self.transmission_count >= self.transmission_limit
        if self.timeout_type == 0:
            event = _E.E17 if limit_reached else _E.E16
        else:
            event = _E.E18 if limit_reached else _E.E104
        return self._apply(event, _Input(t_s))

    def request_ad(self, fdu: TcFrame, t_s: float, tag: object = None) -> list[Action]:
        """Request to transfer an FDU: a Type-AD frame of this virtual channel whose
        N(S) FOP-1 assigns. The response comes as a :class:`TransferResponse`."""
        self._check_frame(fdu, TcFrameType.AD)
        event = _E.E19 if self._wait is None else _E.E20
        return self._apply(event, _Input(t_s, frame=fdu, tag=tag))

    def request_bd(self, frame: TcFrame, t_s: float, tag: object = None) -> list[Action]:
        """Request to transfer a Type-BD frame (it bypasses FARM-1's checks)."""
        self._check_frame(frame, TcFrameType.BD)
        event = _E.E21 if self.bd_out_ready else _E.E22
        return self._apply(event, _Input(t_s, frame=frame, tag=tag))

    def directive(
        self, directive: Directive, t_s: float, value: object = None, tag: object = None
    ) -> list[Action]:
        """A management directive; ``value`` is its parameter where it has one
        (V*(R), V*(S), K, T1 in seconds, the limit, the timeout type)."""
        inp = _Input(t_s, directive=directive, value=value, tag=tag)
        if not isinstance(directive, Directive):
            inp.reason = f"unknown directive {directive!r}"
            return self._apply(_E.E40, inp)
        parameter = _DIRECTIVE_PARAMETER.get(directive)
        if parameter is not None:
            error = _parameter_error(parameter, value)
            if error:
                inp.reason = f"{directive.value}: {parameter} {error}"
                return self._apply(_E.E40, inp)
        if directive is Directive.INITIATE_AD_WITH_UNLOCK:
            event = _E.E25 if self.bc_out_ready else _E.E26
        elif directive is Directive.INITIATE_AD_WITH_SET_VR:
            event = _E.E27 if self.bc_out_ready else _E.E28
        elif directive is Directive.RESUME_AD:
            event = _RESUME_EVENTS[self.suspend_state]
        else:
            event = _DIRECTIVE_EVENTS[directive]
        return self._apply(event, inp)

    def transmit_accepted(self, frame_type: TcFrameType, t_s: float) -> list[Action]:
        """The lower procedures took the frame of the last transmit request of this type."""
        event = {TcFrameType.AD: _E.E41, TcFrameType.BC: _E.E43, TcFrameType.BD: _E.E45}
        return self._apply(event[frame_type], _Input(t_s))

    def transmit_rejected(self, frame_type: TcFrameType, t_s: float) -> list[Action]:
        """The lower procedures refused the frame of the last transmit request of this type."""
        event = {TcFrameType.AD: _E.E42, TcFrameType.BC: _E.E44, TcFrameType.BD: _E.E46}
        return self._apply(event[frame_type], _Input(t_s))

    # -- the machine -------------------------------------------------------------------------
    def _check_frame(self, frame: TcFrame, kind: TcFrameType) -> None:
        cfg = self.config
        if not isinstance(frame, TcFrame) or frame.frame_type is not kind:
            raise EncodeError("fop", "frame_type", f"expected a Type-{kind.name} TcFrame")
        if (frame.scid, frame.vcid) != (cfg.scid, cfg.vcid):
            raise EncodeError(
                "fop",
                "vcid",
                f"frame of SCID {frame.scid} VC {frame.vcid} handed to the FOP-1 of "
                f"SCID {cfg.scid} VC {cfg.vcid}",
            )

    def _apply(self, event: FopEvent, inp: _Input) -> list[Action]:
        old = self.state
        cell = TABLE[event][old - 1]
        new = cell.to or old
        inp.event = event
        inp.out.append(Transition(event, old, new, cell.kind))
        self.stats[event.name] += 1
        if cell.kind == "n/a":
            self.stats["not_applicable"] += 1
        for step in cell.steps:
            name, _, argument = step.partition(":")
            getattr(self, "_" + name)(inp, argument)
        self.state = new
        return inp.out

    # -- actions of 232.1-B-2 §5.2, the steps of the table ----------------------------------
    def _reject(self, inp: _Input, _: str) -> None:
        assert inp.event is not None
        reason = inp.reason or _REASONS.get(inp.event) or self._not_allowed(inp.event)
        self.stats["rejected"] += 1
        if inp.directive is not None:
            inp.out.append(DirectiveResponse(Response.REJECT, inp.directive, inp.tag, reason))
        else:
            assert inp.frame is not None
            kind = inp.frame.frame_type
            inp.out.append(TransferResponse(Response.REJECT, inp.tag, kind, None, reason))

    def _not_allowed(self, event: FopEvent) -> str:
        allowed = [f"S{i + 1}" for i, c in enumerate(TABLE[event]) if c.kind != "reject"]
        where = ", ".join(allowed) if allowed else "no state"
        return (
            f"{event.value} is not allowed in state S{self.state.value} "
            f"({self.state.name.lower().replace('_', ' ')}); allowed in {where}"
        )

    def _accept_directive(self, inp: _Input, _: str) -> None:
        inp.out.append(DirectiveResponse(Response.ACCEPT, inp.directive, inp.tag))

    def _confirm_directive(self, inp: _Input, _: str) -> None:
        inp.out.append(DirectiveResponse(Response.POSITIVE_CONFIRM, inp.directive, inp.tag))

    def _hold_directive(self, inp: _Input, _: str) -> None:
        assert isinstance(inp.directive, Directive)
        self._pending = (inp.directive, inp.tag)

    def _confirm_pending(self, inp: _Input, _: str) -> None:
        if self._pending is not None:
            directive, tag = self._pending
            self._pending = None
            inp.out.append(DirectiveResponse(Response.POSITIVE_CONFIRM, directive, tag))

    def _accept_request(self, inp: _Input, _: str) -> None:
        assert inp.frame is not None
        kind = inp.frame.frame_type
        inp.out.append(TransferResponse(Response.ACCEPT, inp.tag, kind))

    def _restart_timer(self, inp: _Input, _: str = "") -> None:
        self.timer_expiry_t_s = inp.t_s + self.t1_initial_s
        inp.out.append(StartTimer(self.timer_expiry_t_s))

    def _cancel_timer(self, inp: _Input, _: str = "") -> None:
        self.timer_expiry_t_s = None
        inp.out.append(CancelTimer())

    def _purge_sent_queue(self, inp: _Input) -> None:  # 5.2.2
        for entry in self._sent:
            if entry.frame.frame_type is TcFrameType.AD:
                inp.out.append(
                    TransferResponse(
                        Response.NEGATIVE_CONFIRM,
                        entry.tag,
                        TcFrameType.AD,
                        entry.frame.seq,
                        "purged from the Sent Queue before FARM-1 acknowledged it",
                    )
                )
        self._sent.clear()
        self.nnr = self.vs

    def _purge_wait_queue(self, inp: _Input) -> None:  # 5.2.3
        if self._wait is not None:
            _, tag = self._wait
            self._wait = None
            reason = "purged from the Wait Queue: never transmitted"
            inp.out.append(TransferResponse(Response.REJECT, tag, TcFrameType.AD, None, reason))

    def _transmit_ad(self, fdu: TcFrame, tag: object, inp: _Input) -> None:  # 5.2.4
        frame = replace(fdu, seq=self.vs)
        self.vs = (self.vs + 1) % 256
        self._sent.append(_SentFrame(frame, tag))
        if len(self._sent) == 1:
            self.transmission_count = 1
        self._restart_timer(inp)
        self.ad_out_ready = False
        self.stats["ad_frames"] += 1
        inp.out.append(Transmit(frame, tag=tag))

    def _transmit_bc(self, frame: TcFrame, inp: _Input) -> None:  # 5.2.5
        self._sent.append(_SentFrame(frame, None))
        self.transmission_count = 1
        self._restart_timer(inp)
        self.bc_out_ready = False
        self.stats["bc_frames"] += 1
        inp.out.append(Transmit(frame))

    def _transmit_bd(self, inp: _Input, _: str) -> None:  # 5.2.6
        assert inp.frame is not None
        self.bd_out_ready = False
        self._bd_tag = inp.tag
        self.stats["bd_frames"] += 1
        inp.out.append(Transmit(inp.frame, tag=inp.tag))

    def _initiate_ad_retransmission(self, inp: _Input, _: str) -> None:  # 5.2.7
        self.transmission_count += 1
        self._restart_timer(inp)
        for entry in self._sent:
            if entry.frame.frame_type is TcFrameType.AD:
                entry.to_be_retransmitted = True

    def _initiate_bc_retransmission(self, inp: _Input, _: str) -> None:  # 5.2.7
        self.transmission_count += 1
        self._restart_timer(inp)
        for entry in self._sent:
            if entry.frame.frame_type is TcFrameType.BC:
                entry.to_be_retransmitted = True

    def _remove_acked(self, inp: _Input, _: str) -> None:  # 5.2.8
        assert inp.clcw is not None
        nr = inp.clcw.report_value
        for _i in range(seq_distance(nr, self.nnr)):
            if not self._sent or self._sent[0].frame.frame_type is not TcFrameType.AD:
                break
            entry = self._sent.popleft()
            inp.out.append(
                TransferResponse(
                    Response.POSITIVE_CONFIRM, entry.tag, TcFrameType.AD, entry.frame.seq
                )
            )
        self.nnr = nr
        self.transmission_count = 1

    def _look_for_directive(self, inp: _Input, _: str) -> None:  # 5.2.9
        if not self.bc_out_ready:
            return
        for entry in self._sent:
            if entry.frame.frame_type is TcFrameType.BC and entry.to_be_retransmitted:
                entry.to_be_retransmitted = False
                self.bc_out_ready = False
                self.stats["bc_retransmissions"] += 1
                inp.out.append(Transmit(entry.frame, retransmission=True))
                return

    def _look_for_fdu(self, inp: _Input, _: str) -> None:  # 5.2.10
        if not self.ad_out_ready:
            return
        for entry in self._sent:
            if entry.frame.frame_type is TcFrameType.AD and entry.to_be_retransmitted:
                entry.to_be_retransmitted = False
                self.ad_out_ready = False
                self.stats["ad_retransmissions"] += 1
                inp.out.append(Transmit(entry.frame, retransmission=True, tag=entry.tag))
                return
        if self._wait is not None and self.outstanding < self.window_width:
            fdu, tag = self._wait
            self._wait = None
            inp.out.append(TransferResponse(Response.ACCEPT, tag, TcFrameType.AD))
            self._transmit_ad(fdu, tag, inp)

    def _add_to_wait_queue(self, inp: _Input, _: str) -> None:
        assert inp.frame is not None
        self._wait = (inp.frame, inp.tag)

    def _initialise(self, inp: _Input, _: str) -> None:  # 5.2.14
        self._purge_sent_queue(inp)
        self._purge_wait_queue(inp)
        self.transmission_count = 1
        self.suspend_state = 0

    def _alert(self, inp: _Input, code: str) -> None:  # 5.2.15
        self._cancel_timer(inp)
        self._purge_sent_queue(inp)
        self._purge_wait_queue(inp)
        alert = AlertCode[code]
        if self._pending is not None:
            directive, tag = self._pending
            self._pending = None
            reason = f"AD service initiation abandoned: {alert.value}"
            inp.out.append(DirectiveResponse(Response.NEGATIVE_CONFIRM, directive, tag, reason))
        self.stats[f"alert_{code}"] += 1
        inp.out.append(Alert(alert, inp.reason or alert.value))

    def _suspend(self, inp: _Input, _: str) -> None:  # 5.2.16
        self.suspend_state = int(self.state)
        self._cancel_timer(inp)
        self.stats["suspends"] += 1
        inp.out.append(Suspend(self.suspend_state))

    def _resume(self, inp: _Input, _: str) -> None:  # 5.2.17
        self._restart_timer(inp)
        self.suspend_state = 0

    def _release_bc(self, inp: _Input, _: str) -> None:
        self._sent = deque(s for s in self._sent if s.frame.frame_type is not TcFrameType.BC)

    def _transmit_bc_unlock(self, inp: _Input, _: str) -> None:
        cfg = self.config
        self._transmit_bc(TcFrame(cfg.scid, cfg.vcid, Unlock().pack(), TcFrameType.BC), inp)

    def _prepare_set_vr(self, inp: _Input, _: str) -> None:
        assert isinstance(inp.value, int)
        self.vs = self.nnr = inp.value

    def _transmit_bc_set_vr(self, inp: _Input, _: str) -> None:
        cfg = self.config
        command = SetVr(self.vs).pack()
        self._transmit_bc(TcFrame(cfg.scid, cfg.vcid, command, TcFrameType.BC), inp)

    def _set_vs(self, inp: _Input, _: str) -> None:
        if self.suspend_state:
            inp.reason = (
                f"the AD service is suspended (SS = {self.suspend_state}): resume it or "
                "initiate it again before setting V(S)"
            )
            self._reject(inp, "")
            return
        self._accept_directive(inp, "")
        assert isinstance(inp.value, int)
        self.vs = self.nnr = inp.value
        self._confirm_directive(inp, "")

    # the values were checked on the way in (_parameter_error)
    def _set_window(self, inp: _Input, _: str) -> None:
        assert isinstance(inp.value, int)
        self.window_width = inp.value

    def _set_t1(self, inp: _Input, _: str) -> None:
        assert isinstance(inp.value, int | float)
        self.t1_initial_s = float(inp.value)

    def _set_limit(self, inp: _Input, _: str) -> None:
        assert isinstance(inp.value, int)
        self.transmission_limit = inp.value

    def _set_timeout_type(self, inp: _Input, _: str) -> None:
        assert isinstance(inp.value, int)
        self.timeout_type = inp.value

    def _ad_out_ready(self, inp: _Input, _: str) -> None:
        self.ad_out_ready = True

    def _bc_out_ready(self, inp: _Input, _: str) -> None:
        self.bc_out_ready = True

    def _bd_out_ready(self, inp: _Input, _: str) -> None:
        self.bd_out_ready = True

    def _confirm_bd(self, inp: _Input, _: str) -> None:
        tag, self._bd_tag = self._bd_tag, None
        inp.out.append(TransferResponse(Response.POSITIVE_CONFIRM, tag, TcFrameType.BD))

    def _negative_confirm_bd(self, inp: _Input, _: str) -> None:
        tag, self._bd_tag = self._bd_tag, None
        reason = "the lower procedures rejected the BD frame"
        inp.out.append(
            TransferResponse(Response.NEGATIVE_CONFIRM, tag, TcFrameType.BD, None, reason)
        )
