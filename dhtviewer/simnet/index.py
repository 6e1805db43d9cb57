"""NodeIndex: every simulated node in one sorted id index, and the routing tables derived from it.

A million nodes cannot each hold a routing table, but none has to: what a long-running node of a
given id knows is almost a function of the network itself. For every shared-prefix length
``i`` with its own id it keeps up to K contacts among the nodes that share exactly ``i`` bits
(the bucket-shaped table of BEP 5); where few nodes share that prefix (its neighbourhood) it
knows them all, and farther away its picks are a stable pseudo-random sample. Over ids sorted as
integers each such range is contiguous, so a bucket is two bisections and a few hashes, and a
``find_node`` answer is computed when the query arrives, deterministically (the same node
answers the same question the same way, as a real node with a settled table would).

Per node the index keeps 20 bytes of id, 26 of compact node record (id, address, port), a
Python int key for bisection, a flags byte and a client byte: about 110 bytes. The flags say
what a node does: answers, never answers (``DEAD``), is temporarily gone (``AWAY``, churn),
has not joined yet (``UNBORN``: churn brings it in later, with an id nobody knew), is
read-only (BEP 43: never in a table), answers with errors or malformed datagrams, is a Sybil of
a scenario, or is pinned (routers: never churned).

The flags are the only part that changes while the network runs (churn). ``share_flags`` moves
them into an anonymous shared memory map before the serving processes are forked, so that one
process can churn and every process sees the same network.

Vectorised with numpy where it matters (building ids and the address table for a million
nodes); bisection uses the stdlib over a list of ints, which is faster per call than numpy's
scalar ``searchsorted``.
"""

from __future__ import annotations

import mmap
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from dhtviewer.dht.node_id import ID_BITS
from dhtviewer.simnet.addresses import AddressPlan

__all__ = [
    "AWAY",
    "DEAD",
    "ERRORING",
    "MALFORMED",
    "PINNED",
    "READ_ONLY",
    "SILENT",
    "SYBIL",
    "UNBORN",
    "UNLISTED",
    "ExtraNode",
    "NodeIndex",
    "bep42_prefixes",
    "mix64",
]

DEAD = 1
AWAY = 2
READ_ONLY = 4
ERRORING = 8
MALFORMED = 16
UNBORN = 32
SYBIL = 64
PINNED = 128
SILENT = DEAD | AWAY | READ_ONLY | UNBORN
"""A node with any of these flags does not answer."""
UNLISTED = READ_ONLY | UNBORN
"""A node with any of these flags is in nobody's routing table: read-only nodes never are, a
node that has not joined yet is unknown. (A node that left, ``AWAY`` or ``DEAD``, still is:
those are the stale contacts.)"""

K = 8
FULL_BUCKET = 2 * K
"""A bucket whose range holds at most this many nodes is known whole: a node hears from its
neighbours all the time, and a real table splits its own bucket down to them."""
NODE_LEN = 26
_MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64 finaliser: the stable pseudo-random choices of the derived tables."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


_PICKS_MASK = (1 << 16) - 1
_PICKS: list[int] = [mix64(i + 0x5DEECE66D) for i in range(_PICKS_MASK + 1)]
"""A fixed table of random 64-bit numbers that derived buckets pick their contacts with."""


# --- BEP 42, vectorised ---------------------------------------------------------------------------
def _crc32c_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table[i] = crc
    return table


_CRC_TABLE = _crc32c_table()


def bep42_prefixes(ips: np.ndarray, rand: np.ndarray) -> np.ndarray:
    """CRC-32C of BEP 42's masked IPv4 address for every ``ips[i]`` and ``rand[i]`` (uint32
    arrays), as ``node_id._bep42_crc`` computes for one, without the exemption of local
    addresses: the simulated network pretends its loopback addresses are public."""
    masked = (ips.astype(np.uint32) & np.uint32(0x030F3FFF)) | (
        (rand.astype(np.uint32) & np.uint32(7)) << np.uint32(29)
    )
    crc = np.full(ips.shape, 0xFFFFFFFF, dtype=np.uint32)
    for shift in (24, 16, 8, 0):  # the address's bytes in network order
        byte = (masked >> np.uint32(shift)) & np.uint32(0xFF)
        crc = _CRC_TABLE[(crc ^ byte) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class ExtraNode:
    """A node placed by a scenario rather than drawn at random: a given id and address."""

    node_id: bytes
    ip: int
    flags: int
    client: int = 0


class NodeIndex:
    """The simulated nodes, sorted by id. Positions (0 .. n-1) name nodes everywhere else."""

    def __init__(
        self,
        ids: np.ndarray,
        ips: np.ndarray,
        ports: np.ndarray,
        flags: np.ndarray,
        clients: np.ndarray,
        plan: AddressPlan,
    ) -> None:
        """``ids``: (n, 20) uint8, any order; the other arrays are per node in the same order.
        Everything is sorted here."""
        n = len(ids)
        if n == 0:
            raise ValueError("a network needs at least one node")
        # Lexicographic order of 20-byte ids = numeric order of the 160-bit integers.
        order = np.argsort(ids.view("S20").ravel(), kind="stable")
        ids = ids[order]
        self.n = n
        self.plan = plan
        self.ips = ips[order].astype(np.uint32)
        self.ports = ports[order].astype(np.uint16)
        self.flags: bytearray | mmap.mmap = bytearray(flags[order].astype(np.uint8).tobytes())
        """One byte of flags per node; ``share_flags`` makes it shared memory."""
        self.clients = bytes(clients[order].astype(np.uint8).tobytes())
        records = np.empty((n, NODE_LEN), dtype=np.uint8)
        records[:, :20] = ids
        records[:, 20:24] = self.ips.astype(">u4").view(np.uint8).reshape(n, 4)
        records[:, 24:26] = self.ports.astype(">u2").view(np.uint8).reshape(n, 2)
        self.records = records.tobytes()
        """Compact node records (BEP 5: id, IPv4, port), 26 bytes per node, in id order."""
        raw = ids.tobytes()
        self.keys64 = np.frombuffer(np.ascontiguousarray(ids[:, :8]).tobytes(),
                                    dtype=">u8").astype(np.uint64)
        """The first 64 bits of every id, for vectorised searches (``closest_many``)."""
        self.keys: list[int] = [
            int.from_bytes(raw[i : i + 20], "big") for i in range(0, n * 20, 20)
        ]
        if any(a == b for a, b in zip(self.keys, self.keys[1:], strict=False)):
            raise ValueError("two simulated nodes drew the same id")
        table = np.full(plan.size, -1, dtype=np.int32)
        offsets = self.ips.astype(np.int64) - plan.first
        if len(np.unique(offsets)) != n:
            raise ValueError("two simulated nodes share an address")
        table[offsets] = np.arange(n, dtype=np.int32)
        self._table = table
        # A memoryview hands out Python ints on indexing, faster than numpy scalars.
        self._by_address = memoryview(table.data)
        self._ip_list: list[int] = self.ips.tolist()
        # A handful of distinct ports: one int object each instead of one per node (a million
        # ints would also be copied page by page into every forked serving process).
        canonical = {int(p): int(p) for p in np.unique(self.ports)}
        self._port_list: list[int] = [canonical[p] for p in self.ports.tolist()]

    def share_flags(self) -> None:
        """Move the flags into an anonymous ``MAP_SHARED`` memory map: processes forked after
        this call read and write one copy (a byte store is atomic; churn is the only writer)."""
        if isinstance(self.flags, mmap.mmap):
            return
        shared = mmap.mmap(-1, max(1, self.n), flags=mmap.MAP_SHARED)
        shared[: self.n] = bytes(self.flags)
        self.flags = shared

    # --- per node --------------------------------------------------------------------------------
    def node_id(self, pos: int) -> bytes:
        return self.records[pos * NODE_LEN : pos * NODE_LEN + 20]

    def record(self, pos: int) -> bytes:
        return self.records[pos * NODE_LEN : (pos + 1) * NODE_LEN]

    def ip(self, pos: int) -> int:
        return self._ip_list[pos]

    def port(self, pos: int) -> int:
        return self._port_list[pos]

    def bep42_ok(self, pos: int) -> bool:
        """Whether node ``pos``'s id follows BEP 42 for its address (as if it were public)."""
        node_id = self.node_id(pos)
        crc = int(bep42_prefixes(np.array([self.ip(pos)], dtype=np.uint32),
                                 np.array([node_id[19]], dtype=np.uint32))[0])
        return (node_id[:2] == (crc >> 16).to_bytes(2, "big")
                and node_id[2] & 0xF8 == (crc >> 8) & 0xF8)

    def at_address(self, ip: int, port: int) -> int:
        """Position of the node at ``ip``:``port``, or -1."""
        off = ip - self.plan.first
        if not 0 <= off < self.plan.size:
            return -1
        pos: int = self._by_address[off]
        if pos < 0 or self._port_list[pos] != port:
            return -1
        return pos

    def at_ip(self, ip: int) -> int:
        """Position of the node at ``ip`` (any port), or -1."""
        off = ip - self.plan.first
        if not 0 <= off < self.plan.size:
            return -1
        pos: int = self._by_address[off]
        return pos

    def position_of(self, node_id: bytes) -> int:
        """Position of the node with this id, or -1."""
        key = int.from_bytes(node_id, "big")
        i = bisect_left(self.keys, key)
        return i if i < self.n and self.keys[i] == key else -1

    # --- derived routing tables -------------------------------------------------------------------
    def id_range(self, lo_key: int, width: int, a: int = 0, b: int = -1) -> tuple[int, int]:
        """Positions ``[start, end)`` of the ids in ``[lo_key, lo_key + width)``, searched
        within positions ``a`` .. ``b`` (-1: the end)."""
        keys = self.keys
        hi = self.n if b < 0 else b
        start = bisect_left(keys, lo_key, a, hi)
        return start, bisect_left(keys, lo_key + width, start, hi)

    def _bucket(self, pos: int, level: int, a: int, b: int, out: list[int]) -> None:
        """Append node ``pos``'s contacts at ``level`` (positions ``a``..``b`` share exactly
        ``level`` bits with it): all of them for a small range, else K stable picks."""
        flags = self.flags
        m = b - a
        if m <= FULL_BUCKET:
            out.extend(j for j in range(a, b) if not flags[j] & UNLISTED)
            return
        seed = mix64((pos << 8) | level)
        taken: set[int] = set()
        # The picks: a run of the fixed random table from a place the seed chooses, each
        # mixed with the seed (one hash per bucket instead of one per pick: this loop is most
        # of the cost of a find_node answer).
        table = _PICKS
        at = seed >> 48
        tries = 0
        while len(taken) < K and tries < 4 * K:
            j = a + (table[(at + tries) & _PICKS_MASK] ^ seed) % m
            tries += 1
            if j not in taken and not flags[j] & UNLISTED:
                taken.add(j)
        out.extend(taken)

    def known_closest(self, pos: int, target: int, k: int = K) -> list[int]:
        """The ``k`` contacts of node ``pos``'s derived table closest to ``target`` (an int),
        closest first: what it answers to ``find_node`` and ``get_peers``."""
        keys = self.keys
        x = keys[pos]
        d = x ^ target
        p = ID_BITS - d.bit_length()  # bits x shares with the target
        out: list[int] = []
        if p == ID_BITS:  # asked for its own id: its neighbourhood, then the rest
            self._deeper(pos, x, 0, out)
        else:
            # The target's side of level p: every id there is closer than any other bucket's.
            shift = ID_BITS - 1 - p
            width = 1 << shift
            lo = ((target >> shift) << shift)
            a, b = self.id_range(lo, width)
            self._bucket(pos, p, a, b, out)
        if len(out) < k:
            self._deeper(pos, x, p + 1, out)
        level = p - 1
        while len(out) < k and level >= 0:
            shift = ID_BITS - 1 - level
            width = 1 << shift
            lo = ((x >> shift) ^ 1) << shift
            a, b = self.id_range(lo, width)
            self._bucket(pos, level, a, b, out)
            level -= 1
        out.sort(key=lambda j: keys[j] ^ target)
        return out[:k]

    def _deeper(self, pos: int, x: int, level: int, out: list[int]) -> None:
        """Append node ``pos``'s contacts at every level >= ``level`` (its neighbourhood)."""
        if level > ID_BITS - 1:
            return
        # The block of ids sharing `level` bits with x; it contains x.
        shift = ID_BITS - level
        a, b = self.id_range((x >> shift) << shift, 1 << shift)
        while b - a > 1 and level < ID_BITS:
            shift = ID_BITS - 1 - level
            half = (((x >> (shift + 1)) << 1) | 1) << shift  # first id whose bit `level` is 1
            mid = bisect_left(self.keys, half, a, b)
            if (x >> shift) & 1:
                self._bucket(pos, level, a, mid, out)
                a = mid
            else:
                self._bucket(pos, level, mid, b, out)
                b = mid
            level += 1

    def table(self, pos: int) -> list[tuple[int, list[int]]]:
        """Node ``pos``'s whole derived table: (level, positions) for every non-empty bucket,
        farthest first (for the control API and tests; replies use ``known_closest``)."""
        x = self.keys[pos]
        out: list[tuple[int, list[int]]] = []
        for level in range(ID_BITS):
            shift = ID_BITS - 1 - level
            a, b = self.id_range(((x >> shift) ^ 1) << shift, 1 << shift)
            bucket: list[int] = []
            self._bucket(pos, level, a, b, bucket)
            if bucket:
                out.append((level, sorted(bucket)))
            own_a, own_b = self.id_range((x >> shift) << shift, 1 << shift)
            if own_b - own_a <= 1:
                break
        return out

    # --- ground truth -----------------------------------------------------------------------------
    def true_closest(self, target: int, k: int, exclude: int = SILENT) -> list[int]:
        """The ``k`` nodes closest to ``target`` among those without any of the ``exclude``
        flags (by default: the ones that answer), closest first."""
        keys = self.keys
        flags = self.flags
        # Widen the target's prefix block until it holds k eligible nodes: every id outside
        # the block shares fewer bits with the target than every id inside. Start where a
        # block holds about k nodes of a uniform index (deeper blocks would be empty).
        start = max(0, min(ID_BITS, (max(1, self.n // max(1, k))).bit_length()))
        for level in range(start, -1, -1):
            shift = ID_BITS - level
            a, b = self.id_range((target >> shift) << shift, 1 << shift)
            eligible = [j for j in range(a, b) if not flags[j] & exclude]
            if len(eligible) >= k or (a == 0 and b == self.n):
                eligible.sort(key=lambda j: keys[j] ^ target)
                return eligible[:k]
        return []  # unreachable: level 0 is the whole index

    def closest_many(self, targets: np.ndarray, k: int, exclude: int = SILENT,
                     chunk: int = 1 << 16) -> np.ndarray:
        """``true_closest`` for many targets at once: ``targets`` (m, 20) uint8, the result
        (m, k) positions, closest first. Needs at least ``k`` eligible nodes.

        Vectorised over the first 64 bits of the ids: for each target, a bisection over the
        depth finds the deepest prefix block that holds ``k`` eligible nodes (every id outside
        it is farther than every id inside), and the ``k`` smallest distances are taken within
        it. Exact unless two eligible nodes share their first 64 bits (for random ids, a chance
        of about n² / 2^65)."""
        n = self.n
        flags = np.frombuffer(self.flags, dtype=np.uint8)[:n]
        eligible = (flags & np.uint8(exclude)) == 0
        if int(np.count_nonzero(eligible)) < k:
            raise ValueError(f"fewer than {k} eligible nodes")
        cum = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(eligible, out=cum[1:])
        keys = self.keys64
        out = np.empty((len(targets), k), dtype=np.int32)
        ones = ~np.uint64(0)
        # In target order, the searches and the gathers below walk the index nearly in order
        # (several times faster than in random order).
        all_t = np.frombuffer(np.ascontiguousarray(targets[:, :8]).tobytes(),
                              dtype=">u8").astype(np.uint64)
        order = np.argsort(all_t)
        for at in range(0, len(targets), chunk):
            rows = order[at : at + chunk]
            t = all_t[rows]

            def block(depth: np.ndarray, t: np.ndarray = t) -> tuple[np.ndarray, np.ndarray]:
                # Shifting a uint64 by 64 is undefined: depth 0 (the whole space) is masked.
                shift = (64 - depth).astype(np.uint64)
                with np.errstate(over="ignore"):
                    mask = np.where(depth == 0, np.uint64(0), ones << np.minimum(shift, 63))
                lo = t & mask
                return (np.searchsorted(keys, lo, "left"),
                        np.searchsorted(keys, lo | ~mask, "right"))

            good = np.zeros(len(t), dtype=np.int64)  # depth 0 always holds k
            bad = np.full(len(t), 65, dtype=np.int64)
            while np.any(bad - good > 1):
                mid = (good + bad) // 2
                a, b = block(mid)
                ok = cum[b] - cum[a] >= k
                good = np.where(ok, mid, good)
                bad = np.where(ok, bad, mid)
            a, b = block(good)
            # The k smallest distances within each block, vectorised over blocks of similar
            # size (BEP 42 ids leave some regions sparse, where the blocks are wider).
            size = b - a
            width = 2 * FULL_BUCKET
            todo = np.ones(len(t), dtype=bool)
            while todo.any():
                sel = np.flatnonzero(todo & (size <= width)) if width < n else np.flatnonzero(todo)
                todo[sel] = False
                if not len(sel):
                    width *= 4
                    continue
                w = min(width, n)
                idx = a[sel, None] + np.arange(w)[None, :]
                inside = idx < b[sel, None]
                idx = np.minimum(idx, n - 1)
                dist = keys[idx] ^ t[sel, None]
                dist[~(inside & eligible[idx])] = ones
                part = np.argpartition(dist, k - 1, axis=1)[:, :k]
                pd = np.take_along_axis(dist, part, axis=1)
                best = np.take_along_axis(
                    idx, np.take_along_axis(part, np.argsort(pd, axis=1), axis=1), axis=1)
                out[rows[sel]] = best
                width *= 4
        return out

    def count(self, include: int = 0, exclude: int = SILENT) -> int:
        """Nodes having all ``include`` flags and none of ``exclude``."""
        arr = np.frombuffer(self.flags, dtype=np.uint8)
        sel = (arr & np.uint8(exclude)) == 0
        if include:
            sel &= (arr & np.uint8(include)) == include
        return int(np.count_nonzero(sel))

    def positions_with(self, include: int, exclude: int = 0) -> np.ndarray:
        arr = np.frombuffer(self.flags, dtype=np.uint8)
        sel = (arr & np.uint8(include)) == include
        if exclude:
            sel &= (arr & np.uint8(exclude)) == 0
        return np.flatnonzero(sel)


@cache
def loopback_bep42_prefixes() -> np.ndarray:
    """Which 21-bit id prefixes BEP 42 allows for *some* 127/8 address (bool, 2^21 entries).

    Exactly half of them: BEP 42 hashes 21 variable bits of an IPv4 address with 3 random bits,
    and every 127/8 address has the same fixed bits (the first byte), so CRC-32C, being linear,
    maps them onto a subspace of dimension 20 of the 21-bit prefixes. On the Internet the first
    byte varies too and every prefix is reachable."""
    b2 = np.arange(16, dtype=np.uint32)
    b3 = np.arange(64, dtype=np.uint32)
    b4 = np.arange(256, dtype=np.uint32)
    ips = ((np.uint32(127) << np.uint32(24)) | (b2[:, None, None] << np.uint32(16))
           | (b3[None, :, None] << np.uint32(8)) | b4[None, None, :]).ravel()
    rand = np.tile(np.arange(8, dtype=np.uint32), len(ips))
    crc = bep42_prefixes(np.repeat(ips, 8), rand)
    out = np.zeros(1 << 21, dtype=bool)
    out[crc >> np.uint32(11)] = True
    return out


def random_ids(
    ips: np.ndarray, bep42_fail: float, rng: np.random.Generator
) -> np.ndarray:
    """(n, 20) uint8 ids for nodes at ``ips``: BEP 42-valid for the address (as if it were
    public) except a ``bep42_fail`` share.

    Valid ids of loopback addresses can only start with half of the possible 21-bit prefixes
    (``loopback_bep42_prefixes``). So that ids are spread evenly over the id space, as on the
    Internet (a lookup, a bucket and a size estimate all depend on it), the failing ids go to
    the other half first: with ``bep42_fail`` = 0.5 (the profiles' value) the density is
    uniform; with less, the half where valid ids can live is denser."""
    n = len(ips)
    ids = rng.integers(0, 256, size=(n, 20), dtype=np.uint8)
    valid = rng.random(n) >= bep42_fail
    rand = ids[:, 19].astype(np.uint32)
    crc = bep42_prefixes(ips, rand)
    sel = np.flatnonzero(valid)
    ids[sel, 0] = (crc[sel] >> np.uint32(24)).astype(np.uint8)
    ids[sel, 1] = ((crc[sel] >> np.uint32(16)) & np.uint32(0xFF)).astype(np.uint8)
    ids[sel, 2] = (((crc[sel] >> np.uint32(8)) & np.uint32(0xF8)) | (rand[sel] & np.uint32(7))
                   ).astype(np.uint8)
    failing = np.flatnonzero(~valid)
    moved = failing[: min(len(failing), len(sel))]
    if len(moved):
        free = np.flatnonzero(~loopback_bep42_prefixes())
        prefix = free[rng.integers(0, len(free), size=len(moved))]
        ids[moved, 0] = (prefix >> 13).astype(np.uint8)
        ids[moved, 1] = ((prefix >> 5) & 0xFF).astype(np.uint8)
        ids[moved, 2] = (((prefix & 0x1F) << 3) | (ids[moved, 2] & 7)).astype(np.uint8)
    return ids


def assign_clients(n: int, shares: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """A client index per node, drawn with the given shares (normalised)."""
    p = np.array(shares, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.uint8)


def flag_shares(
    n: int, shares: Iterable[tuple[int, float]], rng: np.random.Generator
) -> np.ndarray:
    """Flags per node: each (flag, share) pair marks a disjoint random share of the nodes."""
    flags = np.zeros(n, dtype=np.uint8)
    order = rng.permutation(n)
    at = 0
    for flag, share in shares:
        count = round(share * n)
        flags[order[at : at + count]] |= np.uint8(flag)
        at += count
    return flags
