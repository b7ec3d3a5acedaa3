"""Mission profiles: the managed parameters of a channel that a capture does not carry.

One notion for replay, conform, decode and the ground link: it lives in the runtime
layer so that a scenario's ``[frames] profile`` (:mod:`linkstack.runtime.link_profile`)
reads the same files; :mod:`linkstack.capture.mission_profile` adds what only the
capture tools need (SDLS placement, the report header) and serves these names there.

A capture holds units, not the agreements behind them: how long a TM frame is,
whether frames end with an FECF, whether an AOS frame has an OCF or an insert
zone, how the codeblocks are coded, which spacecraft and virtual channels exist,
which node is on the ground. A profile says all that, in a TOML file::

    name = "my-mission"
    extends = "linkstack"          # optional: start from another profile (a name or a path)

    [ports]                        # UDP port(s) of each layer (default: linkstack's table)
    tm_cadu = 47002                # one port, or a list of ports and "lo-hi" ranges:
    cltu = [47001, "47100-47147"]  # e.g. a recorder's one port per link

    [nodes]                        # node names (or addresses) on each side, as glob patterns
    ground = ["ground:*"]
    space = ["sat:*"]

    [spp]
    time_code = "none"             # "cuc": packets with the secondary header flag carry a CUC
    cuc_coarse_octets = 4
    cuc_fine_octets = 2
    cuc_pfield = true

    [tc]                           # the TC uplink: frames and their CLTUs
    scids = ["64-255"]             # expected SCIDs: numbers or "lo-hi" ranges; [] = any
    vcids = [0]
    max_frame_length = 1024
    fecf = true
    segment_header = true
    randomize = true               # the TC randomizer before BCH encoding
    cltu_mode = "correct"          # or "detect"

    [tm]                           # the TM downlink: frames and their CADUs
    scids = ["64-255"]
    vcids = [0, 7]
    idle_vcid = 7                  # -1: none
    frame_length = 1115
    fecf = true
    ocf = "clcw"                   # "clcw", "other" (present, not a CLCW) or "none"
    secondary_header_len = 0       # octets of secondary header data, 0 = none
    rs_e = 16                      # 16, 8, or 0 for no Reed-Solomon
    rs_depth = 5
    dual_basis = true
    randomize = true
    asm = "1acffc1d"

    [aos]                          # AOS frames (laser links) and their CADUs
    # the [tm] keys except secondary_header_len, and:
    insert_zone_len = 0
    count_cycle = true             # the VC frame count cycle extends the count to 28 bits

    [cop1]
    ack_latency_s = 1.0            # how long a CLCW takes to reach the ground and act

    [mission]                      # what a recording holds beyond the frames' parameters
    downlink = "tm"                # the frames of a raw file, and of --detect: "tm" or "aos"
    raw_unit = "cadu"              # a raw file: "cadu" (ASM + codeblock back to back),
                                   # "frame" (frames back to back) or "stream" (a bit
                                   # stream of CADUs, synchronized by the ASM)
    linkstack_apids = ["0x100-0x102"]  # APIDs read as linkstack's messages; [] for none
    packet_counter = "per_apid"    # or "shared": one sequence count across the APIDs

    [sdls]                         # SDLS (355.0-B-2): none by default (every frame clear)
    [[sdls.tc]]                    # one table per security association of the TC frames
    spi = 1                        # (likewise [[sdls.tm]] and [[sdls.aos]])
    service = "aead"               # "clear", "auth", "enc" or "aead" (AES-256-GCM)
    vcid = 0                       # the virtual channel it protects; leave out: all of them
    iv_len = 12                    # octets; default 12 for "enc" and "aead", else 0
    sn_len = 0                     # the sequence number field
    pad_len = 0                    # the pad length field
    mac_len = 16                   # default 16 for "auth" and "aead", else 0
    auth = "CMAC_AES256"           # "auth": or "HMAC_SHA256"
    abm = "all"                    # the authentication bit mask: "all" ones or "none"
    key_id = 1                     # its key in a --keys file (default: the SPI)

A frame of a kind and virtual channel that an association protects carries a
security header and trailer (:mod:`linkstack.capture.sdls_view` opens it); ``linkstack
conform --scenario FILE`` takes the scenario's own associations instead.

A section's Reed-Solomon frame-length limit (``frame_length`` a multiple of ``rs_depth``
up to ``(255 - 2 rs_e) rs_depth``) holds when the profile (or one it extends) sets
``rs_e`` or ``rs_depth``; a profile that sets neither and whose frame length fits no
such code describes frames without Reed-Solomon (a recording of frames alone), and
:func:`describe` says so.

Unknown keys and values of the wrong type are refused with a
:class:`~linkstack.errors.ConfigError` that names the file and the key
(:mod:`linkstack.tomlcheck` reads the file).
Built-in profiles live in ``linkstack/capture/profiles/NAME.toml``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS
from linkstack.errors import ConfigError, LinkstackError
from linkstack.runtime.capture_ports import PORTS
from linkstack.tomlcheck import ErrorFactory, Table, TomlError, kind_of, parse

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from linkstack.ccsds.sdls import SecurityAssociation

BUILTIN_PACKAGE = "linkstack.capture"
BUILTIN_DIR = "profiles"
DEFAULT_PROFILE = "linkstack"


class IdSet:
    """A set of identifiers given as numbers and ``"lo-hi"`` ranges; empty means any."""

    __slots__ = ("ranges",)

    def __init__(self, ranges: tuple[tuple[int, int], ...] = ()) -> None:
        self.ranges = ranges

    @property
    def any(self) -> bool:
        return not self.ranges

    def __contains__(self, value: object) -> bool:
        if not self.ranges:
            return True
        return isinstance(value, int) and any(lo <= value <= hi for lo, hi in self.ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdSet) and other.ranges == self.ranges

    def __hash__(self) -> int:
        return hash(self.ranges)

    def __str__(self) -> str:
        if not self.ranges:
            return "any"
        return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)

    __repr__ = __str__


@dataclass(frozen=True)
class NodesProfile:
    ground: tuple[str, ...] = ("ground:*",)
    space: tuple[str, ...] = ("sat:*",)


@dataclass(frozen=True)
class SppProfile:
    time_code: str = "none"  # "none" or "cuc"
    cuc_coarse_octets: int = 4
    cuc_fine_octets: int = 2
    cuc_pfield: bool = True


@dataclass(frozen=True)
class TcProfile:
    scids: IdSet = field(default_factory=IdSet)
    vcids: IdSet = field(default_factory=IdSet)
    max_frame_length: int = 1024
    fecf: bool = True
    segment_header: bool = True
    randomize: bool = True
    cltu_mode: str = "correct"  # "correct" or "detect"


@dataclass(frozen=True)
class CaduProfile:
    """What TM and AOS share: identifiers, frame and trailer, and the coding sublayer."""

    scids: IdSet = field(default_factory=IdSet)
    vcids: IdSet = field(default_factory=IdSet)
    idle_vcid: int = -1
    frame_length: int = 1115
    fecf: bool = True
    ocf: str = "none"  # "clcw", "other" or "none"
    rs_e: int = 16
    rs_depth: int = 5
    dual_basis: bool = True
    randomize: bool = True
    asm: bytes = bytes.fromhex("1acffc1d")

    @property
    def codeblock_length(self) -> int:
        return self.frame_length + 2 * self.rs_e * self.rs_depth

    @property
    def cadu_length(self) -> int:
        return len(self.asm) + self.codeblock_length

    def cadu_coding(self) -> CaduCoding:
        """The coding sublayer these CADUs are made with (``rs_e = 0``: no RS)."""
        return CaduCoding(
            rs_e=self.rs_e or None,
            rs_depth=self.rs_depth,
            dual_basis=self.dual_basis,
            randomize=self.randomize,
            asm=self.asm,
        )


@dataclass(frozen=True)
class TmProfile(CaduProfile):
    idle_vcid: int = 7
    secondary_header_len: int = 0


@dataclass(frozen=True)
class AosProfile(CaduProfile):
    idle_vcid: int = 63
    insert_zone_len: int = 0
    count_cycle: bool = True


@dataclass(frozen=True)
class Cop1Profile:
    ack_latency_s: float = 1.0


@dataclass(frozen=True)
class SdlsProfile:
    """``[sdls]``: the security associations of each kind of link (none: clear)."""

    tc: tuple[SecurityAssociation, ...] = ()
    tm: tuple[SecurityAssociation, ...] = ()
    aos: tuple[SecurityAssociation, ...] = ()
    # (kind, SPI) of SAs whose key is not known beforehand (a scenario's spare SAs)
    unkeyed: frozenset[tuple[str, int]] = frozenset()

    @property
    def any(self) -> bool:
        return bool(self.tc or self.tm or self.aos)


MISSION_DOWNLINKS = ("tm", "aos")
RAW_UNITS = ("cadu", "frame", "stream")
PACKET_COUNTERS = ("per_apid", "shared")
LINKSTACK_APIDS = frozenset({0x100, 0x101, 0x102})  # payloads.messages and the relay envelope


@dataclass(frozen=True)
class MissionProfile:
    """``[mission]``: what a recording of a mission holds beyond its frames' parameters.

    ``downlink``: the kind of frames (``[tm]`` or ``[aos]``) in a raw file and what
    ``--detect`` writes; ``raw_unit``: how a raw file holds them; ``linkstack_apids``:
    the APIDs whose packets are linkstack's own messages (queries, answers, relay
    envelopes), none for another mission's recording; ``packet_counter``: one
    sequence count per APID (CCSDS 133.0-B-2 §4.1.3.4.2.2) or one ``shared`` by
    every APID (a departure some missions make, reported as such)."""

    downlink: str = "tm"
    raw_unit: str = "cadu"
    linkstack_apids: frozenset[int] = LINKSTACK_APIDS
    packet_counter: str = "per_apid"

    @property
    def foreign(self) -> bool:
        """No packet of this mission is read as a linkstack message."""
        return not self.linkstack_apids


@dataclass(frozen=True)
class Profile:
    name: str = DEFAULT_PROFILE
    description: str = ""
    source: str = ""  # "built-in" or the file it came from
    # each layer's UDP ports (one, or a recorder's port per link)
    ports: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {layer: (port,) for layer, port in PORTS.items()}
    )
    nodes: NodesProfile = field(default_factory=NodesProfile)
    spp: SppProfile = field(default_factory=SppProfile)
    tc: TcProfile = field(default_factory=TcProfile)
    tm: TmProfile = field(default_factory=TmProfile)
    aos: AosProfile = field(default_factory=AosProfile)
    cop1: Cop1Profile = field(default_factory=Cop1Profile)
    sdls: SdlsProfile = field(default_factory=SdlsProfile)
    mission: MissionProfile = field(default_factory=MissionProfile)
    # why a section has no Reed-Solomon though its rs_e says so (frames alone), per section
    uncoded: dict[str, str] = field(default_factory=dict)

    @property
    def downlink(self) -> TmProfile | AosProfile:
        """The section of the mission's downlink frames (``[mission] downlink``)."""
        return self.aos if self.mission.downlink == "aos" else self.tm

    @functools.cached_property
    def layer_by_port(self) -> dict[int, str]:
        return {port: layer for layer, ports in self.ports.items() for port in ports}

    def side(self, node: str) -> str | None:
        """ "ground", "space", or None when the profile does not say."""
        return _side(node, self.nodes.ground, self.nodes.space)

    def domain(self, node: str) -> str:
        """Every ground node is one ground segment; other nodes are themselves."""
        return "ground" if self.side(node) == "ground" else node


@functools.lru_cache(maxsize=4096)
def _side(node: str, ground: tuple[str, ...], space: tuple[str, ...]) -> str | None:
    if any(fnmatch.fnmatchcase(node, p) for p in ground):
        return "ground"
    if any(fnmatch.fnmatchcase(node, p) for p in space):
        return "space"
    return None


# -- loading --------------------------------------------------------------------------------

SECTIONS: dict[str, type[DataclassInstance]] = {
    "nodes": NodesProfile,
    "spp": SppProfile,
    "tc": TcProfile,
    "tm": TmProfile,
    "aos": AosProfile,
    "cop1": Cop1Profile,
}
_TOP_KEYS = ("name", "description", "extends", "ports", *SECTIONS, "sdls", "mission")
_OCF = ("OCF content", ("clcw", "other", "none"))
_CHOICES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {  # -> (what, choices)
    ("spp", "time_code"): ("time code", ("none", "cuc")),
    ("tc", "cltu_mode"): ("CLTU decoding mode", ("correct", "detect")),
    ("tm", "ocf"): _OCF,
    ("aos", "ocf"): _OCF,
    ("mission", "downlink"): ("downlink frame type", MISSION_DOWNLINKS),
    ("mission", "raw_unit"): ("raw unit", RAW_UNITS),
    ("mission", "packet_counter"): ("packet counter", PACKET_COUNTERS),
}


def builtin_names() -> list[str]:
    folder = resources.files(BUILTIN_PACKAGE) / BUILTIN_DIR
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(spec: str | Path = DEFAULT_PROFILE) -> Profile:
    """A built-in profile by name, or a TOML file by path."""
    return _build(*_read(spec, ()))


def _errors(where: str) -> ErrorFactory:
    """The refusals of the profile read from ``where``."""
    return functools.partial(TomlError, f"profile {where}")


def loads_profile(text: str, where: str = "(text)") -> Profile:
    """A profile from TOML text (``extends`` names a built-in profile or a file)."""
    return _build(*_parse(text, where, where, ()))


def _read(spec: str | Path, seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The merged raw document (``extends`` applied) and where it came from."""
    text, where = _text_of(spec)
    return _parse(text, where, spec, seen)


def _parse(
    text: str, where: str, spec: str | Path, seen: tuple[str, ...]
) -> tuple[dict[str, Any], str]:
    error = _errors(where)
    if where in seen:
        raise error("extends", f"a cycle: {' -> '.join((*seen, where))}")
    doc = parse(text, error)
    Table(doc, error).done(_TOP_KEYS)
    base = doc.pop("extends", None)
    if base is None:
        return doc, where
    if not isinstance(base, str):
        raise error("extends", f"must be a name or a path, got {kind_of(base)}")
    parent, _ = _read(_relative(base, spec), (*seen, where))
    return _merge(parent, doc), where


def _relative(base: str, spec: str | Path) -> str | Path:
    """``extends`` names a built-in profile, or a file next to the profile that says it."""
    if base in builtin_names():
        return base
    if isinstance(spec, Path) or Path(str(spec)).suffix == ".toml":
        return Path(spec).parent / base
    return base


def _text_of(spec: str | Path) -> tuple[str, str]:
    spec_s = str(spec)
    looks_like_file = isinstance(spec, Path) or spec_s.endswith(".toml") or "/" in spec_s
    if not looks_like_file:
        resource = resources.files(BUILTIN_PACKAGE) / BUILTIN_DIR / f"{spec_s}.toml"
        if resource.is_file():
            return resource.read_text("utf-8"), f"{spec_s} (built-in)"
        path = Path(spec_s)
        if not path.is_file():
            raise ConfigError(
                "profile",
                spec_s,
                f"no built-in profile of that name ({', '.join(builtin_names())}) and no such file",
            )
    path = Path(spec_s)
    try:
        return path.read_text("utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("profile", spec_s, f"cannot read it: {exc}") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _build(doc: dict[str, Any], where: str) -> Profile:
    error = _errors(where)
    top = Table(doc, error)
    default = Profile()
    kwargs: dict[str, Any] = {
        "source": where,
        "name": top.text("name", default.name),
        "description": top.text("description", default.description),
        "ports": _ports(top.table("ports")),
    }
    for section, cls in SECTIONS.items():
        kwargs[section] = _section(top.table(section), section, cls)
    kwargs["sdls"] = _sdls(top.table("sdls"))
    kwargs["mission"] = _mission(top.table("mission"))
    profile = Profile(**kwargs)
    profile = _frames_alone(doc, profile)
    _check(error, profile)
    return profile


def _mission(t: Table) -> MissionProfile:
    """``[mission]``; ``linkstack_apids = []`` says that no APID is linkstack's."""
    if t.has("downlink") and t.raw("downlink") == "uslp":
        raise t.error("downlink", "USLP recordings are not read yet: 'tm' or 'aos'")
    return _section(t, "mission", MissionProfile)


def _apids(t: Table, key: str) -> frozenset[int]:
    """A set of APIDs (numbers and "lo-hi" ranges); ``[]``: none."""
    ranges = _idset(t, key).ranges if t.raw(key) != [] else ()
    if ranges and ranges[-1][1] > 2047:
        raise t.error(key, f"APIDs are 0..2047, got {ranges[-1][1]}")
    return frozenset(a for lo, hi in ranges for a in range(lo, hi + 1))


def _frames_alone(doc: dict[str, Any], profile: Profile) -> Profile:
    """A section that names no Reed-Solomon code (``rs_e``, ``rs_depth``) and whose
    frame length fits none at the default depth describes frames alone: no RS."""
    changes: dict[str, Any] = {}
    uncoded: dict[str, str] = {}
    for name in ("tm", "aos"):
        raw = doc.get(name)
        given = isinstance(raw, dict) and ("rs_e" in raw or "rs_depth" in raw)
        ch: CaduProfile = getattr(profile, name)
        why = _rs_fits(ch) if ch.rs_e and not given else None
        if why:
            uncoded[name] = why
            changes[name] = dataclasses.replace(ch, rs_e=0)
    return dataclasses.replace(profile, **changes, uncoded=uncoded) if changes else profile


def _rs_fits(ch: CaduProfile) -> str | None:
    """None when the section's frame length fits its Reed-Solomon code, else why not."""
    k = 255 - 2 * ch.rs_e
    if ch.frame_length % ch.rs_depth or ch.frame_length > k * ch.rs_depth:
        return (
            f"RS(255,{k}) at depth {ch.rs_depth} needs a multiple of {ch.rs_depth} "
            f"up to {k * ch.rs_depth}, got {ch.frame_length}"
        )
    return None


def _ports(t: Table) -> dict[str, tuple[int, ...]]:
    ports: dict[str, tuple[int, ...]] = {layer: (port,) for layer, port in PORTS.items()}
    for layer in t:
        if layer not in PORTS:
            raise t.unknown(layer, PORTS, "layer")
        if isinstance(t.raw(layer), list):
            ranges = _idset(t, layer).ranges
            if not ranges or ranges[0][0] < 1 or ranges[-1][1] > 65535:
                raise t.error(layer, "must list ports in 1..65535")
            ports[layer] = tuple(p for lo, hi in ranges for p in range(lo, hi + 1))
        else:
            ports[layer] = (t.integer(layer, PORTS[layer], 1, 65535),)
    owner: dict[int, str] = {}
    for layer, mine in ports.items():
        for port in mine:
            if port in owner:
                raise t.error("", f"{owner[port]} and {layer} share port {port}")
            owner[port] = layer
    return ports


S = TypeVar("S", bound="DataclassInstance")


def _section(t: Table, section: str, cls: type[S]) -> S:
    """A section's dataclass: each key (in file order) read as the type of its default."""
    defaults = cls()
    known = [f.name for f in fields(cls)]
    kwargs: dict[str, Any] = {}
    for key in t:
        if key not in known:
            raise t.unknown(key, known)
        default = getattr(defaults, key)
        if isinstance(default, IdSet):
            kwargs[key] = _idset(t, key)
        elif isinstance(default, frozenset):
            kwargs[key] = _apids(t, key)
        elif isinstance(default, tuple):
            kwargs[key] = t.strings(key, default)
        elif isinstance(default, bytes):
            kwargs[key] = _octets(t, key, default)
        elif isinstance(default, bool):
            kwargs[key] = t.boolean(key, default)
        elif isinstance(default, float):
            kwargs[key] = t.number(key, default)
        elif isinstance(default, int):
            kwargs[key] = t.integer(key, default)
        elif (section, key) in _CHOICES:
            what, choices = _CHOICES[section, key]
            kwargs[key] = t.choice(key, default, choices, what)
        else:
            kwargs[key] = t.text(key, default)
    return cls(**kwargs)


_SDLS_SERVICES = ("clear", "auth", "enc", "aead")
_SA_KEYS = {  # SecurityAssociation's fields -> the profile's keys, for its refusals
    "spi": "spi",
    "service": "service",
    "vcid": "vcid",
    "iv_len": "iv_len",
    "sn_len": "sn_len",
    "pad_len": "pad_len",
    "mac_len": "mac_len",
    "acs": "auth",
    "abm": "abm",
    "akid": "key_id",
    "ekid": "key_id",
}


def _sdls(t: Table) -> SdlsProfile:
    """``[sdls]``: ``[[sdls.tc]]``, ``[[sdls.tm]]``, ``[[sdls.aos]]``, one table an SA."""
    kinds = {kind: tuple(_sa(sa) for sa in t.tables(kind)) for kind in ("tc", "tm", "aos")}
    t.done()
    for kind, sas in kinds.items():
        spis = [sa.spi for sa in sas]
        if len(set(spis)) != len(spis):
            raise t.error(kind, f"an SPI is given twice: {spis}")
    return SdlsProfile(tc=kinds["tc"], tm=kinds["tm"], aos=kinds["aos"])


def _sa(t: Table) -> SecurityAssociation:
    """One ``[[sdls.KIND]]`` table: an SA as the codec checks it, its refusals named
    by this table's keys."""
    from linkstack.ccsds.sdls import SecurityAssociation  # noqa: PLC0415 - the codec, when used

    if not t.has("spi"):
        raise t.error("spi", "every security association needs its SPI (1..65534)")
    spi = t.integer("spi", 0, 1, 0xFFFE)
    service = t.choice("service", "aead", _SDLS_SERVICES, "service")
    encrypts, authenticates = service in ("enc", "aead"), service in ("auth", "aead")
    key_id = t.integer("key_id", spi, 0, 0xFFFF)
    vcid = t.integer("vcid", 0, 0, 63) if t.has("vcid") else None
    acs = t.choice("auth", "CMAC_AES256", ("CMAC_AES256", "HMAC_SHA256"), "MAC")
    iv_len = t.integer("iv_len", 12 if encrypts else 0, 0, 16)
    sn_len = t.integer("sn_len", 0, 0, 16)
    pad_len = t.integer("pad_len", 0, 0, 4)
    mac_len = t.integer("mac_len", 16 if authenticates else 0, 0, 64)
    abm = t.choice("abm", "all", ("all", "none"), "authentication bit mask")
    t.done()
    with t.wrapping(_SA_KEYS):
        sa = SecurityAssociation(
            spi,
            service,
            ecs="AES256_GCM" if encrypts else None,
            acs=acs if service == "auth" else None,
            ekid=key_id if encrypts else None,
            akid=key_id if service == "auth" else None,
            iv_len=iv_len,
            sn_len=sn_len,
            pad_len=pad_len,
            mac_len=mac_len,
            abm=abm,
            vcid=vcid,
        )
    return sa


def _octets(t: Table, key: str, default: bytes) -> bytes:
    text = t.text(key, default.hex())
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise t.error(key, f"must be hexadecimal, got {text!r}") from None
    if not 1 <= len(raw) <= 31:
        raise t.error(key, f"must be 1..31 octets, got {len(raw)}")
    return raw


def _idset(t: Table, key: str) -> IdSet:
    value = t.raw(key)
    if not isinstance(value, list):
        raise t.error(key, f"must be a list of numbers and 'lo-hi' ranges, got {kind_of(value)}")
    ranges = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            lo = hi = item
        elif isinstance(item, str):
            lo_s, sep, hi_s = item.partition("-")
            try:
                lo = int(lo_s, 0)
                hi = int(hi_s, 0) if sep else lo
            except ValueError:
                raise t.error(key, f"{item!r} is not a number or 'lo-hi'") from None
        else:
            raise t.error(key, f"{item!r} is not a number or 'lo-hi'")
        if not 0 <= lo <= hi:
            raise t.error(key, f"{item!r} is not a range lo <= hi of non-negatives")
        ranges.append((lo, hi))
    return IdSet(tuple(sorted(ranges)))


def _check(error: ErrorFactory, p: Profile) -> None:
    """Refuse parameters that no channel can have (as the codecs would)."""

    def bad(name: str, rule: str) -> None:
        raise error(name, rule)

    if not 7 <= p.tc.max_frame_length <= 1024:
        bad("tc.max_frame_length", f"must be 7..1024, got {p.tc.max_frame_length}")
    for name, ch in (("tm", p.tm), ("aos", p.aos)):
        if ch.rs_e not in (0, 8, 16):
            bad(f"{name}.rs_e", f"must be 16, 8 or 0 (none), got {ch.rs_e}")
        if ch.rs_depth not in INTERLEAVING_DEPTHS:
            bad(f"{name}.rs_depth", f"must be one of {INTERLEAVING_DEPTHS}, got {ch.rs_depth}")
        if not 8 <= ch.frame_length <= 2048:
            bad(f"{name}.frame_length", f"must be 8..2048, got {ch.frame_length}")
        why = _rs_fits(ch) if ch.rs_e else None
        if why:
            bad(f"{name}.frame_length", why)
        why = _frame_holds_its_fields(name, ch)
        if why:
            bad(f"{name}.frame_length", why)
    if not 0 <= p.tm.secondary_header_len <= 63:
        bad("tm.secondary_header_len", f"must be 0..63, got {p.tm.secondary_header_len}")
    if not -1 <= p.tm.idle_vcid <= 7:
        bad("tm.idle_vcid", f"must be 0..7 or -1 (none), got {p.tm.idle_vcid}")
    if not -1 <= p.aos.idle_vcid <= 63:
        bad("aos.idle_vcid", f"must be 0..63 or -1 (none), got {p.aos.idle_vcid}")
    if not 0 <= p.aos.insert_zone_len <= 2000:
        bad("aos.insert_zone_len", f"must be 0..2000, got {p.aos.insert_zone_len}")
    if not 1 <= p.spp.cuc_coarse_octets <= 7 or not 0 <= p.spp.cuc_fine_octets <= 10:
        bad("spp.cuc_coarse_octets", "CUC codes have 1..7 coarse and 0..10 fine octets")
    if p.cop1.ack_latency_s < 0:
        bad("cop1.ack_latency_s", f"must be >= 0, got {p.cop1.ack_latency_s}")


def _frame_holds_its_fields(name: str, ch: CaduProfile) -> str | None:
    """None when the receivers can be built for the section's frames (the header,
    insert zone or secondary header, OCF, FECF and a data field fit), else why not."""
    from linkstack.ccsds.aos import AosConfig  # noqa: PLC0415
    from linkstack.ccsds.tm import TmConfig  # noqa: PLC0415

    ocf = ch.ocf != "none"
    try:
        if isinstance(ch, TmProfile):
            TmConfig(
                ch.frame_length, fecf=ch.fecf, ocf=ocf, secondary_header_len=ch.secondary_header_len
            )
        elif isinstance(ch, AosProfile):
            AosConfig(ch.frame_length, insert_zone_len=ch.insert_zone_len, ocf=ocf, fecf=ch.fecf)
    except LinkstackError as exc:
        return f"{ch.frame_length} octets cannot hold the {name.upper()} frame's fields ({exc})"
    return None
