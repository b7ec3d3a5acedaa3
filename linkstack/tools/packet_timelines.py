"""``linkstack packets``: the timelines of the packet bridge's packets.

The ground daemon's gateway and a satellite's radio each record what they saw of a
bridged packet (:mod:`linkstack.daemon.packet_log`); this joins the two ends'
records of each packet (same satellite, way, APID, sequence count, length and CRC-32;
repeats of one key paired in the order they came) into its timeline, with legs named
as a query's are (``linkstack.runtime.report.LEGS``):

- up: ``contact_wait`` (the gateway had it -> its first frame radiated), ``uplink``
  (-> on board and handed to the flight software; retransmissions included),
  ``acknowledgement`` (-> FOP-1 saw it acknowledged), ``total_s`` (gateway -> flight
  software);
- down: ``downlink`` (the radio had it -> the ground extracted it: waiting for a
  frame and a pass, and the downlink), ``handout`` (-> handed to the outside
  system), ``total_s``.

A leg is null where one end's record is missing (a file not given, a packet lost or
still on its way); such packets are listed and counted, never guessed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError
from linkstack.runtime.report import distribution

KEY_FIELDS = ("way", "satellite", "apid", "seq", "octets", "crc32")
UP_LEGS = (
    ("contact_wait", "received_s", "radiated_s"),
    ("uplink", "radiated_s", "onboard_s"),
    ("acknowledgement", "onboard_s", "acknowledged_s"),
)
DOWN_LEGS = (
    ("downlink", "from_flight_s", "on_ground_s"),
    ("handout", "on_ground_s", "handed_out_s"),
)
TOTALS = {"up": ("received_s", "onboard_s"), "down": ("from_flight_s", "handed_out_s")}


@dataclass
class PacketTimeline:
    """One packet's passage: its key, the instants of both ends, its legs."""

    key: dict[str, Any]
    instants: dict[str, Any] = field(default_factory=dict)
    ends: list[str] = field(default_factory=list)

    @property
    def way(self) -> str:
        return str(self.key["way"])

    def legs_s(self) -> dict[str, float | None]:
        return {
            name: _between(self.instants.get(a), self.instants.get(b))
            for name, a, b in (UP_LEGS if self.way == "up" else DOWN_LEGS)
        }

    def total_s(self) -> float | None:
        a, b = TOTALS[self.way]
        return _between(self.instants.get(a), self.instants.get(b))

    def start_s(self) -> float:
        """Its first instant (when one end first had it), for the order of a listing."""
        times = [float(v) for k, v in self.instants.items() if k.endswith("_s") and _number(v)]
        return min(times, default=math.inf)

    def complete(self) -> bool:
        return {"ground", "sat"} <= set(self.ends)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.key,
            **self.instants,
            "ends": self.ends,
            "legs_s": self.legs_s(),
            "total_s": self.total_s(),
        }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _between(a: object, b: object) -> float | None:
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    return round(float(b) - float(a), 6)


def read_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The records of the files, in order; a line that is not a record is an error
    that names its file and line."""
    out: list[dict[str, Any]] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError("packets", "file", f"cannot read {path}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    "packets", "file", f"{path}:{number}: not JSON ({exc.msg})"
                ) from None
            missing = [
                k for k in (*KEY_FIELDS, "at") if not isinstance(record, dict) or k not in record
            ]
            if missing:
                raise ConfigError(
                    "packets",
                    "file",
                    f"{path}:{number}: not a packet record (no {', '.join(missing)})",
                )
            out.append(record)
    return out


def join(records: Iterable[dict[str, Any]]) -> list[PacketTimeline]:
    """Each packet's timeline: the records of one key from the two ends paired in the
    order they came; listed by their first instant."""
    out: list[PacketTimeline] = []
    # key -> the timelines of that key still missing an end's record, by the end
    waiting: dict[tuple[Any, ...], dict[str, deque[PacketTimeline]]] = defaultdict(
        lambda: defaultdict(deque)
    )
    for record in records:
        key = tuple(record[k] for k in KEY_FIELDS)
        at = str(record["at"])
        open_ = waiting[key][at]  # timelines of this key that lack this end
        if open_:
            timeline = open_.popleft()
        else:
            timeline = PacketTimeline({k: record[k] for k in KEY_FIELDS})
            out.append(timeline)
            for other in ("ground", "sat"):
                if other != at:
                    waiting[key][other].append(timeline)
        timeline.ends.append(at)
        timeline.instants.update({k: v for k, v in record.items() if k not in (*KEY_FIELDS, "at")})
    return sorted(out, key=PacketTimeline.start_s)


def summary(timelines: list[PacketTimeline]) -> dict[str, Any]:
    """Per way: packets, complete ones, and the distribution of each leg and the total."""
    out: dict[str, Any] = {}
    for way, legs in (("up", UP_LEGS), ("down", DOWN_LEGS)):
        mine = [t for t in timelines if t.way == way]
        if not mine:
            continue
        dists = {}
        for name, *_ in legs:
            values = [v for t in mine if (v := t.legs_s()[name]) is not None]
            dists[name] = _finite(distribution(values))
        totals = [v for t in mine if (v := t.total_s()) is not None]
        out[way] = {
            "packets": len(mine),
            "complete": sum(t.complete() for t in mine),
            "failed": sum(bool(t.instants.get("failed")) for t in mine),
            "legs": dists,
            "total": _finite(distribution(totals)),
        }
    return out


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    """NaN (no values) as None: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def text_lines(timelines: list[PacketTimeline], every: bool) -> list[str]:
    lines = []
    if every:
        for t in timelines:
            k = t.key
            legs = "  ".join(f"{n} {_fmt(v)}" for n, v in t.legs_s().items())
            missing = "" if t.complete() else f"  (only the {t.ends[0]}'s record)"
            retx = t.instants.get("retransmissions")
            if retx:
                missing += f"  ({retx} retransmission{'s' if retx > 1 else ''})"
            if t.instants.get("failed"):
                missing += "  (COP-1 gave it up)"
            lines.append(
                f"{k['way']:<4} {k['satellite']} apid {k['apid']:#05x} seq {k['seq']:>5}: "
                f"{legs}  total {_fmt(t.total_s())} s{missing}"
            )
    for way, s in summary(timelines).items():
        lines.append(
            f"{way}: {s['packets']} packets, {s['complete']} seen at both ends, "
            f"{s['failed']} failed"
        )
        for name, d in (*s["legs"].items(), ("total", s["total"])):
            lines.append(
                f"  {name:<16} n {d['count']:>5}  p50 {_fmt(d['p50_s'])}  p95 {_fmt(d['p95_s'])}  "
                f"p99 {_fmt(d['p99_s'])}  max {_fmt(d['max_s'])} s"
            )
    return lines


def cmd_packets(args: argparse.Namespace) -> int:
    timelines = join(read_records(Path(p) for p in args.files))
    if not timelines:
        print("linkstack packets: no packet records in the files given", file=sys.stderr)
        return 1
    if args.json:
        doc = {"packets": [t.to_json() for t in timelines], "summary": summary(timelines)}
        print(json.dumps(doc, indent=1))
    else:
        print("\n".join(text_lines(timelines, args.each)))
    return 0


def add_packets_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``linkstack packets`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "packets",
        help="the timelines of the packet bridge's packets (gateway and radio records)",
        description="Join what the ground daemon's gateway and the satellites' radio recorded "
        "of each bridged Space Packet (their *-packets.jsonl files, in the daemons' out_dir) "
        "into one timeline per packet, with its legs (up: contact_wait, uplink, "
        "acknowledgement; down: downlink, handout) and p50/p95/p99 of each.",
        epilog="Example: linkstack packets out/mcc-packets.jsonl out/sat-packets.jsonl --each",
    )
    p.add_argument("files", nargs="+", help="packet record files (JSON lines) of either end")
    p.add_argument("--each", action="store_true", help="one line per packet before the summary")
    p.add_argument("--json", action="store_true", help="every timeline and the summary as JSON")
    p.set_defaults(func=cmd_packets)
    return p
