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

An id change costs the network something (every contact must learn the new id, our stored peers
and items sit near the old one), and an attacker who controls a few networks could try to flip
our address back and forth to make us churn. So after one change the id changes again at most
once per ``ID_CHANGE_INTERVAL`` (libtorrent's voter likewise refuses to rotate the address more
than every few minutes): an address settled sooner is believed at once, but the matching id is
only taken at the first vote after the hold-off, if the votes still agree on that address then.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dhtviewer.dht.external_ip import ExternalIpVoter
from dhtviewer.dht.node_id import ID_BYTES, bep42_exempt, bep42_id, bep42_valid

ID_CHANGE_INTERVAL = 600.0
"""Seconds after an id change before the next one may happen (see the module)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """The votes settled on ``ip`` (``votes`` distinct networks agree). ``new_id``: the id
    derived for it (None: ours already matches, is exempt, derivation is off, or the change
    waits for the hold-off); ``old_id``: the id before. ``address_changed``: False when only
    the id changed, for an address settled earlier (a change held back by the hold-off)."""

    ip: str
    votes: int
    old_id: bytes
    new_id: bytes | None
    address_changed: bool = True


class NodeIdentity:
    def __init__(
        self,
        node_id: bytes,
        *,
        secrets: random.Random,
        external_ip: str | None = None,
        derive: bool = True,
        change_interval: float = ID_CHANGE_INTERVAL,
    ) -> None:
        """``external_ip``: believed before (restored state) until votes settle. ``derive``:
        derive a BEP 42 id when the voted address needs one (``DhtSettings.derive_node_id``).
        ``change_interval``: the hold-off between two id changes (the first is immediate)."""
        if len(node_id) != ID_BYTES:
            raise ValueError("node_id must be 20 bytes")
        if change_interval < 0:
            raise ValueError("change_interval must be >= 0")
        self._id = node_id
        self._secrets = secrets
        self.derive = derive
        self.voter = ExternalIpVoter(external_ip)
        self._change_interval = change_interval
        self._last_change: float | None = None

    @property
    def change_held_until(self) -> float | None:
        """When the id may next change, while a needed change waits for the hold-off (None: no
        change is waiting)."""
        ip = self.voter.external_ip
        if ip is None or not self.voter.confirmed or not self.needs_new_id(ip):
            return None
        if self._last_change is None:
            return None
        return self._last_change + self._change_interval

    @property
    def node_id(self) -> bytes:
        return self._id

    @property
    def external_ip(self) -> str | None:
        return self.voter.external_ip

    def needs_new_id(self, ip: str) -> bool:
        """Whether our id must change to be valid for external address ``ip``."""
        return self.derive and not bep42_exempt(ip) and not bep42_valid(self._id, ip)

    def _may_change(self, now: float) -> bool:
        last = self._last_change
        return last is None or now >= last + self._change_interval

    def _derive(self, ip: str, now: float) -> bytes:
        self._id = bep42_id(ip, self._secrets)
        self._last_change = now
        return self._id

    def vote(self, voter_ip: str, claimed_ip: str, now: float) -> Settled | None:
        """A responder at ``voter_ip`` says our address is ``claimed_ip`` (at ``now``, the
        node's clock). When the votes settle (a new address, or the restored one confirmed),
        returns what was settled, having taken a new id if that address needs one and the
        hold-off allows it. A change held back earlier is made at the first vote after the
        hold-off (returned with ``address_changed`` False). Else None."""
        voter = self.voter
        settled = voter.vote(voter_ip, claimed_ip)
        old = self._id
        if settled is None:
            ip = voter.external_ip
            if (ip is not None and voter.confirmed and self.needs_new_id(ip)
                    and self._may_change(now)):
                return Settled(ip, voter.votes, old, self._derive(ip, now), False)
            return None
        ip, votes = settled
        new: bytes | None = None
        if self.needs_new_id(ip) and self._may_change(now):
            new = self._derive(ip, now)
        return Settled(ip, votes, old, new)
