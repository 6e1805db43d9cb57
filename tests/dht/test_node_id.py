"""Node ids: XOR metric, prefixes, random ids in a bucket, BEP 42 (test vectors from the spec)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhtviewer.dht.node_id import (
    bep42_id,
    bep42_valid,
    crc32c,
    distance,
    id_to_int,
    int_to_id,
    random_id,
    random_id_with_prefix,
    shared_prefix_bits,
)

ids = st.binary(min_size=20, max_size=20)

# (IP, random byte, node id) from BEP 42.
BEP42_VECTORS = [
    ("124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ("21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
    ("65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ("84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ("43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
]


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize(("ip", "rand", "node_id"), BEP42_VECTORS)
def test_bep42_vectors_verify(ip: str, rand: int, node_id: str) -> None:
    assert bep42_valid(bytes.fromhex(node_id), ip)


@pytest.mark.parametrize(("ip", "rand", "node_id"), BEP42_VECTORS)
def test_bep42_generation_matches_vector_prefix(ip: str, rand: int, node_id: str) -> None:
    generated = bep42_id(ip, random.Random(7), rand)
    expected = bytes.fromhex(node_id)
    # the top 21 bits and the last byte are fixed by the spec; the rest is random
    assert generated[:2] == expected[:2]
    assert generated[2] & 0xF8 == expected[2] & 0xF8
    assert generated[19] == rand
    assert bep42_valid(generated, ip)


def test_bep42_rejects_wrong_ip_and_accepts_private() -> None:
    node_id = bytes.fromhex(BEP42_VECTORS[0][2])
    assert not bep42_valid(node_id, "124.31.75.22")
    assert bep42_valid(b"\x00" * 20, "192.168.1.5")
    assert bep42_valid(b"\x00" * 20, "127.0.0.1")
    assert not bep42_valid(b"\x00" * 19, "124.31.75.21")


def test_bep42_ipv6_ids_bind_to_their_address() -> None:
    rng = random.Random(3)
    addrs = [f"2a01:{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}::1" for _ in range(50)]
    node_ids = [bep42_id(a, rng) for a in addrs]
    assert all(bep42_valid(n, a) for n, a in zip(node_ids, addrs, strict=True))
    # an id made for one address almost never verifies for another (21 bits must match)
    cross = sum(bep42_valid(n, a) for n, a in zip(node_ids, addrs[1:] + addrs[:1], strict=True))
    assert cross <= 1


@given(ids, ids)
def test_distance_is_symmetric_xor(a: bytes, b: bytes) -> None:
    assert distance(a, b) == distance(b, a) == id_to_int(a) ^ id_to_int(b)
    assert (distance(a, b) == 0) == (a == b)


@given(ids, ids, ids)
def test_distance_triangle_inequality(a: bytes, b: bytes, c: bytes) -> None:
    assert distance(a, c) <= distance(a, b) + distance(b, c)


@given(ids)
def test_int_round_trip(a: bytes) -> None:
    assert int_to_id(id_to_int(a)) == a


@given(ids, st.integers(min_value=0, max_value=160), st.integers(min_value=0, max_value=2**32))
def test_random_id_with_prefix_lands_in_bucket(own: bytes, bits: int, seed: int) -> None:
    rid = random_id_with_prefix(random.Random(seed), own, bits)
    assert shared_prefix_bits(own, rid) == bits


def test_random_id_with_prefix_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="prefix_bits"):
        random_id_with_prefix(random.Random(1), b"\x00" * 20, 161)


def test_random_ids_are_deterministic_per_seed() -> None:
    assert random_id(random.Random(9)) == random_id(random.Random(9))
    assert random_id(random.Random(9)) != random_id(random.Random(10))
