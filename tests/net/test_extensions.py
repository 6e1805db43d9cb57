"""NodeExtensions without sockets: sans-IO nodes driven by hand and a stand-in transport.
Handlers are installed on every node made, policies come from the factory, and tasks keep their
schedule and counts across the node being replaced (a session's stop/start)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest

from dhtviewer.dht.messages import Addr, ErrorMessage, Message, Query, UnknownQuery
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.routing_policy import RoutingPolicy
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.extensions import NodeExtensions, SessionTask
from dhtviewer.net.transport import DhtProtocol

T = TypeVar("T")
ADDR = ("127.0.0.1", 6881)


class Driver:
    """What the session's transport does for a task: run the call at ``now``."""

    def __init__(self, node: DhtNode) -> None:
        self.node = node
        self.now = 0.0

    def run(self, call: Callable[[float], T]) -> T:
        return call(self.now)

    def advance(self, to: float) -> None:
        while True:
            deadline = self.node.next_deadline()
            if deadline is None or deadline > to:
                break
            self.now = max(self.now, deadline)
            self.node.handle_timer(self.now)
        self.now = to


def make_node(seed: int = 1) -> DhtNode:
    return DhtNode(rng=random.Random(seed), now=0.0, settings=DhtSettings())


def running(driver: Driver) -> dict[int, tuple[DhtNode, DhtProtocol]]:
    return {4: (driver.node, cast(DhtProtocol, driver))}


def test_tasks_keep_their_schedule_across_nodes() -> None:
    ext = NodeExtensions()
    ran: list[float] = []
    task = ext.add_task(SessionTask(ran.append, 10.0, "tick", None, 5.0), {}, None)
    assert task.next_run == 5.0 and ext.tasks == [task]  # kept until a node runs
    first = Driver(make_node())
    ext.started(running(first), 0.0)
    first.advance(26.0)
    assert ran == [5.0, 15.0, 25.0] and task.next_run == 35.0
    ext.stopped()  # the node goes away
    assert task.next_run == 35.0 and task.runs == 3
    second = Driver(make_node(2))
    second.now = 50.0
    ext.started(running(second), 50.0)  # due while stopped: runs at once, no catching up
    assert task.next_run == 50.0
    second.advance(61.0)
    assert ran[3:] == [50.0, 60.0] and task.runs == 5
    task.cancel()
    second.advance(100.0)
    assert task.runs == 5 and not task.active and ext.tasks == []


def test_a_one_shot_task_leaves_after_its_run_and_errors_are_counted() -> None:
    ext = NodeExtensions()
    driver = Driver(make_node())
    ext.started(running(driver), 0.0)

    def broken(now: float) -> None:
        raise ValueError("bad")

    once = ext.add_task(SessionTask(broken, None, "once", None, 1.0), running(driver), 0.0)
    driver.advance(2.0)
    assert once.runs == 1 and once.errors == 1 and not once.active
    assert ext.tasks == [] and driver.node.stats(2.0)["task_errors"] == 1


def test_handlers_are_installed_on_every_node_and_removed_from_them() -> None:
    ext = NodeExtensions()

    def hello(q: Query, addr: Addr, now: float) -> Message:
        return ErrorMessage(q.tid, 201, "hello")

    before = make_node()
    ext.add_handler(b"hello", hello, {4: before})
    after = make_node(2)
    ext.install(after)
    q = UnknownQuery(b"tt", b"q" * 20, name=b"hello")
    for node in (before, after):
        reply = node.responder.answer(q, ADDR, 0.0)
        assert isinstance(reply, ErrorMessage) and reply.message == "hello"
    ext.remove_handler(b"hello", {4: before, 6: after})
    assert ext.handlers == {}
    for node in (before, after):
        reply = node.responder.answer(q, ADDR, 0.0)
        assert isinstance(reply, ErrorMessage) and reply.code == 204
    with pytest.raises(TypeError, match="handler must be callable"):
        ext.add_handler(b"x", cast(Any, 3), {})
    with pytest.raises(ValueError, match="non-empty byte string"):
        ext.add_handler(cast(Any, "x"), hello, {})


def test_the_policy_factory_is_called_per_node_and_checked() -> None:
    calls: list[int] = []

    def factory(settings: DhtSettings, family: int) -> RoutingPolicy:
        calls.append(family)
        return RoutingPolicy.from_settings(settings)

    ext = NodeExtensions(factory)
    assert isinstance(ext.policy_for(DhtSettings(), 6), RoutingPolicy) and calls == [6]
    assert NodeExtensions().policy_for(DhtSettings(), 4) is None
    bad = NodeExtensions(cast(Any, lambda settings, family: "wide"))
    with pytest.raises(TypeError, match="returned str, not a RoutingPolicy"):
        bad.policy_for(DhtSettings(), 4)
