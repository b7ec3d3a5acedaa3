"""Fuzz targets of SDLS extended procedures (:mod:`linkstack.ccsds.sdls_ep`,
:mod:`linkstack.ccsds.sdls_manager`).

- ``sdls.ep``: :func:`~linkstack.ccsds.sdls_ep.unpack` on random and damaged PDUs of
  every procedure; only a ``DecodeError`` may come out, and what it accepts packs
  back to the same octets.
- ``sdls.ep_manager``: a spacecraft's :class:`~linkstack.ccsds.sdls_manager.SaManager`
  (kept across inputs, so that its SAs and keys move) fed the same, as if each came
  under its link's SA: it never raises, and every reply it gives reads back.
"""

from __future__ import annotations

import random
from dataclasses import replace

from linkstack.ccsds import sdls_ep as ep
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SecurityAssociation
from linkstack.ccsds.sdls_manager import SaManager
from linkstack.ccsds.sdls_suites import make_cipher
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target, strict

_KEYS = {1: bytes(range(32)), 2: bytes(32), 10: bytes(range(1, 33)), 11: bytes(range(2, 34))}
_MASTER = 10
_LINK = SecurityAssociation(1, "aead", ecs="AES256_GCM", ekid=1, window=1 << 20)
_GVCID = ep.Gvcid(0, 42, 0, 0)


def _pdu(rng: random.Random) -> ep.Pdu:
    """A valid PDU, its fields near the manager's SAs and keys so that some act."""
    spi = rng.choice((1, 4, 5, 9, rng.randrange(1 << 16)))
    kid = rng.choice((1, 2, _MASTER, 11, 20, rng.randrange(1 << 16)))
    arsn = rng.randbytes(rng.choice((12, 12, 0, rng.randrange(17))))
    kind = rng.randrange(14)
    if kind == 0:
        gvcid = _GVCID if rng.random() < 0.7 else ep.Gvcid(0, rng.randrange(1 << 16), 0, 0)
        return ep.StartSa(spi, (gvcid,) * rng.randint(1, 3))
    if kind == 1:
        return ep.StopSa(spi)
    if kind == 2:
        return ep.ExpireSa(spi)
    if kind == 3:
        return ep.RekeySa(spi, kid, arsn)
    if kind == 4:
        return ep.SetArsn(spi, arsn)
    if kind == 5:
        return ep.ReadArsn(spi)
    if kind == 6:
        return ep.SaStatusRequest(spi)
    if kind == 7:
        return ep.KeyActivation(tuple(rng.choice((kid, 20, 21)) for _ in range(rng.randint(1, 3))))
    if kind == 8:
        return ep.KeyDeactivation((kid,))
    if kind == 9:
        return ep.KeyDestruction((kid,))
    if kind == 10:
        master = make_cipher("AES256_GCM", _KEYS[_MASTER])
        keys = {rng.choice((20, 21, kid)): rng.randbytes(32) for _ in range(rng.randint(1, 2))}
        return ep.Otar.seal(_MASTER, rng.randbytes(12), keys, master)
    if kind == 11:
        return ep.SaStatusReply(spi, rng.randrange(256))
    if kind == 12:
        return ep.ReadArsnReply(spi, arsn)
    return ep.ProcedureResult(rng.randrange(256), rng.choice(list(ep.EpStatus)), kid)


def _valid(rng: random.Random) -> bytes:
    return _pdu(rng).pack()


def _manager() -> Decoder:
    rx = FrameSecurity(
        "tc",
        [_LINK],
        Keyring.from_mapping(_KEYS),
        fecf=True,
        segment_header=True,
        frame_length=1024,
    )
    manager = SaManager(
        rx,
        (_GVCID,),
        spares=[replace(_LINK, spi=4), replace(_LINK, spi=5)],
        master_key_ids=(_MASTER,),
        reserved_key_ids=(2,),
    )

    def handle(buf: bytes) -> object:
        reply = manager.handle(buf, 1)
        if ep.unpack(reply.pack()) != reply:
            raise FuzzCheckError("a reply does not read back")
        return reply

    return handle


TARGETS: list[Target] = [
    Target(
        "sdls.ep",
        _valid,
        lambda: strict(ep.unpack, lambda pdu: pdu.pack()),
        strict=True,
        max_random_len=200,
    ),
    Target("sdls.ep_manager", _valid, _manager, strict=False, max_random_len=200),
]
