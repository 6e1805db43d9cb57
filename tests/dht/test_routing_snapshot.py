"""Routing snapshots: frozen values whose counts agree with their nodes."""

from __future__ import annotations

import dataclasses

import pytest

from dhtviewer.dht.kinds import NodeState
from dhtviewer.dht.routing_snapshot import BucketSnapshot, NodeSnapshot, RoutingSnapshot


def node(i: int, state: NodeState) -> NodeSnapshot:
    return NodeSnapshot(bytes([i]) * 20, (f"1.0.0.{i}", 1), state, None, 0.0, None, False, 0, 0)


def test_counts_and_immutability() -> None:
    b0 = BucketSnapshot(0, (node(1, NodeState.GOOD), node(2, NodeState.BAD)), 3, 0.0)
    b1 = BucketSnapshot(1, (node(3, NodeState.QUESTIONABLE),), 0, 0.0, capacity=16)
    snap = RoutingSnapshot(b"\x00" * 20, 4, 8, (b0, b1), 5.0)
    assert (b0.good, b0.bad, b1.questionable) == (1, 1, 1)
    assert snap.size == 3 and snap.good_count == 1 and snap.depth == 2
    assert b0.capacity == 8 and b1.capacity == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.k = 9  # type: ignore[misc]
