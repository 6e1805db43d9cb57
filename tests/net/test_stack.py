"""FamilyStack: one family's bootstrap on its own socket: waiting (without traffic) while it has
nothing to start from, and starting at once when the other family hands it contacts."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node import DhtNode
from dhtviewer.net import stack as stack_mod
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.stack import FamilyStack
from dhtviewer.net.transport import open_udp
from tests.support.wire import LOCAL

pytestmark = pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")


def test_a_family_without_contacts_waits_then_starts_at_once_on_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stack_mod, "RETRY_FIRST", 30.0)  # only a hint can end the wait in time

    async def go() -> None:
        loop = asyncio.get_running_loop()
        peer = DhtNode(rng=random.Random(1), now=loop.time(), settings=LOCAL, family=6)
        ours = DhtNode(rng=random.Random(2), now=loop.time(), settings=LOCAL, family=6)
        peer_proto = await open_udp(peer, "::1", 0, socket.AF_INET6)
        proto = await open_udp(ours, "::1", 0, socket.AF_INET6)
        states: list[tuple[str, str]] = []

        async def nothing() -> list[tuple[str, int]]:
            return []

        stack = FamilyStack(6, ours, proto, [], [], on_state=lambda s: states.append(
            (s.state, s.detail)), resolve=nothing)
        try:
            stack.start_bootstrap((), has_names=True)
            await asyncio.sleep(0.2)
            assert stack.state == "bootstrapping" and "waiting for IPv6 contacts" in stack.detail
            assert ours.counters.packets_out == 0  # waiting costs no traffic
            assert peer_proto.transport is not None
            port = peer_proto.transport.get_extra_info("sockname")[1]
            stack.hint([NodeInfo(peer.node_id, ("::1", port))])
            await asyncio.wait_for(stack.ready.wait(), 5)
            assert stack.state == "ready" and ours.routing_size() == 1
            assert [s for s, _ in states] == ["bootstrapping", "ready"]
        finally:
            await stack.cancel_bootstrap()
            proto.close()
            peer_proto.close()

    asyncio.run(asyncio.wait_for(go(), 20))
