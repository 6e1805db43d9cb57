"""The control API: ground truth about the simulated network, as JSON over HTTP on 127.0.0.1.

``GET /stats`` (sizes, rates, reply lateness, counters, RSS), ``GET /closest?target=HEX&k=8``
(the true K closest answering nodes), ``GET /swarms`` (the seeded info-hashes), ``GET
/swarm?info_hash=HEX`` (its true peers, seeds and downloaders, and the nodes that hold it),
``GET /size``, ``GET /members`` (joined clients and their background traffic) and ``GET
/routers``. Anything else
gets a JSON error: 400 for a bad parameter, 404 for an unknown path, 405 for another method.
A handler never raises into the server: whatever goes wrong becomes a 500 with a JSON error.

The stdlib ``ThreadingHTTPServer`` runs in a thread of the serving process. It only reads
state the serving loop writes (under the GIL every read sees a consistent object), and its
requests are rare next to the UDP traffic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dhtviewer.infohash import InfohashError, parse_infohash
from dhtviewer.simnet.addresses import ip_text
from dhtviewer.simnet.network import Simnet
from dhtviewer.simnet.server import SimnetServer

__all__ = ["BadRequest", "ControlApi", "rss_mb"]

log = logging.getLogger(__name__)
MAX_K = 1000
MAX_SWARMS_LISTED = 10_000


class BadRequest(ValueError):
    """A request parameter that cannot be used: 400 with this message."""


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux; 0 where unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


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
    """Answers the control requests about ``net`` served by ``server``."""

    def __init__(self, net: Simnet, server: SimnetServer | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.net = net
        self.server = server
        self.clock = clock
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
        except Exception as err:  # pragma: no cover - a bug must not kill the API
            log.exception("control API request failed")
            return 500, {"error": f"internal error: {type(err).__name__}"}

    # --- resources --------------------------------------------------------------------------------
    def stats(self, query: dict[str, list[str]]) -> dict[str, Any]:
        net = self.net
        now = self.clock()
        doc: dict[str, Any] = {
            "nodes": net.index.n,
            "responsive": net.responsive(),
            "members": len(net.members),
            "profile": net.profile.name,
            "scenarios": net.config.scenarios.describe(),
            "uptime_s": round(now - net.started, 3),
            "build_s": round(net.build_seconds, 3),
            "rss_mb": round(rss_mb(), 1),
            "member_rate": net.members.rate,
            "churn": {"rate_per_s": net.churn_rate, "left": net.left,
                      "came_back": net.came_back},
            "counters": net.counters.to_json(),
            "announced_peers": net.swarms.announced.peer_count(),
            "items": dict(net.items.stats),  # BEP 44 gets and puts served
            "scrapes": net.scrape.scrapes,  # BEP 33 answers with filters
        }
        server = self.server
        if server is not None:
            doc.update({
                "queries_in_per_s": round(server.rates.get("queries_in_per_s", 0.0), 1),
                "datagrams_out_per_s": round(server.rates.get("datagrams_out_per_s", 0.0), 1),
                "background_per_s": round(server.rates.get("background_per_s", 0.0), 1),
                "late_ms": server.lateness_ms(),
                "pending_replies": server.pending_replies(),
                "server": server.stats.to_json(),
            })
        return doc

    def closest(self, query: dict[str, list[str]]) -> dict[str, Any]:
        target = _hash(query, "target")
        k = _int(query, "k", 8, 1, MAX_K)
        return {"target": target.hex(), "k": k, "nodes": self.net.closest(target, k)}

    def swarms(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = _int(query, "limit", 100, 1, MAX_SWARMS_LISTED)
        seeded = self.net.swarms.by_size
        return {
            "count": len(seeded),
            "swarms": [{"info_hash": s.info_hash.hex(), "peers": len(s.peers)}
                       for s in seeded[:limit]],
        }

    def swarm(self, query: dict[str, list[str]]) -> dict[str, Any]:
        info_hash = _hash(query, "info_hash")
        net = self.net
        peers = net.swarms.true_peers(info_hash, self.clock())
        if peers is None:
            raise BadRequest(f"no swarm has info_hash {info_hash.hex()}")
        index = net.index
        seeds, downloaders = net.scrape.truth(info_hash, self.clock()) or (0, 0)
        return {
            "info_hash": info_hash.hex(),
            "peers": [f"{h}:{p}" for h, p in peers],
            "seeds": seeds,  # distinct IP addresses, as BEP 33 counts them
            "downloaders": downloaders,
            "stored_at": [f"{ip_text(index.ip(j))}:{index.port(j)}"
                          for j in net.swarms.holders(info_hash)],
        }

    def size(self, query: dict[str, list[str]]) -> dict[str, Any]:
        net = self.net
        return {"nodes": net.index.n, "responsive": net.responsive(),
                "members": len(net.members)}

    def members(self, query: dict[str, list[str]]) -> dict[str, Any]:
        now = self.clock()
        net = self.net
        return {"rate": net.members.rate,
                "members": [m.to_json(now) for m in list(net.members.by_addr.values())]}

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
