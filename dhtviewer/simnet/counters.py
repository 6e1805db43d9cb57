"""Counters: what a simulated network counted (the ``counters`` of ``GET /stats``).

One ``Counters`` per process that serves or coordinates the network; the control API adds
them up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["Counters"]


@dataclass(slots=True)
class Counters:
    """Everything the network counted."""

    received: int = 0
    """Datagrams to simulated addresses (or to none: see ``to_unknown``)."""
    queries: int = 0
    answered: int = 0
    """Queries answered with a response (errors are ``errors_sent``)."""
    errors_sent: int = 0
    malformed: int = 0
    """Datagrams that were not valid KRPC: dropped (a query with a tid gets error 203)."""
    malformed_sent: int = 0
    """Replies deliberately broken by misbehaving nodes."""
    to_silent: int = 0
    """Queries to dead, away, unborn or read-only nodes: never answered."""
    lost: int = 0
    """Queries dropped by the loss model."""
    to_unknown: int = 0
    """Datagrams to an address no node has."""
    to_spoofed: int = 0
    """Datagrams to a forged source of the spoof scenario."""
    responses: int = 0
    unmatched_responses: int = 0
    background_sent: int = 0
    background_answered: int = 0
    spoofed_sent: int = 0
    flood_sent: int = 0
    reports_dropped: int = 0
    """Messages between the serving processes and the coordinator that could not be sent
    (the other side's buffer full): a member's keep-alive or a reply to a background query."""

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @staticmethod
    def total(parts: list[dict[str, int]]) -> dict[str, int]:
        """The sum of several ``to_json`` results."""
        return {f.name: sum(p.get(f.name, 0) for p in parts) for f in fields(Counters)}
