"""Where SDLS (CCSDS 355.0-B-2) puts its fields in TC, TM, AOS and USLP frames, and
reading them without a key.

The security header follows whatever the frame's standard puts first: TC's primary
header and segment header (none in a Type-BC frame, 232.0-B-4), TM's primary header and
secondary header (found from the frame's own flag and length), AOS's primary header,
its FHEC and insert zone (managed parameters), USLP's primary header (its VC frame
count as long as the frame says) and insert zone (732.1-B-2 6.3: the transfer frame
data field, its header included, is what SDLS protects). The trailer (MAC) ends where
the OCF, then the FECF, begin. TC and USLP frames have a length field, which the
protected frame's says (:meth:`FrameLayout.set_length`); USLP frames are
fixed-length (``fixed``, as TM and AOS) or variable-length, as TC's. Truncated USLP
frames are not protected. :class:`FrameLayout` holds a channel's managed parameters and
finds the offset of the security header in one frame; :func:`parse_security_header`
reads the fields for ``linkstack decode``, given each SPI's field lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn, Protocol

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.tc import frame_vcid as tc_frame_vcid
from linkstack.errors import ConfigError, SdlsError

SPI_LEN = 2
KINDS = ("tc", "tm", "aos", "uslp")
OCF_LEN = 4
FECF_LEN = 2
DEFAULT_FRAME_LEN = {"tc": 1024, "tm": 1115, "aos": 1115, "uslp": 1115}
MAX_FRAME_LEN = {"tc": 1024, "tm": 2048, "aos": 2048, "uslp": 65536}
_VERSION = {"tc": 0, "tm": 0, "aos": 1}
_PRIMARY_LEN = {"tc": 5, "tm": 6, "aos": 6, "uslp": 7}  # USLP's without its VC count
_USLP_VERSION = 0b1100


def refuse(reason: str, rule: str) -> NoReturn:
    """Raise the SDLS layer's refusal: ``reason`` is its ``field``."""
    raise SdlsError("sdls", reason, rule)


class SaLengths(Protocol):
    """What :func:`parse_security_header` needs of an SA: its field lengths."""

    @property
    def iv_len(self) -> int: ...
    @property
    def sn_len(self) -> int: ...
    @property
    def pad_len(self) -> int: ...
    @property
    def mac_len(self) -> int: ...


def frame_vcid(kind: str, frame: bytes) -> int:
    """The virtual channel of a ``kind`` ("tc", "tm", "aos") frame, from its header."""
    if kind == "tc":
        return tc_frame_vcid(frame)
    if kind == "tm":
        return (frame[1] >> 1) & 0x07
    if kind == "uslp":
        return (frame[2] & 0x07) << 3 | frame[3] >> 5
    return frame[1] & 0x3F


class FrameLayout:
    """Where the security header goes in one link's frames: the managed parameters
    of the channel and the bits of the frame's own header that move it."""

    def __init__(
        self,
        kind: str,
        *,
        fecf: bool,
        segment_header: bool = False,
        ocf: bool = False,
        frame_length: int | None = None,
        insert_zone_len: int = 0,
        fhec: bool = False,
        fixed: bool = True,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError("sdls", "kind", f"must be one of {KINDS}, got {kind!r}")
        if segment_header and kind != "tc":
            raise ConfigError("sdls", "segment_header", f"only TC frames have one, not {kind}")
        if ocf and kind == "tc":
            raise ConfigError("sdls", "ocf", "TC frames have no OCF")
        if fhec and kind != "aos":
            raise ConfigError("sdls", "fhec", f"only AOS frames have an FHEC, not {kind}")
        if insert_zone_len and kind not in ("aos", "uslp"):
            raise ConfigError(
                "sdls",
                "insert_zone_len",
                f"only AOS and USLP frames have an insert zone, not {kind}",
            )
        if not fixed and kind != "uslp":
            raise ConfigError(
                "sdls", "fixed", f"{kind} frames are fixed- or variable-length by kind"
            )
        if not 0 <= insert_zone_len <= MAX_FRAME_LEN["aos"]:
            raise ConfigError("sdls", "insert_zone_len", f"got {insert_zone_len}")
        if frame_length is not None and not 0 < frame_length <= MAX_FRAME_LEN[kind]:
            raise ConfigError(
                "sdls",
                "frame_length",
                f"{kind} frames are 1..{MAX_FRAME_LEN[kind]} octets, got {frame_length}",
            )
        self.kind = kind
        self.fecf = fecf
        self.segment_header = segment_header
        self.ocf = ocf
        self.frame_length = frame_length
        self.insert_zone_len = insert_zone_len
        self.fhec = fhec
        self.fecf_len = FECF_LEN if fecf else 0
        self.tail_len = (OCF_LEN if ocf else 0) + self.fecf_len  # after the MAC
        self.primary_len = _PRIMARY_LEN[kind]
        # variable-length frames (TC, USLP's when not fixed): the length is the frame's
        self.variable = kind == "tc" or (kind == "uslp" and not fixed)
        self.has_length_field = kind in ("tc", "uslp")

    def declared_length(self, frame: bytes | memoryview) -> int:
        """What a TC or USLP frame's length field says (the frame has its header)."""
        if self.kind == "tc":
            return ((frame[2] & 0x03) << 8 | frame[3]) + 1
        return (frame[4] << 8 | frame[5]) + 1

    def set_length(self, head: bytearray, total: int) -> None:
        """Set the length field of a TC or USLP frame's header ``head`` to ``total``."""
        if self.kind == "tc":
            head[2] = (head[2] & 0xFC) | ((total - 1) >> 8)
            head[3] = (total - 1) & 0xFF
        else:
            head[4:6] = (total - 1).to_bytes(2, "big")

    def header_len(self, frame: bytes) -> int:
        """Octets before the security header; SdlsError "header" or "length" when the
        frame's own header says something impossible."""
        n = len(frame)
        if n < self.primary_len:
            refuse("length", f"{n} octets: shorter than the {self.kind} primary header")
        if self.kind == "uslp":
            return self._uslp_header_len(frame)
        version = frame[0] >> 6
        if version != _VERSION[self.kind]:
            refuse(
                "header",
                f"{self.kind} frame version must be {_VERSION[self.kind]:02b}, got {version:02b}",
            )
        if self.kind == "tc":
            bypass, control = (frame[0] >> 5) & 1, (frame[0] >> 4) & 1
            if control and not bypass:
                refuse("header", "TC bypass flag 0 with control command flag 1 is no frame type")
            return self.primary_len + (1 if self.segment_header and not control else 0)
        if self.kind == "aos":
            return self.primary_len + (2 if self.fhec else 0) + self.insert_zone_len
        if bool(frame[1] & 1) != self.ocf:
            refuse(
                "header",
                f"the TM OCF flag is {frame[1] & 1}, the channel's OCF is {self.ocf}",
            )
        if not frame[4] & 0x80:
            return self.primary_len
        if n <= self.primary_len:
            refuse("length", "the TM secondary header flag is set and the frame ends before it")
        ident = frame[self.primary_len]
        if ident >> 6 or not ident & 0x3F:
            refuse(
                "header",
                f"TM secondary header identification {ident:#04x}: version 00 and 1..63 octets",
            )
        return self.primary_len + 1 + (ident & 0x3F)

    def _uslp_header_len(self, frame: bytes) -> int:
        if frame[0] >> 4 != _USLP_VERSION:
            refuse("header", f"USLP frame version must be 1100, got {frame[0] >> 4:04b}")
        if frame[3] & 1:
            refuse("header", "a truncated USLP frame is not protected")
        flags = frame[6]
        if bool(flags & 0x08) != self.ocf:
            refuse(
                "header",
                f"the USLP OCF flag is {(flags >> 3) & 1}, the channel's OCF is {self.ocf}",
            )
        return self.primary_len + (flags & 0x07) + self.insert_zone_len

    def vcid(self, frame: bytes) -> int:
        return frame_vcid(self.kind, frame)


def parse_security_header(
    frame: bytes,
    kind: str,
    sa_lookup: Mapping[int, SaLengths] | Callable[[int], SaLengths | None],
    *,
    fecf: bool,
    segment_header: bool = False,
    ocf: bool = False,
    insert_zone_len: int = 0,
    fhec: bool = False,
    fixed: bool = True,
) -> dict[str, object]:
    """The security header and trailer fields of a protected frame, no key needed
    (``linkstack decode``): where each sits and its octets in hex. ``sa_lookup``
    gives the field lengths of an SPI (a mapping or a function)."""
    layout = FrameLayout(
        kind,
        fecf=fecf,
        segment_header=segment_header,
        ocf=ocf,
        insert_zone_len=insert_zone_len,
        fhec=fhec,
        fixed=fixed,
    )
    n = len(frame)
    head_len = layout.header_len(frame)
    if n < head_len + SPI_LEN + layout.tail_len:
        refuse("length", f"{n} octets: no room for a security header")
    spi = frame[head_len] << 8 | frame[head_len + 1]
    sa = sa_lookup.get(spi) if isinstance(sa_lookup, Mapping) else sa_lookup(spi)
    if sa is None:
        refuse("spi_unknown", f"no field lengths given for SPI {spi}")
    at = head_len + SPI_LEN
    fields: dict[str, object] = {"spi": spi, "security_header_offset": head_len}
    for name, length in (("iv", sa.iv_len), ("sn", sa.sn_len), ("pad", sa.pad_len)):
        fields[name] = frame[at : at + length].hex()
        at += length
    mac_at = n - layout.tail_len - sa.mac_len
    if mac_at < at:
        refuse("length", f"{n} octets: shorter than SPI {spi}'s header and trailer")
    fields.update(
        data_offset=at,
        data_length=mac_at - at,
        mac=frame[mac_at : mac_at + sa.mac_len].hex(),
        mac_offset=mac_at,
    )
    if ocf:
        fields["ocf"] = frame[n - layout.tail_len : n - layout.fecf_len].hex()
    if fecf:
        fields["fecf"] = frame[n - FECF_LEN :].hex()
        fields["fecf_ok"] = crc16_ccitt(frame) == 0
    return fields
