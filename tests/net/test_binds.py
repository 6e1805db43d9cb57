"""Bind addresses per address family: the user's one (host, port) gives the other family the
matching address on the same port; names resolve per family; what makes a private network."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dhtviewer.net.binds import family_binds
from dhtviewer.net.transport import BindError


def binds(bind: tuple[str, int], families: tuple[int, ...] = (4, 6),
          bind6: tuple[str, int] | None = None) -> dict[int, tuple[str, int]]:
    return asyncio.run(family_binds(bind, bind6, families))


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        (("0.0.0.0", 6881), {4: ("0.0.0.0", 6881), 6: ("::", 6881)}),
        (("::", 6881), {4: ("0.0.0.0", 6881), 6: ("::", 6881)}),
        (("127.0.0.1", 0), {4: ("127.0.0.1", 0), 6: ("::1", 0)}),
        (("127.0.11.5", 0), {4: ("127.0.11.5", 0), 6: ("::1", 0)}),  # any of 127/8
        (("::1", 5), {4: ("127.0.0.1", 5), 6: ("::1", 5)}),
        # An interface of one family says nothing of the other: every interface there.
        (("192.0.2.7", 6881), {4: ("192.0.2.7", 6881), 6: ("::", 6881)}),
    ],
)
def test_the_other_family_binds_the_matching_address(
    bind: tuple[str, int], expected: dict[int, tuple[str, int]]
) -> None:
    assert binds(bind) == expected


def test_one_family_and_an_explicit_ipv6_bind() -> None:
    assert binds(("127.0.0.1", 7), families=(6,)) == {6: ("::1", 7)}
    assert binds(("0.0.0.0", 7), families=(4,)) == {4: ("0.0.0.0", 7)}
    assert binds(("0.0.0.0", 7), bind6=("::1", 9)) == {4: ("0.0.0.0", 7), 6: ("::1", 9)}


def test_a_name_binds_its_address_in_each_family(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_getaddrinfo(host: str, port: Any, **_: Any) -> list[Any]:
        assert host == "dual.test"
        return [
            (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.9", 0)),
        ]

    async def go() -> dict[int, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
        return await family_binds(("dual.test", 3), None, (4, 6))

    assert asyncio.run(go()) == {4: ("127.0.0.9", 3), 6: ("::1", 3)}


def test_an_unresolvable_bind_name_is_a_bind_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(host: str, port: Any, **_: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def go() -> None:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", failing)
        await family_binds(("nowhere.test", 1), None, (4, 6))

    with pytest.raises(BindError, match=r"cannot resolve bind address 'nowhere\.test'"):
        asyncio.run(go())
