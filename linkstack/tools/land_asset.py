"""The view's map outlines: Natural Earth's land at 1:110m, from the npm package
``world-atlas`` (TopoJSON, ISC licence; the data are public domain), decoded into
the compact file the page draws (``linkstack/daemon/view_assets/land.json``).

``make view-map`` fetches the package with npm and runs this; the result is
committed, so neither npm nor the network is needed to build, test or run.

    python -m linkstack.tools.land_asset package/land-110m.json OUT.json

TopoJSON keeps each shared border once as an arc of delta-encoded integers; a
polygon's ring is a list of arc indices (``~i``: arc ``i`` reversed). Decoded: one
flat ``[lon, lat, lon, lat, ...]`` list a ring, at 0.01 deg, unwrapped for a flat
map (:func:`unwrapped`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from linkstack.errors import DecodeError

SOURCE = "world-atlas 2.0.2 (npm), land-110m.json: Natural Earth 1:110m land"
LICENCE = "world-atlas: ISC, (c) 2013-2019 Michael Bostock; Natural Earth: public domain"


def decode_arcs(topo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Every arc in degrees (a quantized topology's deltas summed and scaled)."""
    transform = topo.get("transform")
    out = []
    for arc in topo["arcs"]:
        if transform is None:
            out.append([(float(p[0]), float(p[1])) for p in arc])
            continue
        (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
        x = y = 0
        points = []
        for dx, dy, *_ in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        out.append(points)
    return out


def ring(arcs: list[list[tuple[float, float]]], indices: list[int]) -> list[tuple[float, float]]:
    """One ring from its arcs, each joined to the last without repeating the joint."""
    points: list[tuple[float, float]] = []
    for i in indices:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc[1:] if points else arc)
    return points


def rings(topo: dict[str, Any], name: str = "land") -> list[list[tuple[float, float]]]:
    """The rings of object ``name``'s polygons (outer rings and holes alike)."""
    try:
        obj = topo["objects"][name]
    except (KeyError, TypeError):
        raise DecodeError("topojson", "objects", f"no object {name!r}") from None
    arcs = decode_arcs(topo)
    geometries = obj["geometries"] if obj.get("type") == "GeometryCollection" else [obj]
    out = []
    for g in geometries:
        if g.get("type") == "Polygon":
            polygons = [g["arcs"]]
        elif g.get("type") == "MultiPolygon":
            polygons = g["arcs"]
        else:
            continue
        out += [ring(arcs, r) for polygon in polygons for r in polygon]
    return out


def unwrapped(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A ring drawable on a flat map: its longitudes made continuous (a ring across
    the antimeridian runs past +-180; the page draws it again 360 deg over), and a
    ring around a pole (Antarctica) closed along the map's edge through that pole."""
    out = [points[0]]
    for lon, lat in points[1:]:
        prev = out[-1][0]
        out.append((lon + 360.0 * round((prev - lon) / 360.0), lat))
    if abs(out[-1][0] - out[0][0]) > 180.0:  # went once around: encloses a pole
        pole = -90.0 if sum(lat for _, lat in out) < 0 else 90.0
        out += [(out[-1][0], pole), (out[0][0], pole)]
    return out


def compact(topo: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "licence": LICENCE,
        "rings": [
            [round(v, 2) for point in unwrapped(r) for v in point]
            for r in rings(topo)
            if len(r) >= 3
        ],
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m linkstack.tools.land_asset LAND-110M.json OUT.json")
        return 2
    topo = json.loads(Path(args[0]).read_text("utf-8"))
    Path(args[1]).write_text(json.dumps(compact(topo), separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
