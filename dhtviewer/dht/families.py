"""Address families under BEP 32: what a node of one family may know of the other.

BEP 32 runs two independent DHTs, IPv4 and IPv6: separate routing tables, separate lookups,
no data of one stored in the other. A dual-stack host therefore runs one ``DhtNode`` per family,
and the two meet only at the edges the BEP allows:

* answering: a query whose ``want`` names the other family (``n6`` asked of an IPv4 node) gets
  that family's closest contacts (``nodes6``). The node reads them through a ``Sibling``, a
  read-only view of the other node bound once both exist; it never sees the other table;
* asking: while a node bootstraps, or while its sibling has too few contacts, its lookups ask
  for both families (BEP 32 "Bootstrapping"); otherwise only for their own, which is what the
  query's family implies anyway, so ``want`` is left out. Contacts of the other family that come
  back are never used by the lookup: the node emits them (``events.OtherFamilyContacts``) and
  the driver offers them to the sibling, which verifies them with a ping before use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from dhtviewer.dht.kinds import TextEnum
from dhtviewer.dht.messages import NodeInfo

FAMILIES = (4, 6)
"""Address families, by IP version, in the order a dual-stack host lists them."""
WANT_OF: dict[int, bytes] = {4: b"n4", 6: b"n6"}
"""The ``want`` entry that asks for each family's contacts."""


class AddressFamilies(TextEnum):
    """Which DHTs a session joins (``DhtSettings.address_families``)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    BOTH = "both"
    """Both, as deployed clients do: an IPv4 and an IPv6 node (IPv6 where the host has it)."""

    @property
    def families(self) -> tuple[int, ...]:
        return {"ipv4": (4,), "ipv6": (6,), "both": FAMILIES}[self.value]


def other_family(family: int) -> int:
    if family not in FAMILIES:
        raise ValueError(f"family must be 4 or 6, got {family!r}")
    return 10 - family


def family_name(family: int) -> str:
    """"IPv4" or "IPv6" (for messages and labels)."""
    return f"IPv{family}"


def wanted_families(want: frozenset[bytes], query_family: int) -> tuple[int, ...]:
    """The families whose contacts a reply carries: those ``want`` names (other entries are
    ignored, as the BEP says), or the family the query came over when it names none."""
    if not want:  # nearly every query: no BEP 32 ``want``
        return (query_family,)
    fams = tuple(f for f in FAMILIES if WANT_OF[f] in want)
    return fams or (query_family,)


class ContactHolder(Protocol):
    """The read-only part of a node that its sibling may use (``DhtNode`` has it)."""

    def closest_contacts(self, target: bytes, count: int, now: float) -> list[NodeInfo]: ...

    def needs_contacts(self) -> bool: ...


class Sibling:
    """A node's view of the other family's node: its closest verified contacts and whether it
    is short of contacts, nothing else. Bound late (``bind``), since each of two nodes needs the
    other's view at construction; unbound, it has nothing to offer and needs nothing."""

    __slots__ = ("_node", "family")

    def __init__(self, family: int) -> None:
        """``family``: the family of the node this view shows (the *other* one)."""
        other_family(family)  # validates
        self.family = family
        self._node: ContactHolder | None = None

    def bind(self, node: ContactHolder | None) -> None:
        self._node = node

    @property
    def bound(self) -> bool:
        return self._node is not None

    def closest(self, target: bytes, count: int, now: float) -> Sequence[NodeInfo]:
        node = self._node
        return () if node is None else node.closest_contacts(target, count, now)

    def needs_contacts(self) -> bool:
        node = self._node
        return node is not None and node.needs_contacts()


Holder = TypeVar("Holder", bound=ContactHolder)


def dual_stack(make: Callable[[int, Sibling], Holder]) -> dict[int, Holder]:
    """One node per family, each seeing the other through a ``Sibling``:
    ``make(family, sibling)`` builds the node of ``family`` (with
    ``DhtNode(family=..., sibling=...)``; give both the same ``op_ids``, an ``OpIds``, so that
    an operation id names one operation of the pair)."""
    views = {fam: Sibling(other_family(fam)) for fam in FAMILIES}
    nodes = {fam: make(fam, views[fam]) for fam in FAMILIES}
    for fam in FAMILIES:
        views[fam].bind(nodes[other_family(fam)])
    return nodes
