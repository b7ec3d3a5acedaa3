"""The layers of DESIGN.md, enforced: what each folder may import.

Every import of every module (at the top or inside a function) is read from the
source, so a lazy import breaks the rule as much as an eager one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("linkstack", "channels", "payloads")

# The layers, bottom up; a module may import its own layer and the ones below,
# except where ALLOWED says less. linkstack.errors, .timebase, .text and .tomlcheck are
# the base that every layer may use.
LAYERS = {
    "base": ("linkstack.errors", "linkstack.timebase", "linkstack.text", "linkstack.tomlcheck"),
    "ccsds": ("linkstack.ccsds",),
    "channels": ("channels",),
    "payloads": ("payloads",),
    "runtime": ("linkstack.runtime",),
    "capture": ("linkstack.capture",),
    "daemon": ("linkstack.daemon",),
    "conformance": ("linkstack.conformance",),
    "tools": ("linkstack.tools", "linkstack.__main__", "linkstack"),
}
ORDER = list(LAYERS)
# what a layer may import from the project, when that is less than "everything below"
ALLOWED = {
    "base": {"base"},
    "ccsds": {"base", "ccsds"},
    "channels": {"base", "channels"},
    "payloads": {"base", "payloads"},
}
# the codecs are sans-I/O: no event loop, no sockets, no threads, no clock reads
CODEC_FORBIDDEN_STDLIB = {"asyncio", "socket", "selectors", "threading", "time", "sqlite3"}


def layer_of(module: str) -> str:
    best, length = "", -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = layer, len(prefix)
    assert best, module
    return best


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out.append((name, path))
    return out


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, wherever it is."""
    tree = ast.parse(path.read_text("utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            if base in PACKAGES or base == "linkstack":  # from linkstack import x
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _type_checking_only(path: Path) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (annotations, not run)."""
    tree = ast.parse(path.read_text("utf-8"))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for sub in node.body:
                for inner in ast.walk(sub):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def violations() -> list[str]:
    bad = []
    for module, path in modules():
        layer = layer_of(module)
        allowed = ALLOWED.get(layer, set(ORDER[: ORDER.index(layer) + 1]))
        typing_only = _type_checking_only(path)
        for line, target in imports(module, path):
            where = f"{path.relative_to(ROOT)}:{line}"
            top = target.split(".")[0]
            if top in PACKAGES:
                if target == "linkstack" and layer != "tools":
                    bad.append(f"{where}: {module} imports the package root (the public API)")
                    continue
                if target == "linkstack":
                    continue
                other = layer_of(target)
                if other not in allowed and not (line in typing_only and layer == "tools"):
                    bad.append(f"{where}: {module} ({layer}) imports {target} ({other})")
            elif layer == "ccsds" and top in CODEC_FORBIDDEN_STDLIB:
                bad.append(f"{where}: {module} (a codec) imports {target}")
    return bad


def test_every_module_imports_only_its_own_layer_and_those_below():
    assert violations() == []


def test_the_rule_catches_what_it_forbids(tmp_path, monkeypatch):
    """The checker itself: an upward import and a codec doing I/O are both reported."""
    fake = tmp_path / "linkstack" / "ccsds"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text(
        "import asyncio\nfrom linkstack.runtime.clock import run\nfrom linkstack.errors import X\n"
    )
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "bad.py").write_text("from linkstack.daemon import wire\n")
    (tmp_path / "payloads").mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = violations()
    assert len(found) == 3, found
    assert any("imports asyncio" in v for v in found)
    assert any("linkstack.runtime.clock (runtime)" in v for v in found)
    assert any("imports linkstack.daemon (daemon)" in v for v in found)


@pytest.mark.parametrize(
    "code",
    [
        "import linkstack.runtime.emulation",
        "import linkstack.tools.demo",
        "import linkstack.daemon.run",
        "from linkstack.runtime import clock\n"
        "async def main():\n    await clock.make_clock(True).sleep(1.0)\n"
        "clock.run(main)",
    ],
)
def test_running_linkstack_does_not_import_a_test_framework(code):
    test_tools = "('pytest', '_pytest', 'hypothesis')"
    probe = f"import sys\n{code}\nprint([m for m in {test_tools} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"
