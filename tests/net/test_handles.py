"""LookupHandle: results from terminal events, live replay of a lookup's events, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.net.handles import LookupHandle

T = TypeVar("T")
TARGET = b"\x42" * 20
PEER = ("127.0.10.9", 40000)
NODE = (b"\x41" * 20, ("127.0.10.8", 6881))


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), 10)

    return asyncio.run(bounded())


def finished(kind: str = "get_peers", cancelled: bool = False) -> ev.LookupFinished:
    return ev.LookupFinished(7, TARGET, kind, (PEER,), (NODE,), 3, 2, 0.25, cancelled, 1.0)


def test_lookup_result_comes_from_lookup_finished() -> None:
    async def go() -> None:
        h = LookupHandle("get_peers", TARGET, lambda lid: None)
        h.add_part(4, 7)
        assert not h.on_event(ev.LookupStarted(7, TARGET, "get_peers", 0.0))
        assert h.on_event(finished())
        r = await h.result()
        assert (r.info_hash, r.peers, r.closest) == (TARGET, (PEER,), (NODE,))
        assert (r.queried, r.responded, r.elapsed, r.cancelled) == (3, 2, 0.25, False)
        assert h.done()
        with pytest.raises(ValueError):
            await h.announce_result()

    run(go)


def test_iterators_replay_from_the_start_and_follow_live() -> None:
    async def go() -> None:
        h = LookupHandle("get_peers", TARGET, lambda lid: None)
        h.add_part(4, 7)
        h.on_event(ev.LookupStarted(7, TARGET, "get_peers", 0.0))
        got: list[list[str]] = [[], []]

        async def consume(i: int) -> None:
            async for event in h:
                got[i].append(type(event).__name__)

        tasks = [asyncio.create_task(consume(0)), asyncio.create_task(consume(1))]
        await asyncio.sleep(0)
        h.on_event(ev.PeersFound(7, NODE[0], (PEER,), 0.1))
        await asyncio.sleep(0)
        h.on_event(finished())
        await asyncio.gather(*tasks)
        assert got[0] == got[1] == ["LookupStarted", "PeersFound", "LookupFinished"]

    run(go)


def test_announce_ends_with_announce_finished() -> None:
    async def go() -> None:
        h = LookupHandle("announce", TARGET, lambda lid: None)
        h.add_part(4, 7)
        assert not h.on_event(finished("announce"))
        assert (await h.result()).kind == "announce"  # lookup phase done, announce pending
        assert not h.done()
        assert h.on_event(ev.AnnounceFinished(7, TARGET, 51413, (NODE[1],), (), 2.0))
        a = await h.announce_result()
        assert (a.port, a.stored_at, a.lookup.peers) == (51413, (NODE[1],), (PEER,))

    run(go)


def test_cancelled_announce_stored_nowhere() -> None:
    async def go() -> None:
        h = LookupHandle("announce", TARGET, lambda lid: None)
        h.add_part(4, 7)
        # What the node emits for an announce cancelled before its second phase.
        assert not h.on_event(finished("announce", cancelled=True))
        assert h.on_event(ev.AnnounceFinished(7, TARGET, 51413, (), (), 1.0, cancelled=True))
        a = await h.announce_result()
        assert a.stored_at == () and a.lookup.cancelled

    run(go)


def test_timeout_cancels_and_returns_the_partial_result() -> None:
    async def go() -> None:
        cancelled: list[int] = []
        h = LookupHandle("get_peers", TARGET, cancelled.append)
        h.add_part(4, 7)

        def cancel(lid: int) -> None:
            cancelled.append(lid)
            h.on_event(finished(cancelled=True))  # what the node emits on cancel_lookup

        h._cancel = cancel
        r = await h.result(timeout=0.05)
        assert cancelled == [7] and r.cancelled and r.peers == (PEER,)

    run(go)


def test_abort_wakes_waiters_and_ends_iterators() -> None:
    async def go() -> None:
        h = LookupHandle("get_peers", TARGET, lambda lid: None)
        waiter = asyncio.create_task(h.result())

        async def consume() -> list[ev.Event]:
            return [e async for e in h]

        iterating = asyncio.create_task(consume())
        await asyncio.sleep(0)
        h.abort(RuntimeError("session stopped"))
        with pytest.raises(RuntimeError, match="session stopped"):
            await waiter
        assert await iterating == []

    run(go)


# --- one lookup per address family (BEP 32) -------------------------------------------------
PEER6 = ("::1", 40001)
NODE6 = (b"\x43" * 20, ("::1", 6882))


def finished6(lookup_id: int = 8, kind: str = "get_peers", peers: tuple = (PEER, PEER6),
              cancelled: bool = False) -> ev.LookupFinished:
    return ev.LookupFinished(lookup_id, TARGET, kind, peers, (NODE6,), 5, 4, 0.5, cancelled,
                             1.5, 6)


def test_families_merge_peers_once_and_keep_their_own_figures() -> None:
    async def go() -> None:
        h = LookupHandle("get_peers", TARGET, lambda lid: None)
        h.add_part(4, 7)
        h.add_part(6, 8)
        assert (h.lookup_id, h.lookup_ids, h.families) == (7, (7, 8), (4, 6))
        assert not h.on_event(finished())
        assert not h.done()  # the IPv6 lookup still runs
        assert h.on_event(finished6())
        r = await h.result()
        assert r.peers == (PEER, PEER6)  # PEER came from both families: listed once
        assert (r.queried, r.responded, r.elapsed) == (3 + 5, 2 + 4, 0.5)
        # Nearest first over both families: 0x43.. is nearer 0x42.. than 0x41.. is.
        assert r.closest == (NODE6, NODE)
        four, six = r.family(4), r.family(6)
        assert four is not None and six is not None
        assert (four.lookup_id, four.peers, four.queried) == (7, (PEER,), 3)
        assert (six.lookup_id, six.peers, six.closest) == (8, (PEER, PEER6), (NODE6,))

    run(go)


def test_an_announce_ends_when_every_family_announced() -> None:
    async def go() -> None:
        h = LookupHandle("announce", TARGET, lambda lid: None)
        h.add_part(4, 7)
        h.add_part(6, 8)
        h.on_event(finished("announce"))
        h.on_event(finished6(kind="announce"))
        assert not h.on_event(ev.AnnounceFinished(7, TARGET, 51413, (NODE[1],), (), 2.0))
        assert h.on_event(ev.AnnounceFinished(8, TARGET, 51413, (NODE6[1],), (PEER6,), 2.1))
        a = await h.announce_result()
        assert a.stored_at == (NODE[1], NODE6[1]) and a.failed == (PEER6,)
        assert a.stored_by_family() == {4: 1, 6: 1}

    run(go)


def test_cancel_stops_every_family_and_a_cancelled_family_is_marked() -> None:
    async def go() -> None:
        asked: list[int] = []
        h = LookupHandle("get_peers", TARGET, asked.append)
        h.add_part(4, 7)
        h.add_part(6, 8)
        h.on_event(finished())
        h.cancel()
        assert asked == [8]  # the IPv4 lookup had already ended
        h.on_event(finished6(cancelled=True, peers=()))
        r = await h.result()
        assert r.cancelled and r.peers == (PEER,)
        four, six = r.family(4), r.family(6)
        assert four is not None and not four.cancelled and six is not None and six.cancelled

    run(go)
