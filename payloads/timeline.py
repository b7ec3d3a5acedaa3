"""The timeline of one inference query: the instants it went through, and its legs.

A :class:`Timeline` holds the instants (``t_s``) one query went through, from
the ground application's submit to the answer complete on the ground. Its
:meth:`Timeline.legs` are contiguous intervals that tile that span, so they add
up to the total exactly (see :data:`LEGS`; the table is in linkstack/runtime/report.py,
which computes the run statistics and writes the reports).

This is plain data, shared by the ground client (payloads/client.py) and the
runtime that fills in the hops; it imports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFERENCE_S = 120.0  # "query up, inference in orbit, answer down" in under two minutes

LEGS = (
    ("contact_wait", "first_uplink"),
    ("uplink", "query_on_first_sat"),
    ("relay_up", "query_on_board"),
    ("onboard_queue", "inference_start"),
    ("inference_ttft", "first_token"),
    ("generation", "inference_end"),
    ("downlink_wait", "first_downlink"),
    ("downlink", "answer_on_ground"),
)


@dataclass
class Hop:
    """One transfer of the query or the answer: ``kind`` uplink, isl or downlink."""

    kind: str
    src: str
    dst: str
    t_start: float
    t_end: float


@dataclass
class Timeline:
    query_id: str
    submit: float
    satellite: str = ""  # the computing satellite
    in_view_at_submit: bool = False
    first_uplink: float | None = None
    query_on_first_sat: float | None = None
    query_on_board: float | None = None
    inference_start: float | None = None
    first_token: float | None = None
    inference_end: float | None = None
    first_downlink: float | None = None
    answer_on_ground: float | None = None
    hops: list[Hop] = field(default_factory=list)
    uplink_frames_sent: int = 0
    uplink_retransmissions: int = 0
    answer_copies: int = 0  # downlink repetitions before the ground acknowledged
    error: str = ""

    @property
    def complete(self) -> bool:
        return self.answer_on_ground is not None

    @property
    def total_s(self) -> float | None:
        return None if self.answer_on_ground is None else self.answer_on_ground - self.submit

    def legs(self) -> list[tuple[str, float, float]]:
        """(name, start, end) of each known leg; contiguous from submit to the answer."""
        out = []
        start = self.submit
        for name, attr in LEGS:
            end = getattr(self, attr)
            if end is None:
                continue
            end = max(end, start)  # instants recorded by different nodes: never go back
            out.append((name, start, end))
            start = end
        return out

    def leg_durations(self) -> dict[str, float]:
        return {name: end - start for name, start, end in self.legs()}
