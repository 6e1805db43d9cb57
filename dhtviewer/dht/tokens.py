"""Write tokens for ``announce_peer`` (BEP 5): issuing them in ``get_peers`` replies, checking them.

A token proves that whoever announces from an IP address recently asked us, from that same address,
about that info_hash. Without it, anyone could announce a spoofed address as a peer of any swarm and
have us hand it out (an easy way to point downloaders at a victim).

A token is the first 8 bytes of ``sha1(secret || len(ip) || packed ip || info_hash)``. Nothing is
stored per token: the secret is what makes it unforgeable, and rotating the secret is what makes
it expire. The secret rotates every ``rotation`` seconds and the previous one is still accepted,
so a token stays valid for between one and two rotation periods (5 to 10 minutes by default, as in
deployed clients), long enough for a lookup to finish and announce.
"""

from __future__ import annotations

import hashlib
import hmac
import random

from dhtviewer.dht.addresses import pack_ip_unmapped

TOKEN_SIZE = 8
"""Bytes in a token: 64 bits cannot be guessed while a secret lives, and replies stay small."""

_SECRET_SIZE = 16


def _pack_ip(ip: str) -> bytes:
    """The address in network byte order, so that textual variants of one IPv6 address (``::1``,
    ``0:0::1``) get the same token; an IPv4-mapped IPv6 address counts as the IPv4 address
    (``addresses.pack_ip_unmapped``)."""
    try:
        return pack_ip_unmapped(ip)
    except ValueError:
        # Not expected from a socket; still hash something stable rather than fail the reply.
        return ip.encode("utf-8", "surrogateescape")


class TokenIssuer:
    """Issues and verifies IP- and info_hash-bound tokens under two rotating secrets.

    Rotation is lazy: ``issue`` and ``verify`` look at ``now`` and rotate if a period has
    passed, so the node needs no timer for it. ``now`` should not go backwards; if it does,
    nothing rotates until it catches up.
    """

    def __init__(self, rng: random.Random, now: float, rotation: float = 300.0) -> None:
        if not rotation > 0:
            raise ValueError(f"rotation must be positive, got {rotation!r}")
        self._rng = rng
        self._rotation = rotation
        self._current = self._new_secret()
        # A fresh random "previous" secret matches no token ever issued, so there is no special
        # case for the first period.
        self._previous = self._new_secret()
        self._rotated_at = now

    def _new_secret(self) -> bytes:
        return self._rng.getrandbits(_SECRET_SIZE * 8).to_bytes(_SECRET_SIZE, "big")

    def _rotate(self, now: float) -> None:
        periods = int((now - self._rotated_at) // self._rotation)
        if periods <= 0:
            return
        if periods == 1:
            self._previous = self._current
            self._current = self._new_secret()
        else:
            # Two or more periods passed unobserved: on the regular schedule both secrets would
            # have been replaced by now, so every outstanding token must die.
            self._previous = self._new_secret()
            self._current = self._new_secret()
        # Stay on the original period grid so the lifetime bounds hold however rarely we are asked.
        self._rotated_at += periods * self._rotation

    @staticmethod
    def _token(secret: bytes, packed_ip: bytes, info_hash: bytes) -> bytes:
        # The length byte keeps (IPv4 address, longer info_hash) and (IPv6 address, shorter
        # info_hash) from ever hashing the same bytes.
        data = secret + bytes([len(packed_ip)]) + packed_ip + info_hash
        return hashlib.sha1(data).digest()[:TOKEN_SIZE]

    def issue(self, ip: str, info_hash: bytes, now: float) -> bytes:
        """The token to put in a ``get_peers`` reply to ``ip`` about ``info_hash``."""
        self._rotate(now)
        return self._token(self._current, _pack_ip(ip), info_hash)

    def verify(self, token: bytes, ip: str, info_hash: bytes, now: float) -> bool:
        """True if ``token`` was issued to ``ip`` for ``info_hash`` under the current or the
        previous secret."""
        self._rotate(now)
        if len(token) != TOKEN_SIZE:
            return False
        packed = _pack_ip(ip)
        # Compare against both secrets every time (no early exit) so timing reveals nothing.
        ok_current = hmac.compare_digest(token, self._token(self._current, packed, info_hash))
        ok_previous = hmac.compare_digest(token, self._token(self._previous, packed, info_hash))
        return ok_current | ok_previous

    def next_rotation(self) -> float:
        """When the current secret becomes the previous one (tokens of the previous secret die)."""
        return self._rotated_at + self._rotation
