"""BEP 44 values and targets as users type and read them (command line and GUI alike).

A value typed by a user is stored as a bencoded *string* of its UTF-8 bytes (what libtorrent's
Python ``dht_put_mutable_item`` does with its data argument, so the two interoperate). A value
read back is shown by type:

- a string: its text when it is UTF-8 (``value_encoding`` "utf-8"), else its hex ("hex");
- any other bencoded type (integer, list, dict): as JSON ("json"), byte strings inside it as
  text when UTF-8, else as ``{"hex": "..."}``; dict keys as text, or ``hex:<digits>``.
"""

from __future__ import annotations

import string

from dhtviewer.dht import bencoding

__all__ = ["TargetError", "parse_target", "value_json", "value_text"]

_HEX = frozenset(string.hexdigits)


class TargetError(ValueError):
    """Not a BEP 44 target (40 hex digits); the message says why."""


def parse_target(text: str) -> bytes:
    s = text.strip()
    if len(s) != 40 or not set(s) <= _HEX:
        raise TargetError(f"a target is 40 hex digits (the SHA-1 of the item), got {text!r}")
    return bytes.fromhex(s)


def _utf8(b: bytes) -> str | None:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _to_json(value: object) -> object:
    if isinstance(value, bytes):
        text = _utf8(value)
        return text if text is not None else {"hex": value.hex()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            key = _utf8(k)
            out[key if key is not None else "hex:" + k.hex()] = _to_json(v)
        return out
    return value


def value_json(raw: bytes) -> tuple[object, str]:
    """``(value, value_encoding)`` for the bencoded value ``raw`` (module docstring)."""
    value = bencoding.decode(raw, 100)
    if isinstance(value, bytes):
        text = _utf8(value)
        return (text, "utf-8") if text is not None else (value.hex(), "hex")
    return _to_json(value), "json"


def value_text(raw: bytes, limit: int = 2000) -> str:
    """One printable rendering for people: the text of a UTF-8 string, else ``hex:...`` or the
    JSON form."""
    import json

    value, encoding = value_json(raw)
    if encoding == "utf-8":
        assert isinstance(value, str)
        text = value if value.isprintable() else json.dumps(value)
    elif encoding == "hex":
        text = f"hex:{value}"
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"
