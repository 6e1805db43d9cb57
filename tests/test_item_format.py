"""How BEP 44 values and targets are typed and shown."""

from __future__ import annotations

import json

import pytest

from dhtviewer.dht.items import encode_value
from dhtviewer.item_format import (
    TargetError,
    ValueFormat,
    ValueFormatError,
    parse_target,
    parse_value,
    value_json,
    value_text,
)


def test_parse_target() -> None:
    assert parse_target(" " + "ab" * 20 + "\n") == b"\xab" * 20
    for bad in ("ab" * 19, "zz" * 20, ""):
        with pytest.raises(TargetError, match="40 hex digits"):
            parse_target(bad)


def test_strings() -> None:
    assert value_json(b"12:Hello World!") == ("Hello World!", "utf-8")
    assert value_json(b"2:\xff\x00") == ("ff00", "hex")
    assert value_text(b"2:\xff\x00") == "hex:ff00"
    assert value_text(b"3:a\nb") == '"a\\nb"'


def test_other_types_as_json() -> None:
    assert value_json(b"i42e") == (42, "json")
    assert value_json(b"d1:ali1e2:\xffxe2:\xfe\xfe1:be") == (
        {"a": [1, {"hex": "ff78"}], "hex:fefe": "b"},
        "json",
    )
    assert value_text(b"l1:xi2ee") == '["x", 2]'
    assert value_text(b"5:hello", limit=3) == "hel…"


def test_parse_value_text_and_hex() -> None:
    assert parse_value("Hello World!") == b"Hello World!"
    assert parse_value("héllo", "text") == "héllo".encode()
    assert parse_value("de ad BE\nef", ValueFormat.HEX) == b"\xde\xad\xbe\xef"
    assert parse_value("0xff00", "hex") == b"\xff\x00"
    with pytest.raises(ValueFormatError, match="even number"):
        parse_value("abc", "hex")
    with pytest.raises(ValueFormatError, match="not a hex digit: 'g'"):
        parse_value("gg", "hex")


def test_parse_value_json_reads_back_what_value_json_writes() -> None:
    raw = b"d1:ali1e2:\xffxe2:\xfe\xfe1:be"
    shown, encoding = value_json(raw)
    assert encoding == "json"
    assert encode_value(parse_value(json.dumps(shown), "json")) == raw
    assert parse_value('{"b": 1, "a": "x"}', "json") == {b"a": b"x", b"b": 1}
    assert parse_value("42", "json") == 42


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not JSON"),
    ("1.5", "a fraction"),
    ('{"a": [1, true]}', r"the value\['a'\]\[1\] is true/false"),
    ('{"a": null}', "null"),
    ('{"hex": "zz"}', "is not hex"),
])
def test_parse_value_json_refusals_say_where(text: str, message: str) -> None:
    with pytest.raises(ValueFormatError, match=message):
        parse_value(text, "json")


def test_parse_value_refuses_values_over_1000_bytes() -> None:
    assert len(encode_value(parse_value("x" * 996))) == 1000
    with pytest.raises(ValueFormatError, match="more than 1000"):
        parse_value("x" * 997)
