"""SDLS (CCSDS 355.0-B-2) in captures: protected frames opened for ``linkstack replay``
and ``linkstack conform``.

A capture of links under SDLS holds the frames as they went on air: a security header
(SPI, IV, sequence number, pad length) between the frame's own headers and its data,
the data encrypted when the security association (SA) encrypts, and a MAC before the
OCF and FECF. The tools must take that off before they read the data field. What
protects each kind of link (TC, TM, AOS) is a :class:`LinkSecurity`: its SAs and the
managed parameters that place their fields; a scenario's ``[sdls]``
(:func:`from_uplink`), a conformance profile's, or the capture's own side file says it
(:func:`capture_links`: linkstack writes the run's associations in
``<capture>.nodes.json``, :func:`links_document`, never a key). An :class:`SdlsView` holds
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

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkstack.capture.network import nodes_path
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls import FrameSecurity, SaCounters, SecurityAssociation
from linkstack.ccsds.sdls_layout import (
    FECF_LEN,
    MAX_FRAME_LEN,
    SPI_LEN,
    FrameLayout,
    frame_vcid,
    parse_security_header,
)
from linkstack.errors import ConfigError, SdlsError

if TYPE_CHECKING:
    from linkstack.ccsds.sdls_keys import Keyring
    from linkstack.runtime.uplink_config import UplinkConfig

KINDS = ("tc", "tm", "aos")
READABLE = ("clear", "auth")  # services whose data field is readable without a key
TC_MAX_LEN = 1024  # 232.0-B-4's longest TC frame
SIDE_KEY = "sdls"  # the side file's entry of the run's associations (absent: none said)
KEYS_SUFFIX = ".keys.json"  # the key file linkstack demo writes beside its capture


USLP_VERSION = 0b1100
USLP_MAX_LEN = MAX_FRAME_LEN["uslp"]


def frame_kind(kind: str, frame: bytes) -> tuple[str, bool]:
    """Where SDLS sits in a frame of a ``kind`` link: ``(kind, True)`` for its TC, TM or
    AOS frame, ``("uslp", fixed)`` for a USLP frame (``frames.protocol = "uslp"``, told
    by its version: variable-length on an uplink, fixed-length down and across)."""
    if len(frame) > 0 and frame[0] >> 4 == USLP_VERSION:
        return "uslp", kind != "tc"
    return kind, True


def vcid_of(kind: str, frame: bytes) -> int | None:
    """The virtual channel of a TC, TM, AOS or USLP frame (None: too short to say)."""
    layout_kind, _ = frame_kind(kind, frame)
    return frame_vcid(layout_kind, frame) if len(frame) >= 4 else None


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
    # what the run's channel was, recorded for the tools that need it (a dissector):
    # the frames' length on air (TC: the longest) and whether TM/AOS frames carry an
    # OCF; None: not said. A frame is opened at its own length and OCF flag
    frame_length: int | None = None
    ocf: bool | None = None

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
    from linkstack.runtime.site import AOS_FRAME_LEN  # noqa: PLC0415 - the runtime, when asked

    uplink = replace(sdls.uplink.association(), vcid=up.vcid)
    spares = sdls.management.spare_spis if sdls.management.enabled else ()
    return {
        "tc": LinkSecurity(
            (uplink, *(replace(uplink, spi=spi) for spi in spares)),
            segment_header=up.tc_segment_header,
            unkeyed=frozenset(spares),
            frame_length=up.tc_max_frame_length,
        ),
        "tm": LinkSecurity(
            (sdls.downlink.association(),), frame_length=up.tm_frame_length, ocf=True
        ),
        "aos": LinkSecurity((sdls.laser.association(),), frame_length=AOS_FRAME_LEN, ocf=False),
    }


def scenario_links(path: str | os.PathLike[str]) -> dict[str, LinkSecurity] | None:
    """:func:`from_uplink` of a scenario file (ConfigError when it cannot be read)."""
    from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415 - when asked

    return from_uplink(scenario_file.load(path).emulation.uplink)


# -- the associations in a capture's side file ---------------------------------------------

_Types = type | tuple[type, ...]
_LINK_FIELDS: dict[str, _Types] = {  # LinkSecurity's managed parameters, and their types
    "fecf": bool,
    "segment_header": bool,
    "insert_zone_len": int,
    "fhec": bool,
    "frame_length": (int, type(None)),
    "ocf": (bool, type(None)),
}
_SA_FIELDS: dict[str, _Types] = {  # an SA's public parameters (key ids, never a key)
    "spi": int,
    "service": str,
    "ecs": (str, type(None)),
    "acs": (str, type(None)),
    "ekid": (int, type(None)),
    "akid": (int, type(None)),
    "iv_len": int,
    "sn_len": int,
    "pad_len": int,
    "mac_len": int,
    "window": int,
    "abm": str,
    "vcid": (int, type(None)),
}


def links_document(links: Mapping[str, LinkSecurity]) -> dict[str, Any]:
    """The links' associations as the side file keeps them (JSON): per kind, the managed
    parameters, the SPIs whose key is unknown and each SA's public parameters. Key ids
    name the keys of a key file; no key is ever written."""
    out: dict[str, Any] = {}
    for kind, link in links.items():
        entry: dict[str, Any] = {name: getattr(link, name) for name in _LINK_FIELDS}
        entry["unkeyed"] = sorted(link.unkeyed)
        entry["sas"] = [{f.name: getattr(sa, f.name) for f in fields(sa)} for sa in link.sas]
        out[kind] = entry
    return out


def links_from_document(doc: object, where: str = "the side file") -> dict[str, LinkSecurity]:
    """:func:`links_document` read back; ConfigError naming the entry that is wrong."""

    def bad(at: str, rule: str) -> ConfigError:
        return ConfigError(where, f"{SIDE_KEY}{at}", rule)

    def typed(at: str, value: object, want: _Types) -> None:
        if isinstance(value, bool) and want is int:  # JSON's true is no integer here
            raise bad(at, f"must be an integer, got {value!r}")
        if not isinstance(value, want):
            raise bad(at, f"has the wrong type: {value!r}")

    def table(at: str, value: object, known: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise bad(at, f"must be a table, got {value!r}")
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise bad(at, f"unknown entries {unknown}")
        return value

    out: dict[str, LinkSecurity] = {}
    for kind, raw_entry in table("", doc, KINDS).items():
        entry = table(f".{kind}", raw_entry, [*_LINK_FIELDS, "unkeyed", "sas"])
        params: dict[str, Any] = {}
        for name, want in _LINK_FIELDS.items():
            if name in entry:
                typed(f".{kind}.{name}", entry[name], want)
                params[name] = entry[name]
        unkeyed = entry.get("unkeyed", [])
        if not isinstance(unkeyed, list):
            raise bad(f".{kind}.unkeyed", f"must be a list of SPIs, got {unkeyed!r}")
        for spi in unkeyed:
            typed(f".{kind}.unkeyed", spi, int)
        raw_sas = entry.get("sas")
        if not isinstance(raw_sas, list) or not raw_sas:
            raise bad(f".{kind}.sas", f"must be a list of one or more SAs, got {raw_sas!r}")
        sas = []
        for i, raw_sa in enumerate(raw_sas):
            at = f".{kind}.sas[{i}]"
            sa = table(at, raw_sa, _SA_FIELDS)
            if "spi" not in sa or "service" not in sa:
                raise bad(at, "an SA needs its spi and service")
            for name, value in sa.items():
                typed(f"{at}.{name}", value, _SA_FIELDS[name])
            try:
                sas.append(SecurityAssociation(**sa))
            except ConfigError as exc:  # the codec's own checks, named here
                raise bad(at, f"{exc.field}: {exc.rule}") from None
        try:
            out[kind] = LinkSecurity(tuple(sas), unkeyed=frozenset(unkeyed), **params)
            FrameLayout(
                kind,
                fecf=out[kind].fecf,
                segment_header=out[kind].segment_header,
                ocf=bool(out[kind].ocf),
                frame_length=out[kind].frame_length,
                insert_zone_len=out[kind].insert_zone_len,
                fhec=out[kind].fhec,
            )
        except ConfigError as exc:
            raise bad(f".{kind}", f"{exc.field}: {exc.rule}") from None
    return out


def capture_links(path: str | os.PathLike[str]) -> dict[str, LinkSecurity] | None:
    """The associations the side file of the capture at ``path`` records (linkstack
    writes them when SDLS was on); None when there is no side file, it cannot be read
    (the replay says so of its own), or it records none (SDLS off, or an older capture).
    ConfigError when the entry is there and wrong."""
    side = nodes_path(path)
    try:
        doc = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get(SIDE_KEY) is None:
        return None
    return links_from_document(doc[SIDE_KEY], str(side))


def keys_beside(path: str | os.PathLike[str]) -> Path | None:
    """The key file ``linkstack demo`` writes beside its capture, when it is there: never
    read unless given (``--keys``), only named."""
    keys = Path(os.fspath(path) + KEYS_SUFFIX)
    return keys if keys.is_file() else None


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
    not there is clear) and the keys, if any. ``source`` says where the associations
    came from ("--scenario FILE", "the capture's side file"...); ``keys_hint`` a key
    file that could be given (named, never read)."""

    def __init__(
        self,
        links: Mapping[str, LinkSecurity],
        keys: Keyring | None = None,
        *,
        source: str = "",
        keys_hint: Path | None = None,
    ) -> None:
        for kind in links:
            if kind not in KINDS:
                raise ConfigError("sdls", "kind", f"must be one of {KINDS}, got {kind!r}")
        self.links = dict(links)
        self.keys = keys
        self.source = source
        self.keys_hint = keys_hint if keys is None else None
        self._security: dict[tuple[str, int, int, bool, bool], FrameSecurity | None] = {}

    def describe(self) -> str:
        """What the view knows, in a line: ``TC SPI 1 aead (VC 0); TM SPI 2 auth...``."""
        parts = [f"{kind.upper()} {self.links[kind].describe()}" for kind in self.links]
        keys = f"keys {', '.join(map(str, self.keys.ids))}" if self.keys is not None else "no keys"
        if self.keys_hint is not None:
            keys += f" (to read the encrypted frames: pass --keys {self.keys_hint})"
        source = f"; from {self.source}" if self.source else ""
        return "; ".join(parts) + f"; {keys}{source}"

    @property
    def keys_option(self) -> str:
        """The ``--keys`` option to suggest for sealed frames."""
        return f"--keys {self.keys_hint}" if self.keys_hint is not None else "--keys KEYFILE"

    def protects(self, kind: str, frame: bytes) -> bool:
        """Whether ``frame`` (of ``kind``) carries a security header: its kind has SAs
        and one of them is on its virtual channel."""
        link = self.links.get(kind)
        return link is not None and link.covers(vcid_of(kind, frame))

    def open(self, kind: str, frame: bytes) -> Opened:
        """Read a protected frame (see the module docstring); never raises on its octets.
        A USLP frame of a ``kind`` link is opened with the USLP layout, by its own OCF
        flag, without TC's segment header."""
        link = self.links[kind]
        vcid = vcid_of(kind, frame)
        layout_kind, fixed = frame_kind(kind, frame)
        uslp = layout_kind == "uslp"
        if uslp:  # the frame says (a truncated frame has no flags: no OCF)
            ocf = len(frame) > 6 and not frame[3] & 1 and bool(frame[6] & 0x08)
        else:
            ocf = kind == "tm" and len(frame) > 1 and bool(frame[1] & 1)
        segment_header = link.segment_header and not uslp
        try:
            layout = FrameLayout(
                layout_kind,
                fecf=link.fecf,
                segment_header=segment_header,
                ocf=ocf,
                insert_zone_len=link.insert_zone_len,
                fhec=link.fhec,
                fixed=fixed,
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
                layout_kind,
                {spi: sa},
                fecf=link.fecf,
                segment_header=segment_header,
                ocf=ocf,
                insert_zone_len=link.insert_zone_len,
                fhec=link.fhec,
                fixed=fixed,
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
        readable = _strip(frame, head_len, fields, layout) if sa.service in READABLE else None
        if sa.service == "clear":
            return replace(base, plain=readable)
        if self.keys is None or spi in link.unkeyed:
            return replace(base, plain=readable, key_missing=True)
        security = self._security_for(layout_kind, sa, link, len(frame), ocf, fixed)
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
        self,
        kind: str,
        sa: SecurityAssociation,
        link: LinkSecurity,
        n: int,
        ocf: bool,
        fixed: bool = True,
    ) -> FrameSecurity | None:
        """The codec's receiving end for ``sa`` on frames of ``n`` octets (TC and
        variable-length USLP: any up to the maximum), None where no such channel can be
        made; ``kind`` is the frame's layout ("tc", "tm", "aos", "uslp")."""
        assert self.keys is not None
        length = TC_MAX_LEN if kind == "tc" else n if fixed else USLP_MAX_LEN
        key = (kind, sa.spi, length, ocf, fixed)
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
                    segment_header=link.segment_header and kind == "tc",
                    ocf=ocf,
                    frame_length=length,
                    insert_zone_len=link.insert_zone_len,
                    fhec=link.fhec,
                    fixed=fixed,
                )
            except ConfigError:  # a frame too short or too long for any such channel
                self._security[key] = None
        return self._security[key]


def _strip(frame: bytes, head_len: int, fields: Mapping[str, object], layout: FrameLayout) -> bytes:
    """The plain frame of a clear or authentication-only SA's frame, read without a key:
    its headers, data, OCF, the TC or USLP length field and the FECF made to match (what
    ``process`` returns once it has verified the MAC)."""
    at = int(str(fields["data_offset"]))
    n = int(str(fields["data_length"]))
    head = bytearray(frame[:head_len])
    rest = frame[len(frame) - layout.tail_len : len(frame) - layout.fecf_len]
    plain = bytes(head) + frame[at : at + n] + rest
    total = len(plain) + layout.fecf_len
    if layout.has_length_field:
        layout.set_length(head, total)
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
