"""Socket addresses as users type them, as sockets report them, and their resolution.

Owns ``HOST:PORT`` parsing (hostnames allowed, ``[v6]:port`` for IPv6), the canonical text form
of an address, turning socket addresses (IPv6 ones are 4-tuples) into the core's ``(ip, port)``
pairs, the "is this a local address" test that decides when a session must accept
loopback/private contacts, and asynchronous name resolution (``resolve_addrs``, the only function
here that touches the network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence

from dhtviewer.dht.messages import Addr

# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")

DEFAULT_PORT = 6881
"""The Mainline DHT's customary UDP port, assumed when a bootstrap address has none."""
RESOLVE_TIMEOUT = 10.0
_ADDRS_PER_NAME = 4  # router names resolve to several hosts; a few are plenty

HostPort = str | tuple[str, int]
"""What the resolver accepts: "host:port" text (port optional) or a (host, port) pair."""


def format_addr(addr: Addr | Sequence[object]) -> str:
    """``"ip:port"``, or ``"[v6]:port"`` for IPv6 (so the port cannot be mistaken for a group)."""
    host, port = str(addr[0]), addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_hostport(
    text: str, default_port: int | None = None, *, allow_port_zero: bool = False
) -> tuple[str, int]:
    """Parse ``host:port``, ``[v6]:port``, or (with ``default_port``) a bare host or IPv6 address.

    The host may be a name (resolved later) or a literal address; IPv6 literals come back without
    brackets. Port 0 is refused unless ``allow_port_zero`` (binding to an ephemeral port).
    Raises ``ValueError`` with a message naming what is wrong.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty address (expected HOST:PORT)")
    port_text: str | None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise ValueError(f"missing ']' in {text!r}")
        host, rest = s[1:end], s[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after ']' in {text!r}")
        port_text = rest[1:] if rest else None
        if not _is_ipv6(host):
            raise ValueError(f"invalid IPv6 address {host!r} in {text!r}")
    elif s.count(":") > 1:
        # Several colons and no brackets: only a bare IPv6 address makes sense.
        if not _is_ipv6(s):
            raise ValueError(f"invalid address {text!r} (write IPv6 as [ADDRESS]:PORT)")
        host, port_text = s, None
    elif ":" in s:
        host, port_text = s.split(":", 1)
    else:
        host, port_text = s, None
    if not host:
        raise ValueError(f"missing host in {text!r}")
    if port_text is None:
        if default_port is None:
            hint = f"[{host}]:PORT" if ":" in host else f"{host}:PORT"
            raise ValueError(f"missing port in {text!r} (expected {hint})")
        port = default_port
    else:
        port = _parse_port(port_text, text, allow_port_zero)
    if ":" not in host and not _is_ipv4(host) and not _HOSTNAME.match(host):
        raise ValueError(f"invalid host name {host!r}")
    return host, port


def _parse_port(port_text: str, text: str, allow_zero: bool) -> int:
    if not port_text.isdigit() or not port_text.isascii():
        raise ValueError(f"invalid port {port_text!r} in {text!r}")
    port = int(port_text)
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"port {port} out of range {low}-65535")
    return port


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def ip_family(ip: str) -> int:
    """4 or 6 for a literal address; ``ValueError`` for anything else (e.g. a host name)."""
    return ipaddress.ip_address(ip.split("%", 1)[0]).version


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback). False for names and garbage."""
    try:
        a = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped.is_loopback
    return a.is_loopback


def is_local(ip: str) -> bool:
    """True for addresses the public DHT never routes: loopback, private, link-local, shared
    (100.64/10), unspecified and reserved ranges. A session whose every bootstrap address is
    local runs a private network and must accept such contacts (``allow_local``)."""
    try:
        a = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    if isinstance(a, ipaddress.IPv4Address) and a in _SHARED_V4:
        return True
    return bool(
        a.is_loopback or a.is_private or a.is_link_local or a.is_unspecified or a.is_reserved
    )


_SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")


def sockaddr_to_addr(sockaddr: Sequence[object]) -> Addr:
    """A socket address (IPv4 ``(ip, port)`` or IPv6 ``(ip, port, flowinfo, scope_id)``) as the
    core's ``(ip, port)``."""
    return str(sockaddr[0]), int(sockaddr[1])  # type: ignore[call-overload]


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
