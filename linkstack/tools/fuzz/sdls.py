"""Fuzz targets of SDLS (:mod:`linkstack.ccsds.sdls`): :meth:`FrameSecurity.process`
on random and damaged protected TC, TM, AOS and USLP frames (fixed- and
variable-length), with every service in the mix
(clear, CMAC, HMAC, encryption only, GCM with and without an authentication mask).

Only a :class:`~linkstack.errors.DecodeError` (``SdlsError``) may come out of
``process`` or :func:`parse_security_header`. What ``process`` accepts must read
without a key, and apply back, with the counters the frame carries, to exactly the
input octets (nothing was misread: a damaged pad field, header or length is refused,
not mended). The target's sender and receiver start afresh with each run, so that a
seed makes the same run; the anti-replay window is wide, so that the frames the
fuzzer damages (and the receiver refuses) leave gaps the next valid frame crosses.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from linkstack.ccsds.aos import AosFrame
from linkstack.ccsds.sdls import (
    FrameSecurity,
    Keyring,
    SaCounters,
    SecurityAssociation,
    parse_security_header,
)
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.ccsds.tm import TmFrame
from linkstack.ccsds.uslp import UslpFrame
from linkstack.errors import DecodeError
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target

_KEYS = {1: bytes(range(32)), 2: bytes(range(32, 64)), 3: bytes(range(64, 96))}
_WIDE = 1 << 20
_SAS = [
    SecurityAssociation(1, "clear", iv_len=0, sn_len=2, mac_len=0),
    SecurityAssociation(2, "auth", acs="CMAC_AES256", akid=1, iv_len=0, sn_len=4, window=_WIDE),
    SecurityAssociation(
        3, "auth", acs="HMAC_SHA256", akid=2, iv_len=0, sn_len=4, mac_len=32, window=_WIDE
    ),
    SecurityAssociation(4, "enc", ecs="AES256_GCM", ekid=2, pad_len=1, mac_len=0, window=_WIDE),
    SecurityAssociation(5, "aead", ecs="AES256_GCM", ekid=1, sn_len=4, window=_WIDE),
    SecurityAssociation(6, "aead", ecs="AES256_GCM", ekid=3, mac_len=12, abm="none", window=_WIDE),
]
_BY_SPI = {sa.spi: sa for sa in _SAS}


class _Channel(NamedTuple):
    """A channel's managed parameters (every one with a FECF)."""

    kind: str
    segment_header: bool = False
    ocf: bool = False
    insert_zone_len: int = 0
    fixed: bool = True  # USLP: fixed-length frames (TC: variable, TM and AOS: fixed)


_CHANNELS = {
    "tc": _Channel("tc", segment_header=True),
    "tm": _Channel("tm", ocf=True),
    "aos": _Channel("aos", ocf=True, insert_zone_len=2),
    "uslp": _Channel("uslp", ocf=True, insert_zone_len=2),
    "uslp-variable": _Channel("uslp", fixed=False),
}
_FRAME_LEN = 240  # TM and AOS


class _Link:
    """One kind's sender, shared by the target's valid units and its decoder."""

    def __init__(self, name: str) -> None:
        self.channel = _CHANNELS[name]
        self.kind = self.channel.kind
        self.tx = self._security()

    def _security(self) -> FrameSecurity:
        ch = self.channel
        return FrameSecurity(
            self.kind,
            _SAS,
            Keyring.from_mapping(_KEYS),
            fecf=True,
            segment_header=ch.segment_header,
            ocf=ch.ocf,
            frame_length=None if self.kind == "tc" else _FRAME_LEN,
            insert_zone_len=ch.insert_zone_len,
            fixed=ch.fixed,
        )

    def fresh(self) -> Decoder:
        """A new receiver, and the sender's counters back to zero."""
        self.tx = self._security()
        rx, echo = self._security(), self._security()
        ch = self.channel

        def decode(buf: bytes) -> object:
            try:
                fields = parse_security_header(
                    buf,
                    self.kind,
                    _BY_SPI,
                    fecf=True,
                    segment_header=ch.segment_header,
                    ocf=ch.ocf,
                    insert_zone_len=ch.insert_zone_len,
                    fixed=ch.fixed,
                )
            except DecodeError:
                fields = None
            spi, plain = rx.process(buf)
            if fields is None:
                raise FuzzCheckError("process accepted a frame whose header does not read")
            iv, sn = (int(str(fields[f]) or "0", 16) for f in ("iv", "sn"))
            echo.set_send_counters(spi, SaCounters(iv, sn))
            if echo.apply(plain, spi) != buf:
                raise FuzzCheckError("an accepted frame does not apply back to the same octets")
            return plain

        return decode

    def valid(self, rng: random.Random) -> bytes:
        spi = rng.choice(_SAS).spi
        return self.tx.apply(self._plain(rng, self.tx.plain_length(spi)), spi)

    def _plain(self, rng: random.Random, length: int) -> bytes:
        scid, vcid = rng.randrange(256), rng.randrange(8)
        if self.kind == "tc":
            ftype = rng.choice(list(TcFrameType))
            data = rng.randbytes(rng.randrange(1, 120))
            map_id = None if ftype is TcFrameType.BC else rng.randrange(64)
            return TcFrame(scid, vcid, data, ftype, rng.randrange(256), map_id).pack()
        ocf = rng.randbytes(4)
        if self.kind == "uslp":
            ch = self.channel
            overhead = 7 + 2 + ch.insert_zone_len + 1 + (4 if ch.ocf else 0) + 2
            size = length - overhead if ch.fixed else rng.randrange(1, length - overhead + 1)
            return UslpFrame(
                rng.randrange(1 << 16),
                rng.randrange(63),
                rng.randrange(16),
                rng.randbytes(size),
                vc_count=rng.randrange(1 << 16),
                vc_count_len=2,
                bypass=rng.random() < 0.5,
                ocf=ocf if ch.ocf else None,
                insert_zone=rng.randbytes(ch.insert_zone_len),
            ).pack()
        if self.kind == "tm":
            sec = rng.randbytes(rng.randrange(1, 8)) if rng.random() < 0.3 else None
            size = length - 6 - (1 + len(sec) if sec else 0) - 4 - 2
            counts = rng.randrange(256), rng.randrange(256)
            return TmFrame(
                scid, vcid, *counts, rng.randbytes(size), ocf=ocf, secondary_header=sec
            ).pack()
        data = rng.randbytes(length - 6 - 2 - 4 - 2)
        zone = rng.randbytes(2)
        return AosFrame(scid, vcid, rng.randrange(1 << 24), data, insert_zone=zone, ocf=ocf).pack()


def _target(name: str) -> Target:
    link = _Link(name)
    return Target(
        f"sdls.{name}",
        link.valid,
        link.fresh,
        strict=True,
        has_fecf=True,
        max_random_len=400,
    )


TARGETS: list[Target] = [_target(name) for name in _CHANNELS]
