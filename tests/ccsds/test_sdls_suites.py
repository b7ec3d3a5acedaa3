"""The SDLS suites against NIST's known answers (shipped by the cryptography_vectors
package): AES-256-GCM from CAVS 14.0 (every record with a 96-bit IV, the IV SDLS
carries, at every tag length), AES-256-CMAC from SP 800-38B; HMAC-SHA-256 against the
standard library's. CryptoLib's frames (test_sdls.py) check the same suites in place."""

from __future__ import annotations

import hmac as std_hmac
from hashlib import sha256

import cryptography
import cryptography_vectors
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.sdls_suites import (
    Aes256Gcm,
    CmacAes256,
    HmacSha256,
    MacError,
    make_authenticator,
    make_cipher,
)
from linkstack.errors import ConfigError


def rsp_records(path: str) -> list[dict[str, str]]:
    """The records of a CAVS .rsp file, each with its section's [Name = value] lines."""
    records: list[dict[str, str]] = []
    section: dict[str, str] = {}
    current: dict[str, str] | None = None
    with cryptography_vectors.open_vector_file(path, "r") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                current = None
                continue
            if line.startswith("["):
                name, _, value = line.strip("[]").partition("=")
                section[name.strip()] = value.strip()
                continue
            if line == "FAIL":
                assert current is not None
                current["FAIL"] = "1"
                continue
            name, _, value = line.partition("=")
            if name.strip() in ("Count", "COUNT"):
                current = dict(section)
                records.append(current)
            assert current is not None, line
            current[name.strip()] = value.strip()
    return records


def gcm_records(path: str) -> list[dict[str, str]]:
    return [r for r in rsp_records(path) if r["Keylen"] == "256" and r["IVlen"] == "96"]


GCM_ENCRYPT = gcm_records("ciphers/AES/GCM/gcmEncryptExtIV256.rsp")
GCM_DECRYPT = gcm_records("ciphers/AES/GCM/gcmDecrypt256.rsp")


def test_the_vectors_are_of_the_cryptography_we_run():
    assert cryptography_vectors.__version__ == cryptography.__version__
    # every tag length, with and without plaintext and additional data
    assert {r["Taglen"] for r in GCM_ENCRYPT} == {"128", "120", "112", "104", "96", "64", "32"}
    assert len(GCM_ENCRYPT) == 2625 and len(GCM_DECRYPT) == 2625
    assert {r["PTlen"] for r in GCM_ENCRYPT} >= {"0", "128", "408"}
    assert sum("FAIL" in r for r in GCM_DECRYPT) == 1317  # altered tag, CT or AAD: refused


def h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("tag_len", [128, 120, 112, 104, 96, 64, 32])
def test_gcm_encrypts_as_nist_says(tag_len):
    records = [r for r in GCM_ENCRYPT if r["Taglen"] == str(tag_len)]
    assert len(records) == 375
    for r in records:
        gcm = Aes256Gcm(h(r["Key"]))
        sealed = gcm.encrypt(h(r["IV"]), h(r["AAD"]), h(r["PT"]), tag_len // 8)
        assert sealed == h(r["CT"]) + h(r["Tag"]), r["Count"]
        assert gcm.decrypt(h(r["IV"]), h(r["AAD"]), sealed, tag_len // 8) == h(r["PT"])
        # encryption only: GCM's ciphertext without its tag
        assert gcm.encrypt(h(r["IV"]), b"", h(r["PT"]), 0) == h(r["CT"])
        assert gcm.decrypt(h(r["IV"]), b"", h(r["CT"]), 0) == h(r["PT"])


def test_gcm_decrypts_and_refuses_as_nist_says():
    refused = 0
    for r in GCM_DECRYPT:
        gcm = Aes256Gcm(h(r["Key"]))
        sealed = h(r["CT"]) + h(r["Tag"])
        tag_len = int(r["Taglen"]) // 8
        if "FAIL" in r:
            with pytest.raises(MacError):
                gcm.decrypt(h(r["IV"]), h(r["AAD"]), sealed, tag_len)
            refused += 1
        else:
            assert gcm.decrypt(h(r["IV"]), h(r["AAD"]), sealed, tag_len) == h(r["PT"]), r["Count"]
    assert refused == sum("FAIL" in r for r in GCM_DECRYPT)


CMAC_256 = rsp_records("CMAC/nist-800-38b-aes256.txt")


def test_cmac_is_sp_800_38b():
    assert len(CMAC_256) == 4  # SP 800-38B's AES-256 examples: 0, 16, 40 and 64 octets
    for r in CMAC_256:
        cmac = CmacAes256(h(r["KEY"]))
        assert cmac.mac(h(r["MESSAGE"]), 16) == h(r["OUTPUT"])
        assert cmac.verify(h(r["MESSAGE"]), h(r["OUTPUT"]))
        assert cmac.verify(h(r["MESSAGE"]), h(r["OUTPUT"])[:8])  # a truncated MAC field
        assert not cmac.verify(h(r["MESSAGE"]) + b"\x00", h(r["OUTPUT"]))


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=1200), st.integers(1, 32))
def test_hmac_sha256_is_the_standard_librarys(key, message, mac_len):
    """RFC 4231's cases have no 32-octet key (SDLS keys are 32 octets), so the check is
    against Python's own HMAC."""
    want = std_hmac.new(key, message, sha256).digest()
    suite = HmacSha256(key)
    assert suite.mac(message, mac_len) == want[:mac_len]
    assert suite.verify(message, want[:mac_len])
    assert not suite.verify(message, bytes(b ^ 0x80 for b in want[:mac_len]))


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300), st.binary(max_size=40))
def test_gcm_is_pycas_aesgcm_and_refuses_any_change(key, plaintext, aad):
    iv = bytes(range(12))
    gcm = Aes256Gcm(key)
    sealed = gcm.encrypt(iv, aad, plaintext, 16)
    assert sealed == AESGCM(key).encrypt(iv, plaintext, aad)
    for changed_aad, changed in (
        (aad + b"!", sealed),
        (aad, sealed[:-1] + bytes([sealed[-1] ^ 1])),
    ):
        with pytest.raises(MacError):
            gcm.decrypt(iv, changed_aad, changed, 16)


def test_no_key_in_any_repr_and_key_sizes_checked():
    key = bytes(range(32))
    for suite in (Aes256Gcm(key), CmacAes256(key), HmacSha256(key)):
        assert key.hex() not in repr(suite) and "00010203" not in repr(suite)
    with pytest.raises(ConfigError, match="32-octet key, got 16"):
        Aes256Gcm(bytes(16))
    with pytest.raises(ConfigError, match="IV"):
        Aes256Gcm(key).encrypt(bytes(16), b"", b"x", 16)
    with pytest.raises(ConfigError, match="tag"):
        Aes256Gcm(key).encrypt(bytes(12), b"", b"x", 2)
    with pytest.raises(ConfigError, match="unknown"):
        make_cipher("AES256_CBC", key)
    with pytest.raises(ConfigError, match="unknown"):
        make_authenticator("HMAC_SHA512", key)
    assert make_cipher("AES256_GCM", key).name == "AES256_GCM"
    assert make_authenticator("HMAC_SHA256", key).name == "HMAC_SHA256"
