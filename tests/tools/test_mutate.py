"""make mutate's mutant generator (linkstack/tools/mutate): what it changes, and the keys
that the reviewed list of equivalent mutants names them by."""

import ast
from pathlib import Path

import pytest

from linkstack.tools.mutate import runner
from linkstack.tools.mutate.__main__ import (
    EQUIVALENTS,
    MODULES,
    load_equivalents,
    main,
    parse_lines,
    score_module,
)
from linkstack.tools.mutate.mutants import mutants, mutated_source

ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''"""doc"""
LIMIT = 10
"""doc: an attribute's, after it"""


def check(n: int, flag: bool = True) -> int:
    """doc"""
    if n < LIMIT and flag:
        total = n + 1
        return total
    keep = n  # pragma: no mutate
    return keep


def nothing(n: int) -> None:
    if n:
        return None
    return None
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
    # a return None that ends a function is no mutant (deleted, None all the same); an
    # early one is
    ends = [
        m for m in mutants("m.py", SOURCE) if m.scope == "nothing" and m.line_text == "return None"
    ]
    assert [SOURCE.splitlines()[m.line - 1] for m in ends] == ["        return None"]


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


def test_the_reviewed_equivalents_name_mutants_the_code_still_has():
    """An edit that removes or rewrites a reviewed line leaves its entry naming nothing:
    the reason no longer speaks for any mutant, so the entry must go or be reviewed."""
    for module, reviewed in load_equivalents(EQUIVALENTS).items():
        keys = {m.key for m in mutants(module, (ROOT / module).read_text(encoding="utf-8"))}
        assert set(reviewed) <= keys, (module, sorted(set(reviewed) - keys))


def test_a_mutant_knows_its_statements_lines_and_whether_coverage_can_see_them():
    source = (
        "import numba\n"
        "\n"
        "def f(n):\n"
        "    total = max(\n"
        "        n,\n"
        "        3,\n"
        "    )\n"
        "    return total\n"
        "\n"
        "@numba.njit\n"
        "def g(n):\n"
        "    return n + 1\n"
    )
    every = mutants("m.py", source)
    three = next(m for m in every if m.description == "3 -> 4")
    assert (three.line, three.lines) == (6, (4, 6))  # from its statement's first line
    deleted = next(m for m in every if m.line == 4 and m.operator == "delete")
    assert deleted.lines == (4, 7)
    assert three.traced and not next(m for m in every if m.description == "+ -> -").traced


def test_the_line_map_picks_the_tests_that_execute_a_mutant():
    source = "X = 1\n\ndef f(n):\n    return n + X\n\ndef g(n):\n    return n - 1\n"
    every = mutants("m.py", source)
    plus = next(m for m in every if m.description == "+ -> -")
    minus = next(m for m in every if m.description == "- -> +")
    module_level = next(m for m in every if m.description == "1 -> 2" and m.line == 1)
    lines = runner.LineMap(
        {1: frozenset({""}), 4: frozenset({"t.py::b", "t.py::a"})}, {"t.py::a": 2.0, "t.py::b": 30}
    )
    assert lines.tests_for(plus) == (["t.py::a", "t.py::b"], False)
    assert lines.timeout_s(["t.py::a"], 300.0) == 66.0  # 3 x 2 s, and a minute to start
    assert lines.timeout_s(["t.py::a", "t.py::b"], 100.0) == 100.0  # never over the whole
    assert lines.tests_for(minus) == ([], False)  # no test runs it: a survivor, not run
    assert lines.tests_for(module_level) == ([], True)  # at import: the whole selection
    both = runner.LineMap({1: frozenset({"", "t.py::c"})}, {})
    assert both.tests_for(module_level) == (["t.py::c"], True)  # t.py::c first, then all


# A project of one module: a test calls f, another runs g in a child process, none
# calls h. Measured for real, under coverage.py, then mutated: three pytest processes
# (a few seconds on 2 cores), so in make test-slow.
TINY = {
    "pyproject.toml": "[tool.pytest.ini_options]\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": (
        "LIMIT = 3\n\n\ndef f(n):\n    return n < LIMIT\n\n\n"
        "def g(n):\n    return n * 2\n\n\ndef h(n):\n    return n - 1\n"
    ),
    "tests/test_mod.py": (
        "import subprocess, sys\n"
        "from pkg.mod import f\n\n\n"
        "def test_f():\n    assert f(2) and not f(3)\n\n\n"
        "def test_g_in_a_child():\n"
        "    code = 'import sys; from pkg.mod import g; sys.exit(g(2) != 4)'\n"
        "    assert subprocess.run([sys.executable, '-c', code]).returncode == 0\n"
    ),
}


@pytest.mark.slow
def test_measured_selection_runs_only_the_tests_that_execute_the_mutant(tmp_path):
    for name, text in TINY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    module, tests = "pkg/mod.py", ["tests/test_mod.py"]
    source = TINY[module]
    workspace = runner.Workspace(tmp_path)
    try:
        lines, _, failed = workspace.measure(module, tests, timeout_s=60)
        assert lines is not None and failed == []
        assert lines.contexts[5] == {"tests/test_mod.py::test_f"}
        assert lines.contexts[9] == {"tests/test_mod.py::test_g_in_a_child"}  # the child's
        assert "" in lines.contexts[1] and 13 not in lines.contexts
        every = mutants(module, source)
        by = {m.description: m for m in every}
        outcomes = {
            d: workspace.run(by[d], source, tests, 60, lines)
            for d in ("< -> <=", "* -> /", "- -> +", "3 -> 4")
        }
    finally:
        workspace.close()
    assert outcomes["< -> <="].killed and outcomes["* -> /"].killed
    assert outcomes["3 -> 4"].killed  # at import: the whole selection ran
    assert outcomes["- -> +"].how == "not covered" and not outcomes["- -> +"].killed


def test_lines_takes_numbers_and_ranges_and_refuses_the_rest():
    assert parse_lines("80") == {80}
    assert parse_lines("80, 160-162,5") == {5, 80, 160, 161, 162}
    for bad in ["", "x", "0", "9-3", "1-2-3", "-4"]:
        with pytest.raises(ValueError):
            parse_lines(bad)


def test_list_with_lines_prints_only_the_mutants_on_those_lines(capsys):
    module = "linkstack/ccsds/cop1/clcw.py"
    every = mutants(module, (ROOT / module).read_text(encoding="utf-8"))
    line = every[len(every) // 2].line
    assert main([module, "--list", "--lines", str(line)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{module}:{m.line}\t{m.key}" for m in every if m.line == line]
    with pytest.raises(SystemExit):
        main([module, "--list", "--lines", "3-1"])


def test_lines_without_a_mutant_are_not_scored(capsys):
    module = "linkstack/ccsds/cop1/clcw.py"
    assert score_module(module, [], {}, None, 0, lines_only={10**6}) == (None, [])
    assert "no mutants on the lines asked for; not scored" in capsys.readouterr().out


def test_a_mutant_runs_its_first_files_tests_alone_then_the_rest():
    tests = ["tests/test_own.py", "tests/test_big.py", "tests/test_other.py"]
    ids = ["tests/test_big.py::b", "tests/test_own.py::a1", "tests/test_own.py::a2"]
    assert runner.stages(tests, ids, whole=False) == [
        (["tests/test_own.py"], ["tests/test_own.py::a1", "tests/test_own.py::a2"], False),
        (["tests/test_big.py"], ["tests/test_big.py::b"], False),
    ]
    # lines that also run at import: the first file's tests, then all with ids first
    assert runner.stages(tests, ids, whole=True) == [
        (["tests/test_own.py"], ["tests/test_own.py::a1", "tests/test_own.py::a2"], False),
        (tests, ids, True),
    ]
    only_big = ["tests/test_big.py::b"]
    assert runner.stages(tests, only_big, whole=False) == [(["tests/test_big.py"], only_big, False)]
    assert runner.stages(tests, [], whole=True) == [(tests, [], True)]
    # a file whose name starts like another's is not taken for it
    assert runner.stages(["t/test_a.py", "t/test_a.py2"], ["t/test_a.py2::x"], False) == [
        (["t/test_a.py2"], ["t/test_a.py2::x"], False)
    ]


@pytest.mark.slow
def test_a_test_that_fails_under_coverage_is_named(tmp_path):
    """The measured run says which test failed (a flaky one under load, say), so that
    a user knows why every mutant then runs the whole selection."""
    files = {**TINY, "tests/test_broken.py": "def test_broken():\n    assert 1 == 2\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    workspace = runner.Workspace(tmp_path)
    try:
        measured = workspace.measure(
            "pkg/mod.py", ["tests/test_mod.py", "tests/test_broken.py"], timeout_s=60
        )
    finally:
        workspace.close()
    assert measured.lines is None
    assert measured.failed == ["FAILED tests/test_broken.py::test_broken - assert 1 == 2"]
