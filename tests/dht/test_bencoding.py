"""Bencode codec: round trips, agreement with bencode.py, and every malformation we refuse."""

from __future__ import annotations

import re

import bencodepy
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dhtviewer.dht.bencoding import MAX_DEPTH, MAX_INT_DIGITS, BencodeError, decode, encode

# Values as decode returns them: bytes, int, list, dict with bytes keys.
values = st.recursive(
    st.binary(max_size=40) | st.integers(min_value=-(10**30), max_value=10**30),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


def depth_of(v: object) -> int:
    if isinstance(v, list):
        return 1 + max((depth_of(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth_of(x) for x in v.values()), default=0)
    return 0


# --- known vectors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"4:spam", b"spam"),
        (b"0:", b""),
        (b"i0e", 0),
        (b"i-3e", -3),
        (b"i42e", 42),
        (b"le", []),
        (b"de", {}),
        (b"l4:spami42ee", [b"spam", 42]),
        (b"d3:bar4:spam3:fooi42ee", {b"bar": b"spam", b"foo": 42}),
        (b"12:abcdefghijkl", b"abcdefghijkl"),
        (b"d1:ald1:bi1eeee", {b"a": [{b"b": 1}]}),
    ],
)
def test_known_vectors_decode_and_encode(data: bytes, value: object) -> None:
    assert decode(data) == value
    assert encode(value) == data


def test_long_strings_take_the_general_length_path() -> None:
    blob = bytes(range(256)) * 4
    assert decode(b"1024:" + blob) == blob
    assert decode(b"l300:" + blob[:300] + b"e") == [blob[:300]]
    assert decode(b"d120:" + blob[:120] + b"i1ee") == {blob[:120]: 1}


# --- properties -----------------------------------------------------------------------------------


@given(values)
def test_round_trip(value: object) -> None:
    assert decode(encode(value), max_depth=100) == value


@given(values)
def test_matches_bencodepy_oracle(value: object) -> None:
    data = encode(value)
    assert data == bencodepy.encode(value)
    assert decode(data, max_depth=100) == bencodepy.decode(data)


@given(values)
def test_max_depth_is_exact(value: object) -> None:
    data = encode(value)
    depth = depth_of(value)
    assert decode(data, max_depth=depth) == value
    if depth > 0:
        with pytest.raises(BencodeError, match="nesting deeper"):
            decode(data, max_depth=depth - 1)


@settings(max_examples=300)
@given(st.binary(max_size=64))
@example(b"")
@example(b"d1:a")
@example(b"l" * 50)
@example(b"i" + b"9" * 100)
@example(b"99999999999999999999999:")
def test_arbitrary_bytes_only_ever_raise_bencode_error(data: bytes) -> None:
    try:
        value = decode(data)
    except BencodeError:
        return
    assert decode(encode(value)) == value


@settings(max_examples=200)
@given(values, st.data())
def test_mutated_encodings_only_ever_raise_bencode_error(
    value: object, data: st.DataObject
) -> None:
    raw = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, len(raw)))
        if op == "flip" and at < len(raw):
            raw[at] = data.draw(st.sampled_from(b"0123456789:ield-x"))
        elif op == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del raw[at : at + 1]
        else:
            del raw[at:]
    try:
        result = decode(bytes(raw), max_depth=100)
    except BencodeError:
        return
    # Whatever still decodes is made of bencodable values only.
    assert decode(encode(result), max_depth=100) == result


# --- accepted liberally ---------------------------------------------------------------------------


def test_unsorted_dict_keys_are_accepted() -> None:
    assert decode(b"d1:bi1e1:ai2ee") == {b"a": 2, b"b": 1}


def test_bytes_like_input_is_accepted() -> None:
    assert decode(bytearray(b"i7e")) == 7
    assert decode(memoryview(b"l1:ae")) == [b"a"]


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode("i1e")  # type: ignore[arg-type]


def test_longest_accepted_integer() -> None:
    big = int("9" * MAX_INT_DIGITS)
    assert decode(b"i%de" % big) == big
    assert decode(b"i-%de" % big) == -big


# --- malformations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty input"),
        # integers
        (b"ie", "empty integer"),
        (b"i-e", "bad integer"),
        (b"i01e", "leading zero"),
        (b"i-01e", "leading zero"),
        (b"i-0e", "negative zero"),
        (b"i+1e", "bad integer"),
        (b"i 1e", "bad integer"),
        (b"i1_000e", "bad integer"),
        (b"i1.5e", "bad integer"),
        (b"i12", "truncated integer"),
        (b"i-", "truncated integer"),
        (b"li12", "truncated integer"),
        (b"i" + b"1" * (MAX_INT_DIGITS + 1) + b"e", "longer than 64 digits"),
        (b"i-" + b"1" * (MAX_INT_DIGITS + 1) + b"e", "longer than 64 digits"),
        (b"i" + b"1" * 1000 + b"e", "longer than 64 digits"),
        (b"i12x" + b"3" * 100, "bad integer"),
        # strings
        (b"4:spa", "truncated string"),
        (b"5:", "truncated string"),
        (b"12:abc", "truncated string"),
        (b"300:abc", "truncated string"),
        (b"l9:spame", "truncated string"),
        (b"3", "truncated string length"),
        (b"12", "truncated string length"),
        (b"l12", "truncated string length"),
        (b"d1:a12", "truncated string length"),
        (b"03:abc", "leading zero in string length"),
        (b"00:", "leading zero in string length"),
        (b"1x:a", "bad string length prefix"),
        (b"1x", "bad string length prefix"),
        (b"12345678901:" + b"a" * 10, "string length prefix too long"),
        (b"99999999999999999999:", "string length prefix too long"),
        (b"9999999999:abc", "runs past the end"),
        # lists and dicts
        (b"l", "truncated list"),
        (b"li1e", "truncated list"),
        (b"lle", "truncated list"),
        (b"d", "truncated dict"),
        (b"d1:ai1e", "truncated dict"),
        (b"d1:a", "key b'a' has no value"),
        (b"d1:ae", "key b'a' has no value"),
        (b"d3:fooi1e3:bare", "key b'bar' has no value"),
        (b"di1ei2ee", "dict key must be a byte string"),
        (b"dlei1ee", "dict key must be a byte string"),
        (b"dde1:ae", "dict key must be a byte string"),
        (b"d1:ai1e1:ai2ee", "duplicate dict key b'a'"),
        (b"d1:bi1e1:ai2e1:bi3ee", "duplicate dict key b'b'"),
        # structure
        (b"e", "unexpected 'e'"),
        (b"x", "unexpected byte 'x'"),
        (b"\x00", "unexpected byte 0x00"),
        (b"l\xffe", "unexpected byte 0xff"),
        (b"i1ei2e", "trailing byte"),
        (b"4:spamx", "1 trailing byte"),
        (b"lee", "1 trailing byte"),
        (b"de\n", "1 trailing byte"),
    ],
)
def test_malformations_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(BencodeError, match=re.escape(reason)) as info:
        decode(data)
    assert isinstance(info.value, ValueError)


def test_nesting_deeper_than_max_depth_is_rejected() -> None:
    eight = b"l" * 8 + b"e" * 8
    assert decode(eight) == [[[[[[[[]]]]]]]]
    with pytest.raises(BencodeError, match="nesting deeper than 8"):
        decode(b"l" + eight + b"e")
    with pytest.raises(BencodeError, match="nesting deeper than 2"):
        decode(b"d1:ad1:bd1:ci1eeee", max_depth=2)
    assert decode(b"i1e", max_depth=0) == 1


def test_hostile_nesting_raises_bencode_error_not_recursion_error() -> None:
    with pytest.raises(BencodeError, match="nesting deeper"):
        decode(b"l" * 100_000)
    with pytest.raises(BencodeError, match="nesting deeper"):
        decode(b"d1:a" * 100_000)


def test_max_depth_is_bounded_by_what_bencode_py_can_build() -> None:
    # bencode.py builds values recursively: the layer in front of it never lets it see more
    # than MAX_DEPTH levels, and the check itself is iterative (hostile nesting above).
    deep = b"l" * MAX_DEPTH + b"e" * MAX_DEPTH
    value = decode(deep, max_depth=MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == []
    with pytest.raises(ValueError, match=r"max_depth must be 0\.\.100"):
        decode(b"le", max_depth=MAX_DEPTH + 1)
    with pytest.raises(BencodeError, match="nesting deeper than 100"):
        decode(b"l" + deep + b"e", max_depth=MAX_DEPTH)


# --- what bencode.py alone accepts (or worse) and the layer refuses -------------------------------
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"i+1e", "bad integer b'+1'"),
        (b"i+0e", "bad integer b'+0'"),
        (b"i 1e", "bad integer b' 1'"),
        (b"i1 e", "bad integer b'1 '"),
        (b"i1_0e", "bad integer b'1_0'"),
        (b"1_0:abcdefghij", "bad string length prefix b'1_0'"),
        (b"1 :a", "bad string length prefix b'1 '"),
        (b"d+1:ai1ee", "dict key must be a byte string, got '+'"),
        (b"d 1:ai1ee", "dict key must be a byte string, got ' '"),
        (b"d1:ai1e-0:i2ee", "dict key must be a byte string, got '-'"),
        (b"d1:ai1e1:ai2ee", "duplicate dict key b'a'"),
        (b"i" + b"9" * 65 + b"e", "integer longer than 64 digits"),
        # bencode.py 4.1 steps back onto this key forever (negative length): must never reach it
        (b"d1:k4:abcd-10:e", "dict key must be a byte string, got '-'"),
    ],
)
def test_what_bencode_py_accepts_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(BencodeError, match=re.escape(reason)):
        decode(data)


# --- encoding -------------------------------------------------------------------------------------


def test_encode_accepts_str_tuple_and_str_keys() -> None:
    assert encode("é") == b"2:\xc3\xa9"
    assert encode((1, "a")) == b"li1e1:ae"
    assert encode({"b": 1, b"a": 2}) == b"d1:ai2e1:bi1ee"


def test_encode_sorts_keys_as_raw_bytes() -> None:
    # "é" is b"\xc3\xa9": after every ASCII key. "Z" (0x5a) sorts before "a" (0x61).
    assert encode({"é": 1, "a": 2, "Z": 3, b"\xff": 4}) == b"d1:Zi3e1:ai2e2:\xc3\xa9i1e1:\xffi4ee"


def test_encode_accepts_bytes_like_and_int_subclasses() -> None:
    import enum

    class Code(enum.IntEnum):
        X = 203

    assert encode([bytearray(b"ab"), memoryview(b"c"), Code.X]) == b"l2:ab1:ci203ee"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "bool"),
        ([False], "bool"),
        (1.5, "float"),
        (None, "NoneType"),
        ({1: b"x"}, "dict key must be bytes or str"),
        ({"a": 1, b"a": 2}, "duplicate dict key"),
        ({b"k": {1, 2}}, "set"),
        ("\udc80", "not valid UTF-8"),
        ({"\udc80": 1}, "not valid UTF-8"),
    ],
)
def test_encode_rejects_what_bencode_cannot_express(value: object, reason: str) -> None:
    with pytest.raises(BencodeError, match=reason):
        encode(value)


def test_encode_of_a_cycle_raises_bencode_error() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(BencodeError, match="nesting deeper"):
        encode(cyclic)
