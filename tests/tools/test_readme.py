"""The README's Python examples run as written, and the public API they use exists."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import linkstack

ROOT = Path(__file__).resolve().parents[2]


def _examples() -> dict[str, str]:
    """The README's ```python blocks, by the heading they sit under."""
    text = (ROOT / "README.md").read_text("utf-8")
    out: dict[str, str] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        for code in re.findall(r"```python\n(.*?)```", section, re.S):
            out[title] = code
    return out


def _run(code: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    return buf.getvalue()


def test_the_scripting_example_runs_a_round_trip():
    printed = _run(_examples()["Scripting an emulation"]).split(maxsplit=3)
    satellite, total, unit, legs = printed
    assert satellite == "CS-06" and unit == "s"
    # CS-06 rises about 4 s after the script starts (the uplink waits for its pass)
    assert 0.0 < float(total) < 120.0
    assert "'contact_wait'" in legs and "'downlink'" in legs


def test_the_codec_example_prints_what_it_says():
    printed = _run(_examples()["Using the codecs"]).splitlines()
    assert printed[0] == "4500"
    assert "'frames': 5" in printed[1] and "'packets': 5" in printed[1]


def test_every_public_name_resolves_and_import_linkstack_stays_light():
    for name in linkstack.__all__:
        assert getattr(linkstack, name) is not None, name
    assert isinstance(linkstack.load_scenario().emulation, linkstack.EmulationConfig)
    # the command line imports linkstack for its version: no numpy, numba or torch
    probe = (
        "import sys, linkstack; "
        "print(sorted(m for m in ('numpy', 'torch', 'numba') if m in sys.modules))"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert heavy.strip() == "[]"
