"""Asynchronous name resolution of bootstrap and ping addresses: the one place where an address
touches the network. Everything else about addresses (parsing, printing, families, which ones
are local) is pure and lives in ``dhtviewer.dht.addresses``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence

from dhtviewer.dht.addresses import DEFAULT_PORT, format_addr, parse_hostport
from dhtviewer.dht.messages import Addr

RESOLVE_TIMEOUT = 10.0
_ADDRS_PER_NAME = 4  # router names resolve to several hosts; a few are plenty

HostPort = str | tuple[str, int]
"""What the resolver accepts: "host:port" text (port optional) or a (host, port) pair."""


async def resolve_addrs(
    items: Iterable[HostPort], family: int = socket.AF_INET, default_port: int = DEFAULT_PORT
) -> tuple[list[Addr], list[str]]:
    """Resolve "host:port" strings / (host, port) pairs to addresses of ``family`` (AF_UNSPEC:
    any), concurrently and without blocking the loop. Returns (addresses without duplicates, one
    error message per item that failed). Literal addresses of another family count as failed."""
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    parsed: list[tuple[str, int]] = []
    for item in items:
        try:
            parsed.append(
                parse_hostport(item, default_port) if isinstance(item, str)
                else (str(item[0]), int(item[1]))
            )
        except ValueError as err:
            errors.append(str(err))

    async def one(host: str, port: int) -> list[Addr]:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if family != socket.AF_UNSPEC and _socket_family(ip.version) != family:
                raise OSError(f"IPv{ip.version} address on an IPv{10 - ip.version} socket")
            return [(host, port)]
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM),
            RESOLVE_TIMEOUT,
        )
        return [(str(i[4][0]), int(i[4][1])) for i in infos][:_ADDRS_PER_NAME]

    results = await asyncio.gather(*(one(h, p) for h, p in parsed), return_exceptions=True)
    out: list[Addr] = []
    for (host, port), res in zip(parsed, results, strict=True):
        if isinstance(res, BaseException):
            if isinstance(res, asyncio.CancelledError):
                raise res
            if isinstance(res, asyncio.TimeoutError):
                msg = "timed out"
            else:
                msg = str(res) or type(res).__name__
            errors.append(f"{format_addr((host, port))}: {msg}")
            continue
        for a in res:
            if a not in out:
                out.append(a)
    return out, errors


def _socket_family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET



async def resolve_families(
    items: Iterable[HostPort], families: Sequence[int], default_port: int = DEFAULT_PORT
) -> tuple[dict[int, list[Addr]], list[str]]:
    """Resolve ``items`` for each address family in ``families`` (4, 6): a name that has
    addresses of both families feeds both (BEP 32: each DHT bootstraps from its own). Returns
    (family -> addresses without duplicates, one error message per item that gave no address
    in any family: the first family's reason)."""
    listed = list(items)
    by_family: dict[int, list[Addr]] = {fam: [] for fam in families}
    errors: list[str] = []
    per_item = await asyncio.gather(
        *(
            asyncio.gather(
                *(resolve_addrs([item], _socket_family(fam), default_port) for fam in families)
            )
            for item in listed
        )
    )
    for results in per_item:
        for fam, (addrs, _) in zip(families, results, strict=True):
            by_family[fam].extend(a for a in addrs if a not in by_family[fam])
        if not any(addrs for addrs, _ in results):
            errors.extend(next((errs for _, errs in results if errs), []))
    return by_family, errors
