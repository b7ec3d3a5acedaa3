"""COP-1 pieces that FARM-1 and FOP-1 share (CCSDS 232.1-B-2).

- The two control commands carried in Type-BC frames (232.1-B-2 §4.1.3,
  232.0-B-4 §4.1.3.3): **Unlock**, one octet ``00``, and **Set V(R)**, three
  octets ``82 00 V(R)``. Anything else is refused with a :class:`DecodeError`.
- Frame sequence numbers are 8 bits: every comparison of N(S), V(R), V(S), N(R)
  and NN(R) is modulo 256 (:func:`seq_distance`).

The state machines themselves are in :mod:`linkstack.ccsds.cop1.farm` and
:mod:`linkstack.ccsds.cop1.fop`, the CLCW in :mod:`linkstack.ccsds.cop1.clcw`, their runtime
in :mod:`linkstack.runtime.cop1_link`.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkstack.errors import DecodeError, TruncatedError, check_range

UNLOCK_CODE = 0x00
SET_VR_CODE = 0x82
SEQ_MODULO = 256


@dataclass(frozen=True, slots=True)
class Unlock:
    """The Unlock control command: takes FARM-1 out of Lockout."""

    def pack(self) -> bytes:
        return bytes([UNLOCK_CODE])


@dataclass(frozen=True, slots=True)
class SetVr:
    """The Set V(R) control command: sets FARM-1's next expected N(S)."""

    vr: int

    def __post_init__(self) -> None:
        check_range("cop1", "vr", self.vr, 0, 255)

    def pack(self) -> bytes:
        return bytes([SET_VR_CODE, 0x00, self.vr])


ControlCommand = Unlock | SetVr


def unpack_control_command(buf: bytes | bytearray | memoryview) -> ControlCommand:
    """Decode the data field of a Type-BC frame into one of the two control commands."""
    n = len(buf)
    if n == 0:
        raise TruncatedError(
            "cop1", "control_command", "empty: a control command has 1 or 3 octets"
        )
    code = buf[0]
    if code == UNLOCK_CODE:
        if n != 1:
            raise DecodeError("cop1", "length", f"Unlock is 1 octet (00), got {n}")
        return Unlock()
    if code == SET_VR_CODE:
        if n < 3:
            raise TruncatedError("cop1", "length", f"Set V(R) is 3 octets (82 00 V(R)), got {n}")
        if n > 3:
            raise DecodeError("cop1", "length", f"Set V(R) is 3 octets (82 00 V(R)), got {n}")
        if buf[1] != 0:
            raise DecodeError(
                "cop1", "control_command", f"Set V(R) second octet must be 00, got {buf[1]:02x}"
            )
        return SetVr(buf[2])
    raise DecodeError(
        "cop1",
        "control_command",
        f"unknown control command {code:02x}: Unlock is 00, Set V(R) is 82 00 V(R)",
    )


def seq_distance(later: int, earlier: int) -> int:
    """How far ``later`` is ahead of ``earlier`` on the modulo-256 sequence circle (0..255)."""
    return (later - earlier) % SEQ_MODULO
