"""PeerStore: caps, exact expiry, refresh, family filter, fair sampling, BEP 51, flood cost."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtviewer.dht.messages import Addr
from dhtviewer.dht.peer_store import PeerStore

TTL = 1800.0


def ih(n: int) -> bytes:
    return n.to_bytes(20, "big")


def v4(n: int, port: int = 6881) -> Addr:
    return (f"198.51.{n // 250}.{n % 250 + 1}", port)


def v6(n: int, port: int = 6881) -> Addr:
    return (f"2001:db8::{n + 1:x}", port)


def make(max_ih: int = 100, max_peers: int = 50, ttl: float = TTL) -> PeerStore:
    return PeerStore(max_info_hashes=max_ih, max_peers_per_info_hash=max_peers, ttl=ttl)


def get_all(store: PeerStore, info_hash: bytes, now: float, family: int | None = None) -> set[Addr]:
    return set(store.get(info_hash, now, random.Random(0), 10**6, family=family))


# --- basic storage and expiry ---------------------------------------------------------------
def test_add_then_get() -> None:
    s = make()
    assert s.add(ih(1), v4(1), 0.0)
    assert s.add(ih(1), v4(2), 0.0, seed=True)
    assert get_all(s, ih(1), 1.0) == {v4(1), v4(2)}
    assert get_all(s, ih(2), 1.0) == set()
    assert ih(1) in s and ih(2) not in s
    assert s.info_hash_count() == len(s) == 1
    assert s.peer_count() == 2
    assert s.counters.peers_stored == 2
    assert s.seed_count(ih(1), 1.0) == 1


def test_expiry_exactly_at_ttl() -> None:
    s = make(ttl=100.0)
    s.add(ih(1), v4(1), 10.0)
    assert s.next_expiry() == 110.0
    assert get_all(s, ih(1), 109.999) == {v4(1)}
    assert get_all(s, ih(1), 110.0) == set()  # announce time + ttl: already gone
    assert ih(1) not in s  # the emptied info_hash goes too
    assert s.peer_count() == 0
    assert s.next_expiry() is None
    assert s.counters.peers_expired == 1


def test_expire_returns_count_and_drops_empty_info_hashes() -> None:
    s = make(ttl=100.0)
    s.add(ih(1), v4(1), 0.0)
    s.add(ih(2), v4(3), 10.0)
    s.add(ih(1), v4(2), 50.0)
    assert s.expire(99.0) == 0
    assert s.expire(110.0) == 2
    assert ih(2) not in s and ih(1) in s
    assert s.next_expiry() == 150.0
    assert s.expire(150.0) == 1
    assert s.info_hash_count() == 0 and s.peer_count() == 0


def test_refresh_extends_expiry() -> None:
    s = make(ttl=100.0)
    s.add(ih(1), v4(1), 0.0)
    s.add(ih(1), v4(2), 10.0)
    assert s.add(ih(1), v4(1), 50.0)  # re-announce
    assert s.counters.peers_refreshed == 1 and s.peer_count() == 2
    assert s.next_expiry() == 110.0  # v4(2) is now the first to go
    assert get_all(s, ih(1), 120.0) == {v4(1)}
    assert get_all(s, ih(1), 149.9) == {v4(1)}
    assert get_all(s, ih(1), 150.0) == set()


def test_refresh_updates_seed_flag() -> None:
    s = make()
    s.add(ih(1), v4(1), 0.0, seed=False)
    assert s.seed_count(ih(1), 0.0) == 0
    s.add(ih(1), v4(1), 1.0, seed=True)
    assert s.seed_count(ih(1), 1.0) == 1


def test_same_ip_other_port_is_another_peer() -> None:
    s = make()
    s.add(ih(1), v4(1, 6881), 0.0)
    s.add(ih(1), v4(1, 6882), 0.0)
    assert get_all(s, ih(1), 0.0) == {v4(1, 6881), v4(1, 6882)}


def test_expired_peers_are_never_returned_even_without_expire_call() -> None:
    s = make(ttl=100.0)
    for i in range(10):
        s.add(ih(1), v4(i), float(i * 10))
    # no explicit expire(): get must still hide everything expired at its `now`
    assert get_all(s, ih(1), 155.0) == {v4(i) for i in range(6, 10)}


def test_backwards_clock_keeps_expiry_order() -> None:
    s = make(ttl=100.0)
    s.add(ih(1), v4(1), 50.0)
    s.add(ih(1), v4(2), 40.0)  # clock went back: dated at 50 like the previous announce
    assert s.next_expiry() == 150.0
    assert s.expire(150.0) == 2


# --- caps -----------------------------------------------------------------------------------
def test_full_info_hash_replaces_its_oldest_peer() -> None:
    s = make(max_peers=3)
    for i in range(3):
        s.add(ih(1), v4(i), float(i))
    s.add(ih(1), v4(0), 5.0)  # refresh: v4(1) is now the oldest
    assert s.add(ih(1), v4(9), 6.0)
    assert get_all(s, ih(1), 6.0) == {v4(0), v4(2), v4(9)}
    assert s.counters.peers_evicted == 1
    assert s.peer_count() == 3


def test_full_info_hash_oldest_across_families() -> None:
    s = make(max_peers=3)
    s.add(ih(1), v4(0), 1.0)
    s.add(ih(1), v6(0), 2.0)
    s.add(ih(1), v4(1), 3.0)
    s.add(ih(1), v6(1), 4.0)  # evicts v4(0), the oldest
    assert get_all(s, ih(1), 4.0) == {v6(0), v4(1), v6(1)}
    s.add(ih(1), v4(2), 5.0)  # evicts v6(0)
    assert get_all(s, ih(1), 5.0) == {v4(1), v6(1), v4(2)}


def test_info_hash_cap_evicts_least_recently_announced() -> None:
    s = make(max_ih=3)
    for i in range(3):
        s.add(ih(i), v4(i), float(i))
    s.add(ih(0), v4(5), 10.0)  # ih(0) announced again: ih(1) is now the stalest
    assert s.add(ih(9), v4(9), 11.0)
    assert ih(1) not in s
    assert all(h in s for h in (ih(0), ih(2), ih(9)))
    assert s.info_hash_count() == 3
    assert s.peer_count() == 4
    assert s.counters.swarms_evicted == 1
    assert get_all(s, ih(1), 11.0) == set()


def test_evicting_an_info_hash_drops_its_peers_from_expiry_order() -> None:
    s = make(max_ih=1, ttl=100.0)
    for i in range(5):
        s.add(ih(1), v4(i), 0.0)
    s.add(ih(2), v4(9), 1.0)
    assert s.peer_count() == 1
    assert s.next_expiry() == 101.0
    assert s.counters.peers_evicted == 5


def test_zero_caps_store_nothing() -> None:
    assert not make(max_ih=0).add(ih(1), v4(1), 0.0)
    assert not make(max_peers=0).add(ih(1), v4(1), 0.0)


def test_invalid_arguments_rejected() -> None:
    with pytest.raises(ValueError):
        make(max_ih=-1)
    with pytest.raises(ValueError):
        make(ttl=0.0)
    with pytest.raises(ValueError):
        make().get(ih(1), 0.0, random.Random(0), 5, family=5)


# --- reading --------------------------------------------------------------------------------
def test_family_filter() -> None:
    s = make()
    for i in range(3):
        s.add(ih(1), v4(i), 0.0)
        s.add(ih(1), v6(i), 0.0)
    assert get_all(s, ih(1), 0.0, family=4) == {v4(i) for i in range(3)}
    assert get_all(s, ih(1), 0.0, family=6) == {v6(i) for i in range(3)}
    assert len(get_all(s, ih(1), 0.0)) == 6
    only4 = make()
    only4.add(ih(1), v4(1), 0.0)
    assert only4.get(ih(1), 0.0, random.Random(0), 10, family=6) == []


def test_get_respects_max_count_without_duplicates() -> None:
    s = make(max_peers=200)
    for i in range(200):
        s.add(ih(1), v4(i), 0.0)
    got = s.get(ih(1), 0.0, random.Random(3), 50)
    assert len(got) == len(set(got)) == 50
    assert s.get(ih(1), 0.0, random.Random(3), 0) == []


def test_random_sampling_covers_every_peer() -> None:
    s = make(max_peers=500)
    for i in range(500):
        s.add(ih(1), v4(i), 0.0)
    rng = random.Random(11)
    counts: dict[Addr, int] = {}
    for _ in range(400):  # 400 replies of 50 = 40 expected sightings per peer
        for p in s.get(ih(1), 1.0, rng, 50, family=4):
            counts[p] = counts.get(p, 0) + 1
    assert len(counts) == 500
    assert min(counts.values()) >= 15  # no peer is starved (the mean is 40)


def test_the_total_cap_replaces_the_least_recently_announced_peer_of_any_swarm() -> None:
    s = PeerStore(max_info_hashes=10, max_peers_per_info_hash=10, ttl=1000.0, max_peers=5)
    s.add(ih(1), v4(1), 0.0)
    s.add(ih(2), v4(2), 1.0)
    s.add(ih(1), v4(3), 2.0)
    s.add(ih(3), v4(4), 3.0)
    s.add(ih(1), v4(5), 4.0)
    assert s.add(ih(2), v4(2), 5.0)  # a re-announce takes no room: nothing is evicted
    assert s.peer_count() == 5 and s.counters.peers_evicted == 0
    s.add(ih(4), v4(6), 6.0)  # full: v4(1), the oldest announce, makes room
    assert get_all(s, ih(1), 9.5) == {v4(3), v4(5)}
    s.add(ih(4), v4(7), 7.0)  # next oldest: v4(3) (v4(2) was refreshed at 5.0)
    assert get_all(s, ih(1), 9.5) == {v4(5)}
    s.add(ih(5), v4(8), 8.0)  # then v4(4): the swarm of ih(3) is left empty and goes
    assert ih(3) not in s and s.info_hash_count() == 4
    assert s.peer_count() == 5 and s.counters.peers_evicted == 3
    s.add(ih(1), v4(9), 9.0)  # v4(5) is ih(1)'s only peer, and ih(1) keeps existing
    assert get_all(s, ih(1), 9.5) == {v4(9)}


def test_a_total_cap_of_zero_disables_storage() -> None:
    s = PeerStore(max_info_hashes=10, max_peers_per_info_hash=10, ttl=1000.0, max_peers=0)
    assert not s.add(ih(1), v4(1), 0.0)
    assert s.peer_count() == 0


def test_a_window_at_the_end_wraps_around_to_the_oldest_peers() -> None:
    class Fixed(random.Random):
        def randrange(self, *args: object, **kw: object) -> int:  # type: ignore[override]
            return 195

    s = make(max_peers=200)
    for i in range(200):
        s.add(ih(1), v4(i), float(i))
    got = s.get(ih(1), 200.0, Fixed(), 10)
    assert got == [v4(i) for i in (195, 196, 197, 198, 199, 0, 1, 2, 3, 4)]


def test_a_small_swarm_is_returned_whole_in_every_rotation() -> None:
    s = make()
    for i in range(45):
        s.add(ih(1), v4(i), 0.0)
    rng = random.Random(1)
    firsts: set[Addr] = set()
    survivors: set[Addr] = set()
    for _ in range(300):
        got = s.get(ih(1), 0.0, rng, 50)
        assert sorted(got) == sorted(v4(i) for i in range(45))
        firsts.add(got[0])
        survivors.update(got[:37])  # what a reply cut from the end to fit would keep
    # Whatever a too-large reply drops, it is not always the same peers.
    assert len(firsts) > 30 and survivors == {v4(i) for i in range(45)}


def test_sample_info_hashes_size_and_distinctness() -> None:
    s = make(max_ih=100)
    rng = random.Random(5)
    assert s.sample_info_hashes(rng, 10) == []
    for i in range(30):
        s.add(ih(i), v4(i), 0.0)
    sample = s.sample_info_hashes(rng, 20)
    assert len(sample) == len(set(sample)) == 20
    assert all(h in s for h in sample)
    assert sorted(s.sample_info_hashes(rng, 100)) == sorted(ih(i) for i in range(30))
    assert s.sample_info_hashes(rng, 0) == []
    seen: set[bytes] = set()
    for _ in range(50):
        seen.update(s.sample_info_hashes(rng, 5))
    assert len(seen) == 30


def test_snapshot_counts_live_peers() -> None:
    s = make(ttl=100.0)
    s.add(ih(1), v4(1), 0.0)
    s.add(ih(2), v4(3), 0.0)
    s.add(ih(1), v4(2), 60.0)
    assert s.snapshot(50.0) == {ih(1): 2, ih(2): 1}
    assert s.snapshot(100.0) == {ih(1): 1}


# --- floods ---------------------------------------------------------------------------------
def _flood(store: PeerStore, n: int, rng: random.Random) -> float:
    started = time.perf_counter()
    for i in range(n):
        store.add(rng.randbytes(20), v4(i % 50000), i * 0.001)
    return time.perf_counter() - started


def test_flood_of_random_info_hashes_stays_at_cap_and_fast() -> None:
    s = make(max_ih=3000, max_peers=500)
    elapsed = _flood(s, 100_000, random.Random(1))
    assert s.info_hash_count() == 3000
    assert s.peer_count() == 3000
    assert s.counters.swarms_evicted == 97_000
    assert elapsed < 10.0  # typically well under a second


def test_add_cost_does_not_grow_with_the_cap() -> None:
    """Eviction must not scan the table: adds at cap 1k and at cap 20k cost about the same
    (an O(n) scan per add would make the second ~20 times slower)."""
    small, large = make(max_ih=1000), make(max_ih=20_000)
    _flood(small, 20_000, random.Random(2))  # fill both to their cap first
    _flood(large, 20_000, random.Random(3))
    t_small = min(_flood(small, 2000, random.Random(4 + i)) for i in range(3))
    t_large = min(_flood(large, 2000, random.Random(8 + i)) for i in range(3))
    assert large.info_hash_count() == 20_000
    assert t_large < 4 * t_small + 0.02


def test_flood_of_peers_in_one_info_hash_stays_at_cap() -> None:
    s = make(max_peers=500, ttl=100.0)
    for i in range(20_000):
        s.add(ih(1), (f"203.0.{i // 250 % 256}.{i % 250 + 1}", 1024 + i % 60000), i * 0.001)
    assert s.peer_count() == 500
    assert len(s.get(ih(1), 20.0, random.Random(0), 1000)) == 500


# --- properties -----------------------------------------------------------------------------
class _Model:
    """The obvious O(n) implementation of the same rules, to compare against."""

    def __init__(self, max_ih: int, max_peers: int, ttl: float) -> None:
        self.max_ih, self.max_peers, self.ttl = max_ih, max_peers, ttl
        self.peers: dict[bytes, dict[Addr, float]] = {}  # info_hash -> peer -> expiry
        self.last: dict[bytes, float] = {}  # info_hash -> latest announce time

    def expire(self, now: float) -> None:
        for h in list(self.peers):
            self.peers[h] = {p: e for p, e in self.peers[h].items() if e > now}
            if not self.peers[h]:
                del self.peers[h], self.last[h]

    def add(self, h: bytes, p: Addr, now: float) -> None:
        self.expire(now)
        if h not in self.peers:
            if len(self.peers) >= self.max_ih:
                victim = min(self.last, key=self.last.__getitem__)
                del self.peers[victim], self.last[victim]
            self.peers[h] = {}
        self.last[h] = now
        swarm = self.peers[h]
        if p not in swarm and len(swarm) >= self.max_peers:
            del swarm[min(swarm, key=swarm.__getitem__)]
        swarm[p] = now + self.ttl


_op = st.one_of(
    st.tuples(
        st.just("add"),
        st.integers(0, 6),  # info_hash
        st.integers(0, 5),  # peer (v4 or v6 by parity)
        st.floats(0.001, 40.0),  # time step
    ),
    st.tuples(st.just("get"), st.integers(0, 6), st.integers(0, 2), st.floats(0.001, 40.0)),
    st.tuples(st.just("expire"), st.just(0), st.just(0), st.floats(0.001, 40.0)),
)


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(_op, max_size=80),
    max_ih=st.integers(1, 4),
    max_peers=st.integers(1, 4),
)
def test_property_matches_model_never_over_caps_never_expired(
    ops: list[tuple[str, int, int, float]], max_ih: int, max_peers: int
) -> None:
    ttl = 100.0
    s = make(max_ih=max_ih, max_peers=max_peers, ttl=ttl)
    model = _Model(max_ih, max_peers, ttl)
    rng = random.Random(0)
    now = 0.0
    for kind, a, b, step in ops:
        now += step  # strictly increasing clock: eviction order has no ties
        if kind == "add":
            peer = v4(b) if b % 2 == 0 else v6(b)
            assert s.add(ih(a), peer, now)
            model.add(ih(a), peer, now)
        elif kind == "get":
            family = (None, 4, 6)[b]
            got = s.get(ih(a), now, rng, 3, family=family)
            model.expire(now)
            live = model.peers.get(ih(a), {})
            assert len(got) == len(set(got)) <= 3
            assert all(p in live and live[p] > now for p in got)
            assert all(family is None or (6 if ":" in p[0] else 4) == family for p in got)
            wanted = [p for p in live if family is None or (6 if ":" in p[0] else 4) == family]
            assert len(got) == min(3, len(wanted))
        else:
            s.expire(now)
            model.expire(now)
        assert s.info_hash_count() <= max_ih
        snap = s.snapshot(now)
        model.expire(now)
        assert all(n <= max_peers for n in snap.values())
        assert snap == {h: len(p) for h, p in model.peers.items()}
        assert s.peer_count() == sum(snap.values())
        expiries = [e for p in model.peers.values() for e in p.values()]
        assert s.next_expiry() == (min(expiries) if expiries else None)
        for h, peers in model.peers.items():
            assert get_all(s, h, now) == set(peers)


def _encode(host: str, port: int) -> bytes:
    return f"{host}:{port};".encode()


@pytest.mark.parametrize("seed", range(5))
def test_get_encoded_is_get_with_every_peer_encoded(seed: int) -> None:
    """The per-swarm cache of encodings follows every change (announces, re-announces that
    reorder, evictions at the caps, expiry): ``get_encoded`` gives ``get``'s window, drawn
    the same way, with each peer's encoding. Random operations on two stores in step."""
    cached, plain = make(max_ih=2, max_peers=5, ttl=50.0), make(max_ih=2, max_peers=5, ttl=50.0)
    ops = random.Random(seed)
    r1, r2 = random.Random(seed), random.Random(seed)
    now = 0.0
    hashes = [bytes([i]) * 20 for i in range(3)]
    gets = 0
    for _ in range(600):
        op, h, p = ops.random(), ops.randrange(3), ops.randrange(13)
        family = ops.choice((4, 6))
        if op < 0.4:
            peer = (f"9.9.9.{p}", 1000 + p) if p % 3 else (f"2001:db8::{p:x}", 1000 + p)
            for store in (cached, plain):
                store.add(hashes[h], peer, now, seed=p % 2 == 0)
        elif op < 0.45:
            now += 20.0
        else:
            noseed = op > 0.9
            peers, encoded = cached.get_encoded(hashes[h], now, r1, 3, family, _encode,
                                                noseed=noseed)
            expected = plain.get(hashes[h], now, r2, 3, family, noseed=noseed)
            assert peers == expected
            assert encoded == [_encode(host, port) for host, port in expected]
            gets += bool(expected)
    assert gets > 100
