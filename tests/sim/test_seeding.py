"""IdIndex.routing_contacts: the oracle table has K nodes per prefix length, farthest first."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dhtviewer.dht.node_id import random_id, shared_prefix_bits
from dhtviewer.sim.seeding import IdIndex


def _brute(own: bytes, ids: list[bytes]) -> dict[int, list[int]]:
    by_level: dict[int, list[int]] = {}
    for j, other in enumerate(ids):
        if other != own:
            by_level.setdefault(shared_prefix_bits(own, other), []).append(j)
    return by_level


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 300), per_bucket=st.integers(1, 10))
def test_contacts_match_brute_force_bucket_counts(seed: int, count: int, per_bucket: int) -> None:
    rng = random.Random(seed)
    ids = [random_id(rng) for _ in range(count)]
    own = ids[0]
    picked = IdIndex(ids).routing_contacts(own, per_bucket, rng)
    assert 0 not in picked  # never ourselves
    assert len(set(picked)) == len(picked)
    truth = _brute(own, ids)
    got: dict[int, list[int]] = {}
    for j in picked:
        got.setdefault(shared_prefix_bits(own, ids[j]), []).append(j)
    assert {lvl: len(v) for lvl, v in got.items()} == {
        lvl: min(per_bucket, len(v)) for lvl, v in truth.items()
    }
    levels = [shared_prefix_bits(own, ids[j]) for j in picked]
    assert levels == sorted(levels)  # farthest bucket first


def test_own_id_absent_from_index_still_works() -> None:
    rng = random.Random(5)
    ids = [random_id(rng) for _ in range(50)]
    picked = IdIndex(ids).routing_contacts(random_id(rng), 8, rng)
    assert picked and all(0 <= j < 50 for j in picked)
    assert IdIndex([]).routing_contacts(ids[0], 8, rng) == []
