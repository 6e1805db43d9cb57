"""Bencode: bencode.py (the ``bencodepy`` package) is the codec; this module is the strictness
it lacks, as a thin layer in front of it.

Decoding is the attack surface of a DHT node (anyone on the Internet can send us bytes), and
bencode.py 4.1 alone is not fit to face it: it takes integers and lengths through Python's
``int()`` (so ``i+1e``, ``i 1e``, ``i1_0e`` and ``1_0:`` are accepted), keeps the last of
duplicate dictionary keys, has no bound on integer size, answers every malformation with the
same "not a valid bencoded string", and loops forever on a dictionary key with a negative
length (the 15 bytes ``d1:k4:abcd-10:e`` step back onto themselves). So ``decode`` first walks
the bytes once without building anything (``_check``, iterative, its stack bounded by
``max_depth``), and refuses with a specific reason

- integers that are not canonical (leading zeros, ``-0``, ``ie``, signs, spaces, underscores)
  or longer than ``MAX_INT_DIGITS`` digits (a peer cannot make us build a huge integer);
- string lengths that are not canonical digits, and strings running past the end;
- dictionary keys that are not strings, or repeated;
- nesting deeper than ``max_depth``, and any byte after the top-level value;

then hands the bytes, now known to be canonical, to bencode.py, which builds the value.
Dictionary keys are accepted in any order: every deployed client sorts them, but rejecting an
otherwise well-formed message over key order would only lose us a contact.

``encode`` is bencode.py's encoder with the dispatch it lacks: booleans are refused (the wire has
none, a bool here is a bug), keys must be distinct bytes or str, int subclasses (IntEnum) and
bytes-like values are accepted. Keys are written sorted as raw bytes, so what we send is
canonical. Every failure either way is one ``BencodeError`` (a ``ValueError``) with a reason.

Decoded values are ``bytes``, ``int``, ``list`` and ``dict[bytes, ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bencodepy

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "BencodeError", "decode", "encode"]

MAX_INT_DIGITS = 64
"""Longest accepted integer (digits, sign excluded). Real KRPC integers have at most 10."""

MAX_DEPTH = 100
"""Largest ``max_depth`` ``decode`` takes: bencode.py builds values recursively (one Python frame
per level), so this keeps it far below the interpreter's recursion limit."""

_MAX_LEN_DIGITS = 10
"""Longest accepted string length prefix. Nothing we parse is anywhere near 10**10 bytes."""

# Byte values of the format's markers, compared against ``data[pos]`` (an int).
_I = ord("i")
_L = ord("l")
_D = ord("d")
_E = ord("e")
_COLON = ord(":")
_ZERO = ord("0")
_NINE = ord("9")

# bencode.py decodes bytes as bytes (no text decoding); its own depth bound is a backstop only
# (``_check`` enforces ``max_depth`` first), and it allows one level more than it says.
_DECODER = bencodepy.BencodeDecoder(encoding=None, max_depth=MAX_DEPTH)


class BencodeError(ValueError):
    """Malformed bencode (decoding) or an unencodable value (encoding); ``str()`` is the reason."""


# --- decoding ---------------------------------------------------------------------------------
def decode(data: bytes | bytearray | memoryview, max_depth: int = 8) -> object:
    """Decode exactly one bencoded value filling all of ``data``.

    ``max_depth`` (0..``MAX_DEPTH``) bounds container nesting: ``b"le"`` has depth 1,
    ``b"ll" ... b"ee"`` depth 2. Raises ``BencodeError`` on any malformation; never any other
    exception for bytes input (``bytearray`` and ``memoryview`` are accepted too).
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"decode() needs bytes, got {type(data).__name__}")
        data = bytes(data)
    if not 0 <= max_depth <= MAX_DEPTH:
        raise ValueError(f"max_depth must be 0..{MAX_DEPTH}, got {max_depth}")
    _check(data, max_depth)
    try:
        return _DECODER.decode(data)
    except (bencodepy.BencodeDecodeError, RecursionError) as err:  # pragma: no cover
        # _check accepts only what bencode.py decodes; this is a guard, not a path.
        raise BencodeError(f"bencode.py refused it: {err}") from None


def _describe_byte(c: int) -> str:
    return repr(chr(c)) if 0x20 <= c < 0x7F else f"0x{c:02x}"


def _string_span(data: bytes, pos: int, n: int) -> tuple[int, int]:
    """Where the bytes of ``<len>:<bytes>`` starting at ``pos`` (a digit) begin and end, its
    length prefix checked."""
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
    end = colon + 1 + int(prefix)
    if end > n:
        raise BencodeError(
            f"truncated string: length {int(prefix)} at offset {pos} runs past the end of the data"
        )
    return colon + 1, end


def _int_end(data: bytes, pos: int, n: int) -> int:
    """End of ``i<digits>e`` starting at ``pos`` (the ``i``), its digits checked canonical."""
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
    body = digits[1:] if digits[:1] == b"-" else digits
    # int() (so bencode.py) would take b" 1", b"+1" and b"1_0": only the exact shape passes.
    if not body.isdigit():
        if not digits:
            raise BencodeError(f"empty integer at offset {pos}")
        raise BencodeError(f"bad integer {digits!r} at offset {pos}")
    if body[0] == _ZERO and (len(digits) > 1):
        if len(body) == 1:
            raise BencodeError(f"negative zero at offset {pos}")
        raise BencodeError(f"leading zero in integer at offset {pos}")
    if len(body) > MAX_INT_DIGITS:
        raise BencodeError(f"integer longer than {MAX_INT_DIGITS} digits at offset {pos}")
    return end + 1


def _check(data: bytes, max_depth: int) -> None:
    """Raise BencodeError unless ``data`` is exactly one canonical value (keys in any order)
    nested at most ``max_depth`` deep. Builds nothing but the set of each open dict's keys."""
    n = len(data)
    if n == 0:
        raise BencodeError("empty input")
    # An explicit stack instead of recursion, so hostile nesting cannot exhaust the C stack:
    # one entry per open container, the dict's keys so far (a set) or None for a list.
    # ``key`` is the dict key whose value is being read. The common cases (1- and 2-digit string
    # lengths) are checked inline: this loop runs once per value.
    stack: list[set[bytes] | None] = []
    keys: set[bytes] | None = None
    key: bytes | None = None
    pos = 0
    try:
        while True:
            c = data[pos]
            if c == _E:
                if not stack:
                    raise BencodeError(f"unexpected 'e' at offset {pos}")
                stack.pop()
                keys = stack[-1] if stack else None
                pos += 1
            else:
                if keys is not None:
                    if not _ZERO <= c <= _NINE:
                        raise BencodeError(
                            f"dict key must be a byte string, got {_describe_byte(c)} at {pos}"
                        )
                    if data[pos + 1] == _COLON:
                        start = pos + 2
                        end = start + c - _ZERO
                        if end > n:
                            raise BencodeError(
                                f"truncated string: length {c - _ZERO} at offset {pos} "
                                "runs past the end of the data"
                            )
                    else:
                        start, end = _string_span(data, pos, n)
                    key = data[start:end]
                    if key in keys:
                        raise BencodeError(f"duplicate dict key {key!r}")
                    keys.add(key)
                    pos = end
                    c = data[pos]
                    if c == _E:
                        raise BencodeError(f"dict key {key!r} has no value")
                if _ZERO <= c <= _NINE:
                    c1 = data[pos + 1]
                    if c1 == _COLON:
                        end = pos + 2 + c - _ZERO
                    elif c != _ZERO and _ZERO <= c1 <= _NINE and data[pos + 2] == _COLON:
                        end = pos + 3 + (c - _ZERO) * 10 + c1 - _ZERO
                    else:
                        end = _string_span(data, pos, n)[1]
                    if end > n:
                        raise BencodeError(
                            f"truncated string at offset {pos}: runs past the end of the data"
                        )
                    pos = end
                elif c == _I:
                    pos = _int_end(data, pos, n)
                elif c in (_L, _D):
                    if len(stack) >= max_depth:
                        raise BencodeError(f"nesting deeper than {max_depth} at offset {pos}")
                    keys = set() if c == _D else None
                    stack.append(keys)
                    key = None
                    pos += 1
                    continue
                else:
                    raise BencodeError(f"unexpected byte {_describe_byte(c)} at offset {pos}")
                key = None
            if not stack:
                if pos != n:
                    raise BencodeError(
                        f"{n - pos} trailing byte(s) after the value at offset {pos}"
                    )
                return
    except IndexError:
        # Only reading past the end raises IndexError above; say what was left unfinished.
        if pos < n and _ZERO <= data[pos] <= _NINE:
            raise BencodeError(f"truncated string length at offset {pos}") from None
        if keys is not None and key is not None:
            raise BencodeError(f"truncated dict: key {key!r} has no value") from None
        kind = "dict" if keys is not None else "list"
        raise BencodeError(f"truncated {kind}: missing 'e' at end of data") from None


# --- encoding ---------------------------------------------------------------------------------
def encode(obj: object) -> bytes:
    """Encode ``obj`` canonically.

    Accepts bytes (and other bytes-like objects), str (as UTF-8), int (not bool: a bool here is
    almost always a bug, and the wire has no booleans), list, tuple, and mappings whose keys are
    bytes or str. Keys are written sorted as raw bytes. Raises ``BencodeError`` otherwise.
    """
    try:
        out: bytes = _ENCODER.encode(obj)
        return out
    except KeyError:
        # bencode.py dispatches on the exact type: give subclasses (IntEnum, OrderedDict...) and
        # bytes-like objects their base type once, or say which type cannot be encoded.
        return _encode_retry(_plain(obj, 0))
    except RecursionError:
        raise BencodeError("nesting deeper than the interpreter allows (a cycle?)") from None
    except UnicodeEncodeError:
        raise BencodeError("cannot encode str: not valid UTF-8 (lone surrogate)") from None


def _encode_retry(obj: object) -> bytes:
    try:
        out: bytes = _ENCODER.encode(obj)
        return out
    except UnicodeEncodeError:
        raise BencodeError("cannot encode str: not valid UTF-8 (lone surrogate)") from None


_MAX_PLAIN_DEPTH = 100


def _plain(obj: object, depth: int) -> object:
    """``obj`` with every value of a type bencode.py knows exactly (bytes, int, str, list,
    dict); BencodeError naming the first type that has no bencode form."""
    if depth > _MAX_PLAIN_DEPTH:
        raise BencodeError(f"nesting deeper than {_MAX_PLAIN_DEPTH} (a cycle?)")
    t = type(obj)
    if t is bytes or t is str or t is int:
        return obj
    if isinstance(obj, bool):
        _refuse_bool(obj, None)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, list | tuple):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, Mapping):
        return {k: _plain(v, depth + 1) for k, v in obj.items()}
    raise BencodeError(f"cannot encode {t.__name__}")


def _refuse_bool(_x: bool, _r: Any) -> None:
    raise BencodeError("cannot encode bool: bencode has no booleans, pass an int")


class _StrictEncoder(bencodepy.BencodeEncoder):  # type: ignore[misc]
    """bencode.py's encoder, refusing booleans and keys that are not distinct bytes or str."""

    def __init__(self) -> None:
        super().__init__()
        self.encode_func[bool] = _refuse_bool

    def encode_dict(self, x: Mapping[Any, Any], r: Any) -> None:
        # bencode.py converts str keys to bytes and sorts; it would write a key given both as
        # str and as bytes twice, and fail on other key types with a TypeError.
        for k in x:
            if type(k) is not bytes:
                _check_keys(x)
                break
        super().encode_dict(x, r)


def _check_keys(x: Mapping[Any, Any]) -> None:
    seen: set[bytes] = set()
    for k in x:
        if type(k) is str:
            try:
                k = k.encode()
            except UnicodeEncodeError:
                raise BencodeError("cannot encode dict key: not valid UTF-8") from None
        elif type(k) is not bytes:
            raise BencodeError(f"dict key must be bytes or str, got {type(k).__name__}")
        if k in seen:
            raise BencodeError(f"duplicate dict key {k!r} (as bytes)")
        seen.add(k)


_ENCODER = _StrictEncoder()
