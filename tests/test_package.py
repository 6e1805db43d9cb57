"""The package root: a light ``import dhtviewer`` (the GUI imports it at start), the public names
imported on first use, a literal version, and the typing marker shipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dhtviewer

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_package_pulls_in_neither_the_session_nor_cryptography() -> None:
    code = (
        "import sys, dhtviewer\n"
        "heavy = [m for m in sys.modules if m.startswith(('dhtviewer.net', 'dhtviewer.dht',"
        " 'cryptography', 'asyncio', 'PySide6'))]\n"
        "print(heavy)\n"
        "from dhtviewer import Dht\n"
        "print('dhtviewer.net.session' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    assert out == ["[]", "True"]


def test_every_public_name_resolves() -> None:
    for name in dhtviewer.__all__:
        assert getattr(dhtviewer, name) is not None, name
    assert set(dhtviewer.__all__) <= set(dir(dhtviewer))
    from dhtviewer import Dht, events
    from dhtviewer.api import Dht as ApiDht
    from dhtviewer.dht import events as core_events

    assert Dht is ApiDht and events is core_events


def test_unknown_names_raise_attribute_error() -> None:
    try:
        dhtviewer.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_the_version_is_a_literal_setuptools_can_read() -> None:
    source = (ROOT / "dhtviewer" / "__init__.py").read_text()
    assert f'__version__ = "{dhtviewer.__version__}"' in source


def test_the_typing_marker_is_shipped() -> None:
    assert (ROOT / "dhtviewer" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject
