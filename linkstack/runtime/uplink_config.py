"""The settings of one COP-1 link: both ends of its virtual channel and the TM channel
that carries the CLCW, and the frames, coders and FOP-1 parameters they imply.

:class:`UplinkConfig` is what :mod:`linkstack.runtime.cop1_link` runs on; the scenario
file's ``[frames]``, ``[coding]`` and ``[cop1]`` tables resolve to one
(:mod:`linkstack.runtime.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linkstack.ccsds.coding.chains import CaduCoding, CltuCoding
from linkstack.ccsds.cop1.fop import Directive, FopConfig
from linkstack.ccsds.tc import TcConfig, TcReceiver
from linkstack.ccsds.tm import DEFAULT_FRAME_LEN, TmConfig
from linkstack.ccsds.uslp import MAX_MAP_ID as MAX_USLP_MAP_ID
from linkstack.ccsds.uslp_cop1 import UslpCop1Codec, UslpCop1Receiver
from linkstack.errors import ConfigError
from linkstack.runtime.frames import (
    TM_TC_AOS,
    USLP,
    DownlinkChannel,
    FrameReceiver,
    TcFrames,
    UplinkFrames,
    UplinkReceiver,
    UslpFrames,
    check_protocol,
    downlink_channel,
    downlink_receiver,
    tm_config,
)
from linkstack.runtime.security import SdlsSettings


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    """Both ends of one COP-1 virtual channel and the TM channel that carries the CLCW
    (``protocol`` "uslp": COP-1's FDUs in USLP frames up, USLP frames down;
    :mod:`linkstack.runtime.frames`)."""

    scid: int = 42
    vcid: int = 0
    map_id: int = 0
    tc_max_frame_length: int = 1024
    # MAP service: a segment header in every TC frame (232.0-B-4 managed parameter);
    # False for ground software that frames packets without one (F Prime's GDS)
    tc_segment_header: bool = True
    tm_frame_length: int = DEFAULT_FRAME_LEN
    farm_window: int = 64  # W: PW = NW = W / 2
    fop_window: int = 16  # K: at most PW, so that every frame in flight is in FARM's windows
    t1_initial_s: float = 2.0
    transmission_limit: int = 16
    timeout_type: int = 1
    clcw_interval_s: float = 0.2  # one TM frame (with the CLCW) at least this often
    contact_timeout_s: float | None = None  # default: five CLCW intervals
    # how often a satellite with no traffic sends its TM in a pass (the daemons set it;
    # None: every clcw_interval_s); the ground then calls a CLCW stream broken after
    # 1.5 of these if it was coming at clcw_interval_s, else after the contact timeout
    idle_clcw_interval_s: float | None = None
    initiate: Directive | None = Directive.INITIATE_AD_WITHOUT_CLCW  # None: do not start
    initiate_value: int | None = None  # V*(R) for INITIATE_AD_WITH_SET_VR
    auto_resume: bool = True
    resync_from_clcw: bool = False  # initiate the AD service from FARM-1's CLCW (daemons)
    cadu_coding: CaduCoding = field(default_factory=CaduCoding)
    cltu_coding: CltuCoding = field(default_factory=CltuCoding)
    # SDLS: frames are built shorter by its overhead, and protected on their way out
    sdls: SdlsSettings = field(default_factory=SdlsSettings)
    # the transfer frames of every link kind: "tm-tc-aos" or "uslp" (frames.protocol)
    protocol: str = TM_TC_AOS

    def __post_init__(self) -> None:
        check_protocol(self.protocol)
        if self.protocol == USLP and not 0 <= self.map_id <= MAX_USLP_MAP_ID:
            raise ConfigError(
                "uplink", "map_id", f"USLP MAP ids are 0..{MAX_USLP_MAP_ID}, got {self.map_id}"
            )
        if self.fop_window > self.farm_window // 2:
            raise ConfigError(
                "uplink",
                "fop_window",
                f"K = {self.fop_window} exceeds FARM-1's window edge W/2 = "
                f"{self.farm_window // 2}: a retransmission could land in the lockout area",
            )
        if not self.clcw_interval_s > 0:
            raise ConfigError("uplink", "clcw_interval_s", "must be positive")

    @property
    def effective_contact_timeout_s(self) -> float:
        """``contact_timeout_s``, or its default (five CLCW intervals)."""
        if self.contact_timeout_s is not None:
            return self.contact_timeout_s
        return 5 * self.clcw_interval_s

    def tc_config(self) -> TcConfig:
        """The TC frames (COP-1's FDUs) as linkstack builds them: without SDLS's header
        and trailer, which the guard adds on their way out (the longest plain frame is
        shorter); over USLP, shorter by what USLP's header adds too."""
        if self.protocol == USLP:
            return self.uslp_codec().tc_config()
        return TcConfig(
            scid=self.scid,
            max_frame_length=self.tc_max_frame_length - self.sdls.tc_overhead,
            segment_header=self.tc_segment_header,
        )

    def uslp_codec(self) -> UslpCop1Codec:
        """COP-1 over USLP: the uplink's frames, at most ``tc_max_frame_length`` on air."""
        return UslpCop1Codec(
            self.scid,
            max_frame_length=self.tc_max_frame_length - self.sdls.tc_overhead,
            segment_header=self.tc_segment_header,
        )

    def uplink_frames(self) -> UplinkFrames:
        """How an FDU becomes the frame that goes up, and where its VCID is."""
        if self.protocol == USLP:
            return UslpFrames(self.uslp_codec())
        return TcFrames(self.tc_config())

    def uplink_receiver(self) -> UplinkReceiver:
        """The spacecraft's frame validation: FDUs out, drops counted."""
        if self.protocol == USLP:
            return UslpCop1Receiver(self.uslp_codec())
        return TcReceiver(self.tc_config())

    @property
    def tm_plain_length(self) -> int:
        """The downlink frames as linkstack builds them: ``tm_frame_length`` on air,
        shorter by SDLS's overhead before the guard adds it."""
        return self.tm_frame_length - self.sdls.tm_overhead

    def tm_config(self) -> TmConfig:
        """The TM frames as linkstack builds them (protocol "tm-tc-aos")."""
        return tm_config(self.scid, self.tm_plain_length)

    def downlink_channel(self) -> DownlinkChannel:
        """The spacecraft's downlink: TM or USLP frames, with the CLCW in the OCF."""
        return downlink_channel(self.protocol, self.scid, self.tm_plain_length)

    def downlink_receiver(self) -> FrameReceiver:
        return downlink_receiver(self.protocol, self.scid, self.tm_plain_length)

    def fop_config(self) -> FopConfig:
        return FopConfig(
            self.tc_config().scid,
            self.vcid,
            self.fop_window,
            self.t1_initial_s,
            self.transmission_limit,
            self.timeout_type,
        )
