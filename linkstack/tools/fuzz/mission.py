"""Fuzz targets: real downlinks read as a mission profile says (``linkstack replay
--profile``, ``--detect``, conform on raw recordings).

- the replay chain (:class:`MissionReplay`: CADUs, Reed-Solomon, frames, packets,
  linkstack's messages) under the Meteor-M2 LRPT, Mars 2020 and linkstack profiles, fed
  damaged units of each; it never raises and hands out only whole Space Packets;
- a raw recording cut into units (:func:`raw_units`: CADUs back to back, frames, or a
  bit stream found at any bit offset); the units cover the file, or each is one CADU;
- ``--detect`` on short files: a clean ConfigError, or TOML that loads as a profile;
- the profile loader on TOML-ish text: ConfigError/DecodeError, or a profile the
  replay can be built from.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from functools import cache

from linkstack.capture.mission_detect import detect
from linkstack.capture.mission_replay import MissionReplay
from linkstack.capture.raw_units import SPACECRAFT, STATION, raw_units, unit_layer, unit_length
from linkstack.capture.reader import CapturedUnit
from linkstack.ccsds.aos import AosConfig, AosMasterChannel
from linkstack.ccsds.coding.chains import CaduCoding, CaduTransmitter
from linkstack.ccsds.spp import SeqFlags, SpacePacket
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.errors import ConfigError, DecodeError, LinkstackError
from linkstack.runtime.mission_profile import Profile, load_profile, loads_profile
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target, check_packet
from payloads import messages as m

PROFILES = ("meteor-m2-lrpt", "mars2020", "linkstack")


@cache
def _profile(name: str, raw_unit: str | None = None) -> Profile:
    p = load_profile(name)
    return p if raw_unit is None else replace(p, mission=replace(p.mission, raw_unit=raw_unit))


# -- valid units -----------------------------------------------------------------------------------


def _packets(rng: random.Random, linkstack: bool) -> list[bytes]:
    """A few packets: a counted run on one APID, idle fill, and (for linkstack's
    profile) a query message on its APID."""
    apid, seq = rng.randrange(2047), rng.randrange(1 << 14)
    out = []
    for i in range(rng.randrange(1, 4)):
        data = rng.randbytes(rng.randrange(1, 400))
        out.append(SpacePacket(apid, data, seq_count=(seq + i) % (1 << 14)).pack())
    if rng.random() < 0.2:
        out.append(SpacePacket(0x7FF, bytes(rng.randrange(1, 60))).pack())
    if linkstack:
        query = m.Query(f"q{rng.randrange(999)}", "What is 2+2?", m.Params(16, 0.7, 1.0, False, 0))
        out.append(SpacePacket(0x100, m.encode(query), seq_flags=SeqFlags.UNSEGMENTED).pack())
    return out


def _frames(rng: random.Random, p: Profile) -> list[bytes]:
    """Frames of the profile's downlink carrying :func:`_packets`, and an idle one."""
    ch = p.downlink
    vc = next(v for v in range(64) if v in ch.vcids and v != ch.idle_vcid)
    ocf = ch.ocf != "none"
    mc: TmMasterChannel | AosMasterChannel
    if p.mission.downlink == "tm":
        cfg = TmConfig(
            frame_length=ch.frame_length,
            fecf=ch.fecf,
            ocf=ocf,
            secondary_header_len=getattr(ch, "secondary_header_len", 0),
        )
        mc = TmMasterChannel(cfg, vcids=(vc,))
    else:
        aos = AosConfig(
            frame_length=ch.frame_length,
            insert_zone_len=getattr(ch, "insert_zone_len", 0),
            ocf=ocf,
            fecf=ch.fecf,
            count_cycle=getattr(ch, "count_cycle", False),
        )
        mc = AosMasterChannel(aos, vcids=(vc,))
    for packet in _packets(rng, not p.mission.foreign):
        mc.push(vc, packet)
    mc.flush()
    return [*mc.drain(), mc.idle_frame()]


def _coding(p: Profile) -> CaduTransmitter:
    ch = p.downlink
    coding = ch.cadu_coding()
    return CaduTransmitter(ch.frame_length, coding)


def _units(rng: random.Random, p: Profile) -> list[bytes]:
    """The profile's raw units (CADUs or frames) of a few packets."""
    frames = _frames(rng, p)
    if p.mission.raw_unit == "frame":
        return frames
    return _coding(p).cadus(frames)


@cache
def _pool(name: str) -> tuple[bytes, ...]:
    """Valid units made once (Reed-Solomon encoding each input's would cost more than
    the decoding under test): the mutations make each input new."""
    rng = random.Random(name)
    return tuple(u for _ in range(_POOL_RECORDINGS) for u in _units(rng, _profile(name)))


_POOL_RECORDINGS = 40
_JSON_EVERY = 97  # the counts grow with what was fed: their JSON now and then


# -- the replay chain ------------------------------------------------------------------------------


def _replay_target(name: str) -> Target:
    p = _profile(name)
    layer = unit_layer(p)

    def make() -> Decoder:
        replay = MissionReplay(p)

        def decode(buf: bytes) -> object:
            replay.feed(CapturedUnit(layer, 0.0, SPACECRAFT, STATION, buf))
            replay.finish()  # a frame record waits for its CADU: decoded now
            for packet in replay.packets:
                check_packet(packet.raw)
            if sum(replay.counts.units.values()) % _JSON_EVERY == 0:
                json.dumps(replay.counts.as_dict())  # what --json prints
            del replay.packets[:]  # bounded memory over a long run
            return None

        return decode

    return Target(
        f"mission.replay.{name}",
        lambda rng: rng.choice(_pool(name)),
        make,
        strict=False,
        max_random_len=unit_length(p) + 8,
    )


# -- raw recordings --------------------------------------------------------------------------------

_METEOR_CADU = unit_length(load_profile("meteor-m2-lrpt"))


def _valid_raw(rng: random.Random) -> bytes:
    """Two or three Meteor CADUs back to back, sometimes as a bit stream (shifted by a
    few bits, perhaps inverted) with octets before them."""
    pool = _pool("meteor-m2-lrpt")
    start = rng.randrange(len(pool) - 3)
    data = b"".join(pool[start : start + rng.randrange(1, 4)])
    if rng.random() < 0.5:
        return data
    bits = 8 * len(data)
    number = int.from_bytes(rng.randbytes(rng.randrange(1, 5)) + data, "big")
    if rng.random() < 0.5:
        number ^= (1 << (bits + 40)) - 1
    shifted = number >> rng.randrange(1, 8)
    return shifted.to_bytes((shifted.bit_length() + 7) // 8 or 1, "big")


def _raw_decoder(buf: bytes) -> object:
    """Fixed-length units cover the file exactly, each of the unit's length but the
    last; a stream's units are each one CADU that starts with the ASM."""
    for p in (_profile("meteor-m2-lrpt"), _profile("mars2020")):
        units = list(raw_units(buf, p))
        n = unit_length(p)
        if b"".join(u.data for u in units) != buf or any(len(u.data) != n for u in units[:-1]):
            raise FuzzCheckError(f"{p.name}: the units do not cut the file in {n}-octet pieces")
    stream = _profile("meteor-m2-lrpt", "stream")
    asm = stream.downlink.asm
    for u in raw_units(buf, stream):
        if len(u.data) != _METEOR_CADU or not u.data.startswith(asm):
            raise FuzzCheckError(f"the stream gave a unit of {len(u.data)} octets, not a CADU")
    return None


# -- --detect --------------------------------------------------------------------------------------

_SMALL_TM = TmConfig(frame_length=64, fecf=True, ocf=True)
_SMALL_AOS = AosConfig(frame_length=120, fecf=False, insert_zone_len=2)
_SMALL_CODING = CaduCoding(rs_e=8, rs_depth=1, dual_basis=False, randomize=False)


def _valid_short(rng: random.Random) -> bytes:
    """A short recording: TM frames back to back, or CADUs of small AOS frames."""
    if rng.random() < 0.5:
        mc: TmMasterChannel | AosMasterChannel = TmMasterChannel(_SMALL_TM)
    else:
        mc = AosMasterChannel(_SMALL_AOS)
    apid, seq = rng.randrange(2047), rng.randrange(1 << 14)
    for i in range(rng.randrange(3, 6)):
        packet = SpacePacket(apid, rng.randbytes(40), seq_count=(seq + i) % (1 << 14))
        mc.push(0, packet.pack())
    mc.flush()
    frames = mc.drain()
    if isinstance(mc, AosMasterChannel) and rng.random() < 0.5:
        return b"".join(CaduTransmitter(120, _SMALL_CODING).cadus(frames))
    return b"".join(frames)


def _detect_decoder(buf: bytes) -> object:
    """Refused with ConfigError, or the TOML it prints loads as a profile a replay can
    be built from."""
    found = detect(buf)
    text = found.toml()
    try:
        MissionReplay(loads_profile(text, "--detect's output"))
    except LinkstackError as exc:
        raise FuzzCheckError(f"--detect printed a profile that does not load: {exc}") from None
    return found


# -- the profile loader ----------------------------------------------------------------------------


@cache
def _profile_texts() -> tuple[str, ...]:
    from importlib import resources  # noqa: PLC0415

    folder = resources.files("linkstack.capture") / "profiles"
    return tuple((folder / f"{n}.toml").read_text("utf-8") for n in PROFILES)


def _profile_decoder(buf: bytes) -> object:
    """ConfigError/DecodeError, or a profile whose downlink a replay can read."""
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as exc:  # as load_profile() refuses a file
        raise ConfigError("profile", "(fuzz)", f"cannot read it: {exc}") from None
    try:
        profile = loads_profile(text, "(fuzz)")
    except (ConfigError, DecodeError):
        raise
    except LinkstackError as exc:  # an EncodeError, say: not how a file is refused
        raise FuzzCheckError(f"refused with {type(exc).__name__}: {exc}") from None
    try:
        MissionReplay(profile)
    except LinkstackError as exc:
        raise FuzzCheckError(f"accepted a profile the replay cannot use: {exc}") from None
    return profile


TARGETS: list[Target] = [
    *(_replay_target(name) for name in PROFILES),
    Target("mission.raw_units", _valid_raw, lambda: _raw_decoder, strict=False),
    Target(
        "mission.detect",
        _valid_short,
        lambda: _detect_decoder,
        strict=True,
        max_random_len=400,
        refusal=ConfigError,
    ),
    Target(
        "mission.profile",
        lambda rng: rng.choice(_profile_texts()).encode(),
        lambda: _profile_decoder,
        strict=True,
        max_random_len=400,
        refusal=LinkstackError,
    ),
]
