"""Scenario files: one TOML file says what the emulator runs, in process or as daemons.

A scenario file holds the constellation (a built-in one, a TLE file, or planes of
sun-synchronous or Walker satellites), the ground stations, the links (RF presets
and rates, the laser terminal, injected losses and BER floors), the channel coding,
the COP-1 parameters, the model backend, and what the daemons need (capture,
MQTT, ports, the ground's queue). :func:`load` reads and checks one and gives a
:class:`ScenarioFile`; :attr:`ScenarioFile.emulation` is the
:class:`linkstack.runtime.emulation.EmulationConfig` that the in-process emulation and the
daemons build from. Every key has a default, so an empty file is the default
scenario; ``linkstack/runtime/scenarios/default.toml`` (:func:`default_text`, printed by
``linkstack scenario show``) writes every section out with its defaults.

Defaults have one home: the dataclasses the keys fill. A key left out takes the
value of the field it fills in the default instance (``EmulationConfig()`` and
the configurations in it, the settings dataclasses below, :class:`PlaneSettings`,
``GroundStation``); the shipped ``default.toml`` writes those values out, and a
test holds it to them key by key.

Checked when it is read, before anything starts: an unknown key is refused (a
typo must not silently fall back to a default), and so is a value of the wrong
type or outside what is possible (a negative orbit altitude, an elevation mask
above 90 degrees, an unknown band, an unknown backend kind). The error is a
:class:`ScenarioError` (a :class:`linkstack.errors.ConfigError`) that names the
file, the key by its full dotted path (``stations[2].elevation_mask_deg``,
``links.uplink.band``) and why; :mod:`linkstack.tomlcheck` does the reading.

Paths: files the scenario reads (a TLE file) are relative to the scenario
file's folder; paths the daemons write (``daemon.out_dir``, ``ground.queue``,
``capture.dir``) are relative to the current directory.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from channels import scenarios as builtin
from channels.geometry import GroundStation
from channels.optical import OPTICAL_ISL_1G, OPTICAL_ISL_10G, OPTICAL_ISL_100G, OpticalTerminal
from channels.orbit import Satellite, load_tles, sso_plane, walker_delta
from channels.rf import (
    S_BAND_UPLINK_RATES_BPS,
    X_BAND_DOWNLINK_RATES_BPS,
    RfLinkConfig,
    s_band_uplink,
    x_band_downlink,
)
from linkstack.errors import ConfigError
from linkstack.runtime import link_profile
from linkstack.runtime.config import DISPATCH_POLICIES, DispatchConfig, EmulationConfig
from linkstack.runtime.daemon_settings import (  # the public names of scenario files too
    CaptureSettings,
    DaemonSettings,
    MqttSettings,
    read_capture,
    read_daemon,
    read_mqtt,
)
from linkstack.runtime.frames import USLP, check_scids
from linkstack.runtime.interface_settings import (  # the public names of scenario files too
    GatewaySettings,
    RadioSettings,
    daemon_blocks,
    end_count,
    read_gateway,
    read_radio,
)
from linkstack.runtime.link_settings import read_link
from linkstack.runtime.mission_profile import Profile
from linkstack.runtime.model_settings import auto_concurrency, read_timing, wants_auto_concurrency
from linkstack.runtime.power_settings import read_power
from linkstack.runtime.security import with_sdls
from linkstack.tomlcheck import Table, TomlError, kind_of, parse
from payloads.backends import KINDS as BACKEND_KINDS
from payloads.client import ClientConfig
from payloads.service import ServiceConfig

FORMAT = 1
DEFAULT_RESOURCE = "runtime/scenarios/default.toml"

# Bands each RF direction knows, and the preset (and its rate range) behind each.
Bands = dict[str, tuple[Callable[..., RfLinkConfig], tuple[float, float]]]
UPLINK_BANDS: Bands = {
    "S": (s_band_uplink, S_BAND_UPLINK_RATES_BPS),
}
DOWNLINK_BANDS: Bands = {
    "X": (x_band_downlink, X_BAND_DOWNLINK_RATES_BPS),
}
LASER_TERMINALS = {"100G": OPTICAL_ISL_100G, "10G": OPTICAL_ISL_10G, "1G": OPTICAL_ISL_1G}


class ScenarioError(TomlError):
    """A scenario file refused: ``where`` is the file, ``field`` the dotted key path."""

    def __init__(self, source: str, key: str, rule: str) -> None:
        super().__init__(f"scenario {source}", key, rule)
        self.source = source
        self.key = key

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, str, str]]:
        return (type(self), (self.source, self.key, self.rule))


# -- what a file resolves to ------------------------------------------------------------


@dataclass(frozen=True)
class GroundSettings:
    name: str = "mcc"
    queue: str = ""  # "" -> <daemon.out_dir>/<name>-queue.sqlite


@dataclass(frozen=True)
class PlaneSettings:
    """One ``[[constellation.planes]]`` table: its keys and their defaults. A file
    that gives no constellation flies one plane of these defaults, named CS-01.."""

    kind: str = "sso"  # "sso": one sun-synchronous plane; "walker": a Walker delta
    altitude_km: float = 500.0
    name_prefix: str = ""  # "" -> P<index of the plane's first satellite>
    role: str = "compute"
    # kind = "sso"
    count: int = 12
    ltan_h: float = 22.5
    phase_deg: float = 0.0
    # kind = "walker"
    total: int = 12
    planes: int = 1
    phasing: int = 0
    inclination_deg: float = 53.0
    raan0_deg: float = 0.0


DEFAULT_PLANE = PlaneSettings(name_prefix="CS")  # the constellation when none is given


@dataclass(frozen=True)
class ScenarioFile:
    """A scenario file, read and checked (see the module docstring)."""

    source: str
    name: str
    description: str
    emulation: EmulationConfig
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    ground: GroundSettings = field(default_factory=GroundSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    radio: RadioSettings = field(default_factory=RadioSettings)
    # [frames] profile: the mission profile the ground link runs (None: it names none)
    link_profile: Profile | None = None

    @property
    def scenario(self) -> builtin.Scenario:
        scenario = self.emulation.scenario
        assert isinstance(scenario, builtin.Scenario), "a scenario file resolves its scenario"
        return scenario

    @property
    def out_dir(self) -> Path:
        return Path(self.daemon.out_dir)

    @property
    def sdls_key_file(self) -> Path:
        """SDLS's key file: ``sdls.key_file``, or ``sdls-keys.json`` in ``daemon.out_dir``
        (the daemons of one scenario read the same file)."""
        key_file = self.emulation.uplink.sdls.key_file
        return Path(key_file) if key_file else self.out_dir / "sdls-keys.json"

    @property
    def capture_dir(self) -> Path:
        return Path(self.capture.dir or self.daemon.out_dir)

    @property
    def queue_path(self) -> Path:
        return Path(
            self.ground.queue or Path(self.daemon.out_dir) / f"{self.ground.name}-queue.sqlite"
        )


# -- loading -----------------------------------------------------------------------------


def default_text() -> str:
    """The TOML text of the shipped default scenario."""
    return importlib.resources.files("linkstack").joinpath(DEFAULT_RESOURCE).read_text("utf-8")


def load_default() -> ScenarioFile:
    return loads(default_text(), source="default.toml")


SHIPPED = {
    "default": DEFAULT_RESOURCE,
    "planned-2800": "runtime/scenarios/planned-2800.toml",
    "reference": "runtime/scenarios/reference.toml",
    "starcloud-1": "runtime/scenarios/starcloud-1.toml",
}
"""The scenario files shipped with linkstack, by name: what :func:`load` reads when
given a name and no such file exists. ``planned-2800`` is the built-in constellation
with the settings it needs (USLP frames: its 2,800 spacecraft ids do not fit AOS's 8
bits; queries served by its inference satellites). ``reference`` is the reported
in-orbit Qwen3 run (the default plane, the Chinese stations, 744 TOPS a satellite,
Qwen3-8B); ``starcloud-1`` the single satellite that ran Gemma on an H100."""


def shipped_text(name: str) -> str:
    """The TOML text of the shipped scenario ``name`` (one of :data:`SHIPPED`)."""
    return importlib.resources.files("linkstack").joinpath(SHIPPED[name]).read_text("utf-8")


def load(path: str | os.PathLike[str]) -> ScenarioFile:
    """Read and check a scenario file (see the module docstring), or the shipped
    scenario of that name (:data:`SHIPPED`) when there is no such file."""
    if str(path) in SHIPPED and not Path(path).exists():
        return loads(shipped_text(str(path)), source=f"{path} (shipped)")
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), "(file)", f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), "(file)", f"is not UTF-8 text: {exc}") from None
    return loads(text, source=str(path), base_dir=path.parent)


def loads(text: str, *, source: str = "<string>", base_dir: Path | None = None) -> ScenarioFile:
    """Read and check a scenario given as TOML text."""
    error = functools.partial(ScenarioError, source)
    return _Reader(source, base_dir or Path.cwd()).read(Table(parse(text, error), error))


def from_data(
    data: dict[str, Any], *, source: str = "<data>", base_dir: Path | None = None
) -> ScenarioFile:
    """Read and check a scenario given as the document TOML would parse to (what
    ``linkstack sweep`` builds each variant from: a base file with keys changed)."""
    error = functools.partial(ScenarioError, source)
    return _Reader(source, base_dir or Path.cwd()).read(Table(data, error))


T = TypeVar("T")
Opt = TypeVar("Opt")


def _field_default(cls: type, name: str, kind: type[T]) -> T:
    """The default of a dataclass field (its factory's product for a mutable one), a
    ``kind``."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        value: object = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        raise ConfigError(cls.__name__, name, "has no default")
    if not isinstance(value, kind):
        raise ConfigError(cls.__name__, name, f"defaults to {value!r}, not a {kind.__name__}")
    return value


def _name_of(
    options: Mapping[str, Opt], make: Callable[[Opt], object], value: object, key: str
) -> str:
    """The name among ``options`` whose option makes ``value``, the default of
    ``EmulationConfig.<key>``: a file that leaves the choice out gets the default."""
    for name, option in options.items():
        if make(option) == value:
            return name
    raise ConfigError("EmulationConfig", key, f"is none of {', '.join(options)}")


class _Reader:
    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        # what a key left out means: the field it fills, in the default instance
        self.base = EmulationConfig()
        self.default_scenario = _field_default(EmulationConfig, "scenario", str)

    def read(self, top: Table) -> ScenarioFile:
        base = self.base
        fmt = top.integer("format", FORMAT)
        if fmt != FORMAT:
            raise top.error("format", f"this linkstack reads format {FORMAT}, got {fmt}")
        name = top.text("name", self.default_scenario, empty=False)
        description = top.text("description", "")
        sats, isl_pairs, computing, const_stations, epoch, shells = self._constellation(
            top.table("constellation"), self._epoch(top)
        )
        station_tables = top.tables("stations")
        stations = (
            tuple(self._station(t) for t in station_tables) if station_tables else const_stations
        )
        if not stations:
            raise top.error("stations", "at least one ground station is needed")
        with top.wrapping(
            {
                "satellites": "constellation",
                "stations": "stations",
                "isl_pairs": "constellation.isl",
            }
        ):
            scenario = builtin.Scenario(
                name, epoch, sats, stations, isl_pairs, description, shells=shells
            )
        links = top.table("links")
        uplink_rf, up_loss, up_ber = self._rf(links.table("uplink"), UPLINK_BANDS, "uplink_rf")
        downlink_rf, down_loss, down_ber = self._rf(
            links.table("downlink"), DOWNLINK_BANDS, "downlink_rf"
        )
        laser = self._laser(links.table("laser"))
        links.done()
        scid_base, uplink_cfg, profile = read_link(
            top.table("frames"), top.table("coding"), top.table("cop1"), self.base, self.base_dir
        )
        uplink_cfg = with_sdls(top.table("sdls"), uplink_cfg)
        scid_refusal = check_scids(uplink_cfg.protocol, scid_base, len(sats))
        if scid_refusal is not None:
            raise top.error("frames.scid_base", scid_refusal)
        backend, service = self._model(top.table("model"))
        power = read_power(top.table("power"), service.timing)
        ground, client, dispatch = self._ground(top.table("ground"))
        capture = read_capture(top.table("capture"))
        mqtt = read_mqtt(top.table("mqtt"))
        daemon = read_daemon(top.table("daemon"), len(sats))
        names = [s.name for s in sats]
        ends = end_count(len(sats), daemon.sat_ports)
        taken = daemon_blocks(daemon.channel_port, daemon.node_port, daemon.http_port, ends)
        gateway = read_gateway(top.table("gateway"), names, taken, mqtt.enabled)
        radio = read_radio(top.table("radio"), names, taken)
        if profile is not None:
            flight_vcids = radio.vcids if radio.enabled else ()
            scids = range(scid_base, scid_base + len(sats))
            why = link_profile.id_refusal(profile, scids, uplink_cfg.vcid, flight_vcids)
            if why:
                raise top.error(link_profile.KEY_PATH, why)
        if uplink_cfg.protocol == USLP and (gateway.enabled or radio.enabled):
            raise top.error(
                "frames.protocol",
                '"uslp" is not carried by [gateway] and [radio] yet (they speak TC and TM '
                'frames): set frames.protocol = "tm-tc-aos" or their enabled = false',
            )
        top.done()
        emulation = replace(
            base,
            scenario=scenario,
            backend=backend,
            service=service,
            client=client,
            uplink=uplink_cfg,
            uplink_rf=uplink_rf,
            downlink_rf=downlink_rf,
            laser=laser,
            uplink_loss=up_loss,
            downlink_loss=down_loss,
            uplink_ber=up_ber,
            downlink_ber=down_ber,
            scid_base=scid_base,
            computing=computing,
            power=power,
            dispatch=dispatch,
        )
        return ScenarioFile(
            self.source,
            name,
            description,
            emulation,
            capture,
            mqtt,
            daemon,
            ground,
            gateway,
            radio,
            profile,
        )

    # -- time and orbits --------------------------------------------------------------
    def _epoch(self, top: Table) -> datetime | None:
        """The epoch given, or None (the default: the built-in epoch, or for a TLE
        file the newest element set's, to the next whole minute)."""
        value = top.raw("epoch")
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise top.error("epoch", f"not an ISO 8601 instant: {value!r}") from None
        if not isinstance(value, datetime):
            raise top.error(
                "epoch", f"must be a date-time like 2026-01-01T00:00:00Z, got {kind_of(value)}"
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise top.error("epoch", "needs a UTC offset (write it with a Z: 2026-01-01T00:00:00Z)")
        return value.astimezone(UTC)

    def _constellation(
        self, t: Table, given_epoch: datetime | None
    ) -> tuple[
        tuple[Satellite, ...],
        tuple[tuple[int, int], ...],
        tuple[str, ...] | None,
        tuple,
        datetime,
        tuple[str, ...],
    ]:
        sources = [k for k in ("builtin", "tle", "planes") if t.has(k)]
        if len(sources) > 1:
            raise t.error(
                sources[1], f"give one of builtin, tle or planes, not {' and '.join(sources)}"
            )
        source = sources[0] if sources else "planes"
        epoch = given_epoch or builtin.EPOCH
        stations = builtin.stations(builtin.DEFAULT_STATION_NAMES)
        ring_planes: list[tuple[int, int]] = []  # (first index, count) of each plane
        builtin_pairs: tuple[tuple[int, int], ...] = ()
        shells: tuple[str, ...] = ()  # each satellite's shell, for reports by shell
        if source == "builtin":
            which = t.choice(
                "builtin", self.default_scenario, tuple(builtin.SCENARIOS), "built-in constellation"
            )
            sc = builtin.scenario_by_name(which)
            if sc.epoch != epoch:
                raise t.error(
                    "builtin",
                    f"the built-in {which!r} flies from {sc.epoch:%Y-%m-%dT%H:%M:%SZ}: "
                    "set epoch to it",
                )
            sats = tuple(sc.satellites)
            stations = sc.stations
            builtin_pairs = sc.isl_pairs
            shells = sc.shells
        elif source == "tle":
            rel = t.text("tle", "", empty=False)
            path = (self.base_dir / rel) if not Path(rel).is_absolute() else Path(rel)
            if not path.is_file():
                raise t.error("tle", f"no such file: {path}")
            role = t.text("role", PlaneSettings.role)
            with t.wrapping(key="tle"):
                sats = tuple(load_tles(path, role))
            if given_epoch is None:  # the newest element set's, as tle_scenario() takes it
                epoch = builtin.tle_scenario(path).epoch
        else:
            planes = t.tables("planes") if t.has("planes") else None
            sats_list: list[Satellite] = []
            if planes is None:  # no constellation given: the default plane
                sats_list = _fly(DEFAULT_PLANE, epoch, 0)
                ring_planes += _rings(DEFAULT_PLANE, 0, len(sats_list))
            else:
                if not planes:
                    raise t.error("planes", "at least one plane is needed")
                for p in planes:
                    first = len(sats_list)
                    plane = self._plane(p, first)
                    with p.wrapping(_PLANE_FIELDS):
                        got = _fly(plane, epoch, first)
                    sats_list += got
                    ring_planes += _rings(plane, first, len(got))
            sats = tuple(sats_list)
        names = [s.name for s in sats]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise t.error(
                "planes" if source == "planes" else source,
                f"satellite name {dup!r} appears twice (use name_prefix)",
            )
        isl_pairs = self._isl(t, names, ring_planes, builtin_pairs, source)
        computing = self._computing(t, sats)
        t.done()
        return sats, isl_pairs, computing, stations, epoch, shells

    @staticmethod
    def _plane(p: Table, first: int) -> PlaneSettings:
        d = PlaneSettings()
        kind = p.choice("kind", d.kind, ("sso", "walker"), "plane kind")
        plane = replace(
            d,
            kind=kind,
            altitude_km=p.number("altitude_km", d.altitude_km, 150.0, 40_000.0),
            name_prefix=p.text("name_prefix", d.name_prefix or f"P{first}", empty=False),
            role=p.text("role", d.role),
        )
        if kind == "sso":
            plane = replace(
                plane,
                count=p.integer("count", d.count, 1, 10_000),
                ltan_h=p.number("ltan_h", d.ltan_h, 0.0, 24.0),
                phase_deg=p.number("phase_deg", d.phase_deg, -360.0, 360.0),
            )
            p.done()
            return plane
        total = p.integer("total", d.total, 1, 10_000)
        planes = p.integer("planes", d.planes, 1, total)
        plane = replace(
            plane,
            total=total,
            planes=planes,
            phasing=p.integer("phasing", d.phasing, 0, planes - 1),
            inclination_deg=p.number("inclination_deg", d.inclination_deg, 0.0, 180.0),
            raan0_deg=p.number("raan0_deg", d.raan0_deg, -360.0, 360.0),
        )
        p.raw("ring")
        if total % planes:
            raise p.error("planes", f"must divide total ({total}), got {planes}")
        p.done()
        return plane

    def _isl(
        self,
        t: Table,
        names: list[str],
        rings: list[tuple[int, int]],
        builtin_pairs: tuple[tuple[int, int], ...],
        source: str,
    ) -> tuple[tuple[int, int], ...]:
        default = "builtin" if source == "builtin" else ("ring" if rings else "none")
        value = t.raw("isl", default)
        if isinstance(value, str):
            allowed = ("ring", "none", "builtin") if source == "builtin" else ("ring", "none")
            if value not in allowed:
                raise t.error(
                    "isl",
                    f"must be {', '.join(repr(a) for a in allowed)} or a list of "
                    f"[name, name] pairs, got {value!r}",
                )
            if value == "none":
                return ()
            if value == "builtin":
                return builtin_pairs
            if not rings:
                raise t.error("isl", "'ring' needs planes (a TLE file has none): list the pairs")
            pairs: list[tuple[int, int]] = []
            for first, count in rings:
                pairs += builtin.ring_pairs(first, count)
            return tuple(pairs)
        if not isinstance(value, list):
            raise t.error(
                "isl",
                f"must be 'ring', 'none' or a list of [name, name] pairs, got {kind_of(value)}",
            )
        index = {n: i for i, n in enumerate(names)}
        out = []
        seen = set()
        for k, pair in enumerate(value):
            where = f"isl[{k}]"
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            ):
                raise t.error(where, f"must be a pair of satellite names, got {pair!r}")
            a, b = pair
            for x in (a, b):
                if x not in index:
                    raise t.error(where, f"no satellite named {x!r}")
            if a == b:
                raise t.error(where, f"links {a!r} to itself")
            key = tuple(sorted((index[a], index[b])))
            if key in seen:
                raise t.error(where, f"[{a!r}, {b!r}] is listed twice")
            seen.add(key)
            out.append((index[a], index[b]))
        return tuple(out)

    @staticmethod
    def _computing(t: Table, sats: tuple[Satellite, ...]) -> tuple[str, ...] | None:
        names = [s.name for s in sats]
        value = t.raw("computing", "all")  # "all": EmulationConfig.computing None
        if value == "all":
            return None
        if isinstance(value, dict):  # { role = "inference" }: the satellites of a role
            role = value.get("role")
            if set(value) != {"role"} or not isinstance(role, str):
                raise t.error("computing", 'a table must be { role = "ROLE" }, nothing else')
            chosen = tuple(s.name for s in sats if s.role == role)
            if not chosen:
                roles = sorted({s.role for s in sats})
                raise t.error("computing", f"no satellite has role {role!r} (roles: {roles})")
            return chosen
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise t.error(
                "computing",
                "must be 'all', a list of satellite names or { role = \"ROLE\" }, "
                f"got {kind_of(value)}",
            )
        for x in value:
            if x not in names:
                raise t.error("computing", f"no satellite named {x!r}")
        return tuple(value)

    def _station(self, s: Table) -> GroundStation:
        name = s.text("name", "", empty=False)
        sites = {st.name: st for st in builtin.stations()}
        site = sites.get(name)
        if site is None:
            for key in ("lat_deg", "lon_deg"):
                if not s.has(key):
                    raise s.error(
                        key,
                        "missing (only the built-in sites may leave out their coordinates: "
                        f"{', '.join(sites)})",
                    )
        # a site's own coordinates, or (lat and lon given: checked above) the defaults
        lat0, lon0 = (site.lat_deg, site.lon_deg) if site else (0.0, 0.0)
        alt0 = site.alt_m if site else _field_default(GroundStation, "alt_m", float)
        lat = s.number("lat_deg", lat0, -90.0, 90.0)
        lon = s.number("lon_deg", lon0, -180.0, 360.0)
        alt = s.number("alt_m", alt0, -500.0, 10_000.0)
        mask = s.number(
            "elevation_mask_deg",
            _field_default(GroundStation, "min_elevation_deg", float),
            0.0,
            90.0,
        )
        s.done()
        with s.wrapping(
            {
                "lat_deg": "lat_deg",
                "lon_deg": "lon_deg",
                "alt_m": "alt_m",
                "min_elevation_deg": "elevation_mask_deg",
            }
        ):
            return GroundStation(name, lat, lon, alt, mask)

    # -- links ----------------------------------------------------------------------------
    def _rf(self, t: Table, bands: Bands, config: str) -> tuple[RfLinkConfig, float, float]:
        """One RF direction: ``config`` is its config's name in EmulationConfig
        (``uplink_rf``); its loss and BER floor are ``uplink_loss`` and ``uplink_ber``."""
        direction = config.removesuffix("_rf")
        default = getattr(self.base, config)
        default_loss = getattr(self.base, f"{direction}_loss")
        default_ber = getattr(self.base, f"{direction}_ber")
        default_band = _name_of(bands, lambda option: option[0](), default, config)
        band = t.choice("band", default_band, tuple(bands), "band for this direction")
        preset, (lo, hi) = bands[band]
        base = preset()
        rate = t.number("rate_bps", base.rate_bps, lo, hi)
        freq = t.number("freq_hz", base.freq_hz, 0.0, lo_open=True)
        changes: dict[str, float] = {}
        for key in ("eirp_dbw", "gt_db_per_k"):
            if t.has(key):
                changes[key] = t.number(key, getattr(base, key), -100.0, 100.0)
        if t.has("other_losses_db"):
            changes["other_losses_db"] = t.number(
                "other_losses_db", base.other_losses_db, 0.0, 100.0
            )
        receiver = base.receiver
        if t.has("acquisition_s"):
            receiver = replace(
                receiver,
                acquisition_s=t.number("acquisition_s", receiver.acquisition_s, 0.0, 600.0),
            )
        if t.has("lock_threshold_ebn0_db"):
            receiver = replace(
                receiver,
                lock_threshold_ebn0_db=t.number(
                    "lock_threshold_ebn0_db", receiver.lock_threshold_ebn0_db, -20.0, 40.0
                ),
            )
        loss = t.number("loss", default_loss, 0.0, 1.0)
        ber = t.number("ber", default_ber, 0.0, 0.5)
        t.done()
        with t.wrapping({"freq_hz": "freq_hz", "rate_bps": "rate_bps"}):
            cfg = preset(freq_hz=freq, rate_bps=rate, receiver=receiver, **changes)
        return cfg, loss, ber

    def _laser(self, t: Table) -> OpticalTerminal:
        default = _name_of(LASER_TERMINALS, lambda terminal: terminal, self.base.laser, "laser")
        base = LASER_TERMINALS[
            t.choice("terminal", default, tuple(LASER_TERMINALS), "laser terminal")
        ]
        cfg = replace(
            base,
            rate_bps=t.number("rate_bps", base.rate_bps, 0.0, 1e12, lo_open=True),
            pat_s=t.number("pat_s", base.pat_s, 0.0, 3600.0),
            max_range_m=t.number("max_range_m", base.max_range_m, 0.0, 1e8, lo_open=True),
            jitter_outage_prob=t.number("jitter_outage_prob", base.jitter_outage_prob, 0.0, 1.0),
            ber=t.number("ber", base.ber, 0.0, 0.5),
        )
        t.done()
        return cfg

    # -- the ends and the daemons -------------------------------------------------------------
    def _model(self, t: Table) -> tuple[str, ServiceConfig]:
        spec = t.text("backend", self.base.backend, empty=False)
        kind = spec.strip().partition(":")[0].lower()
        if kind not in BACKEND_KINDS:
            raise t.error(
                "backend",
                f"unknown backend kind {kind!r} in {spec!r}; known: {', '.join(BACKEND_KINDS)}",
            )
        base = self.base.service
        auto = wants_auto_concurrency(t)  # from the accelerator's memory, below
        concurrency = (
            base.concurrency if auto else t.integer("concurrency", base.concurrency, 1, 64)
        )
        max_queued = t.integer("max_queued", base.max_queued, 0, 100_000)
        repeat_s = t.number("repeat_s", base.repeat_s, 0.0, 86_400.0, lo_open=True)
        repeat_backoff = t.number("repeat_backoff", base.repeat_backoff, 1.0, 100.0)
        max_repeat_s = t.number("max_repeat_s", base.max_repeat_s, 0.0, 86_400.0, lo_open=True)
        chunk_interval_s = t.number(
            "chunk_interval_s", base.chunk_interval_s, 0.0, 3600.0, lo_open=True
        )
        timing = read_timing(t)  # the accelerator whose compute time the legs take
        if auto:
            concurrency = auto_concurrency(t, timing)
        t.done()
        keys = (
            "concurrency",
            "max_queued",
            "repeat_s",
            "repeat_backoff",
            "max_repeat_s",
            "chunk_interval_s",
        )
        with t.wrapping({k: k for k in keys}):
            return spec.strip(), replace(
                base,
                concurrency=concurrency,
                max_queued=max_queued,
                repeat_s=repeat_s,
                repeat_backoff=repeat_backoff,
                max_repeat_s=max_repeat_s,
                chunk_interval_s=chunk_interval_s,
                timing=timing,
            )

    def _ground(self, t: Table) -> tuple[GroundSettings, ClientConfig, DispatchConfig]:
        settings = GroundSettings()
        name = t.text("name", settings.name, empty=False)
        if any(c in name for c in "/+#") or not name.isprintable():
            raise t.error(
                "name", f"must not contain '/', '+', '#' (it is an MQTT topic level), got {name!r}"
            )
        queue = t.text("queue", settings.queue)
        base = self.base.client
        client = replace(
            base,
            ack_delay_s=t.number("ack_delay_s", base.ack_delay_s, 0.0, 60.0),
            retry_after_s=t.number(
                "retry_after_s", base.retry_after_s, 0.0, 86_400.0, lo_open=True
            ),
            max_retries=t.integer("max_retries", base.max_retries, 0, 100),
        )
        dispatch = replace(
            self.base.dispatch,
            policy=t.choice("dispatch", self.base.dispatch.policy, DISPATCH_POLICIES, "policy"),
        )
        t.done()
        return replace(settings, name=name, queue=queue), client, dispatch


# a plane's keys by the names of the orbit builders' arguments (for their refusals)
_PLANE_FIELDS = {
    "alt_m": "altitude_km",
    "count": "count",
    "ltan_h": "ltan_h",
    "inclination_deg": "inclination_deg",
    "total": "total",
    "planes": "planes",
    "phasing": "phasing",
}


def _fly(plane: PlaneSettings, epoch: datetime, first: int) -> list[Satellite]:
    """The satellites of one plane, catalogued from ``first + 1``."""
    prefix = plane.name_prefix or f"P{first}"
    alt_m = 1000.0 * plane.altitude_km
    if plane.kind == "sso":
        return sso_plane(
            epoch, count=plane.count, alt_m=alt_m, ltan_h=plane.ltan_h, name_prefix=prefix,
            phase_deg=plane.phase_deg, first_catalog_number=first + 1, role=plane.role,
        )  # fmt: skip
    return walker_delta(
        epoch, total=plane.total, planes=plane.planes, phasing=plane.phasing,
        inclination_deg=plane.inclination_deg, alt_m=alt_m, raan0_deg=plane.raan0_deg,
        name_prefix=prefix, first_catalog_number=first + 1, role=plane.role,
    )  # fmt: skip


def _rings(plane: PlaneSettings, first: int, count: int) -> list[tuple[int, int]]:
    """(first index, count) of each ring of a plane's satellites: each Walker plane."""
    if plane.kind == "walker":
        per = count // plane.planes
        return [(first + k * per, per) for k in range(plane.planes)]
    return [(first, count)]
