"""Subscribers filtered by event kind, with packet events only on demand and raising callbacks
isolated; EventStream's bounded queue (drop-oldest, counted), closing and waiting."""

from __future__ import annotations

import asyncio

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.net.session import EVENT_TYPES
from dhtviewer.net.subscriptions import EventStream, Subscribers, event_kinds

ADDR = ("127.0.0.1", 6881)
SENT = ev.MessageSent(ADDR, "q", b"ping", b"tt", 10, b"x" * 10, 1.0)
ADDED = ev.NodeAdded(b"i" * 20, ADDR, 0, 4, 1.0)
FAILED = ev.TaskFailed("t", "ValueError()", 1.0)


def test_kinds_are_checked_against_the_event_classes() -> None:
    assert event_kinds(None, EVENT_TYPES) is None
    assert event_kinds(ev.NodeAdded, EVENT_TYPES) == (ev.NodeAdded,)
    assert event_kinds([ev.NodeAdded, ev.NodeAdded], EVENT_TYPES) == (ev.NodeAdded,)
    with pytest.raises(TypeError, match="is not an event class"):
        event_kinds([ADDED], EVENT_TYPES)  # an instance, not its class
    with pytest.raises(TypeError, match="is not an event class"):
        event_kinds(["NodeAdded"], EVENT_TYPES)
    with pytest.raises(TypeError, match="kinds must be event classes"):
        event_kinds(42, EVENT_TYPES)  # type: ignore[arg-type]


def test_callbacks_get_the_kinds_they_asked_for() -> None:
    changes: list[bool] = []
    subs: Subscribers[object] = Subscribers(lambda: changes.append(True))
    every: list[object] = []
    added: list[object] = []
    quiet: list[object] = []
    subs.add(every.append)
    subs.add(added.append, (ev.NodeAdded,))
    subs.add(quiet.append, None, traffic=False)
    for event in (SENT, ADDED, FAILED):
        subs.publish(event)
    assert every == [SENT, ADDED, FAILED]
    assert added == [ADDED]
    assert quiet == [ADDED, FAILED]
    assert len(changes) == 3


def test_packet_events_are_wanted_only_by_who_names_them() -> None:
    subs: Subscribers[object] = Subscribers(lambda: None)
    subs.add(print, (ev.NodeAdded,))
    subs.add(print, None, traffic=False)
    assert not subs.wants_traffic()
    off = subs.add(print, (ev.MessageSent, ev.NodeAdded))
    assert subs.wants_traffic()
    off()
    off()  # idempotent
    assert not subs.wants_traffic() and len(subs) == 2


def test_a_raising_callback_is_counted_and_the_others_still_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    subs: Subscribers[object] = Subscribers(lambda: None)
    got: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    subs.add(broken)
    subs.add(got.append)
    subs.publish(ADDED)
    subs.publish(FAILED)
    assert got == [ADDED, FAILED] and subs.errors == 2
    assert "boom" in caplog.text


def test_a_callback_may_unsubscribe_itself_while_served() -> None:
    subs: Subscribers[object] = Subscribers(lambda: None)
    got: list[object] = []
    offs: list[object] = []

    def once(event: object) -> None:
        got.append(event)
        off()

    off = subs.add(once)
    subs.add(offs.append)
    subs.publish(ADDED)
    subs.publish(FAILED)
    assert got == [ADDED] and offs == [ADDED, FAILED]


def test_event_stream_drops_the_oldest_when_full() -> None:
    async def go() -> None:
        dropped: list[int] = []
        stream: EventStream[int] = EventStream(3)
        stream.attach(lambda: None, dropped.append)
        for i in range(10):
            stream.put(i)
        assert stream.pending() == 3 and stream.dropped == 7 and sum(dropped) == 7
        assert [await stream.get(1) for _ in range(3)] == [7, 8, 9]
        with pytest.raises(TimeoutError):
            await stream.get(0.01)

    asyncio.run(go())


def test_closing_ends_the_iteration_after_what_is_queued() -> None:
    async def go() -> None:
        unsubscribed: list[bool] = []
        stream: EventStream[int] = EventStream()
        stream.attach(lambda: unsubscribed.append(True))
        stream.put(1)

        async def reader() -> list[int]:
            return [e async for e in stream]

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        stream.put(2)
        stream.close()
        stream.close()
        stream.put(3)  # after close: ignored
        assert await task == [1, 2]
        assert unsubscribed == [True]
        with pytest.raises(EOFError):
            await stream.get(1)

    asyncio.run(go())


def test_stream_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize must be at least 1"):
        EventStream(0)
