"""--config FILE.toml and --set KEY=VALUE: typed values, every problem in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dhtviewer.config import (
    ConfigError,
    load_config,
    parse_assignment,
    setting_changes,
    toml_template,
)
from dhtviewer.dht.families import AddressFamilies
from dhtviewer.dht.settings import DhtSettings, editable_specs


@pytest.mark.parametrize(("text", "expected"), [
    ("k=20", ("k", 20)),
    (" alpha = 2 ", ("alpha", 2)),
    ("rate_limit=off", ("rate_limit", False)),
    ("rate_limit=TRUE", ("rate_limit", True)),
    ("hard_timeout=2", ("hard_timeout", 2.0)),
    ("short_timeout=0.5", ("short_timeout", 0.5)),
    ("max_stored_peers=100_000", ("max_stored_peers", 100_000)),
    ("address_families=ipv6", ("address_families", AddressFamilies.IPV6)),
])
def test_set_parses_the_field_type(text: str, expected: tuple[str, object]) -> None:
    name, value = parse_assignment(text)
    assert (name, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize(("text", "message"), [
    ("k", "--set 'k': expected KEY=VALUE (e.g. --set k=20)"),
    ("=3", "--set '=3': expected KEY=VALUE"),
    ("k=0", "--set k=0: k must be 1..64 nodes (got 0)"),
    ("k=many", "--set k=many: k must be an integer in 1..64 (got 'many')"),
    ("k=2.5", "--set k=2.5: k must be an integer in 1..64 (got '2.5')"),
    ("rate_limit=maybe", "--set rate_limit=maybe: rate_limit must be true or false"),
    ("aplha=2", "--set aplha=2: unknown setting 'aplha' (did you mean alpha?)"),
    ("client_version=XX", "client_version is not a setting that can be changed"),
    ("hard_timeout=inf", "hard_timeout must be a finite number"),
    ("per_ip_burst=0", "per_ip_burst must be 1..1000000 queries (got 0)"),
    ("address_families=ipv5",
     "address_families must be one of ipv4|ipv6|both (got 'ipv5')"),
])
def test_bad_set_values_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_assignment(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_config_file_then_set_later_wins(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("k = 16\nrate_limit = false\nhard_timeout = 3\n")
    assert load_config(path) == {"k": 16, "rate_limit": False, "hard_timeout": 3.0}
    changes = setting_changes(path, ["k=20", "alpha=2"])
    assert changes == {"k": 20, "rate_limit": False, "hard_timeout": 3.0, "alpha": 2}
    assert setting_changes(None, []) == {}


@pytest.mark.parametrize(("text", "message"), [
    ("k = 0\n", "k must be 1..64 nodes (got 0)"),
    ("k = 8\nnope = 1\nalpha = 0\n",
     "unknown setting 'nope'; alpha must be 1..64 queries (got 0)"),
    ('rate_limit = "no"\n', "rate_limit must be true or false (got 'no')"),
    ("k = 8.0\n", "k must be an integer in 1..64 (got 8.0)"),
    ("[dht]\nk = 8\n", "unknown setting 'dht'"),
    ("k = = 8\n", "not valid TOML"),
])
def test_bad_config_files_are_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"config {path}: ")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config .*missing\.toml"):
        setting_changes(tmp_path / "missing.toml", [])


def test_values_fine_alone_but_not_together_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"short_timeout .* must not exceed hard_timeout"):
        setting_changes(None, ["hard_timeout=0.5"])


def test_the_template_is_valid_toml_with_every_setting_and_round_trips(tmp_path: Path) -> None:
    text = toml_template()
    uncommented = "\n".join(line[2:] for line in text.splitlines()
                            if line.startswith("# ") and " = " in line and "." not in
                            line.split(" = ")[0])
    path = tmp_path / "all.toml"
    path.write_text(uncommented)
    loaded = load_config(path)
    assert set(loaded) == {s.name for s in editable_specs()}
    assert DhtSettings(**loaded) == DhtSettings()
