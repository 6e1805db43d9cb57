"""Where a session's sockets go: one bind address per address family, and whether that makes
the session a private network.

The user gives one ``(host, port)`` (the GUI's and the CLI's ``--bind``); a dual-stack session
(BEP 32) binds the other family to the matching address on the same port: ``0.0.0.0`` and
``::`` (every interface), ``127.0.0.1`` and ``::1`` (loopback), or the addresses a bind name
resolves to in each family. A specific address of one family says nothing about the other,
which then binds every interface (or ``bind6`` when given).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

from dhtviewer.dht.addresses import is_local, is_loopback
from dhtviewer.dht.messages import Addr
from dhtviewer.net.resolve import RESOLVE_TIMEOUT
from dhtviewer.net.transport import BindError

_ANY = {4: "0.0.0.0", 6: "::"}
_LOOPBACK = {4: "127.0.0.1", 6: "::1"}


async def family_binds(
    bind: tuple[str, int], bind6: tuple[str, int] | None, families: Sequence[int]
) -> dict[int, tuple[str, int]]:
    """family -> (literal address, port) for each of ``families`` (in order). Raises
    ``BindError`` when a bind name does not resolve."""
    host, port = bind
    literals = await _resolve_bind(host)
    out: dict[int, tuple[str, int]] = {}
    for fam in families:
        if fam == 6 and bind6 is not None:
            out[fam] = bind6
        elif fam in literals:
            out[fam] = (literals[fam], port)
        else:
            given = next(iter(literals.values()))
            if is_loopback(given):
                out[fam] = (_LOOPBACK[fam], port)
            else:  # unspecified, or an interface of the other family
                out[fam] = (_ANY[fam], port)
    return out


def ipv6_loopback_available() -> bool:
    """Whether this host can bind a UDP socket on ::1 (a local dual-stack testnet needs it)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def private_network(bind_host: str, contacts: Sequence[Addr]) -> bool:
    """Whether a node bound to ``bind_host`` that starts from ``contacts`` (bootstrap addresses,
    or saved contacts when there are none) runs on a private network and so must accept local
    addresses: bound to loopback, or every contact local."""
    return is_loopback(bind_host) or (bool(contacts) and all(is_local(a[0]) for a in contacts))


async def _resolve_bind(host: str) -> dict[int, str]:
    """family -> literal address for the bind host (a name may give one of each family)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return {ip.version: host}
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE),
            RESOLVE_TIMEOUT,
        )
    except (OSError, asyncio.TimeoutError) as err:
        raise BindError(f"cannot resolve bind address {host!r}: {err}", host, 0) from None
    out: dict[int, str] = {}
    for fam, _, _, _, sockaddr in infos:
        version = 6 if fam == socket.AF_INET6 else 4
        out.setdefault(version, str(sockaddr[0]))
    if not out:
        raise BindError(f"cannot resolve bind address {host!r}", host, 0)
    return dict(sorted(out.items()))
