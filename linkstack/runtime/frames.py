"""The transfer frames of each link kind, by the scenario's ``frames.protocol``.

``"tm-tc-aos"`` (the default): TC frames up (COP-1's FDUs as they are), TM frames down
with the CLCW in their OCF, AOS frames on the laser links. ``"uslp"``: USLP frames
(732.1-B-2) on all three: COP-1's FDUs up in variable-length frames
(:mod:`linkstack.ccsds.uslp_cop1`), fixed-length frames down (the TM frame length, OCF
on: Reed-Solomon and the CADU are unchanged) and on the laser links (the AOS frame
length, no OCF); Only Idle Data frames where TM sends idle frames. Both kinds of
downlink and laser channel carry linkstack's packets on MAP 0 of their virtual
channel and hand back what their receivers take out in the same shape (``packets``,
``ocf``), so the nodes do not ask which protocol they speak: they ask this module for
their channel, their receiver and their uplink codec.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple, Protocol

from linkstack.ccsds.aos import AosConfig, AosMasterChannel, AosReceiver
from linkstack.ccsds.tc import TcConfig, TcFrame, TcReceiver
from linkstack.ccsds.tc import frame_vcid as tc_frame_vcid
from linkstack.ccsds.tm import TmConfig, TmMasterChannel, TmReceiver
from linkstack.ccsds.uslp import MAX_SCID as USLP_MAX_SCID
from linkstack.ccsds.uslp_channels import UslpConfig, UslpMasterChannel, UslpReceiver
from linkstack.ccsds.uslp_cop1 import UslpCop1Codec, UslpCop1Receiver
from linkstack.ccsds.uslp_cop1 import frame_vcid as uslp_frame_vcid
from linkstack.errors import ConfigError, EncodeError

TM_TC_AOS = "tm-tc-aos"
USLP = "uslp"
PROTOCOLS = (TM_TC_AOS, USLP)
MAX_SCID = {TM_TC_AOS: 0xFF, USLP: USLP_MAX_SCID}  # AOS's 8 bits bound the laser links
VC_COUNT_LEN = 2  # octets of VC frame count in USLP downlink and laser frames
MAP_ID = 0  # the MAP of linkstack's packets on USLP downlink and laser frames


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ConfigError("frames", "protocol", f"must be one of {PROTOCOLS}, got {protocol!r}")


def check_scids(protocol: str, first: int, count: int) -> str | None:
    """Why SCIDs ``first``.. for ``count`` satellites do not fit ``protocol``'s frames
    (None: they do)."""
    last = first + count - 1
    if last <= MAX_SCID[protocol]:
        return None
    if protocol == TM_TC_AOS:
        return (
            f"{count} satellites from SCID {first} do not fit the 8-bit AOS SCID "
            f'(frames.protocol = "uslp" has 16-bit SCIDs)'
        )
    return f"{count} satellites from SCID {first} do not fit the 16-bit USLP SCID"


class Received(Protocol):
    """What a downlink or laser receiver took out of one good frame."""

    @property
    def packets(self) -> list[bytes]: ...
    @property
    def ocf(self) -> bytes | None: ...


class FrameReceiver(Protocol):
    stats: Counter[str]

    def receive(self, frame: bytes, fecf_checked: bool = False) -> Received | None: ...
    def all_stats(self) -> Counter[str]: ...


class PacketChannel(Protocol):
    """A master channel of packets: AOS's, TM's, or USLP's (:class:`UslpPackets`)."""

    ocf: bytes

    def push(self, vcid: int, packet: bytes) -> None: ...
    def flush(self) -> object: ...
    def drain(self) -> list[bytes]: ...
    def idle_frame(self) -> bytes: ...
    @property
    def frames_ready(self) -> int: ...


class DownlinkChannel(PacketChannel, Protocol):
    """A downlink's: TM's or USLP's, which may take frames of others' virtual channels."""

    def multiplex(self, frame: bytes, keep_ocf: bool = False) -> bytes: ...


class UslpPackets:
    """A USLP master channel in the shape of TM's and AOS's: packets go on MAP 0 of
    their virtual channel, ``ocf`` into every frame, Only Idle Data frames when there
    is nothing to send. Frames of someone else's virtual channel are not multiplexed
    into it (flight software's own USLP frames: not yet)."""

    def __init__(self, config: UslpConfig, vcids: tuple[int, ...] = (0,)) -> None:
        self.config = config
        self.mc = UslpMasterChannel(config, vcids, (MAP_ID,))

    @property
    def ocf(self) -> bytes:
        return self.mc.ocf

    @ocf.setter
    def ocf(self, value: bytes) -> None:
        self.mc.ocf = value

    def push(self, vcid: int, packet: bytes) -> None:
        self.mc.push(vcid, MAP_ID, packet)

    def flush(self) -> int:
        return self.mc.flush()

    def drain(self) -> list[bytes]:
        return self.mc.drain()

    def idle_frame(self) -> bytes:
        return self.mc.idle_frame()

    @property
    def frames_ready(self) -> int:
        return self.mc.frames_ready

    def multiplex(self, frame: bytes, keep_ocf: bool = False) -> bytes:
        raise EncodeError("uslp", "multiplex", "outside frames are not multiplexed into USLP")


def uslp_fixed(scid: int, frame_length: int, ocf: bool) -> UslpConfig:
    """A fixed-length USLP channel of ``scid`` (the source's): downlinks, laser links."""
    return UslpConfig(
        scid=scid, fixed=True, frame_length=frame_length, vc_count_len=VC_COUNT_LEN, ocf=ocf
    )


def tm_config(scid: int, frame_length: int) -> TmConfig:
    """linkstack's TM channel: the satellite's SCID, the frame length as built, the OCF."""
    return TmConfig(frame_length=frame_length, scid=scid, ocf=True)


def downlink_channel(protocol: str, scid: int, frame_length: int) -> DownlinkChannel:
    """A satellite's downlink channel: frames of ``frame_length`` octets as built (before
    SDLS), with the CLCW in their OCF."""
    if protocol == USLP:
        return UslpPackets(uslp_fixed(scid, frame_length, ocf=True))
    return TmMasterChannel(tm_config(scid, frame_length))


def downlink_receiver(protocol: str, scid: int, frame_length: int) -> FrameReceiver:
    if protocol == USLP:
        return UslpReceiver(uslp_fixed(scid, frame_length, ocf=True))
    return TmReceiver(tm_config(scid, frame_length))


def laser_channel(protocol: str, scid: int, frame_length: int) -> PacketChannel:
    """The sender's channel on a laser link: ``frame_length`` octets as built."""
    if protocol == USLP:
        return UslpPackets(uslp_fixed(scid, frame_length, ocf=False))
    return AosMasterChannel(AosConfig(frame_length=frame_length, scid=scid))


def laser_receiver(protocol: str, peer_scid: int, frame_length: int) -> FrameReceiver:
    if protocol == USLP:
        return UslpReceiver(uslp_fixed(peer_scid, frame_length, ocf=False))
    return AosReceiver(AosConfig(frame_length=frame_length, scid=peer_scid))


class TcFrames(NamedTuple):
    """COP-1's FDUs as TC frames: the frame is the FDU."""

    config: TcConfig

    def pack(self, frame: TcFrame) -> bytes:
        return frame.pack(self.config.fecf)

    @staticmethod
    def vcid(buf: bytes) -> int:
        return tc_frame_vcid(buf)


class UslpFrames(NamedTuple):
    """COP-1's FDUs in USLP frames (:mod:`linkstack.ccsds.uslp_cop1`)."""

    codec: UslpCop1Codec

    def pack(self, frame: TcFrame) -> bytes:
        return self.codec.pack(frame)

    @staticmethod
    def vcid(buf: bytes) -> int:
        return uslp_frame_vcid(buf)


UplinkFrames = TcFrames | UslpFrames
UplinkReceiver = TcReceiver | UslpCop1Receiver
