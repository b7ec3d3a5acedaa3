"""USLP frames in a replay (732.1-B-2, ``frames.protocol = "uslp"``), sans-I/O.

A USLP run captures the CLTUs and CADUs of every link as a TC/TM/AOS run does, with a
USLP frame inside each (its version number, 1100, says so), and the frames themselves
on one port for every kind of link (``uslp_frame``, 47014). The replay
(:mod:`linkstack.capture.replay`) hands each USLP frame to the chain this module makes
for its link, from the link's first frame, as the Wireshark dissector reads what it
is not told:

- **the uplink**: COP-1's FDUs in variable-length frames
  (:mod:`linkstack.ccsds.uslp_cop1`): :func:`uplink_receiver` validates a frame into
  the FDU (a :class:`~linkstack.ccsds.tc.TcFrame`) that FARM-1 takes, with the
  spacecraft's 16-bit SCID from the frame (the destination flag set) and the longest
  frame COP-1 over USLP allows;
- **the downlink and the laser links**: fixed-length frames of packets
  (:class:`~linkstack.ccsds.uslp_channels.UslpReceiver`): :func:`fixed_receiver`
  configures one from the first frame's length, VC frame count length and OCF flag,
  any SCID (the capture's units name the link), with a FECF (a CADU's coding is
  found by the FECF of the frame inside it; a damaged first frame is refused, not
  taken for a channel without one).

:func:`refusal` says why a receiver dropped a frame, from the strict codec, and
:func:`describe_uplink` / :func:`describe_fixed` write a frame's fields for
``linkstack replay -v``. Nothing here reads a file or a clock.
"""

from __future__ import annotations

from collections import Counter

from linkstack.ccsds.tc import MAX_FRAME_LEN as TC_MAX_FRAME_LEN
from linkstack.ccsds.tc import TcFrame
from linkstack.ccsds.uslp import (
    ID_LEN,
    MAX_VC_COUNT_LEN,
    OCF_LEN,
    PRIMARY_HEADER_LEN,
    VERSION,
    UslpFrame,
    frame_ids,
)
from linkstack.ccsds.uslp_channels import UslpConfig, UslpReceived, UslpReceiver
from linkstack.ccsds.uslp_cop1 import UslpCop1Codec, UslpCop1Receiver
from linkstack.errors import ConfigError, DecodeError

LAYER = "uslp"
_DEST_BIT = 0x08  # the source-or-destination identifier, in the third octet
_OCF_FLAG = 0x08  # in the frame's seventh octet, beside the VC frame count length
_TRUNCATED = 0x01


def is_uslp(frame: bytes | bytearray | memoryview) -> bool:
    """Whether ``frame`` is a USLP frame by its version number (1100)."""
    return len(frame) > 0 and frame[0] >> 4 == VERSION


def destination_flag(frame: bytes) -> bool | None:
    """The frame's source-or-destination flag (1: the SCID names the destination, as
    on an uplink); None when the frame is too short to say."""
    return bool(frame[2] & _DEST_BIT) if len(frame) >= ID_LEN else None


def _longest_uplink_frame(scid: int) -> int:
    """The longest frame COP-1 over USLP sends: a whole TC frame's room, in USLP."""
    return TC_MAX_FRAME_LEN + UslpCop1Codec(scid).extra_len


def uplink_receiver(frame: bytes) -> UslpCop1Receiver:
    """The uplink's receiver, from its first frame: the SCID it names, segment headers
    (MAP ids, as linkstack's uplink has them), a FECF. :class:`DecodeError` when the
    frame is too short to name a spacecraft."""
    if len(frame) < ID_LEN or not is_uslp(frame):
        raise DecodeError(LAYER, "primary_header", "not a USLP frame: no SCID to follow")
    scid = frame_ids(frame)[0]
    codec = UslpCop1Codec(scid, max_frame_length=_longest_uplink_frame(scid))
    return UslpCop1Receiver(codec)


def fixed_config(frame: bytes) -> UslpConfig:
    """A fixed-length channel configured by one of its frames (the receiver judges the
    next ones against it); :class:`DecodeError` when the frame cannot configure one."""
    if not is_uslp(frame):
        raise DecodeError(LAYER, "version", "not a USLP frame (version 1100)")
    if len(frame) < PRIMARY_HEADER_LEN + 1:
        raise DecodeError(LAYER, "primary_header", f"{len(frame)} octets: no whole header")
    if frame[3] & _TRUNCATED:
        raise DecodeError(LAYER, "truncated", "a truncated frame does not configure a channel")
    flags = frame[6]
    count_len = flags & 0x07
    if count_len > MAX_VC_COUNT_LEN:  # pragma: no cover - 3 bits hold at most 7
        raise DecodeError(LAYER, "vc_count_len", f"at most {MAX_VC_COUNT_LEN}, got {count_len}")
    scid, _, _ = frame_ids(frame)
    try:
        return UslpConfig(
            scid=scid,
            fixed=True,
            frame_length=len(frame),
            vc_count_len=count_len,
            ocf=bool(flags & _OCF_FLAG),
            fecf=True,  # as the CADUs' coding is found: by a FECF that checks
            dest=bool(frame[2] & _DEST_BIT),
        )
    except ConfigError as bad:
        raise DecodeError(LAYER, bad.field, bad.rule) from None


def fixed_receiver(frame: bytes) -> UslpReceiver:
    """The receiver of a downlink's or laser link's fixed-length frames, from its first
    frame (:func:`fixed_config`); it takes any SCID: the capture names the link."""
    return UslpReceiver(fixed_config(frame), check_scid=False)


def refusal(rx: UslpReceiver | UslpCop1Receiver, frame: bytes, grown: Counter[str]) -> DecodeError:
    """Why ``rx`` dropped ``frame``: the strict codec's error, else the counter it grew."""
    if isinstance(rx, UslpCop1Receiver):
        if rx.last_error is not None:
            return rx.last_error
    else:
        cfg = rx.config
        try:
            UslpFrame.unpack(
                frame,
                insert_zone_len=cfg.insert_zone_len,
                fecf=cfg.fecf,
                frame_length=cfg.frame_length,
            )
        except DecodeError as exc:
            return exc
    reason = next((k for k in grown if k != "frames_dropped"), "dropped")
    return DecodeError(LAYER, reason, "the receiver does not carry such frames")


def describe_uplink(fdu: TcFrame, frame: bytes) -> str:
    """The COP-1 fields an uplink frame carries, for the replay's line."""
    scid = frame_ids(frame)[0]
    kind = fdu.frame_type.name
    text = f"USLP {kind} frame" + (f" N(S) {fdu.seq}" if kind == "AD" else "")
    text += f" (SCID {scid}, VC {fdu.vcid}" + ("" if fdu.map_id is None else f", MAP {fdu.map_id}")
    return text + f", {len(frame)} octets)"


def describe_fixed(got: UslpReceived, frame: bytes) -> str:
    """A fixed-length frame's fields and what it carried, for ``replay -v``."""
    scid = frame_ids(frame)[0]
    what = "idle (OID)" if got.vcid == 63 else f"{len(got.packets)} packet(s)"
    count = "" if got.vc_count is None else f" VC# {got.vc_count}"
    ocf = ", OCF" if got.ocf is not None and len(got.ocf) == OCF_LEN else ""
    return (
        f"USLP frame VC {got.vcid} MAP {got.map_id}{count} (SCID {scid}, {len(frame)} "
        f"octets{ocf}): {what}"
    )
