"""BEP 44 items: immutable values stored under their SHA-1, and mutable values signed with an
ed25519 key, stored under SHA-1(public key + salt).

This module owns what an item *is* and when it is valid: the target it is stored under, the
buffer a signature covers (``4:salt<n>:<salt>3:seqi<seq>e1:v<value>``, the salt part only for a
non-empty salt), signing and verifying (with ``cryptography``, a well-kept library), and the
limits (value <= 1000 bytes bencoded, salt <= 64 bytes, 0 <= seq <= 2**63 - 1). Every refusal is
an ``ItemError`` carrying the BEP 44 error code a storage node answers with and a reason a user
can act on.

A value is kept as its *bencoded* bytes (``ItemValue.raw``): that flattened form is what is
hashed, signed, size-checked and sent, so it is never re-derived from a decoded object, whose
dictionaries a sloppy encoder might reorder. ``canonical`` checks that a value decoded from the
wire was canonical in the first place (sorted dictionary keys): the BEP requires refusing
anything else (error 203), because its hash would depend on how it is re-encoded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import pairwise

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dhtviewer.dht import bencoding

__all__ = [
    "BAD_SIGNATURE",
    "CAS_MISMATCH",
    "MAX_SALT_BYTES",
    "MAX_SEQ",
    "MAX_VALUE_BYTES",
    "PROTOCOL_ERROR",
    "PUBLIC_KEY_BYTES",
    "SALT_TOO_BIG",
    "SEED_BYTES",
    "SEQ_TOO_LOW",
    "SIGNATURE_BYTES",
    "VALUE_TOO_BIG",
    "Item",
    "ItemError",
    "canonical",
    "encode_value",
    "immutable_target",
    "mutable_target",
    "public_key_of",
    "sign",
    "signature_buffer",
    "verify_signature",
]

# Error codes (BEP 44, "Errors"; 203 from BEP 5).
PROTOCOL_ERROR = 203
VALUE_TOO_BIG = 205
BAD_SIGNATURE = 206
SALT_TOO_BIG = 207
CAS_MISMATCH = 301
SEQ_TOO_LOW = 302

MAX_VALUE_BYTES = 1000
MAX_SALT_BYTES = 64
MAX_SEQ = 2**63 - 1
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32


class ItemError(ValueError):
    """An item refused: ``code`` is the BEP 44 error code, ``reason`` short ASCII text (safe
    to send back in a KRPC error)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def canonical(value: object) -> bool:
    """Whether a value decoded by ``bencoding.decode`` re-encodes to exactly the bytes it came
    from. The decoder already refuses non-canonical integers and duplicate keys and keeps the
    keys of each dict in wire order, so what is left to check is that every dict's keys are
    sorted."""
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            keys = list(v)
            if any(a >= b for a, b in pairwise(keys)):
                return False
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
    return True


def encode_value(value: object) -> bytes:
    """The bencoded form of ``value`` (bytes, str, int, list, dict); ``ItemError`` 205 if it is
    larger than the BEP's 1000 bytes, ``ItemError`` 203 if it cannot be bencoded."""
    try:
        raw = bencoding.encode(value)
    except bencoding.BencodeError as err:
        raise ItemError(PROTOCOL_ERROR, f"value cannot be bencoded: {err}") from None
    check_value_size(raw)
    return raw


def check_value_size(raw: bytes) -> None:
    if len(raw) > MAX_VALUE_BYTES:
        raise ItemError(
            VALUE_TOO_BIG, f"value is {len(raw)} bytes bencoded, more than {MAX_VALUE_BYTES}"
        )


def check_salt(salt: bytes) -> None:
    if len(salt) > MAX_SALT_BYTES:
        raise ItemError(SALT_TOO_BIG, f"salt is {len(salt)} bytes, more than {MAX_SALT_BYTES}")


def check_seq(seq: int) -> None:
    if not 0 <= seq <= MAX_SEQ:
        raise ItemError(PROTOCOL_ERROR, f"seq must be in 0..2**63-1, got {seq}")


def immutable_target(raw_value: bytes) -> bytes:
    """Where an immutable item is stored: SHA-1 of its bencoded value."""
    return hashlib.sha1(raw_value).digest()


def mutable_target(public_key: bytes, salt: bytes = b"") -> bytes:
    """Where a mutable item is stored: SHA-1 of the public key followed by the salt (an empty
    salt is the same as none)."""
    return hashlib.sha1(public_key + salt).digest()


def signature_buffer(seq: int, raw_value: bytes, salt: bytes = b"") -> bytes:
    """What a mutable item's signature covers (BEP 44, "Signature Verification")."""
    head = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + raw_value


def public_key_of(seed: bytes) -> bytes:
    """The 32-byte ed25519 public key of a 32-byte private seed."""
    return _private(seed).public_key().public_bytes_raw()


def sign(seed: bytes, seq: int, raw_value: bytes, salt: bytes = b"") -> bytes:
    """The 64-byte signature of (salt, seq, value) with the key whose seed is ``seed``."""
    return _private(seed).sign(signature_buffer(seq, raw_value, salt))


def verify_signature(public_key: bytes, signature: bytes, buffer: bytes) -> bool:
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, buffer)
    except (InvalidSignature, ValueError):
        # ValueError: 32 bytes that are not a point on the curve.
        return False
    return True


def _private(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != SEED_BYTES:
        raise ValueError(f"an ed25519 seed is {SEED_BYTES} bytes, got {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True, slots=True)
class Item:
    """One BEP 44 item. Immutable when ``public_key`` is None (then ``seq``/``signature``/
    ``salt`` are unused). ``value``: the bencoded value (raw bytes)."""

    value: bytes
    public_key: bytes | None = None
    seq: int = 0
    signature: bytes = b""
    salt: bytes = b""

    @property
    def mutable(self) -> bool:
        return self.public_key is not None

    @property
    def target(self) -> bytes:
        if self.public_key is None:
            return immutable_target(self.value)
        return mutable_target(self.public_key, self.salt)

    def decoded_value(self) -> object:
        """The value as bencode objects (bytes, int, list, dict)."""
        return bencoding.decode(self.value, 100)

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def immutable(cls, value: object) -> Item:
        """An immutable item for ``value`` (any bencodable value). ItemError 203/205."""
        return cls(encode_value(value))

    @classmethod
    def signed(cls, seed: bytes, value: object, seq: int, salt: bytes = b"") -> Item:
        """A mutable item signed with the key of ``seed``. ItemError 203/205/207."""
        raw = encode_value(value)
        check_salt(salt)
        check_seq(seq)
        return cls(raw, public_key_of(seed), seq, sign(seed, seq, raw, salt), salt)

    # --- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ItemError`` unless the item may be stored: size, salt and seq limits, and
        the signature of a mutable item (206). What a storage node checks before storing."""
        check_value_size(self.value)
        if self.public_key is None:
            return
        check_salt(self.salt)
        check_seq(self.seq)
        if len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ItemError(PROTOCOL_ERROR, f"'k' must be 32 bytes, got {len(self.public_key)}")
        if len(self.signature) != SIGNATURE_BYTES:
            raise ItemError(PROTOCOL_ERROR, f"'sig' must be 64 bytes, got {len(self.signature)}")
        buf = signature_buffer(self.seq, self.value, self.salt)
        if not verify_signature(self.public_key, self.signature, buf):
            raise ItemError(BAD_SIGNATURE, "invalid signature")

    def check_for(self, target: bytes) -> None:
        """What a requesting node checks of an item a ``get`` returned for ``target``: the
        target matches (hash of the value, or of key and salt) and the item is valid. Raises
        ``ItemError`` saying why it must be rejected."""
        if self.target != target:
            what = "SHA-1 of the value" if self.public_key is None else "SHA-1 of key and salt"
            raise ItemError(PROTOCOL_ERROR, f"{what} does not match the target")
        self.validate()
