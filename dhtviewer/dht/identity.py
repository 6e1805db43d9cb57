"""NodeIdentity: our node id and our external address, the one place both live.

Every part that puts our id on the wire or compares an id with ours (``Rpc``, ``Responder``,
``LookupManager``, the crawler) reads ``identity.node_id``, so a new id reaches all of them at
once; the routing tables, whose buckets are laid out around our id, are rebuilt by the node
(``RoutingTable.update_node_id``).

BEP 42 ties a node id to the node's external address, so that nobody can pick an id next to a
target and sit there. Our address is learnt from responders' votes (``ExternalIpVoter``: several
distinct networks must agree); when the settled address is one our id does not match, the
identity derives a matching id, as libtorrent's ``node::update_node_id`` does. Loopback and
private addresses are exempt (BEP 42), so a local testnet keeps its ids. The random bits of a
derived id come from the *secrets* source: an id others could predict could be targeted before
we even use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dhtviewer.dht.external_ip import ExternalIpVoter
from dhtviewer.dht.node_id import ID_BYTES, bep42_exempt, bep42_id, bep42_valid


@dataclass(frozen=True, slots=True)
class Settled:
    """The votes settled on ``ip`` (``votes`` distinct networks agree). ``new_id``: the id
    derived for it (None: ours already matches, is exempt, or derivation is off); ``old_id``:
    the id before."""

    ip: str
    votes: int
    old_id: bytes
    new_id: bytes | None


class NodeIdentity:
    def __init__(
        self,
        node_id: bytes,
        *,
        secrets: random.Random,
        external_ip: str | None = None,
        derive: bool = True,
    ) -> None:
        """``external_ip``: believed before (restored state) until votes settle. ``derive``:
        derive a BEP 42 id when the voted address needs one (``DhtSettings.derive_node_id``)."""
        if len(node_id) != ID_BYTES:
            raise ValueError("node_id must be 20 bytes")
        self._id = node_id
        self._secrets = secrets
        self.derive = derive
        self.voter = ExternalIpVoter(external_ip)

    @property
    def node_id(self) -> bytes:
        return self._id

    @property
    def external_ip(self) -> str | None:
        return self.voter.external_ip

    def needs_new_id(self, ip: str) -> bool:
        """Whether our id must change to be valid for external address ``ip``."""
        return self.derive and not bep42_exempt(ip) and not bep42_valid(self._id, ip)

    def vote(self, voter_ip: str, claimed_ip: str) -> Settled | None:
        """A responder at ``voter_ip`` says our address is ``claimed_ip``. When the votes settle
        (a new address, or the restored one confirmed), returns what was settled, having taken
        a new id if that address needs one; else None."""
        settled = self.voter.vote(voter_ip, claimed_ip)
        if settled is None:
            return None
        ip, votes = settled
        old = self._id
        new: bytes | None = None
        if self.needs_new_id(ip):
            new = self._id = bep42_id(ip, self._secrets)
        return Settled(ip, votes, old, new)
