"""The keys of SDLS: a :class:`Keyring` of key id -> 32-octet key, and its key file.

Security associations name their keys by id (``ekid``, ``akid``), as CryptoLib's do;
the keys themselves live only here, never in a scenario file, a log, a status page
or a ``repr``. The key file is JSON (the format the runtime writes at first start)::

    {"format": "linkstack-sdls-keys/1", "keys": {"1": "000102...1f"}}

one key a member: key id -> 64 hexadecimal digits (32 octets),
and it must be readable by its owner only: :meth:`Keyring.from_file` refuses a file
that its group or the world may read or write (mode & 0o077), as ssh refuses such a
private key, and :meth:`Keyring.write` creates one with mode 0600.

The keyring also keeps each key's suite objects (pyca's, with the key schedule done),
so that a frame costs no key setup; replacing or removing a key drops them.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Mapping

from linkstack.ccsds.sdls_suites import (
    KEY_LEN,
    Authenticator,
    Cipher,
    make_authenticator,
    make_cipher,
)
from linkstack.errors import ConfigError

MAX_KEY_ID = 0xFFFF
KEY_FILE_FORMAT = "linkstack-sdls-keys/1"


class Keyring:
    """Key id -> key. ``repr`` and ``str`` show the ids only."""

    def __init__(self) -> None:
        self._keys: dict[int, bytes] = {}
        self._ciphers: dict[tuple[int, str], Cipher] = {}
        self._authenticators: dict[tuple[int, str], Authenticator] = {}

    # -- making one --------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, keys: Mapping[int, bytes]) -> Keyring:
        ring = cls()
        for kid, key in keys.items():
            ring.set(kid, key)
        return ring

    @classmethod
    def generate(cls, ids: Iterable[int]) -> Keyring:
        """Fresh random keys (the operating system's CSPRNG) for ``ids``."""
        return cls.from_mapping({kid: secrets.token_bytes(KEY_LEN) for kid in ids})

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a key file; refuse one that others may read (see the module docstring)."""
        where = str(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise ConfigError(where, "key file", f"cannot open it: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())  # the mode of the file read, not of a path swapped since
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(where, "key file", "is not a regular file")
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                raise ConfigError(
                    where,
                    "mode",
                    f"the key file has mode {mode:04o}: others may read it; it must be "
                    f"readable by its owner only (chmod 600 {where})",
                )
            raw = f.read()
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # the message names a line and column, never the text there
            raise ConfigError(where, "key file", f"not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
            raise ConfigError(where, "format", f"not a key file of format {KEY_FILE_FORMAT!r}")
        table = doc.get("keys")
        if not isinstance(table, dict):
            raise ConfigError(where, "keys", 'the key file has no "keys" object')
        ring = cls()
        for name, value in table.items():
            kid = _key_id(where, name)
            if not isinstance(value, str):
                raise ConfigError(where, f"keys.{name}", "must be a string of hexadecimal digits")
            try:
                key = bytes.fromhex(value)
            except ValueError:
                raise ConfigError(where, f"keys.{name}", "is not hexadecimal") from None
            if len(key) != KEY_LEN:
                raise ConfigError(
                    where, f"keys.{name}", f"must be {KEY_LEN} octets, got {len(key)}"
                )
            ring.set(kid, key)
        return ring

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the key file, created with mode 0600; an existing file is never
        overwritten (its keys may be the only copy)."""
        doc = {
            "format": KEY_FILE_FORMAT,
            "keys": {str(kid): self._keys[kid].hex() for kid in sorted(self._keys)},
        }
        if os.path.lexists(path):
            raise ConfigError(str(path), "key file", "exists already; not overwritten")
        # Written whole beside it, then linked into place: link() refuses an existing
        # name, so a process that starts at the same moment (a ground and a sat daemon
        # sharing the file) either makes the file or finds it complete, never half.
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".sdls-keys-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")
            os.chmod(tmp, 0o600)  # mkstemp's mode already; whatever the umask made of it
            os.link(tmp, path)
        except FileExistsError:
            raise ConfigError(str(path), "key file", "exists already; not overwritten") from None
        finally:
            os.unlink(tmp)

    # -- using one ---------------------------------------------------------------------------------

    def set(self, kid: int, key: bytes) -> None:
        """Add or replace key ``kid`` (rekeying): the suites made with the old key go."""
        kid = _key_id("keyring", kid)
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_LEN:
            size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
            raise ConfigError("keyring", f"key {kid}", f"must be {KEY_LEN} octets, got {size}")
        self._keys[kid] = bytes(key)
        self._drop_suites(kid)

    def remove(self, kid: int) -> None:
        self._keys.pop(kid, None)
        self._drop_suites(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def ids(self) -> list[int]:
        return sorted(self._keys)

    def key(self, kid: int) -> bytes:
        """The key itself (KeyError if absent): for the suites and a key file, nothing else."""
        return self._keys[kid]

    def cipher(self, kid: int, name: str) -> Cipher:
        """Encryption suite ``name`` with key ``kid``, made once (KeyError if no such key)."""
        suite = self._ciphers.get((kid, name))
        if suite is None:
            suite = self._ciphers[kid, name] = make_cipher(name, self._keys[kid])
        return suite

    def authenticator(self, kid: int, name: str) -> Authenticator:
        """Authentication suite ``name`` with key ``kid``, made once (KeyError if no such key)."""
        suite = self._authenticators.get((kid, name))
        if suite is None:
            suite = self._authenticators[kid, name] = make_authenticator(name, self._keys[kid])
        return suite

    def _drop_suites(self, kid: int) -> None:
        for suites in (self._ciphers, self._authenticators):
            for k in [k for k in suites if k[0] == kid]:
                del suites[k]

    def __repr__(self) -> str:
        return f"Keyring(ids={self.ids})"

    __str__ = __repr__


def _key_id(where: str, name: object) -> int:
    """A key id from a JSON member name (a string of digits) or an int, 0..65535."""
    kid = int(name) if isinstance(name, str) and name.isascii() and name.isdigit() else name
    if not isinstance(kid, int) or isinstance(kid, bool) or not 0 <= kid <= MAX_KEY_ID:
        raise ConfigError(where, "key id", f"must be an integer 0..{MAX_KEY_ID}, got {name!r}")
    return kid
