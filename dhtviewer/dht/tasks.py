"""Scheduler: tasks run on the node's own clock, one-shot or periodic.

The node has no clock of its own: whoever drives it calls ``handle_timer(now)`` at
``next_deadline()``. Tasks hook into exactly that, so a task scheduled for ``t`` runs inside the
first ``handle_timer(now)`` with ``now >= t`` in a unit test, a 10,000-node simulation or on a
real socket alike. A task is ``fn(now)``; it may call any node method (send queries, start
lookups). A task that raises is reported to ``on_error`` (the node counts it and emits a
``TaskFailed`` event) and, if periodic, kept: one bad run must not stop the node or the task.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

Task = Callable[[float], None]


@dataclass(eq=False)
class ScheduledTask:
    """A handle on a scheduled task: ``cancel()`` it; ``next_run`` is when it runs next (None
    once it ran for the last time or was cancelled)."""

    fn: Task
    next_run: float | None
    interval: float | None
    """Seconds between runs of a periodic task (None: runs once)."""
    name: str = ""
    runs: int = 0
    errors: int = 0
    _seq: int = field(default=0, repr=False)

    def cancel(self) -> None:
        self.next_run = None


class Scheduler:
    def __init__(
        self, on_error: Callable[[ScheduledTask, Exception, float], None] | None = None
    ) -> None:
        self._on_error = on_error
        self._heap: list[tuple[float, int, ScheduledTask]] = []
        self._seq = itertools.count()

    def call_at(self, when: float, fn: Task, *, name: str = "") -> ScheduledTask:
        """Run ``fn(now)`` once, at the first timer at or after ``when``."""
        task = ScheduledTask(fn, when, None, name)
        self._push(task, when)
        return task

    def call_every(
        self, interval: float, fn: Task, *, first: float, name: str = ""
    ) -> ScheduledTask:
        """Run ``fn(now)`` at ``first``, then every ``interval`` seconds after each run's
        scheduled time (a late timer does not make the task drift)."""
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        task = ScheduledTask(fn, first, interval, name)
        self._push(task, first)
        return task

    def _push(self, task: ScheduledTask, when: float) -> None:
        task._seq = next(self._seq)
        heapq.heappush(self._heap, (when, task._seq, task))

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].next_run != heap[0][0]:
            heapq.heappop(heap)  # cancelled, or superseded by a later schedule
        return heap[0][0] if heap else None

    def run_due(self, now: float) -> None:
        """Run every task due at ``now`` (each at most once per call)."""
        heap = self._heap
        due: list[ScheduledTask] = []
        while heap and heap[0][0] <= now:
            when, _, task = heapq.heappop(heap)
            if task.next_run == when:
                due.append(task)
        for task in due:
            scheduled = task.next_run
            if scheduled is None:
                continue  # cancelled by a task that ran before it in this batch
            task.runs += 1
            if task.interval is not None:
                nxt = scheduled + task.interval
                if nxt <= now:  # far behind (the node was not driven): skip the missed runs
                    nxt = now + task.interval
                task.next_run = nxt
                self._push(task, nxt)
            else:
                task.next_run = None
            try:
                task.fn(now)
            except Exception as err:
                task.errors += 1
                if self._on_error is not None:
                    self._on_error(task, err, now)

    def __len__(self) -> int:
        """Tasks still scheduled."""
        return sum(1 for when, _, t in self._heap if t.next_run == when)
