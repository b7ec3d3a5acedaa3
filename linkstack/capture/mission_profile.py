"""Mission profiles as the capture layer uses them: the profile itself (its sections, the
reader, the built-in ones) is :mod:`linkstack.runtime.mission_profile`, a layer below, so
that a scenario's ``[frames] profile`` reads the same profiles as ``replay``, ``conform``
and ``decode``; here are what only the capture tools need of one: each kind of link's
SDLS associations placed in its frames (:func:`sdls_links`) and the report header's
lines (:func:`describe`).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from linkstack.runtime.mission_profile import SECTIONS, Profile

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import LinkSecurity

__all__ = ["describe", "sdls_links"]


def sdls_links(p: Profile) -> dict[str, LinkSecurity]:
    """The kinds of link under SDLS, each with its associations and the profile's
    managed parameters that place their fields (for
    :class:`~linkstack.capture.sdls_view.SdlsView`)."""
    from linkstack.capture.sdls_view import LinkSecurity  # noqa: PLC0415 - SDLS, when used

    sdls = p.sdls

    def unkeyed(kind: str) -> frozenset[int]:
        return frozenset(spi for k, spi in sdls.unkeyed if k == kind)

    out = {}
    if sdls.tc:
        out["tc"] = LinkSecurity(
            sdls.tc,
            fecf=p.tc.fecf,
            segment_header=p.tc.segment_header,
            unkeyed=unkeyed("tc"),
        )
    if sdls.tm:
        out["tm"] = LinkSecurity(sdls.tm, fecf=p.tm.fecf, unkeyed=unkeyed("tm"))
    if sdls.aos:
        out["aos"] = LinkSecurity(
            sdls.aos,
            fecf=p.aos.fecf,
            insert_zone_len=p.aos.insert_zone_len,
            unkeyed=unkeyed("aos"),
        )
    return out


def describe(p: Profile) -> list[str]:
    """The profile as ``key = value`` lines (for the report header)."""
    out = [f"name = {p.name!r}  ({p.source})"]
    for section in SECTIONS:
        obj = getattr(p, section)
        parts = []
        for f in fields(obj):
            value = getattr(obj, f.name)
            parts.append(f"{f.name}={value.hex() if isinstance(value, bytes) else value}")
        out.append(f"[{section}] " + ", ".join(parts))
    for section, why in p.uncoded.items():
        out.append(f"[{section}] frames alone, no Reed-Solomon ({why}; set rs_e for CADUs)")
    m = p.mission
    apids = ", ".join(f"{a:#05x}" for a in sorted(m.linkstack_apids)) or "none"
    out.append(
        f"[mission] downlink={m.downlink}, raw_unit={m.raw_unit}, linkstack_apids={apids}, "
        f"packet_counter={m.packet_counter}"
    )
    links = sdls_links(p)
    if links:
        out.append("[sdls] " + "; ".join(f"{k} {v.describe()}" for k, v in links.items()))
    return out
