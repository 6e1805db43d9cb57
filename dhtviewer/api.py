"""``Dht``: the library's entry point, a thin, typed, stable facade over ``DhtSession``.

``Dht`` is the asyncio API: every call that talks to the network is a coroutine, every lookup
can be followed live (``start_find_peers`` and friends return a ``LookupHandle`` to read
with ``async for``), and events can be had as callbacks (``subscribe``) or as an async
iterator (``events``). ``Dht.blocking()`` gives the same calls without ``await``
(``dhtviewer.blocking.BlockingDht``) for scripts and notebooks.

What it adds to the session: checked arguments (an info-hash as bytes or text, timeouts,
callables: a clear ``TypeError``/``ValueError`` naming the argument before anything is sent),
and user code kept in its place: a subscriber, method handler or task that raises is logged
with its traceback and isolated, and the node carries on. Everything else is the session's,
which stays reachable as ``dht.session`` for what the facade does not cover (BEP 51 crawls,
the raw nodes' read-only views).

All methods must be called on the event loop's thread (use ``BlockingDht`` from others).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dhtviewer.arguments import (
    HostPortArg,
    check_addr,
    check_callable,
    check_id,
    check_method,
    check_port,
    check_query_args,
    check_seconds,
    check_timeout,
)
from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import GENERIC_ERROR, Addr, ErrorMessage, Message, Query, Response
from dhtviewer.dht.routing_table import RoutingSnapshot
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.extensions import RoutingPolicyFactory, SessionTask
from dhtviewer.net.handles import (
    AnnounceResult,
    ItemResult,
    LookupHandle,
    LookupResult,
    PingResult,
    PutResult,
    SampleResult,
    ScrapeResult,
)
from dhtviewer.net.queries import QueryError
from dhtviewer.net.session import DhtSession, SessionEvent, State
from dhtviewer.net.subscriptions import DEFAULT_STREAM_SIZE, EventStream

if TYPE_CHECKING:
    from dhtviewer.blocking import BlockingDht

__all__ = ["Dht", "MethodHandler", "ReplyFields", "TaskFunction"]

log = logging.getLogger(__name__)

ReplyFields = Mapping[bytes, object] | Mapping[str, object]
"""The fields of a reply or the arguments of a query (the ``r``/``a`` dict without ``id``):
keys ``bytes`` or ASCII text, values anything bencodable (bytes, int, list, dict)."""

MethodHandler = Callable[[Query, Addr], ReplyFields | Message | None]
"""``handler(query, addr)``: the answer to a query of a custom method from ``addr``: a mapping
of the reply's fields (the ``r`` dict without ``id``; the node adds its id and the BEP 42
``ip``), None for an empty reply, or a ready ``Response``/``ErrorMessage``. Raise
``QueryError(code, message)`` to answer with a KRPC error. ``query.args`` holds the arguments
of a method the codec does not know (``UnknownQuery``)."""

TaskFunction = Callable[[float], None]
"""``fn(now)``: a task on the node's clock (``now`` in ``Dht.now()`` seconds)."""


class Dht:
    """A DHT node of this host (one per address family: BEP 32), on its UDP sockets.

    ``settings``: the limits (K, alpha, timeouts, rate limits...; ``DhtSettings``).
    ``bootstrap``: "host:port" strings or (host, port) pairs to join from (None: the public
    Mainline routers); used by ``start()`` and ``async with``. ``bind``: (host, port) of the
    IPv4 socket (port 0: any free port; the IPv6 one binds the matching address, or ``bind6``).
    ``state_path``: a JSON file that keeps the node id and contacts between runs.
    ``node_id``: our 20-byte id (default: the saved one, else random). ``rng``: the randomness
    others may see (seed it for reproducible runs); ``secrets``: what nobody may predict
    (transaction ids, tokens; default: the operating system's). ``routing_policy``: a factory,
    ``factory(settings, family)``, of each node's ``RoutingPolicy`` (default: the Mainline
    rules).

    ``async with Dht(bootstrap=[...]) as dht:`` starts it (waiting until it is ready) and stops
    it at the end."""

    def __init__(
        self,
        settings: DhtSettings | None = None,
        *,
        bootstrap: Sequence[HostPortArg] | None = None,
        bind: tuple[str, int] = ("0.0.0.0", 0),
        bind6: tuple[str, int] | None = None,
        state_path: str | os.PathLike[str] | None = None,
        node_id: bytes | str | None = None,
        rng: random.Random | None = None,
        secrets: random.Random | None = None,
        routing_policy: RoutingPolicyFactory | None = None,
    ) -> None:
        if settings is not None and not isinstance(settings, DhtSettings):
            raise TypeError(f"settings must be DhtSettings, got {type(settings).__name__}")
        if routing_policy is not None:
            check_callable(routing_policy, "routing_policy")
        self._bootstrap = _bootstrap_list(bootstrap)
        self._session = DhtSession(
            settings,
            bind=_bind_pair(bind, "bind"),
            bind6=None if bind6 is None else _bind_pair(bind6, "bind6"),
            state_path=state_path,
            node_id=None if node_id is None else check_id(node_id, "node_id"),
            rng=rng,
            secrets=secrets,
            routing_policy=routing_policy,
        )

    @classmethod
    def blocking(cls, settings: DhtSettings | None = None, **kwargs: Any) -> BlockingDht:
        """The same node behind a blocking API (its event loop in a background thread),
        started and ready: ``with Dht.blocking(bootstrap=[...]) as dht: dht.find_peers(ih)``.
        Takes the arguments of ``Dht`` and ``start_timeout``."""
        from dhtviewer.blocking import BlockingDht

        return BlockingDht(settings, **kwargs)

    @property
    def session(self) -> DhtSession:
        """The ``DhtSession`` underneath (BEP 51 crawls, the nodes' read-only views)."""
        return self._session

    # ======================================================================= life cycle ==
    async def start(
        self,
        bootstrap: Sequence[HostPortArg] | None = None,
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> None:
        """Bind the sockets and join the DHT from ``bootstrap`` (default: the constructor's);
        with ``wait``, return once ready, ``TimeoutError`` after ``timeout`` seconds (the node
        keeps trying: ``stop()`` it). ``BootstrapError`` if no bootstrap name resolves,
        ``PortInUseError``/``BindError`` if a socket cannot be bound."""
        seconds = check_seconds(timeout, "timeout")
        boot = self._bootstrap if bootstrap is None else _bootstrap_list(bootstrap)
        await self._session.start(boot, wait=wait, timeout=seconds)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until ready (one family is); ``TimeoutError`` otherwise."""
        await self._session.wait_ready(check_timeout(timeout))

    async def bootstrap(self, addrs: Sequence[HostPortArg], *, wait: bool = False,
                        timeout: float = 30.0) -> None:
        """Join again from ``addrs`` (a running node that lost its way)."""
        await self._session.bootstrap(
            _bootstrap_list(addrs) or [], wait=wait, timeout=check_seconds(timeout, "timeout")
        )

    async def stop(self) -> None:
        """Cancel what runs, save the state (``state_path``), close the sockets. Safe to call
        twice; ``start()`` again keeps the id, contacts, handlers, subscribers and tasks."""
        await self._session.stop()

    async def __aenter__(self) -> Dht:
        if self._session.state == "stopped":
            try:
                await self.start()
            except BaseException:
                await self.stop()  # a start that timed out leaves the node trying: end it
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ======================================================================= operations ==
    async def find_peers(self, info_hash: bytes | str, *, timeout: float | None = None
                         ) -> LookupResult:
        """Peers of ``info_hash`` (20 bytes, or hex/base32/magnet text) in every family. After
        ``timeout`` seconds the lookup stops and what was found is returned (``cancelled``)."""
        ih = check_id(info_hash)
        return await self._session.find_peers(ih, check_timeout(timeout))

    async def find_node(self, target: bytes | str, *, timeout: float | None = None
                        ) -> LookupResult:
        """The K closest nodes to ``target`` (``result.closest``, nearest first)."""
        t = check_id(target, "target")
        return await self._session.find_node(t, check_timeout(timeout))

    async def announce(
        self,
        info_hash: bytes | str,
        port: int | None = None,
        *,
        timeout: float | None = None,
    ) -> AnnounceResult:
        """Tell the nodes closest to ``info_hash`` that we have it on TCP ``port`` (None: the
        port our UDP packets come from, BEP 5 ``implied_port``)."""
        ih = check_id(info_hash)
        implied = port is None
        p = 0 if port is None else check_port(port)
        return await self._session.announce(ih, p, implied, check_timeout(timeout))

    async def scrape(self, info_hash: bytes | str, *, timeout: float | None = None
                     ) -> ScrapeResult:
        """Peers and the BEP 33 estimate of seeds and downloaders of ``info_hash``."""
        ih = check_id(info_hash)
        return await self._session.scrape(ih, check_timeout(timeout))

    async def ping(self, addr: HostPortArg, *, timeout: float | None = None) -> PingResult:
        """Ping the node at ``addr``; ``TimeoutError`` if it does not answer."""
        return await self._session.ping(check_addr(addr), check_timeout(timeout))

    async def get(
        self, target: bytes | str, *, salt: bytes = b"", timeout: float | None = None
    ) -> ItemResult:
        """The BEP 44 item stored under ``target`` (``found`` false if none); ``salt`` of a
        mutable item, if it was put with one."""
        t = check_id(target, "target")
        if not isinstance(salt, bytes):
            raise TypeError(f"salt must be bytes, got {type(salt).__name__}")
        return await self._session.get_item(t, salt, check_timeout(timeout))

    async def put(
        self,
        value: object,
        *,
        seed: bytes | None = None,
        salt: bytes = b"",
        seq: int | None = None,
        timeout: float | None = None,
    ) -> PutResult:
        """Store ``value`` (anything bencodable: bytes, int, list, dict with bytes keys) in the
        DHT (BEP 44): immutable (its target is its SHA-1) or, with ``seed`` (a 32-byte ed25519
        private seed, ``dhtviewer.net.keys``), mutable under that key and ``salt``, version
        ``seq`` (None: the newest found + 1). ``result.target`` is where to ``get`` it."""
        request = PutRequest(value, seed, salt, seq)  # checks every field (ValueError)
        return await self._session.put_item(request, check_timeout(timeout))

    async def sample(self, addr: HostPortArg, *, timeout: float | None = None) -> SampleResult:
        """One BEP 51 ``sample_infohashes`` to ``addr``: info-hashes it stores."""
        return await self._session.sample(check_addr(addr), check_timeout(timeout))

    # --- followed live ---------------------------------------------------------------------------
    def start_find_peers(self, info_hash: bytes | str) -> LookupHandle:
        """Start a get_peers lookup: ``async for event in handle`` follows it (``LookupStarted``
        ... ``LookupFinished``), ``await handle.result(timeout)`` ends it, ``cancel()`` stops
        it."""
        return self._session.start_find_peers(check_id(info_hash))

    def start_find_node(self, target: bytes | str) -> LookupHandle:
        return self._session.start_find_node(check_id(target, "target"))

    def start_announce(self, info_hash: bytes | str, port: int | None = None) -> LookupHandle:
        """``await handle.announce_result()`` for the outcome."""
        p = 0 if port is None else check_port(port)
        return self._session.start_announce(check_id(info_hash), p, port is None)

    def start_scrape(self, info_hash: bytes | str) -> LookupHandle:
        """``await handle.scrape_result()`` for the estimate."""
        return self._session.start_find_peers(check_id(info_hash), scrape=True)

    def start_get(self, target: bytes | str, *, salt: bytes = b"") -> LookupHandle:
        """``await handle.item_result()`` for the item."""
        return self._session.start_get_item(check_id(target, "target"), salt)

    def start_put(self, value: object, *, seed: bytes | None = None, salt: bytes = b"",
                  seq: int | None = None) -> LookupHandle:
        """``await handle.put_result()`` for where it was stored."""
        return self._session.start_put_item(PutRequest(value, seed, salt, seq))

    # ======================================================================= events ==
    def subscribe(
        self,
        handler: Callable[[SessionEvent], None],
        *,
        kinds: Iterable[type] | type | None = None,
    ) -> Callable[[], None]:
        """``handler(event)`` for every event of ``kinds`` (event classes of
        ``dhtviewer.events``, and ``StateChanged``; None: all), on the loop's thread, as it
        happens; returns the function that unsubscribes. Packet events
        (``MessageSent``/``MessageReceived``) are built only while someone asks for them. A
        handler that raises is logged, counted (``stats()["subscriber_errors"]``) and
        skipped."""
        check_callable(handler, "handler")
        return self._session.subscribe(handler, kinds=_kinds(kinds))

    def events(
        self, kinds: Iterable[type] | type | None = None, *, maxsize: int = DEFAULT_STREAM_SIZE
    ) -> EventStream[SessionEvent]:
        """``async with dht.events([NodeAdded]) as stream: async for event in stream: ...``;
        at most ``maxsize`` events wait, then the oldest are dropped (``stream.dropped``)."""
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, got {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        return self._session.events(_kinds(kinds), maxsize=maxsize)

    # ================================================================ extension points ==
    def register_handler(self, method: bytes | str, handler: MethodHandler, *,
                         replace_builtin: bool = False) -> None:
        """Answer queries of ``method`` with ``handler(query, addr)`` (see ``MethodHandler``),
        on every node, across restarts. Built-in methods (ping, find_node, get_peers,
        announce_peer, sample_infohashes, get, put) are refused unless ``replace_builtin``. A
        handler that raises anything but ``QueryError`` is logged with its traceback; the node
        answers error 202 and counts it (``stats()["handler_errors"]``)."""
        m = check_method(method)
        check_callable(handler, "handler")
        if m in _BUILTIN_METHODS and not replace_builtin:
            raise ValueError(
                f"{m.decode()} is a built-in method; pass replace_builtin=True to answer it "
                "yourself"
            )
        self._session.register_handler(m, self._core_handler(m, handler))

    def unregister_handler(self, method: bytes | str) -> None:
        """Stop answering ``method`` (a built-in method gets its built-in answer back)."""
        self._session.unregister_handler(check_method(method))

    async def query(
        self,
        addr: HostPortArg,
        method: bytes | str,
        args: ReplyFields | None = None,
        *,
        timeout: float | None = None,
    ) -> Response:
        """Send a ``method`` query with ``args`` to ``addr`` and return its ``Response`` (the
        custom fields in ``response.extra``). ``QueryError`` for a KRPC error reply,
        ``TimeoutError`` after ``timeout`` seconds (default: the hard timeout setting)."""
        return await self._session.query(
            check_addr(addr), check_method(method), check_query_args(args),
            timeout=check_timeout(timeout),
        )

    def call_at(self, when: float, fn: TaskFunction, *, name: str = "") -> SessionTask:
        """Run ``fn(now)`` once at ``when`` on the node's clock (``now()``), kept across
        restarts. A task that raises is logged and reported (``TaskFailed``)."""
        check_callable(fn, "fn")
        return self._session.call_at(check_seconds(when, "when"), _logged_task(fn, name),
                                     name=name or _name_of(fn))

    def call_later(self, delay: float, fn: TaskFunction, *, name: str = "") -> SessionTask:
        """Run ``fn(now)`` once, ``delay`` seconds from now."""
        check_callable(fn, "fn")
        return self._session.call_later(check_seconds(delay, "delay"), _logged_task(fn, name),
                                        name=name or _name_of(fn))

    def call_every(self, interval: float, fn: TaskFunction, *, first: float | None = None,
                   name: str = "") -> SessionTask:
        """Run ``fn(now)`` every ``interval`` seconds (first at ``first``, default one interval
        from now) until ``task.cancel()``; a run that raises is logged and the task goes on."""
        check_callable(fn, "fn")
        seconds = check_seconds(interval, "interval")
        if seconds == 0:
            raise ValueError("interval must be above 0 s")
        start = None if first is None else check_seconds(first, "first")
        return self._session.call_every(seconds, _logged_task(fn, name), first=start,
                                        name=name or _name_of(fn))

    # ======================================================================= views ==
    @property
    def node_id(self) -> bytes:
        return self._session.node_id

    @property
    def state(self) -> State:
        """"stopped", "bootstrapping", "ready" or "idle" (running, nothing to join from)."""
        return self._session.state

    @property
    def state_detail(self) -> str:
        return self._session.state_detail

    @property
    def families(self) -> tuple[int, ...]:
        """The address families running (4, 6)."""
        return self._session.families

    @property
    def local_address(self) -> Addr | None:
        """The first family's bound (ip, port); None when stopped."""
        return self._session.local_address

    @property
    def local_addresses(self) -> dict[int, Addr]:
        return self._session.local_addresses

    @property
    def external_ip(self) -> str | None:
        """Our address as other nodes see it, once they agree (BEP 42)."""
        return self._session.external_ip

    @property
    def tasks(self) -> list[SessionTask]:
        return self._session.tasks

    def now(self) -> float:
        """The node's clock: what ``call_at`` and every event's ``at`` refer to."""
        return self._session.now()

    def routing_snapshot(self, family: int | None = None) -> RoutingSnapshot:
        """The routing table of ``family`` (default: the first one's): buckets and nodes."""
        return self._session.routing_snapshot(family)

    def stats(self) -> dict[str, float]:
        """Every counter, summed over the families (see ``DhtSession.stats``)."""
        return self._session.stats()

    def stored_items(self) -> list[tuple[bytes, StoredItem]]:
        """BEP 44 items other nodes stored on us."""
        return self._session.stored_items()

    # ======================================================================= internals ==
    def _core_handler(
        self, method: bytes, handler: MethodHandler
    ) -> Callable[[Query, Addr, float], Message]:
        session = self._session

        def answer(query: Query, addr: Addr, now: float) -> Message:
            try:
                out = handler(query, addr)
            except QueryError as err:
                code = GENERIC_ERROR if err.code is None else err.code
                return ErrorMessage(query.tid, code, err.message)
            except Exception:
                log.exception("handler of %r failed on a query from %s", method, addr)
                raise  # the node answers 202 (server error) and counts it
            if isinstance(out, (Response, ErrorMessage)):
                return out
            node = session.nodes.get(ip_family(addr[0]))
            if node is None:  # cannot happen: the query came in through that node
                raise RuntimeError(f"no node of the family of {addr[0]}")
            fields = {} if out is None else check_query_args(out, "the handler's reply")
            return node.responder.response(query, addr, extra=fields)

        return answer


_BUILTIN_METHODS = frozenset(
    (b"ping", b"find_node", b"get_peers", b"announce_peer", b"sample_infohashes", b"get",
     b"put")
)


def _kinds(kinds: Iterable[type] | type | None) -> Iterable[type] | None:
    if isinstance(kinds, type):
        return (kinds,)
    return kinds


def _name_of(fn: Callable[..., object]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def _logged_task(fn: TaskFunction, name: str) -> TaskFunction:
    """``fn`` that logs its exception (with the traceback the ``TaskFailed`` event lacks)
    before the node's scheduler counts it."""
    label = name or _name_of(fn)

    def run(now: float) -> None:
        try:
            fn(now)
        except Exception:
            log.exception("task %s failed", label)
            raise

    run.__qualname__ = label
    return run


def _bootstrap_list(value: Sequence[HostPortArg] | None) -> list[HostPortArg] | None:
    if value is None:
        return None
    one = isinstance(value, str) or (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int)
    )
    if one:  # one address given where a list was expected
        return [check_addr(value, "bootstrap address")]
    if not isinstance(value, Iterable):
        raise TypeError(f"bootstrap must be a list of addresses, got {type(value).__name__}")
    return [check_addr(a, "bootstrap address") for a in value]


def _bind_pair(value: object, name: str) -> tuple[str, int]:
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)):
        raise TypeError(f"{name} must be a (host, port) pair, got {value!r}")
    port = value[1]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise ValueError(f"{name} port must be 0..65535, got {port!r}")
    return (value[0], port)

