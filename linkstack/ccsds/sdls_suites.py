"""The cryptographic suites of SDLS (CCSDS 355.0-B-2 with 352.0-B-2's baseline algorithms).

Two small protocols, each bound to one key when it is made so that the key schedule
is computed once per key, not once per frame:

- :class:`Cipher` (``encrypt`` / ``decrypt``): AES-256-GCM (SP 800-38D), the
  authenticated encryption of the baseline; with ``mac_len == 0`` it is the
  encryption-only service, GCM's keystream without its tag;
- :class:`Authenticator` (``mac`` / ``verify``): AES-256-CMAC (SP 800-38B) and
  HMAC-SHA-256 (FIPS 198-1), the authentication-only service.

Every primitive is pyca/cryptography's (OpenSSL underneath): nothing here computes a
block of AES or a MAC by hand. A key is held only inside pyca's objects and by the
caller's :class:`~linkstack.ccsds.sdls_keys.Keyring`; no object here shows it in its
``repr``. Verification compares in constant time and truncates tags to the SA's MAC
field length, as SDLS allows (``stmacf_len`` in CryptoLib).
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher as _PycaCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.constant_time import bytes_eq

from linkstack.errors import ConfigError

KEY_LEN = 32  # every suite here is keyed with 256 bits
GCM_IV_LEN = 12  # the 96-bit IV: GCM's counter then starts at IV || 1, no GHASH of the IV
GCM_TAG_LEN = 16
MIN_TAG_LEN = 4  # the shortest GCM tag pyca verifies (SP 800-38D allows 4 and 8 for some uses)

Buffer = bytes | bytearray | memoryview


class MacError(Exception):
    """A MAC or GCM tag does not verify: the frame was altered or the key is wrong.
    The SDLS layer turns it into its refusal; nothing else is said, on purpose."""


class Cipher(Protocol):
    """An encryption suite bound to one key."""

    name: str

    def encrypt(self, iv: bytes, aad: Buffer, plaintext: Buffer, mac_len: int) -> bytes:
        """The ciphertext followed by the first ``mac_len`` octets of the tag."""
        ...

    def decrypt(self, iv: bytes, aad: Buffer, sealed: Buffer, mac_len: int) -> bytes:
        """The plaintext of ``sealed`` (the ciphertext followed by its ``mac_len``-octet
        tag, as :meth:`encrypt` made it and as SDLS lays them out: the MAC trailer
        follows the data), or :class:`MacError` if the tag does not verify
        (``mac_len == 0``: encryption only, nothing to verify)."""
        ...


class Authenticator(Protocol):
    """An authentication suite bound to one key."""

    name: str

    def mac(self, message: Buffer, mac_len: int) -> bytes:
        """The first ``mac_len`` octets of the MAC of ``message``."""
        ...

    def verify(self, message: Buffer, mac: Buffer) -> bool:
        """Whether ``mac`` is the (truncated) MAC of ``message``, compared in constant time."""
        ...


def _check_key(name: str, key: bytes) -> None:
    if len(key) != KEY_LEN:
        # the length only: a key never appears in a message
        raise ConfigError("sdls", "key", f"{name} takes a {KEY_LEN}-octet key, got {len(key)}")


class Aes256Gcm:
    """AES-256-GCM with a 96-bit IV (the IV SDLS sends in its security header).

    The full 16-octet tag goes through :class:`AESGCM`, the fast path; a truncated tag
    (``mac_len`` 4..15) through the ``Cipher`` API, which verifies a short tag itself.
    Encryption only (``mac_len == 0``) is GCM's keystream alone: AES-CTR from the
    counter block ``IV || 00000002``, exactly the octets GCM would produce, so that a
    peer decrypting with GCM and ignoring the tag (CryptoLib's encryption-only mode)
    reads the same plaintext.
    """

    name = "AES256_GCM"

    def __init__(self, key: bytes) -> None:
        _check_key(self.name, key)
        self._aead = AESGCM(key)
        self._aes = algorithms.AES(key)

    def __repr__(self) -> str:
        return "Aes256Gcm(<key>)"

    def _ctr(self, iv: bytes) -> _PycaCipher[modes.CTR]:
        return _PycaCipher(self._aes, modes.CTR(iv + b"\x00\x00\x00\x02"))

    def encrypt(self, iv: bytes, aad: Buffer, plaintext: Buffer, mac_len: int) -> bytes:
        _check_iv(iv)
        if mac_len == 0:
            enc = self._ctr(iv).encryptor()
            return enc.update(plaintext) + enc.finalize()
        _check_tag_len(mac_len)
        sealed = self._aead.encrypt(iv, plaintext, aad)
        return sealed if mac_len == GCM_TAG_LEN else sealed[: len(sealed) - GCM_TAG_LEN + mac_len]

    def decrypt(self, iv: bytes, aad: Buffer, sealed: Buffer, mac_len: int) -> bytes:
        _check_iv(iv)
        if mac_len == 0:
            dec = self._ctr(iv).decryptor()
            return dec.update(sealed) + dec.finalize()
        _check_tag_len(mac_len)
        if len(sealed) < mac_len:
            raise MacError("shorter than its tag")
        try:
            if mac_len == GCM_TAG_LEN:
                return self._aead.decrypt(iv, sealed, aad)
            cut = len(sealed) - mac_len
            tag = bytes(sealed[cut:])
            ctx = _PycaCipher(self._aes, modes.GCM(iv, tag, min_tag_length=mac_len)).decryptor()
            ctx.authenticate_additional_data(aad)
            return ctx.update(sealed[:cut]) + ctx.finalize()
        except InvalidTag:
            raise MacError("the GCM tag does not verify") from None


class CmacAes256:
    """AES-256-CMAC, tag truncated to the MAC field (at most 16 octets)."""

    name = "CMAC_AES256"

    def __init__(self, key: bytes) -> None:
        _check_key(self.name, key)
        self._aes = algorithms.AES(key)

    def __repr__(self) -> str:
        return "CmacAes256(<key>)"

    def mac(self, message: Buffer, mac_len: int) -> bytes:
        c = cmac.CMAC(self._aes)
        c.update(bytes(message))
        return c.finalize()[:mac_len]

    def verify(self, message: Buffer, mac: Buffer) -> bool:
        return bool(mac) and bytes_eq(self.mac(message, len(mac)), bytes(mac))


class HmacSha256:
    """HMAC-SHA-256, tag truncated to the MAC field (at most 32 octets)."""

    name = "HMAC_SHA256"

    def __init__(self, key: bytes) -> None:
        _check_key(self.name, key)
        self._key = key

    def __repr__(self) -> str:
        return "HmacSha256(<key>)"

    def mac(self, message: Buffer, mac_len: int) -> bytes:
        h = hmac.HMAC(self._key, hashes.SHA256())
        h.update(message)
        return h.finalize()[:mac_len]

    def verify(self, message: Buffer, mac: Buffer) -> bool:
        return bool(mac) and bytes_eq(self.mac(message, len(mac)), bytes(mac))


def _check_iv(iv: bytes) -> None:
    if len(iv) != GCM_IV_LEN:
        raise ConfigError("sdls", "iv_len", f"AES-GCM takes a {GCM_IV_LEN}-octet IV, got {len(iv)}")


def _check_tag_len(mac_len: int) -> None:
    if not MIN_TAG_LEN <= mac_len <= GCM_TAG_LEN:
        raise ConfigError(
            "sdls", "mac_len", f"a GCM tag is {MIN_TAG_LEN}..{GCM_TAG_LEN} octets, got {mac_len}"
        )


# The names are CryptoLib's (its ECS and ACS enumerations), so that an SA reads alike
# on both sides.
CIPHERS: dict[str, type[Aes256Gcm]] = {"AES256_GCM": Aes256Gcm}
AUTHENTICATORS: dict[str, type[CmacAes256 | HmacSha256]] = {
    "CMAC_AES256": CmacAes256,
    "HMAC_SHA256": HmacSha256,
}
MAX_MAC_LEN = {"AES256_GCM": GCM_TAG_LEN, "CMAC_AES256": 16, "HMAC_SHA256": 32}


def make_cipher(name: str, key: bytes) -> Cipher:
    """The encryption suite ``name`` (an ECS name) bound to ``key``."""
    if name not in CIPHERS:
        raise ConfigError("sdls", "ecs", f"unknown encryption suite {name!r}; known: {[*CIPHERS]}")
    return CIPHERS[name](key)


def make_authenticator(name: str, key: bytes) -> Authenticator:
    """The authentication suite ``name`` (an ACS name) bound to ``key``."""
    if name not in AUTHENTICATORS:
        raise ConfigError(
            "sdls", "acs", f"unknown authentication suite {name!r}; known: {[*AUTHENTICATORS]}"
        )
    return AUTHENTICATORS[name](key)
