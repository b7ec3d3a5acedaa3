"""Small helpers shared by the tests."""

from linkstack.ccsds.crc import crc16_ccitt


def with_octet(raw: bytes, index: int, value: int) -> bytes:
    """``raw`` with octet ``index`` set to ``value`` and the FECF made valid again, so
    that a decoder gets past the CRC and has to find the broken field itself."""
    buf = bytearray(raw)
    buf[index] = value
    buf[-2:] = crc16_ccitt(bytes(buf[:-2])).to_bytes(2, "big")
    return bytes(buf)
