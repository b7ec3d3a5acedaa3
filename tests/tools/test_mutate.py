"""make mutate's mutant generator (linkstack/tools/mutate): what it changes, and the keys
that the reviewed list of equivalent mutants names them by."""

import ast
from pathlib import Path

from linkstack.tools.mutate import runner
from linkstack.tools.mutate.__main__ import EQUIVALENTS, MODULES, load_equivalents
from linkstack.tools.mutate.mutants import mutants, mutated_source

ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''"""doc"""
LIMIT = 10


def check(n: int, flag: bool = True) -> int:
    """doc"""
    if n < LIMIT and flag:
        total = n + 1
        return total
    keep = n  # pragma: no mutate
    return keep
'''


def descriptions(source: str) -> set[tuple[str, str]]:
    return {(m.operator, m.description) for m in mutants("m.py", source)}


def test_the_operators_and_what_they_change():
    got = descriptions(SOURCE)
    for expected in [
        ("compare", "< -> <="),
        ("boolop", "and -> or"),
        ("binop", "+ -> -"),
        ("constant", "10 -> 11"),
        ("constant", "10 -> 9"),
        ("return", "value -> None"),
        ("delete", "statement"),
    ]:
        assert expected in got
    # the default True of the signature is a constant; docstrings and annotations are not
    assert ("constant", "True -> False") in got
    assert not any("doc" in m.line_text for m in mutants("m.py", SOURCE))


def test_each_mutant_changes_the_code_once_and_compiles():
    original = ast.unparse(ast.parse(SOURCE))
    every = mutants("m.py", SOURCE)
    assert len({m.key for m in every}) == len(every)
    for m in every:
        mutated = mutated_source(SOURCE, m)
        compile(mutated, "m.py", "exec")
        assert mutated != original
    less = next(m for m in mutants("m.py", SOURCE) if m.description == "< -> <=")
    assert "if n <= LIMIT and flag:" in mutated_source(SOURCE, less)


def test_a_pragma_line_is_left_alone():
    assert not any(m.line_text.startswith("keep = n") for m in mutants("m.py", SOURCE))


def test_keys_do_not_depend_on_line_numbers():
    shifted = SOURCE.replace("LIMIT = 10\n", "LIMIT = 10\nOTHER = 3\n\n")
    keys = {m.key for m in mutants("m.py", SOURCE)}
    moved = {m.key for m in mutants("m.py", shifted)}
    assert keys <= moved
    assert "check | compare < -> <= | if n < LIMIT and flag:" in keys


def test_tests_are_the_modules_own_then_those_that_import_it():
    tests = runner.tests_for(ROOT, "linkstack/ccsds/cop1/farm.py")
    assert tests[0] == "tests/ccsds/cop1/test_farm.py"
    assert "tests/ccsds/cop1/test_cop1_protocol.py" in tests
    assert not any(t.startswith("tests/daemon/") for t in tests)
    assert runner.tests_for(ROOT, "channels/rf.py")[0] == "tests/channels/test_rf.py"


def test_the_reviewed_equivalents_name_modules_that_are_scored():
    for module in load_equivalents(EQUIVALENTS):
        assert module in MODULES
