"""SDLS in the sat role of the active suite: the tester protects its TC frames as the
spacecraft's ground does, and makes the frames an attacker would send.

A spacecraft endpoint that runs Space Data Link Security (355.0-B-2) on its TC virtual
channel refuses every frame of that channel that does not verify. Given the channel's
security association and its key (:class:`TcSecurity`), the tester protects every
frame it sends on the virtual channel under test (:class:`TcProtector`), so the COP-1
cases run against such an endpoint as against any other, and the SDLS cases
(``SDLS-ACT-...`` in :mod:`.cases`) send what the endpoint must refuse: a flipped bit
in the MAC or the ciphertext (the FECF made valid again), a frame protected under an
SPI the endpoint does not know, or with another key, a frame it took sent again,
frames without SDLS at all.

Counters. The endpoint takes a frame only when its counter (the GCM IV, or the
sequence number of an authentication SA) is above the last it accepted, and not too
far above (its window). The tester starts where the endpoint's ground would if it
started now: linkstack's layout ``[link][start][count]``
(:mod:`linkstack.runtime.security`), with the number of the satellite's link and a
start of now, above anything the real ground sent before and within the window of a
linkstack endpoint. Once the endpoint has taken the tester's frames, the real ground's
are below them: it refuses them as replays until the ground restarts (whose counters
then start higher). Another endpoint's anti-replay may want another start
(``--sdls-counter``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SaCounters, SecurityAssociation
from linkstack.ccsds.sdls_layout import FECF_LEN, FrameLayout
from linkstack.runtime.security import counter_start

MAX_SPI = 0xFFFE


@dataclass(frozen=True)
class TcSecurity:
    """What the tester must know to protect TC frames as the endpoint's ground does:
    the association, its keys, the counters of the first frame, the longest TC frame,
    and the SPIs the endpoint may know besides (an "unknown" SPI is none of them)."""

    sa: SecurityAssociation
    keys: Keyring
    first: SaCounters
    max_frame_length: int = 1024
    known_spis: tuple[int, ...] = ()

    @property
    def unknown_spi(self) -> int:
        """The highest SPI the endpoint does not know: far from those configured, which
        are counted from 1 (spare SAs, that a rekeying starts, among them)."""
        known = {self.sa.spi, *self.known_spis}
        spi = MAX_SPI
        while spi in known:
            spi -= 1
        return spi

    @property
    def has_mac(self) -> bool:
        """Whether the association authenticates (a MAC or a GCM tag): only then can a
        damaged or wrongly keyed frame be told from a good one."""
        return self.sa.mac_len > 0

    @property
    def counts(self) -> bool:
        """Whether the association has anti-replay (every service but "clear")."""
        return self.sa.replay_counter is not None

    def describe(self) -> str:
        sa = self.sa
        kid = sa.ekid if sa.ekid is not None else sa.akid
        key = f", key {kid}" if kid is not None else ""
        counter = sa.replay_counter
        start = ""
        if counter is not None:
            value = self.first.sn if counter == "sn" else self.first.iv
            name = "sequence number" if counter == "sn" else "IV"
            start = f"; the tester's first {name} {value:#x}"
        return f"SDLS SA {sa.spi} ({sa.service}{key}){start}"


def first_counters(sa: SecurityAssociation, link: int, boot: int) -> SaCounters:
    """Where the counters of linkstack's ground of link ``link`` start when it starts at
    ``boot`` (:func:`linkstack.runtime.security.boot_stamp`)."""
    return SaCounters(
        iv=counter_start(sa.iv_len, link, boot), sn=counter_start(sa.sn_len, link, boot)
    )


def counters_at(sa: SecurityAssociation, value: int) -> SaCounters:
    """Both counters at ``value`` (``--sdls-counter``), each within its field."""
    return SaCounters(
        iv=value % (1 << (8 * sa.iv_len)) if sa.iv_len else 0,
        sn=value % (1 << (8 * sa.sn_len)) if sa.sn_len else 0,
    )


class TcProtector:
    """The tester's SDLS on the TC channel under test: :meth:`protect` as the ground
    does, and the frames an endpoint must refuse. Every frame made, good or not, takes
    the next counters, so that a refused frame differs from a good one only in what it
    is made to break."""

    def __init__(self, security: TcSecurity, *, fecf: bool, segment_header: bool) -> None:
        self.security = security
        self.sa = sa = security.sa
        self._fecf = fecf
        self._segment_header = segment_header
        self.good = self._security(sa, security.keys)
        self.good.set_send_counters(sa.spi, security.first)
        self.frame_layout = FrameLayout("tc", fecf=fecf, segment_header=segment_header)
        kids = [k for k in (sa.ekid, sa.akid) if k is not None]
        self._other_keys = Keyring.generate(kids)  # the "wrong key": fresh random ones
        self.protected = 0

    def _security(self, sa: SecurityAssociation, keys: Keyring) -> FrameSecurity:
        return FrameSecurity(
            "tc",
            [sa],
            keys,
            fecf=self._fecf,
            segment_header=self._segment_header,
            frame_length=self.security.max_frame_length,
        )

    def protect(self, plain: bytes) -> bytes:
        """``plain`` (a TC frame with its FECF, if the channel has one) protected."""
        self.protected += 1
        return self.good.apply(plain, self.sa.spi)

    def _apply(self, sa: SecurityAssociation, keys: Keyring, plain: bytes) -> bytes:
        """``plain`` protected with ``sa`` and ``keys`` at the tester's next counters,
        which it then skips."""
        other = self._security(sa, keys)
        other.set_send_counters(sa.spi, self.good.send_counters(self.sa.spi))
        frame = other.apply(plain, sa.spi)
        self.good.set_send_counters(self.sa.spi, other.send_counters(sa.spi))
        return frame

    def with_wrong_key(self, plain: bytes) -> bytes:
        """Protected with the right SPI and counters, under another key."""
        return self._apply(self.sa, self._other_keys, plain)

    def with_unknown_spi(self, plain: bytes) -> bytes:
        """Protected with the right key and counters, under an SPI the endpoint does not
        know (:attr:`TcSecurity.unknown_spi`)."""
        sa = replace(self.sa, spi=self.security.unknown_spi)
        return self._apply(sa, self.security.keys, plain)

    def with_bad_mac(self, plain: bytes) -> bytes:
        """Protected, then one bit of the MAC's last octet flipped; the FECF made valid."""
        frame = bytearray(self.protect(plain))
        frame[len(frame) - self.frame_layout.fecf_len - 1] ^= 0x01
        return self._refecf(frame)

    def with_bad_data(self, plain: bytes) -> bytes:
        """Protected, then one bit of the first octet of the (encrypted) frame data
        flipped; the FECF made valid."""
        frame = bytearray(self.protect(plain))
        at = self.frame_layout.header_len(bytes(frame)) + self.sa.header_len
        frame[at] ^= 0x80
        return self._refecf(frame)

    def _refecf(self, frame: bytearray) -> bytes:
        if self._fecf:
            frame[-FECF_LEN:] = crc16_ccitt(bytes(frame[:-FECF_LEN])).to_bytes(FECF_LEN, "big")
        return bytes(frame)
