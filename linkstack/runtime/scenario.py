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

Checked when it is read, before anything starts: an unknown key is refused (a
typo must not silently fall back to a default), and so is a value of the wrong
type or outside what is possible (a negative orbit altitude, an elevation mask
above 90 degrees, an unknown band, an unknown backend kind). The error is a
:class:`ScenarioError` (a :class:`linkstack.errors.ConfigError`) that names the
file, the key by its full dotted path (``stations[2].elevation_mask_deg``,
``links.uplink.band``) and why.

Paths: files the scenario reads (a TLE file) are relative to the scenario
file's folder; paths the daemons write (``daemon.out_dir``, ``ground.queue``,
``capture.dir``) are relative to the current directory.
"""

from __future__ import annotations

import difflib
import importlib.resources
import math
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from linkstack.capture.pcap import LAYERS as CAPTURE_LAYERS
from linkstack.ccsds.coding.chains import CaduCoding, CltuCoding
from linkstack.ccsds.coding.cltu import DecodeMode
from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS
from linkstack.errors import ConfigError, FieldError
from linkstack.runtime.cop1_link import UplinkConfig
from linkstack.runtime.emulation import EmulationConfig
from payloads.backends import KINDS as BACKEND_KINDS
from payloads.client import ClientConfig
from payloads.service import ServiceConfig

FORMAT = 1
DEFAULT_RESOURCE = "runtime/scenarios/default.toml"

# Bands each RF direction knows, and the preset (and its rate range) behind each.
UPLINK_BANDS: dict[str, tuple[Callable[..., RfLinkConfig], tuple[float, float]]] = {
    "S": (s_band_uplink, S_BAND_UPLINK_RATES_BPS),
}
DOWNLINK_BANDS: dict[str, tuple[Callable[..., RfLinkConfig], tuple[float, float]]] = {
    "X": (x_band_downlink, X_BAND_DOWNLINK_RATES_BPS),
}
LASER_TERMINALS = {"100G": OPTICAL_ISL_100G, "10G": OPTICAL_ISL_10G, "1G": OPTICAL_ISL_1G}


class ScenarioError(ConfigError):
    """A scenario file refused: ``where`` is the file, ``field`` the dotted key path."""

    def __init__(self, source: str, key: str, rule: str) -> None:
        super().__init__(f"scenario {source}", key, rule)
        self.source = source
        self.key = key

    def __reduce__(self):
        return (type(self), (self.source, self.key, self.rule))


# -- what a file resolves to ------------------------------------------------------------


@dataclass(frozen=True)
class CaptureSettings:
    enabled: bool = True
    dir: str = ""  # "" -> daemon.out_dir
    layers: tuple[str, ...] | None = None  # None: every layer


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    password_env: str = ""  # read the password from this environment variable
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


@dataclass(frozen=True)
class DaemonSettings:
    host: str = "127.0.0.1"
    channel_port: int = 47100  # the channel's ingress: one UDP port per link
    node_port: int = 47400  # the nodes' ingress (deliveries): one UDP port per link
    http_port: int = 47080  # ground +0, channel +1, sat +2, all +3; 0: none
    status_interval_s: float = 5.0
    out_dir: str = "out/daemon"


@dataclass(frozen=True)
class GroundSettings:
    name: str = "mcc"
    queue: str = ""  # "" -> <daemon.out_dir>/<name>-queue.sqlite


@dataclass(frozen=True)
class ScenarioFile:
    """A scenario file, read and checked (see the module docstring)."""

    source: str
    name: str
    description: str
    emulation: Any  # linkstack.runtime.emulation.EmulationConfig
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    ground: GroundSettings = field(default_factory=GroundSettings)

    @property
    def scenario(self) -> builtin.Scenario:
        return self.emulation.scenario

    @property
    def out_dir(self) -> Path:
        return Path(self.daemon.out_dir)

    @property
    def capture_dir(self) -> Path:
        return Path(self.capture.dir or self.daemon.out_dir)

    @property
    def queue_path(self) -> Path:
        return Path(
            self.ground.queue or Path(self.daemon.out_dir) / f"{self.ground.name}-queue.sqlite"
        )


# -- reading tables with the key path in every error -------------------------------------


class _Table:
    """One TOML table being read: typed getters that name the key, and a final check
    that every key was known."""

    def __init__(self, source: str, path: str, data: Any) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            raise self.error("", f"must be a table, got {_kind(data)}")
        self.data = data
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (self.path or key)

    def error(self, key: str, rule: str) -> ScenarioError:
        return ScenarioError(self.source, self.key(key) or "(top level)", rule)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def number(
        self,
        key: str,
        default: float,
        lo: float = -math.inf,
        hi: float = math.inf,
        *,
        lo_open: bool = False,
    ) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {_kind(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        low_ok = value > lo if lo_open else value >= lo
        if not (low_ok and value <= hi):
            raise self.error(key, f"must be {_range(lo, hi, lo_open)}, got {value:g}")
        return value

    def integer(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {_kind(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(key, f"must be {_range(lo, hi)}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {_kind(value)}")
        return value

    def text(self, key: str, default: str, *, empty: bool = True) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_kind(value)}")
        if not empty and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def choice(self, key: str, default: str, choices: Any, what: str = "value") -> str:
        value = self.text(key, default)
        if value not in choices:
            known = ", ".join(repr(c) for c in choices)
            raise self.error(key, f"unknown {what} {value!r}; known: {known}")
        return value

    def table(self, key: str) -> _Table:
        return _Table(self.source, self.key(key), self.raw(key, {}))

    def tables(self, key: str) -> list[_Table]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be an array of tables ([[{self.key(key)}]])")
        return [_Table(self.source, f"{self.key(key)}[{i}]", v) for i, v in enumerate(value)]

    def done(self) -> None:
        """Refuse the keys nobody asked for (typos)."""
        for key in self.data:
            if key in self.used:
                continue
            close = difflib.get_close_matches(key, sorted(self.used), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(self.used)) or "none"
            raise self.error(key, f"unknown key{hint}; known here: {known}")

    @contextmanager
    def wrapping(self, names: dict[str, str] | None = None, key: str = "") -> Iterator[None]:
        """Re-raise a ConfigError of a constructor as this table's error, naming the
        key (``names`` maps the constructor's field names to this table's keys; a
        field not there is reported under ``key``, with its own name)."""
        try:
            yield
        except ScenarioError:
            raise
        except FieldError as exc:
            mapped = (names or {}).get(exc.field)
            if mapped is not None:
                raise self.error(mapped, exc.rule) from None
            raise self.error(key, f"{exc.field}: {exc.rule}") from None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _range(lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    lo_txt = None if lo is None or lo == -math.inf else f"{lo:g}"
    hi_txt = None if hi is None or hi == math.inf else f"{hi:g}"
    if lo_txt is not None and hi_txt is not None:
        return f"in {'(' if lo_open else ''}{lo_txt}..{hi_txt}{')' if lo_open else ''}"
    if lo_txt is not None:
        return f"{'>' if lo_open else '>='} {lo_txt}"
    if hi_txt is not None:
        return f"<= {hi_txt}"
    return "a number"


# -- loading -----------------------------------------------------------------------------


def default_text() -> str:
    """The TOML text of the shipped default scenario."""
    return importlib.resources.files("linkstack").joinpath(DEFAULT_RESOURCE).read_text("utf-8")


def load_default() -> ScenarioFile:
    return loads(default_text(), source="default.toml")


def load(path: str | Path) -> ScenarioFile:
    """Read and check a scenario file (see the module docstring)."""
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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "(syntax)", f"not valid TOML: {exc}") from None
    return _Reader(source, base_dir or Path.cwd()).read(data)


class _Reader:
    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    def read(self, data: dict) -> ScenarioFile:
        top = _Table(self.source, "", data)
        fmt = top.integer("format", FORMAT)
        if fmt != FORMAT:
            raise top.error("format", f"this linkstack reads format {FORMAT}, got {fmt}")
        name = top.text("name", "default", empty=False)
        description = top.text("description", "")
        sats, isl_pairs, computing, const_stations, epoch = self._constellation(
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
            scenario = builtin.Scenario(name, epoch, sats, stations, isl_pairs, description)
        links = top.table("links")
        uplink_rf, up_loss, up_ber = self._rf(links.table("uplink"), UPLINK_BANDS, "S")
        downlink_rf, down_loss, down_ber = self._rf(links.table("downlink"), DOWNLINK_BANDS, "X")
        laser = self._laser(links.table("laser"))
        links.done()
        scid_base, uplink_cfg = self._uplink(
            top.table("frames"), top.table("coding"), top.table("cop1")
        )
        if scid_base + len(sats) - 1 > 0xFF:
            raise top.error(
                "frames.scid_base",
                f"{len(sats)} satellites from SCID {scid_base} do not fit the 8-bit AOS SCID",
            )
        backend, service = self._model(top.table("model"))
        ground, client = self._ground(top.table("ground"))
        capture = self._capture(top.table("capture"))
        mqtt = self._mqtt(top.table("mqtt"))
        daemon = self._daemon(top.table("daemon"), len(sats) * 2 + 2 * len(isl_pairs))
        top.done()
        emulation = EmulationConfig(
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
        )
        return ScenarioFile(
            self.source, name, description, emulation, capture, mqtt, daemon, ground
        )

    # -- time and orbits --------------------------------------------------------------
    def _epoch(self, top: _Table) -> datetime | None:
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
                "epoch", f"must be a date-time like 2026-01-01T00:00:00Z, got {_kind(value)}"
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise top.error("epoch", "needs a UTC offset (write it with a Z: 2026-01-01T00:00:00Z)")
        return value.astimezone(UTC)

    def _constellation(
        self, t: _Table, given_epoch: datetime | None
    ) -> tuple[
        tuple[Satellite, ...], tuple[tuple[int, int], ...], tuple[str, ...] | None, tuple, datetime
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
        if source == "builtin":
            which = t.choice(
                "builtin", "default", tuple(builtin.SCENARIOS), "built-in constellation"
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
        elif source == "tle":
            rel = t.text("tle", "", empty=False)
            path = (self.base_dir / rel) if not Path(rel).is_absolute() else Path(rel)
            if not path.is_file():
                raise t.error("tle", f"no such file: {path}")
            role = t.text("role", "compute")
            with t.wrapping(key="tle"):
                sats = tuple(load_tles(path, role))
            if given_epoch is None:  # the newest element set's, as tle_scenario() takes it
                epoch = builtin.tle_scenario(path).epoch
        else:
            planes = t.tables("planes") if t.has("planes") else None
            sats_list: list[Satellite] = []
            if planes is None:  # no constellation given: the default plane
                sats_list = sso_plane(
                    epoch, count=12, alt_m=500e3, ltan_h=22.5, name_prefix="CS", role="compute"
                )
                ring_planes.append((0, 12))
            else:
                if not planes:
                    raise t.error("planes", "at least one plane is needed")
                for p in planes:
                    first = len(sats_list)
                    got = self._plane(p, epoch, first)
                    sats_list += got
                    ring_planes += self._plane_rings(p, first, got)
            sats = tuple(sats_list)
        names = [s.name for s in sats]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise t.error(
                "planes" if source == "planes" else source,
                f"satellite name {dup!r} appears twice (use name_prefix)",
            )
        isl_pairs = self._isl(t, names, ring_planes, builtin_pairs, source)
        computing = self._computing(t, names)
        t.done()
        return sats, isl_pairs, computing, stations, epoch

    def _plane(self, p: _Table, epoch: datetime, first: int) -> list[Satellite]:
        kind = p.choice("kind", "sso", ("sso", "walker"), "plane kind")
        alt_m = 1000.0 * p.number("altitude_km", 500.0, 150.0, 40_000.0)
        prefix = p.text("name_prefix", f"P{first}", empty=False)
        role = p.text("role", "compute")
        names = {
            "alt_m": "altitude_km",
            "count": "count",
            "ltan_h": "ltan_h",
            "inclination_deg": "inclination_deg",
        }
        if kind == "sso":
            count = p.integer("count", 12, 1, 10_000)
            ltan = p.number("ltan_h", 22.5, 0.0, 24.0)
            phase = p.number("phase_deg", 0.0, -360.0, 360.0)
            p.done()
            with p.wrapping(names):
                return sso_plane(
                    epoch, count=count, alt_m=alt_m, ltan_h=ltan, name_prefix=prefix,
                    phase_deg=phase, first_catalog_number=first + 1, role=role,
                )  # fmt: skip
        total = p.integer("total", 12, 1, 10_000)
        planes = p.integer("planes", 1, 1, total)
        phasing = p.integer("phasing", 0, 0, planes - 1)
        inc = p.number("inclination_deg", 53.0, 0.0, 180.0)
        raan0 = p.number("raan0_deg", 0.0, -360.0, 360.0)
        p.raw("ring")
        if total % planes:
            raise p.error("planes", f"must divide total ({total}), got {planes}")
        p.done()
        with p.wrapping(names | {"total": "total", "planes": "planes", "phasing": "phasing"}):
            return walker_delta(
                epoch, total=total, planes=planes, phasing=phasing, inclination_deg=inc,
                alt_m=alt_m, raan0_deg=raan0, name_prefix=prefix,
                first_catalog_number=first + 1, role=role,
            )  # fmt: skip

    @staticmethod
    def _plane_rings(p: _Table, first: int, sats: list[Satellite]) -> list[tuple[int, int]]:
        if p.data.get("kind", "sso") == "walker":
            planes = p.data.get("planes", 1)
            per = len(sats) // planes
            return [(first + k * per, per) for k in range(planes)]
        return [(first, len(sats))]

    def _isl(
        self,
        t: _Table,
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
                "isl", f"must be 'ring', 'none' or a list of [name, name] pairs, got {_kind(value)}"
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
    def _computing(t: _Table, names: list[str]) -> tuple[str, ...] | None:
        value = t.raw("computing", "all")
        if value == "all":
            return None
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise t.error(
                "computing", f"must be 'all' or a list of satellite names, got {_kind(value)}"
            )
        for x in value:
            if x not in names:
                raise t.error("computing", f"no satellite named {x!r}")
        return tuple(value)

    def _station(self, s: _Table) -> GroundStation:
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
        lat0, lon0, alt0 = (site.lat_deg, site.lon_deg, site.alt_m) if site else (0.0, 0.0, 0.0)
        lat = s.number("lat_deg", lat0, -90.0, 90.0)
        lon = s.number("lon_deg", lon0, -180.0, 360.0)
        alt = s.number("alt_m", alt0, -500.0, 10_000.0)
        mask = s.number("elevation_mask_deg", 10.0, 0.0, 90.0)
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
    def _rf(self, t: _Table, bands: dict, default_band: str) -> tuple[RfLinkConfig, float, float]:
        band = t.choice("band", default_band, tuple(bands), "band for this direction")
        preset, (lo, hi) = bands[band]
        base = preset()
        rate = t.number("rate_bps", base.rate_bps, lo, hi)
        freq = t.number("freq_hz", base.freq_hz, 0.0, lo_open=True)
        changes: dict[str, Any] = {}
        for key in ("eirp_dbw", "gt_db_per_k"):
            if t.has(key):
                changes[key] = t.number(key, 0.0, -100.0, 100.0)
        if t.has("other_losses_db"):
            changes["other_losses_db"] = t.number("other_losses_db", 0.0, 0.0, 100.0)
        receiver = base.receiver
        if t.has("acquisition_s"):
            receiver = replace(receiver, acquisition_s=t.number("acquisition_s", 0.0, 0.0, 600.0))
        if t.has("lock_threshold_ebn0_db"):
            receiver = replace(
                receiver,
                lock_threshold_ebn0_db=t.number("lock_threshold_ebn0_db", 0.0, -20.0, 40.0),
            )
        loss = t.number("loss", 0.0, 0.0, 1.0)
        ber = t.number("ber", 0.0, 0.0, 0.5)
        t.done()
        with t.wrapping({"freq_hz": "freq_hz", "rate_bps": "rate_bps"}):
            cfg = preset(freq_hz=freq, rate_bps=rate, receiver=receiver, **changes)
        return cfg, loss, ber

    def _laser(self, t: _Table) -> OpticalTerminal:
        base = LASER_TERMINALS[
            t.choice("terminal", "100G", tuple(LASER_TERMINALS), "laser terminal")
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

    def _uplink(self, frames: _Table, coding: _Table, cop1: _Table) -> tuple[int, UplinkConfig]:
        rs_e = coding.raw("rs_e", 16)
        if isinstance(rs_e, bool) or rs_e not in (16, 8, 0):
            raise coding.error(
                "rs_e", f"must be 16 (RS(255,223)), 8 (RS(255,239)) or 0 (none), got {rs_e!r}"
            )
        depth = coding.integer("rs_depth", 5)
        if depth not in INTERLEAVING_DEPTHS:
            depths = ", ".join(map(str, INTERLEAVING_DEPTHS))
            raise coding.error("rs_depth", f"must be one of {depths}, got {depth}")
        randomize = coding.boolean("randomize", True)
        modes = tuple(m.value for m in DecodeMode)
        cltu_mode = coding.choice("cltu_mode", "correct", modes, "CLTU decoding mode")
        cltu_randomize = coding.boolean("cltu_randomize", True)
        coding.done()
        need = ((223 if rs_e == 16 else 239) * depth) if rs_e else None
        scid_base = frames.integer("scid_base", 0x40, 0, 0xFF)
        tm_len = frames.integer("tm_frame_length", need or 1115, 16, 2048)
        tc_len = frames.integer("tc_max_frame_length", 1024, 16, 1024)
        frames.done()
        if need is not None and tm_len != need:
            raise frames.error(
                "tm_frame_length",
                f"must be {need} octets with Reed-Solomon E={rs_e} at depth {depth} "
                f"(the information part of the codeblock), got {tm_len}",
            )
        farm_w = cop1.integer("farm_window", 64, 2, 254)
        if farm_w % 2:
            raise cop1.error("farm_window", f"must be even, got {farm_w}")
        cfg_kwargs = dict(
            tc_max_frame_length=tc_len,
            tm_frame_length=tm_len,
            farm_window=farm_w,
            fop_window=cop1.integer("fop_window", 16, 1, 255),
            t1_initial_s=cop1.number("t1_s", 2.0, 0.0, 3600.0, lo_open=True),
            transmission_limit=cop1.integer("transmission_limit", 16, 1, 255),
            timeout_type=cop1.integer("timeout_type", 1, 0, 1),
            clcw_interval_s=cop1.number("clcw_interval_s", 0.2, 0.001, 60.0),
            cadu_coding=CaduCoding(rs_e=rs_e or None, rs_depth=depth, randomize=randomize),
            cltu_coding=CltuCoding(randomize=cltu_randomize, mode=DecodeMode(cltu_mode)),
        )
        cop1.done()
        with cop1.wrapping(
            {
                "fop_window": "fop_window",
                "farm_window": "farm_window",
                "clcw_interval_s": "clcw_interval_s",
            }
        ):
            return scid_base, UplinkConfig(**cfg_kwargs)

    # -- the ends and the daemons -------------------------------------------------------------
    def _model(self, t: _Table) -> tuple[str, ServiceConfig]:
        spec = t.text("backend", "tiny", empty=False)
        kind = spec.strip().partition(":")[0].lower()
        if kind not in BACKEND_KINDS:
            raise t.error(
                "backend",
                f"unknown backend kind {kind!r} in {spec!r}; known: {', '.join(BACKEND_KINDS)}",
            )
        base = ServiceConfig()
        kwargs = {
            "concurrency": t.integer("concurrency", base.concurrency, 1, 64),
            "max_queued": t.integer("max_queued", base.max_queued, 0, 100_000),
            "repeat_s": t.number("repeat_s", base.repeat_s, 0.0, 86_400.0, lo_open=True),
            "repeat_backoff": t.number("repeat_backoff", base.repeat_backoff, 1.0, 100.0),
            "max_repeat_s": t.number(
                "max_repeat_s", base.max_repeat_s, 0.0, 86_400.0, lo_open=True
            ),
            "chunk_interval_s": t.number(
                "chunk_interval_s", base.chunk_interval_s, 0.0, 3600.0, lo_open=True
            ),
        }
        t.done()
        with t.wrapping({k: k for k in kwargs}):
            return spec.strip(), ServiceConfig(**kwargs)

    def _ground(self, t: _Table) -> tuple[GroundSettings, ClientConfig]:
        name = t.text("name", "mcc", empty=False)
        if any(c in name for c in "/+#") or not name.isprintable():
            raise t.error(
                "name", f"must not contain '/', '+', '#' (it is an MQTT topic level), got {name!r}"
            )
        queue = t.text("queue", "")
        base = ClientConfig()
        client = ClientConfig(
            ack_delay_s=t.number("ack_delay_s", base.ack_delay_s, 0.0, 60.0),
            retry_after_s=t.number(
                "retry_after_s", base.retry_after_s, 0.0, 86_400.0, lo_open=True
            ),
            max_retries=t.integer("max_retries", base.max_retries, 0, 100),
        )
        t.done()
        return GroundSettings(name, queue), client

    def _capture(self, t: _Table) -> CaptureSettings:
        enabled = t.boolean("enabled", True)
        directory = t.text("dir", "")
        layers = t.raw("layers", None)
        if layers is not None:
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise t.error("layers", f"must be a list of layer names, got {_kind(layers)}")
            for x in layers:
                if x not in CAPTURE_LAYERS:
                    raise t.error(
                        "layers", f"unknown layer {x!r}; known: {', '.join(sorted(CAPTURE_LAYERS))}"
                    )
            layers = tuple(layers)
        t.done()
        return CaptureSettings(enabled, directory, layers)

    def _mqtt(self, t: _Table) -> MqttSettings:
        base = MqttSettings()
        out = MqttSettings(
            enabled=t.boolean("enabled", base.enabled),
            host=t.text("host", base.host, empty=False),
            port=t.integer("port", base.port, 1, 65535),
            username=t.text("username", ""),
            password=t.text("password", ""),
            password_env=t.text("password_env", ""),
            tls=t.boolean("tls", False),
            ca_file=t.text("ca_file", ""),
            cert_file=t.text("cert_file", ""),
            key_file=t.text("key_file", ""),
            tls_insecure=t.boolean("tls_insecure", False),
            prefix=t.text("prefix", base.prefix, empty=False),
            client_id=t.text("client_id", ""),
            keepalive_s=t.integer("keepalive_s", base.keepalive_s, 5, 3600),
            reconnect_min_s=t.number(
                "reconnect_min_s", base.reconnect_min_s, 0.0, 60.0, lo_open=True
            ),
            reconnect_max_s=t.number(
                "reconnect_max_s", base.reconnect_max_s, 0.0, 3600.0, lo_open=True
            ),
        )
        if any(c in out.prefix for c in "+#"):
            raise t.error(
                "prefix", f"must not contain MQTT wildcards '+' or '#', got {out.prefix!r}"
            )
        if out.reconnect_max_s < out.reconnect_min_s:
            raise t.error("reconnect_max_s", "must be at least reconnect_min_s")
        if (out.password or out.password_env) and not out.username:
            raise t.error("username", "a password needs a username")
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(out, key) and not out.tls:
                raise t.error(key, "is used only with tls = true")
        if out.key_file and not out.cert_file:
            raise t.error("key_file", "needs cert_file")
        t.done()
        return out

    def _daemon(self, t: _Table, links: int) -> DaemonSettings:
        base = DaemonSettings()
        out = DaemonSettings(
            host=t.text("host", base.host, empty=False),
            channel_port=t.integer("channel_port", base.channel_port, 1024, 65535),
            node_port=t.integer("node_port", base.node_port, 1024, 65535),
            http_port=t.integer("http_port", base.http_port, 0, 65535),
            status_interval_s=t.number("status_interval_s", base.status_interval_s, 0.1, 3600.0),
            out_dir=t.text("out_dir", base.out_dir, empty=False),
        )
        t.done()
        blocks = {
            "channel_port": (out.channel_port, out.channel_port + links - 1),
            "node_port": (out.node_port, out.node_port + links - 1),
        }
        if out.http_port:
            blocks["http_port"] = (out.http_port, out.http_port + 3)
        for key, (lo, hi) in blocks.items():
            if hi > 65535:
                raise t.error(key, f"the {links} links need ports {lo}..{hi}, past 65535")
        items = list(blocks.items())
        for i, (ka, (alo, ahi)) in enumerate(items):
            for kb, (blo, bhi) in items[i + 1 :]:
                if alo <= bhi and blo <= ahi:
                    raise t.error(
                        kb,
                        f"ports {blo}..{bhi} overlap {ka}'s {alo}..{ahi} "
                        f"({links} links: one port per link in each block)",
                    )
        return out
