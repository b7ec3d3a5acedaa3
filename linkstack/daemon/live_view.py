"""The ground daemon's live view: a page (``GET /view``) that draws the constellation
on a world map and follows it with server-sent events (``GET /view/events``).

The page and its script, style and map outlines ship in the package
(``linkstack/daemon/view_assets/``): nothing is fetched from the internet. What it
draws comes from the daemon's own state through public methods: the sky
(:class:`linkstack.runtime.sky.Sky`), the contact plan (who is in view, which laser
links carry data), :class:`~linkstack.daemon.parts.Looks` (elevation, Eb/N0,
Doppler), the ground's :meth:`~linkstack.daemon.ground.GroundApp.pending` and its
queue's answered timelines (the round trips).

Updates: one ``meta`` event when a page connects (the names and stations), then a
``snapshot`` event every :data:`SNAPSHOT_EVERY_S` (more on big constellations):
positions as parallel arrays rounded to 0.01 deg, the RF and laser links up, the
queries in flight with their current leg, and the round trips answered so far. A
snapshot is made once an interval however many pages watch, and not at all when
none does.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from linkstack.daemon.parts import Looks
from linkstack.daemon.status import Handler
from linkstack.runtime.site import Site
from linkstack.runtime.sky import Sky

if TYPE_CHECKING:
    from linkstack.daemon.ground import GroundApp

SNAPSHOT_EVERY_S = 1.0
BIG_CONSTELLATION = 500  # satellites: past this, a snapshot every BIG_SNAPSHOT_EVERY_S
BIG_SNAPSHOT_EVERY_S = 3.0
SLICE = 100  # satellites looked at between two lets-go of the loop (10x as many laser pairs)
TRACKS_MAX = 32  # ground tracks drawn (the satellites in view first)
ROUND_TRIPS_KEPT = 5000  # the distribution's most recent round trips
RECENT_KEPT = 20  # queries answered lately, listed on the page
IN_FLIGHT_LISTED = 200  # queries in flight listed (all are counted)
# the queue's answer instant and the timeline's may differ a little: each read goes back
# this far before the last answer counted, and the ids counted since are skipped
ANSWER_OVERLAP_S = 5.0
ASSETS = ("view.html", "view.js", "view.css", "land.json")
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
}


def asset(name: str) -> bytes:
    """One of the page's files, from the installed package."""
    return resources.files("linkstack.daemon").joinpath("view_assets", name).read_bytes()


def asset_handlers(extra: dict[str, Handler] | None = None) -> dict[str, Handler]:
    """``/view`` (the page) and ``/view/assets/{name}`` (its files)."""

    async def page(_: web.Request) -> web.StreamResponse:
        return web.Response(body=asset("view.html"), content_type="text/html")

    async def file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        suffix = name[name.rfind(".") :]
        return web.Response(body=asset(name), content_type=CONTENT_TYPES[suffix])

    return {"/view": page, "/view/assets/{name}": file, **(extra or {})}


def leg_of(where: dict[str, Any]) -> str:
    """A query's current leg as people read it, from mission control's whereabouts."""
    if where.get("queued"):
        return "queued on the ground"
    hops = where.get("hops") or []
    if hops:
        last = hops[-1]
        if last.get("end_t_s") is None:
            return f"{last.get('kind')} {last.get('src')} -> {last.get('dst')}"
        dst = str(last.get("dst", ""))
        if last.get("message") == "query" and dst.startswith("sat:"):
            return f"on board {dst[4:]}"
        return f"after {last.get('kind')} to {dst}"
    if where.get("transfers"):
        return "uplink"
    return "submitted"


class LiveView:
    """Snapshots of a running daemon's sky, links and queries for the page."""

    def __init__(self, site: Site, looks: Looks, app: GroundApp | None) -> None:
        self.site = site
        self.looks = looks
        self.app = app
        self.sky = Sky(site.scenario)
        n = len(self.sky.names)
        self.every_s = BIG_SNAPSHOT_EVERY_S if n > BIG_CONSTELLATION else SNAPSHOT_EVERY_S
        self.station_index = {name: i for i, (name, *_) in enumerate(self.sky.meta()["stations"])}
        self.round_trips_s: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)
        # the ids already counted, of the last ANSWER_OVERLAP_S only (what the next read
        # of the queue sees again): bounded however long the daemon runs
        self._counted: deque[tuple[float, str]] = deque()
        self._counted_ids: set[str] = set()
        self._last_answer_t_s = app.started_t_s if app is not None else 0.0
        self._snapshot: tuple[float, bytes] | None = None
        self._making = asyncio.Lock()
        self.watchers = 0

    # -- the data ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            **self.sky.meta(),
            "mode": "live",
            "every_s": self.every_s,
            "power": bool(self.site.powered()),
        }

    async def snapshot(self) -> dict[str, Any]:
        """The sky, links and queries now. Made in slices of :data:`SLICE` satellites
        or laser pairs with the loop let go between them: on planned-2800 the whole is
        ~100 ms of work (948 looks, 10,708 laser pairs), which in one go would hold up
        every link's units that long."""
        now = self.site.clock.now()
        contacts = self.site.contacts
        names = self.sky.names
        index = self.sky.index
        in_view = [name for name in names if contacts.in_view(name, now)]
        rf = []
        for k, name in enumerate(in_view):
            if k % SLICE == SLICE - 1:
                await asyncio.sleep(0)
            look = self.looks.at(name, now)
            if not look.get("aos"):
                continue
            rf.append(
                [
                    index[name],
                    self.station_index.get(look["station"], -1),
                    look["elevation_deg"],
                    look["ebn0_up_db"],
                    look["ebn0_down_db"],
                    look["doppler_up_hz"],
                    look["doppler_down_hz"],
                    look["range_km"],
                ]
            )
        laser = []
        for k, (a, b) in enumerate(contacts.laser_pairs):
            if k % (10 * SLICE) == 10 * SLICE - 1:
                await asyncio.sleep(0)
            if contacts.laser_up(a, b, now) is not None:
                laser.append([index[a], index[b]])
        seen = set(in_view)
        tracked = (in_view + [n for n in names if n not in seen])[:TRACKS_MAX]
        out: dict[str, Any] = {
            "t_s": round(now, 3),
            "utc": (self.sky.scenario.epoch + timedelta(seconds=now)).isoformat(timespec="seconds"),
            **self.sky.positions(now, self.site.powered()),
            "rf": rf,
            "laser": laser,
            "tracks": self.sky.tracks(now, tracked),
        }
        out.update(self._queries())
        return out

    def _queries(self) -> dict[str, Any]:
        app = self.app
        if app is None:
            return {"queries": [], "in_flight_count": 0, "round_trips_s": [], "recent": []}
        pending = app.pending()["pending"]
        in_flight = [
            {
                "id": p["id"],
                "age_s": p["age_s"],
                "leg": leg_of(p),
                "on": p.get("in_flight_on") or [],
            }
            for p in pending[:IN_FLIGHT_LISTED]
        ]
        since_t_s = max(app.started_t_s, self._last_answer_t_s - ANSWER_OVERLAP_S)
        for t in app.queue.timelines_answered_since(since_t_s):
            qid = str(t.get("query_id"))
            end, start = t.get("answer_on_ground_t_s"), t.get("submit_t_s")
            if qid in self._counted_ids or end is None or start is None:
                continue
            self._counted.append((float(end), qid))
            self._counted_ids.add(qid)
            self._last_answer_t_s = max(self._last_answer_t_s, float(end))
            total_s = round(float(end) - float(start), 3)
            self.round_trips_s.append(total_s)
            self.recent.appendleft({"id": qid, "total_s": total_s, "satellite": t.get("satellite")})
        while self._counted and self._counted[0][0] < since_t_s - ANSWER_OVERLAP_S:
            self._counted_ids.discard(self._counted.popleft()[1])
        return {
            "queries": in_flight,
            "in_flight_count": len(pending),
            "round_trips_s": list(self.round_trips_s),
            "recent": list(self.recent),
        }

    async def _snapshot_bytes(self) -> bytes:
        """The snapshot of this interval (made by the first page to ask for it; the
        others wait for it)."""
        async with self._making:
            now = self.site.clock.now()
            if self._snapshot is None or now - self._snapshot[0] >= self.every_s * 0.5:
                body = json.dumps(await self.snapshot(), separators=(",", ":"))
                self._snapshot = (now, body.encode())
            return self._snapshot[1]

    # -- HTTP ----------------------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return asset_handlers(
            {"/view/events": self._events, "/view/snapshot": self._snapshot_route}
        )

    async def _snapshot_route(self, _: web.Request) -> web.StreamResponse:
        body = {"meta": self.meta(), "snapshot": json.loads(await self._snapshot_bytes())}
        return web.json_response(body)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        return await stream_events(request, self.meta, self._snapshot_bytes, self.every_s, self)


async def stream_events(
    request: web.Request,
    meta: Callable[[], dict[str, Any]],
    snapshot: Callable[[], Awaitable[bytes]],
    every_s: float,
    counter: LiveView | None = None,
) -> web.StreamResponse:
    """Server-sent events: ``meta`` once, then ``snapshot`` every ``every_s`` until the
    page goes away or the server closes."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    if counter is not None:
        counter.watchers += 1
    try:
        await response.write(b"event: meta\ndata: " + json.dumps(meta()).encode() + b"\n\n")
        while True:
            await response.write(b"event: snapshot\ndata: " + await snapshot() + b"\n\n")
            await asyncio.sleep(every_s)
    except ConnectionError:  # the page went away
        pass
    finally:
        if counter is not None:
            counter.watchers -= 1
    return response
