"""OpIds: where operation ids (lookups, pings, samples) come from.

An id names one operation for the program's whole life: the two nodes of a dual-stack host draw
from one source (an id names one operation whichever family runs it), and a program that runs
nodes one after another (the desktop app's Stop/Start) starts the next source where the last
one stopped, so records keyed by id never mix two operations.
"""

from __future__ import annotations


class OpIds:
    """Increasing operation ids from ``first``; ``next_id`` tells the next without using it."""

    def __init__(self, first: int = 1) -> None:
        self._next = first

    @property
    def next_id(self) -> int:
        """The id the next operation will get."""
        return self._next

    def __iter__(self) -> OpIds:
        return self

    def __next__(self) -> int:
        op = self._next
        self._next += 1
        return op
