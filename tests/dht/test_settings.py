"""DhtSettings describes every field as data (label, group, unit, range, help) and refuses a
value out of its range or of the wrong type with one line naming the field."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest

from dhtviewer.dht.families import AddressFamilies
from dhtviewer.dht.settings import (
    DhtSettings,
    SettingGroup,
    SettingsError,
    check_value,
    editable_specs,
    setting_specs,
    settings_with,
    spec_of,
)


def test_every_field_is_described_as_data() -> None:
    specs = setting_specs()
    assert [s.name for s in specs] == [f.name for f in fields(DhtSettings)]
    for s in specs:
        assert s.info.label and s.info.label[0].isupper(), s.name
        assert len(s.info.help) > 20 and "  " not in s.info.help, s.name
        assert isinstance(s.info.group, SettingGroup)
        assert isinstance(s.default, s.kind), s.name
        if s.kind in (int, float):
            assert s.info.low is not None and s.info.high is not None
            assert s.info.low <= s.default <= s.info.high, s.name
        else:
            assert s.info.low is None and s.info.high is None
    assert [s.name for s in editable_specs()] == [s.name for s in specs
                                                  if s.name != "client_version"]
    assert spec_of("k").info.label == "Bucket size (K)" and spec_of("k").info.unit == "nodes"
    assert spec_of("hard_timeout").info.unit == "s"
    assert spec_of("per_ip_rate").info.group is SettingGroup.ABUSE


def test_a_choice_takes_a_member_or_its_value_and_nothing_else() -> None:
    spec = spec_of("address_families")
    assert spec.kind is AddressFamilies and spec.range_text() == "ipv4|ipv6|both"
    assert spec.info.group is SettingGroup.FAMILIES
    assert DhtSettings().address_families is AddressFamilies.BOTH
    text: Any = "ipv4"  # as --set and TOML give it
    assert DhtSettings(address_families=text).address_families is AddressFamilies.IPV4
    with pytest.raises(SettingsError, match=r"must be one of ipv4\|ipv6\|both \(got 'dual'\)"):
        DhtSettings(address_families="dual")  # type: ignore[arg-type]


def test_defaults_are_valid_and_float_fields_hold_floats() -> None:
    s = DhtSettings()
    assert isinstance(s.good_period, float) and s.good_period == 900.0
    assert DhtSettings(per_ip_burst=5).per_ip_burst == 5.0
    assert isinstance(DhtSettings(per_ip_burst=5).per_ip_burst, float)


def test_out_of_range_values_are_refused_naming_every_field() -> None:
    with pytest.raises(SettingsError) as err:
        DhtSettings(k=0, alpha=-3, max_reply_bytes=10)
    assert str(err.value) == ("k must be 1..64 nodes (got 0); alpha must be 1..64 queries "
                              "(got -3); max_reply_bytes must be 576..65507 bytes (got 10)")
    assert [name for name, _ in err.value.problems] == ["k", "alpha", "max_reply_bytes"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"per_ip_burst": 0}, "per_ip_burst must be 1..1000000 queries (got 0)"),
    ({"global_reply_burst": 0.5}, "global_reply_burst must be 1..10000000 replies (got 0.5)"),
    ({"k": 8.0}, "k must be an integer in 1..64 (got 8.0)"),
    ({"k": True}, "k must be an integer in 1..64 (got True)"),
    ({"read_only": 1}, "read_only must be true or false (got 1)"),
    ({"hard_timeout": float("nan")}, "hard_timeout must be a finite number (got nan)"),
    ({"short_timeout": "1"}, "short_timeout must be a number in 0.01..60 (got '1')"),
    ({"sample_interval": 21601}, "sample_interval must be 0..21600 s (got 21601)"),
    ({"short_timeout": 9.0}, "short_timeout (9 s) must not exceed hard_timeout (5 s)"),
])
def test_bad_values_give_one_clear_line(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(").replace(
            ")", r"\)").replace(".", r"\.") + "$"):
        DhtSettings(**changes)  # type: ignore[arg-type]


def test_replace_is_validated_too() -> None:
    with pytest.raises(SettingsError, match="alpha"):
        replace(DhtSettings(), alpha=0)


def test_values_the_code_and_tests_rely_on_are_inside_the_ranges() -> None:
    # a mute node (interop tests), a tiny crawl and store (hostile tests), fast sample intervals
    DhtSettings(max_inflight_queries=0, replacement_cache_size=0, sample_interval=0,
                max_items=0, max_info_hashes=0, crawl_max_known=1, max_queued_events=1)
    DhtSettings(sample_interval=21600, short_timeout=0.1, hard_timeout=0.3, block_seconds=0)


def test_check_value_and_unknown_names() -> None:
    assert check_value(spec_of("hard_timeout"), 3) == 3.0
    with pytest.raises(SettingsError, match=r"unknown setting 'aplha' \(did you mean alpha\?\)"):
        spec_of("aplha")
    with pytest.raises(SettingsError, match=r"unknown setting 'nope'$"):
        settings_with(DhtSettings(), {"nope": 1})
    assert settings_with(DhtSettings(), {"k": 20}).k == 20
