"""SDLS on linkstack's own links: the scenario's ``[sdls]`` table, the key file, and
the guard each end puts between its frames and its coding.

CCSDS Space Data Link Security (355.0-B-2) protects a transfer frame between its
header and its trailer (:mod:`linkstack.ccsds.sdls`). Each link direction has one
security association: the uplink's on linkstack's TC virtual channel (VC 0; frames of
other virtual channels, the flight software's, are the flight software's to
protect), the downlink's on every frame of the TM master channel (idle frames
included: the CADU has one length), the laser links' on every AOS frame; with
``frames.protocol = "uslp"`` the same on the USLP frames of each link. The frame
makers build *plain* frames shorter by the association's overhead
(:attr:`SdlsSettings.tc_overhead`, ...) and the guard expands them into the frames
that go on air, so nothing else in the stack knows SDLS is there.

Keys never travel in the scenario file: they are in a key file (JSON, key id ->
64 hex digits) that only its owner may read (a file readable by group or others is
refused). A daemon that finds none writes one with fresh random keys (the operating
system's generator, ``secrets``) and says where; the ends of a link read the same
file. The in-process emulation makes its keys in memory for each run.

Counters. The keys are shared by every link of a kind (the uplinks, the downlinks,
the laser links), so no two senders may ever use one IV (AES-GCM's IV must never
repeat under a key) and no restart may start over. Each sender's counter (the IV, or
the sequence number of an "auth" association) is laid out as ``[link][boot][count]``:
the link's number (unique among those sharing the key), the millisecond it started
(since 2020: a sender that restarts starts higher), then its own count (when it
overflows it carries into the start, which real time outruns: a link would need
more than 2^count frames a millisecond to catch up with its next start). The receiver
takes any value above the last it accepted, up to a later boot (its window spans the
boot and count fields), and refuses anything at or below it: a replay, even of a
frame sent before the sender restarted. A receiver that restarts forgets what it
took: until the sender's next frame, an old frame replayed to it is taken once (a
state file would close that: not done).

A frame the guard refuses (bad MAC, unknown SPI, replayed or out of the window,
missing key) is dropped before it reaches COP-1, counted by reason, and raises an
alarm (``on_alarm``: the daemons log it, show it in their status and, on the ground,
publish it on MQTT).

SA and key management over the link (355.1: starting, stopping and rekeying SAs, key
rotation during a run, over-the-air rekeying) is configured by ``[sdls.management]``
(:class:`ManagementSettings`) and carried out by
:mod:`linkstack.runtime.sdls_management`; the guard says which SA the last frame it
verified came under (``last_spi``), which the spacecraft's manager asks of a command.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkstack.ccsds.tc import frame_vcid as tc_frame_vcid
from linkstack.errors import ConfigError, EncodeError, SdlsChecksumError, SdlsError
from linkstack.tomlcheck import Table

if TYPE_CHECKING:  # the codec is imported where SDLS is on: a run without it never loads it
    from linkstack.ccsds.sdls import FrameSecurity, Keyring, SecurityAssociation
    from linkstack.runtime.uplink_config import UplinkConfig

log = logging.getLogger("linkstack.security")

SERVICES = ("clear", "auth", "enc", "aead")
ALARM_EVERY_S = 10.0  # one log line per reason and end this often; every one is counted
BOOT_BITS = 40  # the sender's start in its counters, ms since BOOT_EPOCH (until 2054)
BOOT_EPOCH_S = 1_577_836_800  # 2020-01-01T00:00:00Z
LASER_NODES = 4096  # a laser link's number: src * 4096 + dst (24 bits: 4,095 satellites)
SDLS_EP_APID = 0x180  # SDLS management (355.1 commands and replies): runtime/sdls_management.py


@dataclass(frozen=True)
class SaSettings:
    """One link direction's security association (``[sdls.uplink]``, ...)."""

    spi: int
    key_id: int
    service: str = "aead"  # "clear", "auth" (a MAC), "enc" (encryption only), "aead"
    auth: str = "CMAC_AES256"  # the MAC of "auth": "CMAC_AES256" or "HMAC_SHA256"
    iv_len: int | None = None  # None: the service's (12 for AES-GCM, none for "auth")
    sn_len: int = 0  # an anti-replay sequence number field; 0: the IV counts (GCM)
    mac_len: int = 16
    window: int = 64  # anti-replay: how far ahead of the last accepted a frame may be

    def association(self) -> SecurityAssociation:
        from linkstack.ccsds.sdls import SecurityAssociation  # noqa: PLC0415 - see the imports

        service = self.service
        return SecurityAssociation(
            spi=self.spi,
            service=service,
            ecs="AES256_GCM" if service in ("enc", "aead") else None,
            acs=self.auth if service == "auth" else None,
            ekid=self.key_id if service in ("enc", "aead") else None,
            akid=self.key_id if service == "auth" else None,
            iv_len=self.iv_octets,
            sn_len=self.sn_len,
            mac_len=self.mac_len if service in ("auth", "aead") else 0,
            window=self.window,
        )

    @property
    def iv_octets(self) -> int:
        if self.iv_len is not None:
            return self.iv_len
        return 12 if self.service in ("enc", "aead") else 0

    @property
    def overhead(self) -> int:
        return self.association().overhead


@dataclass(frozen=True)
class ManagementSettings:
    """``[sdls.management]``: SA and key management over the link (355.1; the
    procedures, the spacecraft's manager and key rotation are
    :mod:`linkstack.runtime.sdls_management`'s)."""

    enabled: bool = True  # the spacecraft carries out SDLS-EP commands from the ground
    # further uplink SAs, shaped as [sdls.uplink], unkeyed on board at the start: the
    # SAs a rotation keys and starts (and the link's own SPI, once it is expired)
    spare_spis: tuple[int, ...] = (4,)
    key_ids: tuple[int, ...] = ()  # keys for rotations, written in the key file with the rest
    master_key_id: int | None = None  # over-the-air rekeying's key (in the key file); None: none


@dataclass(frozen=True)
class SdlsSettings:
    """``[sdls]``: SDLS on linkstack's links (see the module docstring)."""

    enabled: bool = True  # linkstack's own ends run SDLS unless the scenario says not
    # the daemons' key file, written if missing; "": sdls-keys.json in daemon.out_dir
    key_file: str = ""
    uplink: SaSettings = field(default_factory=lambda: SaSettings(spi=1, key_id=1))
    downlink: SaSettings = field(default_factory=lambda: SaSettings(spi=2, key_id=2))
    laser: SaSettings = field(default_factory=lambda: SaSettings(spi=3, key_id=3))
    management: ManagementSettings = field(default_factory=ManagementSettings)

    @property
    def tc_overhead(self) -> int:
        return self.uplink.overhead if self.enabled else 0

    @property
    def tm_overhead(self) -> int:
        return self.downlink.overhead if self.enabled else 0

    @property
    def aos_overhead(self) -> int:
        return self.laser.overhead if self.enabled else 0

    def key_ids(self) -> list[int]:
        ids = {sa.key_id for sa in (self.uplink, self.downlink, self.laser)}
        ids.update(self.management.key_ids)
        if self.management.master_key_id is not None:
            ids.add(self.management.master_key_id)
        return sorted(ids)


# -- reading the table -----------------------------------------------------------------


def read_sdls(t: Table) -> SdlsSettings:
    base = SdlsSettings()
    out = replace(
        base,
        enabled=t.boolean("enabled", base.enabled),
        key_file=t.text("key_file", base.key_file),
        uplink=_sa(t.table("uplink"), base.uplink),
        downlink=_sa(t.table("downlink"), base.downlink),
        laser=_sa(t.table("laser"), base.laser),
        management=_management(t.table("management"), base.management),
    )
    t.done()
    spis = [out.uplink.spi, out.downlink.spi, out.laser.spi]
    if len(set(spis)) != len(spis):
        raise t.error("", f"the links' SPIs must differ, got {spis}")
    spares = out.management.spare_spis
    if set(spares) & set(spis):
        raise t.error("management.spare_spis", f"must differ from the links' SPIs {spis}")
    used = {out.uplink.key_id, out.downlink.key_id, out.laser.key_id}
    master = out.management.master_key_id
    if master is not None and master in used | set(out.management.key_ids):
        raise t.error("management.master_key_id", "must be a key of its own")
    if set(out.management.key_ids) & {out.downlink.key_id, out.laser.key_id}:
        raise t.error("management.key_ids", "must not be the downlink's or the laser links' keys")
    return out


def _management(t: Table, base: ManagementSettings) -> ManagementSettings:
    out = replace(
        base,
        enabled=t.boolean("enabled", base.enabled),
        spare_spis=_integers(t, "spare_spis", base.spare_spis, 1, 0xFFFE),
        key_ids=_integers(t, "key_ids", base.key_ids, 0, 0xFFFF),
        master_key_id=(
            t.integer("master_key_id", 0, 0, 0xFFFF)
            if t.has("master_key_id")
            else base.master_key_id
        ),
    )
    t.done()
    return out


def _integers(t: Table, key: str, default: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    """A list of distinct integers lo..hi."""
    raw = t.raw(key, default)
    if raw is default:
        return default
    if not isinstance(raw, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in raw
    ):
        raise t.error(key, f"must be a list of integers {lo}..{hi}, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise t.error(key, f"names one twice: {raw!r}")
    return tuple(raw)


def with_sdls(t: Table, up: UplinkConfig) -> UplinkConfig:
    """``[sdls]`` read into the link configuration, checked against the frame lengths:
    the frames linkstack builds are shorter by SDLS's header and trailer."""
    sdls = read_sdls(t)
    out = replace(up, sdls=sdls)
    if sdls.enabled:
        for what, check in (("uplink", out.tc_config), ("downlink", out.downlink_channel)):
            try:
                check()
            except (ConfigError, EncodeError) as exc:
                raise t.error("", f"the {what} frames cannot hold SDLS's overhead: {exc}") from None
    return out


_SA_KEYS = ("spi", "service", "iv_len", "sn_len", "mac_len", "window")


def _sa(t: Table, base: SaSettings) -> SaSettings:
    service = t.choice("service", base.service, SERVICES, "service")
    out = replace(
        base,
        spi=t.integer("spi", base.spi, 1, 0xFFFE),
        key_id=t.integer("key_id", base.key_id, 0, 0xFFFF),
        service=service,
        auth=t.choice("auth", base.auth, ("CMAC_AES256", "HMAC_SHA256"), "MAC"),
        iv_len=t.integer("iv_len", 0, 0, 32) if t.has("iv_len") else base.iv_len,
        sn_len=t.integer("sn_len", base.sn_len, 0, 8),
        mac_len=t.integer("mac_len", base.mac_len, 0, 32),
        window=t.integer("window", base.window, 1, 1 << 16),
    )
    t.done()
    try:  # the codec's own checks of an association, named by this table's keys
        out.association()
    except ConfigError as exc:
        raise t.error(exc.field if exc.field in _SA_KEYS else "", exc.rule) from None
    return out


# -- keys ------------------------------------------------------------------------------


def load_keys(path: Path, settings: SdlsSettings, *, create: bool = True) -> tuple[Keyring, bool]:
    """The keys of ``settings`` from the key file at ``path`` (written with fresh
    random keys, mode 0600, when it is missing and ``create``); and whether it was
    written now. The file's format and its checks: :mod:`linkstack.ccsds.sdls_keys`."""
    from linkstack.ccsds.sdls import Keyring  # noqa: PLC0415 - see the imports

    created = False
    if not path.exists():
        if not create:
            raise ConfigError("sdls", "key_file", f"{path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            Keyring.generate(settings.key_ids()).write(path)
            created = True
        except ConfigError:
            if not path.exists():
                raise
            # another daemon of the same run wrote it just now: use its keys
    keys = Keyring.from_file(path)
    for kid in settings.key_ids():
        if kid not in keys:
            raise ConfigError("sdls", "key_file", f"{path} has no key of id {kid}")
    return keys, created


def ephemeral_keys(settings: SdlsSettings) -> Keyring:
    """Fresh random keys held in memory only (the in-process emulation's)."""
    from linkstack.ccsds.sdls import Keyring  # noqa: PLC0415 - see the imports

    return Keyring.generate(settings.key_ids())


# -- the counters' layout ----------------------------------------------------------------


def counter_layout(field_octets: int) -> tuple[int, int] | None:
    """(link bits, count bits) of a counter field of ``field_octets`` (see the module
    docstring), or None where the field is too short for it (no sequence number)."""
    bits = 8 * field_octets
    if bits >= 96:
        return 24, bits - 24 - BOOT_BITS
    if bits >= 64:
        return 16, bits - 16 - BOOT_BITS
    return None


def boot_stamp(unix_s: float) -> int:
    """The start of a sender at Unix time ``unix_s``, as its counters carry it."""
    return int((unix_s - BOOT_EPOCH_S) * 1000) & ((1 << BOOT_BITS) - 1)


def counter_start(field_octets: int, link: int, boot: int) -> int:
    """Where the counter of link ``link`` starts when its sender started at ``boot``
    (:func:`boot_stamp`; 0: the lowest a receiver takes)."""
    layout = counter_layout(field_octets)
    if layout is None:
        return 0
    link_bits, count_bits = layout
    if not 0 <= link < 1 << link_bits:
        raise ConfigError("sdls", "links", f"link {link} does not fit {link_bits} bits")
    return (link << (BOOT_BITS + count_bits)) | (boot << count_bits)


def counter_window(field_octets: int) -> int | None:
    """The receiver's window for such a counter: any later boot of the same link."""
    layout = counter_layout(field_octets)
    return None if layout is None else 1 << (BOOT_BITS + layout[1])


# -- the guard of one end of one link --------------------------------------------------

Alarm = Callable[[str, str, dict[str, Any]], object]  # (end, reason, details)


class FrameGuard:
    """SDLS at one end of one link: :meth:`protect` each frame it sends with the
    sending association; :meth:`check` each frame it receives (None: refused, counted
    in ``stats`` by reason, ``on_alarm`` told). ``protects(frame)`` says whether a
    received frame is this guard's to check (TC: only linkstack's virtual channel)."""

    def __init__(
        self,
        end: str,
        tx: FrameSecurity | None,
        tx_spi: int | None,
        rx: FrameSecurity | None,
        *,
        vcid: int | None = None,
        now: Callable[[], float] | None = None,
        on_alarm: Alarm | None = None,
    ) -> None:
        self.end = end
        self.tx = tx
        self.tx_spi = tx_spi
        self.rx = rx
        self.vcid = vcid  # TC: the virtual channel under SDLS (None: every frame)
        self.now = now
        self.on_alarm = on_alarm
        self.stats: Counter[str] = Counter()
        self.last_spi: int | None = None  # the SA of the last frame check verified
        self._last_logged: dict[str, float] = {}

    def protect(self, plain: bytes) -> bytes:
        if self.tx is None or self.tx_spi is None:
            return plain
        self.stats["protected"] += 1
        return self.tx.apply(plain, self.tx_spi)

    def protects(self, frame: bytes) -> bool:
        """Whether a received uplink ``frame`` is on the virtual channel under SDLS."""
        if self.vcid is None or self.rx is None:
            return True
        if self.rx.kind == "uslp":
            return len(frame) < 4 or self.rx.layout.vcid(frame) == self.vcid
        if len(frame) < 3:
            return True
        return tc_frame_vcid(frame) == self.vcid

    def check(self, frame: bytes, plain_fecf: bool = True) -> bytes | None:
        """The plain frame of a received ``frame``, or None (refused). ``plain_fecf``
        False: its FECF is left uncomputed, for a receiver told it was checked."""
        if self.rx is None:
            return frame
        try:
            spi, plain = self.rx.process(frame, plain_fecf=plain_fecf)
        except SdlsChecksumError:
            self.stats["refused_fecf"] += 1  # bit errors on the link: counted, no alarm
            return None
        except SdlsError as exc:
            self._refused(exc.field, str(exc))
            return None
        self.stats["verified"] += 1
        self.last_spi = spi
        return plain

    def _refused(self, reason: str, detail: str) -> None:
        self.stats[f"refused_{reason}"] += 1
        t_s = self.now() if self.now is not None else 0.0
        last = self._last_logged.get(reason)
        if last is None or t_s - last >= ALARM_EVERY_S:
            self._last_logged[reason] = t_s
            log.warning(
                "SDLS refused a frame",
                extra={"fields": {"end": self.end, "reason": reason, "detail": detail}},
            )
        if self.on_alarm is not None:
            self.on_alarm(self.end, reason, {"detail": detail, "t_s": t_s})


# -- the guards of linkstack's ends ----------------------------------------------------


@dataclass
class Guards:
    """Every guard of one process, with what they share: the keys, the clock's ``now``
    and the alarm hook (the daemons set it). :meth:`counters` sums their refusals."""

    settings: SdlsSettings
    keys: Keyring
    now: Callable[[], float]
    on_alarm: Alarm | None = None
    made: list[FrameGuard] = field(default_factory=list)
    # this process's start in its senders' counters (see the module docstring)
    boot: int = field(default_factory=lambda: boot_stamp(time.time()))
    protocol: str = "tm-tc-aos"  # the links' frames (frames.protocol): "uslp" or TC, TM, AOS

    def _alarm(self, end: str, reason: str, details: dict[str, Any]) -> None:
        if self.on_alarm is not None:
            self.on_alarm(end, reason, details)

    def _guard(
        self,
        end: str,
        tx: FrameSecurity | None,
        tx_spi: int | None,
        rx: FrameSecurity | None,
        vcid: int | None = None,
    ) -> FrameGuard:
        guard = FrameGuard(end, tx, tx_spi, rx, vcid=vcid, now=self.now, on_alarm=self._alarm)
        self.made.append(guard)
        return guard

    def _security(
        self, kind: str, sa_settings: SaSettings, link: int, sends: bool, **layout: Any
    ) -> FrameSecurity:
        """One end's SDLS of one link: its association with the window of its counter
        layout, and its counters where link ``link`` starts (see the module docstring)."""
        from linkstack.ccsds.sdls import FrameSecurity, SaCounters  # noqa: PLC0415

        sa = sa_settings.association()
        counted = sa.sn_len or (sa.iv_len if sa.service in ("enc", "aead") else 0)
        window = counter_window(counted) if counted else None
        if window is not None:
            sa = replace(sa, window=window)
        security = FrameSecurity(kind, [sa], self.keys, **layout)
        boot = self.boot if sends else 0
        counters = SaCounters(
            iv=counter_start(sa.iv_len, link, boot), sn=counter_start(sa.sn_len, link, boot)
        )
        if sends:
            security.set_send_counters(sa.spi, counters)
        else:
            security.set_receive_counters(sa.spi, counters)
        return security

    def _tc(self, link: int, sends: bool, tc_max_len: int, segment_header: bool) -> FrameSecurity:
        if self.protocol == "uslp":  # variable-length frames, no segment header
            return self._security(
                "uslp",
                self.settings.uplink,
                link,
                sends,
                fecf=True,
                fixed=False,
                frame_length=tc_max_len,
            )
        return self._security(
            "tc",
            self.settings.uplink,
            link,
            sends,
            fecf=True,
            segment_header=segment_header,
            frame_length=tc_max_len,
        )

    def _tm(self, link: int, sends: bool, tm_len: int) -> FrameSecurity:
        kind = "uslp" if self.protocol == "uslp" else "tm"
        return self._security(
            kind, self.settings.downlink, link, sends, fecf=True, ocf=True, frame_length=tm_len
        )

    def _aos(self, link: int, sends: bool, aos_len: int) -> FrameSecurity:
        kind = "uslp" if self.protocol == "uslp" else "aos"
        return self._security(
            kind, self.settings.laser, link, sends, fecf=True, frame_length=aos_len
        )

    def ground(
        self, satellite: str, link: int, tc_max_len: int, segment_header: bool, tm_len: int
    ) -> FrameGuard:
        """The ground's end of ``satellite``'s RF link (number ``link``, unique among
        the satellites): TC protected, TM checked."""
        return self._guard(
            f"ground:{satellite}",
            self._tc(link, True, tc_max_len, segment_header),
            self.settings.uplink.spi,
            self._tm(link, False, tm_len),
        )

    def spacecraft(
        self,
        satellite: str,
        link: int,
        tc_max_len: int,
        segment_header: bool,
        tm_len: int,
        vcid: int,
    ) -> FrameGuard:
        """A satellite's end of its RF link: TM protected, TC of ``vcid`` checked."""
        return self._guard(
            f"sat:{satellite}",
            self._tm(link, True, tm_len),
            self.settings.downlink.spi,
            self._tc(link, False, tc_max_len, segment_header),
            vcid=vcid,
        )

    @staticmethod
    def laser_link(src: int, dst: int) -> int:
        """The number of the laser link from satellite number ``src`` to ``dst``."""
        return src * LASER_NODES + dst

    def laser_out(self, src: str, dst: str, link: int, aos_len: int) -> FrameGuard:
        """The sender's end of the laser link ``src`` -> ``dst``: AOS frames protected."""
        return self._guard(
            f"isl:{src}->{dst}", self._aos(link, True, aos_len), self.settings.laser.spi, None
        )

    def laser_in(self, src: str, dst: str, link: int, aos_len: int) -> FrameGuard:
        """The receiver's end of the laser link ``src`` -> ``dst``: AOS frames checked."""
        return self._guard(f"isl:{src}->{dst}", None, None, self._aos(link, False, aos_len))

    def counters(self) -> dict[str, int]:
        """Every guard's counters summed (the status reads it every few seconds: a
        guard that counted nothing, most laser links' on a large constellation, costs
        a test)."""
        total: Counter[str] = Counter()
        for guard in self.made:
            if guard.stats:
                for key, value in guard.stats.items():
                    total[key] += value
        return dict(total)
