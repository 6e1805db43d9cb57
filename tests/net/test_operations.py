"""Operations: a session's waits end with the node's matching event (and only that one), a
refused lookup leaves nothing behind, and stopping fails every wait and ends every lookup."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.lookups import LookupLimitError
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node import DhtNode
from dhtviewer.net.operations import Operations, SessionClosedError
from dhtviewer.net.stack import FamilyStack
from dhtviewer.net.transport import DhtProtocol, open_udp
from tests.support.wire import LOCAL

S = replace(LOCAL, short_timeout=0.2, hard_timeout=1.0, max_lookups=3)
OURS = "127.0.160.1"
PEER = "127.0.160.2"
DEAD: Addr = ("127.0.160.3", 9)
"""Nobody listens there."""


@asynccontextmanager
async def stack_and_peer() -> AsyncIterator[tuple[FamilyStack, Addr, list[ev.Event]]]:
    """Our node on a stack and a live peer; the events our node emitted."""
    loop = asyncio.get_running_loop()
    peer = DhtNode(rng=random.Random(1), now=loop.time(), settings=S)
    ours = DhtNode(rng=random.Random(2), now=loop.time(), settings=S)
    peer_proto = await open_udp(peer, PEER, 0, socket.AF_INET)
    proto: DhtProtocol = await open_udp(ours, OURS, 0, socket.AF_INET)
    assert peer_proto.transport is not None

    async def nothing() -> list[Addr]:
        return []

    # A bootstrap address that never answers seeds lookups while the table is empty: they
    # keep running until their queries time out.
    stack = FamilyStack(4, ours, proto, [DEAD], [], on_state=lambda _s: None, resolve=nothing)
    seen: list[ev.Event] = []
    unsubscribe = proto.subscribe(seen.append)
    try:
        yield stack, (PEER, peer_proto.transport.get_extra_info("sockname")[1]), seen
    finally:
        unsubscribe()
        proto.close()
        peer_proto.close()


def run(go: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(go(), 20))


def test_a_ping_ends_with_its_own_answer_and_leaves_nothing_waiting() -> None:
    async def go() -> None:
        async with stack_and_peer() as (stack, peer, seen):
            ops = Operations(lambda: {4: stack}, lambda: [stack])
            unsubscribe = stack.proto.subscribe(ops.on_event)
            # Another operation's end (an id nobody waits for) is ignored.
            ops.on_event(ev.PingFinished(999, peer, None, None, None, 0.0))
            result = await ops.ping(stack, peer, timeout=5)
            assert result.addr == peer and result.rtt >= 0
            assert result.id == next(e.node_id for e in seen
                                          if isinstance(e, ev.PingFinished))
            with pytest.raises(TimeoutError, match=r"no answer from 127\.0\.160\.3:9"):
                await ops.ping(stack, DEAD, timeout=0.3)
            assert len(ops) == 0
            unsubscribe()

    run(go)


def test_a_lookup_with_a_bad_target_or_refused_by_the_node_leaves_no_handle() -> None:
    async def go() -> None:
        async with stack_and_peer() as (stack, _peer, _seen):
            ops = Operations(lambda: {4: stack}, lambda: [stack])
            with pytest.raises(ValueError, match="target must be 20 bytes, got 19"):
                ops.start_lookup("get_peers", b"\x01" * 19)
            limit = stack.node.settings.max_lookups
            handles = [ops.start_lookup("find_node", bytes([i]) * 20)
                       for i in range(limit)]
            with pytest.raises(LookupLimitError, match="lookups already running"):
                ops.start_lookup("find_node", b"\xee" * 20)
            assert len(ops) == limit
            for handle in handles:
                handle.cancel()
            assert len(ops) == 0 and not stack.node.lookups

    run(go)


def test_abort_fails_every_wait_and_ends_the_lookups_in_the_node() -> None:
    async def go() -> None:
        async with stack_and_peer() as (stack, _peer, _seen):
            ops = Operations(lambda: {4: stack}, lambda: [stack])
            unsubscribe = stack.proto.subscribe(ops.on_event)
            handle = ops.start_lookup("get_peers", b"\x42" * 20)
            sample = asyncio.create_task(ops.sample(stack, DEAD, timeout=10))
            ping = asyncio.create_task(ops.ping(stack, DEAD, timeout=10))
            await asyncio.sleep(0.05)
            assert len(ops) == 3 and stack.node.lookups
            ops.abort()
            for task in (sample, ping):
                with pytest.raises(SessionClosedError, match="the DHT session stopped"):
                    await task
            # The node ended the lookup (its LookupFinished came through): what it had found.
            assert (await handle.result(1)).cancelled
            assert len(ops) == 0 and not stack.node.lookups
            unsubscribe()

    run(go)
