"""The ``[daemon]`` (with ``[daemon.http]``), ``[mqtt]`` and ``[capture]`` tables of a
scenario file: where the daemons listen (port blocks that fit and do not overlap), the
limits of their HTTP endpoint (``linkstack/daemon/http.py``), the broker they talk to
(``linkstack/daemon/mqtt.py``), and what they capture; their settings and how they are
read and checked. The rest of the file: :mod:`linkstack.runtime.scenario`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from linkstack.runtime.interface_settings import DEFAULT_SAT_PORTS, end_count
from linkstack.runtime.site import LAYERS
from linkstack.tomlcheck import Table


@dataclass(frozen=True)
class CaptureSettings:
    enabled: bool = True
    dir: str = ""  # "" -> daemon.out_dir
    layers: tuple[str, ...] | None = None  # None: every layer
    time: str = "wall"  # daemons' time stamps: "wall" (as their logs) or "scenario"


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    password_env: str = ""  # read the password from this environment variable
    password_file: str = ""  # or from the first line of this file (mode 600)
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    prefix: str = "linkstack"
    client_id: str = ""  # "" -> linkstack-<ground name>
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 15.0


KIB = 1024


@dataclass(frozen=True)
class HttpLimits:
    """``[daemon.http]``: what one client may ask of a daemon's HTTP endpoint
    (:class:`linkstack.daemon.http.HttpServer` applies them). The defaults fit the
    daemons' few GET routes and the view's event stream."""

    max_line_bytes: int = 8 * KIB  # the request line (method, path, version)
    max_field_bytes: int = 8 * KIB  # one header line
    max_headers: int = 64  # header lines in one request
    max_body_bytes: int = 64 * KIB  # a request body (no route takes one)
    max_connections: int = 128  # open at once, event streams included
    idle_timeout_s: float = 5.0  # to send a whole request, from the connection's opening


# What [daemon.http] accepts. The floors keep the endpoint usable (a browser's
# request line and User-Agent, its dozen headers); the ceilings keep one client from
# holding much memory, and the connections within a process's usual descriptors (the
# daemon's loop keeps select() and its fine timers while all its sockets, these
# connections among them, stay under 1,000: linkstack/daemon/run.py).
HTTP_BYTES_RANGE = (256, 64 * KIB)
HTTP_HEADERS_RANGE = (8, 1024)
HTTP_BODY_RANGE = (1 * KIB, 1_000_000)  # a ceiling that reads well in the error
HTTP_CONNECTIONS_RANGE = (1, 4096)
HTTP_IDLE_TIMEOUT_RANGE_S = (0.1, 600.0)


@dataclass(frozen=True)
class DaemonSettings:
    host: str = "127.0.0.1"
    channel_port: int = 47100  # the channel's ingress: one UDP port per end (ground, sats)
    node_port: int = 47400  # the ends' ingress (deliveries): one UDP port per end
    sat_ports: int = DEFAULT_SAT_PORTS  # the satellites' ends at most: blocks of satellites
    http_port: int = 47080  # ground +0, channel +1, sat +2, all +3; 0: none
    status_interval_s: float = 5.0
    check_source: bool = True  # take a link's units only from its peer's port
    out_dir: str = "out/daemon"
    # each run's report (JSON, PNG, HTML) goes to a new folder under this one
    runs_dir: str = "runs"
    report_charts: bool = True  # the PNG and HTML beside report.json (matplotlib: ~1 s)
    http: HttpLimits = HttpLimits()  # [daemon.http]: the HTTP endpoint's limits


def read_capture(t: Table) -> CaptureSettings:
    base = CaptureSettings()
    enabled = t.boolean("enabled", base.enabled)
    directory = t.text("dir", base.dir)
    layers = t.strings("layers", base.layers, "a list of layer names")
    time_base = t.choice("time", base.time, ("wall", "scenario"), "time base")
    for x in layers or ():
        if x not in LAYERS:
            raise t.error("layers", f"unknown layer {x!r}; known: {', '.join(sorted(LAYERS))}")
    t.done()
    return replace(base, enabled=enabled, dir=directory, layers=layers, time=time_base)


def read_mqtt(t: Table) -> MqttSettings:
    base = MqttSettings()
    out = replace(
        base,
        enabled=t.boolean("enabled", base.enabled),
        host=t.text("host", base.host, empty=False),
        port=t.integer("port", base.port, 1, 65535),
        username=t.text("username", base.username),
        password=t.text("password", base.password),
        password_env=t.text("password_env", base.password_env),
        password_file=t.text("password_file", base.password_file),
        tls=t.boolean("tls", base.tls),
        ca_file=t.text("ca_file", base.ca_file),
        cert_file=t.text("cert_file", base.cert_file),
        key_file=t.text("key_file", base.key_file),
        tls_insecure=t.boolean("tls_insecure", base.tls_insecure),
        prefix=t.text("prefix", base.prefix, empty=False),
        client_id=t.text("client_id", base.client_id),
        keepalive_s=t.integer("keepalive_s", base.keepalive_s, 5, 3600),
        reconnect_min_s=t.number("reconnect_min_s", base.reconnect_min_s, 0.0, 60.0, lo_open=True),
        reconnect_max_s=t.number(
            "reconnect_max_s", base.reconnect_max_s, 0.0, 3600.0, lo_open=True
        ),
    )
    if any(c in out.prefix for c in "+#"):
        raise t.error("prefix", f"must not contain MQTT wildcards '+' or '#', got {out.prefix!r}")
    if out.reconnect_max_s < out.reconnect_min_s:
        raise t.error("reconnect_max_s", "must be at least reconnect_min_s")
    if (out.password or out.password_env or out.password_file) and not out.username:
        raise t.error("username", "a password needs a username")
    if out.password_file and (out.password or out.password_env):
        raise t.error("password_file", "give one of password, password_env, password_file")
    for key in ("ca_file", "cert_file", "key_file"):
        if getattr(out, key) and not out.tls:
            raise t.error(key, "is used only with tls = true")
    if out.key_file and not out.cert_file:
        raise t.error("key_file", "needs cert_file")
    t.done()
    return out


def read_http_limits(t: Table) -> HttpLimits:
    """``[daemon.http]``: each limit within its range, the error naming its key."""
    base = HttpLimits()
    out = HttpLimits(
        max_line_bytes=t.integer("max_line_bytes", base.max_line_bytes, *HTTP_BYTES_RANGE),
        max_field_bytes=t.integer("max_field_bytes", base.max_field_bytes, *HTTP_BYTES_RANGE),
        max_headers=t.integer("max_headers", base.max_headers, *HTTP_HEADERS_RANGE),
        max_body_bytes=t.integer("max_body_bytes", base.max_body_bytes, *HTTP_BODY_RANGE),
        max_connections=t.integer("max_connections", base.max_connections, *HTTP_CONNECTIONS_RANGE),
        idle_timeout_s=t.number("idle_timeout_s", base.idle_timeout_s, *HTTP_IDLE_TIMEOUT_RANGE_S),
    )
    t.done()
    return out


def read_daemon(t: Table, satellites: int) -> DaemonSettings:
    base = DaemonSettings()
    out = replace(
        base,
        host=t.text("host", base.host, empty=False),
        channel_port=t.integer("channel_port", base.channel_port, 1024, 65535),
        node_port=t.integer("node_port", base.node_port, 1024, 65535),
        sat_ports=t.integer("sat_ports", base.sat_ports, 1, 4096),
        http_port=t.integer("http_port", base.http_port, 0, 65535),
        status_interval_s=t.number("status_interval_s", base.status_interval_s, 0.1, 3600.0),
        check_source=t.boolean("check_source", base.check_source),
        out_dir=t.text("out_dir", base.out_dir, empty=False),
        runs_dir=t.text("runs_dir", base.runs_dir, empty=False),
        report_charts=t.boolean("report_charts", base.report_charts),
        http=read_http_limits(t.table("http")),
    )
    t.done()
    ends = end_count(satellites, out.sat_ports)
    blocks = {
        "channel_port": (out.channel_port, out.channel_port + ends - 1),
        "node_port": (out.node_port, out.node_port + ends - 1),
    }
    if out.http_port:
        blocks["http_port"] = (out.http_port, out.http_port + 3)
    for key, (lo, hi) in blocks.items():
        if hi > 65535:
            raise t.error(key, f"the {ends} ends need ports {lo}..{hi}, past 65535")
    items = list(blocks.items())
    for i, (ka, (alo, ahi)) in enumerate(items):
        for kb, (blo, bhi) in items[i + 1 :]:
            if alo <= bhi and blo <= ahi:
                raise t.error(
                    kb,
                    f"ports {blo}..{bhi} overlap {ka}'s {alo}..{ahi} "
                    f"({ends} ends: the ground and {ends - 1} of satellites, "
                    "one port per end in each block)",
                )
    return out
