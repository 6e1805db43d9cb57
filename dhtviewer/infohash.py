"""Info-hashes as users paste them: 40 hex digits, 32 base32 characters, or a magnet link.

Shared by the command line and the GUI's lookup field, so both accept the same forms and report
the same specific errors. Only BitTorrent v1 (``urn:btih``) hashes exist on the Mainline DHT; a
v2-only magnet (``urn:btmh``) is refused with a message saying so. ``format_addr`` and
``parse_hostport`` (defined in ``dhtviewer.dht.addresses``) are re-exported here because the same
input fields need them.
"""

from __future__ import annotations

import base64
import string
from urllib.parse import parse_qsl, unquote

from dhtviewer.dht.addresses import format_addr, parse_hostport

__all__ = ["InfohashError", "format_addr", "format_infohash", "parse_hostport", "parse_infohash"]

_HEX = frozenset(string.hexdigits)
_BASE32 = frozenset(string.ascii_uppercase + "234567")


class InfohashError(ValueError):
    """The text is not an info-hash; the message says what is wrong with it."""


def parse_infohash(text: str) -> bytes:
    """The 20-byte info-hash in ``text``: hex, base32 or a magnet link (blanks around ignored)."""
    s = text.strip()
    if not s:
        raise InfohashError("empty info-hash")
    if s[:7].lower() == "magnet:":
        return _from_magnet(s)
    return _from_digest(s, "")


def format_infohash(info_hash: bytes) -> str:
    """Lower-case hex, the form every tool prints."""
    return info_hash.hex()


def _from_digest(s: str, where: str) -> bytes:
    n = len(s)
    if n == 40:
        for i, ch in enumerate(s):
            if ch not in _HEX:
                raise InfohashError(f"{where}invalid hex character {ch!r} at position {i + 1}")
        return bytes.fromhex(s)
    if n == 32:
        upper = s.upper()
        for i, ch in enumerate(upper):
            if ch not in _BASE32:
                raise InfohashError(
                    f"{where}invalid base32 character {s[i]!r} at position {i + 1}"
                )
        return base64.b32decode(upper)
    if all(ch in _HEX for ch in s):
        raise InfohashError(f"{where}expected 40 hex characters, got {n}")
    raise InfohashError(
        f"{where}expected 40 hex or 32 base32 characters, got {n} characters"
    )


def _from_magnet(s: str) -> bytes:
    query = s[7:]
    if not query.startswith("?"):
        raise InfohashError("magnet link has no parameters (expected 'magnet:?xt=urn:btih:...')")
    topics = [
        unquote(value).strip()
        for key, value in parse_qsl(query[1:], keep_blank_values=True)
        # "xt.1", "xt.2", ... number several exact topics in one link.
        if key.lower() == "xt" or key.lower().startswith("xt.")
    ]
    for topic in topics:
        if topic[:9].lower() == "urn:btih:":
            return _from_digest(topic[9:], "magnet link urn:btih: ")
    if any(t[:9].lower() == "urn:btmh:" for t in topics):
        raise InfohashError(
            "magnet link is BitTorrent v2 only (urn:btmh); the Mainline DHT needs a v1 urn:btih"
        )
    if not topics:
        raise InfohashError("magnet link has no xt parameter (expected xt=urn:btih:...)")
    raise InfohashError("magnet link has no urn:btih")
