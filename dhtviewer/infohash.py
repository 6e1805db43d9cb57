"""Info-hashes as users paste them: 40 hex digits, 32 base32 characters, or a magnet link.

Shared by the command line and the GUI's lookup field, so both accept the same forms and report
the same specific errors. The Mainline DHT keys swarms by 20-byte hashes. A BitTorrent v2 magnet
(BEP 52, ``urn:btmh:1220`` and the 32-byte SHA-256 info-hash as a hex multihash) is looked up by
the first 20 bytes of that hash, as v2 clients announce and look up v2 torrents on the DHT;
``parse_infohash_note`` says when that happened, so the user is told. A hybrid magnet carries a
v1 ``urn:btih`` too, which is used as it is. ``format_addr`` and ``parse_hostport`` (defined in
``dhtviewer.dht.addresses``) are re-exported here because the same input fields need them.
"""

from __future__ import annotations

import base64
import string
from urllib.parse import parse_qsl, unquote

from dhtviewer.dht.addresses import format_addr, parse_hostport

__all__ = ["V2_NOTE", "InfohashError", "format_addr", "format_infohash", "parse_hostport",
           "parse_infohash", "parse_infohash_note"]

_HEX = frozenset(string.hexdigits)
_BASE32 = frozenset(string.ascii_uppercase + "234567")
_SHA256_MULTIHASH = "1220"  # multihash code 0x12 (sha2-256), length 0x20 (32 bytes)
V2_NOTE = ("BitTorrent v2 magnet: looking up the first 20 bytes of its SHA-256 info-hash, as v2 "
           "clients do on the DHT")


class InfohashError(ValueError):
    """The text is not an info-hash; the message says what is wrong with it."""


def parse_infohash(text: str) -> bytes:
    """The 20-byte info-hash in ``text``: hex, base32 or a magnet link (blanks around ignored)."""
    return parse_infohash_note(text)[0]


def parse_infohash_note(text: str) -> tuple[bytes, str | None]:
    """``parse_infohash``, and a note for the user when the hash is not the text's own: the
    truncated SHA-256 hash of a v2-only magnet (``V2_NOTE``); None otherwise."""
    s = text.strip()
    if not s:
        raise InfohashError("empty info-hash")
    if s[:7].lower() == "magnet:":
        return _from_magnet(s)
    return _from_digest(s, ""), None


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


def _from_multihash(s: str) -> bytes:
    """The first 20 bytes of the SHA-256 info-hash in a hex multihash ("1220" + 64 hex)."""
    where = "magnet link urn:btmh: "
    if s[:4].lower() != _SHA256_MULTIHASH:
        raise InfohashError(f"{where}expected a SHA-256 multihash (starting 1220), got "
                            f"{s[:4]!r}")
    digest = s[4:]
    for i, ch in enumerate(digest):
        if ch not in _HEX:
            raise InfohashError(f"{where}invalid hex character {ch!r} at position {i + 5}")
    if len(digest) != 64:
        raise InfohashError(f"{where}expected 64 hex characters after 1220, got {len(digest)}")
    return bytes.fromhex(digest)[:20]


def _from_magnet(s: str) -> tuple[bytes, str | None]:
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
            return _from_digest(topic[9:], "magnet link urn:btih: "), None
    for topic in topics:
        if topic[:9].lower() == "urn:btmh:":
            return _from_multihash(topic[9:]), V2_NOTE
    if not topics:
        raise InfohashError("magnet link has no xt parameter (expected xt=urn:btih:...)")
    raise InfohashError("magnet link has no urn:btih or urn:btmh")
