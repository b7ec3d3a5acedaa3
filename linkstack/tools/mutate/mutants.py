"""The mutants of one module: small bugs, one at a time, made on its syntax tree.

Operators (the bugs the tests must notice): a comparison flipped or moved across its
boundary (``<`` / ``<=``, ``==`` / ``!=``, ``is`` / ``is not``, ``in`` / ``not in``), an
arithmetic or bitwise operator swapped, an integer constant off by one either way (a
float one changed), ``and`` / ``or`` swapped, a ``not`` dropped, ``True`` / ``False``
swapped, a statement deleted, a returned value replaced by None.

Each mutant has a :attr:`Mutant.key` that names it by its function, its operator and the
text of its line, not by line number, so that a reviewed list of equivalent mutants
still names the same ones after unrelated edits of the module. Lines marked
``# pragma: no mutate`` are left alone.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

PRAGMA = "# pragma: no mutate"

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.Pow: ast.Mult,
}
_SYMBOL = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
    ast.RShift: ">>", ast.Pow: "**", ast.And: "and", ast.Or: "or",
}  # fmt: skip
# statements whose deletion is a mutant (a docstring or a bare constant is not)
_DELETABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.Return)


@dataclass(frozen=True, slots=True)
class Mutant:
    """One small bug: which node (its index in the walk), which change, where."""

    module: str  # the path, e.g. linkstack/ccsds/tc.py
    index: int  # position of the node in _walk(tree)
    variant: int  # which of that node's changes
    operator: str
    description: str
    line: int
    scope: str  # the function or class it sits in
    line_text: str
    occurrence: int = 0  # among mutants of the same key before it
    # the lines whose execution runs it: from its statement's first line to its own last
    # (what coverage-guided test selection looks up; not part of the key)
    lines: tuple[int, int] = (0, 0)
    # False in a function compiled by numba (a decorator naming jit): coverage.py cannot
    # see which tests run it
    traced: bool = True

    @property
    def key(self) -> str:
        """Names the mutant independently of line numbers (see the module docstring)."""
        tail = f"#{self.occurrence}" if self.occurrence else ""
        return f"{self.scope} | {self.operator} {self.description} | {self.line_text}{tail}"


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, str, int]]:
    """Every node with the qualified name of the function or class it is in and the
    first line of the statement it is part of, in a fixed order; annotations,
    docstrings and other bare constants, and a ``return None`` that ends a function are
    skipped (they change no behaviour)."""

    def visit(node: ast.AST, scope: str, first: int) -> Iterator[tuple[ast.AST, str, int]]:
        if isinstance(node, ast.stmt):
            first = node.lineno
        yield node, scope, first
        inner = scope
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = f"{scope}.{node.name}" if scope else node.name
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns", "decorator_list", "type_comment"):
                continue
            children = value if isinstance(value, list) else [value]
            for child in children:
                if not isinstance(child, ast.AST):
                    continue
                if _is_bare_constant(child):
                    continue
                if name == "body" and child is children[-1] and _returns_none(node, child):
                    continue
                yield from visit(child, inner, first)

    yield from visit(tree, "", 0)


def _returns_none(function: ast.AST, last: ast.AST) -> bool:
    """``return`` or ``return None`` ending a function: deleting it, the function
    falls off its end and returns None all the same."""
    return (
        isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        and isinstance(last, ast.Return)
        and (
            last.value is None
            or (isinstance(last.value, ast.Constant) and last.value.value is None)
        )
    )


def _is_bare_constant(node: ast.AST) -> bool:
    """A docstring (a module's, a class's, or one after an attribute) or ``...``."""
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _changes(node: ast.AST, parent_is_annassign: bool = False) -> list[tuple[str, str]]:
    """(operator, description) of each change that can be made to ``node``."""
    if isinstance(node, ast.Compare):
        return [
            ("compare", f"{_SYMBOL[type(op)]} -> {_SYMBOL[_COMPARE_SWAPS[type(op)]]}")
            for op in node.ops
        ]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
        return [("binop", f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[_BINOP_SWAPS[type(node.op)]]}")]
    if isinstance(node, ast.AugAssign) and type(node.op) in _BINOP_SWAPS:
        op = _SYMBOL[type(node.op)]
        return [
            ("augassign", f"{op}= -> {_SYMBOL[_BINOP_SWAPS[type(node.op)]]}="),
            ("delete", "statement"),
        ]
    if isinstance(node, ast.BoolOp):
        other = "or" if isinstance(node.op, ast.And) else "and"
        return [("boolop", f"{_SYMBOL[type(node.op)]} -> {other}")]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return [("not", "not x -> x")]
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return [("constant", f"{value} -> {not value}")]
        if isinstance(value, int):
            return [
                ("constant", f"{value} -> {value + 1}"),
                ("constant", f"{value} -> {value - 1}"),
            ]
        if isinstance(value, float):
            return [("constant", f"{value!r} -> {value + 1.0!r}")]
        return []
    if isinstance(node, ast.Return) and node.value is not None:
        is_none = isinstance(node.value, ast.Constant) and node.value.value is None
        return ([] if is_none else [("return", "value -> None")]) + [("delete", "statement")]
    if isinstance(node, _DELETABLE):
        return [("delete", "statement")]
    return []


def _apply(node: ast.AST, variant: int, description: str) -> ast.AST | None:
    """Make change ``variant`` to ``node`` in place; return the replacement node when
    the node itself is replaced (a deleted statement becomes ``pass``)."""
    if isinstance(node, ast.Compare):
        node.ops[variant] = _COMPARE_SWAPS[type(node.ops[variant])]()
    elif isinstance(node, ast.BinOp) or (isinstance(node, ast.AugAssign) and variant == 0):
        node.op = _BINOP_SWAPS[type(node.op)]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.UnaryOp):
        return node.operand
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, int):
            node.value = value + (1 if variant == 0 else -1)
        elif isinstance(value, float):
            node.value = value + 1.0
    elif isinstance(node, ast.Return) and description == "value -> None":
        node.value = ast.Constant(None)
    else:
        return ast.Pass()
    return None


def mutants(module: str, source: str) -> list[Mutant]:
    """Every mutant of ``source`` (the text of ``module``), in a fixed order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    out: list[Mutant] = []
    seen: Counter[str] = Counter()
    skip = _skipped_nodes(tree, lines)
    compiled = _compiled_lines(tree)
    for index, (node, scope, first) in enumerate(_walk(tree)):
        if id(node) in skip:
            continue
        for variant, (operator, description) in enumerate(_changes(node)):
            line = getattr(node, "lineno", 0)
            text = lines[line - 1].strip() if line else ""
            span = (min(first, line) or line, getattr(node, "end_lineno", None) or line)
            mutant = Mutant(
                module,
                index,
                variant,
                operator,
                description,
                line,
                scope,
                text,
                0,
                span,
                traced=line not in compiled,
            )
            occurrence = seen[mutant.key]
            seen[mutant.key] += 1
            if occurrence:
                mutant = replace(mutant, occurrence=occurrence)
            out.append(mutant)
    return out


def _compiled_lines(tree: ast.AST) -> set[int]:
    """The lines of functions decorated by a JIT compiler (``@numba.njit``, ``@_jit``)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            "jit" in ast.unparse(d) for d in node.decorator_list
        ):
            out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return out


def _skipped_nodes(tree: ast.AST, lines: list[str]) -> set[int]:
    """Nodes not to mutate: those on a ``# pragma: no mutate`` line, and what only
    typing or the module's import machinery reads (``__all__``, ``if TYPE_CHECKING``)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if line and PRAGMA in lines[line - 1]:
            skip.add(id(node))
        guarded = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        exported = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        )
        if guarded or exported:
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.ImportFrom | ast.Import):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def mutated_source(source: str, mutant: Mutant) -> str:
    """The module's text with ``mutant`` made (formatting and comments are not kept)."""
    tree = ast.parse(source)
    parents: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for i, child in enumerate(value):
                    if isinstance(child, ast.AST):
                        parents[id(child)] = (parent, name, i)
            elif isinstance(value, ast.AST):
                parents[id(value)] = (parent, name, None)
    for index, (node, _, _) in enumerate(_walk(tree)):
        if index != mutant.index:
            continue
        replacement = _apply(node, mutant.variant, mutant.description)
        if replacement is not None:
            parent, name, position = parents[id(node)]
            if position is None:
                setattr(parent, name, replacement)
            else:
                getattr(parent, name)[position] = replacement
        return ast.unparse(ast.fix_missing_locations(tree))
    raise ValueError(f"{mutant.module}: no node {mutant.index} (the source changed?)")
