"""linkstack.runtime.scenario: TOML scenario files, their defaults and their refusals."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.scenarios import default_scenario
from linkstack.runtime import scenario as sc
from linkstack.runtime.daemon_settings import HttpLimits
from linkstack.runtime.emulation import EmulationConfig
from linkstack.runtime.scenario import ScenarioError, load, load_default, loads
from linkstack.tools.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "linkstack" / "runtime" / "scenarios" / "default.toml"


def same_satellites(a, b) -> bool:
    fields = ("no_kozai", "inclo", "nodeo", "mo", "ecco", "argpo", "jdsatepoch", "jdsatepochF")
    return len(a) == len(b) and all(
        x.name == y.name
        and x.role == y.role
        and all(
            getattr(x.satrec, f) == pytest.approx(getattr(y.satrec, f), abs=1e-12) for f in fields
        )
        for x, y in zip(a, b, strict=True)
    )


def test_the_shipped_default_is_the_built_in_default_scenario():
    f = load_default()
    built = default_scenario()
    s = f.scenario
    assert (s.name, s.epoch, s.stations, s.isl_pairs) == (
        built.name,
        built.epoch,
        built.stations,
        built.isl_pairs,
    )
    assert same_satellites(s.satellites, built.satellites)
    base = EmulationConfig()
    for key in (
        "backend",
        "service",
        "client",
        "uplink",
        "uplink_rf",
        "downlink_rf",
        "laser",
        "uplink_loss",
        "downlink_loss",
        "uplink_ber",
        "downlink_ber",
        "scid_base",
        "seed",
        "computing",
    ):
        assert getattr(f.emulation, key) == getattr(base, key), key
    assert f.mqtt == sc.MqttSettings() and f.daemon == sc.DaemonSettings()
    assert f.ground == sc.GroundSettings() and f.capture == sc.CaptureSettings()


def test_an_empty_file_means_the_default_and_the_package_ships_it():
    empty, shipped = loads(""), load(SHIPPED)
    assert same_satellites(empty.scenario.satellites, shipped.scenario.satellites)
    assert empty.emulation.uplink == shipped.emulation.uplink
    assert sc.default_text() == SHIPPED.read_text()


def test_show_prints_the_default_and_check_summarises_a_file(capsys, tmp_path):
    assert cli_main(["scenario", "show"]) == 0
    assert capsys.readouterr().out == SHIPPED.read_text()
    assert cli_main(["scenario", "check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "12 satellites" in out and "channel 47100..47112" in out
    assert "48 links on 13 ends" in out


# -- the shipped default.toml against the defaults (which live in the dataclasses) -----------

_SATREC = re.compile(r"<sgp4\.wrapper\.Satrec object at 0x[0-9a-f]+>")
_ELEMENTS = ("no_kozai", "inclo", "nodeo", "mo", "ecco", "argpo", "jdsatepoch", "jdsatepochF")


def fingerprint(f: sc.ScenarioFile) -> str:
    """Everything a scenario file reads to, as text (satellites by their elements)."""
    sats = [
        (s.name, s.role, [getattr(s.satrec, e) for e in _ELEMENTS]) for s in f.scenario.satellites
    ]
    return _SATREC.sub("<satrec>", repr(replace(f, source=""))) + repr(sats)


def _key_lines(text: str) -> list[tuple[int, str]]:
    """(line index, full dotted key path) of every ``key = value`` line of a TOML file
    whose keys are one a line, as default.toml writes them."""
    table, counts, out = "", {}, []
    for i, line in enumerate(text.splitlines()):
        if m := re.match(r"\[\[([\w.]+)\]\]", line):
            counts[m[1]] = counts.get(m[1], -1) + 1
            table = f"{m[1]}[{counts[m[1]]}]"
        elif m := re.match(r"\[([\w.]+)\]", line):
            table = m[1]
        elif m := re.match(r"(\w+)\s*=", line):
            out.append((i, f"{table}.{m[1]}" if table else m[1]))
    return out


def _without(text: str, drop: set[int]) -> str:
    return "\n".join(line for i, line in enumerate(text.splitlines()) if i not in drop)


# keys of default.toml that are not at the default they would have if left out, and why
NOT_DEFAULTS = {
    # free text: the shipped file describes its scenario; a file may say nothing
    "description",
    # the default constellation is one plane named CS-01..; a plane given without
    # a name_prefix is named after its first satellite's index (P0-01..)
    "constellation.planes[0].name_prefix",
}


def test_every_key_of_the_shipped_default_is_at_its_default():
    """Left out, each key of default.toml gives the same scenario: the file writes the
    defaults, and the defaults are the fields of the dataclasses (the reader takes them
    from there; the first test holds the result to EmulationConfig() and the settings)."""
    text = SHIPPED.read_text()
    reference = fingerprint(loads(text, source="default.toml"))
    keys = _key_lines(text)
    assert len(keys) > 80
    differ = []
    for i, key in keys:
        if key in NOT_DEFAULTS:
            continue
        try:
            got = fingerprint(loads(_without(text, {i}), source="default.toml"))
        except ScenarioError as exc:
            if not re.fullmatch(r"stations\[\d+\]\.name", key):  # no default: required
                differ.append(f"{key}: without it the file is refused: {exc}")
            continue
        if got != reference:
            differ.append(
                f"{key}: default.toml says {text.splitlines()[i].split('#')[0].strip()!r}"
            )
    # an array of tables is a default as a whole: the stations, the constellation's plane
    for array in ("stations", "constellation.planes"):
        lines = {i for i, key in keys if key.startswith(f"{array}[")}
        lines |= {i for i, line in enumerate(text.splitlines()) if line == f"[[{array}]]"}
        if fingerprint(loads(_without(text, lines), source="default.toml")) != reference:
            differ.append(f"{array}: the [[{array}]] of default.toml are not the default ones")
    assert not differ, "default.toml differs from the defaults:\n" + "\n".join(differ)


def test_an_empty_file_reads_to_the_default_instances():
    f = loads("")
    text = SHIPPED.read_text()
    described = {i for i, key in _key_lines(text) if key == "description"}
    assert fingerprint(f) == fingerprint(loads(_without(text, described)))
    base = EmulationConfig()
    for key in (f.name for f in fields(EmulationConfig) if f.name != "scenario"):
        assert getattr(f.emulation, key) == getattr(base, key), key
    assert (f.capture, f.mqtt, f.daemon, f.ground, f.gateway, f.radio) == (
        sc.CaptureSettings(),
        sc.MqttSettings(),
        sc.DaemonSettings(),
        sc.GroundSettings(),
        sc.GatewaySettings(),
        sc.RadioSettings(),
    )


def test_the_shipped_default_names_every_key_the_reader_knows():
    """Each table's known keys (as an unknown key's refusal lists them) are written in
    default.toml, as a key or in a comment."""
    text = SHIPPED.read_text()
    lines = text.splitlines()
    tables = [(0, "")]  # (the line where its keys start, its path)
    for i, line in enumerate(lines):
        if m := re.match(r"\[(\[?)([\w.]+)\]", line):
            tables.append((i + 1, f"{m[2]}[0]" if m[1] else m[2]))
    seen = set()
    for at, path in tables:
        if path in seen:  # the first of an array of tables stands for them all
            continue
        seen.add(path)
        with pytest.raises(ScenarioError) as info:
            loads("\n".join([*lines[:at], "zzz_not_a_key = 1", *lines[at:]]))
        assert info.value.key == (f"{path}." if path else "") + "zzz_not_a_key", str(info.value)
        known = info.value.rule.partition("known here: ")[2].split(", ")
        missing = [k for k in known if not re.search(rf"\b{k}\b", text)]
        assert not missing, f"{path or '(top level)'}: default.toml does not mention {missing}"
    assert len(seen) == 24  # [sdls], its three associations and its management; [power]


def test_a_constellation_of_planes_stations_by_name_and_listed_laser_links():
    f = loads(
        """
        name = "two planes"
        [constellation]
        isl = [["A-01", "B-P01-S01"], ["A-02", "A-01"]]
        computing = ["A-01"]
        [[constellation.planes]]
        count = 2
        altitude_km = 600
        ltan_h = 10.5
        name_prefix = "A"
        [[constellation.planes]]
        kind = "walker"
        total = 4
        planes = 2
        phasing = 1
        inclination_deg = 53
        altitude_km = 550
        name_prefix = "B"
        [[stations]]
        name = "Kiruna"
        [[stations]]
        name = "Home"
        lat_deg = 48.1
        lon_deg = 11.6
        elevation_mask_deg = 5
        [links.uplink]
        rate_bps = 64000
        loss = 0.1
        [links.laser]
        terminal = "10G"
        [coding]
        rs_depth = 4
        [cop1]
        fop_window = 8
        [model]
        backend = "tiny:7"
        """
    )
    s = f.scenario
    assert s.satellite_names == ("A-01", "A-02", "B-P01-S01", "B-P01-S02", "B-P02-S01", "B-P02-S02")
    assert s.isl_pairs == ((0, 2), (1, 0))
    assert [st.name for st in s.stations] == ["Kiruna", "Home"]
    assert s.stations[0].lat_deg == 67.88 and s.stations[1].min_elevation_deg == 5.0
    cfg = f.emulation
    assert cfg.computing == ("A-01",) and cfg.backend == "tiny:7"
    assert cfg.uplink_rf.rate_bps == 64000 and cfg.uplink_loss == 0.1
    assert cfg.laser.rate_bps == 10e9
    assert cfg.uplink.tm_frame_length == 223 * 4 and cfg.uplink.cadu_coding.rs_depth == 4
    assert cfg.uplink.fop_window == 8


def test_rings_follow_the_planes():
    f = loads(
        """
        [[constellation.planes]]
        kind = "walker"
        total = 6
        planes = 2
        phasing = 0
        name_prefix = "W"
        """
    )
    assert f.scenario.isl_pairs == ((0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3))


def _tle_line(body: str) -> str:
    total = sum(int(c) if c.isdigit() else c == "-" for c in body)
    return body + str(total % 10)


def test_a_tle_file_beside_the_scenario(tmp_path):
    l1 = _tle_line("1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  900")
    l2 = _tle_line("2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.5037757912345")
    (tmp_path / "sats.tle").write_text(f"ISS (ZARYA)\n{l1}\n{l2}\n")
    path = tmp_path / "s.toml"
    path.write_text('[constellation]\ntle = "sats.tle"\n')
    f = load(path)
    assert f.scenario.satellite_names == ("ISS (ZARYA)",) and f.scenario.isl_pairs == ()
    assert f.scenario.epoch == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)  # the elements' own
    (tmp_path / "sats.tle").write_text(f"ISS (ZARYA)\n{l1[:-1]}0\n{l2}\n")
    with pytest.raises(ScenarioError, match=r"constellation\.tle: .*checksum"):
        load(path)
    (tmp_path / "sats.tle").write_text(f"ISS (ZARYA)\n{l1}\n{l2}\n")
    path.write_text('[constellation]\ntle = "sats.tle"\nisl = "ring"\n')
    with pytest.raises(ScenarioError, match="'ring' needs planes"):
        load(path)


def test_a_built_in_constellation_by_name():
    f = loads('[constellation]\nbuiltin = "default"')
    assert same_satellites(f.scenario.satellites, default_scenario().satellites)
    assert f.scenario.isl_pairs == default_scenario().isl_pairs
    # 2,800 satellites do not fit the 8-bit spacecraft ids of AOS: said at once
    with pytest.raises(ScenarioError, match=r"frames\.scid_base: 2800 satellites"):
        loads('[constellation]\nbuiltin = "planned-2800"')


def test_the_shipped_planned_2800_runs_as_it_is():
    """`--scenario planned-2800`: the built-in network with USLP (its 2,800 SCIDs) and
    its queries served by the 2,400 inference satellites; shells kept for reports."""
    f = load("planned-2800")
    sc = f.scenario
    assert f.name == "planned-2800" and f.source == "planned-2800 (shipped)"
    assert len(sc.satellites) == 2800 and len(sc.isl_pairs) == 10_708 and len(sc.stations) == 20
    assert f.emulation.uplink.protocol == "uslp"
    assert f.emulation.computing is not None and len(f.emulation.computing) == 2400
    roles = {s.name: s.role for s in sc.satellites}
    assert {roles[n] for n in f.emulation.computing} == {"inference"}
    assert sc.shell_of["TR650-P01-001"] == "TR650"
    # a file of that name in the current folder would be read instead: names are no paths
    with pytest.raises(ScenarioError, match="cannot be read"):
        load("planned-2801")


def test_the_command_line_shows_and_checks_a_shipped_scenario_by_name(capsys):
    assert cli_main(["scenario", "show", "planned-2800"]) == 0
    assert 'builtin = "planned-2800"' in capsys.readouterr().out
    assert cli_main(["scenario", "check", "planned-2800"]) == 0
    assert "2800 satellites (2400 computing), 10708 laser pairs" in capsys.readouterr().out


def test_computing_by_role():
    text = '[constellation]\nbuiltin = "planned-2800"\ncomputing = {{ role = "{}" }}\n'
    text += '[frames]\nprotocol = "uslp"\n'
    f = loads(text.format("training"))
    assert len(f.emulation.computing) == 400
    assert all(n.startswith("TR") for n in f.emulation.computing)
    with pytest.raises(ScenarioError, match=r"constellation\.computing: no satellite has role"):
        loads(text.format("relay"))
    bad = text.replace('{{ role = "{}" }}', '{ rolle = "x" }')
    with pytest.raises(ScenarioError, match=r'a table must be \{ role = "ROLE" \}'):
        loads(bad)


BAD = [
    # (file text, the key the error names, words of the reason)
    ("epoc = 2026-01-01T00:00:00Z", "epoc", "unknown key (did you mean 'epoch'?)"),
    (
        "[[stations]]\nname = 'Kiruna'\nelevation_maks_deg = 5",
        "stations[0].elevation_maks_deg",
        "did you mean 'elevation_mask_deg'",
    ),
    (
        "[[stations]]\nname='Kiruna'\n[[stations]]\nname='Mohe'\n[[stations]]\nname='Sanya'\n"
        "elevation_mask_deg = 95",
        "stations[2].elevation_mask_deg",
        "must be in 0..90, got 95",
    ),
    (
        "[[stations]]\nname = 'X'\nlat_deg = 1\nlon_deg = 2\nalt_m = -900",
        "stations[0].alt_m",
        "-500",
    ),
    ("[[stations]]\nname = 'Nowhere'", "stations[0].lat_deg", "missing"),
    (
        "[[constellation.planes]]\naltitude_km = -500",
        "constellation.planes[0].altitude_km",
        "must be in 150..40000, got -500",
    ),
    (
        "[[constellation.planes]]\ncount = 0",
        "constellation.planes[0].count",
        "must be in 1..10000, got 0",
    ),
    (
        "[[constellation.planes]]\nkind = 'polar'",
        "constellation.planes[0].kind",
        "unknown plane kind",
    ),
    ("[links.uplink]\nband = 'Ka'", "links.uplink.band", "unknown band for this direction 'Ka'"),
    ("[links.downlink]\nband = 'S'", "links.downlink.band", "known: 'X'"),
    ("[links.uplink]\nrate_bps = 10e6", "links.uplink.rate_bps", "must be in 64000..2e+06"),
    ("[links.uplink]\nfreq_hz = 8e9", "links.uplink.freq_hz", "outside the S-band"),
    ("[links.downlink]\nloss = 1.5", "links.downlink.loss", "must be in 0..1"),
    ("[links.laser]\nterminal = '400G'", "links.laser.terminal", "unknown laser terminal"),
    ("[model]\nbackend = 'onnx:/m'", "model.backend", "unknown backend kind 'onnx'"),
    ("[coding]\nrs_e = 10", "coding.rs_e", "must be 16"),
    ("[coding]\nrs_depth = 6", "coding.rs_depth", "must be one of 1, 2, 3, 4, 5, 8"),
    ("[frames]\ntm_frame_length = 1000", "frames.tm_frame_length", "must be 1115 octets"),
    ("[cop1]\nfop_window = 40", "cop1.fop_window", "exceeds FARM-1's window edge"),
    ("[cop1]\nfarm_window = 63", "cop1.farm_window", "must be even"),
    ("[cop1]\nt1_s = 0", "cop1.t1_s", "must be in (0..3600)"),
    ("[mqtt]\nport = 70000", "mqtt.port", "must be in 1..65535"),
    ("[mqtt]\nprefix = 'a/#'", "mqtt.prefix", "wildcards"),
    ("[mqtt]\npassword = 'x'", "mqtt.username", "a password needs a username"),
    ("[ground]\nname = 'a/b'", "ground.name", "MQTT topic level"),
    ("[capture]\nlayers = ['cltu', 'ethernet']", "capture.layers", "unknown layer 'ethernet'"),
    ("[daemon]\nnode_port = 47110", "daemon.node_port", "overlap channel_port's 47100..47112"),
    ("[daemon]\nsat_ports = 0", "daemon.sat_ports", "must be in 1..4096"),
    ("[daemon]\nchannel_port = 65530", "daemon.channel_port", "past 65535"),
    (
        "[daemon.http]\nmax_line_bytes = 0",
        "daemon.http.max_line_bytes",
        "must be in 256..65536, got 0",
    ),
    ("[daemon.http]\nmax_field_bytes = 2e6", "daemon.http.max_field_bytes", "must be an integer"),
    (
        "[daemon.http]\nmax_headers = 5000",
        "daemon.http.max_headers",
        "must be in 8..1024, got 5000",
    ),
    (
        "[daemon.http]\nmax_body_bytes = -1",
        "daemon.http.max_body_bytes",
        "must be in 1024..1e+06, got -1",
    ),
    (
        "[daemon.http]\nmax_connections = 0",
        "daemon.http.max_connections",
        "must be in 1..4096, got 0",
    ),
    ("[daemon.http]\nidle_timeout_s = 0", "daemon.http.idle_timeout_s", "must be in 0.1..600"),
    ("[daemon.http]\nmax_conections = 9", "daemon.http.max_conections", "'max_connections'"),
    ("[daemon]\nhttp = 5", "daemon.http", "must be a table"),
    (
        "[constellation]\nisl = [['CS-01', 'CS-99']]",
        "constellation.isl[0]",
        "no satellite named 'CS-99'",
    ),
    (
        "[constellation]\ncomputing = ['CS-13']",
        "constellation.computing",
        "no satellite named 'CS-13'",
    ),
    ("[constellation]\nbuiltin = 'default'\ntle = 'x.tle'", "constellation.tle", "give one of"),
    ("[constellation]\ntle = 'missing.tle'", "constellation.tle", "no such file"),
    ("epoch = 2026-01-01T00:00:00", "epoch", "needs a UTC offset"),
    ("format = 2", "format", "reads format 1"),
    ("name = 3", "name", "must be a string, got a number (3)"),
    ("[links]\nuplink = 5", "links.uplink", "must be a table"),
    ("[model\nbackend = 'tiny'", "(syntax)", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD, ids=[b[1] for b in BAD])
def test_an_impossible_or_unknown_key_is_refused_by_its_path(text, key, words, tmp_path):
    with pytest.raises(ScenarioError) as info:
        loads(text, source="bad.toml", base_dir=tmp_path)
    err = info.value
    assert err.key == key, str(err)
    assert words in err.rule, str(err)
    assert str(err).startswith(f"scenario bad.toml: {key}: ")


def test_daemon_http_limits_are_read_from_their_table_the_rest_left_at_the_defaults():
    f = loads("[daemon.http]\nmax_field_bytes = 1024\nmax_connections = 4\nidle_timeout_s = 0.5")
    assert f.daemon.http == replace(
        HttpLimits(), max_field_bytes=1024, max_connections=4, idle_timeout_s=0.5
    )
    assert f.daemon.http != HttpLimits()  # the defaults: 8 KiB, 128, 5 s
    edges = loads(
        "[daemon.http]\nmax_line_bytes = 65536\nmax_field_bytes = 256\nmax_headers = 8\n"
        "max_body_bytes = 1000000\nmax_connections = 1\nidle_timeout_s = 600"
    ).daemon.http
    assert (edges.max_line_bytes, edges.max_field_bytes, edges.max_headers) == (65536, 256, 8)
    assert (edges.max_body_bytes, edges.max_connections, edges.idle_timeout_s) == (
        1_000_000,
        1,
        600.0,
    )


def test_the_daemon_refuses_a_bad_scenario_at_start_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[stations]]\nname = 'Kiruna'\nelevation_mask_deg = 91\n")
    proc = subprocess.run(
        [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(bad), "channel"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"scenario {bad}: stations[0].elevation_mask_deg: must be in 0..90, got 91" in (
        proc.stderr
    )
    for text in ("[links.uplink]\nband = 'L'", "typo = 1"):
        bad.write_text(text)
        assert cli_main(["daemon", "--scenario", str(bad), "ground"]) == 2
    assert cli_main(["scenario", "check", str(tmp_path / "none.toml")]) == 2


def test_daemon_captures_are_stamped_in_wall_time_unless_asked_for_scenario_time():
    assert load_default().capture.time == "wall"
    assert loads('[capture]\ntime = "scenario"').capture.time == "scenario"
    with pytest.raises(ScenarioError, match=r"capture\.time"):
        loads('[capture]\ntime = "gps"')
