"""TokenIssuer: tokens bound to IP and info_hash, alive between one and two rotation periods."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhtviewer.dht.tokens import TOKEN_SIZE, TokenIssuer, _pack_ip

IH = bytes(range(20))
OTHER_IH = bytes(range(1, 21))
IP = "203.0.113.7"
IP6 = "2001:db8::7"


def make(now: float = 1000.0, seed: int = 1) -> TokenIssuer:
    return TokenIssuer(random.Random(seed), now, rotation=300.0)


def test_token_is_eight_bytes_and_valid_now() -> None:
    t = make()
    tok = t.issue(IP, IH, 1000.0)
    assert len(tok) == TOKEN_SIZE == 8
    assert t.verify(tok, IP, IH, 1000.0)


def test_token_survives_one_rotation_and_dies_at_the_second() -> None:
    t = make(now=1000.0)
    assert t.next_rotation() == 1300.0
    tok = t.issue(IP, IH, 1299.0)  # issued just before the first rotation: shortest life
    assert t.verify(tok, IP, IH, 1300.0)  # after one rotation: previous secret, still good
    assert t.verify(tok, IP, IH, 1599.0)
    assert t.next_rotation() == 1600.0
    assert not t.verify(tok, IP, IH, 1600.0)  # after two rotations: dead


def test_token_issued_right_after_rotation_lives_two_periods() -> None:
    t = make(now=0.0)
    tok = t.issue(IP, IH, 300.0)
    assert t.verify(tok, IP, IH, 899.0)
    assert not t.verify(tok, IP, IH, 900.0)


def test_several_idle_periods_kill_both_secrets() -> None:
    """Rotation is lazy: if nobody asks for three periods, the next call must not treat the
    stale current secret as merely 'previous'."""
    t = make(now=0.0)
    tok = t.issue(IP, IH, 250.0)
    assert not t.verify(tok, IP, IH, 1000.0)
    # and the rotation grid is kept: periods start at multiples of 300 from the start
    assert t.next_rotation() == 1200.0


def test_lazy_rotation_same_outcome_as_regular_calls() -> None:
    """Whether verify is called once per second or only at the end, the answer is the same."""
    a, b = make(now=0.0, seed=5), make(now=0.0, seed=5)
    tok_a, tok_b = a.issue(IP, IH, 10.0), b.issue(IP, IH, 10.0)
    assert tok_a == tok_b
    for s in range(11, 600):
        assert a.verify(tok_a, IP, IH, float(s))
    assert b.verify(tok_b, IP, IH, 599.0)
    assert not a.verify(tok_a, IP, IH, 600.0)
    assert not b.verify(tok_b, IP, IH, 600.0)


def test_token_refused_from_another_ip() -> None:
    t = make()
    tok = t.issue(IP, IH, 1000.0)
    assert not t.verify(tok, "203.0.113.8", IH, 1000.0)
    assert not t.verify(tok, IP6, IH, 1000.0)


def test_token_refused_for_another_info_hash() -> None:
    t = make()
    tok = t.issue(IP, IH, 1000.0)
    assert not t.verify(tok, IP, OTHER_IH, 1000.0)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 7, b"\x00" * 9, b"\x00" * 20])
def test_wrong_length_refused(bad: bytes) -> None:
    t = make()
    assert not t.verify(bad, IP, IH, 1000.0)


def test_wrong_length_prefix_of_valid_token_refused() -> None:
    t = make()
    tok = t.issue(IP, IH, 1000.0)
    assert not t.verify(tok[:4], IP, IH, 1000.0)
    assert not t.verify(tok + b"\x00", IP, IH, 1000.0)


def test_tokens_differ_per_ip_and_per_issuer() -> None:
    t = make()
    assert t.issue(IP, IH, 1000.0) != t.issue("203.0.113.8", IH, 1000.0)
    # another node (other secret) issues another token for the same request
    assert make(seed=2).issue(IP, IH, 1000.0) != t.issue(IP, IH, 1000.0)
    assert not make(seed=2).verify(t.issue(IP, IH, 1000.0), IP, IH, 1000.0)


def test_ipv6_spellings_and_ipv4_mapped_share_a_token() -> None:
    t = make()
    assert t.verify(t.issue("2001:db8::7", IH, 1000.0), "2001:0db8:0:0::7", IH, 1000.0)
    assert t.verify(t.issue("::ffff:203.0.113.7", IH, 1000.0), IP, IH, 1000.0)


def test_ipv4_plus_long_hash_does_not_collide_with_ipv6() -> None:
    """The IPv6 address 203.0.113.7 followed by 12 more bytes, hashed with a 20-byte
    info_hash, must not give the token of that IPv4 address with a 32-byte info_hash."""
    t = make()
    tail = bytes(range(12))
    ip6 = "cb00:7107:" + ":".join(f"{tail[i]:02x}{tail[i + 1]:02x}" for i in range(0, 12, 2))
    tok = t.issue(IP, tail + IH, 1000.0)
    assert not t.verify(tok, ip6, IH, 1000.0)


def test_rotation_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenIssuer(random.Random(1), 0.0, rotation=0.0)


@given(
    ip=st.ip_addresses().map(str),
    other=st.ip_addresses().map(str),
    info_hash=st.binary(min_size=20, max_size=20),
    age=st.floats(min_value=0.0, max_value=299.999),
    start=st.floats(min_value=0.0, max_value=1e6),
)
def test_property_fresh_token_verifies_only_for_its_owner(
    ip: str, other: str, info_hash: bytes, age: float, start: float
) -> None:
    t = TokenIssuer(random.Random(7), 0.0, rotation=300.0)
    tok = t.issue(ip, info_hash, start)
    assert t.verify(tok, ip, info_hash, start + age)
    if _pack_ip(other) != _pack_ip(ip):
        assert not t.verify(tok, other, info_hash, start + age)
