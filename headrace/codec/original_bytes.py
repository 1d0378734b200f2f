"""Original message bytes, shown safely: as they are where they are printable text, escaped where
they are not, so a sample can never drive the terminal (control characters, escape sequences,
bidirectional overrides are all spelled out)."""

from __future__ import annotations

import base64


def exact(text: str | None, text_base64: str | None) -> bytes | None:
    """The bytes as received, from a zone line's `<name>` (UTF-8 text) or `<name>_base64`."""
    if text is not None:
        return text.encode("utf-8")
    if text_base64 is not None:
        return base64.b64decode(text_base64)
    return None


def printable(data: bytes | None, limit: int = 0) -> str:
    """Text as is, every non-printable character escaped; bytes that are not UTF-8 escaped the
    way Python writes a bytes literal. `limit` > 0 cuts long values (and says how long)."""
    if data is None:
        return "(no value: a tombstone)"
    try:
        shown = "".join(c if c.isprintable() else _escape(c) for c in data.decode("utf-8"))
    except UnicodeDecodeError:
        shown = f"binary: {repr(data)[2:-1]}"
    if limit and len(shown) > limit:
        return f"{shown[:limit]}… ({len(data):,} bytes)"
    return shown


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(c, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def as_json(data: bytes | None) -> dict[str, str | None]:
    """For machines: always the exact bytes (base64), and the text where it is UTF-8."""
    if data is None:
        return {"original_base64": None, "original_text": None}
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"original_base64": base64.b64encode(data).decode("ascii"), "original_text": text}
