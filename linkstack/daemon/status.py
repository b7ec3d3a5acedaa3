"""What a daemon says about itself: structured logs, status lines, an HTTP endpoint.

Logs go to stderr, one record a line: a JSON object (``--log-format json``, the
default) with ``ts`` (the wall-clock time of the record, UTC), ``level``,
``daemon`` (the role), ``msg`` and the record's fields, or the same as
``key=value`` pairs (``--log-format text``). Every ``daemon.status_interval_s``
the daemon logs a ``status`` record: per satellite in view, the station, the
elevation, Eb/N0 and Doppler of both directions, frames per second and the frame
error rate of each link it runs, plus its queues.

The status lists at most :data:`STATUS_LIST_MAX` satellites or links of each kind (the
busy first) and counts them all: planned-2800 has about 1,000 satellites in view of its
20 stations, which would make every status record a megabyte; the line names at most
:data:`STATUS_LINE_MAX` and says how many more are in view.

The HTTP endpoint (``daemon.http_port``: ground +0, channel +1, sat +2, all +3;
aiohttp within :class:`~linkstack.daemon.http.HttpLimits`) answers ``GET /status``
(the same as the status record; ``GET /status/all`` lists every satellite and link),
``GET /counters`` (every counter) and ``GET /health``, in JSON; a daemon with the
ground also ``GET /pending``: each query not yet answered, where it is (the ground's
queue and uplinks, the trace's hops with those still open), and the live view
(:mod:`linkstack.view`: ``GET /view``). ``GET /metrics`` is the
same in Prometheus's text format (:mod:`linkstack.daemon.metrics`).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aiohttp import web

from linkstack.daemon.http import HttpServer
from linkstack.runtime.daemon_settings import HttpLimits

log = logging.getLogger("linkstack.daemon")

STATUS_LIST_MAX = 24  # satellites or links in each list of a status record
STATUS_LINE_MAX = 12  # satellites named on a status line

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _plain(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    return str(obj)


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "daemon": self.role,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key != "fields" and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(_plain(out), separators=(",", ":"))


class TextFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = json.loads(super().format(record))
        parts = [doc.pop("ts"), doc.pop("level").upper(), doc.pop("daemon"), repr(doc.pop("msg"))]
        doc.pop("logger", None)
        if "line" in doc:  # the status: people read the summary; the whole is in JSON logs
            return " ".join([*parts, doc["line"]])
        for key, value in doc.items():
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            parts.append(f"{key}={text}")
        return " ".join(parts)


def setup_logging(role: str, level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter(role) if fmt == "text" else JsonFormatter(role))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("numba", "matplotlib", "urllib3", "httpx", "filelock", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _link_summary(view: dict[str, Any]) -> str:
    """One satellite's link as people read it: where, how high, how strong, Doppler."""
    name = view.get("satellite", "?")
    if not view.get("aos"):
        return f"{name} LOS"
    text = f"{name} AOS {view.get('station', '?')}"
    if (el := view.get("elevation_deg")) is not None:
        text += f" el {el:.1f}deg"
    up, down = view.get("ebn0_up_db"), view.get("ebn0_down_db")
    if up is not None and down is not None:
        text += f" Eb/N0 {up:.1f}/{down:.1f} dB"
    fu, fd = view.get("doppler_up_hz"), view.get("doppler_down_hz")
    if fu is not None and fd is not None:
        text += f" Doppler {fu / 1e3:+.1f}/{fd / 1e3:+.1f} kHz"
    if (rate := view.get("tm_frames_per_s")) is not None:
        text += f" TM {rate:.1f} fr/s"
    fer = view.get("tm_frame_error_rate", view.get("uplink_frame_error_rate"))
    if fer is not None:
        text += f" FER {fer:.3g}"
    return text


def status_line(doc: dict[str, Any]) -> str:
    """The status document as one line: AOS/LOS, elevation, Eb/N0 (up/down), Doppler
    (up/down), frames per second and frame error rate of each satellite in view, then
    the queue. The ground's view of a link is preferred (it has the TM rates), then
    the satellites', then the channel's."""
    views: list[dict[str, Any]] = []
    count = 0
    for part in ("ground", "satellites", "channel"):
        section = doc.get(part)
        if isinstance(section, dict):
            views = section.get("links" if part == "ground" else part, None) or []
            if part == "channel":
                views = section.get("in_view") or []
            count = section.get("in_view_count", 0)
            if views:
                break
    utc = doc.get("utc", "")
    in_view = [_link_summary(v) for v in views if isinstance(v, dict) and v.get("aos")]
    more = max(count, len(in_view)) - min(len(in_view), STATUS_LINE_MAX)
    text = f"{utc} " + ("; ".join(in_view[:STATUS_LINE_MAX]) if in_view else "no satellite in view")
    if more > 0:
        text += f"; {more} more in view"
    app = doc.get("app")
    if isinstance(app, dict):
        q = app.get("queue", {})  # rows per state: each query is in one state at a time
        waiting = q.get("received", 0) + q.get("submitted", 0)
        text += (
            f"; queries: {waiting} waiting, {q.get('answered', 0)} to publish, "
            f"{q.get('published', 0)} published; mqtt {app.get('mqtt', '-')}"
        )
    return text


def event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, msg, extra={"fields": fields})


# -- HTTP ---------------------------------------------------------------------------------------

Route = Callable[[], "dict[str, Any] | Body"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Body(NamedTuple):
    """A reply that is not JSON: its octets and their content type."""

    data: bytes
    content_type: str


class StatusServer:
    """The daemon's HTTP endpoint (:class:`~linkstack.daemon.http.HttpServer`, with
    its limits): ``routes`` answer GET and HEAD in JSON (or a :class:`Body`);
    ``handlers`` (the view's page and event stream) answer for themselves."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Route],
        handlers: dict[str, Handler] | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.routes = routes
        self.http = HttpServer(host, port, limits)
        self.paths = sorted({*routes, *(handlers or {})})
        router = self.http.app.router
        for path, route in routes.items():
            answer = self._json(route)
            router.add_get(path, answer)
            if path != "/":  # /status/ is /status, as before
                router.add_get(path + "/", answer)
        for path, handler in (handlers or {}).items():
            router.add_get(path, handler)
        self.http.app.middlewares.append(self._not_found)

    @property
    def port(self) -> int:
        return self.http.port

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    @staticmethod
    def _json(route: Route) -> Handler:
        async def answer(request: web.Request) -> web.StreamResponse:
            try:
                body = route()
            except Exception as exc:  # a route's fault must not take the daemon down
                log.exception("http %s", request.path)
                return json_response({"error": str(exc)}, status=500)
            if isinstance(body, Body):
                response = web.Response(body=body.data)
                response.headers["Content-Type"] = body.content_type  # charset and all
                return response
            return json_response(body)

        return answer

    @web.middleware
    async def _not_found(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A 404 or 405 in JSON that lists the paths there are."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return json_response({"error": f"no {request.path}", "paths": self.paths}, 404)
        except web.HTTPMethodNotAllowed:
            return json_response({"error": f"{request.method} not allowed"}, 405)


def json_response(body: Any, status: int = 200) -> web.Response:
    data = json.dumps(_plain(body), indent=1) + "\n"
    return web.Response(text=data, status=status, content_type="application/json")
