"""``linkstack decode uslp HEX|-``: the fields of one USLP transfer frame.

A frame says most of its shape itself (truncated or not, its length, its VC frame
count's length, whether it carries an OCF); the rest are managed parameters of the
channel that the command line hands over: the insert zone's length
(``--insert-zone N``) and whether frames end in a FECF (``--no-fecf``). The OCF is
read as a CLCW when it says it is one; a data zone of whole Space Packets (rule 111,
UPID 0) is listed packet by packet.
"""

from __future__ import annotations

from linkstack.ccsds.spp import split_packets
from linkstack.ccsds.uslp import POINTER_NONE, Rule, Upid, UslpFrame
from linkstack.errors import DecodeError


def _name(enum: type[Rule] | type[Upid], value: int) -> str:
    try:
        return enum(value).name.lower()
    except ValueError:
        return "reserved"


def describe(frame: UslpFrame, length: int) -> list[str]:
    """The lines that show a decoded frame of ``length`` octets."""
    kind = "truncated " if frame.truncated else ""
    lines = [f"uslp {kind}frame of {length} octets"]
    lines.append(
        f"  scid {frame.scid} ({'destination' if frame.dest else 'source'}), "
        f"vcid {frame.vcid}{' (only idle data)' if frame.is_oid else ''}, map {frame.map_id}"
    )
    if not frame.truncated:
        qos = "expedited" if frame.bypass else "sequence controlled"
        command = ", protocol control command" if frame.protocol_command else ""
        count = f"{frame.vc_count} ({frame.vc_count_len} octets)" if frame.vc_count_len else "-"
        lines.append(f"  {qos}{command}, vc frame count {count}")
    if frame.insert_zone:
        lines.append(f"  insert zone {frame.insert_zone.hex()}")
    lines.append(
        f"  rule {frame.rule:03b} ({_name(Rule, frame.rule)}), "
        f"upid {frame.upid} ({_name(Upid, frame.upid)})"
    )
    if frame.pointer is not None:
        what = "first header pointer" if frame.rule == Rule.PACKETS_SPANNING else "last valid octet"
        at = "none" if frame.pointer == POINTER_NONE else str(frame.pointer)
        lines.append(f"  {what} {at}")
    lines.append(f"  data zone {len(frame.data)} octets")
    if frame.rule == Rule.NO_SEGMENTATION and frame.upid == Upid.SPACE_PACKETS:
        try:
            packets = split_packets(frame.data)
        except DecodeError as exc:
            lines.append(f"  (not whole Space Packets: {exc})")
        else:
            for packet in packets:
                apid = ((packet[0] << 8) | packet[1]) & 0x7FF
                lines.append(f"    packet apid {apid}, {len(packet)} octets")
    if frame.ocf is not None:
        try:
            clcw = frame.clcw()
        except DecodeError as exc:
            clcw_text = f" (not a valid CLCW: {exc})"
        else:
            clcw_text = f" ({clcw})" if clcw is not None else " (not a CLCW)"
        lines.append(f"  ocf {frame.ocf.hex()}{clcw_text}")
    return lines


def print_uslp(frame: bytes, *, insert_zone_len: int, fecf: bool) -> int:
    """Print the fields (0), or why the frame is refused (1)."""
    try:
        decoded = UslpFrame.unpack(frame, insert_zone_len=insert_zone_len, fecf=fecf)
    except DecodeError as exc:
        print(f"refused: {exc}")
        return 1
    lines = describe(decoded, len(frame))
    if fecf:
        lines.append(f"  fecf {frame[-2:].hex()} (ok)")
    print("\n".join(lines))
    return 0
