"""linkstack.tomlcheck: typed getters that name the key, did-you-mean, key paths."""

from __future__ import annotations

import ast
import functools
import math
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from linkstack import tomlcheck
from linkstack.errors import ConfigError
from linkstack.tomlcheck import Table, TomlError, kind_of, parse, span

ERROR = functools.partial(TomlError, "test doc")


def doc(text: str) -> Table:
    return Table(parse(text, ERROR), ERROR)


def refusal(fn, *args, **kwargs) -> TomlError:
    with pytest.raises(TomlError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ConfigError)
    return info.value


def test_getters_return_the_value_or_the_default_and_mark_the_key_known():
    t = doc('n = 3\nx = 2\nb = true\ns = "hi"\nc = "b"\nl = ["p", "q"]')
    assert t.integer("n", 0, 1, 5) == 3 and t.integer("missing", 7) == 7
    assert t.number("x", 0.0, 0.0, 2.0) == 2.0 and isinstance(t.number("x", 0.0), float)
    assert t.boolean("b", False) is True and t.text("s", "") == "hi"
    assert t.choice("c", "a", ("a", "b")) == "b" and t.choice("none", "a", ("a", "b")) == "a"
    assert t.strings("l", None) == ("p", "q") and t.strings("none", None) is None
    assert list(t) == ["n", "x", "b", "s", "c", "l"]
    t.done()


@pytest.mark.parametrize(
    ("text", "read", "rule"),
    [
        ("v = true", lambda t: t.integer("v", 0), "must be an integer, got a boolean (true)"),
        ("v = 1.5", lambda t: t.integer("v", 0), "must be an integer, got a number (1.5)"),
        ("v = 9", lambda t: t.integer("v", 0, 1, 8), "must be in 1..8, got 9"),
        ("v = -1", lambda t: t.integer("v", 0, 0), "must be >= 0, got -1"),
        ("v = 'x'", lambda t: t.number("v", 0.0), "must be a number, got a string ('x')"),
        ("v = nan", lambda t: t.number("v", 0.0), "must be a finite number, got nan"),
        ("v = 0", lambda t: t.number("v", 1.0, 0.0, 5.0, lo_open=True), "must be in (0..5), got 0"),
        ("v = 0", lambda t: t.number("v", 1.0, 0.0, lo_open=True), "must be > 0, got 0"),
        ("v = 1", lambda t: t.boolean("v", False), "must be true or false, got a number (1)"),
        ("v = ' '", lambda t: t.text("v", "", empty=False), "must not be empty"),
        (
            "v = 'z'",
            lambda t: t.choice("v", "a", ("a", "b"), "mode"),
            "unknown mode 'z'; known: 'a', 'b'",
        ),
        ("v = 'a'", lambda t: t.strings("v", ()), "must be a list of strings, got a string ('a')"),
        (
            "v = ['a', 2]",
            lambda t: t.strings("v", ()),
            "must be a list of strings, got an array with a number (2)",
        ),
        ("v = 2026-01-01", lambda t: t.text("v", ""), "must be a string, got a date (2026-01-01)"),
    ],
)
def test_a_bad_value_is_refused_with_its_key_and_what_was_found(text, read, rule):
    err = refusal(read, doc(text))
    assert (err.field, err.rule) == ("v", rule)
    assert str(err) == f"test doc: v: {rule}"


def test_nested_tables_and_arrays_of_tables_carry_the_full_key_path():
    t = doc("[a.b]\nx = 1\n[[s]]\nm = 1\n[[s]]\nm = 2\n[[s]]\nm = 95")
    assert t.table("a").table("b").integer("x", 0) == 1
    stations = t.tables("s")
    assert [s.path for s in stations] == ["s[0]", "s[1]", "s[2]"]
    err = refusal(stations[2].number, "m", 0.0, 0.0, 90.0)
    assert (err.field, err.rule) == ("s[2].m", "must be in 0..90, got 95")
    assert refusal(doc("a = 1").table, "a").field == "a"
    assert refusal(doc("[a]\n").tables, "a").rule == "must be an array of tables ([[a]])"
    assert refusal(doc("s = [1]").tables, "s").field == "s[0]"
    assert t.table("absent").path == "absent" and t.tables("absent") == []


def test_an_unknown_key_is_refused_with_the_closest_known_one():
    t = doc("[cop1]\nfop_windw = 3\nzzz = 1")
    cop1 = t.table("cop1")
    cop1.integer("fop_window", 16)
    cop1.integer("farm_window", 64)
    err = refusal(cop1.done)
    assert err.field == "cop1.fop_windw"
    assert err.rule == (
        "unknown key (did you mean 'fop_window'?); known here: farm_window, fop_window"
    )
    assert refusal(doc("zzz = 1").done).rule == "unknown key; known here: none"
    assert refusal(doc("nme = 1").done, ["name", "ports"]).rule.startswith(
        "unknown key (did you mean 'name'?)"
    )
    assert "unknown layer (did you mean 'cltu'?)" in t.unknown("clt", ["cltu"], "layer").rule


def test_syntax_and_the_top_level_have_their_own_key_names():
    assert refusal(parse, "[a\n", ERROR).field == tomlcheck.SYNTAX
    assert refusal(Table, [1], ERROR).field == tomlcheck.TOP_LEVEL


def test_a_constructor_refusal_is_renamed_to_the_key_that_fed_it():
    t = doc("[p]\nalt_km = 1")
    p = t.table("p")

    def build(field: str):
        raise ConfigError("orbit", field, "too low")

    with pytest.raises(TomlError) as info, p.wrapping({"alt_m": "alt_km"}):
        build("alt_m")
    assert (info.value.field, info.value.rule) == ("p.alt_km", "too low")
    with pytest.raises(TomlError) as info, p.wrapping(key="tle"):
        build("eccentricity")
    assert (info.value.field, info.value.rule) == ("p.tle", "eccentricity: too low")
    own = p.error("x", "mine")
    with pytest.raises(TomlError) as info, p.wrapping({"x": "y"}):
        raise own
    assert info.value is own


def test_words_for_values_and_ranges():
    assert kind_of(datetime(2026, 1, 1, tzinfo=UTC)) == "a date-time (2026-01-01T00:00:00+00:00)"
    assert kind_of(date(2026, 1, 1)) == "a date (2026-01-01)"
    assert kind_of(time(12, 0)) == "a time (12:00:00)"
    assert (kind_of({}), kind_of([]), kind_of(False)) == (
        "a table",
        "an array",
        "a boolean (false)",
    )
    assert span(0, 90) == "in 0..90" and span(-math.inf, 5.0) == "<= 5"
    assert span(None, None) == "a number" and span(1e12, None, True) == "> 1e+12"


def test_it_imports_only_the_error_family():
    """Both the runtime and conformance use it: it must sit below them."""
    tree = ast.parse(Path(tomlcheck.__file__).read_text())
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in mods if m.split(".")[0] == "linkstack"} == {"linkstack.errors"}
