"""The core's enums read as plain text wherever they end up (views, logs, JSON, comparisons)."""

from __future__ import annotations

import json

from dhtviewer.dht.kinds import CandidateState, LookupKind, NodeState, OwnerKind


def test_members_are_their_text() -> None:
    assert NodeState.GOOD == "good" and f"{NodeState.BAD}" == "bad"
    assert str(OwnerKind.PING) == "ping"
    assert json.dumps([LookupKind.ANNOUNCE, CandidateState.INFLIGHT]) == '["announce", "in flight"]'
    assert LookupKind("find_node") is LookupKind.FIND_NODE


def test_lookup_kind_properties() -> None:
    assert {k for k in LookupKind if k.internal} == {LookupKind.BOOTSTRAP, LookupKind.REFRESH}
    peers = {LookupKind.GET_PEERS, LookupKind.ANNOUNCE}
    assert {k for k in LookupKind if k.collects_peers} == peers
