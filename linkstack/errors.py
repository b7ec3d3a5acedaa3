"""The error family of linkstack.

Every decoder refuses bad input with a :class:`DecodeError` (or a subclass) that
names the layer, the field and the rule that was broken, so that a daemon can log
it, count it and carry on. Encoders refuse out-of-range field values with an
:class:`EncodeError`. Both are ``ValueError`` subclasses so that callers that only
know the standard library still catch them.
"""

from __future__ import annotations


class LinkstackError(Exception):
    """Base of every error linkstack raises on purpose."""


class FieldError(LinkstackError):
    """An error about one field of something: ``where`` (the layer, the module or
    the object), ``field``, and ``rule`` (a sentence saying what was expected and
    what was found). The message is ``"where: field: rule"``."""

    def __init__(self, where: str, field: str, rule: str) -> None:
        self.where = where
        self.field = field
        self.rule = rule
        super().__init__(f"{where}: {field}: {rule}")

    @property
    def layer(self) -> str:
        return self.where

    # keep pickling (multiprocessing, logging) working
    def __reduce__(self) -> tuple[type[FieldError], tuple[str, str, str]]:
        return (type(self), (self.where, self.field, self.rule))


class DecodeError(FieldError, ValueError):
    """A received unit breaks a rule of its standard.

    ``layer`` is the protocol layer ("spp", "cuc", "tm", "tc", "aos", ...),
    ``field`` the header field or part of the unit at fault, ``rule`` a human
    sentence that says what was expected and what was found.
    """


class TruncatedError(DecodeError):
    """The unit ends before a field that the header says is there."""


class ChecksumError(DecodeError):
    """A frame error control field (CRC) does not match the frame."""


class EncodeError(FieldError, ValueError):
    """A value handed to an encoder does not fit its field."""


def check_range(layer: str, field: str, value: int, lo: int, hi: int) -> int:
    """Return ``value`` if ``lo <= value <= hi``, else raise :class:`EncodeError`."""
    if not isinstance(value, int) or (isinstance(value, bool) and hi > 1):
        raise EncodeError(layer, field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise EncodeError(layer, field, f"must be in {lo}..{hi}, got {value}")
    return value


class ConfigError(FieldError, ValueError):
    """A configuration or model parameter is impossible (a negative altitude, an
    elevation mask above 90 degrees, an unknown band): names where and why."""


class SdlsError(DecodeError):
    """A frame refused by Space Data Link Security (CCSDS 355.0-B-2).

    ``field`` (also ``reason``) is why, one of :data:`SDLS_REASONS`: "spi_unknown"
    (no security association of that SPI on this link), "mac" (the MAC or GCM tag does
    not verify: altered, forged, or the wrong key), "replay" (a sequence number or IV
    already accepted), "window" (one too far ahead of the last accepted), "key_missing"
    (the SA's key is not in the keyring), "length" (the frame's size does not fit its
    header or SA), "header" (a header field breaks its standard), "fecf" (the frame's
    CRC is wrong: damage on the link, see :class:`SdlsChecksumError`).
    """

    @property
    def reason(self) -> str:
        return self.field


class SdlsChecksumError(SdlsError, ChecksumError):
    """The FECF of a protected frame is wrong, checked before any security processing.

    Both an :class:`SdlsError` (refused by the SDLS layer, reason "fecf") and a
    :class:`ChecksumError` (bit errors on the link, not an attack: no alarm)."""


SDLS_REASONS = (
    "spi_unknown",
    "mac",
    "replay",
    "window",
    "key_missing",
    "length",
    "header",
    "fecf",
)
