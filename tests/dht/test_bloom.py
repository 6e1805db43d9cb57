"""BEP 33 filters: the BEP's test vector, estimates, unions, edges."""

from __future__ import annotations

import ipaddress

import pytest

from dhtviewer.dht.bloom import FILTER_BYTES, BloomFilter, packed_ip

# BEP 33, "Test Vectors": 192.0.2.0-192.0.2.255 and 2001:DB8::-2001:DB8::3E7 inserted.
BEP33_VECTOR = bytes.fromhex(
    "F6C3F5EA A07FFD91 BDE89F77 7F26FB2B FF37BDB8 FB2BBAA2 FD3DDDE7 BACFFF75 EE7CCBAE"
    "FE5EEDB1 FBFAFF67 F6ABFF5E 43DDBCA3 FD9B9FFD F4FFD3E9 DFF12D1B DF59DB53 DBE9FA5B"
    "7FF3B8FD FCDE1AFB 8BEDD7BE 2F3EE71E BBBFE93B CDEEFE14 8246C2BC 5DBFF7E7 EFDCF24F"
    "D8DC7ADF FD8FFFDF DDFFF7A4 BBEEDF5C B95CE81F C7FCFF1F F4FFFFDF E5F7FDCB B7FD79B3"
    "FA1FC77B FE07FFF9 05B7B7FF C7FEFEFF E0B8370B B0CD3F5B 7F2BD93F EB4386CF DD6F7FD5"
    "BFAF2E9E BFFFFEEC D67ADBF7 C67F17EF D5D75EBA 6FFEBA7F FF47A91E B1BFBB53 E8ABFB57"
    "62ABE8FF 237279BF EFBFEEF5 FFC5FEBF DFE5ADFF ADFEE1FB 737FFFFB FD9F6AEF FEEE76B6"
    "FD8F72EF".replace(" ", "")
)


def bep33_addresses() -> list[str]:
    v4 = [f"192.0.2.{i}" for i in range(256)]
    base6 = int(ipaddress.IPv6Address("2001:db8::"))
    v6 = [str(ipaddress.IPv6Address(base6 + i)) for i in range(0x3E8)]
    return v4 + v6


def test_bep33_test_vector() -> None:
    assert len(BEP33_VECTOR) == FILTER_BYTES
    f = BloomFilter.of(bep33_addresses())
    assert f.to_bytes() == BEP33_VECTOR
    assert f.estimate() == pytest.approx(1224.9308, abs=1e-4)


def test_vector_round_trips_and_contains_its_addresses() -> None:
    f = BloomFilter(BEP33_VECTOR)
    assert f == BloomFilter.of(bep33_addresses())
    assert all(ip in f for ip in bep33_addresses()[::37])


def test_packed_and_text_addresses_agree() -> None:
    assert BloomFilter.of(["192.0.2.7"]) == BloomFilter.of([bytes([192, 0, 2, 7])])
    # An IPv4-mapped IPv6 address is the IPv4 peer.
    assert BloomFilter.of(["::ffff:192.0.2.7"]) == BloomFilter.of(["192.0.2.7"])
    with pytest.raises(ValueError):
        packed_ip(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        packed_ip("not an ip")


def test_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        BloomFilter(b"\x00" * 255)


def test_empty_and_small_estimates() -> None:
    assert BloomFilter().estimate() == 0.0
    assert BloomFilter().is_empty()
    one = BloomFilter.of(["203.0.113.1"])
    assert 0.5 < one.estimate() < 1.5
    many = BloomFilter.of([f"10.{i // 256}.{i % 256}.1" for i in range(500)])
    assert many.estimate() == pytest.approx(500, rel=0.1)
    assert not many.saturated()


def test_union_estimates_the_union_not_the_sum() -> None:
    a = [f"10.0.{i // 256}.{i % 256}" for i in range(300)]
    b = [f"10.0.{i // 256}.{i % 256}" for i in range(200, 600)]  # 100 shared
    fa, fb = BloomFilter.of(a), BloomFilter.of(b)
    union = fa | fb
    assert union == BloomFilter.of(a + b)
    assert union == BloomFilter.union([fa, fb])
    assert union.estimate() == pytest.approx(600, rel=0.1)
    fa |= fb
    assert fa == union
    assert BloomFilter.union([]).is_empty()


def test_a_full_filter_is_a_bounded_lower_bound() -> None:
    full = BloomFilter(b"\xff" * FILTER_BYTES)
    assert full.saturated()
    assert 7000 < full.estimate() < 8000  # finite: one zero bit's worth
    assert full.zero_bits() == 0
