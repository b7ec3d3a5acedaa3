"""SDLS (CCSDS 355.0-B-2) in captures: protected frames opened for ``linkstack replay``
and ``linkstack conform``.

A capture of links under SDLS holds the frames as they went on air: a security header
(SPI, IV, sequence number, pad length) between the frame's own headers and its data,
the data encrypted when the security association (SA) encrypts, and a MAC before the
OCF and FECF. The tools must take that off before they read the data field. What
protects each kind of link (TC, TM, AOS) is a :class:`LinkSecurity`: its SAs and the
managed parameters that place their fields; a scenario's ``[sdls]``
(:func:`from_uplink`) or a conformance profile's says it. An :class:`SdlsView` holds
them and, optionally, the keys (a :class:`~linkstack.ccsds.sdls_keys.Keyring`, as
``Keyring.from_file`` reads linkstack's key file).

:meth:`SdlsView.open` reads one protected frame into an :class:`Opened`: the SPI and
its SA, the anti-replay counter the frame carries (the sequence number, or the IV of
a GCM SA without one), the pad length field, whether the MAC verified, and the plain
frame (the frame as its standard has it, without SDLS, its length field and FECF made
to match, as :meth:`~linkstack.ccsds.sdls.FrameSecurity.process` gives it). With the
key, the codec's own ``process`` verifies and decrypts, with the receive counters set
to the frame's own (a capture is judged frame by frame: what its counters do across
frames is the callers' to judge); without it, the fields are read
(:func:`~linkstack.ccsds.sdls_layout.parse_security_header`) and the data field of a
clear or authentication-only SA is readable as it stands, that of an encrypting SA
("enc", "aead") is not (``sealed``). Nothing here is cryptography of its own.

A frame's FECF is judged by the frame's rules; here a wrong one is made right before
the MAC is checked, so that the MAC, not the damage, says whether the frame is
authentic. :class:`ReplayCheck` follows the counters from frame to frame of a link,
as a receiver's anti-replay does.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls import FrameSecurity, SaCounters, SecurityAssociation
from linkstack.ccsds.sdls_layout import FECF_LEN, SPI_LEN, FrameLayout, parse_security_header
from linkstack.errors import ConfigError, SdlsError

if TYPE_CHECKING:
    from linkstack.ccsds.sdls_keys import Keyring
    from linkstack.runtime.cop1_link import UplinkConfig

KINDS = ("tc", "tm", "aos")
READABLE = ("clear", "auth")  # services whose data field is readable without a key
TC_MAX_LEN = 1024  # 232.0-B-4's longest TC frame


def vcid_of(kind: str, frame: bytes) -> int | None:
    """The virtual channel of a TC, TM or AOS frame (None: too short to say)."""
    if len(frame) < 3:
        return None
    if kind == "tc":
        return (frame[2] >> 2) & 0x3F
    if kind == "tm":
        return (frame[1] >> 1) & 0x07
    return frame[1] & 0x3F


@dataclass(frozen=True)
class LinkSecurity:
    """What protects one kind of link: its SAs (each on one virtual channel, or on
    all with ``vcid`` None) and where their fields sit (the managed parameters of
    :class:`~linkstack.ccsds.sdls_layout.FrameLayout`; a TM frame's OCF flag and a
    frame's length are read from the frame itself: they are its own rules' to judge)."""

    sas: tuple[SecurityAssociation, ...]
    fecf: bool = True
    segment_header: bool = False
    insert_zone_len: int = 0
    fhec: bool = False
    # SPIs whose key is not known beforehand (linkstack's spare uplink SAs, which a key
    # rotation keys during a run): their frames are read as without a key
    unkeyed: frozenset[int] = frozenset()

    def covers(self, vcid: int | None) -> bool:
        """Whether frames of virtual channel ``vcid`` carry a security header."""
        return vcid is not None and any(sa.vcid in (None, vcid) for sa in self.sas)

    def sa(self, spi: int) -> SecurityAssociation | None:
        return next((sa for sa in self.sas if sa.spi == spi), None)

    def describe(self) -> str:
        """The SAs in a few words: ``SPI 1 aead (VC 0)``."""
        out = []
        for sa in self.sas:
            notes = [] if sa.vcid is None else [f"VC {sa.vcid}"]
            notes += ["spare: its key unknown"] if sa.spi in self.unkeyed else []
            out.append(f"SPI {sa.spi} {sa.service}" + (f" ({', '.join(notes)})" if notes else ""))
        return ", ".join(out)


def from_uplink(up: UplinkConfig) -> dict[str, LinkSecurity] | None:
    """linkstack's own links under a scenario's ``[sdls]`` (the ``UplinkConfig`` it
    was read into; None when SDLS is off): the uplink SA on linkstack's TC virtual
    channel, the downlink SA on every TM frame, the laser SA on every AOS frame,
    each with its key id, as :class:`~linkstack.runtime.security.FrameGuard` applies
    them; and, with ``[sdls.management]``, the spare uplink SAs a key rotation starts,
    their keys unknown (a rotation keys them during the run; it is not followed here)."""
    sdls = up.sdls
    if not sdls.enabled:
        return None
    uplink = replace(sdls.uplink.association(), vcid=up.vcid)
    spares = sdls.management.spare_spis if sdls.management.enabled else ()
    return {
        "tc": LinkSecurity(
            (uplink, *(replace(uplink, spi=spi) for spi in spares)),
            segment_header=up.tc_segment_header,
            unkeyed=frozenset(spares),
        ),
        "tm": LinkSecurity((sdls.downlink.association(),)),
        "aos": LinkSecurity((sdls.laser.association(),)),
    }


def scenario_links(path: str | os.PathLike[str]) -> dict[str, LinkSecurity] | None:
    """:func:`from_uplink` of a scenario file (ConfigError when it cannot be read)."""
    from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415 - when asked

    return from_uplink(scenario_file.load(path).emulation.uplink)


@dataclass(frozen=True, slots=True)
class Opened:
    """One protected frame, read. ``plain`` is None when the data field cannot be
    read: ``sealed`` (an encrypting SA and no key), or the frame was refused
    (``refusal``: the codec's reason, "spi_unknown", "length", "header", "mac",
    "pad"...; ``detail`` in words). ``verified``: the MAC or GCM tag checked (True),
    did not (False), or was not judged (None: no key, or no MAC)."""

    kind: str
    vcid: int | None
    spi: int | None = None
    sa: SecurityAssociation | None = None
    counter: int | None = None  # the anti-replay counter's value; None: a clear SA
    counter_octets: int = 0
    pad: bytes = b""
    ocf: bytes | None = None  # outside SDLS's reach: readable whatever the key
    plain: bytes | None = None
    verified: bool | None = None
    key_missing: bool = False
    refusal: str = ""
    detail: str = ""

    @property
    def sealed(self) -> bool:
        """The data field is encrypted and there was no key to decrypt it."""
        return self.plain is None and self.key_missing and not self.refusal

    @property
    def counter_name(self) -> str:
        if self.sa is None or self.sa.replay_counter is None:
            return ""
        return "sequence number" if self.sa.replay_counter == "sn" else "IV"

    def fields_text(self) -> str:
        """The security header in a few words, for a replay's line."""
        if self.spi is None:
            return "no security header"
        text = f"SPI {self.spi}"
        if self.sa is not None:
            text += f" {self.sa.service}"
        if self.counter is not None:
            text += f", {self.counter_name} {self.counter:#x}"
        if self.verified is True:
            text += ", MAC verified" if self.sa and self.sa.service == "auth" else ", tag verified"
        elif self.key_missing:
            text += ", no key"
        return text


class SdlsView:
    """The SDLS of a capture's links (``links``: kind -> :class:`LinkSecurity`; a kind
    not there is clear) and the keys, if any."""

    def __init__(self, links: Mapping[str, LinkSecurity], keys: Keyring | None = None) -> None:
        for kind in links:
            if kind not in KINDS:
                raise ConfigError("sdls", "kind", f"must be one of {KINDS}, got {kind!r}")
        self.links = dict(links)
        self.keys = keys
        self._security: dict[tuple[str, int, int, bool], FrameSecurity | None] = {}

    def describe(self) -> str:
        """What the view knows, in a line: ``TC SPI 1 aead (VC 0); TM SPI 2 auth...``."""
        parts = [f"{kind.upper()} {self.links[kind].describe()}" for kind in self.links]
        keys = f"keys {', '.join(map(str, self.keys.ids))}" if self.keys is not None else "no keys"
        return "; ".join(parts) + f"; {keys}"

    def protects(self, kind: str, frame: bytes) -> bool:
        """Whether ``frame`` (of ``kind``) carries a security header: its kind has SAs
        and one of them is on its virtual channel."""
        link = self.links.get(kind)
        return link is not None and link.covers(vcid_of(kind, frame))

    def open(self, kind: str, frame: bytes) -> Opened:
        """Read a protected frame (see the module docstring); never raises on its octets."""
        link = self.links[kind]
        vcid = vcid_of(kind, frame)
        ocf = kind == "tm" and len(frame) > 1 and bool(frame[1] & 1)  # the frame says
        try:
            layout = FrameLayout(
                kind,
                fecf=link.fecf,
                segment_header=link.segment_header,
                ocf=ocf,
                insert_zone_len=link.insert_zone_len,
                fhec=link.fhec,
            )
            head_len = layout.header_len(frame)
        except SdlsError as exc:
            return Opened(kind, vcid, refusal=exc.field, detail=exc.rule)
        if len(frame) < head_len + SPI_LEN + layout.tail_len:
            return Opened(kind, vcid, refusal="length", detail="no room for a security header")
        spi = int.from_bytes(frame[head_len : head_len + SPI_LEN], "big")
        sa = link.sa(spi)
        if sa is None:
            known = ", ".join(str(s.spi) for s in link.sas)
            detail = f"SPI {spi} is not one of this {kind.upper()} link's ({known})"
            return Opened(kind, vcid, spi, refusal="spi_unknown", detail=detail)
        if sa.vcid not in (None, vcid):
            detail = f"SPI {spi} protects VC {sa.vcid}, not VC {vcid}"
            return Opened(kind, vcid, spi, sa, refusal="spi_unknown", detail=detail)
        try:
            fields = parse_security_header(
                frame,
                kind,
                {spi: sa},
                fecf=link.fecf,
                segment_header=link.segment_header,
                ocf=ocf,
                insert_zone_len=link.insert_zone_len,
                fhec=link.fhec,
            )
        except SdlsError as exc:
            return Opened(kind, vcid, spi, sa, refusal=exc.field, detail=exc.rule)
        iv = int(str(fields["iv"]) or "0", 16)
        sn = int(str(fields["sn"]) or "0", 16)
        pad = bytes.fromhex(str(fields["pad"]))
        counter, octets = None, 0
        if sa.replay_counter == "sn":
            counter, octets = sn, sa.sn_len
        elif sa.replay_counter == "iv":
            counter, octets = iv, sa.iv_len
        n = len(frame)
        ocf_field = frame[n - layout.tail_len : n - layout.fecf_len] if ocf else None
        base = Opened(kind, vcid, spi, sa, counter, octets, pad, ocf_field)
        readable = _strip(frame, kind, head_len, fields, layout) if sa.service in READABLE else None
        if sa.service == "clear":
            return replace(base, plain=readable)
        if self.keys is None or spi in link.unkeyed:
            return replace(base, plain=readable, key_missing=True)
        security = self._security_for(kind, sa, link, len(frame), ocf)
        if security is None:
            detail = f"{len(frame)} octets: no {kind.upper()} channel of such frames holds SA {spi}"
            return replace(base, plain=readable, refusal="length", detail=detail)
        security.set_receive_counters(spi, SaCounters(iv=iv, sn=sn))
        if layout.fecf and crc16_ccitt(frame):  # damage is the FECF's rule; the MAC judges
            frame = frame[:-FECF_LEN] + crc16_ccitt(frame[:-FECF_LEN]).to_bytes(FECF_LEN, "big")
        try:
            _, plain = security.process(frame)
        except SdlsError as exc:
            reason = exc.field
            if reason == "key_missing":
                return replace(base, plain=readable, key_missing=True)
            if reason == "mac":
                return replace(base, plain=readable, verified=False, refusal="mac", detail=exc.rule)
            if reason == "header" and any(pad):
                reason = "pad"  # the codec refuses a pad it never adds (no suite pads)
            return replace(base, plain=readable, refusal=reason, detail=exc.rule)
        return replace(base, plain=plain, verified=True if sa.mac_len else None)

    def _security_for(
        self, kind: str, sa: SecurityAssociation, link: LinkSecurity, n: int, ocf: bool
    ) -> FrameSecurity | None:
        """The codec's receiving end for ``sa`` on frames of ``n`` octets (TC: any up to
        the maximum), None where no such channel can be made."""
        assert self.keys is not None
        length = TC_MAX_LEN if kind == "tc" else n
        key = (kind, sa.spi, length, ocf)
        if key not in self._security:
            # one SA a FrameSecurity: a capture's SAs need not obey one link's rules (two
            # encrypting SAs on one key are refused by a link, not by a reader); a window
            # of 1: the receive counters are set to the frame's own before each
            try:
                self._security[key] = FrameSecurity(
                    kind,
                    [replace(sa, window=1)],
                    self.keys,
                    fecf=link.fecf,
                    segment_header=link.segment_header,
                    ocf=ocf,
                    frame_length=length,
                    insert_zone_len=link.insert_zone_len,
                    fhec=link.fhec,
                )
            except ConfigError:  # a frame too short or too long for any such channel
                self._security[key] = None
        return self._security[key]


def _strip(
    frame: bytes, kind: str, head_len: int, fields: Mapping[str, object], layout: FrameLayout
) -> bytes:
    """The plain frame of a clear or authentication-only SA's frame, read without a key:
    its headers, data, OCF, the TC length field and the FECF made to match (what
    ``process`` returns once it has verified the MAC)."""
    at = int(str(fields["data_offset"]))
    n = int(str(fields["data_length"]))
    head = bytearray(frame[:head_len])
    rest = frame[len(frame) - layout.tail_len : len(frame) - layout.fecf_len]
    plain = bytes(head) + frame[at : at + n] + rest
    total = len(plain) + layout.fecf_len
    if kind == "tc":
        head[2] = (head[2] & 0xFC) | ((total - 1) >> 8) & 0x03
        head[3] = (total - 1) & 0xFF
        plain = bytes(head) + plain[head_len:]
    if layout.fecf:
        plain += crc16_ccitt(plain).to_bytes(FECF_LEN, "big")
    return plain


# -- the counters from frame to frame --------------------------------------------------


@dataclass
class ReplayCheck:
    """Anti-replay across a capture: per (link, SPI), each frame's counter must be
    ahead of the last accepted (modulo its field's range, less than half of it ahead),
    as a receiver's is; :meth:`check` says None (ahead, taken) or why not."""

    last: dict[tuple[object, ...], int] = field(default_factory=dict)

    def check(self, key: Iterable[object], opened: Opened) -> str | None:
        if opened.counter is None or opened.spi is None:
            return None
        k = (*key, opened.spi)
        value, octets = opened.counter, opened.counter_octets
        previous = self.last.get(k)
        if previous is None:
            self.last[k] = value
            return None
        modulus = 1 << (8 * octets)
        ahead = (value - previous) % modulus
        if 0 < ahead < modulus // 2:
            self.last[k] = value
            return None
        name = opened.counter_name
        return f"{name} {value:#x} is not ahead of the last one's ({previous:#x})"


class FrameGate:
    """A replay's SDLS in front of its receivers: :meth:`admit` opens each protected
    frame and refuses (``refusal``) what a receiver would refuse, its anti-replay
    included; ``stats`` counts per link: frames, opened, verified, sealed, refused_*."""

    def __init__(self, view: SdlsView) -> None:
        self.view = view
        self.replays = ReplayCheck()
        self.stats: dict[tuple[object, ...], Counter[str]] = {}

    def admit(self, kind: str, link: tuple[object, ...], frame: bytes) -> Opened | None:
        """The frame opened, or None when its link or virtual channel is clear."""
        if not self.view.protects(kind, frame):
            return None
        opened = self.view.open(kind, frame)
        stats = self.stats.setdefault((kind, *link), Counter())
        stats["frames"] += 1
        if not opened.refusal:
            why = self.replays.check((kind, *link), opened)
            if why is not None:
                opened = replace(opened, plain=None, refusal="replay", detail=why)
        if opened.refusal:
            stats[f"refused_{opened.refusal}"] += 1
        elif opened.sealed:
            stats["sealed"] += 1
        else:
            stats["opened"] += 1
            stats["verified"] += opened.verified is True
        return opened
