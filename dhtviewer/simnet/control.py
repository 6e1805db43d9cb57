"""The control API: ground truth about the simulated network, as JSON over HTTP on 127.0.0.1.

``GET /stats`` (sizes, rates, reply lateness, counters, memory), ``GET /closest?target=HEX&k=8``
(the true K closest answering nodes), ``GET /swarms`` (the seeded info-hashes), ``GET
/swarm?info_hash=HEX`` (its true peers, its seeds and downloaders as BEP 33 counts them, and
the nodes that hold it), ``GET /size``, ``GET /members`` (joined clients and their background
traffic) and ``GET /routers``. Anything else
gets a JSON error: 400 for a bad parameter, 404 for an unknown path, 405 for another method,
503 when the network does not answer in time. A handler never raises into the server: whatever
goes wrong becomes a 500 with a JSON error.

The stdlib ``ThreadingHTTPServer`` parses requests in threads, but the network's state belongs
to its serving loop (expiring announces, churn and members change it there), so a handler
never touches it from its thread: it hands functions to the loop (``LoopCalls``: run between
two batches of datagrams, their results handed back) and waits for the answer. The parts of
the answer that only the serving processes know (counters, lateness, announced peers) are
asked of each of them (``questions.py``) and added up here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from dhtviewer.infohash import InfohashError, parse_infohash
from dhtviewer.simnet.addresses import ip_text
from dhtviewer.simnet.counters import Counters
from dhtviewer.simnet.lateness import LatenessHistogram
from dhtviewer.simnet.network import Simnet
from dhtviewer.simnet.questions import Question, answer

__all__ = ["BadRequest", "ControlApi", "Inline", "LoopBackend", "LoopCalls"]

log = logging.getLogger(__name__)
MAX_K = 1000
MAX_SWARMS_LISTED = 10_000
ANSWER_TIMEOUT = 10.0
"""Seconds a request waits for the network's loop (a stalled loop gets 503, not a hang)."""
T = TypeVar("T")


class LoopCalls:
    """Functions other threads want run on the serving loop, and their results.

    ``call`` (any thread) queues a function and wakes the loop through a pipe (``fileno()``
    becomes readable); the loop's ``run_pending`` runs what is queued and hands back results
    and exceptions."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.append((fn, future))
        # A full pipe holds wake-ups enough: the loop will look.
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"x")
        return future

    def call(self, fn: Callable[[], T], timeout: float = ANSWER_TIMEOUT) -> T:
        return self.submit(fn).result(timeout)

    def run_pending(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        while self._queue:
            fn, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except Exception as err:
                future.set_exception(err)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Part(Protocol):
    """The loop's side of a ``LoopBackend``: asks every process that holds a part of the
    network (itself included) and completes the future with their answers."""

    def ask(self, question: Question, args: tuple[Any, ...]) -> Future[list[Any]]: ...


class LoopBackend:
    """The control API of a running network: everything through its loop."""

    def __init__(self, calls: LoopCalls, part: Part, timeout: float = ANSWER_TIMEOUT) -> None:
        self.calls = calls
        self.part = part
        self.timeout = timeout

    def run(self, fn: Callable[[], T]) -> T:
        return self.calls.call(fn, self.timeout)

    def ask(self, question: Question, *args: Any) -> list[Any]:
        pending = self.calls.call(lambda: self.part.ask(question, args), self.timeout)
        return pending.result(self.timeout)


class Inline:
    """The control API of a network no loop runs (tests): everything at once, in the caller's
    thread."""

    def __init__(self, net: Simnet, clock: Callable[[], float]) -> None:
        self.net = net
        self.clock = clock

    def run(self, fn: Callable[[], T]) -> T:
        return fn()

    def ask(self, question: Question, *args: Any) -> list[Any]:
        return [answer(self.net, None, question, args, self.clock())]


class Backend(Protocol):
    def run(self, fn: Callable[[], T]) -> T: ...

    def ask(self, question: Question, *args: Any) -> list[Any]: ...


class BadRequest(ValueError):
    """A request parameter that cannot be used: 400 with this message."""


def _one(query: dict[str, list[str]], name: str, default: str | None = None) -> str:
    values = query.get(name)
    if not values:
        if default is None:
            raise BadRequest(f"missing parameter {name!r}")
        return default
    if len(values) > 1:
        raise BadRequest(f"parameter {name!r} given {len(values)} times")
    return values[0]


def _hash(query: dict[str, list[str]], name: str) -> bytes:
    text = _one(query, name)
    try:
        return parse_infohash(text)
    except InfohashError as err:
        raise BadRequest(f"{name}: {err}") from None


def _int(query: dict[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    text = _one(query, name, str(default))
    if not text.isdigit():
        raise BadRequest(f"{name} must be an integer in {lo}..{hi}, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be in {lo}..{hi}, got {value}")
    return value


class ControlApi:
    """Answers the control requests about ``net`` through ``backend`` (default ``Inline``).
    ``build`` holds the figures of the ready line (shown in ``/stats``)."""

    def __init__(self, net: Simnet, backend: Backend | None = None,
                 clock: Callable[[], float] = time.time,
                 build: dict[str, Any] | None = None) -> None:
        self.net = net
        self.clock = clock
        self.backend: Backend = backend if backend is not None else Inline(net, clock)
        self.build = build or {}
        self.routes: dict[str, Callable[[dict[str, list[str]]], Any]] = {
            "/stats": self.stats,
            "/closest": self.closest,
            "/swarms": self.swarms,
            "/swarm": self.swarm,
            "/size": self.size,
            "/members": self.members,
            "/routers": self.routers,
        }

    def handle(self, method: str, target: str) -> tuple[int, Any]:
        """(status, JSON-able body) for a request; never raises."""
        try:
            parts = urlsplit(target)
            route = self.routes.get(parts.path.rstrip("/") or "/")
            if route is None:
                return 404, {"error": f"no such resource {parts.path!r}",
                             "resources": sorted(self.routes)}
            if method != "GET":
                return 405, {"error": f"{method} not allowed; the control API is read-only"}
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False,
                             max_num_fields=20)
            unknown = sorted(set(query) - _PARAMS.get(parts.path.rstrip("/"), set()))
            if unknown:
                raise BadRequest(f"unknown parameter {unknown[0]!r}")
            return 200, route(query)
        except BadRequest as err:
            return 400, {"error": str(err)}
        except ValueError as err:  # parse_qs: too many fields, bad escapes
            return 400, {"error": f"bad request: {err}"}
        except (FutureTimeout, TimeoutError):
            return 503, {"error": "the simulated network did not answer in time"}
        except Exception as err:  # pragma: no cover - a bug must not kill the API
            log.exception("control API request failed")
            return 500, {"error": f"internal error: {type(err).__name__}"}

    # --- resources --------------------------------------------------------------------------------
    def stats(self, query: dict[str, list[str]]) -> dict[str, Any]:
        net = self.net

        def here() -> dict[str, Any]:
            now = self.clock()
            return {
                **net.size(),
                "profile": net.profile.name,
                "scenarios": net.config.scenarios.describe(),
                "swarms": net.swarms.count,
                "uptime_s": round(now - net.started, 3),
                "member_rate": net.members.rate,
                "churn": net.churn.to_json(),
            }

        doc = self.backend.run(here)
        parts = self.backend.ask(Question.STATS)
        doc.update(self.build)
        hist = LatenessHistogram()
        for p in parts:
            if "lateness" in p:
                hist = hist.merge(LatenessHistogram.from_json(p["lateness"]))

        def total(key: str) -> float:
            return float(sum(p.get("rates", {}).get(key, 0.0) for p in parts))

        doc.update({
            "processes": len(parts),
            "rss_mb": round(sum(p["rss_mb"] for p in parts), 1),
            "pss_mb": round(sum(p["pss_mb"] for p in parts), 1),
            "counters": Counters.total([p["counters"] for p in parts]),
            "announced_peers": sum(p["announced_peers"] for p in parts),
            # BEP 44 gets and puts, BEP 33 answers with filters, served by every process
            "items": {key: sum(p.get("items", {}).get(key, 0) for p in parts)
                      for key in ("gets", "served", "puts", "stored", "refused",
                                  "stores_dropped")},
            "scrapes": sum(p.get("scrapes", 0) for p in parts),
            "queries_in_per_s": round(total("queries_in_per_s"), 1),
            "datagrams_out_per_s": round(total("datagrams_out_per_s"), 1),
            "background_per_s": round(total("background_per_s"), 1),
            "late_ms": hist.summary_ms(),
            "lateness": hist.to_json(),
            "pending_replies": sum(p.get("pending_replies", 0) for p in parts),
            "server": {key: sum(p.get("server", {}).get(key, 0) for p in parts)
                       for key in ("datagrams", "non_loopback", "oversized", "send_dropped",
                                   "sent", "wakeups")},
        })
        return doc

    def closest(self, query: dict[str, list[str]]) -> dict[str, Any]:
        target = _hash(query, "target")
        k = _int(query, "k", 8, 1, MAX_K)
        nodes = self.backend.run(lambda: self.net.closest(target, k))
        return {"target": target.hex(), "k": k, "nodes": nodes}

    def swarms(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = _int(query, "limit", 100, 1, MAX_SWARMS_LISTED)
        sw = self.net.swarms

        def listing() -> dict[str, Any]:
            return {"count": sw.count,
                    "swarms": [{"info_hash": sw.info_hash(r).hex(), "peers": sw.size(r)}
                               for r in range(min(limit, sw.count))]}

        return self.backend.run(listing)

    def swarm(self, query: dict[str, list[str]]) -> dict[str, Any]:
        info_hash = _hash(query, "info_hash")
        net = self.net
        index = net.index

        def seeded() -> tuple[list[str], list[str], set[str], set[str]]:
            sw = net.swarms
            rank = sw.rank_of(info_hash)
            if rank < 0:
                return [], [], set(), set()
            peers = sw.peers(rank)
            seeds, downloaders = net.scrape.seeded_ips(info_hash, peers)
            return ([f"{h}:{p}" for h, p in peers],
                    [f"{ip_text(index.ip(j))}:{index.port(j)}" for j in sw.storers(rank)],
                    seeds, downloaders)

        peers, stored_at, seeds, downloaders = self.backend.run(seeded)
        known = set(peers)
        for part in self.backend.ask(Question.SWARM, info_hash):
            for peer in part["peers"]:
                if peer not in known:
                    known.add(peer)
                    peers.append(peer)
            stored_at += [f"{ip_text(index.ip(j))}:{index.port(j)}" for j in part["holders"]]
            seeds.update(part.get("seed_ips", ()))
            downloaders.update(part.get("downloader_ips", ()))
        if not peers and not stored_at:
            raise BadRequest(f"no swarm has info_hash {info_hash.hex()}")
        return {"info_hash": info_hash.hex(), "peers": peers,
                # distinct IP addresses, as BEP 33 counts them
                "seeds": len(seeds), "downloaders": len(downloaders),
                "stored_at": list(dict.fromkeys(stored_at))}

    def size(self, query: dict[str, list[str]]) -> dict[str, Any]:
        return self.backend.run(self.net.size)

    def members(self, query: dict[str, list[str]]) -> dict[str, Any]:
        net = self.net

        def listing() -> dict[str, Any]:
            now = self.clock()
            return {"rate": net.members.rate,
                    "members": [m.to_json(now) for m in net.members.by_addr.values()]}

        return self.backend.run(listing)

    def routers(self, query: dict[str, list[str]]) -> dict[str, Any]:
        return {"routers": [f"{h}:{p}" for h, p in self.net.router_addrs()]}

    # --- HTTP -------------------------------------------------------------------------------------
    def serve(self, port: int) -> ThreadingHTTPServer:
        """Start serving on 127.0.0.1:``port`` (0: any) in a daemon thread; the server is
        returned (``server_address`` has the port; ``shutdown()`` stops it)."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "dhtviewer-simnet"

            def _reply(self, method: str) -> None:
                status, body = api.handle(method, self.path)
                data = json.dumps(body).encode() + b"\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def do_PUT(self) -> None:
                self._reply("PUT")

            def do_DELETE(self) -> None:
                self._reply("DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, name="simnet-control", daemon=True).start()
        return httpd


_PARAMS: dict[str, set[str]] = {
    "/closest": {"target", "k"},
    "/swarms": {"limit"},
    "/swarm": {"info_hash"},
}
