"""BEP 44 items: the BEP's three test vectors, signing with our own seeds, limits, targets."""

from __future__ import annotations

import hashlib

import pytest

from dhtviewer.dht import bencoding
from dhtviewer.dht.items import (
    BAD_SIGNATURE,
    PROTOCOL_ERROR,
    SALT_TOO_BIG,
    VALUE_TOO_BIG,
    Item,
    ItemError,
    canonical,
    encode_value,
    immutable_target,
    mutable_target,
    public_key_of,
    sign,
    signature_buffer,
    verify_signature,
)

# BEP 44, "Test Vectors". The BEP's private key is libtorrent's 64-byte *expanded* form (the
# clamped SHA-512 of a seed that is not published), which ed25519 libraries cannot sign with;
# the signatures are checked against the public key instead.
PUBLIC_KEY = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
VALUE = b"12:Hello World!"
SIG_1 = bytes.fromhex(
    "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
    "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
)
SIG_2 = bytes.fromhex(
    "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
    "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
)
SEED = bytes(range(32))


def test_vector_1_mutable() -> None:
    assert signature_buffer(1, VALUE) == b"3:seqi1e1:v12:Hello World!"
    assert mutable_target(PUBLIC_KEY).hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"
    assert verify_signature(PUBLIC_KEY, SIG_1, signature_buffer(1, VALUE))
    item = Item(VALUE, PUBLIC_KEY, 1, SIG_1)
    item.validate()
    assert item.target.hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"


def test_vector_2_mutable_with_salt() -> None:
    buf = signature_buffer(1, VALUE, b"foobar")
    assert buf == b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
    assert mutable_target(PUBLIC_KEY, b"foobar").hex() == "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    assert verify_signature(PUBLIC_KEY, SIG_2, buf)
    Item(VALUE, PUBLIC_KEY, 1, SIG_2, b"foobar").check_for(
        bytes.fromhex("411eba73b6f087ca51a3795d9c8c938d365e32c1")
    )
    # Each signature covers its own buffer only.
    assert not verify_signature(PUBLIC_KEY, SIG_1, buf)


def test_vector_3_immutable() -> None:
    assert encode_value(b"Hello World!") == VALUE
    assert immutable_target(VALUE).hex() == "e5f96f6f38320f0f33959cb4d3d656452117aadb"
    assert Item.immutable(b"Hello World!").target.hex() == (
        "e5f96f6f38320f0f33959cb4d3d656452117aadb"
    )


def test_empty_salt_is_no_salt() -> None:
    assert mutable_target(PUBLIC_KEY, b"") == mutable_target(PUBLIC_KEY)
    assert signature_buffer(1, VALUE, b"") == signature_buffer(1, VALUE)


def test_signing_with_our_own_seed_verifies_and_is_deterministic() -> None:
    item = Item.signed(SEED, {b"a": 1, b"b": [b"x"]}, 7, b"salt")
    item.validate()
    assert item.public_key == public_key_of(SEED)
    assert item.target == hashlib.sha1(public_key_of(SEED) + b"salt").digest()
    assert item.value == b"d1:ai1e1:bl1:xee"
    assert item.signature == sign(SEED, 7, item.value, b"salt")  # ed25519 is deterministic
    assert item.decoded_value() == {b"a": 1, b"b": [b"x"]}


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"salt": b"other"},
        {"value": b"3:bye"},
        {"signature": bytes(64)},
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, object]) -> None:
    good = Item.signed(SEED, b"hello", 7, b"salt")
    fields = {
        "value": good.value,
        "public_key": good.public_key,
        "seq": good.seq,
        "signature": good.signature,
        "salt": good.salt,
    }
    fields.update(change)
    bad = Item(**fields)  # type: ignore[arg-type]
    with pytest.raises(ItemError) as err:
        bad.validate()
    assert err.value.code == BAD_SIGNATURE


def test_a_key_that_is_not_a_curve_point_is_a_bad_signature() -> None:
    bad = Item(VALUE, b"\xff" * 32, 1, SIG_1)
    with pytest.raises(ItemError) as err:
        bad.validate()
    assert err.value.code == BAD_SIGNATURE


def test_limits_and_their_codes() -> None:
    big = b"x" * 996  # "996:" + 996 bytes = 1000 bytes bencoded: the largest allowed
    assert len(encode_value(big)) == 1000
    with pytest.raises(ItemError) as err:
        encode_value(big + b"x")
    assert err.value.code == VALUE_TOO_BIG
    with pytest.raises(ItemError) as err:
        Item.signed(SEED, b"v", 1, b"s" * 65)
    assert err.value.code == SALT_TOO_BIG
    Item.signed(SEED, b"v", 1, b"s" * 64).validate()
    for seq in (-1, 2**63):
        with pytest.raises(ItemError) as err:
            Item.signed(SEED, b"v", seq)
        assert err.value.code == PROTOCOL_ERROR
    Item.signed(SEED, b"v", 2**63 - 1).validate()
    with pytest.raises(ItemError) as err:
        encode_value(object())
    assert err.value.code == PROTOCOL_ERROR
    with pytest.raises(ItemError, match="'k' must be 32"):
        Item(VALUE, b"k" * 31, 1, SIG_1).validate()
    with pytest.raises(ItemError, match="'sig' must be 64"):
        Item(VALUE, PUBLIC_KEY, 1, SIG_1[:63]).validate()
    with pytest.raises(ValueError):
        public_key_of(b"short")


def test_check_for_says_which_hash_did_not_match() -> None:
    with pytest.raises(ItemError, match="SHA-1 of the value"):
        Item.immutable(b"a").check_for(bytes(20))
    with pytest.raises(ItemError, match="SHA-1 of key and salt"):
        Item.signed(SEED, b"a", 1).check_for(bytes(20))


def test_canonical() -> None:
    assert canonical(bencoding.decode(b"d1:ai1e1:bd1:cl1:xeee"))
    assert not canonical(bencoding.decode(b"d1:bi1e1:ai2ee"))  # unsorted keys
    assert not canonical(bencoding.decode(b"l1:xd1:bi1e1:ai2eee"))  # nested
    assert canonical(b"x") and canonical(5) and canonical([])
