"""The active suite against a live endpoint over UDP: options, the driver, the run.

One unit is one UDP datagram, as between the project's daemons
(:mod:`linkstack.daemon.wire`). The tester sends its units to ``--target`` and listens
on ``--listen`` for what the endpoint sends:

- ``--role sat``: the target is the spacecraft's uplink port (where the channel daemon
  delivers CLTUs: ``daemon.node_port + j`` of the satellite's end ``j``), and the
  tester listens where the spacecraft sends its TM CADUs (``daemon.channel_port + j``):
  the tester stands in for the channel daemon and the ground.
- ``--role ground``: the target is the ground's port (``daemon.node_port``, end 0),
  and the tester listens where the ground sends its CLTUs (``daemon.channel_port``).

With ``--scenario FILE`` (and ``--satellite NAME``, default the first), both ports, the
SCID, FARM-1's window, the CLCW interval and the coding come from the scenario's port
plan and settings; ``--target``, ``--listen`` and ``--scid`` override them. The tester
then speaks as the channel daemon does: from the channel's port of that end (it sends
and listens on the one socket), each unit behind the link header of its link, and it
takes only the units of the link under test (the port carries the end's other links
too). Without a scenario the units are bare (``--link-header SENT:TAKEN`` puts the
daemons' header on them), the profile (``--profile``) gives the
coding and frames, ``--listen`` is needed, and the sat role learns the SCID from the
spacecraft's TM frames.

SDLS (sat role): with a scenario whose ``[sdls]`` is enabled, the tester protects its TC
frames with the uplink's security association and the key file (``--keys``, default
the scenario's ``key_file``), its counters starting where the satellite's ground would
if it started now; without one, with a profile's ``[[sdls.tc]]`` of the virtual
channel under test and ``--keys``, its counters starting at 1. ``--sdls-counter`` sets
another start; see :mod:`linkstack.conformance.active.sdls`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from linkstack.capture.link_header import (
    LINK_HEADER_LEN,
    MAX_LINK_INDEX,
    link_header,
    link_of,
)
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.ccsds.coding.cltu import DecodeMode
from linkstack.conformance.active.runner import (
    GROUND,
    SAT,
    Action,
    ActiveConfig,
    ActiveReport,
    Ctx,
    Observation,
    Send,
    Sleep,
    Wait,
    make_ctx,
    run_suite,
)
from linkstack.errors import ConfigError

if TYPE_CHECKING:
    from linkstack.ccsds.sdls import SecurityAssociation
    from linkstack.runtime.mission_profile import Profile

ACQUISITION = b"\x55" * 16  # the "hello": an acquisition sequence, which a receiver ignores


def parse_target(text: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` -> (HOST, PORT)."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() != "udp":
        raise ConfigError("active", "--target", f"must be udp://HOST:PORT, got {text!r}")
    return _host_port(rest, "--target", None)


def parse_listen(text: str, default_host: str) -> tuple[str, int]:
    """``[udp://][HOST:]PORT`` -> (HOST, PORT)."""
    if text.lower().startswith("udp://"):
        text = text[6:]
    return _host_port(text, "--listen", default_host)


def _host_port(text: str, option: str, default_host: str | None) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host or ""
    if not host:
        raise ConfigError("active", option, f"needs HOST:PORT, got {text!r}")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError("active", option, f"the port must be a number, got {port!r}") from None
    if not 1 <= number <= 65535:
        raise ConfigError("active", option, f"the port must be 1..65535, got {number}")
    return host, number


def parse_link_header(text: str) -> tuple[int, int]:
    """``SENT:TAKEN`` -> (SENT, TAKEN), the link indices of ``--link-header``."""
    sent, sep, taken = text.partition(":")
    try:
        if not sep:
            raise ValueError
        pair = (int(sent, 0), int(taken, 0))
    except ValueError:
        raise ConfigError(
            "active", "--link-header", f"must be SENT:TAKEN, two link indices, got {text!r}"
        ) from None
    if not all(0 <= k <= MAX_LINK_INDEX for k in pair):
        raise ConfigError("active", "--link-header", f"link indices are 0..{MAX_LINK_INDEX}")
    return pair


def _url(addr: tuple[str, int]) -> str:
    return f"udp://{addr[0]}:{addr[1]}"


def build_config(
    args: argparse.Namespace,
) -> tuple[ActiveConfig, tuple[str, int], tuple[str, int]]:
    """The tester's configuration and its two addresses (target, listen) from the
    command line: profile, then scenario, then the explicit options."""
    from linkstack.runtime.mission_profile import DEFAULT_PROFILE, load_profile  # noqa: PLC0415

    role = args.role or SAT
    profile = load_profile(args.profile or DEFAULT_PROFILE)  # the scenario's link follows
    tc, tm = profile.tc, profile.tm
    notes = [f"profile {profile.source}"]
    cfg = ActiveConfig(
        role=role,
        tc_fecf=tc.fecf,
        tc_segment_header=tc.segment_header,
        tc_randomize=tc.randomize,
        cltu_mode=DecodeMode(tc.cltu_mode),
        tm_frame_length=tm.frame_length,
        tm_fecf=tm.fecf,
        tm_idle_vcid=tm.idle_vcid if tm.idle_vcid >= 0 else 7,
        cadu=CaduCoding(
            rs_e=tm.rs_e or None,
            rs_depth=tm.rs_depth,
            dual_basis=tm.dual_basis,
            randomize=tm.randomize,
            asm=tm.asm,
        ),
    )
    target: tuple[str, int] | None = None
    listen: tuple[str, int] | None = None
    host = "127.0.0.1"
    sdls: SdlsSource | None = None
    if args.scenario or args.satellite:
        cfg, target, listen, host, more, sdls = _from_scenario(cfg, args, role)
        notes += more
    if sdls is None:  # the scenario's SDLS, else the profile's
        sdls = _profile_sdls(profile, args.vcid if args.vcid is not None else cfg.vcid)
    cfg, more = _with_sdls(cfg, args, sdls, role)
    notes += more
    if args.target:
        target = parse_target(args.target)
        host = target[0]
    if args.listen:
        loopback = host in ("127.0.0.1", "localhost", "::1")
        listen = parse_listen(args.listen, host if loopback else "0.0.0.0")
    if target is None:
        raise ConfigError(
            "active",
            "--target",
            "give --target udp://HOST:PORT, or --scenario FILE [--satellite NAME] to take it "
            "from the scenario's port plan",
        )
    if listen is None:
        where = "TM CADUs" if role == SAT else "CLTUs"
        raise ConfigError(
            "active",
            "--listen",
            f"give --listen [HOST:]PORT, where the endpoint sends its {where} (or --scenario)",
        )
    for option, value, hi in (("--scid", args.scid, 0x3FF), ("--vcid", args.vcid, 0x3F)):
        if value is not None and not 0 <= value <= hi:
            raise ConfigError("active", option, f"must be 0..{hi}, got {value}")
    cfg = replace(cfg, timeout_s=args.timeout)
    if args.link_header:
        cfg = replace(cfg, links=parse_link_header(args.link_header))
    if args.scid is not None:
        cfg = replace(cfg, scid=args.scid)
        notes.append(f"spacecraft {args.scid:#x} (--scid)")
    if args.vcid is not None:
        cfg = replace(cfg, vcid=args.vcid)
    if args.interval is not None:
        cfg = replace(cfg, interval_s=args.interval)
    cfg = replace(cfg, quiet_s=max(0.3, 3 * cfg.interval_s))
    if role == GROUND and cfg.scid is None:
        raise ConfigError(
            "active", "--scid", "the ground role needs the spacecraft's SCID (or --scenario)"
        )
    return replace(cfg, notes=tuple(notes)), target, listen


@dataclass(frozen=True)
class SdlsSource:
    """The TC channel's security association and where it came from (a scenario's
    ``[sdls]``, or a profile's), with what goes with it: the key file to read unless
    ``--keys`` names one, the number of the satellite's link (its ground's counters'
    layout; None: not linkstack's), the longest TC frame and the SPIs the endpoint may
    know besides."""

    sa: SecurityAssociation
    where: str
    tc_max_frame_length: int
    known_spis: tuple[int, ...] = ()
    link: int | None = None
    key_file: Path | None = None


def _from_scenario(
    cfg: ActiveConfig, args: argparse.Namespace, role: str
) -> tuple[ActiveConfig, tuple[str, int], tuple[str, int], str, list[str], SdlsSource | None]:
    """The configuration with what the scenario's port plan and settings give, the
    target and listen addresses, the daemons' host, where the values came from, and
    the scenario's SDLS on the uplink (None when it is off)."""
    from linkstack.daemon.wire import PortPlan  # noqa: PLC0415
    from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415

    settings = scenario_file.load(args.scenario) if args.scenario else scenario_file.load_default()
    sc = settings.scenario
    names = list(sc.satellite_names)
    name = args.satellite or names[0]
    if name not in names:
        raise ConfigError(
            "active", "--satellite", f"no satellite {name!r} in {settings.name} ({names[0]}...)"
        )
    d = settings.daemon
    plan = PortPlan.of(sc, d)
    up, down = plan.uplink(name), plan.downlink(name)
    emu = settings.emulation
    link = emu.uplink
    # the tester stands in for the channel: it sends from, and listens on, the
    # channel's port of the end under test
    if role == SAT:
        target, listen = (d.host, up.node_port), (d.host, down.channel_port)
        source, links = up.delivered_from, (up.index, down.index)
    else:
        target, listen = (d.host, down.node_port), (d.host, up.channel_port)
        source, links = down.delivered_from, (down.index, up.index)
    cfg = replace(
        cfg,
        source_port=source,
        links=links,
        scid=emu.scid_base + names.index(name),
        vcid=link.vcid,
        map_id=link.map_id,
        farm_window=link.farm_window,
        tc_randomize=link.cltu_coding.randomize,
        cltu_mode=link.cltu_coding.mode,
        tm_frame_length=link.tm_frame_length,
        cadu=link.cadu_coding,
        interval_s=link.clcw_interval_s,
    )
    notes = [
        f"scenario {settings.source}, satellite {name} (SCID {cfg.scid:#x}): "
        f"{up.name} (link {up.index}) node port {up.node_port}, "
        f"{down.name} (link {down.index}) channel port {down.channel_port}"
    ]
    sdls = None
    if link.sdls.enabled:
        s = link.sdls
        sdls = SdlsSource(
            s.uplink.association(),
            f"scenario {settings.source}",
            link.tc_max_frame_length,
            known_spis=(s.downlink.spi, s.laser.spi, *s.management.spare_spis),
            link=names.index(name) + 1,  # its node number, as linkstack's ground counts it
            key_file=settings.sdls_key_file,
        )
    return cfg, target, listen, d.host, notes, sdls


def _profile_sdls(profile: Profile, vcid: int) -> SdlsSource | None:
    """The profile's TC security association of virtual channel ``vcid`` (one bound to
    it, else one of every channel), or None."""
    sdls = profile.sdls
    sas = [sa for sa in sdls.tc if sa.vcid == vcid] or [sa for sa in sdls.tc if sa.vcid is None]
    if not sas:
        return None
    sa = sas[0]
    others = tuple(x.spi for x in (*sdls.tc, *sdls.tm, *sdls.aos) if x.spi != sa.spi)
    return SdlsSource(
        sa, f"profile {profile.source}", profile.tc.max_frame_length, known_spis=others
    )


def _with_sdls(
    cfg: ActiveConfig, args: argparse.Namespace, source: SdlsSource | None, role: str
) -> tuple[ActiveConfig, list[str]]:
    """The configuration with the TC channel's SDLS, when there is an association, and
    what the report's setup says of it."""
    keys_path: Path | None = args.keys
    counter: int | None = args.sdls_counter
    if source is None:
        for option, value in (("--keys", keys_path), ("--sdls-counter", counter)):
            if value is not None:
                raise ConfigError(
                    "active",
                    option,
                    "no SDLS security association to use it with: give --scenario FILE "
                    "whose [sdls] has enabled = true, or --profile FILE with a [[sdls.tc]] "
                    "of the virtual channel under test",
                )
        return cfg, []
    if role == GROUND:
        raise ConfigError(
            "active",
            "--role",
            f"{source.where} has SDLS on the uplink, and the ground role does not run it (the "
            "ground would refuse the tester's TM frames): give one without [sdls]",
        )
    from linkstack.ccsds.sdls_keys import Keyring  # noqa: PLC0415 - cryptography, when used
    from linkstack.conformance.active.sdls import (  # noqa: PLC0415
        TcSecurity,
        counters_at,
        first_counters,
    )
    from linkstack.runtime.security import boot_stamp  # noqa: PLC0415

    path = keys_path if keys_path is not None else source.key_file
    if path is None:
        raise ConfigError(
            "active", "--keys", f"give the key file of the SDLS association of {source.where}"
        )
    keys = Keyring.from_file(path)
    sa = source.sa
    kid = sa.ekid if sa.ekid is not None else sa.akid
    if kid is not None and kid not in keys:
        raise ConfigError(str(path), "keys", f"no key {kid}, the one of the uplink's SA {sa.spi}")
    if counter is not None:
        if counter < 0:
            raise ConfigError("active", "--sdls-counter", f"must be 0 or more, got {counter}")
        first = counters_at(sa, counter)
    elif source.link is not None:
        first = first_counters(sa, source.link, boot_stamp(time.time()))
    else:
        first = counters_at(sa, 1)  # an endpoint not linkstack's: from the bottom
    security = TcSecurity(sa, keys, first, source.tc_max_frame_length, source.known_spis)
    note = f"{security.describe()}, from {source.where}; keys from {path}"
    return replace(cfg, sdls=security), [note]


# -- the driver -------------------------------------------------------------------------------


class _Rx(asyncio.DatagramProtocol):
    def __init__(self, driver: UdpDriver) -> None:
        self.driver = driver

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.driver._on_unit(data)

    def error_received(self, exc: Exception) -> None:
        pass


class _Tx(asyncio.DatagramProtocol):
    def __init__(self, driver: UdpDriver) -> None:
        self.driver = driver

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.driver.refused += 1
        else:
            self.driver.send_errors += 1


class _Both(_Tx):
    """One socket that listens and sends (connected to the target: it takes only the
    target's datagrams, as the channel daemon's port takes only its peer's)."""

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.driver._on_unit(data)


class UdpDriver:
    """Carries a case's actions out over UDP (see the module docstring)."""

    def __init__(self, ctx: Ctx, target: tuple[str, int], listen: tuple[str, int]) -> None:
        self.ctx = ctx
        self.target = target
        self.listen = listen
        self.sent = 0
        self.beacons = 0
        self.refused = 0
        self.send_errors = 0
        self.other_links = 0  # datagrams of the port's other links (or no link header)
        links = ctx.config.links
        self._header = link_header(links[0]) if links is not None else b""
        self._takes = links[1] if links is not None else None
        self._rx: asyncio.DatagramTransport | None = None
        self._tx: asyncio.DatagramTransport | None = None
        self._beacon: asyncio.Task[None] | None = None
        self._new = asyncio.Event()
        self._t0 = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        source = self.ctx.config.source_port
        if source == self.listen[1]:  # a scenario's plan: one port to send and listen
            try:
                self._tx, _ = await loop.create_datagram_endpoint(
                    lambda: _Both(self),
                    local_addr=self.listen,
                    remote_addr=self.target,
                    family=socket.AF_INET,
                )
            except OSError as exc:
                raise ConfigError(
                    "active",
                    "--listen",
                    f"cannot listen on {_url(self.listen)} and send to {_url(self.target)}: "
                    f"{exc.strerror or exc} (another process, a channel daemon perhaps, has "
                    "that port?)",
                ) from None
            self._start_beacons(loop)
            return
        try:
            self._rx, _ = await loop.create_datagram_endpoint(
                lambda: _Rx(self), local_addr=self.listen, family=socket.AF_INET
            )
        except OSError as exc:
            raise ConfigError(
                "active",
                "--listen",
                f"cannot listen on {_url(self.listen)}: {exc.strerror or exc} (another "
                "process, a channel daemon perhaps, has that port?)",
            ) from None
        try:
            self._tx, _ = await loop.create_datagram_endpoint(
                lambda: _Tx(self),
                remote_addr=self.target,
                local_addr=(self.listen[0], source) if source is not None else None,
                family=socket.AF_INET,
            )
        except OSError as exc:
            self.close()
            raise ConfigError(
                "active", "--target", f"cannot send to {_url(self.target)}: {exc.strerror or exc}"
            ) from None
        self._start_beacons(loop)

    def _start_beacons(self, loop: asyncio.AbstractEventLoop) -> None:
        interval = self.ctx.beacon_interval_s
        if interval:
            self._beacon = loop.create_task(self._beacons(interval), name="beacon")

    def close(self) -> None:
        if self._beacon is not None:
            self._beacon.cancel()
            self._beacon = None
        for t in (self._rx, self._tx):
            if t is not None:
                t.close()
        self._rx = self._tx = None

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time() - self._t0

    def _on_unit(self, data: bytes) -> None:
        if self._takes is not None:  # behind a link header: the link under test only
            if link_of(data) != self._takes:
                self.other_links += 1
                return
            data = data[LINK_HEADER_LEN:]
        t = self.now()
        self.ctx.t_s = t
        self.ctx.observe(data, t)
        self._new.set()

    def _transmit(self, unit: bytes) -> None:
        if self._tx is not None and not self._tx.is_closing():
            self._tx.sendto(self._header + unit)

    async def _beacons(self, interval: float) -> None:
        while True:
            unit = self.ctx.tick()
            if unit is not None:
                self._transmit(unit)
                self.beacons += 1
            await asyncio.sleep(interval)

    async def contact(self) -> str | None:
        """None once the endpoint is heard (sat role) or not refused (ground role); else
        why there is no contact."""
        cfg = self.ctx.config
        if self.ctx.role == GROUND:
            await asyncio.sleep(min(0.5, cfg.timeout_s))
            if self.refused and not self.ctx.seen:
                return self._no_contact("the TM CADUs sent to the ground were refused")
            return None
        deadline = self.now() + cfg.timeout_s
        while self.now() < deadline:
            self._transmit(ACQUISITION)
            self.sent += 1
            got = await self.perform(Wait(lambda o: True, min(0.5, deadline - self.now())))
            if got is not None:
                return None
            if self.refused >= 2:
                break
        return self._no_contact("no TM CADU")

    def _no_contact(self, what: str) -> str:
        cfg = self.ctx.config
        if self.refused:
            head = (
                f"no contact: nothing listens on {_url(self.target)} (it refused "
                f"{self.refused} datagram(s))"
            )
        else:
            head = f"no contact: no answer from {_url(self.target)} within {cfg.timeout_s:g} s"
        if self.ctx.role == SAT:
            return (
                f"{head}, and {what} came to {_url(self.listen)}. Is the spacecraft endpoint "
                "running (`linkstack daemon ... sat`), in a pass, and sending its downlink to "
                "that port?"
            )
        return (
            f"{head}: {what}. Is the ground endpoint running (`linkstack daemon ... ground`) "
            "and taking its downlink on that port?"
        )

    async def perform(self, action: Action) -> Observation | None:
        try:
            if isinstance(action, Send):
                for s in action.units:
                    self._transmit(s.unit)
                    self.sent += 1
                await asyncio.sleep(0)
                return None
            if isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
                return None
            if isinstance(action, Wait):
                return await self._wait(action)
            raise TypeError(f"not an action: {action!r}")
        finally:
            self.ctx.t_s = self.now()

    async def _wait(self, action: Wait) -> Observation | None:
        seen = self.ctx.seen
        i = len(seen)
        hits = 0
        deadline = self.now() + action.timeout_s
        while True:
            while i < len(seen):
                o = seen[i]
                i += 1
                if action.match(o):
                    hits += 1
                    if hits >= action.count:
                        return o
            left = deadline - self.now()
            if left <= 0:
                return None
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)


# -- the run ---------------------------------------------------------------------------------


def run_active(args: argparse.Namespace) -> int:
    """``linkstack conform --target ... --role ...``: run the suite, print the report."""
    from linkstack.conformance.active.cases import select_cases  # noqa: PLC0415
    from linkstack.conformance.active.report import format_text, write_junit  # noqa: PLC0415

    cases = select_cases(args.role or SAT, args.rules)
    cfg, target, listen = build_config(args)
    report = ActiveReport(_url(target), _url(listen), cfg.role, cfg)

    async def main() -> None:
        ctx = make_ctx(cfg)
        driver = UdpDriver(ctx, target, listen)
        await driver.open()
        try:
            await run_suite(ctx, driver, cases, report)
        finally:
            driver.close()

    asyncio.run(main())
    sys.stdout.write(format_text(report))
    if args.junit is not None:
        write_junit(report, args.junit)
    if report.error:
        print(f"linkstack conform: {report.error}", file=sys.stderr)
    return report.exit_code
