"""A small network of real libtorrent DHT nodes on loopback, for interoperability tests.

Each node is a full libtorrent session with only the DHT enabled, listening on its own loopback
address (127.0.50.1, 127.0.50.2, ...), so that per-IP rules in either implementation behave as
they would between distinct hosts. Everything here is bounded in time: every wait takes a
timeout and raises or returns empty when it runs out.

Why the nodes are introduced with ``add_dht_node`` and not ``dht_bootstrap_nodes``: libtorrent
treats bootstrap nodes as routers, which it queries but never puts in its routing table, and a
node that only heard a query from a newcomer keeps it unconfirmed until a refresh tick pings it
(one node per 5 s tick). A network built that way takes tens of seconds to fill its tables.
``add_dht_node`` pings the node at once and adds it confirmed when it answers. Nodes start one
after another, each once the previous one is listening, so no introduction hits a closed port.

libtorrent's Python binding has no ``dht_direct_request``, so raw queries (``direct_query``,
``direct_ping``) are sent from a UDP socket owned by the harness, on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import random
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

import bencode
import libtorrent as lt

Addr = tuple[str, int]

# Alerts kept per session between pumps; old ones are dropped first. libtorrent's own queue
# is raised to match so that a burst between two pumps is not lost inside libtorrent either.
_ALERT_BUFFER = 20_000
_CODEC = bencode.Bencode(encoding=None)


def expanded_key(seed: bytes) -> bytes:
    """libtorrent's 64-byte ed25519 private key for a 32-byte seed: SHA-512 of the seed with
    the scalar clamped (the format of the BEP 44 test vectors' "private key")."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


def loopback_addresses(base: str, n: int) -> list[str]:
    """``n`` distinct addresses from ``base`` upwards, inside 127.0.0.0/8.

    Host bytes 0 and 255 are skipped: Linux routes them on lo, but some code treats them as
    network or broadcast addresses.
    """
    start = ipaddress.IPv4Address(base)
    if not start.is_loopback:
        raise ValueError(f"{base} is not a loopback address")
    out: list[str] = []
    candidate = start
    while len(out) < n:
        if not candidate.is_loopback:
            raise ValueError(f"{n} addresses from {base} leave 127.0.0.0/8")
        if candidate.packed[3] not in (0, 255):
            out.append(str(candidate))
        candidate += 1
    return out


class AlertRecord:
    """A copy of one libtorrent alert: every public attribute, and the result of every accessor
    method that takes no argument (``peers()``, ``message()``, ``what()``, ...). Attribute and
    method access look like the original alert's; ``is_a`` replaces ``isinstance``."""

    __slots__ = ("_values", "kind")

    def __init__(self, alert: Any) -> None:
        self.kind = type(alert)
        values: dict[str, Any] = {}
        for name in dir(alert):
            if name.startswith("_"):
                continue
            try:
                value = getattr(alert, name)
                if callable(value):
                    result = value()
                    value = _Returns(result)
            except Exception:  # an accessor that needs arguments: not copied
                continue
            values[name] = value
        self._values = values

    def is_a(self, kind: type) -> bool:
        return issubclass(self.kind, kind)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self.kind.__name__} has no {name!r}") from None


class _Returns:
    """Stands in for an accessor method: calling it returns the value copied at pop time."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


class LibtorrentNet:
    """``n`` libtorrent DHT nodes on distinct loopback addresses, introduced to each other.

    Usage::

        with LibtorrentNet(n=20) as net:   # start() is called on enter
            net.announce(0, info_hash, 6881)
            peers = net.get_peers(5, info_hash)
    """

    def __init__(
        self,
        n: int = 30,
        base: str = "127.0.50.1",
        port: int = 0,
        *,
        fanout: int = 4,
        seed: int = 0,
        log: bool = False,
        extra_settings: Mapping[str, Any] | None = None,
        ipv6: bool = False,
    ) -> None:
        """``port`` 0 lets every node pick a free port on its own address (no collisions with
        anything else on the machine); a fixed port is used for all nodes otherwise.
        ``fanout`` is how many existing nodes each new node is introduced to. ``log`` adds
        libtorrent's DHT debug log and raw packet alerts (see ``alerts``). ``ipv6``: every
        node is dual-stack, listening on ::1 too (an ephemeral port each: ::1 is the only
        IPv6 loopback address), so libtorrent runs an IPv6 DHT node beside the IPv4 one
        (``addrs6``), as it does on a dual-stack host (BEP 32)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.ipv6 = ipv6
        self.addrs6: list[Addr] = []
        self.ips = loopback_addresses(base, n)
        self.port = port
        self.fanout = fanout
        self.log = log
        self.extra_settings = dict(extra_settings or {})
        self.sessions: list[lt.session] = []
        self.addrs: list[Addr] = []
        self.stopped: set[int] = set()
        self.setup_seconds: float | None = None
        self._rng = random.Random(seed)
        self._pending: list[list[AlertRecord]] = []
        self._sock: socket.socket | None = None
        self._own_id = self._rng.randbytes(20)
        self._next_tid = 0

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LibtorrentNet:
        try:
            if not self.sessions:
                self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _settings(self, ip: str) -> lt.settings_pack:
        cat = lt.alert.category_t
        mask = (
            cat.dht_notification
            | cat.dht_operation_notification
            | cat.status_notification
            | cat.error_notification
            | cat.stats_notification
        )
        if self.log:
            mask |= cat.dht_log_notification
        settings: lt.settings_pack = {
            "enable_dht": True,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "listen_interfaces": f"{ip}:{self.port}" + (",[::1]:0" if self.ipv6 else ""),
            # Defaults assume the public internet: one node per /24 and ids bound to the
            # external address. Every node here shares 127.0.0.0/8.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_enforce_node_id": False,
            # Empty: no public routers. Nodes are introduced explicitly in start().
            "dht_bootstrap_nodes": "",
            "alert_mask": mask,
            "alert_queue_size": _ALERT_BUFFER,
            # Each session would otherwise start ten disk threads it never uses.
            "aio_threads": 1,
        }
        # Unchecked on purpose: tests may pass any libtorrent setting.
        return cast("lt.settings_pack", {**settings, **self.extra_settings})

    def start(self, timeout: float = 15.0, min_nodes: int = 3, ready_fraction: float = 0.9) -> None:
        """Start the nodes one after another and wait until the routing tables have filled.

        Ready means at least ``ready_fraction`` of the nodes have ``min_nodes`` (capped at
        n - 1) confirmed routing-table entries. Raises TimeoutError otherwise.
        """
        if self.sessions:
            raise RuntimeError("already started")
        started = time.monotonic()
        deadline = started + timeout
        for i, ip in enumerate(self.ips):
            session = lt.session(self._settings(ip))
            self.sessions.append(session)
            self._pending.append([])
            ports = self._wait_listening(i, deadline)
            self.addrs.append((ip, ports[4]))
            if self.ipv6:
                self.addrs6.append(("::1", ports[6]))
            # Each newcomer is introduced to a few random existing nodes, so the network is
            # a random graph rather than a chain, and lookups converge from anywhere.
            for j in self._rng.sample(range(i), min(self.fanout, i)):
                for addr in self._addrs_of(j):
                    session.add_dht_node(addr)
        # The first nodes had few others to meet when they started; introduce them again now
        # so that they do not wait for libtorrent's slow refresh to learn of later nodes.
        for i in range(min(self.fanout + 1, self.n)):
            others = [j for j in range(len(self.addrs)) if j != i]
            for j in self._rng.sample(others, min(self.fanout, len(others))):
                for addr in self._addrs_of(j):
                    self.sessions[i].add_dht_node(addr)
        self.wait_ready(max(0.0, deadline - time.monotonic()), min_nodes, ready_fraction)
        self.setup_seconds = time.monotonic() - started

    def _addrs_of(self, i: int) -> list[Addr]:
        """Node ``i``'s DHT addresses (IPv4, then IPv6 when dual-stack)."""
        return [self.addrs[i], *([self.addrs6[i]] if self.ipv6 else [])]

    def _wait_listening(self, i: int, deadline: float) -> dict[int, int]:
        """family -> the UDP port session ``i`` bound (its DHT port); raises if listening
        failed."""
        ports: dict[int, int] = {}
        want = {4, 6} if self.ipv6 else {4}
        while True:
            for failed in self._take(i, lt.listen_failed_alert):
                raise OSError(f"libtorrent node {i} could not listen: {failed.message()}")
            for alert in self._take(i, lt.listen_succeeded_alert):
                if alert.socket_type == lt.socket_type_t.utp:
                    ports[6 if ":" in str(alert.address) else 4] = int(alert.port)
            if set(ports) >= want:
                return ports
            if not self._wait_alert(i, deadline):
                raise TimeoutError(f"libtorrent node {i} did not start listening on {self.ips[i]}")

    def wait_ready(self, timeout: float, min_nodes: int = 3, ready_fraction: float = 0.9) -> None:
        """Wait until enough running nodes have ``min_nodes`` confirmed routing-table entries."""
        running = [i for i in range(len(self.sessions)) if i not in self.stopped]
        need_nodes = min(min_nodes, len(running) - 1)
        need_count = math.ceil(ready_fraction * len(running))
        deadline = time.monotonic() + timeout
        counts: list[int] = []
        while True:
            remaining = deadline - time.monotonic()
            counts = self.routing_table_sizes(running, timeout=max(0.5, remaining))
            if sum(c >= need_nodes for c in counts) >= need_count:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"DHT testnet not ready after {timeout:.1f}s: routing table sizes {counts}"
                )
            time.sleep(0.1)

    def stop(self, indexes: Iterable[int], timeout: float = 2.0) -> None:
        """Silence nodes: their DHT stops, and queries to them go unanswered (no ICMP error),
        like a peer that vanished. The sessions stay open so addresses are not reused."""
        chosen = list(indexes)
        for i in chosen:
            self.sessions[i].apply_settings({"enable_dht": False})
            self.stopped.add(i)
        # apply_settings is asynchronous; until the network thread has run it, the node
        # still answers.
        deadline = time.monotonic() + timeout
        for i in chosen:
            while self.sessions[i].is_dht_running():
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"libtorrent node {i} did not stop its DHT")
                time.sleep(0.01)

    def close(self) -> None:
        """Shut every session down and release the harness socket. Idempotent."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        sessions, self.sessions = self.sessions, []
        self._pending = []
        # Dropping the last reference runs libtorrent's session shutdown, which blocks until
        # its threads have stopped; with only the DHT running this takes milliseconds.
        del sessions

    # -- alerts ----------------------------------------------------------------------------

    def _pump(self, i: int) -> None:
        # An alert object from the binding is only valid until the next pop_alerts() call that
        # returns something; reading a buffered one after that crashes the process. So every
        # alert is copied into plain Python data the moment it is popped.
        pending = self._pending[i]
        pending.extend(AlertRecord(a) for a in self.sessions[i].pop_alerts())
        if len(pending) > _ALERT_BUFFER:
            del pending[: len(pending) - _ALERT_BUFFER]

    def _take(
        self,
        i: int,
        kind: type,
        predicate: Callable[[Any], bool] | None = None,
    ) -> list[Any]:
        """Remove and return the buffered alerts of session ``i`` of type ``kind`` that match
        (as ``AlertRecord`` copies, typed Any so callers read them like the alert type)."""
        self._pump(i)
        matched: list[AlertRecord] = []
        kept: list[AlertRecord] = []
        for alert in self._pending[i]:
            if alert.is_a(kind) and (predicate is None or predicate(alert)):
                matched.append(alert)
            else:
                kept.append(alert)
        self._pending[i] = kept
        return matched

    def _wait_alert(self, i: int, deadline: float) -> bool:
        """Block until session ``i`` has a new alert or the deadline passes (False)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        # Short slices, so that a deadline is honoured even while other sessions are busy.
        self.sessions[i].wait_for_alert(max(1, int(min(remaining, 0.05) * 1000)))
        return True

    def alerts(self, i: int) -> list[AlertRecord]:
        """Every alert session ``i`` posted since the last call (escape hatch for tests)."""
        return self._take(i, lt.alert)

    # -- observations ----------------------------------------------------------------------

    def routing_table_sizes(
        self, indexes: Sequence[int] | None = None, timeout: float = 2.0
    ) -> list[int]:
        """Confirmed routing-table entries per node (libtorrent's ``dht.dht_nodes`` counter);
        -1 for a node whose statistics did not arrive in time."""
        chosen = list(range(len(self.sessions))) if indexes is None else list(indexes)
        for i in chosen:
            self.sessions[i].post_session_stats()
        deadline = time.monotonic() + timeout
        sizes: list[int] = []
        for i in chosen:
            value = -1
            while value < 0:
                stats = self._take(i, lt.session_stats_alert)
                if stats:
                    value = int(stats[-1].values["dht.dht_nodes"])
                elif not self._wait_alert(i, deadline):
                    break
            sizes.append(value)
        return sizes

    def node_id(self, i: int, timeout: float = 2.0) -> bytes:
        """Node ``i``'s current DHT id, as it reports it in a ping reply."""
        reply = self.direct_ping(self.addrs[i], timeout)
        node_id = reply[b"r"][b"id"]
        assert isinstance(node_id, bytes)
        return node_id

    def live_nodes(self, i: int, timeout: float = 2.0) -> list[tuple[bytes, Addr]]:
        """Node ``i``'s live routing-table entries as (id, (ip, port))."""
        own_id = self.node_id(i, timeout)
        self._take(i, lt.dht_live_nodes_alert)
        self.sessions[i].dht_live_nodes(lt.sha1_hash(own_id))
        deadline = time.monotonic() + timeout
        while True:
            found = self._take(i, lt.dht_live_nodes_alert)
            if found:
                # Each entry is {"nid": sha1_hash, "endpoint": (ip, port)}.
                return [
                    (bytes(entry["nid"].to_bytes()), (str(ip), int(port)))
                    for entry in found[-1].nodes
                    for ip, port in [entry["endpoint"]]
                ]
            if not self._wait_alert(i, deadline):
                raise TimeoutError(f"libtorrent node {i} did not report its live nodes")

    def add_node(self, i: int, addr: Addr) -> None:
        """Make node ``i`` query ``addr`` now and add it to its table if it answers."""
        self.sessions[i].add_dht_node(addr)

    # -- DHT operations --------------------------------------------------------------------

    def announce(
        self, i: int, info_hash: bytes, port: int, timeout: float = 5.0, settle: float = 0.3
    ) -> int:
        """Node ``i`` announces itself as a peer for ``info_hash`` on ``port``.

        Returns how many nodes of the network accepted the announce (saw an incoming
        announce_peer for it), waiting until none has arrived for ``settle`` seconds after the
        first, or until ``timeout``. Announces to nodes outside the harness are not counted.
        """
        target = lt.sha1_hash(info_hash)

        def is_ours(alert: lt.dht_announce_alert) -> bool:
            return alert.info_hash == target

        running = [j for j in range(len(self.sessions)) if j not in self.stopped]
        for j in running:
            self._take(j, lt.dht_announce_alert, is_ours)
        self.sessions[i].dht_announce(target, port, 0)
        deadline = time.monotonic() + timeout
        accepted = 0
        last_seen: float | None = None
        while time.monotonic() < deadline:
            fresh = sum(len(self._take(j, lt.dht_announce_alert, is_ours)) for j in running)
            now = time.monotonic()
            if fresh:
                accepted += fresh
                last_seen = now
            elif last_seen is not None and now - last_seen >= settle:
                break
            time.sleep(0.02)
        return accepted

    def get_peers(self, i: int, info_hash: bytes, timeout: float = 5.0) -> list[Addr]:
        """Node ``i`` looks up peers for ``info_hash``.

        libtorrent posts one ``dht_get_peers_reply_alert`` per reply that carries peers and
        nothing when a lookup ends empty, so this returns once the first such reply is in
        (plus any that arrived with it), or an empty list at ``timeout``.
        """
        target = lt.sha1_hash(info_hash)

        def is_ours(alert: lt.dht_get_peers_reply_alert) -> bool:
            return alert.info_hash == target

        self._take(i, lt.dht_get_peers_reply_alert, is_ours)
        self.sessions[i].dht_get_peers(target)
        deadline = time.monotonic() + timeout
        while True:
            replies = self._take(i, lt.dht_get_peers_reply_alert, is_ours)
            if replies:
                peers = {(str(ip), int(port)) for reply in replies for ip, port in reply.peers()}
                return sorted(peers)
            if not self._wait_alert(i, deadline):
                return []

    # -- BEP 44 items --------------------------------------------------------------------

    def _wait_put(self, i: int, target: bytes, timeout: float) -> int:
        """How many nodes stored the put of ``target`` (libtorrent's ``num_success``)."""
        deadline = time.monotonic() + timeout
        while True:
            done = self._take(
                i,
                lt.dht_put_alert,
                lambda a: bytes(a.target.to_bytes()) == target
                or mutable_target_of(a) == target,
            )
            if done:
                return int(done[-1].num_success)
            if not self._wait_alert(i, deadline):
                raise TimeoutError(f"libtorrent node {i}: no dht_put_alert for {target.hex()}")

    def put_immutable(self, i: int, value: Any, timeout: float = 10.0) -> tuple[bytes, int]:
        """Node ``i`` stores ``value`` (a bencodable Python value) as an immutable item.
        Returns (target, how many nodes stored it)."""
        target = bytes(self.sessions[i].dht_put_immutable_item(value).to_bytes())
        return target, self._wait_put(i, target, timeout)

    def put_mutable(
        self, i: int, seed: bytes, data: bytes, salt: bytes = b"", timeout: float = 10.0
    ) -> int:
        """Node ``i`` stores ``data`` (as a bencoded string) under the key of ``seed``; libtorrent
        takes the next seq itself. Returns how many nodes stored it."""
        public_key = _public_key(seed)
        self.sessions[i].dht_put_mutable_item(expanded_key(seed), public_key, data, salt)
        target = hashlib.sha1(public_key + salt).digest()
        return self._wait_put(i, target, timeout)

    def get_immutable(self, i: int, target: bytes, timeout: float = 10.0) -> Any:
        """The value node ``i`` finds under ``target`` (None at ``timeout``)."""
        self.sessions[i].dht_get_immutable_item(lt.sha1_hash(target))
        deadline = time.monotonic() + timeout
        while True:
            found = self._take(
                i, lt.dht_immutable_item_alert, lambda a: bytes(a.target.to_bytes()) == target
            )
            if found:
                return found[-1].item
            if not self._wait_alert(i, deadline):
                return None

    def get_mutable(
        self, i: int, public_key: bytes, salt: bytes = b"", timeout: float = 10.0
    ) -> tuple[Any, int, bytes] | None:
        """(value, seq, signature) of the newest mutable item node ``i`` finds under
        ``public_key`` and ``salt``, once its lookup is authoritative (None at ``timeout``)."""
        self.sessions[i].dht_get_mutable_item(public_key, salt)
        deadline = time.monotonic() + timeout
        best: tuple[Any, int, bytes] | None = None
        while True:
            for a in self._take(
                i, lt.dht_mutable_item_alert, lambda a: bytes(a.key) == public_key
                and bytes(a.salt) == salt
            ):
                if best is None or a.seq >= best[1]:
                    best = (a.item, int(a.seq), bytes(a.signature))
                if a.authoritative:
                    return best
            if not self._wait_alert(i, deadline):
                return best

    # -- raw KRPC from the harness's own socket --------------------------------------------

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.bind(("127.0.0.1", 0))
        return self._sock

    def direct_query(
        self,
        addr: Addr,
        method: str,
        args: Mapping[str, Any] | None = None,
        timeout: float = 2.0,
    ) -> dict[bytes, Any]:
        """Send one KRPC query to ``addr`` and return the decoded reply (bytes keys).

        ``args`` gets ``id`` filled in with the harness's own id unless given. Error replies
        (``y`` = ``e``) are returned as well; no reply within ``timeout`` raises TimeoutError.
        """
        sock = self._socket()
        tid = self._next_tid.to_bytes(2, "big")
        self._next_tid = (self._next_tid + 1) % 65536
        arguments: dict[str, Any] = {"id": self._own_id, **(args or {})}
        message = {"t": tid, "y": "q", "q": method, "a": arguments}
        sock.sendto(_CODEC.encode(message), addr)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data, source = sock.recvfrom(65536)
            except TimeoutError:
                break
            if source != addr:
                continue
            try:
                reply = _CODEC.decode(data)
            except Exception:  # an accessor that needs arguments: not copied
                continue
            if isinstance(reply, dict) and reply.get(b"t") == tid:
                return dict(reply)
        raise TimeoutError(f"no reply to {method} from {addr[0]}:{addr[1]} within {timeout}s")

    def direct_ping(self, addr: Addr, timeout: float = 2.0) -> dict[bytes, Any]:
        """Ping ``addr`` from the harness socket and return the decoded reply."""
        return self.direct_query(addr, "ping", timeout=timeout)


def _public_key(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def mutable_target_of(alert: Any) -> bytes | None:
    """The target a mutable ``dht_put_alert`` is about (None for an immutable one)."""
    key = bytes(alert.public_key)
    if not any(key):
        return None
    return hashlib.sha1(key + bytes(alert.salt)).digest()
