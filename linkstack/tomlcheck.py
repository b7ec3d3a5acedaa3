"""Reading a TOML configuration file with every refusal naming its key.

Scenario files (:mod:`linkstack.runtime.scenario`) and conformance profiles
(:mod:`linkstack.capture.mission_profile`) read their TOML through one
:class:`Table` per TOML table: typed getters (:meth:`Table.integer`,
:meth:`Table.number`, :meth:`Table.boolean`, :meth:`Table.text`,
:meth:`Table.choice`, :meth:`Table.strings`) that take the default and the
allowed range, nested tables (:meth:`Table.table`) and arrays of tables
(:meth:`Table.tables`) that carry the dotted key path (``links.uplink.band``,
``stations[2].elevation_mask_deg``), and a final :meth:`Table.done` that refuses
every key nobody asked for, suggesting the closest known one (a typo must not
fall back to a default silently).

A refusal is a :class:`TomlError` (a :class:`~linkstack.errors.ConfigError`),
built by the ``error`` factory the document was opened with, from the key's full
path and a rule that says what was expected and what was found::

    top = Table(tomllib.loads(text), functools.partial(TomlError, "profile my.toml"))
    length = top.table("tm").integer("frame_length", 1115, 8, 2048)

This module knows nothing of what the documents mean: it imports only the error
family, so that every layer may use it.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import Any, TypeVar

from linkstack.errors import ConfigError, FieldError

TOP_LEVEL = "(top level)"  # the key path of an error about the whole document
SYNTAX = "(syntax)"  # the key path of an error about the TOML itself


class TomlError(ConfigError):
    """A key of a TOML document refused: ``where`` names the document, ``field`` is
    the key's full dotted path, ``rule`` says why."""


D = TypeVar("D")  # a default handed back as it is

# (key path, rule) -> the error to raise; the path is "" for the top level itself
ErrorFactory = Callable[[str, str], TomlError]


def parse(text: str, error: ErrorFactory) -> dict[str, Any]:
    """The document in ``text``, or the error that says where its TOML is broken."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(SYNTAX, f"not valid TOML: {exc}") from None


def kind_of(value: Any) -> str:
    """What a TOML value is, for a message: ``a number (3)``, ``a string ('x')``."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, datetime):
        return f"a date-time ({value.isoformat()})"
    if isinstance(value, date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, time):
        return f"a time ({value.isoformat()})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def span(lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    """An allowed range in words: ``in 0..90``, ``in (0..3600)``, ``>= 1``, ``> 0``."""
    lo_txt = None if lo is None or lo == -math.inf else f"{lo:g}"
    hi_txt = None if hi is None or hi == math.inf else f"{hi:g}"
    if lo_txt is not None and hi_txt is not None:
        return f"in {'(' if lo_open else ''}{lo_txt}..{hi_txt}{')' if lo_open else ''}"
    if lo_txt is not None:
        return f"{'>' if lo_open else '>='} {lo_txt}"
    if hi_txt is not None:
        return f"<= {hi_txt}"
    return "a number"


class Table:
    """One TOML table being read.

    ``path`` is its dotted key path in the document ("" for the top level). Each
    getter marks its key as known, returns the default when the key is absent, and
    raises ``error(path.key, rule)`` when the value has the wrong type or is out of
    range; :meth:`done` then refuses the keys that no getter asked for.
    """

    def __init__(self, data: Any, error: ErrorFactory, path: str = "") -> None:
        self._error = error
        self.path = path
        if not isinstance(data, dict):
            raise self.error("", f"must be a table, got {kind_of(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    # -- paths and errors -----------------------------------------------------------------
    def key(self, key: str) -> str:
        """The full dotted path of ``key`` in this table ("": the table itself)."""
        return f"{self.path}.{key}" if self.path and key else (self.path or key)

    def error(self, key: str, rule: str) -> TomlError:
        """The error to raise about ``key`` of this table ("": the table itself)."""
        return self._error(self.key(key) or TOP_LEVEL, rule)

    def unknown(self, key: str, known: Iterable[str], what: str = "key") -> TomlError:
        """The error for a ``key`` that is not one of ``known``, with the closest
        known one as a suggestion."""
        names = sorted(known)
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return self.error(key, f"unknown {what}{hint}; known here: {', '.join(names) or 'none'}")

    # -- reading ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        """The keys present, in the order the file gives them."""
        return iter(list(self.data))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as TOML gave it (unchecked), or ``default``; marks the key known."""
        self.used.add(key)
        return self.data.get(key, default)

    def number(
        self,
        key: str,
        default: float,
        lo: float = -math.inf,
        hi: float = math.inf,
        *,
        lo_open: bool = False,
    ) -> float:
        """A finite number (an integer is taken as a float) in ``lo..hi``; ``lo_open``
        excludes ``lo`` itself."""
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {kind_of(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        low_ok = value > lo if lo_open else value >= lo
        if not (low_ok and value <= hi):
            raise self.error(key, f"must be {span(lo, hi, lo_open)}, got {value:g}")
        return value

    def integer(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        """An integer (not a boolean, not a float) in ``lo..hi``."""
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {kind_of(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(key, f"must be {span(lo, hi)}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {kind_of(value)}")
        return value

    def text(self, key: str, default: str, *, empty: bool = True) -> str:
        """A string; ``empty=False`` refuses one that is empty or only blanks."""
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {kind_of(value)}")
        if not empty and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def choice(self, key: str, default: str, choices: Collection[str], what: str = "value") -> str:
        """A string that is one of ``choices``; ``what`` names them in the message."""
        value = self.text(key, default)
        if value not in choices:
            known = ", ".join(repr(c) for c in choices)
            raise self.error(key, f"unknown {what} {value!r}; known: {known}")
        return value

    def strings(self, key: str, default: D, what: str = "a list of strings") -> tuple[str, ...] | D:
        """A list of strings, as a tuple (the default is returned as it is);
        ``what`` says what the list holds, for the message."""
        value = self.raw(key, default)
        if key not in self.data:
            return default
        if not isinstance(value, list):
            raise self.error(key, f"must be {what}, got {kind_of(value)}")
        for item in value:
            if not isinstance(item, str):
                raise self.error(key, f"must be {what}, got an array with {kind_of(item)}")
        return tuple(value)

    def table(self, key: str) -> Table:
        """The table under ``key`` (an empty one when absent)."""
        return Table(self.raw(key, {}), self._error, self.key(key))

    def tables(self, key: str) -> list[Table]:
        """The array of tables under ``key`` (``[[key]]``; empty when absent), each
        with its index in its path: ``stations[2]``."""
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be an array of tables ([[{self.key(key)}]])")
        return [Table(v, self._error, f"{self.key(key)}[{i}]") for i, v in enumerate(value)]

    def done(self, known: Iterable[str] | None = None) -> None:
        """Refuse the first key (in file order) that is not known: one of ``known``,
        or else one that a getter asked for."""
        names = set(self.used if known is None else known)
        for key in self.data:
            if key not in names:
                raise self.unknown(key, names)

    @contextmanager
    def wrapping(self, names: dict[str, str] | None = None, key: str = "") -> Iterator[None]:
        """Re-raise a :class:`~linkstack.errors.FieldError` of a constructor as this
        table's error, naming the key: ``names`` maps the constructor's field names to
        this table's keys; a field not there is reported under ``key`` with its own
        name in the rule. A :class:`TomlError` passes unchanged."""
        try:
            yield
        except TomlError:
            raise
        except FieldError as exc:
            mapped = (names or {}).get(exc.field)
            if mapped is not None:
                raise self.error(mapped, exc.rule) from None
            raise self.error(key, f"{exc.field}: {exc.rule}") from None
