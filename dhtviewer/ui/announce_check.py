"""AnnounceVerification: whether an announce took, checked with an independent get_peers lookup
of the same info-hash that must return our own peer address.

A node that stored us saw the announce's source address: our external address on the
internet, the bind address on a LAN or loopback testnet; with ``implied_port`` our UDP port
stands for the announced one (BEP 5).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.messages import Addr
from dhtviewer.net.handles import AnnounceResult, LookupHandle
from dhtviewer.net.session import DhtSession
from dhtviewer.ui.start_options import unspecified
from dhtviewer.ui.user_lookups import LOOKUP_TIMEOUT

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnnounceVerification:
    """The outcome of checking an announce with an independent get_peers lookup.
    ``expected``: the peer address we looked for (ip may be None when our address is unknown,
    then any peer on the port counts). ``matched``: the returned peers that are us."""

    info_hash: bytes
    expected: tuple[str | None, int]
    verified: bool
    matched: tuple[Addr, ...]
    peers: tuple[Addr, ...]
    lookup_id: int
    detail: str


async def verify_announce(
    session: DhtSession, result: AnnounceResult, port: int, implied_port: bool,
    register: Callable[[LookupHandle, str, bytes], None],
) -> AnnounceVerification:
    """Look up ``result``'s info-hash again and look for us among its peers. ``register`` is
    told of the verifying lookup (kind "verify") as it starts."""
    info_hash = result.info_hash
    local = session.local_address
    expected_port = local[1] if implied_port and local is not None else port
    ips = {ip for ip in (session.external_ip, local[0] if local else None)
           if ip is not None and not unspecified(ip)}
    verify = session.start_find_peers(info_hash)
    register(verify, "verify", info_hash)
    found = await verify.result(LOOKUP_TIMEOUT)
    matched = tuple(p for p in found.peers
                    if p[1] == expected_port and (not ips or p[0] in ips))
    shown_ip = next(iter(sorted(ips)), None)
    target = format_addr((shown_ip or "*", expected_port))
    if matched:
        detail = (f"an independent get_peers lookup returned our peer "
                  f"{format_addr(matched[0])} ({len(found.peers)} peers in all)")
    elif not result.stored_at:
        detail = "no node accepted the announce, and the lookup does not return our peer"
    else:
        detail = (f"{len(result.stored_at)} nodes accepted the announce, but an independent "
                  f"get_peers lookup did not return {target} ({len(found.peers)} peers)")
    check = AnnounceVerification(info_hash, (shown_ip, expected_port), bool(matched), matched,
                                 found.peers, verify.lookup_id, detail)
    log.info("announce of %s %s: %s", info_hash.hex(),
             "verified" if matched else "NOT verified", detail)
    return check
