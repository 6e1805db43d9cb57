"""AddressPlan: the block of 127/8 the simulated nodes live in, and the random draw."""

from __future__ import annotations

import numpy as np
import pytest

from dhtviewer.simnet.addresses import RESERVED_SUBNETS, AddressPlan, ip_text


def test_a_million_nodes_fit_the_default_slash_10() -> None:
    plan = AddressPlan.for_nodes(1_000_000)
    assert plan.cidr() == "127.64.0.0-127.127.255.255"
    assert plan.usable == (plan.subnets - RESERVED_SUBNETS) * 254


def test_ten_million_nodes_take_more_of_127_but_never_127_0() -> None:
    plan = AddressPlan.for_nodes(10_000_000)
    assert plan.first == (127 << 24) + (1 << 16)  # 127.1.0.0: 127.0.0.0/16 stays free
    assert ip_text(plan.last) == "127.255.255.255"


@pytest.mark.parametrize(
    ("base", "nodes", "message"),
    [
        ("10.64.0.0", 10, "127.0.0.0/8"),
        ("127.0.5.0", 10, "127.0.0.0/16"),
        ("banana", 10, "IPv4"),
        ("127.64.0.0", 20_000_000, "do not fit"),
    ],
)
def test_bad_plans_are_refused_with_a_reason(base: str, nodes: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AddressPlan.for_nodes(nodes, base)


def test_the_draw_is_distinct_random_and_avoids_reserved_and_edge_hosts() -> None:
    plan = AddressPlan.for_nodes(100_000)
    ips = plan.draw(100_000, np.random.default_rng(1))
    assert len(np.unique(ips)) == len(ips)
    hosts = ips & 0xFF
    assert not np.any((hosts == 0) | (hosts == 255))
    assert np.all(ips >= plan.first + (RESERVED_SUBNETS << 8)) and np.all(ips <= plan.last)
    # Spread over the block: a lookup meeting 50 random nodes rarely sees two in one /24.
    subnets = ips >> 8
    assert len(np.unique(subnets)) > 0.99 * min(len(ips), plan.subnets - RESERVED_SUBNETS)
