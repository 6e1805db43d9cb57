"""Address families under BEP 32: the want names, the sibling view a node gets of the other
family's node, building a pair, and (on the Wire) two DHTs growing side by side, the IPv6 one
joined through contacts learned over IPv4."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht.families import (
    AddressFamilies,
    Sibling,
    dual_stack,
    family_name,
    other_family,
    wanted_families,
)
from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node import DhtNode
from tests.support.wire import LOCAL, Wire

CONTACT = NodeInfo(b"\x01" * 20, ("::1", 7000))


class Holder:
    def __init__(self, short: bool) -> None:
        self.short = short
        self.asked: list[tuple[bytes, int, float]] = []

    def closest_contacts(self, target: bytes, count: int, now: float) -> list[NodeInfo]:
        self.asked.append((target, count, now))
        return [CONTACT]

    def needs_contacts(self) -> bool:
        return self.short


def test_names_and_the_other_family() -> None:
    assert other_family(4) == 6 and other_family(6) == 4
    assert family_name(6) == "IPv6"
    with pytest.raises(ValueError, match="4 or 6"):
        other_family(5)
    assert AddressFamilies.BOTH.families == (4, 6) and AddressFamilies("ipv6").families == (6,)


@pytest.mark.parametrize(
    ("want", "over", "families"),
    [
        (frozenset(), 4, (4,)),
        (frozenset(), 6, (6,)),
        (frozenset({b"n6"}), 4, (6,)),
        (frozenset({b"n4", b"n6"}), 6, (4, 6)),
        (frozenset({b"x1"}), 6, (6,)),  # unknown entries are ignored (BEP 32)
        (frozenset({b"x1", b"n4"}), 6, (4,)),
    ],
)
def test_wanted_families(want: frozenset[bytes], over: int, families: tuple[int, ...]) -> None:
    assert wanted_families(want, over) == families


def test_a_sibling_shows_only_closest_contacts_and_need_and_nothing_until_bound() -> None:
    view = Sibling(6)
    assert not view.bound and view.closest(b"\x00" * 20, 8, 1.0) == () and not view.needs_contacts()
    holder = Holder(short=True)
    view.bind(holder)
    assert view.closest(b"\x02" * 20, 8, 1.0) == [CONTACT] and view.needs_contacts()
    assert holder.asked == [(b"\x02" * 20, 8, 1.0)]


def test_a_node_and_its_sibling_are_of_two_families() -> None:
    with pytest.raises(ValueError, match="other family"):
        DhtNode(rng=random.Random(1), now=0.0, family=4, sibling=Sibling(4))
    with pytest.raises(ValueError, match="4 or 6"):
        DhtNode(rng=random.Random(1), now=0.0, family=5)
    pair = dual_stack(lambda fam, sib: DhtNode(
        rng=random.Random(fam), now=0.0, settings=LOCAL, family=fam, sibling=sib))
    assert pair[4].family == 4 and pair[6].family == 6
    assert pair[4].table is not pair[6].table


def test_two_dhts_grow_side_by_side_and_ipv6_joins_through_ipv4() -> None:
    """Dual-stack hosts on the Wire: every table holds its own family only, and a newcomer
    given only an IPv4 bootstrap address fills its IPv6 table too (BEP 32 bootstrapping)."""
    wire = Wire()
    hosts = [
        wire.add_dual((f"127.0.70.{i + 1}", 6881), ("::1", 9000 + i), seed=500 + i)
        for i in range(12)
    ]
    for i, pair in enumerate(hosts[1:], start=1):
        for fam in (4, 6):
            seeds = [(f"127.0.70.{j + 1}", 6881) if fam == 4 else ("::1", 9000 + j)
                     for j in range(max(0, i - 3), i)]
            pair[fam].bootstrap(seeds, wire.now)
        wire.run(wire.now + 0.5)
    wire.run(wire.now + 5)
    newcomer = wire.add_dual(("127.0.70.100", 6881), ("::1", 9100), seed=600)
    newcomer[4].bootstrap([("127.0.70.1", 6881)], wire.now)  # IPv4 only
    wire.run(wire.now + 2)
    newcomer[6].bootstrap([], wire.now)  # from what the IPv4 node handed over
    wire.run(wire.now + 5)
    for pair in [*hosts, newcomer]:
        assert all(":" not in e.addr[0] for e in pair[4].table)
        assert all(e.addr[0] == "::1" for e in pair[6].table)
    assert len(newcomer[4].table) >= 8 and len(newcomer[6].table) >= 8
