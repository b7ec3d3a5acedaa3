"""``linkstack view``'s page data from real reports (a demo's, a daemon's, a sweep's:
tests/tools/reports/), its refusals, and the map outlines' decoder
(linkstack.tools.land_asset) on a small TopoJSON worked by hand."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.daemon.http import HttpServer
from linkstack.daemon.live_view import asset, leg_of
from linkstack.errors import DecodeError
from linkstack.tools.land_asset import compact, decode_arcs, rings, unwrapped
from linkstack.tools.view_cmd import app_handlers, page_data, read_report

REPORTS = Path(__file__).parent / "reports"


def test_a_run_report_gives_the_constellation_at_the_last_answer_and_every_round_trip():
    doc = read_report(REPORTS / "demo-report.json")
    meta, snap = page_data(doc, "demo-report.json")
    assert meta["mode"] == "report" and meta["scenario"] == "default"
    assert len(meta["satellites"]) == len(snap["lat"]) == len(snap["lon"]) == 12
    assert [s[0] for s in meta["stations"]] == ["Svalbard", "Kiruna", "Mohe", "Kashgar", "Sanya"]
    totals = [q["total_s"] for q in doc["queries"]]
    assert snap["round_trips_s"] == totals
    assert [r["id"] for r in snap["recent"]] == [q["query_id"] for q in doc["queries"]]
    assert snap["t_s"] == max(q["answer_on_ground_t_s"] for q in doc["queries"])
    computing = {q["satellite"] for q in doc["queries"]}
    assert {meta["satellites"][i] for i, *_ in snap["tracks"]} == computing
    assert all(-90 <= lat <= 90 for lat in snap["lat"]) and snap["rf"] == snap["queries"] == []
    json.dumps(snap, allow_nan=False)  # what the page gets parses


def test_a_daemon_report_and_a_sweep_are_drawn_too():
    meta, snap = page_data(read_report(REPORTS / "daemon-report.json"), "r.json")
    assert len(snap["round_trips_s"]) == 3 and len(meta["satellites"]) == 12
    doc = read_report(REPORTS / "sweep.json")
    meta, snap = page_data(doc, "sweep.json")
    assert meta["scenario"] == "reference" and snap["t_s"] == 0.0
    every = [x for r in doc["rows"] for x in r["round_trips_s"]]
    assert snap["round_trips_s"] == every
    assert len(snap["recent"]) == len(doc["rows"])
    first = doc["rows"][0]
    assert snap["recent"][0]["total_s"] == statistics.median(first["round_trips_s"])


def test_a_report_whose_scenario_is_unknown_is_drawn_without_a_constellation(tmp_path):
    doc = json.loads((REPORTS / "daemon-report.json").read_text())
    doc["meta"] = {"scenario": "nowhere", "source": str(tmp_path / "gone.toml")}
    meta, snap = page_data(doc, "r.json")
    assert meta["satellites"] == [] and snap["lat"] == [] and "not found" in meta["source"]
    assert len(snap["round_trips_s"]) == 3


@pytest.mark.parametrize(
    ("text", "field"),
    [("not json", "json"), ("[1, 2]", "document"), ('{"meta": {}}', "queries")],
)
def test_what_is_not_a_report_is_refused_by_name(tmp_path, text, field):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(DecodeError) as err:
        read_report(path)
    assert err.value.field == field and str(path) in str(err.value)
    with pytest.raises(DecodeError, match="no such file"):
        read_report(tmp_path / "missing.json")


def test_the_current_leg_of_a_query_from_its_whereabouts():
    assert leg_of({"queued": True, "hops": []}) == "queued on the ground"
    open_hop = {"kind": "uplink", "src": "ground:Mohe", "dst": "sat:CS-06", "end_t_s": None}
    assert leg_of({"queued": False, "hops": [open_hop]}) == "uplink ground:Mohe -> sat:CS-06"
    on_board = {**open_hop, "message": "query", "end_t_s": 5.0}
    assert leg_of({"queued": False, "hops": [on_board]}) == "on board CS-06"
    assert leg_of({"queued": False, "hops": [], "transfers": [{}]}) == "uplink"


# A quantized topology by hand: scale 0.5 deg a unit, origin (-180, -90).
TOPO = {
    "type": "Topology",
    "transform": {"scale": [0.5, 0.5], "translate": [-180, -90]},
    "objects": {
        "land": {
            "type": "GeometryCollection",
            "geometries": [
                {"type": "Polygon", "arcs": [[0, ~1]]},
                {"type": "MultiPolygon", "arcs": [[[2]]]},
            ],
        }
    },
    "arcs": [
        [[20, 20], [2, 0], [0, 2]],  # (-170,-80) (-169,-80) (-169,-79)
        [[20, 20], [0, 2], [2, 0]],  # (-170,-80) (-170,-79) (-169,-79)
        [[0, 0], [4, 0], [0, 4], [-4, 0], [0, -4]],  # a square at the origin corner
    ],
}


def test_topojson_arcs_are_summed_scaled_and_joined():
    arcs = decode_arcs(TOPO)
    assert arcs[0] == [(-170.0, -80.0), (-169.0, -80.0), (-169.0, -79.0)]
    got = rings(TOPO)
    # arc 0, then arc 1 reversed without its first point (the joint)
    assert got[0] == [(-170, -80), (-169, -80), (-169, -79), (-170, -79), (-170, -80)]
    assert got[1] == [(-180, -90), (-178, -90), (-178, -88), (-180, -88), (-180, -90)]
    out = compact(TOPO)
    assert out["rings"][0] == [-170, -80, -169, -80, -169, -79, -170, -79, -170, -80]
    assert "Natural Earth" in out["source"]
    with pytest.raises(DecodeError, match="no object 'sea'"):
        rings(TOPO, "sea")


def test_rings_are_unwrapped_across_the_antimeridian_and_around_a_pole():
    fiji = [(179.0, -17.0), (-179.0, -17.0), (-179.0, -16.0), (179.0, -16.0)]
    assert unwrapped(fiji) == [(179, -17), (181, -17), (181, -16), (179, -16)]
    around = [(-180.0 + 90 * k, -70.0) for k in range(5)]  # once round the south pole
    closed = unwrapped(around)
    assert closed[-2:] == [(180.0, -90.0), (-180.0, -90.0)]


def test_the_shipped_map_is_well_formed():
    land = json.loads(asset("land.json"))
    assert len(land["rings"]) > 100 and "public domain" in land["licence"]
    for r in land["rings"]:
        assert len(r) % 2 == 0 and len(r) >= 6
        assert all(-90.0 <= lat <= 90.0 for lat in r[1::2])
        assert all(-540.0 <= lon <= 540.0 for lon in r[0::2])


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=8),
)
_entries = st.one_of(
    _values,
    st.dictionaries(
        st.sampled_from(
            ["query_id", "total_s", "answer_on_ground_t_s", "satellite", "round_trips_s"]
        ),
        st.one_of(_values, st.lists(_values, max_size=4)),
    ),
)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(_entries, max_size=6), sweep=st.booleans())
def test_any_report_the_reader_accepts_gives_page_data_that_serialises(entries, sweep):
    doc = (
        {"kind": "linkstack-sweep", "base": "default", "rows": entries}
        if sweep
        else {"meta": {"scenario": "default"}, "queries": entries}
    )
    meta, snap = page_data(doc, "fuzz.json")
    json.dumps([meta, snap], allow_nan=False)
    assert all(isinstance(r["total_s"], int | float) for r in snap["recent"])


async def test_the_page_is_served_and_the_root_sends_a_browser_to_it():
    """What a user types, http://host:port/, leads to the page (a 302 to /view)."""
    import aiohttp

    meta, snapshot = page_data(read_report(REPORTS / "demo-report.json"), "demo-report.json")
    server = HttpServer("127.0.0.1", 0)
    for path, handler in app_handlers(meta, snapshot).items():
        server.app.router.add_get(path, handler)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/", allow_redirects=False) as resp:
                assert resp.status == 302 and resp.headers["Location"] == "/view"
            async with http.get(f"{base}/") as resp:
                assert resp.status == 200 and resp.content_type == "text/html"
                assert "<canvas" in await resp.text()
            async with http.get(f"{base}/nothing") as resp:
                assert resp.status == 404
    finally:
        await server.close()
