"""What the serving processes and the coordinator of a simulated network tell each other.

When the network is served by several processes (``workers.py``), each serving process answers
the queries to its own nodes, and one coordinator runs what concerns the whole network: the
joined clients (members), the queries the network sends them, churn. They exchange these small
messages (pickled, over a ``socketpair``):

- up, from a serving process: ``Heard`` (a client sent queries: it may be a new member) and
  ``Reply`` (a response or error to a simulated node: the answer to a background query);
- down, from the coordinator: ``MemberJoined`` and ``MemberLeft`` (its nodes list members in
  their answers, as in one process);
- both ways: ``Ask`` and ``Answer`` (the control API's questions: counters, announced peers).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dhtviewer.dht.messages import Addr
from dhtviewer.simnet.questions import Question

__all__ = ["Answer", "Ask", "Heard", "MemberJoined", "MemberLeft", "Reply"]


class Heard(NamedTuple):
    """``queries`` queries from ``addr`` (id ``node_id``, BEP 43 not read-only), the last at
    ``now``. Sent for a new address or id, then at most once per ``REPORT_EVERY`` seconds."""

    addr: Addr
    ip: int
    node_id: bytes
    version: bytes | None
    queries: int
    now: float


class Reply(NamedTuple):
    """A response or error datagram ``data`` from ``src`` to a simulated node, read at ``now``."""

    data: bytes
    src: Addr
    dst_ip: int
    dst_port: int
    now: float


class MemberJoined(NamedTuple):
    addr: Addr
    ip: int
    node_id: bytes
    version: bytes | None
    now: float


class MemberLeft(NamedTuple):
    addr: Addr


class Ask(NamedTuple):
    """A question ``what`` (with ``args``) from the control API; answered by ``Answer``."""

    request: int
    what: Question
    args: tuple[Any, ...]


class Answer(NamedTuple):
    request: int
    body: Any
