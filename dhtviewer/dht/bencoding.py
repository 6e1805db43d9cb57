"""Bencode: a strict, fast, depth-bounded encoder and decoder.

This module owns the byte-level format every KRPC datagram is written in. Decoding is the attack
surface of a DHT node (anyone on the Internet can send us bytes), so the decoder

- is iterative, with an explicit stack bounded by ``max_depth``: no input can exhaust the
  interpreter's stack;
- accepts only canonical integers (no leading zeros, no ``-0``, no empty ``ie``, at most
  ``MAX_INT_DIGITS`` digits, so a peer cannot make us build a huge integer);
- rejects duplicate dictionary keys and any byte after the top-level value;
- raises ``BencodeError`` (a ``ValueError``) with a specific reason, and nothing else.

Dictionary keys are accepted in any order: every deployed client sorts them, but rejecting an
otherwise well-formed message over key order would only lose us a contact. The encoder always
writes keys sorted as raw bytes, so what we send is canonical.

Decoded values are ``bytes``, ``int``, ``list`` and ``dict[bytes, ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_INT_DIGITS", "BencodeError", "decode", "encode"]

MAX_INT_DIGITS = 64
"""Longest accepted integer (digits, sign excluded). Real KRPC integers have at most 10."""

_MAX_LEN_DIGITS = 10
"""Longest accepted string length prefix. Nothing we parse is anywhere near 10**10 bytes."""

_MAX_ENCODE_DEPTH = 100
"""Nesting bound for ``encode``: our own messages nest 3 deep; this only stops cycles."""

# Byte values of the format's markers, compared against ``data[pos]`` (an int).
_I = ord("i")
_L = ord("l")
_D = ord("d")
_E = ord("e")
_COLON = ord(":")
_ZERO = ord("0")
_NINE = ord("9")


class BencodeError(ValueError):
    """Malformed bencode (decoding) or an unencodable value (encoding)."""


def _describe_byte(c: int) -> str:
    return repr(chr(c)) if 0x20 <= c < 0x7F else f"0x{c:02x}"


def _read_string(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    """Parse ``<len>:<bytes>`` starting at ``pos`` (a digit); return the bytes and the new pos."""
    # Search for the colon only within the longest accepted prefix so garbage costs O(1).
    colon = data.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
    if colon < 0:
        window = data[pos : pos + _MAX_LEN_DIGITS + 1]
        if not window.isdigit():
            raise BencodeError(f"bad string length prefix at offset {pos}")
        if pos + len(window) >= n:
            raise BencodeError(f"truncated string length at offset {pos}")
        raise BencodeError(f"string length prefix too long at offset {pos}")
    prefix = data[pos:colon]
    if not prefix.isdigit():
        raise BencodeError(f"bad string length prefix {prefix!r} at offset {pos}")
    if prefix[0] == _ZERO and len(prefix) > 1:
        raise BencodeError(f"leading zero in string length at offset {pos}")
    start = colon + 1
    length = int(prefix)
    end = start + length
    if end > n:
        raise BencodeError(
            f"truncated string: length {length} at offset {pos} runs past the end of the data"
        )
    return data[start:end], end


def _read_int(data: bytes, pos: int, n: int) -> tuple[int, int]:
    """Parse ``i<digits>e`` starting at ``pos`` (the ``i``); return the value and the new pos."""
    # The search window has room for a sign, the longest accepted digit run and the "e".
    end = data.find(b"e", pos + 1, pos + MAX_INT_DIGITS + 3)
    if end < 0:
        window = data[pos + 1 : pos + MAX_INT_DIGITS + 3]
        window_body = window[1:] if window[:1] == b"-" else window
        if window_body and not window_body.isdigit():
            raise BencodeError(f"bad integer at offset {pos}")
        if pos + 1 + len(window) >= n:
            raise BencodeError(f"truncated integer at offset {pos}")
        raise BencodeError(f"integer longer than {MAX_INT_DIGITS} digits at offset {pos}")
    digits = data[pos + 1 : end]
    negative = digits[:1] == b"-"
    body = digits[1:] if negative else digits
    # int() alone would accept b" 1", b"+1" and b"1_0": check the exact canonical shape first.
    if not body.isdigit():
        if not digits:
            raise BencodeError(f"empty integer at offset {pos}")
        raise BencodeError(f"bad integer {digits!r} at offset {pos}")
    if body[0] == _ZERO and (negative or len(body) > 1):
        if len(body) == 1:
            raise BencodeError(f"negative zero at offset {pos}")
        raise BencodeError(f"leading zero in integer at offset {pos}")
    if len(body) > MAX_INT_DIGITS:
        raise BencodeError(f"integer longer than {MAX_INT_DIGITS} digits at offset {pos}")
    return int(digits), end + 1


def decode(data: bytes | bytearray | memoryview, max_depth: int = 8) -> object:
    """Decode exactly one bencoded value filling all of ``data``.

    ``max_depth`` bounds container nesting: ``b"le"`` has depth 1, ``b"ll" ... b"ee"`` depth 2.
    Raises ``BencodeError`` on any malformation; never any other exception for bytes input
    (``bytearray`` and ``memoryview`` are accepted too).
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"decode() needs bytes, got {type(data).__name__}")
        data = bytes(data)
    n = len(data)
    if n == 0:
        raise BencodeError("empty input")
    # An explicit stack instead of recursion, so hostile nesting cannot exhaust the C stack.
    # ``cur`` is the innermost open container (None at top level); ``key`` is the dict key whose
    # value is being read. ``stack`` keeps the enclosing (container, key) pairs.
    # The common cases (1- and 2-digit string lengths) are parsed inline: this loop runs once per
    # value and dominates the cost of handling a datagram.
    stack: list[tuple[Any, bytes | None]] = []
    # A list, a dict or None; ``in_dict`` says which (kept in a local: tested once per value).
    cur: Any = None
    in_dict = False
    key: bytes | None = None
    pos = 0
    value: object
    try:
        while True:
            c = data[pos]
            if c == _E:
                if cur is None:
                    raise BencodeError(f"unexpected 'e' at offset {pos}")
                value = cur
                cur, key = stack.pop()
                in_dict = type(cur) is dict
                pos += 1
            else:
                if in_dict:
                    if not _ZERO <= c <= _NINE:
                        raise BencodeError(
                            f"dict key must be a byte string, got {_describe_byte(c)} at {pos}"
                        )
                    c1 = data[pos + 1]
                    if c1 == _COLON:
                        end = pos + 2 + c - _ZERO
                        key = data[pos + 2 : end]
                    else:
                        key, end = _read_string(data, pos, n)
                    if end > n:
                        raise BencodeError(
                            f"truncated string: length {end - pos - 2} at offset {pos} "
                            "runs past the end of the data"
                        )
                    if key in cur:
                        raise BencodeError(f"duplicate dict key {key!r}")
                    pos = end
                    c = data[pos]
                    if c == _E:
                        raise BencodeError(f"dict key {key!r} has no value")
                if _ZERO <= c <= _NINE:
                    c1 = data[pos + 1]
                    if c1 == _COLON:
                        end = pos + 2 + c - _ZERO
                        value = data[pos + 2 : end]
                    elif c != _ZERO and _ZERO <= c1 <= _NINE and data[pos + 2] == _COLON:
                        end = pos + 3 + (c - _ZERO) * 10 + c1 - _ZERO
                        value = data[pos + 3 : end]
                    else:
                        value, end = _read_string(data, pos, n)
                    if end > n:
                        raise BencodeError(
                            f"truncated string at offset {pos}: runs past the end of the data"
                        )
                    pos = end
                elif c == _I:
                    value, pos = _read_int(data, pos, n)
                elif c in (_L, _D):
                    if len(stack) >= max_depth:
                        raise BencodeError(f"nesting deeper than {max_depth} at offset {pos}")
                    stack.append((cur, key))
                    in_dict = c == _D
                    cur = {} if in_dict else []
                    key = None
                    pos += 1
                    continue
                else:
                    raise BencodeError(f"unexpected byte {_describe_byte(c)} at offset {pos}")

            # Store the finished value in its container, or finish at top level.
            if cur is None:
                if pos != n:
                    raise BencodeError(
                        f"{n - pos} trailing byte(s) after the value at offset {pos}"
                    )
                return value
            if in_dict:
                cur[key] = value
                key = None
            else:
                cur.append(value)
    except IndexError:
        # Only reading past the end raises IndexError above; say what was left unfinished.
        if pos < n and _ZERO <= data[pos] <= _NINE:
            raise BencodeError(f"truncated string length at offset {pos}") from None
        if in_dict and key is not None:
            raise BencodeError(f"truncated dict: key {key!r} has no value") from None
        kind = "dict" if in_dict else "list"
        raise BencodeError(f"truncated {kind}: missing 'e' at end of data") from None


def encode(obj: object) -> bytes:
    """Encode ``obj`` canonically.

    Accepts bytes (and other bytes-like objects), str (as UTF-8), int (not bool: a bool here is
    almost always a bug, and the wire has no booleans), list, tuple, and mappings whose keys are
    bytes or str. Keys are written sorted as raw bytes. Raises ``BencodeError`` otherwise.
    """
    out: list[bytes] = []
    _encode_into(obj, out, 0)
    return b"".join(out)


def _encode_into(obj: Any, out: list[bytes], depth: int) -> None:
    # Hot path for the node's replies: bytes and int values are written inline by the container
    # branches below instead of through another call.
    t = type(obj)
    if t is bytes:
        out.append(b"%d:" % len(obj))
        out.append(obj)
    elif t is int:
        out.append(b"i%de" % obj)
    elif t is dict or isinstance(obj, Mapping):
        if depth >= _MAX_ENCODE_DEPTH:
            raise BencodeError(f"nesting deeper than {_MAX_ENCODE_DEPTH} (a cycle?)")
        out.append(b"d")
        for k, v in _sorted_items(obj):
            out.append(b"%d:" % len(k))
            out.append(k)
            tv = type(v)
            if tv is bytes:
                out.append(b"%d:" % len(v))
                out.append(v)
            elif tv is int:
                out.append(b"i%de" % v)
            else:
                _encode_into(v, out, depth + 1)
        out.append(b"e")
    elif t is list or t is tuple:
        if depth >= _MAX_ENCODE_DEPTH:
            raise BencodeError(f"nesting deeper than {_MAX_ENCODE_DEPTH} (a cycle?)")
        out.append(b"l")
        for item in obj:
            if type(item) is bytes:
                out.append(b"%d:" % len(item))
                out.append(item)
            else:
                _encode_into(item, out, depth + 1)
        out.append(b"e")
    elif t is str:
        try:
            raw = obj.encode()
        except UnicodeEncodeError:
            raise BencodeError("cannot encode str: not valid UTF-8 (lone surrogate)") from None
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(obj, bool):
        raise BencodeError("cannot encode bool: bencode has no booleans, pass an int")
    elif isinstance(obj, int):  # int subclasses such as IntEnum
        out.append(b"i%de" % int(obj))
    elif isinstance(obj, (bytearray, memoryview)):
        _encode_into(bytes(obj), out, depth)
    else:
        raise BencodeError(f"cannot encode {t.__name__}")


def _sorted_items(obj: Mapping[Any, Any]) -> list[tuple[bytes, Any]]:
    """The mapping's items with bytes keys, sorted as raw bytes."""
    items = list(obj.items())
    for k, _ in items:
        if type(k) is not bytes:
            break
    else:
        # Keys are distinct, so sorting the pairs never compares two values.
        items.sort()
        return items
    converted: dict[bytes, Any] = {}
    for k, v in items:
        if type(k) is bytes:
            bk = k
        elif type(k) is str:
            try:
                bk = k.encode()
            except UnicodeEncodeError:
                raise BencodeError("cannot encode dict key: not valid UTF-8") from None
        else:
            raise BencodeError(f"dict key must be bytes or str, got {type(k).__name__}")
        if bk in converted:
            raise BencodeError(f"duplicate dict key {bk!r} (as bytes)")
        converted[bk] = v
    return sorted(converted.items())
