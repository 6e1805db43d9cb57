"""AdaptiveTimeout: the short timeout in force, derived from the round-trip times of recent
answers.

A query past the short timeout stops holding one of its lookup's ``alpha`` slots (it may still
answer). A fixed second is far too long on a network whose median RTT is 80 ms: a dead node
would cost a lookup a whole second per round. So the short timeout follows twice the 90th
percentile of the last RTTs, between ``min_short_timeout`` and ``short_timeout`` (the
ceiling), unless ``adaptive_timeout`` is off. Recomputing sorts the window, so once it is full
it is recomputed only every ``RECOMPUTE_EVERY`` samples.
"""

from __future__ import annotations

from collections import deque

from dhtviewer.dht.settings import DhtSettings

SAMPLES = 128
"""Recent RTTs the short timeout is computed from."""
MIN_SAMPLES = 4
"""A fresh node adapts within its first lookup."""
RECOMPUTE_EVERY = 16
"""Once the window is full; cheaper than sorting on every reply."""


class AdaptiveTimeout:
    def __init__(self, settings: DhtSettings) -> None:
        self._settings = settings
        self._rtts: deque[float] = deque(maxlen=SAMPLES)
        self._new = 0
        self.value = settings.short_timeout
        """The short timeout in force now, seconds."""

    def record(self, rtt: float) -> None:
        """An answer came back after ``rtt`` seconds."""
        s = self._settings
        if not s.adaptive_timeout:
            return
        rtts = self._rtts
        rtts.append(rtt)
        self._new += 1
        n = len(rtts)
        if n < MIN_SAMPLES or (n >= RECOMPUTE_EVERY and self._new < RECOMPUTE_EVERY):
            return
        self._new = 0
        ordered = sorted(rtts)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        self.value = min(s.short_timeout, max(s.min_short_timeout, 2.0 * p90))
