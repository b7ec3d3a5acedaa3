"""Fuzz targets: USLP frames (:mod:`linkstack.ccsds.uslp`) and the USLP receiver
(:mod:`linkstack.ccsds.uslp_channels`), fixed- and variable-length, truncated
frames among the variable ones; COP-1's frames over USLP
(:mod:`linkstack.ccsds.uslp_cop1`)."""

from __future__ import annotations

import random
from collections.abc import Callable

from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.tc import TcFrameType, TcVirtualChannel
from linkstack.ccsds.uslp import UslpFrame
from linkstack.ccsds.uslp_channels import UslpConfig, UslpMasterChannel, UslpReceiver
from linkstack.ccsds.uslp_cop1 import UslpCop1Codec, UslpCop1Receiver
from linkstack.tools.fuzz.engine import Decoder, Target, check_packet, strict
from linkstack.tools.fuzz.framing import random_packet

FIXED = UslpConfig(scid=2800, frame_length=223, vc_count_len=2, insert_zone_len=2, ocf=True)
VARIABLE = UslpConfig(
    scid=2800, fixed=False, frame_length=400, vc_count_len=1, fecf=False, truncated_frame_length=40
)


def _valid(cfg: UslpConfig) -> Callable[[random.Random], bytes]:
    def gen(rng: random.Random) -> bytes:
        mc = UslpMasterChannel(cfg, (0, 1), (0, 7))
        for _ in range(rng.randrange(1, 4)):
            mc.push(rng.choice((0, 1)), rng.choice((0, 7)), random_packet(rng, 900).pack())
        mc.flush()
        frames = [*mc.drain(), mc.idle_frame()]
        if cfg.truncated_frame_length:  # a truncated frame: one whole packet fills it
            size = cfg.truncated_frame_length - 5 - cfg.insert_zone_len - 2 * cfg.fecf
            packet = SpacePacket(rng.randrange(2047), rng.randbytes(size - 6)).pack()
            iz = bytes(cfg.insert_zone_len)
            frame = UslpFrame(cfg.scid, 3, 2, packet, insert_zone=iz, truncated=True)
            frames.append(frame.pack(cfg.fecf))
        return rng.choice(frames)

    return gen


def _unpack(cfg: UslpConfig) -> Callable[[bytes], UslpFrame]:
    def unpack(buf: bytes) -> UslpFrame:
        return UslpFrame.unpack(
            buf,
            insert_zone_len=cfg.insert_zone_len,
            fecf=cfg.fecf,
            frame_length=cfg.frame_length if cfg.fixed else None,
        )

    return unpack


def _receiver(cfg: UslpConfig) -> Callable[[], Decoder]:
    def make() -> Decoder:
        rx = UslpReceiver(cfg, check_scid=False)

        def decode(buf: bytes) -> object:
            result = rx.receive(buf)
            for packet in result.packets if result is not None else ():
                check_packet(packet)
            return result

        return decode

    return make


COP1 = UslpCop1Codec(scid=2800, max_frame_length=300)


def _cop1_valid(rng: random.Random) -> bytes:
    vc = TcVirtualChannel(COP1.tc_config(), rng.randrange(63))
    vc.next_seq = rng.randrange(256)
    kind = rng.choice((TcFrameType.AD, TcFrameType.BD))
    packets = [random_packet(rng, 600).pack() for _ in range(rng.randrange(1, 3))]
    fdus = vc.frames(packets, rng.randrange(16), kind)
    return COP1.pack(rng.choice(fdus))


def _cop1_receiver() -> Decoder:
    rx = UslpCop1Receiver(COP1)

    def decode(buf: bytes) -> object:
        frame = rx.validate(buf)
        if frame is not None:
            for out in rx.reassembler.push(frame):
                check_packet(out.packet)
        return frame

    return decode


TARGETS: list[Target] = [
    Target(
        "uslp.cop1-unpack",
        _cop1_valid,
        lambda: strict(COP1.unpack, COP1.pack),
        strict=True,
        has_fecf=True,
        max_random_len=320,
    ),
    Target("uslp.cop1-receiver", _cop1_valid, _cop1_receiver, strict=False, has_fecf=True),
    Target(
        "uslp.unpack",
        _valid(FIXED),
        lambda: strict(_unpack(FIXED), lambda f: f.pack(FIXED.fecf)),
        strict=True,
        has_fecf=True,
    ),
    Target(
        "uslp.unpack-variable",
        _valid(VARIABLE),
        lambda: strict(_unpack(VARIABLE), lambda f: f.pack(VARIABLE.fecf)),
        strict=True,
        max_random_len=450,
    ),
    Target("uslp.receiver", _valid(FIXED), _receiver(FIXED), strict=False, has_fecf=True),
    Target(
        "uslp.receiver-variable",
        _valid(VARIABLE),
        _receiver(VARIABLE),
        strict=False,
        max_random_len=450,
    ),
]
