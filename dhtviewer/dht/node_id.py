"""160-bit node ids: XOR distance, shared prefix length, random ids in a range, and BEP 42.

Ids are plain 20-byte ``bytes``; distances are Python ints (XOR of the big-endian values), which is
both the fastest representation in CPython and the one the Kademlia maths is written in.
"""

from __future__ import annotations

import random

from dhtviewer.dht.addresses import acceptable_address, pack_ip

ID_BYTES = 20
ID_BITS = 160
_MAX = (1 << ID_BITS) - 1


def id_to_int(node_id: bytes) -> int:
    return int.from_bytes(node_id, "big")


def int_to_id(value: int) -> bytes:
    return (value & _MAX).to_bytes(ID_BYTES, "big")


def distance(a: bytes, b: bytes) -> int:
    """XOR distance, as an unsigned int."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def shared_prefix_bits(a: bytes, b: bytes) -> int:
    """Number of leading bits ``a`` and ``b`` share (160 when equal)."""
    return ID_BITS - distance(a, b).bit_length()


def random_id(rng: random.Random) -> bytes:
    return rng.getrandbits(ID_BITS).to_bytes(ID_BYTES, "big")


def random_id_with_prefix(rng: random.Random, prefix_of: bytes, prefix_bits: int) -> bytes:
    """A random id sharing exactly ``prefix_bits`` leading bits with ``prefix_of`` (bucket refresh:
    the id lands in bucket ``prefix_bits``). ``prefix_bits`` == 160 returns ``prefix_of``."""
    if not 0 <= prefix_bits <= ID_BITS:
        raise ValueError(f"prefix_bits must be 0..160, got {prefix_bits}")
    if prefix_bits == ID_BITS:
        return prefix_of
    base = id_to_int(prefix_of)
    free = ID_BITS - prefix_bits - 1  # bits below the first differing bit
    flip = 1 << free
    keep_mask = _MAX ^ ((1 << (free + 1)) - 1)
    # keep the prefix, flip the first bit after it, randomise the rest
    value = (base & keep_mask) | ((base & flip) ^ flip) | rng.getrandbits(free)
    return int_to_id(value)


# --- BEP 42 -------------------------------------------------------------------------------------
def _make_crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum BEP 42 uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_V4_MASK = bytes([0x03, 0x0F, 0x3F, 0xFF])
_V6_MASK = bytes([0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF])


def _bep42_crc(ip: str, rand: int) -> int:
    packed = pack_ip(ip)
    if len(packed) == 4:
        masked = bytearray(a & m for a, m in zip(packed, _V4_MASK, strict=True))
        masked[0] |= (rand & 0x07) << 5
    else:
        masked = bytearray(a & m for a, m in zip(packed[:8], _V6_MASK, strict=True))
        masked[0] |= (rand & 0x07) << 5
    return crc32c(bytes(masked))


def bep42_exempt(ip: str) -> bool:
    """Local, private, loopback and reserved addresses are exempt from BEP 42."""
    return acceptable_address((ip, 1), allow_local=False) is not None


def bep42_id(ip: str, rng: random.Random, rand: int | None = None) -> bytes:
    """A node id valid for ``ip`` under BEP 42: the top 21 bits come from the CRC, the last byte
    is ``rand`` (random if not given) and the bits in between are random."""
    r = rng.getrandbits(8) if rand is None else rand & 0xFF
    crc = _bep42_crc(ip, r)
    middle = bytearray(rng.getrandbits(8) for _ in range(ID_BYTES))
    middle[0] = (crc >> 24) & 0xFF
    middle[1] = (crc >> 16) & 0xFF
    middle[2] = ((crc >> 8) & 0xF8) | (middle[2] & 0x07)
    middle[19] = r
    return bytes(middle)


def bep42_valid(node_id: bytes, ip: str) -> bool:
    """True if ``node_id`` satisfies BEP 42 for ``ip`` (exempt addresses are always valid)."""
    if len(node_id) != ID_BYTES:
        return False
    if bep42_exempt(ip):
        return True
    crc = _bep42_crc(ip, node_id[19])
    return (
        node_id[0] == (crc >> 24) & 0xFF
        and node_id[1] == (crc >> 16) & 0xFF
        and (node_id[2] & 0xF8) == ((crc >> 8) & 0xF8)
    )
