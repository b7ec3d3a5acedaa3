"""SDLS extended procedures (CCSDS 355.1-B-1): the PDUs of SA and key management, sans-I/O.

Every procedure travels as one Tag-Length-Value PDU::

    tag (1 octet):  PDU type (1 bit: 0 command, 1 reply) | user flag (1 bit: 0 the
                    standard's, 1 a mission's) | service group (2 bits) |
                    procedure identifier (4 bits)
    length (2 octets): the length of the value, in bits (355.1)
    value

The service groups and procedure identifiers, and the layout of each value, as NASA
CryptoLib (``include/crypto_config.h``, ``src/core/crypto_key_mgmt.c``,
``src/sa/internal/sa_interface_inmemory.template.c``) reads them; all fields
big-endian:

=================  ====  ====  =========================================================
procedure          SG    PID   value
=================  ====  ====  =========================================================
OTAR               00    0001  master key id (2) | IV (12) | sealed key blocks, each
                               key id (2) + key (32), AES-256-GCM under the master key
                               with no additional data | GCM tag (16)
Key Activation     00    0010  key id (2), one or more
Key Deactivation   00    0011  key id (2), one or more
Key Destruction    00    0110  key id (2), one or more
Rekey SA           01    0110  SPI (2) | key id (2) | ARSN (the SA's counter length)
Start SA           01    1011  SPI (2) | GVCID (4), one or more: TFVN (4 bits), SCID
                               (16 bits), VCID (6 bits), MAP ID (6 bits)
Stop SA            01    1110  SPI (2)
Expire SA          01    1001  SPI (2)
Set ARSN           01    1010  SPI (2) | ARSN
Read ARSN          01    0000  SPI (2); reply: SPI (2) | ARSN
SA Status Request  01    1111  SPI (2); reply: SPI (2) | last transition (1): the tag
                               of the last SA procedure applied to the SA
=================  ====  ====  =========================================================

The ARSN (anti-replay sequence number) is, as the recipient holds it, the last counter
value it accepted under the SA: the next frame must carry more (the SA's sequence
number, or for AES-GCM without one its IV).

The standard defines replies for the procedures that report (SA Status Request, Read
ARSN); the others have none: a refusal shows only in the recipient's log and alarm
flag. linkstack's recipient answers every command, so that the initiator knows at
once what happened: with the standard's reply where there is one and the procedure was
carried out, else with :class:`ProcedureResult`, a PDU of the user-defined range (user
flag 1, service group 11, procedure 1111, reply): the command's tag, an
:class:`EpStatus` and the SPI or key id it was about.

:func:`unpack` reads one PDU and checks every rule (the length field against the
octets, the value's layout for the tag); :meth:`pack` of each dataclass writes it.
Refusals are :class:`~linkstack.errors.DecodeError` (layer ``"sdls-ep"``); values out
of range are refused when a PDU is made (:class:`~linkstack.errors.EncodeError`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from linkstack.ccsds.sdls_suites import GCM_IV_LEN, GCM_TAG_LEN, KEY_LEN, Cipher
from linkstack.errors import DecodeError, EncodeError, TruncatedError, check_range

LAYER = "sdls-ep"
HEADER_LEN = 3  # tag, length
MAX_ARSN_LEN = 16  # octets: the longest counter field an SA has (sdls.MAX_FIELD_LEN)
KEY_BLOCK_LEN = 2 + KEY_LEN  # OTAR: key id, key
OTAR_FIXED_LEN = 2 + GCM_IV_LEN + GCM_TAG_LEN  # master key id, IV, tag

# service groups (2 bits)
KEY_MANAGEMENT = 0b00
SA_MANAGEMENT = 0b01
MONITORING_CONTROL = 0b11


class EpStatus(IntEnum):
    """What the recipient made of a command, in :class:`ProcedureResult`."""

    DONE = 0
    MALFORMED = 1  # the PDU does not read (unpack refused it)
    NOT_SUPPORTED = 2  # a procedure this recipient does not carry out, or a reply
    UNKNOWN_SPI = 3  # no SA of that SPI here
    SA_STATE = 4  # the SA is not in a state the procedure applies to
    SA_IN_USE = 5  # the SA that carried the command may not be changed by it
    GVCID = 6  # Start SA: a channel the SA cannot protect here
    ARSN_LENGTH = 7  # the ARSN is not as long as the SA's counter field
    UNKNOWN_KEY = 8  # no key of that id here
    KEY_STATE = 9  # the key is not in a state the procedure applies to
    KEY_IN_USE = 10  # the key is used by another SA, or by another link's SAs
    MASTER_KEY = 11  # a master key may not be used or changed this way
    OTAR_MAC = 12  # the sealed keys do not verify under the master key
    UNAUTHENTICATED = 13  # the SA that carried the command does not authenticate


@dataclass(frozen=True, slots=True)
class Tag:
    """The PDU tag: type, user flag, service group, procedure identifier."""

    reply: bool
    user: bool
    service_group: int
    procedure: int

    def __post_init__(self) -> None:
        check_range(LAYER, "service_group", self.service_group, 0, 3)
        check_range(LAYER, "procedure", self.procedure, 0, 15)

    @property
    def octet(self) -> int:
        return self.reply << 7 | self.user << 6 | self.service_group << 4 | self.procedure

    @classmethod
    def of(cls, octet: int) -> Tag:
        return cls(bool(octet & 0x80), bool(octet & 0x40), (octet >> 4) & 3, octet & 0x0F)


@dataclass(frozen=True, slots=True)
class Gvcid:
    """A global virtual channel (or MAP) an SA applies to, as Start SA carries it."""

    tfvn: int
    scid: int
    vcid: int
    map_id: int = 0

    def __post_init__(self) -> None:
        check_range(LAYER, "tfvn", self.tfvn, 0, 15)
        check_range(LAYER, "scid", self.scid, 0, 0xFFFF)
        check_range(LAYER, "vcid", self.vcid, 0, 63)
        check_range(LAYER, "map_id", self.map_id, 0, 63)

    def pack(self) -> bytes:
        return (self.tfvn << 28 | self.scid << 12 | self.vcid << 6 | self.map_id).to_bytes(4, "big")

    @classmethod
    def unpack(cls, octets: bytes) -> Gvcid:
        word = int.from_bytes(octets, "big")
        return cls(word >> 28, (word >> 12) & 0xFFFF, (word >> 6) & 0x3F, word & 0x3F)


_SPI = struct.Struct(">H")


def _check_spi(where: str, spi: int) -> None:
    check_range(LAYER, f"{where}.spi", spi, 0, 0xFFFF)


def _check_key_id(where: str, kid: int) -> None:
    check_range(LAYER, f"{where}.key_id", kid, 0, 0xFFFF)


def _check_arsn(where: str, arsn: bytes) -> None:
    if not isinstance(arsn, bytes) or len(arsn) > MAX_ARSN_LEN:
        raise EncodeError(LAYER, f"{where}.arsn", f"must be 0..{MAX_ARSN_LEN} octets")


def _bad(field: str, rule: str) -> DecodeError:
    return DecodeError(LAYER, field, rule)


def _spi_only(name: str, value: bytes) -> int:
    if len(value) != 2:
        raise _bad(name, f"the value is an SPI (2 octets), got {len(value)}")
    return int(_SPI.unpack(value)[0])


def _key_ids(name: str, value: bytes) -> tuple[int, ...]:
    if not value or len(value) % 2:
        raise _bad(name, f"the value is one or more key ids (2 octets each), got {len(value)}")
    return tuple(int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2))


class _Pdu:
    """What every PDU shares: its tag (class attributes) and the TLV it packs to."""

    __slots__ = ()
    SERVICE_GROUP: ClassVar[int]
    PROCEDURE: ClassVar[int]
    REPLY: ClassVar[bool] = False
    USER: ClassVar[bool] = False
    NAME: ClassVar[str]

    @classmethod
    def tag(cls) -> Tag:
        return Tag(cls.REPLY, cls.USER, cls.SERVICE_GROUP, cls.PROCEDURE)

    def value(self) -> bytes:
        raise NotImplementedError

    def pack(self) -> bytes:
        value = self.value()
        bits = 8 * len(value)
        if bits > 0xFFFF:
            raise EncodeError(LAYER, "length", f"{len(value)} octets do not fit 16 bits of bits")
        return bytes((self.tag().octet,)) + bits.to_bytes(2, "big") + value


# -- SA management --------------------------------------------------------------------------


class _SpiOnly(_Pdu):
    """An SA procedure whose value is the SPI alone."""

    __slots__ = ()
    spi: int

    def __post_init__(self) -> None:
        _check_spi(self.NAME, self.spi)

    def value(self) -> bytes:
        return _SPI.pack(self.spi)

    @classmethod
    def from_value(cls, value: bytes) -> Self:
        return cls(_spi_only(cls.NAME, value))  # type: ignore[call-arg]  # each has spi


@dataclass(frozen=True, slots=True)
class StartSa(_Pdu):
    """Start SA: the SA (keyed) becomes operational on the channels given."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b1011
    NAME = "start_sa"
    spi: int
    gvcids: tuple[Gvcid, ...]

    def __post_init__(self) -> None:
        _check_spi(self.NAME, self.spi)
        if not self.gvcids or not all(isinstance(g, Gvcid) for g in self.gvcids):
            raise EncodeError(LAYER, "start_sa.gvcids", "one or more Gvcid")

    def value(self) -> bytes:
        return _SPI.pack(self.spi) + b"".join(g.pack() for g in self.gvcids)

    @classmethod
    def from_value(cls, value: bytes) -> StartSa:
        if len(value) < 6 or (len(value) - 2) % 4:
            raise _bad(cls.NAME, f"the value is an SPI and 4-octet GVCIDs, got {len(value)} octets")
        gvcids = tuple(Gvcid.unpack(value[i : i + 4]) for i in range(2, len(value), 4))
        return cls(_SPI.unpack_from(value)[0], gvcids)


@dataclass(frozen=True, slots=True)
class StopSa(_SpiOnly):
    """Stop SA: the SA (operational) goes back to keyed."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b1110
    NAME = "stop_sa"
    spi: int


@dataclass(frozen=True, slots=True)
class ExpireSa(_SpiOnly):
    """Expire SA: the SA (keyed) loses its key: unkeyed."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b1001
    NAME = "expire_sa"
    spi: int


@dataclass(frozen=True, slots=True)
class RekeySa(_Pdu):
    """Rekey SA: the SA (unkeyed) takes key ``key_id`` and the ARSN it counts from."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b0110
    NAME = "rekey_sa"
    spi: int
    key_id: int
    arsn: bytes

    def __post_init__(self) -> None:
        _check_spi(self.NAME, self.spi)
        _check_key_id(self.NAME, self.key_id)
        _check_arsn(self.NAME, self.arsn)

    def value(self) -> bytes:
        return _SPI.pack(self.spi) + self.key_id.to_bytes(2, "big") + self.arsn

    @classmethod
    def from_value(cls, value: bytes) -> RekeySa:
        if not 4 <= len(value) <= 4 + MAX_ARSN_LEN:
            raise _bad(
                cls.NAME,
                f"the value is an SPI, a key id and 0..{MAX_ARSN_LEN} octets of ARSN, "
                f"got {len(value)} octets",
            )
        return cls(_SPI.unpack_from(value)[0], int.from_bytes(value[2:4], "big"), value[4:])


@dataclass(frozen=True, slots=True)
class SetArsn(_Pdu):
    """Set ARSN: the SA's anti-replay counter (the last value taken) is set."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b1010
    NAME = "set_arsn"
    spi: int
    arsn: bytes

    def __post_init__(self) -> None:
        _check_spi(self.NAME, self.spi)
        _check_arsn(self.NAME, self.arsn)

    def value(self) -> bytes:
        return _SPI.pack(self.spi) + self.arsn

    @classmethod
    def from_value(cls, value: bytes) -> SetArsn:
        if not 2 <= len(value) <= 2 + MAX_ARSN_LEN:
            raise _bad(
                cls.NAME,
                f"the value is an SPI and 0..{MAX_ARSN_LEN} octets of ARSN, got {len(value)}",
            )
        return cls(_SPI.unpack_from(value)[0], value[2:])


@dataclass(frozen=True, slots=True)
class ReadArsn(_SpiOnly):
    """Read ARSN: asks for the SA's anti-replay counter (:class:`ReadArsnReply`)."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b0000
    NAME = "read_arsn"
    spi: int


@dataclass(frozen=True, slots=True)
class ReadArsnReply(_Pdu):
    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b0000
    REPLY = True
    NAME = "read_arsn_reply"
    spi: int
    arsn: bytes

    def __post_init__(self) -> None:
        _check_spi(self.NAME, self.spi)
        _check_arsn(self.NAME, self.arsn)

    def value(self) -> bytes:
        return _SPI.pack(self.spi) + self.arsn

    @classmethod
    def from_value(cls, value: bytes) -> ReadArsnReply:
        if not 2 <= len(value) <= 2 + MAX_ARSN_LEN:
            raise _bad(
                cls.NAME, f"the value is an SPI and 0..{MAX_ARSN_LEN} octets, got {len(value)}"
            )
        return cls(_SPI.unpack_from(value)[0], value[2:])


@dataclass(frozen=True, slots=True)
class SaStatusRequest(_SpiOnly):
    """SA Status Request: asks for the SA's last transition (:class:`SaStatusReply`)."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b1111
    NAME = "sa_status"
    spi: int


# the state an SA is in after each SA procedure (355.1's SA state machine)
SA_UNKEYED, SA_KEYED, SA_OPERATIONAL = "unkeyed", "keyed", "operational"
STATE_AFTER = {
    RekeySa.PROCEDURE: SA_KEYED,
    StartSa.PROCEDURE: SA_OPERATIONAL,
    StopSa.PROCEDURE: SA_KEYED,
    ExpireSa.PROCEDURE: SA_UNKEYED,
}


@dataclass(frozen=True, slots=True)
class SaStatusReply(_Pdu):
    """The SA's last transition: the tag of the last SA procedure applied to it
    (:attr:`state` reads the state it left the SA in)."""

    SERVICE_GROUP = SA_MANAGEMENT
    PROCEDURE = 0b1111
    REPLY = True
    NAME = "sa_status_reply"
    spi: int
    transition: int

    def __post_init__(self) -> None:
        _check_spi(self.NAME, self.spi)
        check_range(LAYER, "sa_status_reply.transition", self.transition, 0, 255)

    @property
    def state(self) -> str | None:
        """The state the last transition left the SA in: "unkeyed", "keyed" or
        "operational"; None for a transition that is no SA procedure of the standard's."""
        tag = Tag.of(self.transition)
        if tag.user or tag.reply or tag.service_group != SA_MANAGEMENT:
            return None
        return STATE_AFTER.get(tag.procedure)

    def value(self) -> bytes:
        return _SPI.pack(self.spi) + bytes((self.transition,))

    @classmethod
    def from_value(cls, value: bytes) -> SaStatusReply:
        if len(value) != 3:
            raise _bad(cls.NAME, f"the value is an SPI and one octet, got {len(value)}")
        return cls(_SPI.unpack_from(value)[0], value[2])


# -- key management ---------------------------------------------------------------------------


class _KeyList(_Pdu):
    __slots__ = ()
    SERVICE_GROUP = KEY_MANAGEMENT
    key_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.key_ids:
            raise EncodeError(LAYER, f"{self.NAME}.key_ids", "one or more key ids")
        for kid in self.key_ids:
            _check_key_id(self.NAME, kid)

    def value(self) -> bytes:
        return b"".join(kid.to_bytes(2, "big") for kid in self.key_ids)

    @classmethod
    def from_value(cls, value: bytes) -> Self:
        return cls(_key_ids(cls.NAME, value))  # type: ignore[call-arg]  # each has key_ids


@dataclass(frozen=True, slots=True)
class KeyActivation(_KeyList):
    """Key Activation: pre-active keys become active (usable by SAs)."""

    PROCEDURE = 0b0010
    NAME = "key_activation"
    key_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class KeyDeactivation(_KeyList):
    """Key Deactivation: active keys are retired (no SA may take them again)."""

    PROCEDURE = 0b0011
    NAME = "key_deactivation"
    key_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class KeyDestruction(_KeyList):
    """Key Destruction: deactivated keys are erased."""

    PROCEDURE = 0b0110
    NAME = "key_destruction"
    key_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Otar(_Pdu):
    """Over-the-air rekeying: new keys sealed with AES-256-GCM under a master key.

    ``sealed`` is the key blocks (key id, key) encrypted, ``mac`` the GCM tag; there
    is no additional data. :meth:`seal` makes one, :meth:`open` reads the keys back
    (it raises :class:`~linkstack.ccsds.sdls_suites.MacError` when the tag does not
    verify: a wrong master key, or an altered PDU)."""

    SERVICE_GROUP = KEY_MANAGEMENT
    PROCEDURE = 0b0001
    NAME = "otar"
    master_key_id: int
    iv: bytes
    sealed: bytes
    mac: bytes

    def __post_init__(self) -> None:
        check_range(LAYER, "otar.master_key_id", self.master_key_id, 0, 0xFFFF)
        if not isinstance(self.iv, bytes) or len(self.iv) != GCM_IV_LEN:
            raise EncodeError(LAYER, "otar.iv", f"must be {GCM_IV_LEN} octets")
        if not isinstance(self.mac, bytes) or len(self.mac) != GCM_TAG_LEN:
            raise EncodeError(LAYER, "otar.mac", f"must be {GCM_TAG_LEN} octets")
        if (
            not isinstance(self.sealed, bytes)
            or not self.sealed
            or len(self.sealed) % KEY_BLOCK_LEN
        ):
            raise EncodeError(
                LAYER, "otar.sealed", f"must be one or more key blocks of {KEY_BLOCK_LEN} octets"
            )

    @property
    def key_count(self) -> int:
        return len(self.sealed) // KEY_BLOCK_LEN

    @classmethod
    def seal(cls, master_key_id: int, iv: bytes, keys: Mapping[int, bytes], master: Cipher) -> Otar:
        """The OTAR PDU that carries ``keys`` (key id -> 32-octet key) sealed with
        ``master`` (the master key's AES-256-GCM) under ``iv``, which must never be
        used twice with that master key."""
        if not keys:
            raise EncodeError(LAYER, "otar.keys", "one or more keys")
        blocks = bytearray()
        for kid, key in keys.items():
            _check_key_id(cls.NAME, kid)
            if not isinstance(key, bytes) or len(key) != KEY_LEN:
                raise EncodeError(LAYER, f"otar.keys.{kid}", f"must be {KEY_LEN} octets")
            blocks += kid.to_bytes(2, "big") + key
        out = master.encrypt(iv, b"", bytes(blocks), GCM_TAG_LEN)
        return cls(master_key_id, iv, out[:-GCM_TAG_LEN], out[-GCM_TAG_LEN:])

    def open(self, master: Cipher) -> dict[int, bytes]:
        """The keys carried, key id -> key (``MacError`` if the tag does not verify;
        ``DecodeError`` if a key id comes twice)."""
        blocks = master.decrypt(self.iv, b"", self.sealed + self.mac, GCM_TAG_LEN)
        keys: dict[int, bytes] = {}
        for at in range(0, len(blocks), KEY_BLOCK_LEN):
            kid = int.from_bytes(blocks[at : at + 2], "big")
            if kid in keys:
                raise _bad("otar.keys", f"key {kid} comes twice")
            keys[kid] = bytes(blocks[at + 2 : at + KEY_BLOCK_LEN])
        return keys

    def value(self) -> bytes:
        return self.master_key_id.to_bytes(2, "big") + self.iv + self.sealed + self.mac

    @classmethod
    def from_value(cls, value: bytes) -> Otar:
        n = len(value) - OTAR_FIXED_LEN
        if n <= 0 or n % KEY_BLOCK_LEN:
            raise _bad(
                cls.NAME,
                f"the value is a master key id, a {GCM_IV_LEN}-octet IV, one or more "
                f"{KEY_BLOCK_LEN}-octet key blocks and a {GCM_TAG_LEN}-octet tag, "
                f"got {len(value)} octets",
            )
        iv_end = 2 + GCM_IV_LEN
        return cls(
            int.from_bytes(value[:2], "big"),
            value[2:iv_end],
            value[iv_end : len(value) - GCM_TAG_LEN],
            value[len(value) - GCM_TAG_LEN :],
        )


# -- linkstack's result of a command ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcedureResult(_Pdu):
    """What became of a command (the module docstring): its ``command`` tag octet, the
    :class:`EpStatus` and the SPI or key id it was about (``subject``, 0 if none)."""

    SERVICE_GROUP = MONITORING_CONTROL
    PROCEDURE = 0b1111
    REPLY = True
    USER = True
    NAME = "procedure_result"
    command: int
    status: EpStatus
    subject: int = 0

    def __post_init__(self) -> None:
        check_range(LAYER, "procedure_result.command", self.command, 0, 255)
        if not isinstance(self.status, EpStatus):
            raise EncodeError(LAYER, "procedure_result.status", "must be an EpStatus")
        check_range(LAYER, "procedure_result.subject", self.subject, 0, 0xFFFF)

    @property
    def done(self) -> bool:
        return self.status is EpStatus.DONE

    def value(self) -> bytes:
        return bytes((self.command, self.status)) + self.subject.to_bytes(2, "big")

    @classmethod
    def from_value(cls, value: bytes) -> ProcedureResult:
        if len(value) != 4:
            raise _bad(cls.NAME, f"the value is 4 octets, got {len(value)}")
        try:
            status = EpStatus(value[1])
        except ValueError:
            raise _bad(cls.NAME, f"unknown status {value[1]}") from None
        return cls(value[0], status, int.from_bytes(value[2:4], "big"))


Command = (
    StartSa
    | StopSa
    | ExpireSa
    | RekeySa
    | SetArsn
    | ReadArsn
    | SaStatusRequest
    | Otar
    | KeyActivation
    | KeyDeactivation
    | KeyDestruction
)
Reply = ReadArsnReply | SaStatusReply | ProcedureResult
Pdu = Command | Reply

PDU_TYPES: tuple[type[Pdu], ...] = (
    StartSa,
    StopSa,
    ExpireSa,
    RekeySa,
    SetArsn,
    ReadArsn,
    ReadArsnReply,
    SaStatusRequest,
    SaStatusReply,
    Otar,
    KeyActivation,
    KeyDeactivation,
    KeyDestruction,
    ProcedureResult,
)
BY_TAG: dict[int, type[Pdu]] = {cls.tag().octet: cls for cls in PDU_TYPES}


def read_header(buf: bytes) -> tuple[Tag, int]:
    """The tag and the value's length in octets of the PDU at the start of ``buf``."""
    if len(buf) < HEADER_LEN:
        raise TruncatedError(LAYER, "header", f"a PDU starts with 3 octets, got {len(buf)}")
    bits = buf[1] << 8 | buf[2]
    if bits % 8:
        raise _bad("length", f"{bits} bits is not a whole number of octets")
    return Tag.of(buf[0]), bits // 8


def unpack(buf: bytes) -> Pdu:
    """The one PDU ``buf`` holds (nothing may follow it)."""
    buf = bytes(buf)
    tag, length = read_header(buf)
    have = len(buf) - HEADER_LEN
    if have < length:
        raise TruncatedError(LAYER, "value", f"the length says {length} octets, {have} follow")
    if have > length:
        raise _bad("value", f"the length says {length} octets, {have} follow")
    cls = BY_TAG.get(tag.octet)
    if cls is None:
        raise _bad("tag", f"{tag.octet:#04x} ({_describe(tag)}) is no procedure read here")
    return cls.from_value(buf[HEADER_LEN:])


def _describe(tag: Tag) -> str:
    kind = "reply" if tag.reply else "command"
    who = "user-defined" if tag.user else "standard"
    return f"{who} {kind}, service group {tag.service_group:02b}, procedure {tag.procedure:04b}"
