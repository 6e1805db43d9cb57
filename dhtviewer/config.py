"""DHT settings from the command line: ``--config FILE.toml`` and ``--set KEY=VALUE``.

Both name ``DhtSettings`` fields and are checked against the fields' metadata (type, range)
before anything starts, so a typo or an out-of-range value is one line and exit 2, never a
node running with a limit nobody asked for. ``--set`` values are typed text (``k=20``,
``rate_limit=off``, ``short_timeout=0.5``); the TOML file holds the same keys at its top level
with TOML's own types. Later wins: the command's own defaults, then the file, then each
``--set`` in order.
"""

from __future__ import annotations

import enum
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dhtviewer.dht.settings import (
    DhtSettings,
    SettingsError,
    SettingSpec,
    check_value,
    editable_specs,
    parse_value,
    spec_of,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "load_config", "parse_assignment", "setting_changes", "toml_template"]

class ConfigError(ValueError):
    """A bad ``--config`` file or ``--set`` value; ``str()`` is the one line to print."""


def _editable(name: str) -> SettingSpec:
    spec = spec_of(name)  # SettingsError for an unknown key
    if not spec.info.editable:
        raise SettingsError([(name, f"{name} is not a setting that can be changed")])
    return spec


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"k=20"`` -> ``("k", 20)``, the value parsed for the field's type and checked."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE (e.g. --set k=20)")
    try:
        return name, parse_value(_editable(name), raw)
    except SettingsError as err:
        raise ConfigError(f"--set {text}: {err}") from None


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file (top-level keys), each checked."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config {path}: not valid TOML: {err}") from None
    return _checked(doc, f"config {path}")


def _checked(doc: Mapping[str, object], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in doc.items():
        try:
            out[name] = check_value(_editable(name), value)
        except SettingsError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError(f"{where}: {'; '.join(problems)}")
    return out


def setting_changes(config: str | Path | None, assignments: Iterable[str]) -> dict[str, Any]:
    """The changes asked for by ``--config`` (if any) then every ``--set``, checked one by one
    and together (a pair of values that contradict each other, like a short timeout above
    the hard one, is refused here too)."""
    changes = load_config(config) if config is not None else {}
    for text in assignments:
        name, value = parse_assignment(text)
        changes[name] = value
    try:
        DhtSettings(**changes)
    except SettingsError as err:
        raise ConfigError(f"settings: {err}") from None
    return changes


def toml_template() -> str:
    """A commented TOML file with every setting at its default (``dhtviewer settings
    --toml``), ready to be edited and passed to ``--config``."""
    lines = ["# dhtviewer DHT settings: uncomment and edit, then pass with --config FILE.toml",
             ""]
    group = None
    for spec in editable_specs():
        if spec.info.group is not group:
            group = spec.info.group
            lines += [f"# --- {group.value} ---", ""]
        lines += textwrap.wrap(f"{spec.info.label}. {spec.info.help}", 98,
                               initial_indent="# ", subsequent_indent="# ")
        bounds = spec.range_text()
        if bounds:
            unit = f" {spec.info.unit}" if spec.info.unit else ""
            lines.append(f"# range {bounds}{unit}")
        lines += [f"# {spec.name} = {_toml_value(spec.default)}", ""]
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return f'"{value.value}"'

    return repr(value)
