"""Who can talk to whom, when: routes through the constellation from its contact plan.

Sans-I/O: :class:`ContactState` reads a scenario's contact plan (ground passes and
laser-link windows, :mod:`channels.contacts`), computed in chunks as time goes on,
and answers the questions the nodes ask, at a time ``t_s`` they give:

- **uplink**: which satellite can the mission control reach now, and through which
  station? A pass is *usable* for sending from ``acquisition_s`` after AOS (the
  receivers lock first) until ``min_pass_left_s`` before LOS (nothing is started
  that the pass cannot finish). With the policy "any satellite" the query goes to
  the usable satellite whose pass lasts longest; with a target, straight up if the
  target's pass is usable, otherwise up to the usable satellite nearest the target
  over laser links, which relays it (:meth:`ContactState.uplink_route`). When no
  satellite is usable the caller waits until :meth:`ContactState.next_uplink_time`.
  :meth:`ContactState.uplink_routes` gives the routes to many satellites at once
  (the mission control spreads queries for "any satellite" over them by load; at
  equal load it keeps the rule above, :func:`spread_rank`).
- **relay**: the shortest path between two satellites over the laser links that
  are up (a link is up from its window's start plus the terminals' pointing,
  acquisition and tracking time until its end), weighted by light time plus a
  per-hop forwarding cost (Dijkstra, :meth:`ContactState.path`). The links up at an
  instant are the live laser graph (:mod:`linkstack.runtime.laser_graph`), moved from
  contact change to contact change rather than rebuilt per query; its trees are kept
  until the links change, and the routes to many satellites at once are one search
  from every usable satellite.
- **downlink**: from a satellite to the ground, the earliest-arrival route
  (contact-graph routing in miniature): for every satellite reachable over the
  laser links, when its next usable pass begins; the answer goes to the one that
  can send it down first, hop by hop, and waits there for its pass
  (:meth:`ContactState.downlink_route`).

Messages relayed by a satellite travel in a *relay envelope*
(:class:`RelayHeader`): a Space Packet on :data:`RELAY_APID` whose data is a
6-octet header (version, hop limit, source node, destination node) and then the
message. A message travels bare, on its own APID (queries and acks on
``QUERY_APID``, answers on ``ANSWER_APID``), over the hop whose far end is its
destination, and in an envelope over every hop before that. Node numbers: 0 is the
ground (mission control), satellites are 1..N in the scenario's order (as in
:attr:`channels.contacts.ContactPlan.nodes`).
"""

from __future__ import annotations

import bisect
import itertools
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from channels.contacts import DEFAULT_ISL_MAX_RANGE_M, contact_plan
from channels.contacts import DEFAULT_ISL_STEP_S as ISL_STEP_S
from channels.geometry import C_MPS
from channels.scenarios import Scenario
from linkstack.errors import ConfigError, DecodeError, EncodeError
from linkstack.runtime.laser_graph import LaserGraph, LinkWindow, Tree, walk

RELAY_APID = 0x102
GROUND_NODE = 0
ENVELOPE_VERSION = 1
DEFAULT_HOP_LIMIT = 16
_ENVELOPE = struct.Struct(">BBHH")
ENVELOPE_HEADER_LEN = _ENVELOPE.size

DEFAULT_CHUNK_S = 6 * 3600.0
DEFAULT_LOOKAHEAD_S = 2 * 86_400.0  # how far ahead to look for a contact before giving up
HOP_COST_S = 1e-3  # forwarding cost of a relay, on top of the light time


# -- the relay envelope -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayHeader:
    """Where a relayed message comes from and goes to (node numbers, 0 = ground)."""

    src: int
    dst: int
    hop_limit: int = DEFAULT_HOP_LIMIT

    def wrap(self, message: bytes) -> bytes:
        """The envelope: this header, then the message."""
        for name, value, hi in (
            ("src", self.src, 0xFFFF),
            ("dst", self.dst, 0xFFFF),
            ("hop_limit", self.hop_limit, 0xFF),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
                raise EncodeError("relay", name, f"must be an integer in 0..{hi}, got {value!r}")
        if not message:
            raise EncodeError("relay", "message", "an envelope must carry a message")
        return _ENVELOPE.pack(ENVELOPE_VERSION, self.hop_limit, self.src, self.dst) + message

    @classmethod
    def unwrap(cls, payload: bytes) -> tuple[RelayHeader, bytes]:
        """(header, message) of an envelope; DecodeError (layer ``relay``) if malformed."""
        if len(payload) <= ENVELOPE_HEADER_LEN:
            raise DecodeError(
                "relay",
                "length",
                f"an envelope holds a {ENVELOPE_HEADER_LEN}-octet header and a message, "
                f"got {len(payload)} octets",
            )
        version, hop_limit, src, dst = _ENVELOPE.unpack_from(payload)
        if version != ENVELOPE_VERSION:
            raise DecodeError(
                "relay", "version", f"envelope version {version} is not {ENVELOPE_VERSION}"
            )
        if src == dst:
            raise DecodeError("relay", "dst", f"source and destination are both node {src}")
        return cls(src, dst, hop_limit), bytes(payload[ENVELOPE_HEADER_LEN:])


# -- routes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UplinkRoute:
    """Up through ``station`` to ``path[0]``, then over laser links to ``path[-1]``."""

    station: str
    path: tuple[str, ...]
    los_t_s: float  # when the first satellite's pass over the station ends
    relay_s: float = 0.0  # over the laser links: light time plus forwarding, per hop

    @property
    def first(self) -> str:
        return self.path[0]

    @property
    def target(self) -> str:
        return self.path[-1]


@dataclass(frozen=True, slots=True)
class DownlinkRoute:
    """Over laser links along ``path`` to ``path[-1]``, down from ``contact_t_s``."""

    path: tuple[str, ...]
    contact_t_s: float  # the earliest instant the last satellite can send to a station
    station: str

    @property
    def next_hop(self) -> str | None:
        return self.path[1] if len(self.path) > 1 else None


@dataclass(slots=True)
class _Pass:
    station: str
    aos_t_s: float
    los_t_s: float


@dataclass(slots=True)
class _Laser:
    start_t_s: float
    stop_t_s: float
    delay_s: float
    acquired_at_start: bool  # already up when the plan began (no acquisition to wait for)


class ContactState:
    """A scenario's contacts over time, computed in chunks, and routes through them.

    ``acquisition_s``: receivers lock this long after AOS (the RF ReceiverModel's
    default), and the ground waits ``acquisition_margin_s`` more; ``pat_s``: laser
    terminals point, acquire and track this long after a link comes into view, and
    reach ``isl_max_range_m`` (the scenario's terminal: the links' physics has the same);
    ``min_pass_left_s``: no uplink is started in the last seconds of a pass;
    ``min_downlink_left_s`` the same for a downlink.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        start_t_s: float = 0.0,
        chunk_s: float = DEFAULT_CHUNK_S,
        step_s: float = 10.0,
        acquisition_s: float = 3.0,
        acquisition_margin_s: float = 1.0,
        pat_s: float = 30.0,
        isl_max_range_m: float = DEFAULT_ISL_MAX_RANGE_M,
        min_pass_left_s: float = 20.0,
        min_downlink_left_s: float = 5.0,
        lookahead_s: float = DEFAULT_LOOKAHEAD_S,
        sunlight_of: Iterable[str] = (),
    ) -> None:
        if not chunk_s > 0 or not step_s > 0:
            raise ConfigError("routing", "chunk_s", "chunk and step must be positive")
        for unit in (step_s, ISL_STEP_S):
            if abs(chunk_s / unit - round(chunk_s / unit)) > 1e-9:
                raise ConfigError(
                    "routing", "chunk_s", f"must be a whole number of {unit:g} s steps"
                )
        self.scenario = scenario
        self.satellites = tuple(scenario.satellite_names)
        self.nodes = {name: i + 1 for i, name in enumerate(self.satellites)}
        self.names = {i: name for name, i in self.nodes.items()} | {GROUND_NODE: "ground"}
        # the plan's AOS is found to 10 ms, the receivers' own to 1 ms: wait a little more
        self.acquisition_s = acquisition_s + acquisition_margin_s
        self.pat_s = pat_s
        self.isl_max_range_m = isl_max_range_m
        self.min_pass_left_s = min_pass_left_s
        self.min_downlink_left_s = min_downlink_left_s
        self.lookahead_s = lookahead_s
        self.chunk_s = chunk_s
        self.step_s = step_s
        self.start_t_s = start_t_s
        self.horizon_t_s = start_t_s
        self._passes: dict[str, list[_Pass]] = {s: [] for s in self.satellites}
        self._aos_t_s: dict[str, list[float]] = {s: [] for s in self.satellites}
        self._max_pass_s = 0.0
        self._all_aos_t_s: list[float] = []
        self._all_passes: list[tuple[int, _Pass]] = []
        self._lasers: dict[tuple[str, str], list[_Laser]] = {}
        names = self.satellites
        for a, b in scenario.isl_pairs:
            key = _pair(names[a], names[b])
            self._lasers[key] = []
        self._neighbours: dict[str, list[str]] = {s: [] for s in self.satellites}
        for sat_a, sat_b in self._lasers:
            self._neighbours[sat_a].append(sat_b)
            self._neighbours[sat_b].append(sat_a)
        # the laser links up at an instant, loaded again from the windows as the plan grows
        self._graph = LaserGraph(list(self._lasers), HOP_COST_S)
        self._graph_horizon_t_s: float | None = None
        # the satellites reachable for an uplink at one instant (a dispatch asks often)
        self._usable_at: tuple[float, float, dict[str, _Pass]] | None = None
        self._routes_at: (
            tuple[tuple[float, float], tuple[str, ...], dict[str, UplinkRoute]] | None
        ) = None
        # the sunlight spans of these satellites (their power models take them), searched
        # with each chunk only when some satellite needs them
        self._sunlight: dict[str, list[tuple[float, float, float]]] = {s: [] for s in sunlight_of}
        self.extend(start_t_s + chunk_s)

    # -- the plan, chunk by chunk -----------------------------------------------------
    def extend(self, t_s: float) -> None:
        """Make sure the plan covers up to ``t_s``."""
        while self.horizon_t_s < t_s:
            self._add_chunk(self.horizon_t_s, self.chunk_s)

    def _add_chunk(self, start_t_s: float, duration_s: float) -> None:
        plan = contact_plan(
            self.scenario,
            duration_s=duration_s,
            start_t_s=start_t_s,
            step_s=self.step_s,
            samples=False,
            isl=bool(self._lasers),
            isl_max_range_m=self.isl_max_range_m,
            sunlight=bool(self._sunlight),
            sunlight_step_s=self.step_s,
        )
        for iv in plan.sunlight:
            spans = self._sunlight.get(iv.satellite)
            if spans is not None:
                spans.append((iv.start_t_s, iv.stop_t_s, iv.mean_fraction))
        added: list[tuple[str, _Pass]] = []
        for w in plan.ground:
            passes = self._passes[w.satellite]
            if w.aos_clipped and start_t_s > self.start_t_s:
                prev = next(
                    (
                        p
                        for p in reversed(passes)
                        if p.station == w.station and p.los_t_s >= start_t_s
                    ),
                    None,
                )
                if prev is not None:  # the same pass, cut by the chunk edge
                    prev.los_t_s = w.los_t_s
                    self._max_pass_s = max(self._max_pass_s, prev.los_t_s - prev.aos_t_s)
                    continue
            passes.append(_Pass(w.station, w.aos_t_s, w.los_t_s))
            added.append((w.satellite, passes[-1]))
            self._max_pass_s = max(self._max_pass_s, w.los_t_s - w.aos_t_s)
        for sat, passes in self._passes.items():
            passes.sort(key=lambda p: p.aos_t_s)
            self._aos_t_s[sat] = [p.aos_t_s for p in passes]
        self._index_passes(added)
        for iw in plan.isl:
            windows = self._lasers[_pair(iw.sat_a, iw.sat_b)]
            delay_s = 0.5 * (iw.min_range_m + iw.max_range_m) / C_MPS
            if iw.start_clipped and start_t_s > self.start_t_s and windows:
                last = windows[-1]
                if last.stop_t_s >= start_t_s:
                    last.stop_t_s = iw.stop_t_s
                    continue
            at_start = iw.start_clipped and start_t_s <= self.start_t_s
            windows.append(_Laser(iw.start_t_s, iw.stop_t_s, delay_s, at_start))
        self.horizon_t_s = start_t_s + duration_s

    @property
    def sunlight_satellites(self) -> tuple[str, ...]:
        """The satellites whose sunlight the plan searches (``sunlight_of``)."""
        return tuple(self._sunlight)

    def take_sunlight(self, satellite: str) -> list[tuple[float, float, float]]:
        """The sunlight spans (start, stop, fraction of the Sun seen) of ``satellite``
        found since the last call, in order, tiling the plan from its start (only for
        the satellites named in ``sunlight_of``); the caller keeps them."""
        spans = self._sunlight[satellite]
        self._sunlight[satellite] = []
        return spans

    def _index_passes(self, added: list[tuple[str, _Pass]]) -> None:
        """Every pass in AOS order (each satellite's in its own order): who is in view
        at an instant is one slice of it, not a search per satellite. A chunk's new
        passes begin at or after its start, so they mostly go at the end: the sort
        (stable, keeping each satellite's order) finds two runs and merges them."""
        entries = self._all_passes
        entries += [(self.nodes[sat], p) for sat, p in added]
        entries.sort(key=lambda e: (e[1].aos_t_s, e[0]))
        self._all_aos_t_s = [p.aos_t_s for _, p in entries]

    # -- ground passes -------------------------------------------------------------------
    def planned_passes(self, satellite: str) -> tuple[_Pass, ...]:
        """Every pass of ``satellite`` planned so far (as far as :meth:`extend` went)."""
        return tuple(self._passes[satellite])

    @property
    def laser_pairs(self) -> tuple[tuple[str, str], ...]:
        """The laser links of the scenario, each pair once, in pair order."""
        return tuple(self._lasers)

    def passes(self, satellite: str, t_s: float) -> list[_Pass]:
        """The passes of ``satellite`` (over any station) in progress at ``t_s``."""
        self.extend(t_s + 1.0)
        aos_t_s = self._aos_t_s[satellite]
        hi = bisect.bisect_right(aos_t_s, t_s)
        lo = bisect.bisect_left(aos_t_s, t_s - self._max_pass_s - 1.0)
        return [p for p in self._passes[satellite][lo:hi] if p.aos_t_s <= t_s < p.los_t_s]

    def pass_start(self, satellite: str, station: str, t_s: float) -> float | None:
        """The AOS of ``satellite``'s pass over ``station`` in progress at ``t_s``, or None:
        what the RF receivers there acquire from (:class:`channels.models.RfLinkModel`
        takes it from here, so the links and the routes see the same passes)."""
        for p in self.passes(satellite, t_s):
            if p.station == station:
                return p.aos_t_s
        return None

    def in_view(self, satellite: str, t_s: float) -> bool:
        """Whether some station sees ``satellite`` above its mask at ``t_s``."""
        return bool(self.passes(satellite, t_s))

    def _usable(self, satellite: str, t_s: float, left_s: float) -> _Pass | None:
        best = None
        for p in self.passes(satellite, t_s):
            if p.aos_t_s + self.acquisition_s <= t_s <= p.los_t_s - left_s and (
                best is None or p.los_t_s > best.los_t_s
            ):
                best = p
        return best

    def usable_pass(self, satellite: str, t_s: float, downlink: bool = False) -> _Pass | None:
        """The pass (the longest-lasting, if several stations see it) through which
        ``satellite`` can be reached at ``t_s``, or None."""
        left_s = self.min_downlink_left_s if downlink else self.min_pass_left_s
        return self._usable(satellite, t_s, left_s)

    def usable_passes(self, t_s: float) -> dict[str, _Pass]:
        """Every satellite reachable for an uplink at ``t_s``, with its pass (as
        :meth:`usable_pass`), in the scenario's order; kept for the last instant asked."""
        self.extend(t_s + 1.0)
        cached = self._usable_at
        if cached is not None and cached[0] == t_s and cached[1] == self.horizon_t_s:
            return cached[2]
        # as _usable, over every satellite's passes at once
        lo = bisect.bisect_left(self._all_aos_t_s, t_s - self._max_pass_s - 1.0)
        hi = bisect.bisect_right(self._all_aos_t_s, t_s)
        acquisition_s, left_s = self.acquisition_s, self.min_pass_left_s
        best: dict[int, _Pass] = {}
        for node, p in itertools.islice(self._all_passes, lo, hi):
            # the same sums as _usable's, so that an instant on the edge falls alike
            if p.aos_t_s + acquisition_s <= t_s <= p.los_t_s - left_s and t_s < p.los_t_s:
                held = best.get(node)
                if held is None or p.los_t_s > held.los_t_s:
                    best[node] = p
        usable = {self.names[node]: best[node] for node in sorted(best)}
        self._usable_at = (t_s, self.horizon_t_s, usable)
        return usable

    def next_usable(self, satellite: str, t_s: float, downlink: bool = False) -> float | None:
        """The earliest instant >= ``t_s`` at which ``satellite`` is reachable from the
        ground, or None within the look-ahead."""
        left_s = self.min_downlink_left_s if downlink else self.min_pass_left_s
        if self._usable(satellite, t_s, left_s) is not None:
            return t_s
        limit_t_s = t_s + self.lookahead_s
        covered_t_s = t_s
        while covered_t_s < limit_t_s:
            self.extend(min(covered_t_s + self.chunk_s, limit_t_s))
            best_t_s = self._first_usable(satellite, t_s, left_s)
            if best_t_s is not None:
                return best_t_s
            covered_t_s = self.horizon_t_s
        return None

    def _first_usable(self, satellite: str, t_s: float, left_s: float) -> float | None:
        """The earliest instant >= ``t_s`` at which a pass of ``satellite`` the plan
        holds so far is usable: passes are in AOS order, so the search starts at the
        first that can last past ``t_s`` and stops at the first that begins too late."""
        passes = self._passes[satellite]
        lo = bisect.bisect_left(self._aos_t_s[satellite], t_s - self._max_pass_s - 1.0)
        best_t_s = None
        for p in itertools.islice(passes, lo, None):
            if best_t_s is not None and p.aos_t_s + self.acquisition_s > best_t_s:
                break  # this pass and every later one begins after the best
            begin_t_s = max(p.aos_t_s + self.acquisition_s, t_s)
            if p.los_t_s - left_s < begin_t_s:
                continue
            if best_t_s is None or begin_t_s < best_t_s:
                best_t_s = begin_t_s
        return best_t_s

    # -- laser links ---------------------------------------------------------------------
    def laser_up(self, a: str, b: str, t_s: float) -> float | None:
        """The light time over the a-b laser link if it carries data at ``t_s``, else None."""
        windows = self._lasers.get(_pair(a, b))
        if not windows:
            return None
        self.extend(t_s + 1.0)
        for w in windows:
            ready_t_s = w.start_t_s if w.acquired_at_start else w.start_t_s + self.pat_s
            if ready_t_s <= t_s < w.stop_t_s:
                return w.delay_s
        return None

    def window_start(self, a: str, b: str, t_s: float) -> float | None:
        """When the a-b laser window in progress at ``t_s`` came into view (minus infinity
        if it already had when the plan began: its terminals are acquired), or None:
        what the laser terminals point and acquire from
        (:class:`channels.models.LaserLinkModel` takes it from here)."""
        windows = self._lasers.get(_pair(a, b))
        if not windows:
            return None
        self.extend(t_s + 1.0)
        for w in windows:
            if w.start_t_s <= t_s < w.stop_t_s:
                return -math.inf if w.acquired_at_start else w.start_t_s
        return None

    def neighbours(self, satellite: str) -> list[str]:
        return list(self._neighbours.get(satellite, ()))

    def laser_graph(self, t_s: float) -> LaserGraph:
        """The live laser graph, its windows covering ``t_s`` (loaded again when the
        plan has grown since)."""
        self.extend(t_s + 1.0)
        if self._graph_horizon_t_s != self.horizon_t_s:
            self._graph.load(self._link_windows())
            self._graph_horizon_t_s = self.horizon_t_s
        return self._graph

    def _link_windows(self) -> Iterable[LinkWindow]:
        """Each link's windows as the graph takes them: up from the window's start plus
        the terminals' acquisition (from the start if it was up when the plan began),
        as :meth:`laser_up` has it."""
        for e, windows in enumerate(self._lasers.values()):
            for w in windows:
                ready_t_s = w.start_t_s if w.acquired_at_start else w.start_t_s + self.pat_s
                yield LinkWindow(e, ready_t_s, w.stop_t_s, w.delay_s)

    def distances(self, source: str, t_s: float) -> Tree:
        """Dijkstra from ``source`` over the laser links up at ``t_s``: satellite ->
        (cost in seconds, previous satellite). Shared with later callers until the
        links change: do not modify it."""
        return self.laser_graph(t_s).tree(source, t_s)

    @staticmethod
    def _walk(dist: Tree, node: str) -> tuple[str, ...]:
        return walk(dist, node)

    def path(self, src: str, dst: str, t_s: float) -> tuple[str, ...] | None:
        """The shortest laser path from ``src`` to ``dst`` at ``t_s`` (both ends included)."""
        if src == dst:
            return (src,)
        dist = self.distances(dst, t_s)  # links are symmetric: walk back from the source
        if src not in dist:
            return None
        return self._walk(dist, src)

    def next_hop(self, src: str, dst: str, t_s: float) -> str | None:
        p = self.path(src, dst, t_s)
        return p[1] if p is not None and len(p) > 1 else None

    # -- routes ----------------------------------------------------------------------------
    def uplink_route(self, target: str | None, t_s: float) -> UplinkRoute | None:
        """How a message for ``target`` (None: any satellite) leaves the ground now."""
        if target is not None and target not in self.nodes:
            raise ConfigError(
                "routing", "target", f"no satellite named {target!r} in {self.scenario.name}"
            )
        usable = self.usable_passes(t_s)
        if not usable:
            return None
        if target is None:
            sat = max(usable, key=lambda s: (usable[s].los_t_s, -self.nodes[s]))
            return UplinkRoute(usable[sat].station, (sat,), usable[sat].los_t_s)
        if target in usable:
            return UplinkRoute(usable[target].station, (target,), usable[target].los_t_s)
        dist = self.distances(target, t_s)
        reachable = [s for s in usable if s in dist]
        if not reachable:
            return None
        first = min(reachable, key=lambda s: (dist[s][0], -usable[s].los_t_s))
        p = usable[first]
        return UplinkRoute(p.station, self._walk(dist, first), p.los_t_s, dist[first][0])

    def uplink_routes(self, targets: Iterable[str], t_s: float) -> dict[str, UplinkRoute]:
        """The routes up to each of ``targets`` that can be reached at ``t_s``: straight
        up through its own usable pass, or relayed from the usable satellite nearest to
        it over laser links (one search from all the usable satellites at once, however
        many targets). Kept for the last instant and targets asked: do not modify it."""
        usable = self.usable_passes(t_s)
        targets = tuple(targets)
        key = (t_s, self.horizon_t_s)
        if self._routes_at is not None and self._routes_at[:2] == (key, targets):
            return self._routes_at[2]  # the ground asks twice per query (client, dispatch)
        out: dict[str, UplinkRoute] = {}
        self._routes_at = (key, targets, out)
        if not usable:
            return out
        # one search from every usable satellite at once: for each satellite, the
        # usable one nearest to it (ties: the pass that lasts longest, then the
        # scenario's order), as a tree from each of them and the best per target
        ranks = {first: (-p.los_t_s, self.nodes[first]) for first, p in usable.items()}
        found = self.laser_graph(t_s).nearest(ranks, t_s)
        for target in targets:
            if target in usable:
                p = usable[target]
                out[target] = UplinkRoute(p.station, (target,), p.los_t_s)
                continue
            near = found.get(target)
            if near is None:
                continue
            p = usable[near[2]]
            out[target] = UplinkRoute(p.station, near[3], p.los_t_s, near[0])
        return out

    def next_uplink_time(self, target: str | None, t_s: float) -> float | None:
        """The earliest instant >= ``t_s`` with an uplink route (None within the look-ahead)."""
        for t in self._uplink_instants(t_s):
            if self.uplink_route(target, t) is not None:
                return t
        return None

    def next_uplink_time_any(self, targets: Iterable[str], t_s: float) -> float | None:
        """The earliest instant >= ``t_s`` with an uplink route to one of ``targets``:
        the earliest :meth:`next_uplink_time` of them, with one search an instant
        tried instead of one per target and instant."""
        targets = tuple(targets)
        for t in self._uplink_instants(t_s):
            if self.uplink_routes(targets, t):
                return t
        return None

    def _uplink_instants(self, t_s: float) -> list[float]:
        """When a satellite is next reachable from the ground, from ``t_s``: the
        instants at which an uplink route may begin, each once (many satellites are
        usable at the same instant, often now)."""
        return sorted(
            {t for t in (self.next_usable(s, t_s) for s in self.satellites) if t is not None}
        )

    def downlink_route(self, src: str, t_s: float) -> DownlinkRoute | None:
        """The earliest-arrival route from ``src`` to the ground (see the module doc)."""
        here = self.usable_pass(src, t_s, downlink=True)
        if here is not None:  # straight down now: nothing over laser links arrives sooner
            return DownlinkRoute((src,), t_s, here.station)
        dist = self.distances(src, t_s)
        best: tuple[float, float, str] | None = None  # (contact t_s, cost s, satellite)
        for sat, (cost_s, _) in dist.items():
            if best is not None and t_s + cost_s > best[0]:
                continue  # it cannot reach the ground before the best: not asked
            contact_t_s = self.next_usable(sat, t_s + cost_s, downlink=True)
            if contact_t_s is not None and (best is None or (contact_t_s, cost_s) < best[:2]):
                best = (contact_t_s, cost_s, sat)
        if best is None:
            return None
        contact_t_s, _, sat = best
        path = tuple(reversed(self._walk(dist, sat)))
        p = self.usable_pass(sat, contact_t_s, downlink=True)
        return DownlinkRoute(path, contact_t_s, p.station if p is not None else "")


def spread_rank(
    contacts: ContactState, route: UplinkRoute, load: int
) -> tuple[int, float, float, int]:
    """How a query for "any satellite" ranks a satellite it can reach by ``route``,
    lowest first: the fewest queries in flight (``load``), then straight up before
    relayed (the shorter laser path first), then the pass that lasts longest, then
    the scenario's order. At equal load this is :meth:`ContactState.uplink_route`'s
    rule for "any satellite", so a lightly loaded run chooses as that rule does."""
    return (load, route.relay_s, -route.los_t_s, contacts.nodes[route.target])


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


# -- which station tracks a satellite ----------------------------------------------------------


class StationSwitch:
    """Which station tracks one satellite, at any instant: the one object that decides
    it (its uplink, its downlink, the trace and the captures all ask here, or read the
    answer the RF link recorded in the unit's conditions). A station keeps the satellite
    until its pass ends; then the visible station whose pass lasts longest takes it."""

    def __init__(self, contacts: ContactState, satellite: str) -> None:
        self.contacts = contacts
        self.satellite = satellite
        self._current: _Pass | None = None

    def station_at(self, t_s: float) -> str | None:
        cur = self._current
        if cur is not None and cur.aos_t_s <= t_s < cur.los_t_s:
            return cur.station
        passes = self.contacts.passes(self.satellite, t_s)
        if not passes:
            return None
        self._current = max(passes, key=lambda p: p.los_t_s)
        return self._current.station
