"""The contact plans for DTN bundle agents (channels/contacts/dtn.py and `linkstack
contacts --format ion|hdtn`), read back the way the tools read them.

ION: :func:`read_ionrc` is a strict reader of the ionadmin commands we write, after
ION 4.1.3 (nasa-jpl/ION-DTN at 61b6bb3b, ion-open-source-4.1.3 + 210 commits):
``executeAdd`` in ici/utils/ionadmin.c (7 tokens; node numbers > 0; the rate and the
OWLT read with ``strtol(..., 0)`` into an ``unsigned int``, so decimal without a
leading 0, which would make it octal, and at most 2**32 - 1), ``readTimestampUTC``
in ici/library/ion.c (``yyyy/mm/dd-hh:mm:ss`` read as UTC, whole seconds, up to
2038-01-19T03:14:07Z; a "+ss" time is relative to a reference time, which our
plans must not need), ``rfx_insert_contact`` and ``rfx_insert_range`` in
ici/library/rfx.c (a contact overlapping, or touching, another of the same pair is
refused; so is an overlapping range; a range A B with A < B holds both ways).

HDTN: :func:`read_hdtn` is a strict reader after HDTN 1.3.1 (nasa/HDTN at ad79ba06):
``Router::Impl::ProcessContacts`` in module/router/src/router.cpp (the "contacts"
array; "contact", "source", "dest", "startTime" and "endTime" read as ``int``;
"rateBitsPerSec" as ``uint64_t``) and ``cp_load`` in common/cgr/src/libcgr.cpp
("owlt" as ``time_t``; a rate of 0 means its default rate). boost's property tree
falls back to 0 on a missing key or a value that is not an integer, so the reader
refuses both, and floats, bools, NaN and duplicate keys.

What the plans should say is computed here from the scenario file's own text
(tomllib) and the contact plan's windows, in exact fractions, not with the exporter.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.contacts import (
    ContactPlan,
    DtnLinks,
    GroundWindow,
    IslWindow,
    contact_plan,
    to_hdtn,
    to_ion,
)
from channels.geometry import GroundStation
from linkstack.errors import ConfigError
from linkstack.runtime import scenario as scenario_file

EXE = shutil.which("linkstack") or str(Path(sys.executable).parent / "linkstack")
C = 299_792_458  # m/s
MAX_POSIX = 2**31 - 1
UINT_MAX = 2**32 - 1
INT_MAX = 2**31 - 1
DEFAULT_TOML = Path(scenario_file.__file__).parent / "scenarios" / "default.toml"

# Two planes with laser links that come and go (one of them shorter than the
# terminals' acquisition), one that is always up, a fractional epoch, rates and
# acquisition times of its own.
TWO_PLANES = """\
format = 1
name = "dtn-two-planes"
epoch = 2026-03-01T12:00:00.250Z

[constellation]
isl = [["A-01", "B-01"], ["A-01", "A-02"], ["A-05", "B-04"]]

[[constellation.planes]]
kind = "sso"
count = 12
altitude_km = 550.0
ltan_h = 22.5
name_prefix = "A"

[[constellation.planes]]
kind = "sso"
count = 6
altitude_km = 600.0
ltan_h = 13.5
name_prefix = "B"

[[stations]]
name = "Svalbard"

[[stations]]
name = "Kourou"
elevation_mask_deg = 5.0

[links.uplink]
rate_bps = 64000.0
acquisition_s = 4.5

[links.downlink]
rate_bps = 300e6
acquisition_s = 2.25

[links.laser]
terminal = "10G"
rate_bps = 10e9
pat_s = 60.0
max_range_m = 4000e3
"""
HOURS = 6.0


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"linkstack {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


# --- ION, read as ionadmin reads it ------------------------------------------------------

_ION_TIME = re.compile(r"(\d{4})/(\d{2})/(\d{2})-(\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class Contact:
    source: int
    dest: int
    start_s: int
    stop_s: int
    rate: int  # bytes/s for ION, bit/s for HDTN
    owlt_s: int | None = None  # HDTN's contacts carry it; ION's ranges do


@dataclass(frozen=True)
class Range:
    a: int
    b: int
    start_s: int
    stop_s: int
    owlt_s: int


def _ion_posix(token: str, where: str) -> int:
    m = _ION_TIME.fullmatch(token)
    assert m, f"{where}: {token!r} is not an absolute time yyyy/mm/dd-hh:mm:ss"
    # a date that mktime would quietly carry over (Feb 30) is refused here
    instant = datetime(*(int(g) for g in m.groups()), tzinfo=UTC)  # type: ignore[misc]
    posix = calendar.timegm(instant.utctimetuple())
    assert 0 < posix <= MAX_POSIX, f"{where}: {token} is outside what ionadmin takes"
    return posix


def _decimal(token: str, lo: int, hi: int, where: str) -> int:
    # strtol(token, NULL, 0): "010" would be octal, "0x10" hex; we write plain decimal
    assert re.fullmatch(r"0|[1-9][0-9]*", token), f"{where}: {token!r} is not plain decimal"
    value = int(token)
    assert lo <= value <= hi, f"{where}: {value} not in {lo}..{hi}"
    return value


def read_ionrc(text: str) -> tuple[list[Contact], list[Range], list[str]]:
    """The contacts, ranges and comment lines of an ionrc file (see the module doc)."""
    contacts: list[Contact] = []
    ranges: list[Range] = []
    comments: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        where = f"line {number}"
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0].startswith("#"):
            comments.append(line)
            continue
        assert tokens[0] == "a" and tokens[1] in ("contact", "range"), f"{where}: {line!r}"
        assert len(tokens) == 7, f"{where}: {len(tokens)} tokens (7 without a confidence)"
        start, stop = _ion_posix(tokens[2], where), _ion_posix(tokens[3], where)
        assert stop > start, f"{where}: the interval must end after it starts"
        a = _decimal(tokens[4], 1, 2**64 - 1, where)
        b = _decimal(tokens[5], 1, 2**64 - 1, where)
        assert a != b, where
        if tokens[1] == "contact":
            contacts.append(Contact(a, b, start, stop, _decimal(tokens[6], 1, UINT_MAX, where)))
        else:
            assert a < b, f"{where}: a range A B holds both ways only with A < B"
            ranges.append(Range(a, b, start, stop, _decimal(tokens[6], 0, UINT_MAX, where)))
    _no_overlaps([(c.source, c.dest, c.start_s, c.stop_s) for c in contacts], touching=False)
    _no_overlaps([(r.a, r.b, r.start_s, r.stop_s) for r in ranges], touching=True)
    for c in contacts:  # every contact has its light time
        a, b = sorted((c.source, c.dest))
        assert any(
            r.a == a and r.b == b and r.start_s <= c.start_s and c.stop_s <= r.stop_s
            for r in ranges
        ), c
    return contacts, ranges, comments


def _no_overlaps(intervals: list[tuple[int, int, int, int]], *, touching: bool) -> None:
    last: dict[tuple[int, int], int] = {}
    for a, b, start, stop in sorted(intervals, key=lambda i: i[2]):
        prev = last.get((a, b))
        if prev is not None:
            assert start >= prev if touching else start > prev, f"{a}->{b} overlaps at {start}"
        last[(a, b)] = stop


# --- HDTN, read as its router and its contact graph routing read it --------------------

_HDTN_KEYS = {"contact", "source", "dest", "startTime", "endTime", "rateBitsPerSec", "owlt"}


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(set(keys)) == len(keys), f"duplicate keys in {keys}"
    return dict(pairs)


def _refuse(what: str) -> Any:
    raise AssertionError(f"HDTN reads integers only, got {what}")


def read_hdtn(text: str) -> list[Contact]:
    """The contacts of an HDTN contact plan (see the module doc)."""
    doc = json.loads(
        text,
        object_pairs_hook=_no_duplicate_keys,
        parse_float=_refuse,
        parse_constant=_refuse,
    )
    assert isinstance(doc, dict) and set(doc) == {"contacts"}, "one key: contacts"
    assert isinstance(doc["contacts"], list)
    out: list[Contact] = []
    ids = set()
    for i, c in enumerate(doc["contacts"]):
        assert isinstance(c, dict) and set(c) == _HDTN_KEYS, f"contact {i}: keys {sorted(c)}"
        for key, value in c.items():
            assert type(value) is int, f"contact {i}: {key} = {value!r} is not an integer"
        limits = {
            "contact": (0, INT_MAX),
            "source": (1, INT_MAX),
            "dest": (1, INT_MAX),
            "startTime": (0, INT_MAX),
            "endTime": (0, INT_MAX),
            "rateBitsPerSec": (1, 2**64 - 1),  # 0 would be libcgr's default rate
            "owlt": (0, 2**63 - 1),
        }
        for key, (lo, hi) in limits.items():
            assert lo <= c[key] <= hi, f"contact {i}: {key} = {c[key]} not in {lo}..{hi}"
        assert c["contact"] not in ids, f"contact id {c['contact']} twice"
        ids.add(c["contact"])
        assert c["source"] != c["dest"] and c["endTime"] > c["startTime"], f"contact {i}"
        out.append(
            Contact(
                c["source"], c["dest"], c["startTime"], c["endTime"], c["rateBitsPerSec"], c["owlt"]
            )
        )
    return out


# --- what the plans should say -------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    contacts: set[tuple[int, int, int, int, str]]  # source, dest, start, stop, link kind
    ranges: set[Range]
    owlt: dict[tuple[int, int, int], int]  # (a, b, a contact's start) -> its range's OWLT


def _posix(epoch: datetime) -> Fraction:
    return Fraction(calendar.timegm(epoch.utctimetuple())) + Fraction(epoch.microsecond, 10**6)


def expected_plan(
    plan: ContactPlan, nodes: dict[str, int], up_acq: Any, down_acq: Any, pat: Any
) -> Expected:
    """The whole seconds inside each window (range) and inside the time each direction
    carries data (contact), from the plan's windows, in exact arithmetic."""
    epoch = _posix(plan.epoch)
    contacts: set[tuple[int, int, int, int, str]] = set()
    ranges: set[Range] = set()
    owlt: dict[tuple[int, int, int], int] = {}

    def inside(a: float, delay: Any, b: float) -> tuple[int, int] | None:
        start = math.ceil(epoch + Fraction(a) + Fraction(delay))
        stop = math.floor(epoch + Fraction(b))
        return (start, stop) if stop > start else None

    def add(x: str, y: str, t0: float, t1: float, range_m: float, dirs: list) -> None:
        window = inside(t0, 0, t1)
        if window is None:
            return
        a, b = sorted((nodes[x], nodes[y]))
        light = math.ceil(Fraction(range_m) / C)
        ranges.add(Range(a, b, *window, light))
        for src, dst, delay, kind in dirs:
            carried = inside(t0, delay, t1)
            if carried:
                contacts.add((nodes[src], nodes[dst], *carried, kind))
                owlt[(nodes[src], nodes[dst], carried[0])] = light

    for w in plan.ground:
        s, g = w.satellite, w.station
        add(
            s,
            g,
            w.aos_t_s,
            w.los_t_s,
            w.max_range_m,
            [(s, g, down_acq, "down"), (g, s, up_acq, "up")],
        )
    for w in plan.isl:
        p = 0 if w.start_clipped else pat  # already up when the plan starts
        add(
            w.sat_a,
            w.sat_b,
            w.start_t_s,
            w.stop_t_s,
            w.max_range_m,
            [(w.sat_a, w.sat_b, p, "isl"), (w.sat_b, w.sat_a, p, "isl")],
        )
    return Expected(contacts, ranges, owlt)


def _nodes(sats: list[str], stations: list[str]) -> dict[str, int]:
    # satellites 1..N in scenario order, then stations N+1..N+M (the plan's documented rule)
    return {name: i + 1 for i, name in enumerate([*sats, *stations])}


@pytest.fixture(scope="module")
def two_planes(tmp_path_factory):
    path = tmp_path_factory.mktemp("dtn") / "two-planes.toml"
    path.write_text(TWO_PLANES)
    toml = tomllib.loads(TWO_PLANES)
    sf = scenario_file.load(path)
    sc = sf.scenario
    plan = contact_plan(
        sc,
        duration_s=HOURS * 3600.0,
        samples=False,
        isl_max_range_m=toml["links"]["laser"]["max_range_m"],
    )
    nodes = _nodes([s.name for s in sc.satellites], [s["name"] for s in toml["stations"]])
    links = toml["links"]
    want = expected_plan(
        plan,
        nodes,
        links["uplink"]["acquisition_s"],
        links["downlink"]["acquisition_s"],
        links["laser"]["pat_s"],
    )
    return path, toml, plan, nodes, want


def test_the_two_plane_scenario_exercises_every_case(two_planes):
    _, _, plan, _, want = two_planes
    assert plan.epoch.microsecond == 250_000
    isl = {(w.sat_a, w.sat_b) for w in plan.isl}
    assert isl == {("A-01", "B-01"), ("A-01", "A-02"), ("A-05", "B-04")}
    assert any(w.start_clipped for w in plan.isl)  # up when the plan starts: no PAT
    short = [w for w in plan.isl if not w.start_clipped and w.duration_s < 60.0]
    assert short  # shorter than the PAT: a range and no contact
    assert len(plan.ground) > 20
    assert len(want.ranges) == len(plan.ground) + len(plan.isl)


def test_ion_plan_of_a_scenario_file(two_planes):
    path, toml, plan, nodes, want = two_planes
    text = run("contacts", "--scenario", str(path), "--hours", str(HOURS), "--format", "ion").stdout
    contacts, ranges, comments = read_ionrc(text)
    links = toml["links"]
    rate = {
        "up": int(links["uplink"]["rate_bps"]) // 8,
        "down": int(links["downlink"]["rate_bps"]) // 8,
        "isl": int(links["laser"]["rate_bps"]) // 8,
    }
    assert rate == {"up": 8000, "down": 37_500_000, "isl": 1_250_000_000}
    got = {(c.source, c.dest, c.start_s, c.stop_s, c.rate) for c in contacts}
    assert len(got) == len(contacts)
    assert got == {(a, b, s, e, rate[kind]) for a, b, s, e, kind in want.contacts}
    assert set(ranges) == want.ranges and len(ranges) == len(want.ranges)
    assert {r.owlt_s for r in ranges} == {1}  # LEO: at most ~13 ms, rounded up
    # The absolute times are the scenario's UTC: the first pass's downlink, by hand.
    w = plan.ground[0]
    aos = plan.epoch + timedelta(seconds=w.aos_t_s + links["downlink"]["acquisition_s"])
    first = datetime.fromtimestamp(math.ceil(aos.timestamp()), UTC).strftime("%Y/%m/%d-%H:%M:%S")
    sat, station = nodes[w.satellite], nodes[w.station]
    assert any(ln.startswith(f"a contact {first} ") and ln.endswith(f" {sat} {station} 37500000")
               for ln in text.splitlines())  # fmt: skip
    for name, n in nodes.items():  # which node is which, for whoever reads it
        assert f"# node {n} {name}" in comments


def test_hdtn_plan_of_a_scenario_file(two_planes):
    path, toml, _, _, want = two_planes
    args = ("contacts", "--scenario", str(path), "--hours", str(HOURS), "--format", "hdtn")
    unix = read_hdtn(run(*args).stdout)
    links = toml["links"]
    rate = {
        "up": int(links["uplink"]["rate_bps"]),
        "down": int(links["downlink"]["rate_bps"]),
        "isl": int(links["laser"]["rate_bps"]),
    }
    got = {(c.source, c.dest, c.start_s, c.stop_s, c.rate) for c in unix}
    assert got == {(a, b, s, e, rate[kind]) for a, b, s, e, kind in want.contacts}
    assert len(unix) == len(want.contacts)
    assert all(c.owlt_s == want.owlt[(c.source, c.dest, c.start_s)] == 1 for c in unix)
    # Relative: seconds after the plan's start to the whole second below (12:00:00).
    relative = read_hdtn(run(*args, "--hdtn-times", "relative").stdout)
    zero = calendar.timegm(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).utctimetuple())
    shifted = {(c.source, c.dest, c.start_s + zero, c.stop_s + zero, c.rate) for c in relative}
    assert shifted == got
    # A link up when the plan starts at 12:00:00.250 carries data from 12:00:01.
    assert min(c.start_s for c in relative) == 1


def test_default_scenario_rates_and_the_ways_to_name_it():
    toml = tomllib.loads(DEFAULT_TOML.read_text())
    links = toml["links"]
    ion = run("contacts", "--hours", "2", "--format", "ion").stdout
    contacts, _, comments = read_ionrc(ion)
    sats = set(range(1, 13))
    rates = set()
    for c in contacts:
        kind = (
            "laser"
            if c.source in sats and c.dest in sats
            else ("downlink" if c.source in sats else "uplink")
        )
        rates.add((kind, c.rate))
    assert rates == {
        ("uplink", int(links["uplink"]["rate_bps"]) // 8),  # 256 kbit/s: 32,000 bytes/s
        ("downlink", int(links["downlink"]["rate_bps"]) // 8),  # 150 Mbit/s: 18,750,000
        ("laser", UINT_MAX),  # 100 Gbit/s is 12.5e9 bytes/s: more than ionadmin holds
    }
    assert any("capped" in line and "12500000000" in line for line in comments)
    hdtn = read_hdtn(run("contacts", "--hours", "2", "--format", "hdtn").stdout)
    assert {c.rate for c in hdtn} == {
        int(links[k]["rate_bps"]) for k in ("uplink", "downlink", "laser")
    }
    # The shipped scenario file, by option or by name, is the built-in default.
    for args in (("--scenario", str(DEFAULT_TOML)), (str(DEFAULT_TOML),)):
        assert run("contacts", *args, "--hours", "2", "--format", "ion").stdout == ion


def test_cli_refusals(tmp_path):
    proc = run("contacts", "default", "--scenario", str(DEFAULT_TOML), check=False)
    assert proc.returncode == 2 and "not both" in proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\n[links.laser]\nrate_bsp = 1e9\n")
    proc = run("contacts", "--scenario", str(bad), "--format", "ion", check=False)
    assert proc.returncode == 2 and "rate_bsp" in proc.stderr and not proc.stdout


# --- any windows, any links: the rounding, read back ----------------------------------


def _synthetic_plan(epoch: datetime, ground: list, isl: list) -> ContactPlan:
    stations = (GroundStation("G", 0.0, 0.0, 0.0, 10.0),)
    return ContactPlan(
        "synthetic", epoch, 0.0, 4000.0, 10.0, stations, ("S1", "S2"), tuple(ground), tuple(isl)
    )


def _windows(draw: st.DrawFn) -> list[tuple[float, float]]:
    """Disjoint windows in 0..4000 s (the plan's span), some shorter than a second."""
    out = []
    t = draw(st.floats(0.0, 50.0))
    for _ in range(draw(st.integers(0, 5))):
        length = draw(st.one_of(st.floats(0.0, 2.0), st.floats(2.0, 600.0)))
        if t + length > 4000.0:
            break
        out.append((t, t + length))
        t += length + draw(st.floats(1.0, 300.0))
    return out


@st.composite
def synthetic(draw: st.DrawFn) -> tuple[ContactPlan, DtnLinks]:
    epoch = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 10**8)), microseconds=draw(st.integers(0, 999_999))
    )
    ground = [
        GroundWindow("G", "S1", a, b, 45.0, a, 500e3, draw(st.floats(500e3, 3000e3)), a == 0.0)
        for a, b in _windows(draw)
    ]
    isl = [
        IslWindow("S1", "S2", a, b, 1000e3, draw(st.floats(1000e3, 1e9)), a == 0.0)
        for a, b in _windows(draw)
    ]
    rates = st.floats(8.0, 2e11)
    delays = st.floats(0.0, 100.0)
    links = DtnLinks(
        draw(rates), draw(rates), draw(rates), draw(delays), draw(delays), draw(delays)
    )
    return _synthetic_plan(epoch, ground, isl), links


@given(synthetic())
def test_any_plan_reads_back_as_the_whole_seconds_of_its_windows(case):
    plan, links = case
    nodes = _nodes(["S1", "S2"], ["G"])
    want = expected_plan(
        plan, nodes, links.uplink_acquisition_s, links.downlink_acquisition_s, links.isl_pat_s
    )
    contacts, ranges, _ = read_ionrc(to_ion(plan, links))
    bytes_per_s = {
        kind: min(math.floor(Fraction(rate) / 8), UINT_MAX)
        for kind, rate in (
            ("up", links.uplink_rate_bps),
            ("down", links.downlink_rate_bps),
            ("isl", links.isl_rate_bps),
        )
    }
    got = {(c.source, c.dest, c.start_s, c.stop_s, c.rate) for c in contacts}
    assert got == {(a, b, s, e, bytes_per_s[kind]) for a, b, s, e, kind in want.contacts}
    assert set(ranges) == want.ranges
    bits = {
        "up": math.floor(links.uplink_rate_bps),
        "down": math.floor(links.downlink_rate_bps),
        "isl": math.floor(links.isl_rate_bps),
    }
    hdtn = read_hdtn(to_hdtn(plan, links))
    assert {(c.source, c.dest, c.start_s, c.stop_s, c.rate) for c in hdtn} == {
        (a, b, s, e, bits[kind]) for a, b, s, e, kind in want.contacts
    }
    assert all(c.owlt_s == want.owlt[(c.source, c.dest, c.start_s)] for c in hdtn)
    zero = math.floor(_posix(plan.epoch))
    relative = read_hdtn(to_hdtn(plan, links, times="relative"))
    assert [(c.start_s + zero, c.stop_s + zero) for c in relative] == [
        (c.start_s, c.stop_s) for c in hdtn
    ]


def test_light_time_is_whole_seconds_rounded_up():
    second_m = float(C)  # one light-second
    ranges_m = [second_m / 3, second_m, second_m + 1e-6, 2.5 * second_m]
    isl = [IslWindow("S1", "S2", 100.0 * i, 100.0 * i + 50, 1e6, r) for i, r in enumerate(ranges_m)]
    plan = _synthetic_plan(datetime(2026, 1, 1, tzinfo=UTC), [], isl)
    links = DtnLinks(1e3, 1e6, 1e9)
    _, ranges, _ = read_ionrc(to_ion(plan, links))
    assert [r.owlt_s for r in ranges] == [1, 1, 2, 3]
    owlts = [c.owlt_s for c in read_hdtn(to_hdtn(plan, links))]
    assert owlts == [1, 1, 1, 1, 2, 2, 3, 3]  # both directions of each window


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uplink_rate_bps": 0.0}, "uplink_rate_bps"),
        ({"downlink_rate_bps": math.nan}, "downlink_rate_bps"),
        ({"isl_rate_bps": True}, "isl_rate_bps"),
        ({"uplink_acquisition_s": -1.0}, "uplink_acquisition_s"),
        ({"isl_pat_s": math.inf}, "isl_pat_s"),
    ],
)
def test_links_refuse_impossible_values(kwargs, field):
    args: dict[str, Any] = {"uplink_rate_bps": 1e3, "downlink_rate_bps": 1e6, "isl_rate_bps": 1e9}
    args.update(kwargs)
    with pytest.raises(ConfigError) as exc:
        DtnLinks(**args)
    assert exc.value.field == field


def test_exports_refuse_what_the_tools_cannot_take():
    window = GroundWindow("G", "S1", 100.0, 400.0, 45.0, 250.0, 500e3, 2000e3)
    plan = _synthetic_plan(datetime(2026, 1, 1, tzinfo=UTC), [window], [])
    with pytest.raises(ConfigError) as exc:  # under a byte a second: ION refuses a 0 rate
        to_ion(plan, DtnLinks(7.0, 1e6, 1e9))
    assert exc.value.field == "rate_bps"
    late = _synthetic_plan(datetime(2038, 1, 19, 3, 10, tzinfo=UTC), [window], [])
    for export in (to_ion, to_hdtn):  # past 2038-01-19T03:14:07Z
        with pytest.raises(ConfigError) as exc:
            export(plan=late, links=DtnLinks(1e3, 1e6, 1e9))
        assert exc.value.field == "time"
    # Seconds after the plan's start fit HDTN's int whenever the plan is.
    relative = read_hdtn(to_hdtn(late, DtnLinks(1e3, 1e6, 1e9), times="relative"))
    assert [(c.start_s, c.stop_s) for c in relative] == [(100, 400), (100, 400)]
    with pytest.raises(ConfigError) as exc:
        to_hdtn(plan, DtnLinks(1e3, 1e6, 1e9), times="gps")  # type: ignore[arg-type]
    assert exc.value.field == "times"
