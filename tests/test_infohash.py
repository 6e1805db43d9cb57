"""Info-hash input: every accepted form gives the same 20 bytes, every malformation a specific
message (the CLI and the GUI show it verbatim)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhtviewer.infohash import (
    V2_NOTE,
    InfohashError,
    format_infohash,
    parse_infohash,
    parse_infohash_note,
)

IH = bytes.fromhex("c9e15763f722f23e98a29decdfae341b98d53056")
HEX = IH.hex()
B32 = base64.b32encode(IH).decode()


@pytest.mark.parametrize(
    "text",
    [
        HEX,
        HEX.upper(),
        f"  {HEX}\n",
        B32,
        B32.lower(),
        f"magnet:?xt=urn:btih:{HEX}",
        f"magnet:?xt=urn:btih:{HEX.upper()}&dn=Some+Name&tr=udp%3A%2F%2Ftracker%3A80",
        f"magnet:?dn=first&xt=urn:btih:{B32}",
        f"MAGNET:?XT=URN:BTIH:{HEX}",
        f"magnet:?xt.1=urn:sha1:AAAA&xt.2=urn:btih:{HEX}",
        # A hybrid v1+v2 magnet carries both topics; the v1 hash is the DHT's.
        f"magnet:?xt=urn:btmh:1220{'ab' * 32}&xt=urn:btih:{HEX}",
        f"magnet:?xt=urn%3Abtih%3A{HEX}",
    ],
)
def test_accepted_forms(text: str) -> None:
    assert parse_infohash(text) == IH


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty info-hash"),
        ("   ", "empty info-hash"),
        (HEX[:-1], "expected 40 hex characters, got 39"),
        (HEX + "a", "expected 40 hex characters, got 41"),
        (HEX[:-1] + "g", "invalid hex character 'g' at position 40"),
        (B32[:-1] + "1", "invalid base32 character '1' at position 32"),
        ("hello world", "expected 40 hex or 32 base32 characters, got 11 characters"),
        ("magnet:", "magnet link has no parameters"),
        ("magnet:xt=urn:btih:" + HEX, "magnet link has no parameters"),
        ("magnet:?dn=name", "magnet link has no xt parameter"),
        ("magnet:?xt=urn:sha1:ABCDEF", "magnet link has no urn:btih"),
        (f"magnet:?xt=urn:btmh:1114{'ab' * 20}", "expected a SHA-256 multihash (starting 1220)"),
        (f"magnet:?xt=urn:btmh:1220{'ab' * 31}", "expected 64 hex characters after 1220, got 62"),
        (f"magnet:?xt=urn:btmh:1220{'ab' * 31}zz", "invalid hex character 'z' at position 67"),
        (
            f"magnet:?xt=urn:btih:{HEX[:-1]}",
            "magnet link urn:btih: expected 40 hex characters, got 39",
        ),
        (f"magnet:?xt=urn:btih:{B32[:-1]}8", "magnet link urn:btih: invalid base32 character '8'"),
    ],
)
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InfohashError) as info:
        parse_infohash(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch the general class


def test_a_v2_magnet_is_looked_up_by_its_truncated_sha256_hash_and_says_so() -> None:
    # BEP 52: v2 clients put the first 20 bytes of the SHA-256 info-hash on the DHT
    v2 = bytes.fromhex("c9e15763f722f23e98a29decdfae341b98d530561f0a2b3c4d5e6f708192a3b4")
    for text in (f"magnet:?xt=urn:btmh:1220{v2.hex()}&dn=v2+only",
                 f"magnet:?xt=urn:btmh:1220{v2.hex().upper()}"):
        info_hash, note = parse_infohash_note(text)
        assert info_hash == v2[:20] and note == V2_NOTE
        assert parse_infohash(text) == v2[:20]
    # a hybrid magnet uses its v1 hash, without a note
    assert parse_infohash_note(f"magnet:?xt=urn:btmh:1220{v2.hex()}&xt=urn:btih:{HEX}") == (
        IH, None)
    assert parse_infohash_note(HEX) == (IH, None)


@given(st.binary(min_size=20, max_size=20))
def test_every_hash_round_trips_through_every_form(ih: bytes) -> None:
    b32 = base64.b32encode(ih).decode()
    assert parse_infohash(format_infohash(ih)) == ih
    assert parse_infohash(b32) == ih
    assert parse_infohash(b32.lower()) == ih
    assert parse_infohash(f"magnet:?xt=urn:btih:{ih.hex()}&dn=x") == ih


def test_hex_output_is_lower_case() -> None:
    assert format_infohash(IH) == HEX
