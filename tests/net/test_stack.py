"""FamilyStack: one family's bootstrap on its own socket: waiting (without traffic) while it has
nothing to start from, and starting at once when the other family hands it contacts."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net import stack as stack_mod
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.session import DhtSession
from dhtviewer.net.stack import FamilyStack, bind_families
from dhtviewer.net.transport import BindError, open_udp
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


def test_a_family_the_host_cannot_bind_is_left_out_only_when_both_were_asked_for() -> None:
    # 2001:db8::/32 is documentation space: no interface here has it (EADDRNOTAVAIL).
    socks = bind_families({4: ("127.0.0.1", 0), 6: ("2001:db8::1", 0)})
    try:
        assert list(socks) == [4]
    finally:
        for sock in socks.values():
            sock.close()
    with pytest.raises(BindError, match="address not available"):
        bind_families({6: ("2001:db8::1", 0)})


def test_a_session_without_ipv6_runs_ipv4_alone_without_asking_for_ipv6() -> None:
    async def go() -> None:
        s = DhtSession(DhtSettings(), bind=("127.0.0.1", 0), bind6=("2001:db8::1", 0))
        sent: list[object] = []
        s.subscribe(sent.append)
        await s.start([("127.0.0.1", 9)], wait=False)  # nobody there: the query is enough
        try:
            assert s.families == (4,) and set(s.nodes) == {4}
            handle = s.start_find_node(b"\x01" * 20)
            assert handle.families == (4,)
            await asyncio.sleep(0.05)
            queries = [e for e in sent if isinstance(e, ev.MessageSent) and e.kind == "q"]
            # No IPv6 node: nothing asks for IPv6 contacts, not even the bootstrap.
            assert queries and not any(b"4:want" in e.data for e in queries)
        finally:
            await s.stop()

    asyncio.run(asyncio.wait_for(go(), 10))
