"""Addresses, the one module every layer uses for them: the family of an IP literal, the filter
that keeps unroutable, local and abusive addresses out of a routing table, which addresses are
local or loopback, ``HOST:PORT`` text (parsing and printing) and socket addresses.

Contacts come from untrusted datagrams (``nodes`` lists, query sources), so a bogus address must
never be stored and handed to other nodes: a multicast or broadcast address would turn us into an
amplifier, port 0 cannot be answered, and private or loopback addresses on the public DHT point
into someone's LAN. Local testnets need loopback and private addresses, hence ``allow_local``.

The special ranges are listed here (from the IANA special-purpose address registries) rather
than taken from :mod:`ipaddress`'s ``is_private``/``is_global``: those are slow (a dozen network
membership tests per call) and their exact meaning changed between Python releases. The verdict
per IP is also cached, since the same addresses come back over and over. Name resolution (which
touches the network) lives in ``dhtviewer.net.resolve``; everything here is pure.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from functools import lru_cache

from dhtviewer.dht.messages import Addr

_CACHE_SIZE = 8192

DEFAULT_PORT = 6881
"""The Mainline DHT's customary UDP port, assumed when a bootstrap address has none."""

# Reasons. "Hard" ones are refused even on a local testnet: nothing can answer from such an
# address, or answering it would reach many hosts.
UNSPECIFIED = "unspecified address"
THIS_NETWORK = "this-network address"
MULTICAST = "multicast address"
BROADCAST = "broadcast address"
IPV4_MAPPED = "IPv4-mapped address"
LOOPBACK = "loopback address"
PRIVATE = "private address"
LINK_LOCAL = "link-local address"
SITE_LOCAL = "site-local address"
SHARED = "shared address"
RESERVED = "reserved address"
NOT_IP = "not an IP address"

_Range = tuple[int, int, bool, str]  # first, last, hard, reason


def _ranges(spec: list[tuple[str, bool, str]]) -> tuple[_Range, ...]:
    out = []
    for cidr, hard, reason in spec:
        net = ipaddress.ip_network(cidr)
        out.append((int(net.network_address), int(net.broadcast_address), hard, reason))
    return tuple(out)


# First match wins, so narrower ranges come before the ones containing them.
_V4 = _ranges(
    [
        ("0.0.0.0/32", True, UNSPECIFIED),
        ("0.0.0.0/8", True, THIS_NETWORK),
        ("10.0.0.0/8", False, PRIVATE),
        ("100.64.0.0/10", False, SHARED),  # carrier-grade NAT
        ("127.0.0.0/8", False, LOOPBACK),
        ("169.254.0.0/16", False, LINK_LOCAL),
        ("172.16.0.0/12", False, PRIVATE),
        ("192.0.0.0/24", False, RESERVED),  # IETF protocol assignments
        ("192.0.2.0/24", False, RESERVED),  # documentation
        ("192.88.99.0/24", False, RESERVED),  # deprecated 6to4 relay anycast
        ("192.168.0.0/16", False, PRIVATE),
        ("198.18.0.0/15", False, RESERVED),  # benchmarking
        ("198.51.100.0/24", False, RESERVED),  # documentation
        ("203.0.113.0/24", False, RESERVED),  # documentation
        ("224.0.0.0/4", True, MULTICAST),
        ("255.255.255.255/32", True, BROADCAST),
        ("240.0.0.0/4", False, RESERVED),
    ]
)
_V6 = _ranges(
    [
        ("::/128", True, UNSPECIFIED),
        ("::1/128", False, LOOPBACK),
        # An IPv4 peer seen through a dual-stack socket: it belongs in the IPv4 table.
        ("::ffff:0:0/96", True, IPV4_MAPPED),
        ("64:ff9b::/96", False, ""),  # NAT64 well-known prefix: globally reachable
        ("ff00::/8", True, MULTICAST),
        ("fc00::/7", False, PRIVATE),  # unique local addresses
        ("fe80::/10", False, LINK_LOCAL),
        ("fec0::/10", False, SITE_LOCAL),
        ("2001::/32", False, ""),  # Teredo: reachable
        ("2001::/23", False, RESERVED),  # IETF protocol assignments
        ("2001:db8::/32", False, RESERVED),  # documentation
        ("3fff::/20", False, RESERVED),  # documentation
        ("2000::/3", False, ""),  # global unicast
        ("::/0", False, RESERVED),  # everything else is unassigned or special
    ]
)


@lru_cache(maxsize=65536)
def pack_ip(ip: str) -> bytes:
    """The 4 or 16 bytes of an IPv4 or IPv6 literal (no host names, no ``%scope``); ValueError
    otherwise. ``inet_pton`` is a pure conversion (no socket is opened) and about twenty times
    faster than :mod:`ipaddress`: it runs for every query from an unknown address (token, BEP 42
    check, address filter), and on the public DHT most queriers are unknown."""
    try:
        return socket.inet_pton(socket.AF_INET, ip)
    except (OSError, TypeError):
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, ip)
    except (OSError, TypeError):
        raise ValueError(f"not an IP address: {ip!r}") from None


@lru_cache(maxsize=_CACHE_SIZE)
def _classify(ip: str) -> tuple[int, str | None, str | None]:
    """(family or 0, reason refused always, reason refused unless local addresses are allowed)."""
    try:
        # a scope ("fe80::1%eth0") does not change which range the address is in
        packed = pack_ip(ip.partition("%")[0] if ":" in ip else ip)
    except ValueError:
        return 0, NOT_IP, None
    version = 4 if len(packed) == 4 else 6
    n = int.from_bytes(packed, "big")
    for first, last, hard, reason in _V4 if version == 4 else _V6:
        if first <= n <= last:
            if not reason:
                break
            return (version, reason, None) if hard else (version, None, reason)
    return version, None, None


_FAMILIES: dict[str, int] = {}


def ip_family(ip: str) -> int:
    """4 or 6 for an IPv4 or IPv6 literal (an IPv6 one may carry a ``%scope``); ValueError for
    anything else, host names included. The hot paths ask it for every query (which table, which
    peers), so known answers come from a plain dictionary (bounded: cleared when full)."""
    try:
        family = _FAMILIES.get(ip)
    except TypeError:  # unhashable: certainly not an IP literal
        family = None
    if family is not None:
        return family
    family = _classify(ip)[0] if isinstance(ip, str) else 0
    if not family:
        raise ValueError(f"not an IP address: {ip!r}")
    if len(_FAMILIES) >= _CACHE_SIZE * 8:
        _FAMILIES.clear()
    _FAMILIES[ip] = family
    return family


def acceptable_address(addr: Addr, *, allow_local: bool) -> str | None:
    """None if ``addr`` may enter a routing table, else a short reason ("port 0", "private
    address", ...). ``allow_local`` accepts loopback, private, link-local, shared and reserved
    addresses (local testnets), never port 0, unspecified, multicast or broadcast addresses."""
    ip, port = addr
    if type(port) is not int or not 0 < port < 65536:
        return "port 0" if port == 0 else "bad port"
    if not isinstance(ip, str):
        return NOT_IP
    _, hard, local = _classify(ip)
    if hard is not None:
        return hard
    if local is not None and not allow_local:
        return local
    return None


def destination_problem(addr: object) -> str | None:
    """Why we cannot send a query to ``addr``, or None: it must be an ``(ip, port)`` pair of an
    IP literal (no host name: the core does not resolve) and a port in 1..65535, and not an
    address nothing answers from or that reaches many hosts (unspecified, multicast,
    broadcast, IPv4-mapped). Local addresses are fine: a user may query a node on the LAN."""
    if not isinstance(addr, tuple) or len(addr) != 2:
        return "not an (ip, port) pair"
    return acceptable_address(addr, allow_local=True)


def subnet_key(ip: str) -> bytes:
    """The network an address belongs to for the subnet-diversity rule: its /24 for IPv4, its
    /64 for IPv6 (what one host, or one hosting customer, typically controls). ValueError for
    anything that is not an IP literal."""
    packed = pack_ip(ip.partition("%")[0] if ":" in ip else ip)
    return packed[:3] if len(packed) == 4 else packed[:8]


_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def pack_ip_unmapped(ip: str) -> bytes:
    """``pack_ip``, except that an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``, however it is
    written) gives the 4 bytes of its IPv4 address. A dual-stack socket reports an IPv4 host
    that way, and it is still that one host: one token, one scrape-filter entry, the same
    address rules. This is the one place that rule lives. ValueError for anything that is not
    an IP literal."""
    packed = pack_ip(ip)
    if len(packed) == 16 and packed[:12] == _V4_MAPPED_PREFIX:
        return packed[12:]
    return packed


@lru_cache(maxsize=_CACHE_SIZE)
def _unmapped(ip: str) -> str:
    """The IPv4 address inside an IPv4-mapped IPv6 one, as text; else ``ip`` unchanged (host
    names and garbage included)."""
    if ":" not in ip:
        return ip
    try:
        packed = pack_ip_unmapped(ip)
    except ValueError:
        return ip
    return socket.inet_ntop(socket.AF_INET, packed) if len(packed) == 4 else ip


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (IPv4-mapped loopback too); False for names and garbage."""
    if not isinstance(ip, str):
        return False
    return _classify(_unmapped(ip))[2] == LOOPBACK


def is_local(ip: str) -> bool:
    """True for addresses the public DHT never routes: loopback, private, link-local,
    site-local, shared (100.64/10), reserved, unspecified and this-network ones (IPv4-mapped
    ones by their IPv4 address). A session whose every bootstrap address is local runs a private
    network and must accept such contacts (``allow_local``). False for names and garbage."""
    if not isinstance(ip, str):
        return False
    family, hard, local = _classify(_unmapped(ip))
    return bool(family) and (local is not None or hard in (UNSPECIFIED, THIS_NETWORK))


# --- text and socket forms ---------------------------------------------------------------------
# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")


def format_host(host: str) -> str:
    """``host`` as written before ``:PORT``: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host else host


def format_addr(addr: Addr | Sequence[object]) -> str:
    """``"ip:port"``, or ``"[v6]:port"`` for IPv6 (so the port cannot be mistaken for a group)."""
    return f"{format_host(str(addr[0]))}:{addr[1]}"


def host_family(host: str) -> int:
    """4 or 6: how a host as given is reached: 6 for an IPv6 literal, 4 for an IPv4 literal and
    for a host name (names are resolved to IPv4 unless an IPv6 socket asks otherwise)."""
    try:
        return ip_family(host)
    except ValueError:
        return 4


def socket_family(host: str) -> socket.AddressFamily:
    """The socket family (``AF_INET``/``AF_INET6``) for binding or reaching ``host``."""
    return socket.AF_INET6 if host_family(host) == 6 else socket.AF_INET


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


def sockaddr_to_addr(sockaddr: Sequence[object]) -> Addr:
    """A socket address (IPv4 ``(ip, port)`` or IPv6 ``(ip, port, flowinfo, scope_id)``) as the
    core's ``(ip, port)``."""
    return str(sockaddr[0]), int(sockaddr[1])  # type: ignore[call-overload]
