"""``GET /metrics``: a daemon's counters and status in Prometheus's text format.

The collector counts nothing itself: at each scrape a :class:`DaemonCollector` reads a
:class:`Snapshot` of what the daemon already keeps (``GET /counters``, the status
record, the links' lateness and the ground's round trips as :class:`Buckets`) and
turns it into metric families with prometheus-client, in a registry of the daemon's
own (never the library's global one: two daemons in one process, as the tests run
them, must not share metrics). The names, types and labels are README's table.

Labels stay few however large the constellation (planned-2800: 2,800 satellites,
10,708 laser pairs, 27,016 links): links are summed by kind (``uplink``, ``downlink``,
``isl``), never one series a link; reasons, frame types, alert codes and query
outcomes are small fixed sets; per-satellite gauges are only for the satellites the
status lists (at most ``STATUS_LIST_MAX``, the busy first), with the counts of all
beside them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

PREFIX = "linkstack"
# Upper bounds of the query round-trip histogram, seconds: an answer from a satellite in
# view takes a second or two, a relayed one a few more, one that waits for a pass up to
# the better part of an hour.
ROUND_TRIP_BOUNDS_S = (
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0
)  # fmt: skip
# the downlink receivers' counter prefixes (TM, USLP) and their frame-count gaps (TM's
# master channel count, USLP's virtual channel count): parts.FRAME_GAP_COUNTERS
FRAMES = ("tm", "uslp")
FRAME_GAPS = ("mc_frames_lost", "vc_frames_lost")
# The classic text format (version 0.0.4): what every Prometheus reads; generate_latest
# writes it for plain ASCII names like ours.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class Buckets:
    """A histogram's state: a count per upper bound (``counts[i]``: values at or under
    ``bounds[i]`` and over the bound before; the last, past every bound) and the sum."""

    def __init__(self, bounds: Sequence[float], counts: Sequence[int] = (), sum_: float = 0.0):
        self.bounds = tuple(bounds)
        self.counts = list(counts) or [0] * (len(self.bounds) + 1)
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(f"{len(self.counts)} counts for {len(self.bounds)} bounds")
        self.sum = sum_

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, counts: Sequence[int], sum_: float) -> None:
        """Another histogram of the same bounds added in (one link's into its kind's)."""
        for i, n in enumerate(counts):
            self.counts[i] += n
        self.sum += sum_

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus's buckets: ``(le, values at or under le)``, ``+Inf`` last."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), float(total)))
        return out


@dataclass(frozen=True)
class Snapshot:
    """What a daemon knows of itself at one instant, as its public methods give it."""

    role: str
    counters: Mapping[str, Any]  # GET /counters
    status: Mapping[str, Any]  # GET /status: each list cut at STATUS_LIST_MAX
    lateness: Mapping[str, Buckets] = field(default_factory=dict)  # per link kind
    round_trips: Mapping[str, Buckets] = field(default_factory=dict)  # per query outcome


def _name(*parts: str) -> str:
    return "_".join((PREFIX, *parts))


def _counter(name: str, doc: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(_name(name), doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(_name(name), doc, labels=list(labels))


def _number(value: object) -> float | None:
    """A JSON value as a sample (None: not a number, or not finite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _section(doc: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for key in path:
        value = doc.get(key)
        if not isinstance(value, Mapping):
            return {}
        doc = value
    return doc


def _by_prefix(counts: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, float]]:
    """``(rest, value)`` of each counter named ``prefix + rest``."""
    for key, value in sorted(counts.items()):
        number = _number(value)
        if key.startswith(prefix) and key != prefix and number is not None:
            yield key[len(prefix) :], number


def _by_suffix(counts: Mapping[str, Any], suffix: str) -> Iterator[tuple[str, float]]:
    """``(head, value)`` of each counter named ``head + suffix``."""
    for key, value in sorted(counts.items()):
        number = _number(value)
        if key.endswith(suffix) and key != suffix and number is not None:
            yield key[: -len(suffix)], number


class DaemonCollector(Collector):
    """Metric families of the :class:`Snapshot` that ``read`` gives at each scrape."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        snap = self.read()
        counters, status = snap.counters, snap.status
        yield from _links(_section(counters, "channel"), snap.lateness, status)
        yield from _ground(_section(counters, "ground"), _section(status, "ground"))
        yield from _satellites(_section(counters, "satellites"), _section(status, "satellites"))
        yield from _queries(_section(counters, "app"), _section(status, "app"), snap.round_trips)
        yield from _daemon(snap.role, counters, status)


def _links(
    kinds: Mapping[str, Any], lateness: Mapping[str, Buckets], status: Mapping[str, Any]
) -> Iterator[Metric]:
    """The channel's links, summed by kind: units and their fates, lateness."""
    if not kinds:
        return
    fates = {
        fate: _counter(f"link_units_{fate}", f"Units the links {what}, by link kind.", ["kind"])
        for fate, what in (
            ("sent", "started to radiate"),
            ("delivered", "handed over intact"),
            ("corrupted", "handed over with bit errors"),
        )
    }
    lost = _counter(
        "link_units_lost", "Units the links lost, by link kind and reason.", ["kind", "reason"]
    )
    bit_errors = _counter("link_bit_errors", "Bit errors put into units, by link kind.", ["kind"])
    late = HistogramMetricFamily(
        _name("link_lateness_seconds"),
        "How late units were handed over against their deadlines, by link kind.",
        labels=["kind"],
    )
    for kind, counts in sorted(kinds.items()):
        if not isinstance(counts, Mapping):
            continue
        for fate, family in fates.items():
            family.add_metric([kind], _number(counts.get(fate, 0)) or 0.0)
        for reason, n in _by_prefix(counts, "dropped_"):
            lost.add_metric([kind, reason], n)
        bit_errors.add_metric([kind], _number(counts.get("bit_errors", 0)) or 0.0)
        if (hist := lateness.get(kind)) is not None:
            late.add_metric([kind], hist.cumulative(), hist.sum)
    yield from fates.values()
    yield from (lost, bit_errors, late)
    channel = _section(status, "channel")
    active = _gauge("links_active", "Links that carried units in the last rate window.")
    active.add_metric([], _number(channel.get("active")) or 0.0)
    yield active


def _ground(counters: Mapping[str, Any], status: Mapping[str, Any]) -> Iterator[Metric]:
    """COP-1 on the ground (FOP-1, summed over the satellites) and the downlink frames."""
    if not counters:
        return
    cop1 = _section(counters, "cop1")
    sent = _counter("cop1_frames_sent", "TC frames FOP-1 sent first, by type.", ["frame_type"])
    again = _counter("cop1_retransmissions", "TC frames FOP-1 sent again, by type.", ["frame_type"])
    for frame_type, n in _by_suffix(cop1, "_sent"):
        sent.add_metric([frame_type], n)
    for frame_type, n in _by_suffix(cop1, "_retransmitted"):
        again.add_metric([frame_type], n)
    alerts = _counter("cop1_alerts", "FOP-1 alerts, by code.", ["code"])
    for code, n in _by_prefix(cop1, "alert_"):
        alerts.add_metric([code], n)
    suspends = _counter("cop1_suspends", "FOP-1 suspends.")
    suspends.add_metric([], _number(cop1.get("suspends", 0)) or 0.0)
    yield from (sent, again, alerts, suspends)

    down = _section(counters, "downlink")
    frames = _counter("downlink_frames_received", "Downlink transfer frames the ground received.")
    lost = _counter(
        "downlink_frames_lost",
        "Downlink frames the ground missed, by how: a gap in the frame count, or a "
        "Reed-Solomon codeword it could not correct.",
        ["reason"],
    )
    # TM's or USLP's receiver (counters tm_... or uslp_...), whichever the run has
    frames.add_metric([], sum(_number(down.get(f"{p}_frames", 0)) or 0.0 for p in FRAMES))
    gaps = sum(_number(down.get(f"{p}_{g}", 0)) or 0.0 for p in FRAMES for g in FRAME_GAPS)
    lost.add_metric(["count_gap"], gaps)
    lost.add_metric(["rs_uncorrectable"], _number(down.get("cadu_rs_uncorrectable", 0)) or 0.0)
    yield from (frames, lost)

    fer = _gauge(
        "downlink_frame_error_ratio",
        "Downlink frames lost over frames due in the last rate window, for each "
        "satellite the status lists.",
        ["satellite"],
    )
    queue = _gauge(
        "ground_backlog_frames",
        "TC frames waiting for FOP-1, for each satellite the status lists.",
        ["satellite"],
    )
    for link in status.get("links") or ():
        name = str(link.get("satellite", ""))
        if (ratio := _number(link.get("tm_frame_error_rate"))) is not None:
            fer.add_metric([name], ratio)
        if (backlog := _number(link.get("backlog"))) is not None:
            queue.add_metric([name], backlog)
    yield from (fer, queue)


def _satellites(counters: Mapping[str, Any], status: Mapping[str, Any]) -> Iterator[Metric]:
    """The satellites this daemon runs: their receivers' counts, and gauges of the
    satellites the status lists (queue depth, compute time, battery where modelled)."""
    if not counters:
        return
    up = _section(counters, "uplink")
    cltus = _counter("uplink_cltus_received", "CLTUs the satellites' receivers took.")
    cltus.add_metric([], _number(up.get("cltu_cltus", 0)) or 0.0)
    bad = _counter(
        "uplink_cltus_failed", "CLTUs whose frame the satellites' decoders could not complete."
    )
    bad.add_metric([], _number(up.get("cltu_frame_incomplete", 0)) or 0.0)
    services = _section(counters, "services")
    inferences = _counter("satellite_inferences", "Inferences the satellites ran.")
    inferences.add_metric([], _number(services.get("inferences", 0)) or 0.0)
    yield from (cltus, bad, inferences)

    hosted = _gauge("satellites_hosted", "Satellites this daemon runs.")
    hosted.add_metric([], _number(status.get("hosted")) or 0.0)
    in_view = _gauge("satellites_in_view", "Satellites this daemon runs that are in view.")
    in_view.add_metric([], _number(status.get("in_view_count")) or 0.0)
    yield from (hosted, in_view)
    labels = ["satellite"]
    gauges: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
        "model_queue": _gauge(
            "satellite_model_queue_queries", "Queries waiting for the onboard model.", labels
        ),
        "unacknowledged": _gauge(
            "satellite_unacknowledged_answers", "Answers sent and not yet acknowledged.", labels
        ),
        "parked": _gauge(
            "satellite_parked_messages", "Messages held on board for a later link.", labels
        ),
        "uplink_frame_error_rate": _gauge(
            "uplink_frame_error_ratio",
            "CLTUs failed over CLTUs received in the last rate window.",
            labels,
        ),
        "busy_s": _counter(
            "satellite_busy_seconds",
            "Compute time of the inferences run since the daemon started (its rate is "
            "the utilisation).",
            labels,
        ),
        "battery_soc_wh": _gauge(
            "satellite_battery_charge_watt_hours",
            "The battery's state of charge, where the power model is on.",
            labels,
        ),
        "battery_capacity_wh": _gauge(
            "satellite_battery_capacity_watt_hours",
            "The battery's capacity, where the power model is on.",
            labels,
        ),
    }
    for sat in status.get("satellites") or ():
        name = str(sat.get("satellite", ""))
        for key, family in gauges.items():
            if (value := _number(sat.get(key))) is not None:
                family.add_metric([name], value)
    yield from gauges.values()


def _queries(
    counters: Mapping[str, Any], status: Mapping[str, Any], round_trips: Mapping[str, Buckets]
) -> Iterator[Metric]:
    """The ground's queries: in, refused, finished by outcome with their round trips,
    published; the queue by state."""
    if not counters:
        return
    app = _section(counters, "app")
    for name, key, doc in (
        ("queries_received", "queries", "Queries taken from MQTT and stored."),
        ("queries_refused", "requests_refused", "Query requests refused as malformed."),
        ("queries_published", "published", "Answers published on MQTT."),
    ):
        family = _counter(name, doc)
        family.add_metric([], _number(app.get(key, 0)) or 0.0)
        yield family
    finished = _counter(
        "queries_finished", "Queries answered or refused for good, by outcome.", ["outcome"]
    )
    trips = HistogramMetricFamily(
        _name("query_round_trip_seconds"),
        "Query round trips, submission to answer on the ground, by outcome.",
        labels=["outcome"],
    )
    for outcome, hist in sorted(round_trips.items()):
        finished.add_metric([outcome], float(hist.count))
        trips.add_metric([outcome], hist.cumulative(), hist.sum)
    yield from (finished, trips)
    queue = _gauge("ground_queue_queries", "Rows of the ground's query queue, by state.", ["state"])
    for state, n in sorted(_section(status, "queue").items()):
        if (value := _number(n)) is not None:
            queue.add_metric([state], value)
    yield queue


def _daemon(role: str, counters: Mapping[str, Any], status: Mapping[str, Any]) -> Iterator[Metric]:
    """Which daemon this is, and the frames SDLS refused (by reason)."""
    info = _gauge("daemon_info", "The daemon's role and scenario (always 1).", ["role", "scenario"])
    info.add_metric([role, str(status.get("scenario", ""))], 1.0)
    yield info
    refused = _counter("sdls_refused_frames", "Frames SDLS refused, by reason.", ["reason"])
    for reason, n in _by_prefix(_section(counters, "sdls"), "refused_"):
        refused.add_metric([reason], n)
    yield refused


class DaemonMetrics:
    """A daemon's own registry with its collector; :meth:`render` is ``GET /metrics``."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(read))

    def render(self) -> tuple[bytes, str]:
        """The body in the text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE
