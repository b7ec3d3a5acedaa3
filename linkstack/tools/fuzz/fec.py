"""Fuzz targets: Reed-Solomon, and the coded chains that carry frames in CADUs and CLTUs.

The Reed-Solomon decoder is checked against the encoder (what it says it corrected is
what differs from the nearest codeword); the receivers of the chains must only ever
deliver frames of the right length.
"""

from __future__ import annotations

import random
from dataclasses import replace

from linkstack.ccsds.coding.chains import (
    CaduCoding,
    CaduReceiver,
    CaduTransmitter,
    CltuReceiver,
    CltuTransmitter,
)
from linkstack.ccsds.coding.cltu import transfer_frame_length
from linkstack.ccsds.coding.rs import ReedSolomon
from linkstack.ccsds.tc import TcFrame
from linkstack.ccsds.uslp_cop1 import UslpCop1Codec
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target
from linkstack.tools.fuzz.framing import valid_tc

_RS = ReedSolomon(16, 2, 2 * 60)  # shortened, interleaved: small units, every path


def _valid_rs(rng: random.Random) -> bytes:
    return _RS.encode(rng.randbytes(_RS.frame_length))


def _rs_decoder(buf: bytes) -> object:
    """What the decoder says it corrected must be the codeword nearest to the input:
    re-encoding it differs from the input in exactly the symbols it counted,
    at most E per codeword."""
    got = _RS.decode(buf)
    if got.frame is not None:
        fixed = _RS.encode(got.frame)
        for j, count in enumerate(got.corrected):
            diff = sum(a != b for a, b in zip(fixed[j::2], buf[j::2], strict=True))
            if diff != count or count > 16:
                raise FuzzCheckError(f"codeword {j}: {count} said corrected, {diff} differ")
    return got


_CADU_CODING = CaduCoding(rs_e=8, rs_depth=1)
_CADU_FRAME_LEN = 100


def _valid_cadu(rng: random.Random) -> bytes:
    return CaduTransmitter(_CADU_FRAME_LEN, _CADU_CODING).cadu(rng.randbytes(_CADU_FRAME_LEN))


def _cadu_receiver() -> Decoder:
    rx = CaduReceiver(_CADU_FRAME_LEN, _CADU_CODING)

    def decode(buf: bytes) -> object:
        got = rx.receive_cadu(buf)
        if got is not None and len(got.frame) != _CADU_FRAME_LEN:
            raise FuzzCheckError(f"delivered a frame of {len(got.frame)} octets")
        for frame in rx.receive_stream(buf):
            if len(frame.frame) != _CADU_FRAME_LEN:
                raise FuzzCheckError(f"stream delivered a frame of {len(frame.frame)} octets")
        return got

    return decode


def _cltu_receiver() -> Decoder:
    rx = CltuReceiver()

    def decode(buf: bytes) -> object:
        frame = rx.receive(buf)
        if frame is not None and transfer_frame_length(frame) != len(frame):
            raise FuzzCheckError("delivered a frame whose length field disagrees with it")
        return frame

    return decode


def _valid_uslp(rng: random.Random) -> bytes:
    """A TC frame's FDU in a USLP frame (COP-1 over USLP): CLTUs carry either."""
    fdu = TcFrame.unpack(valid_tc(rng))
    map_id = None if fdu.map_id is None else fdu.map_id % 16  # USLP's MAP ids: 4 bits
    fdu = replace(fdu, vcid=fdu.vcid % 63, map_id=map_id)  # VC 63: idle data only
    return UslpCop1Codec(rng.randrange(1 << 16), max_frame_length=1027).pack(fdu)


TARGETS: list[Target] = [
    Target("rs.decode", _valid_rs, lambda: _rs_decoder, strict=True, max_random_len=200),
    Target("pipeline.cadu_receiver", _valid_cadu, _cadu_receiver, strict=False, max_random_len=300),
    Target(
        "pipeline.cltu_receiver",
        lambda rng: CltuTransmitter().cltu(rng.choice((valid_tc, _valid_uslp))(rng)),
        _cltu_receiver,
        strict=False,
        max_random_len=600,
    ),
]
