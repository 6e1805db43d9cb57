"""Lateness: how far from when they were due replies leave, as a histogram.

A reply is due when its query arrived (the kernel's timestamp) plus the simulated round trip;
its lateness is how far from that it was actually sent (the server records the absolute error:
it may send up to half a millisecond early). Recording one is an index computation and an
increment (no sorting, no growing list on the serving loop), and percentiles come from the
cumulative counts. Buckets are logarithmic, 20 per decade from 1 µs to 100 s (a bucket's upper
edge is 12% above its lower one, so a percentile is exact to 12%); a negative value counts in
the first bucket.

Histograms add up (``merge``) and subtract (``since``): the control API sums the serving
processes', a benchmark takes the difference of two snapshots for the figures of one run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["LatenessHistogram"]

PER_DECADE = 20
LOW = 1e-6
DECADES = 8
BUCKETS = PER_DECADE * DECADES + 1
"""The last bucket holds everything from 100 s up."""
_SCALE = PER_DECADE / math.log(10.0)


def upper_edge(bucket: int) -> float:
    """Upper edge of ``bucket`` in seconds (the value a percentile in it is reported as)."""
    return float(LOW * 10.0 ** ((bucket + 1) / PER_DECADE))


class LatenessHistogram:
    """Counts of lateness values (seconds) in logarithmic buckets."""

    def __init__(self, counts: Sequence[int] | None = None, over_5ms: int = 0) -> None:
        self.counts = list(counts) if counts is not None else [0] * BUCKETS
        if len(self.counts) != BUCKETS:
            raise ValueError(f"a histogram has {BUCKETS} buckets, got {len(self.counts)}")
        self.total = sum(self.counts)
        self.over_5ms = over_5ms
        """Values over 5 ms (the issue's bound), counted exactly."""

    def add(self, late: float) -> None:
        b = 0 if late <= LOW else min(BUCKETS - 1, int(math.log(late / LOW) * _SCALE))
        self.counts[b] += 1
        self.total += 1
        if late > 0.005:
            self.over_5ms += 1

    @property
    def max(self) -> float | None:
        """The upper edge of the highest bucket in use (seconds), None if empty."""
        for b in range(BUCKETS - 1, -1, -1):
            if self.counts[b]:
                return upper_edge(b)
        return None

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), as its bucket's upper edge, in seconds; None if empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for b, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return upper_edge(b)
        return upper_edge(BUCKETS - 1)

    def merge(self, other: LatenessHistogram) -> LatenessHistogram:
        return LatenessHistogram([a + b for a, b in zip(self.counts, other.counts, strict=True)],
                                 self.over_5ms + other.over_5ms)

    def since(self, earlier: LatenessHistogram) -> LatenessHistogram:
        """What was recorded after ``earlier`` (a snapshot of this histogram) was taken."""
        return LatenessHistogram([a - b for a, b in zip(self.counts, earlier.counts,
                                                        strict=True)],
                                 self.over_5ms - earlier.over_5ms)

    def summary_ms(self) -> dict[str, Any]:
        """p50, p99, p999 and max (bucket upper edges) in milliseconds, and counts."""

        def ms(x: float | None) -> float | None:
            return None if x is None else round(1000.0 * x, 3)

        return {"n": self.total, "p50": ms(self.percentile(0.5)),
                "p99": ms(self.percentile(0.99)), "p999": ms(self.percentile(0.999)),
                "max": ms(self.max),
                "over_5ms_total": self.over_5ms, "measured_total": self.total}

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild it (``from_json``), for the control API."""
        return {"per_decade": PER_DECADE, "low_s": LOW, "counts": self.counts,
                "over_5ms": self.over_5ms}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LatenessHistogram:
        return cls(doc["counts"], int(doc.get("over_5ms", 0)))
