"""BEP 44 values and targets as users type and read them (command line and GUI alike).

A value typed by a user is stored as a bencoded *string* of its UTF-8 bytes (what libtorrent's
Python ``dht_put_mutable_item`` does with its data argument, so the two interoperate). A value
read back is shown by type:

- a string: its text when it is UTF-8 (``value_encoding`` "utf-8"), else its hex ("hex");
- any other bencoded type (integer, list, dict): as JSON ("json"), byte strings inside it as
  text when UTF-8, else as ``{"hex": "..."}``; dict keys as text, or ``hex:<digits>``.

A value typed in one of the three ``ValueFormat``s (``parse_value``): text (its UTF-8 bytes),
hex (the bytes the digits spell) or JSON, read back exactly as ``value_json`` writes it (strings
are UTF-8 byte strings, ``{"hex": "..."}`` raw bytes, ``hex:`` keys raw keys, integers stay
integers), so what was read can be edited and put again. JSON has no bencoded form for
fractions, booleans and null: they are refused, with where they are.
"""

from __future__ import annotations

import json
import string
from enum import Enum

from dhtviewer.dht import bencoding
from dhtviewer.dht.items import ItemError, encode_value

__all__ = [
    "TargetError",
    "ValueFormat",
    "ValueFormatError",
    "parse_target",
    "parse_value",
    "value_json",
    "value_text",
]

_HEX = frozenset(string.hexdigits)


class TargetError(ValueError):
    """Not a BEP 44 target (40 hex digits); the message says why."""


def parse_target(text: str) -> bytes:
    s = text.strip()
    if len(s) != 40 or not set(s) <= _HEX:
        raise TargetError(f"a target is 40 hex digits (the SHA-1 of the item), got {text!r}")
    return bytes.fromhex(s)


class ValueFormat(str, Enum):
    """How a typed value is read (``parse_value``)."""

    TEXT = "text"
    HEX = "hex"
    JSON = "json"

    def __str__(self) -> str:
        return str(self.value)


class ValueFormatError(ValueError):
    """A typed value that cannot be stored; the message says what is wrong and where."""


def parse_value(text: str, fmt: ValueFormat | str = ValueFormat.TEXT) -> object:
    """The bencodable value ``text`` stands for in format ``fmt`` (module docstring): bytes,
    or for JSON also int, list and dict. ``ValueFormatError`` when it does not parse or its
    bencoded form is over the BEP's 1000 bytes."""
    fmt = ValueFormat(fmt)
    value: object
    if fmt is ValueFormat.TEXT:
        value = text.encode("utf-8", "surrogateescape")
    elif fmt is ValueFormat.HEX:
        digits = "".join(text.split())
        if digits.lower().startswith("0x"):
            digits = digits[2:]
        bad = next((c for c in digits if c not in _HEX), None)
        if bad is not None:
            raise ValueFormatError(f"not a hex digit: {bad!r}")
        if len(digits) % 2:
            raise ValueFormatError(f"hex needs an even number of digits, got {len(digits)}")
        value = bytes.fromhex(digits)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueFormatError(
                f"not JSON: {err.msg} (line {err.lineno}, column {err.colno})"
            ) from None
        value = _from_json(doc, "the value")
    try:
        encode_value(value)
    except ItemError as err:
        raise ValueFormatError(err.reason) from None
    return value


def _hex_bytes(digits: object, where: str) -> bytes:
    if not isinstance(digits, str):
        raise ValueFormatError(f"{where}: \"hex\" must be a string of hex digits")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise ValueFormatError(f"{where}: {digits!r} is not hex") from None


def _from_json(doc: object, where: str) -> object:
    if isinstance(doc, bool) or doc is None or isinstance(doc, float):
        what = "null" if doc is None else "true/false" if isinstance(doc, bool) else "a fraction"
        raise ValueFormatError(f"{where} is {what}, which bencoding cannot hold "
                               "(integers, strings, lists and objects only)")
    if isinstance(doc, int):
        return doc
    if isinstance(doc, str):
        return doc.encode("utf-8", "surrogatepass")
    if isinstance(doc, list):
        return [_from_json(v, f"{where}[{i}]") for i, v in enumerate(doc)]
    assert isinstance(doc, dict)
    if set(doc) == {"hex"}:
        return _hex_bytes(doc["hex"], where)
    out: dict[bytes, object] = {}
    for k, v in doc.items():
        key = _hex_bytes(k[4:], f"{where} key {k!r}") if k.startswith("hex:") else k.encode()
        out[key] = _from_json(v, f"{where}[{k!r}]")
    return dict(sorted(out.items()))


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
    value, encoding = value_json(raw)
    if encoding == "utf-8":
        assert isinstance(value, str)
        text = value if value.isprintable() else json.dumps(value)
    elif encoding == "hex":
        text = f"hex:{value}"
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"
