"""TrafficStats: rolling per-second traffic counters, RTTs and network-size estimates.

Pure Python + numpy (no Qt), fed with core events and read by the traffic plot. Times are the
core's clock (``event.at``); ``advance(now)`` moves the window on when no traffic arrives.

Network size: for the i-th closest node (1-based) to a random target at XOR distance d_i, the
expected d_i is about i * 2**160 / N, so i * 2**160 / d_i estimates the node count N. One estimate
per finished lookup is the mean over its K closest; a single estimate is noisy (1/d_1 has a heavy
tail), so the series shows the median of the recent estimates with their inter-quartile range.
The closest list only holds nodes that answered, so the estimate counts reachable nodes.

numpy is imported by the readers that build arrays, not with the module: the window creates its
``TrafficStats`` before its first frame, and numpy is only needed once the plots draw.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import ID_BITS, distance

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

IN = "in"
OUT = "out"
DIRECTIONS = (IN, OUT)
UNKNOWN_METHOD = "unknown"
"""Method label of a response or error whose query we cannot name."""

_MAX_RTT_SAMPLES = 100_000


@dataclass(slots=True)
class _Second:
    messages: dict[tuple[str, str], int] = field(default_factory=dict)  # (direction, method)
    bytes: dict[str, int] = field(default_factory=dict)  # direction -> bytes
    counters: dict[str, int] = field(default_factory=dict)  # "malformed", "errors in", ...


class SizeEstimate(NamedTuple):
    at: float
    estimate: float
    samples: int
    """How many closest nodes went into it."""


class SizeSeries(NamedTuple):
    at: FloatArray
    median: FloatArray
    low: FloatArray
    """25th percentile of the recent estimates."""
    high: FloatArray
    """75th percentile of the recent estimates."""


def estimate_network_size(target: bytes, closest: Sequence[bytes]) -> float | None:
    """Mean over the closest ids (nearest first) of i * 2**160 / d_i; None if nothing usable."""
    estimates = []
    for rank, node_id in enumerate(closest, start=1):
        d = distance(node_id, target)
        if d > 0:
            estimates.append(rank * float(1 << ID_BITS) / d)
    if not estimates:
        return None
    return math.fsum(estimates) / len(estimates)


def method_label(method: bytes) -> str:
    if not method:
        return UNKNOWN_METHOD
    return method.decode("ascii", "replace")


class TrafficStats:
    """Counters over the last ``window`` seconds, one bin per whole second of the core clock."""

    def __init__(self, window: float = 300.0, *, size_history: int = 500, size_smoothing: int = 16):
        if window < 1:
            raise ValueError("window must be at least one second")
        self.window = math.ceil(window)
        self.size_smoothing = max(1, size_smoothing)
        self.now = -math.inf
        self._seconds: dict[int, _Second] = {}
        self._rtts: deque[tuple[float, float]] = deque(maxlen=_MAX_RTT_SAMPLES)
        self._sizes: deque[SizeEstimate] = deque(maxlen=size_history)
        self.totals: dict[str, int] = {}
        """All-time counts: "messages in/out", "bytes in/out", "malformed", "errors in/out",
        "dropped responses"."""

    # --- feeding -------------------------------------------------------------------------------
    def add_events(self, events: Iterable[ev.Event]) -> None:
        for event in events:
            self.add_event(event)

    def add_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageSent | ev.MessageReceived):
            direction = OUT if isinstance(event, ev.MessageSent) else IN
            second = self._bin(event.at)
            key = (direction, method_label(event.method))
            second.messages[key] = second.messages.get(key, 0) + 1
            second.bytes[direction] = second.bytes.get(direction, 0) + event.size
            self._count(f"messages {direction}")
            self._count(f"bytes {direction}", event.size)
            if event.kind == "e":
                self._count(f"errors {direction}", 1, second)
        elif isinstance(event, ev.MalformedReceived):
            second = self._bin(event.at)
            second.bytes[IN] = second.bytes.get(IN, 0) + event.size
            self._count("bytes in", event.size)
            self._count("malformed", 1, second)
        elif isinstance(event, ev.ResponseDropped):
            self._count("dropped responses", 1, self._bin(event.at))
        elif isinstance(event, ev.LookupResponse):
            self._add_rtt(event.at, event.rtt)
        elif isinstance(event, ev.PingFinished):
            if event.rtt is not None:
                self._add_rtt(event.at, event.rtt)
        elif isinstance(event, ev.LookupFinished) and not event.cancelled:
            estimate = estimate_network_size(event.target, [i for i, _ in event.closest])
            if estimate is not None:
                self._sizes.append(SizeEstimate(event.at, estimate, len(event.closest)))

    def advance(self, now: float) -> None:
        """Move the window's end to ``now`` and forget what fell out of it."""
        if now <= self.now:
            return
        self.now = now
        oldest = math.floor(now) - self.window
        for sec in [s for s in self._seconds if s < oldest]:
            del self._seconds[sec]
        while self._rtts and self._rtts[0][0] < now - self.window:
            self._rtts.popleft()

    def _bin(self, at: float) -> _Second:
        self.advance(at)
        sec = math.floor(at)
        second = self._seconds.get(sec)
        if second is None:
            second = self._seconds[sec] = _Second()
        return second

    def _count(self, name: str, amount: int = 1, second: _Second | None = None) -> None:
        self.totals[name] = self.totals.get(name, 0) + amount
        if second is not None:
            second.counters[name] = second.counters.get(name, 0) + amount

    def _add_rtt(self, at: float, rtt: float) -> None:
        self.advance(at)
        self._rtts.append((at, rtt))

    # --- reading -------------------------------------------------------------------------------
    def seconds_axis(self) -> FloatArray:
        """x values of every series: seconds relative to now (-window .. -1). The current,
        incomplete second is left out so the lines do not dip at their right end."""
        import numpy as np

        return np.arange(-self.window, 0, dtype=np.float64)

    def shown_seconds(self, minimum: int = 60, step: int = 30) -> int:
        """How many seconds back a plot of the series should show: the span since the oldest
        second with traffic still in the window, rounded up to ``step``, at least ``minimum``
        and at most the window. A node that started a minute ago then fills the plot instead
        of a sliver at the right end of five empty minutes."""
        if not self._seconds or self.now == -math.inf:
            return min(minimum, self.window)
        span = math.floor(self.now) - min(self._seconds)
        shown = max(minimum, math.ceil(span / step) * step)
        return min(shown, self.window)

    def _series(self, value: Callable[[_Second], float]) -> FloatArray:
        import numpy as np

        out = np.zeros(self.window, dtype=np.float64)
        if self.now == -math.inf:
            return out
        current = math.floor(self.now)
        for sec, second in self._seconds.items():
            index = self.window - (current - sec)
            if 0 <= index < self.window:
                out[index] = value(second)
        return out

    def methods(self, direction: str | None = None) -> list[str]:
        """Methods seen in the window (sorted), optionally for one direction."""
        found = {
            method
            for second in self._seconds.values()
            for d, method in second.messages
            if direction is None or d == direction
        }
        return sorted(found)

    def rate_series(self, direction: str, method: str | None = None) -> FloatArray:
        """Messages per second for each second of the window (all methods if ``method`` is None)."""

        def value(second: _Second) -> float:
            return float(
                sum(
                    n
                    for (d, m), n in second.messages.items()
                    if d == direction and (method is None or m == method)
                )
            )

        return self._series(value)

    def recent_rate(self, direction: str, seconds: int = 5) -> float:
        """Messages per second in ``direction`` over the last ``seconds`` complete seconds: the
        mean of the end of ``rate_series``, without numpy (the status bar reads it from the
        start)."""
        if self.now == -math.inf:
            return 0.0
        n = min(max(seconds, 1), self.window)
        current = math.floor(self.now)
        total = sum(
            count
            for sec, second in self._seconds.items()
            if current - n <= sec < current
            for (d, _method), count in second.messages.items()
            if d == direction
        )
        return total / n

    def bytes_series(self, direction: str) -> FloatArray:
        return self._series(lambda second: float(second.bytes.get(direction, 0)))

    def counter_series(self, name: str) -> FloatArray:
        """Per-second counts of "malformed", "errors in", "errors out" or "dropped responses"."""
        return self._series(lambda second: float(second.counters.get(name, 0)))

    def window_total(self, name: str) -> int:
        """Sum of a counter (as in ``counter_series``) over the window."""
        return sum(second.counters.get(name, 0) for second in self._seconds.values())

    def rtt_samples(self) -> FloatArray:
        """RTTs (seconds) of the lookup answers and pings in the window."""
        import numpy as np

        return np.fromiter((rtt for _, rtt in self._rtts), dtype=np.float64, count=len(self._rtts))

    def rtt_histogram(
        self, bin_ms: float = 25.0, max_ms: float = 1000.0
    ) -> tuple[FloatArray, FloatArray]:
        """(edges in ms, counts); the last bin also holds everything slower than ``max_ms``."""
        import numpy as np

        edges = np.arange(0.0, max_ms + bin_ms / 2, bin_ms, dtype=np.float64)
        rtts_ms = np.minimum(self.rtt_samples() * 1000.0, max_ms)
        counts, _ = np.histogram(rtts_ms, bins=edges)
        return edges, counts.astype(np.float64)

    def size_estimates(self) -> list[SizeEstimate]:
        return list(self._sizes)

    def size_series(self) -> SizeSeries:
        """Rolling median and quartiles over the last ``size_smoothing`` estimates, one point per
        finished lookup."""
        import numpy as np

        values = np.array([s.estimate for s in self._sizes], dtype=np.float64)
        n = len(values)
        median = np.empty(n)
        low = np.empty(n)
        high = np.empty(n)
        for j in range(n):
            recent = values[max(0, j - self.size_smoothing + 1) : j + 1]
            low[j], median[j], high[j] = np.percentile(recent, [25.0, 50.0, 75.0])
        at = np.array([s.at for s in self._sizes], dtype=np.float64)
        return SizeSeries(at, median, low, high)

    def latest_size(self) -> tuple[float, float, float] | None:
        """(median, low, high) of the most recent estimates, or None before the first lookup."""
        if not self._sizes:
            return None  # and numpy is not needed yet
        series = self.size_series()
        if not len(series.at):
            return None
        return float(series.median[-1]), float(series.low[-1]), float(series.high[-1])
