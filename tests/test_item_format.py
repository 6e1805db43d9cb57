"""How BEP 44 values and targets are typed and shown."""

from __future__ import annotations

import pytest

from dhtviewer.item_format import TargetError, parse_target, value_json, value_text


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
