"""StartOptions and the free-port search behind the "port in use" offer."""

from __future__ import annotations

import socket

from dhtviewer.ui.start_options import (
    CUSTOM,
    MAINLINE,
    StartOptions,
    find_free_port,
    unspecified,
)


def test_the_bootstrap_list_follows_the_mode() -> None:
    options = StartOptions(routers=("router.example:6881",), custom=("127.0.0.5:7000",))
    assert options.mode == MAINLINE and options.bootstrap_spec() == ["router.example:6881"]
    custom = StartOptions(mode=CUSTOM, routers=("router.example:6881",), custom=("127.0.0.5:7000",))
    assert custom.bootstrap_spec() == ["127.0.0.5:7000"]


def test_wildcard_hosts_are_unspecified() -> None:
    assert all(unspecified(h) for h in ("", "0.0.0.0", "::"))
    assert not any(unspecified(h) for h in ("127.0.0.1", "::1", "192.0.2.1"))


def test_find_free_port_skips_the_busy_one() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        free = find_free_port("127.0.0.1", busy - 1, tries=1)
        assert free != busy and free > 0
