"""Text from elsewhere (a model's answer, a refusal's detail) made safe to print."""

from __future__ import annotations

import unicodedata


def escape(text: str, limit: int = 240) -> str:
    """Printable text: control and other non-printing characters escaped, cut at ``limit``."""
    out = []
    for ch in text:
        if ch == " " or not unicodedata.category(ch).startswith(("C", "Z")):
            out.append(ch)
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 1] + "…"
