"""The SDLS keyring and its key file: readable by its owner only, keys never shown."""

from __future__ import annotations

import json
import os

import pytest

from linkstack.ccsds.sdls_keys import KEY_FILE_FORMAT, Keyring
from linkstack.errors import ConfigError

KEY = bytes(range(32))


def write(path, doc, mode=0o600):
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_file_others_may_read_or_write_is_refused_naming_the_path_and_mode(tmp_path, mode):
    path = write(
        tmp_path / "keys.json", {"format": KEY_FILE_FORMAT, "keys": {"1": KEY.hex()}}, mode
    )
    with pytest.raises(ConfigError) as err:
        Keyring.from_file(path)
    assert str(path) in str(err.value) and f"{mode:04o}" in str(err.value)
    assert err.value.field == "mode" and "chmod 600" in str(err.value)
    assert KEY.hex() not in str(err.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_file_is_read(tmp_path, mode):
    doc = {"format": KEY_FILE_FORMAT, "keys": {"1": KEY.hex(), "130": (b"\xaa" * 32).hex()}}
    ring = Keyring.from_file(write(tmp_path / "keys.json", doc, mode))
    assert ring.ids == [1, 130] and ring.key(1) == KEY and 130 in ring and len(ring) == 2


def test_write_makes_a_0600_file_that_reads_back_and_never_overwrites(tmp_path):
    ring = Keyring.generate([1, 2, 7])
    path = tmp_path / "sdls-keys.json"
    old = os.umask(0)  # even with a permissive umask
    try:
        ring.write(path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    back = Keyring.from_file(path)
    assert back.ids == [1, 2, 7] and all(back.key(k) == ring.key(k) for k in ring.ids)
    assert len({ring.key(k) for k in ring.ids}) == 3  # random, not repeated
    with pytest.raises(ConfigError, match="exists already"):
        Keyring.generate([1]).write(path)
    assert Keyring.from_file(path).key(1) == ring.key(1)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not json", "not JSON"),
        ({"keys": {"1": KEY.hex()}}, "format"),
        ({"format": KEY_FILE_FORMAT}, "keys"),
        ({"format": KEY_FILE_FORMAT, "keys": {"one": KEY.hex()}}, "key id"),
        ({"format": KEY_FILE_FORMAT, "keys": {"1": "zz" * 32}}, "not hexadecimal"),
        ({"format": KEY_FILE_FORMAT, "keys": {"1": KEY[:16].hex()}}, "32 octets, got 16"),
        ({"format": KEY_FILE_FORMAT, "keys": {"1": 5}}, "hexadecimal digits"),
    ],
)
def test_a_broken_key_file_is_refused_without_showing_a_key(tmp_path, content, why):
    path = write(tmp_path / "k.json", content)
    with pytest.raises(ConfigError, match=why) as err:
        Keyring.from_file(path)
    assert str(path) in str(err.value) and KEY.hex() not in str(err.value)


def test_a_missing_file_or_a_link_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot open"):
        Keyring.from_file(tmp_path / "none.json")
    target = write(tmp_path / "real.json", {"format": KEY_FILE_FORMAT, "keys": {}})
    (tmp_path / "link.json").symlink_to(target)
    with pytest.raises(ConfigError, match="cannot open"):
        Keyring.from_file(tmp_path / "link.json")


def test_repr_shows_ids_only_and_rekeying_drops_the_old_suites():
    ring = Keyring.from_mapping({3: KEY, 9: KEY[::-1]})
    assert repr(ring) == str(ring) == "Keyring(ids=[3, 9])"
    assert KEY.hex() not in repr(ring)
    old = ring.cipher(3, "AES256_GCM")
    assert ring.cipher(3, "AES256_GCM") is old  # made once
    ring.set(3, bytes(32))
    assert ring.cipher(3, "AES256_GCM") is not old
    ring.remove(9)
    with pytest.raises(KeyError):
        ring.authenticator(9, "CMAC_AES256")
    with pytest.raises(ConfigError, match="32 octets"):
        ring.set(4, b"short")
    with pytest.raises(ConfigError, match="key id"):
        ring.set(-1, KEY)
