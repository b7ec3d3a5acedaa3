"""Space Data Link Security, CCSDS 355.0-B-2, on TC, TM, AOS and USLP frames, sans-I/O.

A :class:`SecurityAssociation` (SA) says how frames are protected: its SPI, its
service (clear, authentication, encryption, authenticated encryption), its suites and
key ids, and the lengths of the security header fields (IV, sequence number, pad
length) and of the MAC trailer. A :class:`FrameSecurity` is one link direction: the
SAs it knows, the keys (:class:`~linkstack.ccsds.sdls_keys.Keyring`), the channel's
managed parameters, and each SA's counters. :meth:`FrameSecurity.apply` turns a plain
frame, as linkstack's TC/TM/AOS codecs make it, into the protected frame;
:meth:`FrameSecurity.process` checks a protected frame and gives the plain frame back,
or refuses it with an :class:`~linkstack.errors.SdlsError` that says why.

The protected frame::

    primary header [segment header | TM secondary header | AOS FHEC, insert zone
                    | USLP insert zone]
    security header: SPI (2) | IV (iv_len) | sequence number (sn_len) | pad length (pad_len)
    frame data field (encrypted for "enc" and "aead")
    security trailer: MAC (mac_len)
    [OCF] [FECF]

The rules that make the octets CryptoLib's (NASA's SDLS library, which flight software
uses; ``tests/vectors/sdls`` holds its output), read off its vectors:

- what the MAC covers: for "auth", every octet before the MAC (headers, security
  header, data), for "aead" the GCM additional data is every octet before the data;
  both after the TC or USLP frame length field was set to the protected length. The OCF and
  the FECF are not covered. The authentication bit mask is all ones ("all") or all
  zeros ("none"), applied to the whole MAC input: with "none" an "auth" MAC covers
  zeros only, so it protects nothing but the frame's length (CryptoLib's default
  mask; kept for interoperability, never a good choice);
- the frame carries the SA's IV and sequence number as they were before the frame,
  then both count up by one (big-endian, wrapping); a clear SA carries its fields but
  never counts;
- an authentication-only SA has no IV (CryptoLib refuses one);
- no suite here pads (GCM is a stream mode, CMAC and HMAC take any length): the pad
  length field is sent as zeros, and a frame whose field is not zero is refused.

Receiving, the MAC is verified before anything is judged from the counters, so that
"replay" and "window" are said of authentic frames only; a refusal changes no
state. Anti-replay reads the sequence number when the SA has one, else, for GCM, the
IV: a frame is accepted when its counter is at most ``window - 1`` ahead of the next
expected (the last accepted plus one). Frames that arrive out of order are therefore
refused: the TC and TM links deliver in order, and COP-1 retransmits what was lost.
A clear SA has no anti-replay; an encryption-only SA has no integrity (its IV is
unauthenticated): use "aead" where either matters. Each SA counts its IVs from its
own start, so two SAs that encrypt with one key would repeat IVs under it, which
breaks GCM: a link refuses that, and SAs of different links (the two directions)
must be given different keys by whoever configures them.

A TC control command (Type-BC) frame has no segment header (232.0-B-4), so its
security header follows the primary header even on a channel with segment headers;
where each field sits is :mod:`linkstack.ccsds.sdls_layout`'s, which also reads them
without a key (:func:`parse_security_header`, for ``linkstack decode``).

The FECF, when the channel has one, is checked first: a wrong one is damage on the
link, refused with reason "fecf" (:class:`~linkstack.errors.SdlsChecksumError`, also a
:class:`~linkstack.errors.ChecksumError`), not an attack.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls_keys import Keyring
from linkstack.ccsds.sdls_layout import (
    DEFAULT_FRAME_LEN,
    FECF_LEN,
    SPI_LEN,
    FrameLayout,
    parse_security_header,
    refuse,
)
from linkstack.ccsds.sdls_suites import (
    AUTHENTICATORS,
    CIPHERS,
    GCM_IV_LEN,
    MAX_MAC_LEN,
    MIN_TAG_LEN,
    Authenticator,
    Buffer,
    Cipher,
    MacError,
)
from linkstack.errors import ConfigError, EncodeError, SdlsChecksumError, SdlsError

__all__ = [
    "FrameLayout",
    "FrameSecurity",
    "Keyring",
    "SaCounters",
    "SdlsError",
    "SecurityAssociation",
    "parse_security_header",
]

MIN_SPI, MAX_SPI = 1, 0xFFFE  # 0 and 0xFFFF are reserved
SERVICES = ("clear", "auth", "enc", "aead")
MASKS = ("all", "none")
MAX_FIELD_LEN = 16  # IV and sequence number fields, octets (CryptoLib's IV_SIZE)


@dataclass(frozen=True, slots=True)
class SecurityAssociation:
    """One SA, as configured: no keys (ids only) and no counters (they are the
    :class:`FrameSecurity`'s). Field names follow CryptoLib's where they differ
    (``iv_len`` is its ``shivf_len``, ``sn_len`` ``shsnf_len``, ``pad_len``
    ``shplf_len``, ``mac_len`` ``stmacf_len``, ``window`` ``arsnw``)."""

    spi: int
    service: str  # "clear" | "auth" | "enc" | "aead"
    ecs: str | None = None  # "AES256_GCM" for "enc" and "aead"
    acs: str | None = None  # "CMAC_AES256" | "HMAC_SHA256" for "auth"
    ekid: int | None = None
    akid: int | None = None
    iv_len: int = 12
    sn_len: int = 0
    pad_len: int = 0
    mac_len: int = 16
    window: int = 5
    abm: str = "all"  # authentication bit mask: "all" ones or "none"
    vcid: int | None = None  # the virtual channel it protects; None: any

    def __post_init__(self) -> None:
        _check_sa(self)

    @property
    def header_len(self) -> int:
        return SPI_LEN + self.iv_len + self.sn_len + self.pad_len

    @property
    def trailer_len(self) -> int:
        return self.mac_len

    @property
    def overhead(self) -> int:
        return self.header_len + self.trailer_len

    @property
    def replay_counter(self) -> str | None:
        """What the receiver's anti-replay reads: "sn", "iv" (GCM without a sequence
        number) or None (a clear SA)."""
        if self.service == "clear":
            return None
        return "sn" if self.sn_len else "iv"


def _check_sa(sa: SecurityAssociation) -> None:
    def bad(field: str, rule: str) -> NoReturn:
        raise ConfigError(f"sdls SA {sa.spi}", field, rule)

    def integer(field: str, value: object, lo: int, hi: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            bad(field, f"must be an integer {lo}..{hi}, got {value!r}")

    integer("spi", sa.spi, MIN_SPI, MAX_SPI)
    if sa.service not in SERVICES:
        bad("service", f"must be one of {SERVICES}, got {sa.service!r}")
    if sa.abm not in MASKS:
        bad("abm", f"must be one of {MASKS}, got {sa.abm!r}")
    integer("iv_len", sa.iv_len, 0, MAX_FIELD_LEN)
    integer("sn_len", sa.sn_len, 0, MAX_FIELD_LEN)
    integer("pad_len", sa.pad_len, 0, 4)
    integer("mac_len", sa.mac_len, 0, max(MAX_MAC_LEN.values()))
    integer("window", sa.window, 1, 1 << (8 * MAX_FIELD_LEN - 1))  # and under half the counter
    if sa.vcid is not None:
        integer("vcid", sa.vcid, 0, 63)
    encrypts = sa.service in ("enc", "aead")
    if encrypts:
        if sa.ecs not in CIPHERS:
            bad("ecs", f"{sa.service!r} needs an encryption suite of {[*CIPHERS]}, got {sa.ecs!r}")
        integer("ekid", sa.ekid, 0, 0xFFFF)
        if sa.iv_len != GCM_IV_LEN:
            bad("iv_len", f"AES-GCM's IV is {GCM_IV_LEN} octets here, got {sa.iv_len}")
    elif sa.ecs is not None:
        bad("ecs", f"a {sa.service!r} SA encrypts nothing: no encryption suite")
    if sa.service == "auth":
        if sa.acs not in AUTHENTICATORS:
            bad(
                "acs",
                f"'auth' needs an authentication suite of {[*AUTHENTICATORS]}, got {sa.acs!r}",
            )
        integer("akid", sa.akid, 0, 0xFFFF)
        if sa.iv_len:
            bad("iv_len", "an authentication-only SA has no IV field (CryptoLib refuses one): 0")
        if not sa.sn_len:
            bad("sn_len", "an authentication-only SA needs a sequence number for anti-replay")
    elif sa.acs is not None:
        bad("acs", f"a {sa.service!r} SA takes no authentication suite")
    if sa.service in ("auth", "aead"):
        suite = sa.acs if sa.service == "auth" else sa.ecs
        assert suite is not None
        integer("mac_len", sa.mac_len, MIN_TAG_LEN, MAX_MAC_LEN[suite])
    elif sa.mac_len:
        bad("mac_len", f"a {sa.service!r} SA has no MAC: 0, got {sa.mac_len}")
    counter_len = sa.sn_len or (sa.iv_len if encrypts else 0)
    if counter_len and sa.window >= 1 << (8 * counter_len - 1):
        bad("window", f"must be under half the {counter_len}-octet counter's range")


@dataclass(frozen=True, slots=True)
class SaCounters:
    """One SA's IV and sequence number at one end, as integers. Sending: what the
    next frame carries. Receiving: the lowest value the next frame may carry (the
    last accepted plus one)."""

    iv: int = 0
    sn: int = 0


_NO_FECF = bytes(FECF_LEN)  # a plain frame's FECF not computed (process, plain_fecf False)


def _check_counter(received: int, expected: int, octets: int, window: int, what: str) -> None:
    """Anti-replay: ``received`` must be within ``window`` of ``expected`` (the next
    value due), modulo the field's range; behind it is a replay, far ahead out of window."""
    modulus = 1 << (8 * octets)
    ahead = (received - expected) % modulus
    if ahead < window:
        return
    if (expected - received) % modulus <= modulus // 2:
        refuse(
            "replay", f"{what} {received:#x} is at or behind the last accepted ({expected - 1:#x})"
        )
    refuse(
        "window",
        f"{what} {received:#x} is {ahead} past the next expected {expected:#x}; window {window}",
    )


class FrameSecurity:
    """SDLS for one link direction: ``apply`` on the sending end, ``process`` on the
    receiving end (one object may do both, as a loopback does). ``stats`` counts
    "applied", "processed" and one "refused_<reason>" per refusal."""

    def __init__(
        self,
        kind: str,
        sas: Iterable[SecurityAssociation],
        keys: Keyring,
        *,
        fecf: bool,
        segment_header: bool = False,
        ocf: bool = False,
        frame_length: int | None = None,
        insert_zone_len: int = 0,
        fhec: bool = False,
        fixed: bool = True,
    ) -> None:
        self.layout = FrameLayout(
            kind,
            fecf=fecf,
            segment_header=segment_header,
            ocf=ocf,
            frame_length=frame_length if frame_length is not None else DEFAULT_FRAME_LEN.get(kind),
            insert_zone_len=insert_zone_len,
            fhec=fhec,
            fixed=fixed,
        )
        self.kind = kind
        self.frame_length: int = self.layout.frame_length or 0
        self.keys = keys
        self._sas: dict[int, SecurityAssociation] = {}
        # (iv, sn) of each SA: plain tuples, the hot path's cheapest record
        self._send: dict[int, tuple[int, int]] = {}
        self._receive: dict[int, tuple[int, int]] = {}
        self.stats: Counter[str] = Counter()
        for sa in sas:
            self.add_sa(sa)

    def add_sa(self, sa: SecurityAssociation) -> None:
        """Take ``sa`` on this link, its counters at zero (an SA configured, or one
        that a management procedure started). ``ConfigError`` for an SPI known here
        already, a GCM key another SA encrypts with, or an SA whose overhead leaves
        no data in a frame."""
        if sa.spi in self._sas:
            raise ConfigError("sdls", "spi", f"SPI {sa.spi} is configured twice")
        if sa.service in ("enc", "aead"):
            for other in self._sas.values():
                if other.service in ("enc", "aead") and other.ekid == sa.ekid:
                    raise ConfigError(
                        "sdls",
                        "ekid",
                        f"SAs {other.spi} and {sa.spi} both encrypt with key "
                        f"{sa.ekid}: their IVs, each counted from its own SA, would repeat "
                        "under one key, which breaks GCM; give each its own key",
                    )
        minimum = self.layout.primary_len + 1 + self.layout.tail_len
        if self.frame_length - sa.overhead < minimum:
            raise ConfigError(
                "sdls",
                "frame_length",
                f"{self.frame_length} octets leave no data for SA {sa.spi}",
            )
        self._sas[sa.spi] = sa
        self._send[sa.spi] = self._receive[sa.spi] = (0, 0)

    def remove_sa(self, spi: int) -> SecurityAssociation:
        """Stop taking SA ``spi`` on this link (a management procedure stopped it):
        its frames are refused as of an unknown SPI. The SA, as it was."""
        sa = self.sa(spi)
        del self._sas[spi], self._send[spi], self._receive[spi]
        return sa

    # -- the SAs and their counters ------------------------------------------------------------

    @property
    def sas(self) -> Mapping[int, SecurityAssociation]:
        return dict(self._sas)

    def sa(self, spi: int) -> SecurityAssociation:
        sa = self._sas.get(spi)
        if sa is None:
            refuse(
                "spi_unknown", f"no security association with SPI {spi} on this {self.kind} link"
            )
        return sa

    def send_counters(self, spi: int) -> SaCounters:
        return SaCounters(*self._send[self.sa(spi).spi])

    def receive_counters(self, spi: int) -> SaCounters:
        return SaCounters(*self._receive[self.sa(spi).spi])

    def set_send_counters(self, spi: int, counters: SaCounters) -> None:
        """What the next frame of SA ``spi`` will carry (a restart, a rekeyed SA)."""
        self._send[spi] = _fitting(self.sa(spi), counters)

    def set_receive_counters(self, spi: int, counters: SaCounters) -> None:
        """The lowest counters the next frame of SA ``spi`` may carry."""
        self._receive[spi] = _fitting(self.sa(spi), counters)

    def plain_length(self, spi: int) -> int:
        """TM/AOS: the length of the plain frame to build for SA ``spi`` (the channel's
        frame length less the SA's overhead); TC: the longest plain frame."""
        return self.frame_length - self.sa(spi).overhead

    # -- sending ---------------------------------------------------------------------------------

    def apply(self, plain: bytes, spi: int) -> bytes:
        """The protected frame of ``plain`` under SA ``spi`` (module docstring);
        the SA's send counters then count up. ``EncodeError`` for a plain frame that
        does not fit; ``SdlsError`` "spi_unknown" or "key_missing"."""
        sa = self.sa(spi)
        layout = self.layout
        n = len(plain)
        try:
            head_len = layout.header_len(plain)
        except SdlsError as exc:
            raise EncodeError("sdls", exc.field, exc.rule) from None
        if layout.has_length_field:
            declared = layout.declared_length(plain)
            if declared != n:
                raise EncodeError(
                    "sdls",
                    "length",
                    f"{self.kind.upper()} length field says {declared}, the frame has {n}",
                )
        if layout.variable:
            if n + sa.overhead > self.frame_length:
                raise EncodeError(
                    "sdls",
                    "length",
                    f"{n} octets + SA {spi}'s {sa.overhead} exceed the maximum, "
                    f"{self.frame_length}",
                )
        elif n != self.frame_length - sa.overhead:
            raise EncodeError(
                "sdls",
                "length",
                f"a plain {self.kind} frame for SA {spi} is "
                f"{self.frame_length - sa.overhead} octets, got {n}",
            )
        data_end = n - layout.tail_len
        if data_end <= head_len:
            raise EncodeError("sdls", "length", f"{n} octets leave no frame data field")
        iv_count, sn_count = self._send[spi]
        iv = iv_count.to_bytes(sa.iv_len, "big")
        header = bytearray(plain[:head_len])
        if layout.has_length_field:
            layout.set_length(header, n + sa.overhead)
        header += spi.to_bytes(SPI_LEN, "big")
        header += iv
        header += sn_count.to_bytes(sa.sn_len, "big")
        header += bytes(sa.pad_len)
        data = memoryview(plain)[head_len:data_end]
        ocf = plain[data_end : n - layout.fecf_len]  # untouched, and not authenticated
        service = sa.service
        if service == "aead":
            sealed = self._cipher(sa).encrypt(iv, _masked(sa, header), data, sa.mac_len)
            frame = b"".join((header, sealed, ocf))
        elif service == "enc":
            frame = b"".join((header, self._cipher(sa).encrypt(iv, b"", data, 0), ocf))
        elif service == "auth":
            covered = b"".join((header, data))
            mac = self._authenticator(sa).mac(_masked(sa, covered), sa.mac_len)
            frame = b"".join((covered, mac, ocf))
        else:
            frame = b"".join((header, data, ocf))
        if layout.fecf:
            frame += crc16_ccitt(frame).to_bytes(FECF_LEN, "big")
        if service != "clear":
            self._send[spi] = (_inc(iv_count, sa.iv_len), _inc(sn_count, sa.sn_len))
        self.stats["applied"] += 1
        return frame

    # -- receiving -------------------------------------------------------------------------------

    def process(self, protected: bytes, *, plain_fecf: bool = True) -> tuple[int, bytes]:
        """Check ``protected`` and return (SPI, the plain frame, as :meth:`apply`
        takes it). A refusal raises :class:`SdlsError` with its reason, is counted in
        ``stats`` and changes nothing else. ``plain_fecf`` False: the plain frame's
        FECF octets are left zero, not computed, for a receiver told the protected
        frame's was checked here (a CRC of the frame saved, of the three a TM frame
        would otherwise cost: the protected one's, the plain one's, the receiver's)."""
        try:
            spi, plain, counters = self._process(
                protected if isinstance(protected, bytes) else bytes(protected), plain_fecf
            )
        except SdlsError as exc:
            self.stats[f"refused_{exc.field}"] += 1
            raise
        if counters is not None:
            self._receive[spi] = counters
        self.stats["processed"] += 1
        return spi, plain

    def _process(
        self, frame: bytes, plain_fecf: bool = True
    ) -> tuple[int, bytes, tuple[int, int] | None]:
        layout = self.layout
        n = len(frame)
        # the size first where the channel fixes it, then the CRC (damage, not an attack),
        # then the TC length field, which the CRC covers
        if not layout.variable and n != self.frame_length:
            refuse(
                "length",
                f"{self.kind} frames on this channel are {self.frame_length} octets, got {n}",
            )
        if n < layout.primary_len + layout.fecf_len:
            refuse("length", f"{n} octets: shorter than a {self.kind} header")
        if layout.fecf and crc16_ccitt(frame):
            raise SdlsChecksumError(
                "sdls", "fecf", f"the {self.kind} frame's FECF does not match its octets"
            )
        if layout.has_length_field:
            declared = layout.declared_length(frame)
            if declared != n:
                refuse(
                    "length",
                    f"{self.kind.upper()} length field says {declared} octets, the frame has {n}",
                )
        head_len = layout.header_len(frame)
        if n < head_len + SPI_LEN + layout.tail_len:
            refuse("length", f"{n} octets: no room for a security header")
        spi = frame[head_len] << 8 | frame[head_len + 1]
        sa = self._sas.get(spi)
        if sa is None:
            refuse("spi_unknown", f"SPI {spi} is not known on this {self.kind} link")
        if sa.vcid is not None and layout.vcid(frame) != sa.vcid:
            refuse("spi_unknown", f"SPI {spi} is not known on virtual channel {layout.vcid(frame)}")
        sh_end = head_len + sa.header_len
        mac_at = n - layout.tail_len - sa.mac_len
        if mac_at <= sh_end:
            refuse("length", f"{n} octets: no data between SA {spi}'s header and trailer")
        at = head_len + SPI_LEN
        iv = frame[at : at + sa.iv_len]
        sn = frame[at + sa.iv_len : at + sa.iv_len + sa.sn_len]
        view = memoryview(frame)  # slices of it are not copies
        service = sa.service
        data: bytes | memoryview
        if service == "aead":
            sealed = view[sh_end : mac_at + sa.mac_len]
            try:
                data = self._cipher(sa).decrypt(iv, _masked(sa, view[:sh_end]), sealed, sa.mac_len)
            except MacError:
                refuse("mac", f"SA {spi}: the GCM tag does not verify")
        elif service == "enc":
            data = self._cipher(sa).decrypt(iv, b"", view[sh_end:mac_at], 0)
        elif service == "auth":
            mac = view[mac_at : mac_at + sa.mac_len]
            if not self._authenticator(sa).verify(_masked(sa, view[:mac_at]), mac):
                refuse("mac", f"SA {spi}: the MAC does not verify")
            data = view[sh_end:mac_at]
        else:
            data = view[sh_end:mac_at]
        if sa.pad_len and any(view[sh_end - sa.pad_len : sh_end]):
            # GCM, CMAC and HMAC pad nothing: a pad count would cut data we never added
            refuse("header", f"SA {spi}: pad length field is not zero; its suites do not pad")
        counters = None
        if service != "clear":
            iv_next, sn_next = self._receive[spi]
            iv_value = int.from_bytes(iv, "big")
            sn_value = int.from_bytes(sn, "big")
            if sa.sn_len:
                _check_counter(sn_value, sn_next, sa.sn_len, sa.window, "sequence number")
            else:
                _check_counter(iv_value, iv_next, sa.iv_len, sa.window, "IV")
            counters = (
                _inc(iv_value, sa.iv_len) if sa.iv_len else iv_next,
                _inc(sn_value, sa.sn_len) if sa.sn_len else sn_next,
            )
        head = frame[:head_len]
        if layout.has_length_field:
            header = bytearray(head)
            layout.set_length(header, n - sa.overhead)
            head = bytes(header)
        tail = view[mac_at + sa.mac_len : n - layout.fecf_len]
        if layout.fecf and not plain_fecf:  # one copy of the frame, not two
            plain = b"".join((head, data, tail, _NO_FECF))
        else:
            plain = b"".join((head, data, tail))
            if layout.fecf:
                plain += crc16_ccitt(plain).to_bytes(FECF_LEN, "big")
        return spi, plain, counters

    def _cipher(self, sa: SecurityAssociation) -> Cipher:
        assert sa.ekid is not None and sa.ecs is not None  # the SA's checks made sure
        try:
            return self.keys.cipher(sa.ekid, sa.ecs)
        except KeyError:
            refuse("key_missing", f"SA {sa.spi}: key {sa.ekid} is not in the keyring")

    def _authenticator(self, sa: SecurityAssociation) -> Authenticator:
        assert sa.akid is not None and sa.acs is not None
        try:
            return self.keys.authenticator(sa.akid, sa.acs)
        except KeyError:
            refuse("key_missing", f"SA {sa.spi}: key {sa.akid} is not in the keyring")


def _masked(sa: SecurityAssociation, octets: Buffer) -> Buffer:
    """The MAC input under the SA's authentication bit mask (all ones or all zeros)."""
    return octets if sa.abm == "all" else bytes(len(octets))


def _fitting(sa: SecurityAssociation, counters: SaCounters) -> tuple[int, int]:
    for name, value, octets in (("iv", counters.iv, sa.iv_len), ("sn", counters.sn, sa.sn_len)):
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * octets):
            raise ConfigError(
                f"sdls SA {sa.spi}", name, f"{value!r} does not fit its {octets}-octet field"
            )
    return counters.iv, counters.sn


def _inc(value: int, octets: int) -> int:
    return (value + 1) % (1 << (8 * octets)) if octets else value
