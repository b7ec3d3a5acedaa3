"""Contact plans for DTN bundle agents: the windows of a :class:`ContactPlan` as the
directed contacts and the light times a bundle agent schedules
(:func:`dtn_schedule`), written for NASA ION's ``ionadmin`` (:func:`to_ion`) and for
NASA HDTN's router (:func:`to_hdtn`).

A contact is when a link carries data, not only when it is in view, as the emulated
links do: an RF direction from AOS plus its receiver's acquisition time until LOS, a
laser link from its window's start plus the terminals' pointing, acquisition and
tracking time (none for a window already open when the plan starts: the emulator
takes those terminals as acquired) until the window ends. A range (the light time)
covers the whole window. Rates and delays come from :class:`DtnLinks`, which the
caller fills from the scenario's links. The export does not model a loss of lock
inside a pass (the shipped RF presets hold lock over every pass above the mask).

What both tools take, as read in their sources (ION 4.1.3, ``ici/utils/ionadmin.c``
and ``ici/library/ion.c``; HDTN 1.3.1, ``module/router/src/router.cpp`` and
``common/cgr/src/libcgr.cpp``): times, rates and light times are integers. So a
contact starts at the first whole second (UTC) at which its link carries data and
stops at the last whole second before it stops (it never claims time the link does
not have; a contact shorter than that is left out), rates are rounded down (never
more than the link carries), and the one-way light time is the window's longest,
rounded up to whole seconds (never earlier than a bundle can arrive): 1 s for every
LEO link, whose true light time is at most about 17 ms.
"""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from channels.contacts.plan import ContactPlan
from channels.geometry import C_MPS
from linkstack.errors import ConfigError

# ionadmin reads a time as POSIX seconds in a time_t that it refuses past this instant
# (2038-01-19T03:14:07Z); HDTN's router reads startTime and endTime as an int.
MAX_POSIX_S = 2**31 - 1
# ionadmin reads a contact's rate (bytes/s) into an unsigned int: a larger figure
# wraps round silently, so the export writes this instead (and says so).
ION_MAX_RATE_BYTES_PER_S = 2**32 - 1
ION_TIME_FORMAT = "%Y/%m/%d-%H:%M:%S"  # ionadmin's absolute time, read as UTC


@dataclass(frozen=True)
class DtnLinks:
    """What a scenario's links carry, for a DTN contact plan: the rates (bit/s) of
    the RF uplink (station to satellite), the RF downlink and the laser links, and
    how long after its window opens each starts to carry data (the receivers'
    acquisition, the laser terminals' pointing, acquisition and tracking)."""

    uplink_rate_bps: float
    downlink_rate_bps: float
    isl_rate_bps: float
    uplink_acquisition_s: float = 0.0
    downlink_acquisition_s: float = 0.0
    isl_pat_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("uplink_rate_bps", "downlink_rate_bps", "isl_rate_bps"):
            if not _number(getattr(self, name)) > 0:
                raise ConfigError(
                    "DtnLinks", name, f"must be a positive number, got {getattr(self, name)!r}"
                )
        for name in ("uplink_acquisition_s", "downlink_acquisition_s", "isl_pat_s"):
            if not _number(getattr(self, name)) >= 0:
                raise ConfigError(
                    "DtnLinks", name, f"must be a number >= 0, got {getattr(self, name)!r}"
                )


def _number(value: object) -> float:
    """``value`` if it is a finite int or float (not a bool), else NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


LinkKind = Literal["uplink", "downlink", "isl"]


@dataclass(frozen=True)
class DtnContact:
    """Data can go from node ``source`` to node ``dest`` from ``start_s`` to
    ``stop_s`` (POSIX seconds, UTC) at ``rate_bps`` over a ``kind`` link, and takes
    at most ``owlt_s`` whole seconds to arrive (its window's :class:`DtnRange`)."""

    source: int
    dest: int
    start_s: int
    stop_s: int
    rate_bps: float
    kind: LinkKind
    owlt_s: int


@dataclass(frozen=True)
class DtnRange:
    """The one-way light time between nodes ``a`` < ``b``, both ways, is at most
    ``owlt_s`` whole seconds from ``start_s`` to ``stop_s`` (POSIX seconds, UTC)."""

    a: int
    b: int
    start_s: int
    stop_s: int
    owlt_s: int


@dataclass(frozen=True)
class DtnSchedule:
    """A contact plan as a bundle agent sees it, in whole POSIX seconds: its contacts
    and ranges sorted by start time, the node numbers (:attr:`ContactPlan.nodes`),
    and ``start_s``, the plan's start to the whole second below."""

    scenario: str
    nodes: dict[str, int]
    start_s: int
    stop_s: int
    links: DtnLinks
    contacts: tuple[DtnContact, ...]
    ranges: tuple[DtnRange, ...]


def _whole_s(epoch_s: int, epoch_us: int, *terms_s: float, up: bool) -> int:
    """``epoch_s`` + ``epoch_us`` microseconds + ``terms_s``, in POSIX seconds rounded up
    or down to a whole second, exactly: integer arithmetic on the floats' exact ratios
    (a float near 1.8e9 s holds only about 0.2 us, enough to move a whole second)."""
    num, den = epoch_us, 1_000_000
    for term in terms_s:
        n, d = term.as_integer_ratio()
        num, den = num * d + n * den, den * d
    return epoch_s + (-(-num // den) if up else num // den)


def _light_time_s(range_m: float) -> int:
    """The one-way light time over ``range_m``, rounded up to whole seconds, exactly."""
    n, d = range_m.as_integer_ratio()
    cn, cd = C_MPS.as_integer_ratio()
    return -(-(n * cd) // (d * cn))


def dtn_schedule(plan: ContactPlan, links: DtnLinks) -> DtnSchedule:
    """The directed contacts and ranges of ``plan`` (see the module doc)."""
    nodes = plan.nodes
    contacts: list[DtnContact] = []
    ranges: list[DtnRange] = []

    epoch_s = calendar.timegm(plan.epoch.utctimetuple())  # whole seconds
    epoch_us = plan.epoch.microsecond

    def up(start_t_s: float, delay_s: float, stop_t_s: float) -> tuple[int, int] | None:
        start = _whole_s(epoch_s, epoch_us, start_t_s, delay_s, up=True)
        stop = _whole_s(epoch_s, epoch_us, stop_t_s, up=False)
        return (start, stop) if stop > start else None

    def window(
        a: str,
        b: str,
        start_t_s: float,
        stop_t_s: float,
        max_range_m: float,
        directions: tuple[tuple[str, str, float, float, LinkKind], ...],
    ) -> None:
        span = up(start_t_s, 0.0, stop_t_s)
        if span is None:
            return
        na, nb = sorted((nodes[a], nodes[b]))
        owlt_s = _light_time_s(max_range_m)
        ranges.append(DtnRange(na, nb, *span, owlt_s))
        for src, dst, delay_s, rate_bps, kind in directions:
            carried = up(start_t_s, delay_s, stop_t_s)
            if carried is not None:
                start_s, stop_s = carried
                contacts.append(
                    DtnContact(nodes[src], nodes[dst], start_s, stop_s, rate_bps, kind, owlt_s)
                )

    for w in plan.ground:
        sat, station = w.satellite, w.station
        window(
            sat,
            station,
            w.aos_t_s,
            w.los_t_s,
            w.max_range_m,
            (
                (sat, station, links.downlink_acquisition_s, links.downlink_rate_bps, "downlink"),
                (station, sat, links.uplink_acquisition_s, links.uplink_rate_bps, "uplink"),
            ),
        )
    for iw in plan.isl:
        pat_s = 0.0 if iw.start_clipped else links.isl_pat_s
        window(
            iw.sat_a,
            iw.sat_b,
            iw.start_t_s,
            iw.stop_t_s,
            iw.max_range_m,
            (
                (iw.sat_a, iw.sat_b, pat_s, links.isl_rate_bps, "isl"),
                (iw.sat_b, iw.sat_a, pat_s, links.isl_rate_bps, "isl"),
            ),
        )
    contacts.sort(key=lambda c: (c.start_s, c.source, c.dest))
    ranges.sort(key=lambda r: (r.start_s, r.a, r.b))
    return DtnSchedule(
        plan.scenario,
        nodes,
        _whole_s(epoch_s, epoch_us, plan.start_t_s, up=False),
        _whole_s(epoch_s, epoch_us, plan.start_t_s, plan.duration_s, up=False),
        links,
        tuple(contacts),
        tuple(ranges),
    )


def _check_posix(schedule: DtnSchedule, where: str) -> None:
    """Refuse a plan with a time the tool cannot hold (see :data:`MAX_POSIX_S`)."""
    times = [t for c in schedule.contacts for t in (c.start_s, c.stop_s)]
    times += [t for r in schedule.ranges for t in (r.start_s, r.stop_s)]
    if times and (min(times) < 0 or max(times) > MAX_POSIX_S):
        raise ConfigError(
            where,
            "time",
            f"the plan runs from {_utc(min(times))} to {_utc(max(times))}; the tool takes "
            f"POSIX seconds from 1970-01-01T00:00:00Z to {_utc(MAX_POSIX_S)} only",
        )


def _utc(posix_s: int) -> str:
    return datetime.fromtimestamp(posix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bps(rate_bps: float) -> str:
    return f"{rate_bps:,.0f}" if rate_bps == math.floor(rate_bps) else f"{rate_bps:,.3f}"


def _ion_time(posix_s: int) -> str:
    return datetime.fromtimestamp(posix_s, UTC).strftime(ION_TIME_FORMAT)


def ion_rate_bytes_per_s(rate_bps: float) -> int:
    """A rate as ionadmin takes it: whole bytes/s, rounded down, at most what its
    unsigned int holds (:data:`ION_MAX_RATE_BYTES_PER_S`)."""
    rate = math.floor(rate_bps) // 8
    if rate < 1:
        raise ConfigError(
            "ION export", "rate_bps", f"{rate_bps:g} bit/s is under 1 byte/s (ION refuses 0)"
        )
    return min(rate, ION_MAX_RATE_BYTES_PER_S)


def to_ion(plan: ContactPlan, links: DtnLinks) -> str:
    """The plan as ionadmin commands (ION 4.1 ``ionrc`` syntax), for ``ionadmin FILE``:
    ``a contact START STOP FROM TO BYTES_PER_S`` for each direction of each window
    and ``a range START STOP A B OWLT`` (A < B: ION takes it for both directions).

    Times are absolute UTC (``yyyy/mm/dd-hh:mm:ss``, which ionadmin reads as UTC),
    so ION places them without a reference time; rates are bytes/s rounded down,
    capped at 4,294,967,295 (ionadmin's unsigned int: a 100 Gbit/s laser is written
    as that, about 34.4 Gbit/s, and a comment says so); the light time is whole
    seconds, rounded up (see the module doc). Comment lines say all this, and which
    node number is which node.
    """
    schedule = dtn_schedule(plan, links)
    _check_posix(schedule, "ION export")
    rates = {
        "uplink": links.uplink_rate_bps,
        "downlink": links.downlink_rate_bps,
        "isl": links.isl_rate_bps,
    }
    ion_rates = {kind: ion_rate_bytes_per_s(rate) for kind, rate in rates.items()}
    lines = [
        f"# linkstack contact plan for ION's ionadmin (ionrc syntax): scenario {plan.scenario}",
        f"# from {_utc(schedule.start_s)} to {_utc(schedule.stop_s)}; times are absolute UTC, "
        "whole seconds, inside the time each link carries data",
        "# light time (range) in whole seconds, rounded up; rates in bytes/s, rounded down:",
    ]
    for kind, rate_bps in rates.items():
        note = ""
        if math.floor(rate_bps) // 8 > ion_rates[kind]:
            note = (
                f" (the {math.floor(rate_bps) // 8} bytes/s of the link are more than "
                "ionadmin's unsigned int holds: capped)"
            )
        lines.append(f"#   {kind} {_bps(rate_bps)} bit/s: {ion_rates[kind]}{note}")
    lines += [f"# node {n} {name}" for name, n in schedule.nodes.items()]
    rows: list[tuple[int, int, str]] = []
    for r in schedule.ranges:
        rows.append(
            (
                r.start_s,
                0,
                f"a range {_ion_time(r.start_s)} {_ion_time(r.stop_s)} {r.a} {r.b} {r.owlt_s}",
            )
        )
    for c in schedule.contacts:
        rows.append(
            (
                c.start_s,
                1,
                f"a contact {_ion_time(c.start_s)} {_ion_time(c.stop_s)} {c.source} {c.dest} "
                f"{ion_rates[c.kind]}",
            )
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    lines += [text for _, _, text in rows]
    return "\n".join(lines) + "\n"


HdtnTimes = Literal["unix", "relative"]


def to_hdtn(plan: ContactPlan, links: DtnLinks, *, times: HdtnTimes = "unix") -> str:
    """The plan as an HDTN contact plan (JSON): ``{"contacts": [{"contact", "source",
    "dest", "startTime", "endTime", "rateBitsPerSec", "owlt"}, ...]}``, every value an
    integer, as HDTN's router and its contact graph routing read them.

    ``times``: "unix" (the default) writes POSIX seconds, for a router started with
    ``--use-unix-timestamp``; "relative" writes seconds after the plan's start (to
    the whole second below), which is when HDTN must load the plan (without that
    option it counts from when it loads it). Rates are bit/s, rounded down; the
    light time is whole seconds, rounded up (see the module doc).
    """
    if times not in ("unix", "relative"):
        raise ConfigError("HDTN export", "times", f"must be 'unix' or 'relative', got {times!r}")
    schedule = dtn_schedule(plan, links)
    if times == "unix":
        _check_posix(schedule, "HDTN export")
    offset = schedule.start_s if times == "relative" else 0
    contacts = []
    for i, c in enumerate(schedule.contacts):
        contacts.append(
            {
                "contact": i,
                "source": c.source,
                "dest": c.dest,
                "startTime": c.start_s - offset,
                "endTime": c.stop_s - offset,
                "rateBitsPerSec": math.floor(c.rate_bps),
                "owlt": c.owlt_s,
            }
        )
    body = ",\n".join("    " + json.dumps(c) for c in contacts)
    return '{\n  "contacts": [\n' + body + ("\n" if body else "") + "  ]\n}\n"
