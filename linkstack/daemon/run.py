"""``linkstack daemon``: run one role of a scenario as a long-lived process.

Start-up: read and check the scenario (an error names the key and exits 2), map
wall-clock time onto scenario time, load the model (sat, all), open every UDP
port of the role and its HTTP endpoint (a port in use is an error that names
it), start the links and services, log ``ready``. Then it runs until SIGINT or
SIGTERM: it stops taking queries, says offline on MQTT, stops the links, closes
the capture (the pcap and its ``.nodes.json``), writes the run's report (ground,
all: ``report.json`` with the round trip's and each leg's percentiles,
``report.png``, ``report.html``) into a new folder of its own under
``daemon.runs_dir`` (:mod:`linkstack.daemon.run_dir`; its absolute path logged and
printed), logs ``stopped`` with its counters and exits 0.

Time: every daemon runs a :class:`linkstack.runtime.clock.WallClock` whose ``t_s`` is
seconds since the scenario epoch. By default the scenario's instant is the real
UTC time (``--start now``), so separately started daemons agree without being
told anything. ``--start`` picks another instant: ``+SECONDS`` after the
epoch or an ISO 8601 UTC instant, reached at the wall-clock instant ``--anchor``
(Unix seconds or ISO 8601; default: when the daemon starts). Daemons that must
share one emulated sky get the same ``--start`` and ``--anchor``.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkstack.capture.pcap import PcapCapture
from linkstack.daemon.endpoints import MqttUnits
from linkstack.daemon.live_view import LiveView
from linkstack.daemon.metrics import DaemonMetrics, Snapshot
from linkstack.daemon.mqtt import Topics, dumps
from linkstack.daemon.packet_log import PacketLog
from linkstack.daemon.parts import (
    ChannelPart,
    GroundPart,
    Looks,
    SatellitePart,
    keep_contacts_ahead,
    process_site,
)
from linkstack.daemon.run_dir import new_run_dir
from linkstack.daemon.status import (
    STATUS_LIST_MAX,
    Body,
    Route,
    StatusServer,
    event,
    setup_logging,
    status_line,
)
from linkstack.daemon.wire import PortPlan, Wire
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime.interface_settings import end_count
from linkstack.runtime.scenario import ScenarioFile
from linkstack.runtime.security import load_keys
from linkstack.runtime.site import Site
from linkstack.timebase import Clock
from payloads.backends import Backend

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import LinkSecurity
    from linkstack.ccsds.sdls import Keyring
    from linkstack.daemon.ground import GroundApp
    from linkstack.daemon.groundqueue import GroundQueue

ROLES = ("ground", "sat", "channel", "all")
ALARM_MQTT_EVERY_S = 1.0
HTTP_OFFSET = {"ground": 0, "channel": 1, "sat": 2, "all": 3}

log = logging.getLogger("linkstack.daemon")


@dataclass(frozen=True)
class Options:
    role: str
    names: tuple[str, ...] = ()  # sat: the satellites to run (none: all)
    start: str = "now"
    anchor: str | None = None
    out_dir: Path | None = None  # overrides daemon.out_dir
    runs_dir: Path | None = None  # overrides daemon.runs_dir
    queue: Path | None = None  # overrides ground.queue
    queue_recover: bool = False  # salvage a damaged queue file instead of refusing it
    http_port: int | None = None  # overrides the role's port; 0: none
    capture: bool = True
    log_level: str = "info"
    log_format: str = "json"


def parse_instant(text: str, what: str) -> float:
    """Unix seconds of ``text``: a number of seconds, or an ISO 8601 instant."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            "daemon", what, f"not Unix seconds nor an ISO 8601 instant: {text!r}"
        ) from None
    if dt.tzinfo is None:
        raise ConfigError("daemon", what, f"{text!r} needs a UTC offset (a trailing Z)")
    return dt.timestamp()


def scenario_time(epoch: datetime, start: str, anchor_unix_s: float) -> float:
    """``t_s`` (seconds since ``epoch``) at the wall-clock instant ``anchor_unix_s``
    (Unix seconds); ``start`` is ``--start``: "now", "+SECONDS" or an ISO 8601 instant."""
    start = start.strip()
    if start == "now":
        return anchor_unix_s - epoch.timestamp()
    if start.startswith("+"):
        try:
            return float(start[1:])
        except ValueError:
            raise ConfigError(
                "daemon", "start", f"+SECONDS after the epoch, got {start!r}"
            ) from None
    return parse_instant(start, "start") - epoch.timestamp()


def one_malloc_arena() -> bool:
    """Have every thread of this process allocate from one glibc malloc arena. By
    default each thread that allocates gets an arena of its own, which keeps what the
    thread freed: in a daemon each satellite's model thread, started at its first
    query, left 1-1.7 MB behind (the steps of an hour's soak). Before any worker
    thread starts; False where the C library has no ``mallopt`` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, 1))


M_ARENA_MAX = -8  # glibc's malloc.h


def main(settings: ScenarioFile, opts: Options) -> int:
    """Run a role until SIGINT/SIGTERM; the exit status."""
    if opts.role not in ROLES:
        raise ConfigError("daemon", "role", f"must be one of {', '.join(ROLES)}, got {opts.role!r}")
    setup_logging(opts.role, opts.log_level, opts.log_format)
    one_malloc_arena()
    scenario = settings.scenario
    for name in opts.names:
        if name not in scenario.satellite_names:
            raise ConfigError("daemon", "name", f"no satellite named {name!r} in {scenario.name}")
    if opts.names and opts.role != "sat":
        raise ConfigError("daemon", "name", "--name is for the sat role")
    anchor_unix_s = parse_instant(opts.anchor, "anchor") if opts.anchor else None
    # the scenario instant at the anchor; checked now, so that a bad --start fails early
    scenario_time(scenario.epoch, opts.start, anchor_unix_s or 0.0)
    # the queue first: a file that cannot be trusted, or that another ground daemon
    # holds, stops the start before anything else is done
    queue = open_queue(settings, opts) if opts.role in ("ground", "all") else None
    try:
        backend = None
        if opts.role in ("sat", "all"):
            backend = _load_backend(settings)
    except BaseException:
        if queue is not None:
            queue.close()
        raise
    daemon = Daemon(settings, opts, backend, anchor_unix_s, queue)
    # one socket per port of the plan at the most, a few more, and the HTTP endpoint's
    # connections ([daemon.http] max_connections): select() while they fit (they do
    # unless daemon.sat_ports is set past about 420, or max_connections past about 900)
    d = settings.daemon
    sockets = 2 * end_count(len(scenario.satellite_names), d.sat_ports) + 32
    sockets += d.http.max_connections  # [daemon.http]
    return clk.run(daemon.run, emulated=False, fine_timers=sockets < clk.FINE_TIMERS_MAX_FDS)


def queue_path(settings: ScenarioFile, opts: Options) -> Path:
    """The ground queue's file: ``--queue``, ``ground.queue``, or one in the out folder."""
    ground = settings.ground
    if opts.queue is not None:
        return opts.queue
    if ground.queue:
        return Path(ground.queue)
    return (opts.out_dir or settings.out_dir) / f"{ground.name}-queue.sqlite"


def open_queue(settings: ScenarioFile, opts: Options) -> GroundQueue:
    """Open (lock, check, and with ``--queue-recover`` salvage) the ground queue; a
    :class:`~linkstack.errors.ConfigError` says what is wrong with it and what to do."""
    from linkstack.daemon.groundqueue import GroundQueue  # noqa: PLC0415 - sqlite

    path = queue_path(settings, opts)
    queue = GroundQueue(path, recover=opts.queue_recover)
    rec = queue.recovery
    if rec is not None:
        event(
            "ground queue recovered",
            logging.WARNING,
            path=str(path),
            problem=rec.problem,
            kept=rec.kept,
            lost=rec.lost if rec.readable else None,
            lost_ids=list(rec.lost_ids),
            damaged_file=str(rec.original),
            summary=rec.summary(),
        )
    elif opts.queue_recover:
        event("ground queue sound: nothing to recover", path=str(path))
    event("ground queue", path=str(path), **queue.counts())
    return queue


def _load_backend(settings: ScenarioFile) -> Backend:
    from payloads.backends import GenerationParams, make_backend  # noqa: PLC0415

    spec = settings.emulation.backend
    try:
        backend = make_backend(spec)
    except ConfigError as exc:
        raise ConfigError(f"scenario {settings.source}", "model.backend", str(exc)) from None
    event("loading the model", backend=spec)
    load_s = backend.load()
    backend.generate("warm-up", GenerationParams(max_new_tokens=2))  # one-time costs, once
    event(
        "model loaded",
        backend=backend.name,
        model=backend.model,
        random_weights=backend.random_weights,
        inference_legs=settings.emulation.service.timing_source,  # modelled, or this host's
        load_s=round(load_s, 2),
    )
    return backend


class Daemon:
    def __init__(
        self,
        settings: ScenarioFile,
        opts: Options,
        backend: Backend | None,
        anchor_unix_s: float | None,
        queue: GroundQueue | None = None,
    ) -> None:
        self.settings = settings
        self.opts = opts
        self.backend = backend
        self.anchor_unix_s = anchor_unix_s
        self.out_dir = opts.out_dir or settings.out_dir
        self.runs_dir = opts.runs_dir or Path(settings.daemon.runs_dir)
        self.parts: list[ChannelPart | SatellitePart | GroundPart] = []
        self.ground: GroundPart | None = None
        self.app: GroundApp | None = None
        self.sink: PcapCapture | None = None
        self.queue = queue  # opened by main(); closed (and its lock given back) at the end
        self.wire: Wire | None = None
        self.wall_epoch: datetime | None = None  # set with the clock
        self.site: Site | None = None
        self._alarmed: dict[tuple[str, str], float] = {}  # SDLS alarms said on MQTT, when
        self._alarm_tasks: set[asyncio.Task[bool]] = set()

    def _clock(self) -> clk.WallClock:
        epoch = self.settings.scenario.epoch
        now_unix_s = time.time()  # the one wall-clock read: where scenario time starts
        anchor_unix_s = self.anchor_unix_s if self.anchor_unix_s is not None else now_unix_s
        t_s = scenario_time(epoch, self.opts.start, anchor_unix_s) + (now_unix_s - anchor_unix_s)
        # the wall-clock instant of scenario t_s = 0 (captures stamped in wall time)
        self.wall_epoch = datetime.fromtimestamp(now_unix_s - t_s, UTC)
        return clk.WallClock(epoch, start_t_s=t_s)

    async def run(self) -> int:
        settings, opts = self.settings, self.opts
        role = opts.role
        clock = self._clock()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if settings.capture.enabled and opts.capture:
            self.sink = self._open_capture()
        # Start-up makes objects that live as long as the daemon (hundreds of thousands
        # on planned-2800): the collector's passes over them while they are made would
        # find nothing to free. Back on once they are frozen out of its way (below).
        gc.disable()
        site = self.site = process_site(
            clock,
            settings.emulation,
            self.sink,
            keep_trace=role in ("ground", "all"),
            keys=self._sdls_keys(),
        )
        looks = Looks(site)
        d = settings.daemon
        plan = PortPlan.of(settings.scenario, d)
        wire = self.wire = Wire(d.host, clock)
        http: StatusServer | None = None
        status_task = plan_task = None
        try:
            await wire.open()
            if role in ("channel", "all"):
                self.parts.append(ChannelPart(site, wire, plan, looks, capture=role == "channel"))
            if role in ("sat", "all"):
                names = list(opts.names or settings.scenario.satellite_names)
                sat_log = PacketLog("sat", self._packet_log_path(self._sat_name()))
                self.parts.append(
                    SatellitePart(
                        site, wire, plan, looks, names, self.backend, settings.radio, sat_log
                    )
                )
            if role in ("ground", "all"):
                ground_log = PacketLog("ground", self._packet_log_path(settings.ground.name))
                topics = Topics(settings.mqtt.prefix, settings.ground.name)
                self.ground = GroundPart(
                    site, wire, plan, looks, settings.gateway, ground_log, topics.base
                )
                self.parts.append(self.ground)
                self._open_ground(clock)
            if site.guards is not None:
                site.guards.on_alarm = self._sdls_alarm
            for part in self.parts:
                await part.open()
            port = self._http_port()
            if port:
                view = LiveView(site, looks, self.app) if self.app is not None else None
                handlers = view.handlers() if view is not None else None
                http = StatusServer(
                    d.host, port, self._routes(clock, plan), handlers, limits=d.http
                )
                try:
                    await http.start()
                except OSError as exc:
                    raise ConfigError(
                        "daemon",
                        "http_port",
                        f"cannot serve HTTP on {d.host}:{port}: {exc.strerror or exc} "
                        "(give each daemon its own --http-port, or 0 for none)",
                    ) from None
            for part in self.parts:
                part.start()
            if self.app is not None:
                self.app.resume()
                self.app.start()
            status_task = loop.create_task(self._status_loop(clock, stop), name="status")
            plan_task = loop.create_task(keep_contacts_ahead(site), name="contact plan")
            # What start-up made (the scenario, the model, numpy's and torch's modules)
            # lives as long as the daemon: out of the collector's way, so that its full
            # passes, which would walk all of it, cost a millisecond, not tens.
            gc.collect()
            gc.freeze()
            gc.enable()
            event(
                "ready",
                role=role,
                scenario=settings.name,
                t_s=round(clock.now(), 3),
                utc=clock.utc().isoformat(timespec="seconds"),
                links=len(plan.links),
                ports=wire.sockets - 1,
                http_port=port or None,
                capture=str(self.sink.path) if self.sink is not None else None,
                satellites=list(opts.names) or None,
            )
            await stop.wait()
            event("stopping", t_s=round(clock.now(), 3))
        finally:
            gc.enable()  # a start that failed before the freeze
            for task in (status_task, plan_task):
                if task is not None:
                    task.cancel()
            await self._shutdown(http, wire)
        return 0

    # -- pieces ----------------------------------------------------------------------------------
    def _sdls_alarm(self, end: str, reason: str, details: dict[str, Any]) -> None:
        """A frame SDLS refused: the guard logged it (at most every few seconds a
        reason) and counted it (status, counters); the ground says it on MQTT too,
        ``<prefix>/<ground>/alarm`` (QoS 1), at most once a second per end and reason."""
        app = self.app
        if app is None or app.bridge is None:
            return
        now = time.monotonic()
        key = (end, reason)
        if now - self._alarmed.get(key, -math.inf) < ALARM_MQTT_EVERY_S:
            return
        self._alarmed[key] = now
        body = {"kind": "sdls_refused", "end": end, "reason": reason, **details}
        task = asyncio.get_running_loop().create_task(
            app.bridge.publish(f"{app.topics.base}/alarm", dumps(body), qos=1)
        )
        self._alarm_tasks.add(task)
        task.add_done_callback(self._alarm_tasks.discard)

    def _sdls_keys(self) -> Keyring | None:
        """SDLS's keys from the scenario's key file (written with fresh keys if it is
        missing: the first start), or None with SDLS off."""
        sdls = self.settings.emulation.uplink.sdls
        if not sdls.enabled:
            return None
        path = self.settings.sdls_key_file
        keys, created = load_keys(path, sdls)
        if created:
            event("sdls key file written", path=str(path.resolve()), key_ids=sdls.key_ids())
        spis = [sdls.uplink.spi, sdls.downlink.spi, sdls.laser.spi]
        event("sdls on", key_file=str(path.resolve()), spis=spis)
        return keys

    def _sat_name(self) -> str:
        """The satellites' end's name in file names: ``sat``, or the satellites it runs."""
        return "sat-" + "-".join(self.opts.names) if self.opts.names else "sat"

    def _packet_log_path(self, name: str) -> Path:
        """Where the packet bridge's records of one end go (linkstack packets joins them)."""
        return self.out_dir / f"{name}-packets.jsonl"

    def _open_capture(self) -> PcapCapture:
        cap_dir = self.opts.out_dir or self.settings.capture_dir
        cap_dir.mkdir(parents=True, exist_ok=True)
        name = self._sat_name() if self.opts.names else self.opts.role
        capture = self.settings.capture
        path = cap_dir / f"{name}.pcap"
        epoch = self.settings.scenario.epoch
        stamps = self.wall_epoch if capture.time == "wall" and self.wall_epoch else epoch
        return PcapCapture(
            path,
            stamps,
            set(capture.layers) if capture.layers else None,
            time_base=capture.time,
            scenario_epoch=epoch,
            sdls=self._capture_sdls(),
        )

    def _capture_sdls(self) -> dict[str, LinkSecurity] | None:
        """The run's SDLS associations, for the capture's side file (None: SDLS off)."""
        uplink = self.settings.emulation.uplink
        if not uplink.sdls.enabled:
            return None
        from linkstack.capture.sdls_view import from_uplink  # noqa: PLC0415 - the codec

        return from_uplink(uplink)

    def _open_ground(self, clock: Clock) -> None:
        from linkstack.daemon.ground import GroundApp  # noqa: PLC0415 - aiomqtt

        assert self.ground is not None
        if self.queue is None:
            self.queue = open_queue(self.settings, self.opts)
        gateway = self.ground.gateway
        units = gateway.ports if gateway is not None else None
        self.app = GroundApp(
            self.settings,
            clock,
            self.ground.mcc,
            self.queue,
            units if isinstance(units, MqttUnits) else None,
        )

    def _http_port(self) -> int:
        if self.opts.http_port is not None:
            return self.opts.http_port
        base = self.settings.daemon.http_port
        return base + HTTP_OFFSET[self.opts.role] if base else 0

    def _routes(self, clock: clk.WallClock, plan: PortPlan) -> dict[str, Route]:
        metrics = DaemonMetrics(lambda: self.metrics_snapshot(clock))
        return {
            "/": lambda: self.status(clock),
            "/status": lambda: self.status(clock),
            "/status/all": lambda: self.status(clock, limit=None),
            "/counters": self.counters,
            "/health": lambda: {"ok": True, "role": self.opts.role, "t_s": clock.now()},
            "/ports": plan.table,
            **({"/pending": self.app.pending} if self.app is not None else {}),
            "/metrics": lambda: Body(*metrics.render()),
        }

    def metrics_snapshot(self, clock: clk.LoopClock) -> Snapshot:
        """What ``GET /metrics`` reads: the counters, the status, the histograms."""
        channel = next((p for p in self.parts if isinstance(p, ChannelPart)), None)
        return Snapshot(
            role=self.opts.role,
            counters=self.counters(),
            status=self.status(clock),
            lateness=channel.lateness() if channel is not None else {},
            round_trips=self.app.round_trips() if self.app is not None else {},
        )

    def status(self, clock: clk.LoopClock, limit: int | None = STATUS_LIST_MAX) -> dict[str, Any]:
        """Each part's status, its lists cut at ``limit`` (None: whole)."""
        out: dict[str, Any] = {
            "role": self.opts.role,
            "scenario": self.settings.name,
            "t_s": round(clock.now(), 3),
            "utc": clock.utc().isoformat(timespec="milliseconds"),
        }
        for part in self.parts:
            out[_part_name(part)] = part.status(limit)
        if self.app is not None:
            out["app"] = self.app.status()
        if self.site is not None and self.site.guards is not None:
            refused = {
                k: v for k, v in self.site.guards.counters().items() if k.startswith("refused_")
            }
            out["sdls"] = {"alarms": sum(refused.values()), **refused}
        return out

    def counters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in self.parts:
            out[_part_name(part)] = part.counters()
        if self.app is not None:
            out["app"] = self.app.counters()
        if self.sink is not None:
            out["capture"] = dict(self.sink.stats)
        if self.site is not None and self.site.guards is not None:
            out["sdls"] = self.site.guards.counters()
        if self.wire is not None:
            out["wire"] = dict(self.wire.stats)
            # what each port refused, by reason (not the link's peer, not a unit's shape)
            out["refused"] = {str(port): dict(c) for port, c in sorted(self.wire.refused.items())}
        return out

    async def _status_loop(self, clock: clk.WallClock, stop: asyncio.Event) -> None:
        interval_s = self.settings.daemon.status_interval_s
        next_t_s = clock.now()
        while not stop.is_set():
            next_t_s += interval_s
            await clock.sleep_until(next_t_s)
            try:
                doc = self.status(clock)
                fields = {k: v for k, v in doc.items() if k != "role"}
                event("status", line=status_line(doc), **fields)
                if self.sink is not None:
                    self.sink.flush()
                if self.app is not None and self.app.bridge is not None:
                    bridge, topics = self.app.bridge, self.app.topics
                    await bridge.publish(topics.status, dumps(doc), retain=True)
                    await bridge.publish(topics.counters, dumps(self.counters()), retain=True)
            except Exception:
                log.exception("status")

    def _write_report(self, app: GroundApp) -> None:
        """The run's report into a new folder of its own under the runs folder, its
        absolute path logged and printed, with the round trip's percentiles."""
        try:
            run_dir = new_run_dir(self.runs_dir, self.opts.role)
        except ConfigError as exc:
            log.error("no report: %s", exc)
            return
        paths = app.write_report(run_dir, charts=self.settings.daemon.report_charts)
        total = json.loads(paths["json"].read_text())["summary"]["all"]["total"]
        event(
            "report written",
            path=str(run_dir),
            files=sorted(p.name for p in paths.values()),
            answered=app.answered,
            round_trip_s={k: total[k] for k in ("p50_s", "p95_s", "p99_s")},
        )
        print(f"linkstack daemon {self.opts.role}: report in {run_dir}", flush=True)

    async def _shutdown(self, http: StatusServer | None, wire: Wire) -> None:
        if http is not None:  # first: no page or poll reads what is being closed
            await http.close()
        if self.app is not None:
            await self.app.close()
        for part in reversed(self.parts):
            try:
                await part.close()
            except Exception:
                log.exception("closing %s", _part_name(part))
        counters = self.counters()
        if self.app is not None:
            self._write_report(self.app)
        if self.queue is not None:
            self.queue.close()
        if self.sink is not None:
            self.sink.close()
            event("capture closed", path=str(self.sink.path), **dict(self.sink.stats))
        wire.close()
        event("stopped", counters=counters, wire=dict(wire.stats))


def _part_name(part: ChannelPart | SatellitePart | GroundPart) -> str:
    return {ChannelPart: "channel", GroundPart: "ground", SatellitePart: "satellites"}[type(part)]
