"""``linkstack view REPORT.json``: a finished run in the browser, on the live view's
page (:mod:`linkstack.daemon.live_view`), served from this machine until Ctrl-C.

- a run's ``report.json`` (``linkstack demo``, a daemon's run directory): the
  scenario's constellation and stations at the instant of the last answer, the
  ground tracks of the satellites that computed, every query in the answered list
  and the round-trip distribution;
- a sweep's ``sweep.json``: the base scenario at its epoch, each variant and seed as
  a line (its median round trip) and every round trip of the sweep in the
  distribution.

The scenario is read from the report's ``meta.source`` (a file), else by its name
(a shipped scenario); a report whose scenario cannot be found is drawn without a
constellation, and says so. The page is the same as the daemon's; its event stream
sends one snapshot, and the page says "finished run".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from aiohttp import web

from linkstack.daemon.http import HttpServer
from linkstack.daemon.live_view import TRACKS_MAX, asset_handlers, stream_events
from linkstack.errors import DecodeError, LinkstackError
from linkstack.runtime import scenario as scenarios
from linkstack.runtime.sky import Sky

SWEEP_KIND = "linkstack-sweep"
KEEP_OPEN_S = 3600.0  # the one snapshot, again this often (the stream stays open)


def read_report(path: Path) -> dict[str, Any]:
    """The report at ``path``: a JSON object, or a DecodeError naming what is wrong."""
    where = str(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise DecodeError(where, "file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DecodeError(where, "file", f"cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(where, "json", f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, dict):
        raise DecodeError(where, "document", "a JSON object is needed (a report)")
    if doc.get("kind") == SWEEP_KIND:
        if not isinstance(doc.get("rows"), list):
            raise DecodeError(where, "rows", "a sweep report needs its rows")
    elif not isinstance(doc.get("queries"), list):
        raise DecodeError(where, "queries", "neither a run's report nor a sweep's (sweep.json)")
    return doc


def _sky(name: object, source: object) -> Sky | None:
    """The scenario's sky, from its file or its shipped name; None if neither loads."""
    for ref in (source, name):
        if not isinstance(ref, str) or not ref:
            continue
        try:
            return Sky(scenarios.load(ref.removesuffix(" (shipped)")).scenario)
        except LinkstackError:
            continue
    return None


def _number(v: object) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def page_data(doc: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, snapshot) of the page for a report document."""
    sweep = doc.get("kind") == SWEEP_KIND
    meta_in: dict[str, Any] = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
    if sweep:
        base = doc.get("base")
        sky = _sky(base if isinstance(base, str) else None, None)
    else:
        sky = _sky(meta_in.get("scenario"), meta_in.get("source"))
    rows: list[dict[str, Any]] = []
    trips: list[float] = []
    t_s = 0.0
    computing: list[str] = []
    if sweep:
        for r in doc["rows"]:
            if not isinstance(r, dict):
                continue
            listed = r.get("round_trips_s")
            own = [float(x) for x in listed if _number(x)] if isinstance(listed, list) else []
            trips += own
            if own:
                name = f"{r.get('name', r.get('variant', '?'))} seed {r.get('seed', '-')}"
                rows.append(
                    {
                        "id": name,
                        "total_s": statistics.median(own),
                        "satellite": f"median of {len(own)}",
                    }
                )
    else:
        for q in doc["queries"]:
            if not isinstance(q, dict):
                continue
            total, end = q.get("total_s"), q.get("answer_on_ground_t_s")
            if _number(total):
                trips.append(float(total))
                rows.append(
                    {
                        "id": str(q.get("query_id", "?")),
                        "total_s": total,
                        "satellite": str(q.get("satellite") or ""),
                    }
                )
            if _number(end):
                t_s = max(t_s, float(end))
            if isinstance(q.get("satellite"), str) and q["satellite"] not in computing:
                computing.append(q["satellite"])
    meta: dict[str, Any] = {
        "scenario": (sky.scenario.name if sky else str(meta_in.get("scenario", "?"))),
        "satellites": list(sky.names) if sky else [],
        "stations": sky.meta()["stations"] if sky else [],
        "mode": "report",
        "source": source + ("" if sky else " (scenario not found: no constellation)"),
        "every_s": KEEP_OPEN_S,
        "power": False,
    }
    snapshot: dict[str, Any] = {
        "t_s": t_s,
        "utc": "",
        "lat": [],
        "lon": [],
        "alt_km": [],
        "fp_deg": [],
        "shadow": [],
        "rf": [],
        "laser": [],
        "tracks": [],
        "queries": [],
        "in_flight_count": 0,
        "round_trips_s": trips,
        "recent": rows,
    }
    if sky is not None:
        snapshot.update(sky.positions(t_s))
        snapshot["tracks"] = sky.tracks(t_s, computing[:TRACKS_MAX])
        epoch = sky.scenario.epoch.timestamp() + t_s
        snapshot["utc"] = _utc(epoch)
    return meta, snapshot


def _utc(unix_s: float) -> str:
    """ISO 8601 UTC, or "" for an instant out of the calendar's range."""
    try:
        return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return ""


def app_handlers(meta: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(snapshot, separators=(",", ":")).encode()

    async def snapshot_bytes() -> bytes:
        return body

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_events(request, lambda: meta, snapshot_bytes, KEEP_OPEN_S)

    async def root(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/view")  # the address people type (a daemon's / is its status)

    return asset_handlers({"/view/events": events, "/": root})


async def serve(meta: dict[str, Any], snapshot: dict[str, Any], host: str, port: int) -> None:
    server = HttpServer(host, port)
    for path, handler in app_handlers(meta, snapshot).items():
        server.app.router.add_get(path, handler)
    await server.start()
    print(f"linkstack view: http://{host}:{server.port}/view  (Ctrl-C to stop)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def _cmd(args: argparse.Namespace) -> int:
    doc = read_report(args.report)
    meta, snapshot = page_data(doc, args.report.name)
    try:
        asyncio.run(serve(meta, snapshot, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"linkstack view: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return 0


def add_view_parser(sub: Any) -> None:
    p = sub.add_parser(
        "view",
        help="show a finished run's report (or a sweep's) in the browser",
        description="Serve a finished run's report.json (or a sweep's sweep.json) on the live "
        "view's page, from this machine until Ctrl-C; open the address it prints.",
    )
    p.add_argument("report", type=Path, help="report.json of a run, or sweep.json of a sweep")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    p.add_argument(
        "--port", type=int, default=47090, help="port (default: %(default)s; 0: any free one)"
    )
    p.set_defaults(func=_cmd)
