"""What a session plugs into every node it makes: a routing policy per family, handlers of
custom KRPC methods, and tasks on the node's clock, kept across stop/start.

A ``DhtSession`` builds new ``DhtNode`` objects at each ``start()`` (one per address family),
so anything set on a node directly is gone after a restart. ``NodeExtensions`` holds these
customisations at the session level and installs them on each node as it is made
(``install``) and on the running ones when they change.

Tasks (``SessionTask``) are scheduled on the core's ``Scheduler`` through the transport
(``DhtProtocol.run``), so the transport re-arms its timer for them; they run inside the node's
``handle_timer`` at the node's clock (``loop.time()``). When the session stops, each task
remembers when it was next due; at the next start it is scheduled again then (or at once, if
that time has passed while stopped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.responder import Handler
from dhtviewer.dht.routing_policy import RoutingPolicy
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.tasks import ScheduledTask, Task
from dhtviewer.net.transport import DhtProtocol

__all__ = ["NodeExtensions", "RoutingPolicyFactory", "SessionTask"]

RoutingPolicyFactory = Callable[[DhtSettings, int], RoutingPolicy]
"""``factory(settings, family) -> RoutingPolicy``: the routing policy of the node of ``family``
(4 or 6), made at each start with the settings that node runs with (``allow_local`` may have
been switched on for a local network: build on ``RoutingPolicy.from_settings(settings)``)."""


@dataclass(eq=False)
class SessionTask:
    """A task of a session: ``fn(now)`` at ``next_run``, then every ``interval`` seconds if
    periodic. Survives stop/start. ``cancel()`` it; ``runs``/``errors`` count its runs and the
    runs that raised (each raising run is also a ``TaskFailed`` event)."""

    fn: Task
    interval: float | None
    name: str
    family: int | None
    """The family whose node runs it (None: the session's first)."""
    _next: float | None
    _runs_before: int = 0
    _errors_before: int = 0
    _current: ScheduledTask | None = field(default=None, repr=False)
    _cancel_hook: Callable[[SessionTask], None] | None = field(default=None, repr=False)

    @property
    def next_run(self) -> float | None:
        """When it runs next on the node's clock (None: done or cancelled)."""
        cur = self._current
        return cur.next_run if cur is not None else self._next

    @property
    def runs(self) -> int:
        cur = self._current
        return self._runs_before + (cur.runs if cur is not None else 0)

    @property
    def errors(self) -> int:
        cur = self._current
        return self._errors_before + (cur.errors if cur is not None else 0)

    @property
    def active(self) -> bool:
        return self.next_run is not None

    def cancel(self) -> None:
        """Never run again (safe to call twice, from a task too)."""
        self.detach()
        self._next = None
        hook, self._cancel_hook = self._cancel_hook, None
        if hook is not None:
            hook(self)

    def attach(self, scheduled: ScheduledTask) -> None:
        self._current = scheduled

    def detach(self) -> None:
        """The node that ran it is gone (session stopped): remember where it was."""
        cur, self._current = self._current, None
        if cur is not None:
            self._next = cur.next_run
            self._runs_before += cur.runs
            self._errors_before += cur.errors
            cur.cancel()


class NodeExtensions:
    """A session's customisations of its nodes."""

    def __init__(self, routing_policy: RoutingPolicyFactory | None = None) -> None:
        self.routing_policy = routing_policy
        self._handlers: dict[bytes, Handler] = {}
        self._tasks: list[SessionTask] = []

    # --- routing policy ------------------------------------------------------------------------
    def policy_for(self, settings: DhtSettings, family: int) -> RoutingPolicy | None:
        """The factory's policy for a new node (None: the node's default). TypeError when the
        factory returns something else than a ``RoutingPolicy``."""
        factory = self.routing_policy
        if factory is None:
            return None
        policy = factory(settings, family)
        if not isinstance(policy, RoutingPolicy):
            raise TypeError(
                f"the routing policy factory returned {type(policy).__name__}, "
                "not a RoutingPolicy"
            )
        return policy

    # --- handlers ------------------------------------------------------------------------------
    @property
    def handlers(self) -> Mapping[bytes, Handler]:
        return dict(self._handlers)

    def add_handler(self, method: bytes, handler: Handler, nodes: Mapping[int, DhtNode]) -> None:
        if not isinstance(method, bytes) or not method:
            raise ValueError(f"method must be a non-empty byte string, got {method!r}")
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        self._handlers[method] = handler
        for node in nodes.values():
            node.register_handler(method, handler)

    def remove_handler(self, method: bytes, nodes: Mapping[int, DhtNode]) -> None:
        if self._handlers.pop(method, None) is None:
            return
        for node in nodes.values():
            node.unregister_handler(method)

    # --- tasks ---------------------------------------------------------------------------------
    @property
    def tasks(self) -> list[SessionTask]:
        """Tasks still scheduled (one-shot tasks leave once they ran)."""
        self._tasks = [t for t in self._tasks if t.active]
        return list(self._tasks)

    def add_task(self, task: SessionTask, running: Mapping[int, tuple[DhtNode, DhtProtocol]],
                 now: float | None) -> SessionTask:
        """Keep ``task`` and schedule it now if the session runs (``running``: family -> its
        node and transport; ``now``: the loop's time)."""
        task._cancel_hook = self._forget
        self._tasks.append(task)
        if running and now is not None:
            self._schedule(task, running, now)
        return task

    def _forget(self, task: SessionTask) -> None:
        self._tasks = [t for t in self._tasks if t is not task]

    # --- life cycle ----------------------------------------------------------------------------
    def install(self, node: DhtNode) -> None:
        """Handlers on a node just made (before it sees any datagram)."""
        for method, handler in self._handlers.items():
            node.register_handler(method, handler)

    def started(self, running: Mapping[int, tuple[DhtNode, DhtProtocol]], now: float) -> None:
        """The session's nodes run: schedule every task on them."""
        for task in self.tasks:
            self._schedule(task, running, now)

    def stopped(self) -> None:
        """The session's nodes are gone: each task remembers when it was due."""
        for task in self._tasks:
            task.detach()

    def _schedule(
        self, task: SessionTask, running: Mapping[int, tuple[DhtNode, DhtProtocol]], now: float
    ) -> None:
        fam = task.family
        if fam is None or fam not in running:
            fam = next(iter(running))
        node, proto = running[fam]
        due = task._next
        if due is None:
            return
        first = max(due, now)
        interval = task.interval

        def call(_now: float) -> ScheduledTask:
            if interval is None:
                return node.call_at(first, task.fn, name=task.name)
            return node.call_every(interval, task.fn, first=first, name=task.name)

        # Through the transport: it re-arms its timer for the new deadline.
        task.attach(proto.run(call))
