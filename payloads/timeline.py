"""The timeline of one inference query: the instants it went through, and its legs.

A :class:`Timeline` holds the instants (``..._t_s``: seconds since the scenario
epoch) one query went through, from the ground application's submit to the answer
complete on the ground. Its :meth:`Timeline.legs` are contiguous intervals that tile
that span, so their durations (:meth:`Timeline.leg_durations_s`) add up to the total
exactly (see :data:`LEGS`; the table is in linkstack/runtime/report.py, which computes
the run statistics and writes the reports).

This is plain data, shared by the ground client (payloads/client.py) and the
runtime that fills in the hops; it imports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFERENCE_S = 120.0  # "query up, inference in orbit, answer down" in under two minutes

# (leg, the Timeline attribute of the instant it ends at); each leg starts where the
# one before ended, the first at submit_t_s. power_wait: from the instant the satellite's
# power model was asked to the inference's start; without a power model (or an answer
# of version 1) there is none, and the onboard queue ends at the start
LEGS = (
    ("contact_wait", "first_uplink_t_s"),
    ("uplink", "query_on_first_sat_t_s"),
    ("relay_up", "query_on_board_t_s"),
    ("onboard_queue", "power_asked_t_s"),
    ("power_wait", "inference_start_t_s"),
    ("inference_ttft", "first_token_t_s"),
    ("generation", "inference_end_t_s"),
    ("downlink_wait", "first_downlink_t_s"),
    ("downlink", "answer_on_ground_t_s"),
)


@dataclass
class Hop:
    """One transfer of the query or the answer: ``kind`` uplink, isl or downlink.

    An instant is None where nobody saw it: a daemon's ground sees when an uplink
    begins and when a downlink ends, and the answer says when the query was on board
    (``linkstack.runtime.mission_control``); the laser hops between are in other
    processes."""

    kind: str
    src: str
    dst: str
    start_t_s: float | None
    end_t_s: float | None

    @property
    def duration_s(self) -> float | None:
        if self.start_t_s is None or self.end_t_s is None:
            return None
        return self.end_t_s - self.start_t_s


@dataclass
class Timeline:
    query_id: str
    submit_t_s: float
    satellite: str = ""  # the computing satellite
    # at submit: the satellite asked for (any: some satellite) had a usable pass, so the
    # query could go straight up at once
    in_view_at_submit: bool = False
    first_uplink_t_s: float | None = None
    query_on_first_sat_t_s: float | None = None
    query_on_board_t_s: float | None = None
    inference_start_t_s: float | None = None
    first_token_t_s: float | None = None
    inference_end_t_s: float | None = None
    first_downlink_t_s: float | None = None
    answer_on_ground_t_s: float | None = None
    hops: list[Hop] = field(default_factory=list)
    uplink_frames_sent: int = 0
    uplink_retransmissions: int = 0
    # copies of the answer that left its satellite before the first was on the ground
    # (repetitions of a lost one, or while it waited for a pass); None: not seen (a
    # daemon's ground: the satellites are in another process and the copies are the
    # same octets)
    answer_copies: int | None = 0
    error: str = ""
    # at submit: the satellite asked for was out of view and a satellite in view
    # reached it over laser links, so the query could go up at once, relayed
    relayed_at_submit: bool = False
    # the satellite's power model was asked (None: there is none on board); the
    # power_wait leg runs from here to inference_start_t_s
    power_asked_t_s: float | None = None
    # what the inference legs are, as the answer says (payloads.messages.Answer.
    # inference_timing): "modelled: ACC/MODEL/PRECISION" or "host stopwatch"; "": no answer
    inference_timing: str = ""
    # the battery's charge (Wh) at the inference's end, as the answer reports it (None:
    # no power model on board)
    battery_wh: float | None = None

    @property
    def complete(self) -> bool:
        return self.answer_on_ground_t_s is not None

    @property
    def total_s(self) -> float | None:
        if self.answer_on_ground_t_s is None:
            return None
        return self.answer_on_ground_t_s - self.submit_t_s

    def legs(self) -> list[tuple[str, float, float]]:
        """(name, start t_s, end t_s) of each known leg; contiguous from submit to the
        answer."""
        out = []
        start_t_s = self.submit_t_s
        for name, attr in LEGS:
            end_t_s = getattr(self, attr)
            if name == "onboard_queue" and end_t_s is None:
                end_t_s = self.inference_start_t_s  # no power model: no power wait
            elif name == "power_wait" and self.power_asked_t_s is None:
                continue
            if end_t_s is None:
                continue
            end_t_s = max(end_t_s, start_t_s)  # instants recorded by different nodes: never go back
            out.append((name, start_t_s, end_t_s))
            start_t_s = end_t_s
        return out

    def leg_durations_s(self) -> dict[str, float]:
        """The duration of each known leg, in seconds."""
        return {name: end_t_s - start_t_s for name, start_t_s, end_t_s in self.legs()}
